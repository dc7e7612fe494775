"""The 12 datasets of the LossVal paper: OpenDataVal names, tasks, OpenML ids, shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark dataset.

    ``n_columns`` counts the feature columns of the raw file (before categorical columns
    are dropped); ``sha256`` is the checksum of the offline copy described in
    ``shared/datasets/MANIFEST.md``, where one exists.
    """

    name: str
    task: Literal["classification", "regression"]
    openml_id: int
    n_columns: int
    sha256: str | None = None


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "2dplanes",
            "classification",
            727,
            10,
            "83192cf8f3a4f59fbc60f7cec89c5e48d1f38145c26d0066ff59ea8b9190975b",
        ),
        DatasetSpec(
            "electricity",
            "classification",
            44080,
            7,
            "7713349025f61e9fe72536b1b34389511977a45e9ab31d5ea99d93454c317c5c",
        ),
        DatasetSpec("MiniBooNE", "classification", 43974, 50),
        DatasetSpec(
            "pol",
            "classification",
            722,
            48,
            "514a9994dc134f106b666440884fa089acbce8eb1a33b5570f135704e1a0e6a6",
        ),
        DatasetSpec(
            "fried",
            "classification",
            901,
            10,
            "ffaf9d424bbdf19cc2d4235169b91087a1dcb4a483e9b03a670a3af54915ba66",
        ),
        DatasetSpec("nomao", "classification", 1486, 118),
        DatasetSpec(
            "kin8nm",
            "regression",
            44980,
            8,
            "f9eac11869e48e7b4eab068cb26f28d031d05672a3f9e3f064ae07eaa216abfb",
        ),
        DatasetSpec(
            "white_wine",
            "regression",
            44971,
            11,
            "d40fe506296c5d01d7acb979d8fbbe58d6b7e99b3cb261169cb5466853cafd96",
        ),
        DatasetSpec(
            "cpu_activity",
            "regression",
            44978,
            21,
            "db3f674aae20fbfc6e2e257d86dad9f8a03204af53e95bdfa5740529efa58556",
        ),
        DatasetSpec(
            "pumadyn32nh",
            "regression",
            44981,
            32,
            "d3ee9d07e3ec41c86ce6239abea18a2974db1e339595eb16bd568e18c657746a",
        ),
        DatasetSpec("superconductivity", "regression", 44964, 81),
        DatasetSpec("wave_energy", "regression", 44975, 48),
    ]
}


def spec_of(name: str) -> DatasetSpec:
    """The spec of a benchmark dataset; an unknown name lists the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(
            f"unknown dataset {name!r}; the benchmark datasets are: {', '.join(DATASETS)}"
        ) from None
