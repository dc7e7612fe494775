"""The results store: embedded SQLite, one row per finished cell, written atomically.

A row is inserted in a single transaction only once its cell is complete, keyed by the
cell's content hash, so a killed run loses at most the cells in flight and a rerun
skips every finished cell. Data values are kept as compressed float32 blobs.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd

from lossval_odv.bench.records import CellResult

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
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cells (\n"
    + ",\n".join(f"    {name} {kind}" for name, kind in COLUMNS.items())
    + "\n)"
)
# decoded on request only: the big ones
DETAIL_COLUMNS = ("curves", "values_blob", "noisy_blob")
SUMMARY_COLUMNS = [name for name in COLUMNS if name not in DETAIL_COLUMNS]


def _pack(array: np.ndarray | None, dtype: str) -> bytes | None:
    if array is None:
        return None
    return zlib.compress(np.ascontiguousarray(array, dtype=dtype).tobytes())


def unpack(blob: bytes | None, dtype: str = "<f4") -> np.ndarray | None:
    """Decode a values (``<f4``) or noisy-indices (``<i4``) blob."""
    if blob is None:
        return None
    return np.frombuffer(zlib.decompress(blob), dtype=dtype)


class ResultStore:
    """A results database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(SCHEMA)
        return conn

    def finished_keys(self) -> set[str]:
        """Keys of cells that have a row (ok or failed after its retries)."""
        if not self.path.exists():
            return set()
        with closing(self._connect()) as conn:
            return {row[0] for row in conn.execute("SELECT key FROM cells")}

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

    def merge_from(self, others: Iterable[str | Path]) -> int:
        """Copy rows of other stores (e.g. shards) that this one lacks; returns how many."""
        added = 0
        with closing(self._connect()) as conn:
            for other in others:
                if not Path(other).is_file():
                    raise FileNotFoundError(f"no results store at {other}")
                conn.execute("ATTACH DATABASE ? AS other", (str(other),))
                with conn:
                    cursor = conn.execute("INSERT OR IGNORE INTO cells SELECT * FROM other.cells")
                    added += cursor.rowcount
                conn.execute("DETACH DATABASE other")
        return added

    def forget_failed(self) -> int:
        """Delete failed rows so that a rerun computes those cells again."""
        if not self.path.exists():
            return 0
        with closing(self._connect()) as conn, conn:
            return conn.execute("DELETE FROM cells WHERE status = 'failed'").rowcount

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
