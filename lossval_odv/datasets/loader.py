"""Load a dataset by name, preprocessed the way OpenDataVal's ``load_openml`` does."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lossval_odv.datasets.catalog import DATASETS, DatasetSpec, get_spec
from lossval_odv.datasets.errors import DatasetIntegrityError
from lossval_odv.datasets.preprocess import preprocess
from lossval_odv.datasets.sources import (
    expected_entry,
    in_openml_cache,
    load_raw,
    read_data_file,
    resolve_data_dir,
)


def load_dataset(
    name: str, *, data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load and preprocess one of the paper's datasets.

    This is the function registered with OpenDataVal under ``name``.

    Parameters
    ----------
    name : str
        OpenDataVal name, one of :data:`~lossval_odv.datasets.DATASETS`.
    data_dir : path, optional
        Data directory to look in first; defaults to :func:`set_data_dir`'s, else
        ``$LOSSVAL_ODV_DATA``.

    Returns
    -------
    X : np.ndarray of float64, shape (n, d)
        z-scored numeric features.
    y : np.ndarray, shape (n,)
        Integer labels (classification) or z-scored float target (regression).
    """
    spec = get_spec(name)
    return preprocess(load_raw(name, data_dir), task=spec.task, balance=spec.balance)


def offline_source(name: str, data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """Where ``name`` loads from without the network, or None.

    Its file in the data directory when it loads (checksum, shape and content checks
    pass), else scikit-learn's OpenML cache when that holds it completely.
    """
    spec = get_spec(name)
    directory = resolve_data_dir(data_dir)
    path = None if directory is None else directory / spec.file_name
    if path is not None and path.exists() and _passes_checks(path, spec, directory):
        return str(path)
    if in_openml_cache(spec):
        return "scikit-learn's OpenML cache"
    return None


def _passes_checks(path: Path, spec: DatasetSpec, directory: Path) -> bool:
    """Whether a data file passes its checksum, shape and content checks (a file that
    fails them is no source: the next one is tried)."""
    try:
        read_data_file(path, spec, expected_entry(directory, spec))
    except DatasetIntegrityError:
        return False
    return True


def available_offline(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names that load without the network (see :func:`offline_source`), in catalog order."""
    return [name for name in DATASETS if offline_source(name, data_dir) is not None]
