"""A cell's evaluator: the registry's class, seeded by the cell, with its device and sampler."""

from __future__ import annotations

import numpy as np
import torch

from lossval_odv.bench.grid import Cell
from lossval_odv.evaluators.capabilities import capabilities_of

from opendataval.dataval import DataEvaluator
from opendataval.dataval.margcontrib.sampler import GrTMCSampler, MonteCarloSampler, TMCSampler

SAMPLERS = {"grtmc": GrTMCSampler, "tmc": TMCSampler, "montecarlo": MonteCarloSampler}
DEVICE_TYPES = {"str": str, "torch.device": torch.device}


def implementation(evaluator: str) -> str:
    """Which package implements a registry key: ``"opendataval"`` for OpenDataVal's own
    evaluators, ``"lossval_odv"`` for ours (LossVal, the fast baselines, ...), else the
    plugin's top-level package. Stored with every cell, since e.g. ``dataoob`` and
    ``fastdataoob`` estimate the same values by different code."""
    cls = DataEvaluator.Evaluators.get(evaluator)
    return "unregistered" if cls is None else cls.__module__.split(".")[0]


def build_evaluator(cell: Cell, device: torch.device) -> DataEvaluator:
    """The cell's evaluator from the registry, seeded by the cell.

    A ``sampler`` parameter given as a mapping (``{kind: grtmc|tmc|montecarlo, ...}``)
    becomes that OpenDataVal sampler (for DataShapley / BetaShapley budgets). An evaluator
    that takes a device (its ``device_argument`` capability) gets the cell's, unless the
    params name one.
    """
    cls = DataEvaluator.Evaluators[cell.evaluator]
    params = dict(cell.params)
    if isinstance(params.get("sampler"), dict):
        spec = dict(params["sampler"])
        kind = spec.pop("kind", "grtmc")
        if kind not in SAMPLERS:
            raise ValueError(f"unknown sampler kind {kind!r}; allowed: {', '.join(SAMPLERS)}")
        params["sampler"] = SAMPLERS[kind](
            random_state=np.random.RandomState(cell.method_seed), **spec
        )
    device_argument = capabilities_of(cell.evaluator).device_argument
    if device_argument is not None:
        params["device"] = DEVICE_TYPES[device_argument](params.get("device", device))
    return cls(random_state=np.random.RandomState(cell.method_seed), **params)
