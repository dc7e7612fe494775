"""The library without OpenDataVal: LossVal (loss, networks, engine, trainer), input checks,
and the functional cores of TracIn, loss trajectory and cleanlab (submodules)."""

from lossval_odv.core.losses import lossval_loss, per_sample_loss
from lossval_odv.core.mlp import Task, make_mlp
from lossval_odv.core.runtime import resolve_device, to_seed
from lossval_odv.core.trainer import LossValResult, fit_lossval

__all__ = [
    "LossValResult",
    "Task",
    "fit_lossval",
    "lossval_loss",
    "make_mlp",
    "per_sample_loss",
    "resolve_device",
    "to_seed",
]
