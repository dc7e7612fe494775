"""lossval-odv: LossVal data valuation as an OpenDataVal plugin.

``import lossval_odv`` is light: it loads neither OpenDataVal nor the benchmark. It
arranges (:func:`lossval_odv.compat.integrate_on_import`) that the first
``import opendataval`` installs the compatibility layer before OpenDataVal loads and then
registers ``LossValODV`` and the other evaluators in ``DataEvaluator.Evaluators``, the
paper's twelve datasets in ``Register.Datasets`` and the ``$LOSSVAL_ODV_PLUGINS`` modules.
``LossValODV`` and ``fit_lossval`` are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from lossval_odv import compat

__version__ = "0.1.0"

compat.integrate_on_import()

_LAZY = {"LossValODV": "lossval_odv.evaluators", "fit_lossval": "lossval_odv.core"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lossval_odv' has no attribute {name!r}")


__all__ = ["LossValODV", "__version__", "compat", "fit_lossval"]
