"""Where a dataset comes from, in order: data directory, OpenML cache, OpenML network.

1. A local *data directory* holding ``NAME.csv.gz`` (feature columns, then ``target``),
   in the layout of ``../shared/datasets/``: the ``data_dir`` argument, else the
   directory given to :func:`set_data_dir`, else ``$LOSSVAL_ODV_DATA``. Every file is
   verified against the directory's ``manifest.json`` (written by ``lossval-odv
   prefetch``) or, for files it does not list, against the sha256 values shipped in
   :data:`~lossval_odv.datasets.catalog.SHIPPED_SHA256`; a file with no known checksum,
   a wrong checksum, a wrong shape or an unreadable body is refused.
2. scikit-learn's OpenML cache (``sklearn.datasets.get_data_home()``, which honours
   ``$SCIKIT_LEARN_DATA``). scikit-learn has no cache-only mode, so the cache is used
   only when every file ``fetch_openml`` needs is already there, in which case
   ``fetch_openml`` reads them without touching the network.
3. OpenML over the network, through ``sklearn.datasets.fetch_openml`` (which also fills
   the cache). Setting ``$LOSSVAL_ODV_OFFLINE=1`` skips this step.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import sklearn.datasets as skdatasets
from pandas.api.types import is_numeric_dtype

from lossval_odv.datasets.catalog import SHIPPED_SHA256, DatasetSpec, get_spec
from lossval_odv.datasets.errors import DatasetIntegrityError, DatasetUnavailableError

ENV_DATA_DIR = "LOSSVAL_ODV_DATA"
ENV_OFFLINE = "LOSSVAL_ODV_OFFLINE"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "lossval-odv-datasets/1"
TARGET = "target"
#: Retries and delay (seconds) of ``fetch_openml`` on network errors.
OPENML_RETRIES = 3
OPENML_DELAY = 1.0

_data_dir: Path | None = None


@dataclass
class RawDataset:
    """A dataset as stored: every feature column, the target, and where it came from."""

    features: pd.DataFrame
    target: pd.Series
    categorical: list[str] = field(default_factory=list)
    source: str = ""


def set_data_dir(path: str | os.PathLike[str] | None) -> None:
    """Set the data directory used when no ``data_dir`` is passed (``None`` unsets it).

    It takes precedence over ``$LOSSVAL_ODV_DATA``.
    """
    global _data_dir
    _data_dir = None if path is None else Path(path).expanduser()


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The data directory in force: argument > :func:`set_data_dir` > ``$LOSSVAL_ODV_DATA``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if _data_dir is not None:
        return _data_dir
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else None


def openml_data_home() -> Path:
    """scikit-learn's data home (``$SCIKIT_LEARN_DATA`` or ``~/scikit_learn_data``).

    Same rule as ``sklearn.datasets.get_data_home``, without creating the directory.
    """
    return Path(os.environ.get("SCIKIT_LEARN_DATA", "~/scikit_learn_data")).expanduser()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(data_dir: Path) -> dict[str, dict]:
    """Entries of ``data_dir/manifest.json`` keyed by file name ({} when absent).

    Raises
    ------
    DatasetIntegrityError
        The manifest exists but is not a valid lossval-odv manifest.
    """
    path = data_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        content = json.loads(path.read_text())
        files = content["files"]
        if content.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError(f"format is not {MANIFEST_FORMAT!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetIntegrityError(f"{path} is not a valid dataset manifest: {exc}") from exc
    return files


def expected_entry(data_dir: Path, spec: DatasetSpec) -> dict | None:
    """What ``spec``'s file in ``data_dir`` must be: manifest entry, else shipped sha256."""
    entry = read_manifest(data_dir).get(spec.file_name)
    if entry is not None:
        return entry
    if spec.file_name in SHIPPED_SHA256:
        return {"sha256": SHIPPED_SHA256[spec.file_name], "categorical": []}
    return None


