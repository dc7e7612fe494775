"""The engine-agnostic task layer: group cells into tasks and compute a task.

A task is a tuple of cells computed together in one worker. Most tasks hold one cell;
LossVal cells that differ only in their run (same dataset, noise, rate, method) can
form one task so that a batched trainer may train them at once. A task is a pure,
picklable value: any backend can ship it to any worker.
"""

from __future__ import annotations

from collections import defaultdict

from lossval_odv.cell import CellResult, compute_cell
from lossval_odv.grid import Cell

Task = tuple[Cell, ...]


def plan_tasks(cells: list[Cell], *, batch_lossval: bool = False) -> list[Task]:
    """One task per cell, or LossVal cells grouped across runs when ``batch_lossval``."""
    if not batch_lossval:
        return [(cell,) for cell in cells]
    groups: dict[tuple, list[Cell]] = defaultdict(list)
    tasks: list[Task] = []
    for cell in cells:
        if cell.evaluator == "lossvalodv":
            groups[(cell.dataset, cell.noise, cell.rate, cell.method)].append(cell)
        else:
            tasks.append((cell,))
    return [tuple(group) for group in groups.values()] + tasks


def compute_task(task: Task) -> list[CellResult]:
    """Compute every cell of a task (in one process)."""
    return [compute_cell(cell) for cell in task]
