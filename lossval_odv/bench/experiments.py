"""The experiments run on a cell's data values: plain functions in a registry.

Like OpenDataVal's ``exper_methods``, an experiment is a function of the cell's values
and data; here it takes an :class:`ExperimentInput` and returns an :class:`Outcome`
(scalar metrics, stored in their own columns, and curves, stored as JSON). The cell runs
every experiment of :data:`EXPERIMENTS` whose switch in the config's ``experiments`` is
on, in the registry's order. To add one: write the function, register it here, and add
its switch to :class:`lossval_odv.bench.config.ExperimentsConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lossval_odv import compat
from lossval_odv.bench.grid import Cell
from lossval_odv.bench.metrics import detection_metrics
from lossval_odv.bench.models import evaluation_model, removal_metric

from opendataval.dataloader import DataFetcher
from opendataval.experiment.exper_methods import discover_corrupted_sample, noisy_detection


@dataclass(frozen=True)
class ExperimentInput:
    """What an experiment sees: the cell, its values (through ``evaluator``, which
    OpenDataVal's experiment functions take), its data and the planted noisy points."""

    cell: Cell
    evaluator: Any  # has ``data_values``
    fetcher: DataFetcher
    task: str
    n_features: int
    n_classes: int
    values: np.ndarray
    noisy: np.ndarray


@dataclass
class Outcome:
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)


Experiment = Callable[[ExperimentInput], Outcome]


def _as_float(value: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        return [_as_float(v) for v in value]
    return float(value)


def detection(run: ExperimentInput) -> Outcome:
    """Noisy-point detection: 2-means F1 (OpenDataVal), AUROC and AUPRC."""
    metrics = {"f1": float(noisy_detection(run.evaluator, run.fetcher)["kmeans_f1"])}
    metrics.update(detection_metrics(run.values, run.noisy))
    return Outcome(metrics=metrics)


def discovery(run: ExperimentInput) -> Outcome:
    """Corruption discovery: the share of noisy points found in the lowest values."""
    found = discover_corrupted_sample(run.evaluator, run.fetcher)
    curve = {"axis": _as_float(found["axis"]), "found": _as_float(found["corrupt_found"])}
    return Outcome(curves={"discovery": curve})


def removal(run: ExperimentInput) -> Outcome:
    """Point removal: test performance after removing the lowest / highest values, with
    each of the config's evaluation models."""
    outcome = Outcome()
    metric, metric_name = removal_metric(run.task)
    for kind in run.cell.experiments["removal_models"]:
        model, train_kwargs = evaluation_model(kind, run.task, run.n_features, run.n_classes)
        torch.manual_seed(run.cell.method_seed)
        curves = compat.remove_high_low(
            run.evaluator,
            run.fetcher,
            model=model,
            percentile=run.cell.experiments["removal_percentile"],
            metric=metric,
            train_kwargs=train_kwargs,
        )
        low = next(v for k, v in curves.items() if k.startswith("remove_least"))
        high = next(v for k, v in curves.items() if k.startswith("remove_most"))
        outcome.curves[f"removal_{kind}"] = {
            "axis": _as_float(curves["axis"]),
            "remove_low": _as_float(low),
            "remove_high": _as_float(high),
            "metric": metric_name,
        }
    return outcome


#: name (the config's switch) -> experiment, in the order they run
EXPERIMENTS: dict[str, Experiment] = {
    "detection": detection,
    "discovery": discovery,
    "removal": removal,
}
