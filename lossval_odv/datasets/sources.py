"""Where a dataset comes from, in order: data directory, OpenML cache, OpenML.

A data directory holds ``NAME.csv.gz`` files (features, then a ``target`` column) and
optionally ``checksums.sha256`` (``sha256sum`` format, written by ``prefetch``). Every
file is verified before use: against the directory's manifest when it lists the file,
else against the checksum of the known offline copy. A file that fails the check, does
not parse or has the wrong number of columns is refused with an error, never used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lossval_odv.datasets.catalog import DatasetSpec

DATA_DIR_ENV = "LOSSVAL_ODV_DATA"
MANIFEST = "checksums.sha256"

_configured_dir: Path | None = None


class DatasetError(RuntimeError):
    """A dataset that cannot be used: missing everywhere, corrupt, or the wrong shape."""


def set_data_dir(path: str | Path | None) -> None:
    """Use ``path`` as the data directory (overrides ``$LOSSVAL_ODV_DATA``); None unsets."""
    global _configured_dir
    _configured_dir = None if path is None else Path(path)


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The data directory in force: explicit > :func:`set_data_dir` > ``$LOSSVAL_ODV_DATA``."""
    if explicit is not None:
        return Path(explicit)
    if _configured_dir is not None:
        return _configured_dir
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: Path) -> dict[str, str]:
    """``{file name: sha256}`` from the directory's ``checksums.sha256``, if any."""
    path = directory / MANIFEST
    if not path.is_file():
        return {}
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DatasetError(f"{path}, line {number}: expected '<sha256>  <file>', got {line!r}")
        entries[parts[1].lstrip("*")] = parts[0]
    return entries


def from_data_dir(spec: DatasetSpec, directory: Path) -> pd.DataFrame | None:
    """The verified raw table from ``directory``, or None when the file is not there."""
    path = directory / f"{spec.name}.csv.gz"
    if not path.is_file():
        return None
    expected = read_manifest(directory).get(path.name, spec.sha256)
    if expected is None:
        raise DatasetError(
            f"{path} has no checksum to verify against: list it in {directory / MANIFEST} "
            "(lossval-odv prefetch writes one)"
        )
    actual = sha256_of(path)
    if actual != expected:
        raise DatasetError(
            f"{path} failed its checksum (expected sha256 {expected}, got {actual}); "
            "the file is corrupt or not the expected version: replace it"
        )
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # gzip, encoding and CSV errors alike
        raise DatasetError(f"{path} could not be read as a gzip CSV: {exc}") from exc
    check_table(spec, table, str(path))
    return table


def check_table(spec: DatasetSpec, table: pd.DataFrame, where: str) -> None:
    """Refuse a table without a ``target`` column or with the wrong number of features."""
    if "target" not in table.columns:
        raise DatasetError(f"{where}: no 'target' column (columns: {list(table.columns)[:5]}...)")
    n_features = table.shape[1] - 1
    if n_features != spec.n_columns:
        raise DatasetError(
            f"{where}: {n_features} feature columns, but {spec.name} has {spec.n_columns}"
        )
    if len(table) == 0:
        raise DatasetError(f"{where}: the table has no rows")


def openml_cache_path(spec: DatasetSpec) -> Path:
    """Where scikit-learn caches the OpenML description of ``spec`` (``$SCIKIT_LEARN_DATA``)."""
    from sklearn.datasets import get_data_home

    return (
        Path(get_data_home())
        / "openml"
        / "openml.org"
        / "api"
        / "v1"
        / "json"
        / "data"
        / f"{spec.openml_id}.gz"
    )


def from_openml(spec: DatasetSpec, *, download: bool) -> pd.DataFrame:
    """The raw table from OpenML: from scikit-learn's cache only, or with download.

    scikit-learn has no cache-only switch; without ``download`` a dataset counts as
    cached when its description file is in the cache, and is then read from there.
    """
    from sklearn.datasets import fetch_openml

    if not download and not openml_cache_path(spec).is_file():
        raise FileNotFoundError(f"not in the cache ({openml_cache_path(spec)})")
    bunch = fetch_openml(data_id=spec.openml_id, as_frame=True, parser="auto", n_retries=1)
    table = bunch.data.copy()
    table["target"] = bunch.target
    check_table(spec, table, f"OpenML dataset {spec.openml_id}")
    return table


def locate(spec: DatasetSpec, directory: Path | None) -> tuple[pd.DataFrame, str]:
    """The raw table and where it came from, trying the sources in order.

    Raises
    ------
    DatasetError
        When no source has it: the message names each place tried and how to get it.
    """
    tried = []
    if directory is not None:
        table = from_data_dir(spec, directory)
        if table is not None:
            return table, str(directory / f"{spec.name}.csv.gz")
        tried.append(f"data directory {directory}: no {spec.name}.csv.gz")
    else:
        tried.append(f"data directory: none set (${DATA_DIR_ENV} or the config's data_dir)")
    attempts: list[tuple[str, Callable[[], pd.DataFrame]]] = [
        ("scikit-learn's OpenML cache", lambda: from_openml(spec, download=False)),
        ("OpenML", lambda: from_openml(spec, download=True)),
    ]
    for label, attempt in attempts:
        try:
            return attempt(), f"{label} (id {spec.openml_id})"
        except DatasetError:
            raise
        except Exception as exc:
            tried.append(f"{label} (id {spec.openml_id}): {type(exc).__name__}: {exc}")
    raise DatasetError(
        f"dataset {spec.name!r} is not available. Looked in:\n  - "
        + "\n  - ".join(tried)
        + "\nOn a machine with internet run `lossval-odv prefetch --data-dir DIR`, copy DIR "
        f"here and set {DATA_DIR_ENV}=DIR (or data_dir: DIR in the config)."
    )
