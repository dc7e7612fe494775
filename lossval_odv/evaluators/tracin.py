"""TracIn as an OpenDataVal evaluator: a thin adapter over :mod:`lossval_odv.core.tracin`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from lossval_odv.core.runtime import RandomStateLike
from lossval_odv.core.tracin import Mode, TracInResult, tracin_values
from lossval_odv.evaluators._adapter import OwnNetworkAdapter

from opendataval.dataval.api import DataEvaluator, ModelLessMixin

logger = logging.getLogger(__name__)


class TracIn(OwnNetworkAdapter, ModelLessMixin, DataEvaluator):
    """TracInCP (Pruthi et al., 2020) on the paper's MLP; registry key ``"tracin"``.

    Parameters
    ----------
    mode : {"self", "validation"}
        ``"self"``: value = - sum_k lr_k ||grad l(w_k, z_i)||^2 (negative self-influence);
        ``"validation"``: value = sum_k lr_k <grad l(w_k, z_i), sum_v grad l(w_k, z_v)>.
    epochs : int
        Epochs of the single SGD training run, 5.
    lr : float
        Constant SGD step size, also the checkpoint weight, 0.1.
    batch_size : int
        Shuffled batch size, 32.
    n_checkpoints : int
        Epoch-end checkpoints, evenly spread over the run, 5 (<= epochs).
    task : {"auto", "classification", "regression"}
        "auto" infers it from the labels: one-hot means classification.
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    random_state : int, RandomState or None
        Seeds the network's initialisation and the shuffling.

    Notes
    -----
    TracIn trains its own network; ``train_kwargs`` forwarded by an ``ExperimentMediator``
    are logged, never applied.
    """

    def __init__(
        self,
        mode: Mode = "self",
        epochs: int = 5,
        lr: float = 0.1,
        batch_size: int = 32,
        n_checkpoints: int = 5,
        task: str = "auto",
        device: str = "auto",
        random_state: RandomStateLike = None,
    ) -> None:
        self.mode = mode
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.n_checkpoints = n_checkpoints
        self.task = task
        self.device = device
        self.random_state = random_state

    @property
    def needs_validation(self) -> bool:  # type: ignore[override]
        return self.mode == "validation"

    def train_data_values(self, *args: Any, **kwargs: Any) -> TracIn:
        """Train once with SGD and compute the TracIn values."""
        settings = f"SGD, epochs={self.epochs}, lr={self.lr}, batch_size={self.batch_size}"
        task = self._prepare(args, kwargs, settings, logger)
        self.result_: TracInResult = tracin_values(
            self.x_train,
            self.y_train,
            self.x_valid,
            self.y_valid,
            task=task,
            mode=self.mode,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            n_checkpoints=self.n_checkpoints,
            random_state=self.random_state,
            device=self.device,
        )
        return self

    def evaluate_data_values(self) -> np.ndarray:
        """TracIn values, one per training point (higher = more valuable)."""
        return self._values()