def check_shape(spec: DatasetSpec, n_rows: int, n_features: int, where: str) -> None:
    """Refuse data whose shape is not the one known for ``spec``."""
    if n_features != spec.n_features or n_rows not in spec.rows:
        rows = " or ".join(str(r) for r in spec.rows)
        raise DatasetIntegrityError(
            f"{spec.name} from {where} has {n_rows} rows x {n_features} feature columns, "
            f"expected {rows} rows x {spec.n_features} feature columns; refusing to use it."
        )


def read_data_file(path: Path, spec: DatasetSpec, entry: dict | None) -> RawDataset:
    """Verify and read one ``NAME.csv.gz``.

    Raises
    ------
    DatasetIntegrityError
        No checksum is known for the file, the checksum or the shape does not match,
        or the file cannot be decompressed or parsed.
    """
    fix = f"re-create it with `lossval-odv prefetch --data-dir {path.parent} --names {spec.name}`"
    if entry is None or "sha256" not in entry:
        raise DatasetIntegrityError(
            f"{path}: no checksum is known for this file (it is not listed in "
            f"{path.parent / MANIFEST_NAME}); refusing to use an unverified file. "
            f"Write the directory with `lossval-odv prefetch --data-dir {path.parent}`."
        )
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise DatasetIntegrityError(
            f"{path}: sha256 mismatch, expected {entry['sha256']}, got {actual}; "
            f"the file is refused ({fix})."
        )
    try:
        frame = pd.read_csv(path, compression="gzip")
    except pd.errors.EmptyDataError:
        raise DatasetIntegrityError(
            f"{path}: the file is empty (no header, no rows); {fix}."
        ) from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetIntegrityError(f"{path}: not a readable gzip CSV ({exc}); {fix}.") from exc
    if len(frame.columns) < 2 or frame.columns[-1] != TARGET:
        raise DatasetIntegrityError(
            f"{path}: the last column must be {TARGET!r}, found {list(frame.columns[-1:])}; {fix}."
        )
    check_shape(spec, len(frame), len(frame.columns) - 1, str(path))
    for key, value in (("rows", len(frame)), ("n_features", len(frame.columns) - 1)):
        if key in entry and entry[key] != value:
            raise DatasetIntegrityError(
                f"{path}: {value} {key}, but the manifest says {entry[key]}; {fix}."
            )
    features = frame.iloc[:, :-1]
    categorical = list(entry.get("categorical", []))
    problem = content_problem(
        frame, categorical=categorical, numeric_target=spec.task == "regression"
    )
    if problem:
        raise DatasetIntegrityError(f"{path}: {problem}; {fix}.")
    return RawDataset(features, frame[TARGET], categorical, source=str(path))


def content_problem(
    frame: pd.DataFrame, *, categorical: list[str], numeric_target: bool, target: str = TARGET
) -> str | None:
    """The first bad value of a data file's table, naming its column and row, or None.

    Every feature column not listed as categorical must be numeric (preprocessing would
    otherwise drop it silently), and no feature or target value may be missing, NaN or
    infinite (categorical columns, which preprocessing drops, excepted). ``target`` names
    the target column. Rows are counted from 1 after the header line.
    """
    for column in frame.columns:
        values = frame[column]
        numeric = column != target and column not in categorical
        if numeric or (column == target and numeric_target):
            parsed = pd.to_numeric(values, errors="coerce")
            bad = parsed.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                return f"column {column!r} is not numeric: row {row + 1} holds {values.iloc[row]!r}"
            infinite = np.isinf(parsed.to_numpy(dtype=np.float64))
            if infinite.any():
                row = int(np.flatnonzero(infinite)[0])
                return f"column {column!r} holds an infinite value in row {row + 1}"
        missing = values.isna().to_numpy()
        if missing.any() and column not in categorical:
            row = int(np.flatnonzero(missing)[0])
            return f"column {column!r} holds a missing or NaN value in row {row + 1}"
    return None


