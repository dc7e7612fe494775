"""What an evaluator can do, declared once on its class and asked by the benchmark.

An evaluator class sets ``capabilities = Capabilities(...)``; the benchmark reads it with
:func:`capabilities_of` (grouping cells into tasks, passing the cell's device, asking Ray
for a GPU share) instead of knowing evaluators by name. OpenDataVal's own evaluators
cannot declare anything, so the few facts the benchmark needs about them are listed in
:data:`UPSTREAM_CAPABILITIES`. Light on purpose: importing this module loads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

DeviceArgument = Literal["str", "torch.device"]


@dataclass(frozen=True)
class Capabilities:
    """What the benchmark may ask of an evaluator class.

    Attributes
    ----------
    trains_together : bool
        The class has ``train_together(evaluators)``: several evaluators with the same
        settings and data shapes (different data and seeds) train in one batched run,
        each getting the values it gets alone.
    gpu_share : float
        Fraction of a GPU one task of this evaluator needs (Ray's ``num_gpus``) when the
        config does not say.
    device_argument : {"str", "torch.device"} or None
        The constructor takes ``device`` as this type and the cell's device is passed
        unless the config's params name one; None: the evaluator chooses its device.
    trains_prediction_model : bool
        The values come from fitting the prediction model ``train`` receives (the
        baselines' MLP), so they are only as informative as that model: the benchmark
        checks whether it learns (:mod:`lossval_odv.bench.model_checks`) and lets a config
        change its training (a method's ``train``).
    """

    trains_together: bool = False
    gpu_share: float = 0.5
    device_argument: DeviceArgument | None = None
    trains_prediction_model: bool = False


#: OpenDataVal evaluators that take a ``torch.device`` (and default to the CPU)
UPSTREAM_CAPABILITIES = {
    "lavaevaluator": Capabilities(device_argument="torch.device"),
    "dvrl": Capabilities(device_argument="torch.device"),
}
#: OpenDataVal evaluators that need a model (not ``ModelLessMixin``) but never fit it
UPSTREAM_MODEL_UNUSED = frozenset({"randomevaluator"})


def capabilities_of(evaluator: str) -> Capabilities:
    """The capabilities of the evaluator registered under ``evaluator`` (a registry key)."""
    from opendataval.dataval import DataEvaluator, ModelLessMixin

    cls = DataEvaluator.Evaluators[evaluator]
    declared = getattr(cls, "capabilities", None)
    if isinstance(declared, Capabilities):
        return declared
    fits_model = not issubclass(cls, ModelLessMixin) and evaluator not in UPSTREAM_MODEL_UNUSED
    return replace(
        UPSTREAM_CAPABILITIES.get(evaluator, Capabilities()), trains_prediction_model=fits_model
    )
