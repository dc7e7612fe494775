"""The engine-agnostic task layer: group cells into tasks and compute a task.

A task is a tuple of cells computed together in one worker. Most tasks hold one cell;
cells of an evaluator that can train several cells together (its ``trains_together``
capability, e.g. LossVal) on the same dataset with the same method (so the same settings
and data shapes; their noise, rate and run differ) form one task, trained at once by the
evaluator's ``train_together``, each cell getting the values it would get alone. A task
is a pure, picklable value: any backend can ship it to any worker.
"""

from __future__ import annotations

import time
import warnings

from lossval_odv.bench.cell import Valuation, cell_device, compute_cell, make_fetcher
from lossval_odv.bench.config import MAX_BATCH_RUNS
from lossval_odv.bench.evaluator_factory import build_evaluator
from lossval_odv.bench.grid import Cell, batch_group
from lossval_odv.bench.records import CellResult

Task = tuple[Cell, ...]


def plan_tasks(
    cells: list[Cell], *, batch_lossval: bool = False, max_batch_runs: int = MAX_BATCH_RUNS
) -> list[Task]:
    """One task per cell, or cells that train together grouped (at most ``max_batch_runs``
    per task).

    Tasks keep the order of the cells: a group takes the place of its first cell.
    """
    if not batch_lossval:
        return [(cell,) for cell in cells]
    if max_batch_runs < 1:
        raise ValueError(f"max_batch_runs must be >= 1, got {max_batch_runs}")
    slots: list[list[Cell]] = []
    open_groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        key = batch_group(cell)
        if key is None:
            slots.append([cell])
            continue
        group = open_groups.get(key)
        if group is None or len(group) == max_batch_runs:
            group = open_groups[key] = []
            slots.append(group)
        group.append(cell)
    return [tuple(slot) for slot in slots]


def compute_task(task: Task) -> list[CellResult]:
    """Compute every cell of a task (in one process); a group of cells is trained together
    by their evaluator, or cell by cell if the cells turn out not to fit together."""
    if len(task) > 1:
        valuations = _batched_valuations(task)
        if valuations is not None:
            return [
                compute_cell(cell, precomputed=valuation)
                for cell, valuation in zip(task, valuations, strict=True)
            ]
    return [compute_cell(cell) for cell in task]


def _batched_valuations(task: Task) -> list[Valuation] | None:
    """The values of every cell from one ``train_together`` run; None (with a warning) if
    the cells cannot train together, e.g. different data shapes or a failing input check."""
    try:
        fetchers, evaluators = [], []
        for cell in task:
            fetcher = make_fetcher(cell)
            x_train, y_train, x_valid, y_valid, *_ = fetcher.datapoints
            evaluator = build_evaluator(cell, cell_device(cell))
            evaluators.append(evaluator.input_data(x_train, y_train, x_valid, y_valid))
            fetchers.append(fetcher)
        start = time.perf_counter()
        type(evaluators[0]).train_together(evaluators)
        share = (time.perf_counter() - start) / len(task)
    except Exception as exc:  # each cell then runs (and records its own error) alone
        warnings.warn(
            f"batched training of {len(task)} {task[0].evaluator} cells ({task[0].describe()}, "
            f"...) failed "
            f"({type(exc).__name__}: {exc}); training them one by one",
            stacklevel=2,
        )
        return None
    return [
        Valuation(e.evaluate_data_values(), share, fetcher)
        for e, fetcher in zip(evaluators, fetchers, strict=True)
    ]
