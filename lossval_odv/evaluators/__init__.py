"""Data evaluators that lossval-odv adds to OpenDataVal's registry: thin adapters over the
functional cores in :mod:`lossval_odv.core`.

Registry keys (``DataEvaluator.Evaluators``, lower-cased class names): ``"lossvalodv"``,
``"tracin"``, ``"losstrajectory"``, ``"cleanlabquality"``. Importing this package loads
nothing; :func:`register_evaluators` (run at the first ``import opendataval``, see
:mod:`lossval_odv.compat`) imports the adapters, whose classes register themselves.
"""

from __future__ import annotations

import importlib
from typing import Any

# class name -> module; OpenDataVal registers a DataEvaluator subclass when it is defined
ADAPTERS = {
    "CleanlabQuality": "lossval_odv.evaluators.cleanlab_eval",
    "LossTrajectory": "lossval_odv.evaluators.loss_trajectory",
    "LossValODV": "lossval_odv.evaluators.lossval",
    "TracIn": "lossval_odv.evaluators.tracin",
}
#: class name -> registry key (OpenDataVal's lower-cased class name)
KEYS = {name: name.lower() for name in ADAPTERS}


def register_evaluators() -> None:
    """Import every adapter module (idempotent): their classes enter the registry."""
    for module in dict.fromkeys(ADAPTERS.values()):
        importlib.import_module(module)


def __getattr__(name: str) -> Any:
    if name in ADAPTERS:
        return getattr(importlib.import_module(ADAPTERS[name]), name)
    raise AttributeError(f"module 'lossval_odv.evaluators' has no attribute {name!r}")


__all__ = [*ADAPTERS, "ADAPTERS", "KEYS", "register_evaluators"]
