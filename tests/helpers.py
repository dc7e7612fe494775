"""Helpers shared by the test modules: synthetic tasks with planted noise, a tiny grid.

Test modules import them from here (never from ``conftest`` or from each other).
"""

from __future__ import annotations

import numpy as np

PLUGIN = "tests.tiny_datasets"


def planted_noise_task(
    seed: int, task: str, *, n: int = 1000, d: int = 10, rate: float = 0.2, n_val: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A learnable task whose labels are corrupted at ``rate``; returns X, Y, X_val, noisy.

    Classification: a linear boundary, noisy points have their label flipped; Y one-hot.
    Regression: a smooth standardised target, noisy points take another point's target.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    beta = rng.normal(size=d)
    noisy = rng.choice(n, int(rate * n), replace=False)
    if task == "classification":
        labels = (x @ beta > 0).astype(int)
        labels[noisy] = 1 - labels[noisy]
        y = np.eye(2)[labels]
    else:
        y = np.tanh(x @ beta / np.sqrt(d)) + 0.1 * rng.normal(size=n)
        y = (y - y.mean()) / y.std()
        y[noisy] = rng.permutation(y)[noisy]
    return x, y, rng.normal(size=(n_val, d)), noisy


def grid_config(name: str = "tinygrid", **overrides) -> dict:
    """2 tiny datasets x label noise 0.2 x 2 runs x (LossVal 1 epoch, KNN-Shapley)."""
    config = {
        "name": name,
        "plugins": [PLUGIN],
        "datasets": ["tiny_clf", "tiny_reg"],
        "noise_types": ["label"],
        "noise_rates": [0.2],
        "runs": 2,
        "seed": 7,
        "split": {"train": 100, "valid": 20, "test": 60},
        "methods": [
            {"name": "lossval", "evaluator": "lossvalodv", "params": {"epochs": 1}},
            {"name": "knn", "evaluator": "knnshapley"},
        ],
    }
    config.update(overrides)
    return config
