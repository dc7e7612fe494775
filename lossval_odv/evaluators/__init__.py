"""Data evaluators that lossval-odv adds to OpenDataVal's registry.

Registry keys (``DataEvaluator.Evaluators``, lower-cased class names): ``"lossvalodv"``,
``"tracin"``, ``"losstrajectory"``, ``"cleanlabquality"``,
``"fastdatashapley"``, ``"fastbetashapley"``.
"""

from lossval_odv.evaluators.cleanlab_eval import CleanlabQuality
from lossval_odv.evaluators.fast_shapley import FastBetaShapley, FastDataShapley
from lossval_odv.evaluators.loss_trajectory import LossTrajectory
from lossval_odv.evaluators.lossval import LossValODV
from lossval_odv.evaluators.tracin import TracIn

__all__ = [
    "CleanlabQuality",
    "FastBetaShapley",
    "FastDataShapley",
    "LossTrajectory",
    "LossValODV",
    "TracIn",
]
