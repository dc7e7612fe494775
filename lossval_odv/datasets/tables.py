"""Datasets a config names by a file or an OpenML id, beside the paper's twelve.

A config's ``datasets:`` entry may be a mapping (see :class:`TableSource`)::

    - {file: data/mine.csv, target: label, task: classification}   # .csv, .csv.gz, .parquet
    - {openml: 44980, task: regression}                            # OpenML's default target

The table goes through what the paper's datasets go through: the content checks of
:func:`~lossval_odv.datasets.sources.content_problem` (numeric features, no NaN or
infinity, naming the column and row; a regression target numeric), then
:func:`~lossval_odv.datasets.preprocess.preprocess` (non-numeric feature columns dropped as
categorical, classes label-encoded or the target z-scored, features z-scored). The task is
never guessed: the entry names it. A file's sha256 is part of :meth:`TableSource.identity`,
which enters every cell's key, so results of a changed file never mix with the old ones;
a file that changes after its config was read is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from lossval_odv.datasets.catalog import DATASETS, Task
from lossval_odv.datasets.errors import (
    DatasetError,
    DatasetIntegrityError,
    DatasetUnavailableError,
)
from lossval_odv.datasets.preprocess import preprocess
from lossval_odv.datasets.sources import (
    OPENML_DELAY,
    OPENML_RETRIES,
    RawDataset,
    content_problem,
    openml_data_home,
    sha256_file,
)

SUFFIXES = (".csv", ".csv.gz", ".parquet")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class TableSource:
    """A dataset from a file or an OpenML id, registered in OpenDataVal as ``name``.

    Attributes
    ----------
    name : str
        Registry name: the entry's ``name``, else the file name without its suffix, else
        ``openml-ID``.
    task : {"classification", "regression"}
        Learning task, as the config states it.
    target : str or None
        Target column; ``None`` only for OpenML (its default target).
    path : str or None
        Absolute path of the file (not part of the identity: moving a file keeps results).
    openml_id : int or None
        OpenML dataset id, for an OpenML entry.
    sha256 : str or None
        Checksum of the file when the config was read.
    """

    name: str
    task: Task
    target: str | None = None
    path: str | None = None
    openml_id: int | None = None
    sha256: str | None = None

    def identity(self) -> dict[str, Any]:
        """What determines the data, for the cell key: everything but the file's place."""
        return {
            "task": self.task,
            "target": self.target,
            "openml_id": self.openml_id,
            "sha256": self.sha256,
        }

    def describe(self) -> str:
        return self.path if self.path is not None else f"OpenML {self.openml_id}"


def file_source(
    path: str | os.PathLike[str], *, target: str, task: Task, name: str | None = None
) -> TableSource:
    """The source of a data file, with its checksum, after checking that it loads.

    Raises
    ------
    DatasetError
        The file is missing, of an unknown kind, unreadable, lacks the target column, or
        fails the content checks (the message names the file, column and row).
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DatasetError(f"file {path} does not exist")
    if not path.name.lower().endswith(SUFFIXES):
        raise DatasetError(f"file {path}: unknown format; use one of {', '.join(SUFFIXES)}")
    default = path.name
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if default.lower().endswith(suffix):
            default = default[: -len(suffix)]
            break
    source = TableSource(
        name=name or default, task=task, target=target, path=str(path), sha256=sha256_file(path)
    )
    check_name(source.name)
    load_raw_table(source)
    return source


def openml_source(
    openml_id: int, *, task: Task, target: str | None = None, name: str | None = None
) -> TableSource:
    """The source of an OpenML dataset (loaded, and checked, when a cell needs it)."""
    source = TableSource(
        name=name or f"openml-{openml_id}", task=task, target=target, openml_id=openml_id
    )
    check_name(source.name)
    return source


def check_name(name: str) -> None:
    """Refuse a registry name that is malformed or one of the paper's datasets."""
    if not NAME_PATTERN.match(name):
        raise DatasetError(f"dataset name {name!r} may hold only letters, digits, _ . -")
    if name in DATASETS:
        raise DatasetError(
            f"dataset name {name!r} is one of the paper's datasets; give the entry another name"
        )


