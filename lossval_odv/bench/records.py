"""The result record of a cell: what the store writes as one row. Light on purpose (the
store and the backends import it without torch, scikit-learn or OpenDataVal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossval_odv.bench.grid import Cell


@dataclass
class CellResult:
    """What a cell produces; the store writes it as one row."""

    key: str
    cell: Cell
    status: str  # "ok" or "failed"
    task: str
    values: np.ndarray | None = None
    noisy_indices: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the valuation alone
    total_seconds: float = 0.0
    device: str = "cpu"
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
