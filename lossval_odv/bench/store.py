"""The results store: embedded SQLite, one row per finished cell, written atomically.

A row is inserted in a single transaction only once its cell is complete, keyed by the
cell's content hash, so a killed run loses at most the cells in flight and a rerun
skips every finished cell. Data values are kept as compressed float32 blobs.

A store carries its schema version (SQLite's ``user_version``). A file that is empty,
not a SQLite database, corrupt, or of another schema is refused with
:class:`StoreError` and left untouched: it is never overwritten or silently restarted.
One driver at a time writes a store: :meth:`ResultStore.exclusive` takes a lock that a
second driver is refused (:class:`StoreLockedError`) instead of doubling the work.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lossval_odv.atomic_files import current_umask
from lossval_odv.bench.records import CellResult

if TYPE_CHECKING:
    from lossval_odv.bench.model_checks import ModelCheck

# the table's columns, in order, with their SQL types
COLUMNS: dict[str, str] = {
    "key": "TEXT PRIMARY KEY",
    "config": "TEXT NOT NULL",
    "dataset": "TEXT NOT NULL",
    "task": "TEXT NOT NULL",
    "noise": "TEXT NOT NULL",
    "rate": "REAL NOT NULL",
    "run": "INTEGER NOT NULL",
    "method": "TEXT NOT NULL",
    "evaluator": "TEXT NOT NULL",
    "params": "TEXT NOT NULL",
    "data_seed": "INTEGER NOT NULL",
    "method_seed": "INTEGER NOT NULL",
    "status": "TEXT NOT NULL",
    "error": "TEXT",
    "f1": "REAL",
    "auroc": "REAL",
    "auprc": "REAL",
    "seconds": "REAL",
    "total_seconds": "REAL",
    "device": "TEXT",
    "versions": "TEXT",
    "curves": "TEXT",
    "values_blob": "BLOB",
    "noisy_blob": "BLOB",
    "attempts": "INTEGER NOT NULL DEFAULT 1",
    "finished_at": "REAL NOT NULL",
}


def create_table_sql(table: str, columns: dict[str, str]) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of ``table`` with ``columns`` (name -> SQL type)."""
    lines = ",\n".join(f"    {name} {kind}" for name, kind in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {table} (\n{lines}\n)"


SCHEMA = create_table_sql("cells", COLUMNS)
# Beside the cells: one row per check of the baselines' prediction model
# (:mod:`lossval_odv.bench.model_checks`). Stores of version 1 written before checks existed
# lack the table; it is created with the first check, and readers take its absence as "no
# checks", so the schema version stays 1.
# checks share the cells' identifying columns (same names, same types)
_SHARED = ("key", "config", "dataset", "task", "noise", "rate", "run", "data_seed")
CHECK_COLUMNS: dict[str, str] = {
    **{name: COLUMNS[name] for name in _SHARED},
    "split": "TEXT NOT NULL",
    "training": "TEXT NOT NULL",
    "diagnosis": "TEXT NOT NULL",
    "finished_at": COLUMNS["finished_at"],
}
CHECK_SCHEMA = create_table_sql("model_checks", CHECK_COLUMNS)
# decoded on request only: the big ones
DETAIL_COLUMNS = ("curves", "values_blob", "noisy_blob")
SUMMARY_COLUMNS = [name for name in COLUMNS if name not in DETAIL_COLUMNS]

# Version 1 is the layout above; stores written before versions were recorded have
# user_version 0 and the same layout, and are read as version 1.
SCHEMA_VERSION = 1
SQLITE_HEADER = b"SQLite format 3\x00"
LOCK_SUFFIX = ".lock"


def _has_checks(conn: sqlite3.Connection, schema: str = "main") -> bool:
    query = f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = 'model_checks'"
    return conn.execute(query).fetchone() is not None


class StoreError(RuntimeError):
    """A file that cannot be used as a results store; the message says why and what to do."""


class StoreLockedError(StoreError):
    """Another driver holds the store's lock."""


def _pack(array: np.ndarray | None, dtype: str) -> bytes | None:
    if array is None:
        return None
    return zlib.compress(np.ascontiguousarray(array, dtype=dtype).tobytes())


def unpack(blob: bytes | None, dtype: str = "<f4") -> np.ndarray | None:
    """Decode a values (``<f4``) or noisy-indices (``<i4``) blob."""
    if blob is None:
        return None
    return np.frombuffer(zlib.decompress(blob), dtype=dtype)


def verify_store(path: Path) -> None:
    """Refuse (with :class:`StoreError`) an existing file that is not a usable store.

    Reads only: a refused file is left exactly as it was.
    """
    keep = f"It is left untouched; move it away to start a new store at {path}."
    with open(path, "rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if not header:
        raise StoreError(f"{path} is an empty file, not a results store. {keep}")
    if header != SQLITE_HEADER:
        raise StoreError(f"{path} is not a SQLite database, so not a results store. {keep}")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            columns = [row[1] for row in conn.execute("PRAGMA table_info(cells)")]
            checks = [row[1] for row in conn.execute("PRAGMA table_info(model_checks)")]
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path} is a corrupt SQLite database ({error}). {keep}") from None
    if check != "ok":
        raise StoreError(f"{path} is a corrupt SQLite database ({check}). {keep}")
    if not columns:
        raise StoreError(f"{path} is a SQLite database without a cells table. {keep}")
    if (
        version not in (0, SCHEMA_VERSION)
        or columns != list(COLUMNS)
        or checks not in ([], list(CHECK_COLUMNS))
    ):
        raise StoreError(
            f"{path} has results-store schema version {version} with columns {columns}; "
            f"this lossval-odv reads version {SCHEMA_VERSION}. Use a lossval-odv that matches "
            f"the store, or another output directory. {keep}"
        )


class ResultStore:
    """A results database at ``path`` (created on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._verified = False

    def _create(self) -> None:
        """Create the store whole (schema and version) and link it into place, so that no
        reader, and no kill, ever sees an empty or half-initialised store file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        os.close(fd)
        try:
            os.chmod(tmp, 0o666 & ~current_umask())
            with closing(sqlite3.connect(tmp)) as conn, conn:
                conn.execute(SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            with contextlib.suppress(FileExistsError):  # created meanwhile: verified next
                os.link(tmp, self.path)
        finally:
            os.unlink(tmp)

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            self._create()
        self.verify()
        conn = sqlite3.connect(self.path, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def verify(self) -> None:
        """Raise :class:`StoreError` now if the store exists and cannot be used."""
        if self.path.exists() and not self._verified:
            verify_store(self.path)
            self._verified = True

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's write lock (``<store>.lock``) for the ``with`` block.

        A second holder is refused at once with :class:`StoreLockedError` naming the
        process that holds it. The lock is the operating system's (``flock``), so a killed
        driver releases it; the small lock file stays, to be reused.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + LOCK_SUFFIX)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise StoreLockedError(
                    f"{self.path} is being written by another lossval-odv run (pid {holder}); "
                    "wait for it to finish (a rerun then computes only what is missing), or "
                    "use another output directory."
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    def finished_keys(self) -> set[str]:
        """Keys of cells that have a row (ok, or failed with a method error)."""
        if not self.path.exists():
            return set()
        with closing(self._connect()) as conn:
            return {row[0] for row in conn.execute("SELECT key FROM cells")}

    def failed_errors(self, keys: Iterable[str]) -> dict[str, str | None]:
        """Error text of each failed row among ``keys``."""
        wanted = set(keys)
        if not self.path.exists() or not wanted:
            return {}
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT key, error FROM cells WHERE status = 'failed'")
            return {key: error for key, error in rows if key in wanted}

    def add(self, result: CellResult, *, config: str, attempts: int = 1) -> bool:
        """Insert one finished cell; returns False if its key was already stored."""
        cell = result.cell
        row = {
            "key": result.key,
            "config": config,
            "dataset": cell.dataset,
            "task": result.task,
            "noise": cell.noise,
            "rate": cell.rate,
            "run": cell.run,
            "method": cell.method,
            "evaluator": cell.evaluator,
            "params": json.dumps(cell.params, sort_keys=True),
            "data_seed": cell.data_seed,
            "method_seed": cell.method_seed,
            "status": result.status,
            "error": result.error,
            "f1": result.metrics.get("f1"),
            "auroc": result.metrics.get("auroc"),
            "auprc": result.metrics.get("auprc"),
            "seconds": result.seconds,
            "total_seconds": result.total_seconds,
            "device": result.device,
            "versions": json.dumps(result.versions, sort_keys=True),
            "curves": json.dumps(result.curves),
            "values_blob": _pack(result.values, "<f4"),
            "noisy_blob": _pack(result.noisy_indices, "<i4"),
            "attempts": attempts,
            "finished_at": time.time(),
        }
        columns = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        with closing(self._connect()) as conn, conn:
            cursor = conn.execute(
                f"INSERT OR IGNORE INTO cells ({columns}) VALUES ({marks})",
                [row[name] for name in COLUMNS],
            )
            return cursor.rowcount == 1

    def model_check_keys(self) -> set[str]:
        """Keys of the stored checks of the baselines' prediction model."""
        if not self.path.exists():
            return set()
        with closing(self._connect()) as conn:
            if not _has_checks(conn):
                return set()
            return {row[0] for row in conn.execute("SELECT key FROM model_checks")}

    def add_model_check(self, check: ModelCheck, diagnosis: dict, *, config: str) -> bool:
        """Insert one check's diagnosis; returns False if its key was already stored."""
        cell = check.cell
        row = {
            "key": check.key,
            "config": config,
            "dataset": cell.dataset,
            "task": check.task,
            "noise": cell.noise,
            "rate": cell.rate,
            "run": cell.run,
            "data_seed": cell.data_seed,
            "split": check.split_text,
            "training": check.training_text,
            "diagnosis": json.dumps(diagnosis, sort_keys=True),
            "finished_at": time.time(),
        }
        marks = ", ".join("?" for _ in CHECK_COLUMNS)
        with closing(self._connect()) as conn, conn:
            conn.execute(CHECK_SCHEMA)
            cursor = conn.execute(
                f"INSERT OR IGNORE INTO model_checks ({', '.join(CHECK_COLUMNS)}) VALUES ({marks})",
                [row[name] for name in CHECK_COLUMNS],
            )
            return cursor.rowcount == 1

    def model_checks_frame(self) -> pd.DataFrame:
        """The stored checks, their diagnosis (a dict) in column ``diagnosis``."""
        empty = pd.DataFrame(columns=list(CHECK_COLUMNS))
        if not self.path.exists():
            return empty
        with closing(self._connect()) as conn:
            if not _has_checks(conn):
                return empty
            frame = pd.read_sql_query("SELECT * FROM model_checks", conn)
        frame["diagnosis"] = [json.loads(d) for d in frame["diagnosis"]]
        return frame

    def merge_from(self, others: Iterable[str | Path]) -> int:
        """Copy rows of other stores (e.g. shards) that this one lacks, and their checks of the
        prediction model; returns how many rows of cells."""
        added = 0
        others = [Path(other) for other in others]
        for other in others:
            if not other.is_file():
                raise FileNotFoundError(f"no results store at {other}")
            verify_store(other)
        with closing(self._connect()) as conn:
            for other in others:
                conn.execute("ATTACH DATABASE ? AS other", (str(other),))
                with conn:
                    cursor = conn.execute("INSERT OR IGNORE INTO cells SELECT * FROM other.cells")
                    added += cursor.rowcount
                    if _has_checks(conn, "other"):
                        conn.execute(CHECK_SCHEMA)
                        conn.execute(
                            "INSERT OR IGNORE INTO model_checks SELECT * FROM other.model_checks"
                        )
                conn.execute("DETACH DATABASE other")
        return added

    def forget_failed(self, keys: Iterable[str]) -> int:
        """Delete the failed rows among ``keys`` so that a rerun computes those cells again;
        other rows are left alone. Returns how many were deleted."""
        keys = list(keys)
        if not self.path.exists() or not keys:
            return 0
        with closing(self._connect()) as conn, conn:
            return sum(
                conn.execute(
                    "DELETE FROM cells WHERE status = 'failed' AND key = ?", (key,)
                ).rowcount
                for key in keys
            )

    def frame(self, *, with_curves: bool = False, with_values: bool = False) -> pd.DataFrame:
        """All rows as a DataFrame; curves/values decoded on request."""
        columns = list(SUMMARY_COLUMNS)
        if with_curves:
            columns.append("curves")
        if with_values:
            columns += ["values_blob", "noisy_blob"]
        if not self.path.exists():
            return pd.DataFrame(columns=columns)
        with closing(self._connect()) as conn:
            frame = pd.read_sql_query(f"SELECT {', '.join(columns)} FROM cells", conn)
        if with_curves:
            frame["curves"] = [json.loads(c) if c else {} for c in frame["curves"]]
        if with_values:
            frame["values"] = [unpack(b) for b in frame.pop("values_blob")]
            frame["noisy"] = [unpack(b, "<i4") for b in frame.pop("noisy_blob")]
        return frame

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0])
