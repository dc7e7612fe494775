"""Run tasks one after another in this process."""

from __future__ import annotations

from collections.abc import Iterator

from lossval_odv.cell import CellResult
from lossval_odv.tasks import Task, compute_task


class SerialBackend:
    def run(self, tasks: list[Task]) -> Iterator[list[CellResult]]:
        for task in tasks:
            yield compute_task(task)
