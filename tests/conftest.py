"""Shared fixtures: synthetic tasks with planted noise, the offline data directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import lossval_odv  # noqa: F401  (installs the OpenDataVal compatibility layer first)

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The offline dataset copies: $LOSSVAL_ODV_DATA, else ../shared/datasets."""
    env = os.environ.get("LOSSVAL_ODV_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "datasets"
    if not (path / "MANIFEST.md").exists() and not any(path.glob("*.csv.gz")):
        pytest.skip(f"no offline datasets at {path} (set LOSSVAL_ODV_DATA to provide them)")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
