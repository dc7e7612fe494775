"""The task layer: LossVal cells grouped for the batched trainer give the single-cell
results; cells that cannot train together fall back, with a warning, to single runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tests.tiny_datasets  # noqa: F401  (tiny datasets in this process)
from lossval_odv.bench.cell import compute_cell
from lossval_odv.bench.config import parse_config
from lossval_odv.bench.grid import batch_group, expand, shard
from lossval_odv.bench.tasks import compute_task, plan_tasks
from tests.helpers import grid_config


def _cells(**overrides):
    config = grid_config(
        "tasks", noise_types=["label", "mixed"], noise_rates=[0.1, 0.2], **overrides
    )
    return expand(parse_config(config))


def test_plan_groups_lossval_cells_per_dataset_and_method_in_cell_order():
    cells = _cells()  # 2 datasets x 2 noise x 2 rates x 2 runs x (lossval, knn)
    tasks = plan_tasks(cells, batch_lossval=True)
    grouped = [t for t in tasks if len(t) > 1]
    assert len(grouped) == 2
    for task in grouped:
        assert len(task) == 8
        assert {(c.dataset, c.method) for c in task} == {(task[0].dataset, "lossval")}
        assert len({c.key for c in task}) == 8
    assert all(t[0].evaluator == "knnshapley" for t in tasks if len(t) == 1)
    assert sorted(c.key for t in tasks for c in t) == sorted(c.key for c in cells)
    first_positions = [cells.index(t[0]) for t in tasks]
    assert first_positions == sorted(first_positions)


def test_plan_caps_group_size_and_can_be_switched_off():
    cells = _cells()
    sizes = sorted(len(t) for t in plan_tasks(cells, batch_lossval=True, max_batch_runs=3))
    assert sizes.count(3) == 4 and sizes.count(2) == 2  # 8 = 3 + 3 + 2 per dataset
    assert all(len(t) == 1 for t in plan_tasks(cells, batch_lossval=False))
    with pytest.raises(ValueError, match="max_batch_runs"):
        plan_tasks(cells, batch_lossval=True, max_batch_runs=0)


# Batched and single runs are bit for bit equal on one CPU thread (tests/test_batched.py),
# so are the 2-means F1, the AUCs and the experiments' curves.
@pytest.mark.parametrize("dataset", ["tiny_clf", "tiny_reg"])
def test_grouped_task_equals_cells_computed_alone(dataset):
    cells = [c for c in _cells(datasets=[dataset]) if c.evaluator == "lossvalodv"]
    (task,) = plan_tasks(cells, batch_lossval=True)
    together = compute_task(task)
    assert [r.key for r in together] == [c.key for c in task]
    for result, cell in zip(together, task, strict=True):
        alone = compute_cell(cell)
        assert result.status == alone.status == "ok", result.error
        np.testing.assert_array_equal(result.values, alone.values)
        np.testing.assert_array_equal(result.noisy_indices, alone.noisy_indices)
        assert result.metrics == alone.metrics
        # same evaluation models (torch's global generator seeded alike), same removals
        assert result.curves == alone.curves
        assert 0 < result.seconds < result.total_seconds
    assert len({r.values.tobytes() for r in together}) == len(task)  # runs differ


def test_cells_that_cannot_train_together_fall_back_to_single_runs():
    cells = [c for c in _cells(datasets=["tiny_clf"], runs=1) if c.evaluator == "lossvalodv"]
    odd = dataclasses.replace(cells[1], split=(80, 20, 60))  # another train size
    task = (cells[0], odd)
    with pytest.warns(UserWarning, match="batched training of 2 lossvalodv cells .* one by one"):
        results = compute_task(task)
    for result, cell in zip(results, task, strict=True):
        alone = compute_cell(cell)
        assert result.status == "ok"
        np.testing.assert_array_equal(result.values, alone.values)
    assert len(results[1].values) == 80


def test_shards_keep_batch_groups_whole():
    cells = _cells(runs=3)
    owners: dict[tuple, set[int]] = {}
    seen = []
    for index in range(3):
        part = shard(cells, index, 3, keep_groups=True)
        seen += part
        for cell in part:
            if batch_group(cell) is not None:
                owners.setdefault(batch_group(cell), set()).add(index)
    assert sorted(c.key for c in seen) == sorted(c.key for c in cells)
    assert len(owners) == 2 and all(len(shards) == 1 for shards in owners.values())
    # without keep_groups the LossVal cells of a dataset spread over the shards
    spread = {i for i in range(3) for c in shard(cells, i, 3) if c.evaluator == "lossvalodv"}
    assert spread == {0, 1, 2}
