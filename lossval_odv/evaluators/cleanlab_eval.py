"""cleanlab's label-quality scores as an OpenDataVal evaluator: a thin adapter over
:mod:`lossval_odv.core.cleanlab_quality`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from lossval_odv.core.cleanlab_quality import CleanlabResult, cleanlab_values
from lossval_odv.core.runtime import RandomStateLike
from lossval_odv.evaluators._adapter import OwnNetworkAdapter

from opendataval.dataval.api import DataEvaluator, ModelLessMixin

logger = logging.getLogger(__name__)


class CleanlabQuality(OwnNetworkAdapter, ModelLessMixin, DataEvaluator):
    """cleanlab label-quality scores; registry key ``"cleanlabquality"``.

    Parameters
    ----------
    n_folds : int
        Folds of the out-of-fold predictions, 5.
    method : str, optional
        cleanlab's scoring method; None takes cleanlab's default.
    epochs, lr, batch_size
        Each fold's MLP: Adam, 5 epochs, lr 0.01, batch 32 (the paper's settings).
    task : {"auto", "classification", "regression"}
        "auto" infers it from the labels: one-hot means classification.
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    random_state : int, RandomState or None
        Seeds the folds, the networks' initialisation and the shuffling.

    Notes
    -----
    Needs no validation set. Forwarded ``train_kwargs`` are logged, never applied.
    """

    def __init__(
        self,
        n_folds: int = 5,
        method: str | None = None,
        epochs: int = 5,
        lr: float = 0.01,
        batch_size: int = 32,
        task: str = "auto",
        device: str = "auto",
        random_state: RandomStateLike = None,
    ) -> None:
        self.n_folds = n_folds
        self.method = method
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.task = task
        self.device = device
        self.random_state = random_state

    def train_data_values(self, *args: Any, **kwargs: Any) -> CleanlabQuality:
        """Fit the K fold models and score every training label with cleanlab."""
        settings = (
            f"{self.n_folds} folds of Adam, epochs={self.epochs}, lr={self.lr}, "
            f"batch_size={self.batch_size}"
        )
        task = self._prepare(args, kwargs, settings, logger)
        self.result_: CleanlabResult = cleanlab_values(
            self.x_train,
            self.y_train,
            task=task,
            n_folds=self.n_folds,
            method=self.method,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            random_state=self.random_state,
            device=self.device,
        )
        return self

    def evaluate_data_values(self) -> np.ndarray:
        """cleanlab's label-quality scores (higher = more valuable)."""
        return self._values()
