"""Shared fixtures (the offline data directory) and the CUDA skip; helpers live in
``tests/helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import lossval_odv  # noqa: F401  (before any opendataval import: compatibility layer, registries)

REPO = Path(__file__).resolve().parents[1]


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
