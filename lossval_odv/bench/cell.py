"""One cell: fetch -> split -> noise -> data values -> experiments -> a result record.

Pure with respect to its input: the same :class:`~lossval_odv.bench.grid.Cell` gives the
same record on the same device type, whichever process or machine computes it. The jobs
around it have their own modules: the record (:mod:`.records`), the models
(:mod:`.models`), the evaluator (:mod:`.evaluator_factory`), the experiments
(:mod:`.experiments`).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from lossval_odv import compat
from lossval_odv.bench.evaluator_factory import build_evaluator, implementation
from lossval_odv.bench.experiments import EXPERIMENTS, ExperimentInput
from lossval_odv.bench.grid import Cell
from lossval_odv.bench.models import baseline_training, prediction_model
from lossval_odv.bench.noise import NOISE_FUNCTIONS
from lossval_odv.bench.records import CellResult
from lossval_odv.bench.versions import versions
from lossval_odv.datasets.register import task_of
from lossval_odv.datasets.tables import TableSource

from opendataval.dataloader import DataFetcher
from opendataval.metrics import Metrics


def register_table(cell: Cell) -> None:
    """Register the cell's file or OpenML dataset in this process (a worker's first)."""
    if cell.table is not None:
        from lossval_odv.datasets.tables import register_table as register

        register(cell.table)


@lru_cache(maxsize=4)
def _fetch_cached(
    dataset: str,
    split: tuple[int, int, int],
    seed: int,
    noise: str,
    rate: float,
    table: TableSource | None,  # in the cache key only: another file content, another split
):
    train, valid, test = split
    return DataFetcher.setup(
        dataset_name=dataset,
        train_count=train,
        valid_count=valid,
        test_count=test,
        random_state=np.random.RandomState(seed),
        add_noise=NOISE_FUNCTIONS[noise],
        noise_kwargs={"noise_rate": rate},
    )


def make_fetcher(cell: Cell) -> DataFetcher:
    """The cell's split with its noise; shared by all methods of a run in one process."""
    if cell.data_dir is not None:
        from lossval_odv.datasets import set_data_dir

        set_data_dir(cell.data_dir)
    register_table(cell)
    return _fetch_cached(
        cell.dataset, cell.split, cell.data_seed, cell.noise, cell.rate, cell.table
    )


@dataclass(frozen=True)
class Valuation:
    """Data values computed outside the cell, e.g. by the batched LossVal trainer, and
    the cell's data they were computed on (the experiments reuse it)."""

    values: np.ndarray
    seconds: float
    fetcher: DataFetcher


@dataclass(frozen=True)
class _ValuesOnly:
    """What OpenDataVal's experiment functions need of an evaluator: its values."""

    data_values: np.ndarray


def cell_device(cell: Cell) -> torch.device:
    """The device a cell computes on: its own, with "auto" meaning CUDA when present."""
    if cell.device != "auto":
        return torch.device(cell.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def compute_cell(cell: Cell, *, precomputed: Valuation | None = None) -> CellResult:
    """Compute one cell; a failing evaluator gives a ``failed`` result with its error.

    With ``precomputed`` values the valuation step is skipped and only the experiments
    run (the values must come from this cell's data and seed).
    """
    start = time.perf_counter()
    device = cell_device(cell)
    register_table(cell)
    task = task_of(cell.dataset)
    result = CellResult(
        key=cell.key,
        cell=cell,
        status="failed",
        task=task,
        device=str(device),
        versions=_provenance(cell),
    )
    try:
        with compat.quiet_upstream():
            _value_and_evaluate(cell, device, result, precomputed)
        result.status = "ok"
    except Exception as exc:  # recorded, not fatal to the grid
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    result.total_seconds = time.perf_counter() - start
    if precomputed is not None:  # its share of the batched valuation ran before this call
        result.total_seconds += precomputed.seconds
    return result


def _value_and_evaluate(
    cell: Cell, device: torch.device, result: CellResult, precomputed: Valuation | None
) -> None:
    fetcher = make_fetcher(cell) if precomputed is None else precomputed.fetcher
    x_train, *_ = fetcher.datapoints
    task = result.task
    n_features = int(np.prod(fetcher.covar_dim))
    n_classes = int(fetcher.label_dim[0]) if task == "classification" else 1
    evaluator = build_evaluator(cell, device) if precomputed is None else None
    # Baselines and the experiments' models draw from torch's global generator. The
    # prediction model is drawn in both branches (LossVal's trainers leave the generator
    # untouched), so the experiments of precomputed values see the same generator state.
    torch.manual_seed(cell.method_seed)
    model = prediction_model(task, n_features, n_classes, device)
    if evaluator is not None:
        t0 = time.perf_counter()
        metric = None if cell.metric is None else Metrics(cell.metric)  # None: upstream's
        evaluator.train(fetcher, model, metric, **baseline_training(task, cell.train))
        values = np.asarray(evaluator.data_values, dtype=np.float64).reshape(-1)
        result.seconds = time.perf_counter() - t0
    else:
        values, result.seconds = precomputed.values, precomputed.seconds
        evaluator = _ValuesOnly(values)
    if len(values) != len(x_train):
        raise ValueError(
            f"{cell.evaluator} returned {len(values)} values for {len(x_train)} points"
        )
    result.values = values
    result.noisy_indices = np.asarray(fetcher.noisy_train_indices, dtype=np.int64)
    run = ExperimentInput(
        cell=cell,
        evaluator=evaluator,
        fetcher=fetcher,
        task=task,
        n_features=n_features,
        n_classes=n_classes,
        values=values,
        noisy=result.noisy_indices,
    )
    for name, experiment in EXPERIMENTS.items():
        if cell.experiments[name]:
            outcome = experiment(run)
            result.metrics.update(outcome.metrics)
            result.curves.update(outcome.curves)


def _provenance(cell: Cell) -> dict[str, str]:
    """The library versions and the package that implements the cell's evaluator."""
    return {**versions(), "implementation": implementation(cell.evaluator)}


def failed_result(cell: Cell, reason: str) -> CellResult:
    """The record of a cell that could not be computed at all (e.g. its worker died)."""
    return CellResult(
        key=cell.key,
        cell=cell,
        status="failed",
        task=task_of(cell.dataset),
        error=reason,
        versions=_provenance(cell),
    )