def read_table(path: Path) -> pd.DataFrame:
    """A CSV, gzip CSV or Parquet file as a table."""
    try:
        if path.name.lower().endswith(".parquet"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except ImportError as error:  # pandas' Parquet engines are optional
        raise DatasetError(
            f"file {path}: reading Parquet needs pyarrow (pip install pyarrow): {error}"
        ) from None
    except pd.errors.EmptyDataError:
        raise DatasetIntegrityError(f"file {path} is empty (no header, no rows)") from None
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as error:
        raise DatasetIntegrityError(f"file {path} is not readable: {error}") from error


def _fetch_openml(source: TableSource) -> tuple[pd.DataFrame, pd.Series]:
    import sklearn.datasets as skdatasets

    try:
        bunch = skdatasets.fetch_openml(
            data_id=source.openml_id,
            data_home=str(openml_data_home()),
            as_frame=True,
            target_column=source.target or "default-target",
            n_retries=OPENML_RETRIES,
            delay=OPENML_DELAY,
        )
    except Exception as error:  # network, HTTP and OpenML errors alike: retried next run
        raise DatasetUnavailableError(
            f"OpenML {source.openml_id} could not be loaded ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(bunch.data, pd.DataFrame) or not isinstance(bunch.target, pd.Series):
        raise DatasetIntegrityError(
            f"OpenML {source.openml_id} did not give one feature table and one target column"
        )
    return bunch.data, bunch.target


def load_raw_table(source: TableSource) -> RawDataset:
    """Read and check ``source``'s table (a file must still have its recorded checksum).

    Raises
    ------
    DatasetError
        The target column is missing, or a value fails the content checks.
    DatasetIntegrityError
        The file changed since its checksum was taken, or cannot be read.
    """
    where = source.describe()
    if source.path is not None:
        path = Path(source.path)
        actual = sha256_file(path) if path.is_file() else "no file"
        if actual != source.sha256:
            raise DatasetIntegrityError(
                f"file {path} changed since the config was read (sha256 {source.sha256}, "
                f"now {actual}); rerun the config to use the new content"
            )
        frame = read_table(path)
        if source.target not in frame.columns:
            raise DatasetError(
                f"file {path} has no target column {source.target!r}; its columns: "
                + ", ".join(map(str, frame.columns))
            )
        features, target = frame.drop(columns=[source.target]), frame[source.target]
    else:
        features, target = _fetch_openml(source)
    features.columns = [str(c) for c in features.columns]
    categorical = [
        c
        for c in features.columns
        if isinstance(features[c].dtype, pd.CategoricalDtype) or not is_numeric_dtype(features[c])
    ]
    if len(categorical) == features.shape[1]:
        raise DatasetError(f"{where}: no numeric feature column (all are categorical)")
    target_name = str(target.name) if target.name is not None else "target"
    problem = content_problem(
        features.assign(**{target_name: target.to_numpy()}),
        categorical=categorical,
        numeric_target=source.task == "regression",
        target=target_name,
    )
    if problem:
        raise DatasetIntegrityError(f"{where}: {problem}")
    if source.task == "classification" and target.nunique() < 2:
        raise DatasetError(f"{where}: classification needs at least 2 classes in {target_name!r}")
    return RawDataset(features, target.reset_index(drop=True), categorical, source=where)


def load_table(source: TableSource) -> tuple[np.ndarray, np.ndarray]:
    """``source``'s data preprocessed as the paper's datasets are (the registered loader)."""
    return preprocess(load_raw_table(source), task=source.task)


def register_table(source: TableSource) -> None:
    """Register ``source`` in OpenDataVal under its name (idempotent).

    A name another dataset holds (OpenDataVal's or a plugin's) is refused; an earlier
    file or OpenML source of this module under the same name is replaced.
    """
    from opendataval.dataloader.register import Register

    entry = Register.Datasets.get(source.name)
    if entry is not None:
        previous = getattr(entry, "_lossval_odv_source", None)
        if previous == source:
            return
        if previous is None:
            raise DatasetError(
                f"dataset name {source.name!r} is taken by another registered dataset; "
                "give the entry another name"
            )
        del Register.Datasets[source.name]
    entry = Register(source.name, one_hot=source.task == "classification")
    entry.from_covar_label_func(partial(load_table, source))
    entry._lossval_odv_source = source
