"""OpenDataVal's ``load_openml`` preprocessing, and electricity's undersampling.

``load_openml`` (opendataval 1.3.0, ``dataloader/datasets/datasets.py``) does, in order:
drop the categorical feature columns; label-encode the classes with
``np.unique(y, return_inverse=True)`` or z-score the regression target with
``(y - mean) / (std + 1e-8)``; z-score every feature over the whole dataset with
``(X - mean) / (std + 1e-8)``. :func:`preprocess` does exactly that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from lossval_odv.datasets.catalog import ELECTRICITY_SEED, Task
from lossval_odv.datasets.sources import RawDataset


def undersample(
    features: pd.DataFrame, target: pd.Series, seed: int = ELECTRICITY_SEED
) -> tuple[pd.DataFrame, pd.Series]:
    """Random undersampling of every class to the minority count, rows kept in order.

    This is how OpenML 44080 (electricity, balanced) was built from OpenML 151: all
    minority rows plus a random draw, without replacement, of as many majority rows.
    The draw uses ``np.random.default_rng(seed)``, classes visited in sorted order. On
    already balanced data it returns the input unchanged.
    """
    labels = target.to_numpy()
    classes, counts = np.unique(labels, return_counts=True)
    minority = int(counts.min())
    if (counts == minority).all():
        return features, target
    rng = np.random.default_rng(seed)
    keep = []
    for cls in classes:
        rows = np.flatnonzero(labels == cls)
        if len(rows) > minority:
            rows = rng.choice(rows, size=minority, replace=False)
        keep.append(rows)
    kept = np.sort(np.concatenate(keep))
    return (
        features.iloc[kept].reset_index(drop=True),
        target.iloc[kept].reset_index(drop=True),
    )


def preprocess(
    raw: RawDataset, *, task: Task, balance: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a stored dataset into what ``load_openml`` returns.

    ``balance`` undersamples every class to the minority count first (electricity).

    Returns
    -------
    X : np.ndarray of float64, shape (n, d)
        Numeric features, z-scored over the whole dataset.
    y : np.ndarray, shape (n,)
        Integer class labels (classification) or the z-scored float target.
    """
    features, target = raw.features, raw.target
    if balance:
        features, target = undersample(features, target)
    dropped = set(raw.categorical)
    numeric = [c for c in features.columns if c not in dropped and is_numeric_dtype(features[c])]
    x = features[numeric].to_numpy(dtype=np.float64)
    if task == "classification":
        _, y = np.unique(target.to_numpy(), return_inverse=True)
        y = y.reshape(-1)
    else:
        y = target.to_numpy(dtype=np.float64)
        y = (y - np.mean(y)) / (np.std(y) + 1e-8)
    x = (x - np.mean(x, axis=0)) / (np.std(x, axis=0) + 1e-8)
    return x, y
