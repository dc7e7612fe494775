"""Run tasks one after another in this process."""

from __future__ import annotations

from collections.abc import Iterator

from lossval_odv.bench.cell import failed_result
from lossval_odv.bench.records import CellResult
from lossval_odv.bench.tasks import Task, compute_task


class SerialBackend:
    def run(self, tasks: list[Task]) -> Iterator[list[CellResult]]:
        for task in tasks:
            try:
                results = compute_task(task)
            except Exception as exc:  # outside the cells' own guard; as the pool does
                results = [failed_result(c, f"{type(exc).__name__}: {exc}") for c in task]
            yield results
