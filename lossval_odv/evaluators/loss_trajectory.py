"""Loss-trajectory values as an OpenDataVal evaluator: a thin adapter over
:mod:`lossval_odv.core.loss_trajectory`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from lossval_odv.core.loss_trajectory import LossTrajectoryResult, loss_trajectory_values
from lossval_odv.core.runtime import RandomStateLike
from lossval_odv.evaluators._adapter import OwnNetworkAdapter

from opendataval.dataval.api import DataEvaluator, ModelLessMixin

logger = logging.getLogger(__name__)


class LossTrajectory(OwnNetworkAdapter, ModelLessMixin, DataEvaluator):
    """Negative mean training loss over one run; registry key ``"losstrajectory"``.

    Parameters
    ----------
    epochs : int
        Training epochs, 5.
    lr : float
        Adam learning rate, 0.01.
    batch_size : int
        Shuffled batch size, 32.
    task : {"auto", "classification", "regression"}
        "auto" infers it from the labels: one-hot means classification.
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    random_state : int, RandomState or None
        Seeds the network's initialisation and the shuffling.

    Notes
    -----
    Needs no validation set. Forwarded ``train_kwargs`` are logged, never applied.
    """

    def __init__(
        self,
        epochs: int = 5,
        lr: float = 0.01,
        batch_size: int = 32,
        task: str = "auto",
        device: str = "auto",
        random_state: RandomStateLike = None,
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.task = task
        self.device = device
        self.random_state = random_state

    def train_data_values(self, *args: Any, **kwargs: Any) -> LossTrajectory:
        """Train once and average every sample's loss over the run."""
        settings = f"Adam, epochs={self.epochs}, lr={self.lr}, batch_size={self.batch_size}"
        task = self._prepare(args, kwargs, settings, logger)
        self.result_: LossTrajectoryResult = loss_trajectory_values(
            self.x_train,
            self.y_train,
            task=task,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            random_state=self.random_state,
            device=self.device,
        )
        return self

    def evaluate_data_values(self) -> np.ndarray:
        """Negative mean training losses (higher = more valuable)."""
        return self._values()
