"""Data evaluators that lossval-odv adds to OpenDataVal's registry.

Registry keys (``DataEvaluator.Evaluators``, lower-cased class names): ``"lossvalodv"``,
``"tracin"``, ``"losstrajectory"``, ``"cleanlabquality"``, and the fast (batched) retraining
baselines ``"fastdataoob"``, ``"fastdatabanzhaf"``, ``"fastame"``, ``"fastinfluencesubsample"``,
``"fastleaveoneout"`` (:mod:`lossval_odv.evaluators.fast_baselines`),
``"fastdatashapley"``, ``"fastbetashapley"`` (:mod:`lossval_odv.evaluators.fast_shapley`).
"""

from lossval_odv.evaluators.cleanlab_eval import CleanlabQuality
from lossval_odv.evaluators.fast_baselines import (
    FastAME,
    FastDataBanzhaf,
    FastDataOob,
    FastInfluenceSubsample,
    FastLeaveOneOut,
)
from lossval_odv.evaluators.fast_shapley import FastBetaShapley, FastDataShapley
from lossval_odv.evaluators.loss_trajectory import LossTrajectory
from lossval_odv.evaluators.lossval import LossValODV
from lossval_odv.evaluators.tracin import TracIn

__all__ = [
    "CleanlabQuality",
    "FastAME",
    "FastBetaShapley",
    "FastDataBanzhaf",
    "FastDataOob",
    "FastDataShapley",
    "FastInfluenceSubsample",
    "FastLeaveOneOut",
    "LossTrajectory",
    "LossValODV",
    "TracIn",
]
