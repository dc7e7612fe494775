"""Preprocessing identical to OpenDataVal's ``load_openml``, and registration.

``load_openml`` drops categorical feature columns, label-encodes the class (one-hot is
done later by ``Register(one_hot=True)``), z-scores a regression target and every
feature, each with ``std + 1e-8`` over the whole dataset.

electricity: the offline copy is the unbalanced original (OpenML 151) behind OpenML 44080,
which is that table with the majority class randomly undersampled to the minority count.
44080's own draw cannot be rebuilt; we redo the construction with a fixed seed
(:data:`ELECTRICITY_SEED`) whenever the classes are unbalanced.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from opendataval.dataloader import Register

from lossval_odv.datasets.catalog import DATASETS, DatasetSpec, spec_of
from lossval_odv.datasets.sources import data_dir, locate

ELECTRICITY_SEED = 44080


def undersample_majority(table: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Keep every row of the minority class and as many random rows of each other class."""
    counts = table["target"].value_counts()
    if counts.nunique() == 1:
        return table
    rng = np.random.RandomState(seed)
    keep = []
    for label in sorted(counts.index):
        rows = np.flatnonzero((table["target"] == label).to_numpy())
        if len(rows) > counts.min():
            rows = np.sort(rng.choice(rows, counts.min(), replace=False))
        keep.append(rows)
    return table.iloc[np.sort(np.concatenate(keep))].reset_index(drop=True)


def preprocess(spec: DatasetSpec, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``load_openml``'s preprocessing of a raw table (features..., target)."""
    if spec.name == "electricity":
        table = undersample_majority(table, seed=ELECTRICITY_SEED)
    features = table.drop(columns="target")
    numeric = features.select_dtypes(include="number")
    x = numeric.to_numpy(dtype=np.float64)
    if spec.task == "classification":
        _, y = np.unique(table["target"].astype(str).to_numpy(), return_inverse=True)
    else:
        target = table["target"].to_numpy(dtype=np.float64)
        y = (target - np.mean(target)) / (np.std(target) + 1e-8)
    if np.isnan(x).any():
        raise ValueError(
            f"{spec.name}: {int(np.isnan(x).any(axis=1).sum())} rows with NaN features"
        )
    x = (x - np.mean(x, axis=0)) / (np.std(x, axis=0) + 1e-8)
    return x, y


@lru_cache(maxsize=16)
def _load_cached(name: str, directory: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    spec = spec_of(name)
    table, source = locate(spec, directory)
    x, y = preprocess(spec, table)
    return x, y, source


def load_dataset(
    name: str, *, data_dir_path: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed ``(X, y)`` of a benchmark dataset from the first source that has it."""
    x, y, _ = _load_cached(name, data_dir(data_dir_path))
    return x.copy(), y.copy()


def source_of(name: str, *, data_dir_path: str | Path | None = None) -> str:
    """Where :func:`load_dataset` found ``name`` (loads it if needed)."""
    return _load_cached(name, data_dir(data_dir_path))[2]


def register_all() -> None:
    """Register the 12 datasets with OpenDataVal, replacing upstream's uncached loaders.

    opendataval 1.3.0 registers 2dplanes, electricity, MiniBooNE, pol, fried, nomao and
    wave_energy with loaders that always call ``fetch_openml``; ``Register`` refuses a
    name twice, so their entries are removed from ``Register.Datasets`` first.
    """
    for spec in DATASETS.values():
        Register.Datasets.pop(spec.name, None)
        Register(spec.name, one_hot=spec.task == "classification")(_loader_for(spec.name))


def _loader_for(name: str):
    def load() -> tuple[np.ndarray, np.ndarray]:
        return load_dataset(name)

    load.__name__ = f"load_{name}"
    return load
