"""The three noise types of the paper's protocol, as OpenDataVal ``add_noise`` functions.

label and feature noise are OpenDataVal's own ``mix_labels`` and ``add_gauss_noise``.
Mixed noise picks ``round(n * rate)`` points, label-mixes the first half (floor) and adds
N(0, 1) to the features of the rest, on the training and the validation set alike;
every chosen point counts as noisy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from opendataval.dataloader import DataFetcher, add_gauss_noise, mix_labels


def _shift_labels(y: np.ndarray, idx: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
    """Move each chosen label to a different class, exactly as ``mix_labels`` does."""
    y = np.array(y, copy=True)
    classes, mapping = np.unique(y, return_inverse=True, axis=0)
    mapping = mapping.reshape(-1)
    shift = rs.choice(len(classes) - 1, len(idx)) + 1
    y[idx] = classes[(mapping[idx] + shift) % len(classes)]
    return y


def _split_mixed(
    x: np.ndarray, y: np.ndarray, rate: float, rs: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chosen = rs.choice(len(x), round(len(x) * rate), replace=False)
    label_idx, feature_idx = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
    y = _shift_labels(y, label_idx, rs)
    x = np.array(x, dtype=np.float64, copy=True)
    x[feature_idx] += rs.normal(0.0, 1.0, size=(len(feature_idx), *x.shape[1:]))
    return x, y, chosen


def mixed_noise(fetcher: DataFetcher, noise_rate: float = 0.2) -> dict[str, Any]:
    """Half label noise, half feature noise, at ``noise_rate`` in total (train and valid)."""
    rs = check_random_state(fetcher.random_state)
    x_train, y_train, noisy = _split_mixed(fetcher.x_train, fetcher.y_train, noise_rate, rs)
    x_valid, y_valid, _ = _split_mixed(fetcher.x_valid, fetcher.y_valid, noise_rate, rs)
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_valid": x_valid,
        "y_valid": y_valid,
        "noisy_train_indices": noisy,
    }


NOISE_FUNCTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "label": mix_labels,
    "feature": add_gauss_noise,
    "mixed": mixed_noise,
}
