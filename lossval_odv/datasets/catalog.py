"""The twelve datasets of the LossVal paper, under their OpenDataVal names.

Shapes come from OpenML (and, for the offline copies, from
``../shared/datasets/MANIFEST.md``). ``n_features`` counts the feature columns of the
file *before* OpenDataVal's preprocessing drops the categorical ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lossval_odv.datasets.errors import UnknownDatasetError

Task = Literal["classification", "regression"]

#: Seed of the electricity undersampling (OpenML 44080's construction, see docs/datasets.md).
ELECTRICITY_SEED = 44080


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the benchmark.

    Attributes
    ----------
    name : str
        OpenDataVal registry name.
    task : {"classification", "regression"}
        Learning task; classification datasets are registered with ``one_hot=True``.
    openml_id : int
        OpenML dataset id that the paper (and OpenDataVal) use.
    n_features : int
        Feature columns in the raw file, categorical ones included.
    rows : tuple of int
        Accepted row counts of the raw file. electricity accepts both OpenML 44080
        (balanced, 38474 rows) and its unbalanced original (OpenML 151, 45312 rows).
    balance : bool
        Undersample every class to the minority count before preprocessing
        (rebuilds OpenML 44080 from its original; a no-op on balanced data).
    """

    name: str
    task: Task
    openml_id: int
    n_features: int
    rows: tuple[int, ...]
    balance: bool = False

    @property
    def file_name(self) -> str:
        """Name of the offline copy in a data directory."""
        return f"{self.name}.csv.gz"

    @property
    def one_hot(self) -> bool:
        """Whether OpenDataVal one-hot encodes the labels."""
        return self.task == "classification"


_SPECS = (
    DatasetSpec("2dplanes", "classification", 727, 10, (40768,)),
    DatasetSpec("electricity", "classification", 44080, 7, (38474, 45312), balance=True),
    DatasetSpec("MiniBooNE", "classification", 43974, 50, (72998,)),
    DatasetSpec("pol", "classification", 722, 48, (15000,)),
    DatasetSpec("fried", "classification", 901, 10, (40768,)),
    DatasetSpec("nomao", "classification", 1486, 118, (34465,)),
    DatasetSpec("kin8nm", "regression", 44980, 8, (8192,)),
    DatasetSpec("white_wine", "regression", 44971, 11, (4898,)),
    DatasetSpec("cpu_activity", "regression", 44978, 21, (8192,)),
    DatasetSpec("pumadyn32nh", "regression", 44981, 32, (8192,)),
    DatasetSpec("superconductivity", "regression", 44964, 81, (21263,)),
    DatasetSpec("wave_energy", "regression", 44975, 48, (72000,)),
)

#: The paper's datasets, keyed by OpenDataVal name.
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}

#: sha256 of the offline copies in ``../shared/datasets`` (from its MANIFEST.md). Used to
#: verify a data directory that has no ``manifest.json`` of its own.
SHIPPED_SHA256: dict[str, str] = {
    "2dplanes.csv.gz": "83192cf8f3a4f59fbc60f7cec89c5e48d1f38145c26d0066ff59ea8b9190975b",
    "pol.csv.gz": "514a9994dc134f106b666440884fa089acbce8eb1a33b5570f135704e1a0e6a6",
    "fried.csv.gz": "ffaf9d424bbdf19cc2d4235169b91087a1dcb4a483e9b03a670a3af54915ba66",
    "kin8nm.csv.gz": "f9eac11869e48e7b4eab068cb26f28d031d05672a3f9e3f064ae07eaa216abfb",
    "white_wine.csv.gz": "d40fe506296c5d01d7acb979d8fbbe58d6b7e99b3cb261169cb5466853cafd96",
    "cpu_activity.csv.gz": "db3f674aae20fbfc6e2e257d86dad9f8a03204af53e95bdfa5740529efa58556",
    "pumadyn32nh.csv.gz": "d3ee9d07e3ec41c86ce6239abea18a2974db1e339595eb16bd568e18c657746a",
    "electricity.csv.gz": "7713349025f61e9fe72536b1b34389511977a45e9ab31d5ea99d93454c317c5c",
}


def get_spec(name: str) -> DatasetSpec:
    """Return the spec of ``name``.

    Raises
    ------
    UnknownDatasetError
        ``name`` is not one of the twelve datasets; the message lists the valid names.
    """
    try:
        return DATASETS[name]
    except KeyError:
        valid = ", ".join(DATASETS)
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; the lossval-odv datasets are: {valid}"
        ) from None