def _openml_cached_files(openml_id: int, data_home: Path) -> list[Path] | None:
    """The cache files ``fetch_openml(data_id=openml_id)`` reads, or None if incomplete."""
    root = data_home / "openml.org"
    api = root / "api" / "v1" / "json" / "data"
    files = [api / f"{openml_id}.gz", api / "features" / f"{openml_id}.gz"]
    files.append(api / "qualities" / f"{openml_id}.gz")
    if not files[0].exists():
        return None
    try:
        with gzip.open(files[0], "rt", encoding="utf-8") as handle:
            url = json.load(handle)["data_set_description"]["url"]
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        return None
    files.append(root / (urlparse(url).path.lstrip("/") + ".gz"))
    return files if all(f.exists() for f in files) else None


def in_openml_cache(spec: DatasetSpec, data_home: Path | None = None) -> bool:
    """Whether scikit-learn's OpenML cache holds everything needed to load ``spec``."""
    home = openml_data_home() if data_home is None else data_home
    return _openml_cached_files(spec.openml_id, home) is not None


def fetch_from_openml(spec: DatasetSpec, data_home: Path | None = None) -> RawDataset:
    """Load ``spec`` with ``sklearn.datasets.fetch_openml`` (cache first, then network).

    Nominal features come back as pandas ``category`` columns; they are recorded in
    ``RawDataset.categorical`` (OpenDataVal's ``load_openml`` drops them).
    """
    home = openml_data_home() if data_home is None else data_home
    bunch = skdatasets.fetch_openml(
        data_id=spec.openml_id,
        data_home=str(home),
        as_frame=True,
        n_retries=OPENML_RETRIES,
        delay=OPENML_DELAY,
    )
    features = bunch.data
    target = bunch.target
    if not isinstance(features, pd.DataFrame) or not isinstance(target, pd.Series):
        raise DatasetIntegrityError(
            f"OpenML {spec.openml_id} ({spec.name}) did not give one feature table and one "
            "target column"
        )
    categorical = [
        str(col)
        for col in features.columns
        if isinstance(features[col].dtype, pd.CategoricalDtype)
        or not is_numeric_dtype(features[col])
    ]
    check_shape(spec, len(features), features.shape[1], f"OpenML {spec.openml_id}")
    source = f"https://www.openml.org/d/{spec.openml_id}"
    return RawDataset(features, target, categorical, source=source)


def _offline_only() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes"}


def load_raw(name: str, data_dir: str | os.PathLike[str] | None = None) -> RawDataset:
    """Load ``name`` from the first source that has it (see the module docstring).

    Raises
    ------
    UnknownDatasetError
        ``name`` is not one of the paper's datasets.
    DatasetIntegrityError
        A local file is there but fails verification (never skipped silently).
    DatasetUnavailableError
        No source has it; the message says where it looked and how to get it.
    """
    spec = get_spec(name)
    searched: list[str] = []

    directory = resolve_data_dir(data_dir)
    if directory is None:
        searched.append(
            "data directory: none configured (data_dir=, lossval_odv.datasets.set_data_dir, "
            f"or ${ENV_DATA_DIR})"
        )
    else:
        path = directory / spec.file_name
        if path.exists():
            return read_data_file(path, spec, expected_entry(directory, spec))
        searched.append(f"data directory: {path} does not exist")

    home = openml_data_home()
    if in_openml_cache(spec, home):
        return fetch_from_openml(spec, home)
    searched.append(f"scikit-learn OpenML cache: OpenML {spec.openml_id} not cached in {home}")

    if _offline_only():
        searched.append(f"OpenML network: skipped (${ENV_OFFLINE} is set)")
    else:
        try:
            return fetch_from_openml(spec, home)
        except DatasetIntegrityError:
            raise
        except Exception as exc:  # network, HTTP and OpenML errors alike
            searched.append(
                f"OpenML network: https://www.openml.org/d/{spec.openml_id} failed "
                f"({type(exc).__name__}: {exc})"
            )

    places = "\n".join(f"  - {line}" for line in searched)
    raise DatasetUnavailableError(
        f"dataset {spec.name!r} (OpenML {spec.openml_id}) is not available. Looked in:\n"
        f"{places}\n"
        "To get it: on a machine with internet run "
        f"`lossval-odv prefetch --data-dir DIR --names {spec.name}`, then point "
        f"${ENV_DATA_DIR} (or lossval_odv.datasets.set_data_dir / data_dir=) at DIR."
    )
