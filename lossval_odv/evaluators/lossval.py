"""LossVal as an OpenDataVal ``DataEvaluator``: a thin adapter over ``core.fit_lossval``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from lossval_odv.core.batched import fit_lossval_batched
from lossval_odv.core.runtime import RandomStateLike
from lossval_odv.core.trainer import LossValResult, fit_lossval
from lossval_odv.evaluators._adapter import OwnNetworkAdapter
from lossval_odv.evaluators.capabilities import Capabilities

from opendataval.dataval.api import DataEvaluator, ModelLessMixin

logger = logging.getLogger(__name__)


class LossValODV(OwnNetworkAdapter, ModelLessMixin, DataEvaluator):
    """LossVal (Wibiral et al., 2024): data values learned inside the training loss.

    Trains the paper's MLP with one learnable weight per training point, minimising
    ``(sum_i w_i l_i) * Sinkhorn(w-weighted batch, validation set) ** 2``; the final
    weights are the data values. Registered in ``DataEvaluator.Evaluators`` as
    ``"lossvalodv"`` (OpenDataVal's own in-tree ``LossValEvaluator`` keeps its key).

    Parameters
    ----------
    epochs : int
        Training epochs, 5 by default (the paper also reports 30).
    lr : float
        Adam learning rate for network and weights, 0.01.
    batch_size : int
        Shuffled batch size, 32.
    n_linear, hidden_width : int, optional
        MLP shape; None takes the paper's per-task default (classification 5 x 100,
        regression 3 x 90).
    task : {"auto", "classification", "regression"}
        "auto" infers it from the labels: one-hot means classification.
    device : str
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
    random_state : int, RandomState or None
        Seeds the network's initialisation and the shuffling.

    Notes
    -----
    LossVal trains its own network: the prediction model of an ``ExperimentMediator``
    and its ``train_kwargs`` (which OpenDataVal forwards to ``train_data_values``) are
    for the other evaluators and for the experiments, and do not change LossVal's
    epochs, lr or batch size. Forwarded keyword arguments are logged, never applied.
    """

    def __init__(
        self,
        epochs: int = 5,
        lr: float = 0.01,
        batch_size: int = 32,
        n_linear: int | None = None,
        hidden_width: int | None = None,
        task: str = "auto",
        device: str = "auto",
        random_state: RandomStateLike = None,
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.n_linear = n_linear
        self.hidden_width = hidden_width
        self.task = task
        self.device = device
        self.random_state = random_state

    needs_validation = True
    capabilities = Capabilities(trains_together=True, gpu_share=0.25, device_argument="str")

    def _training_settings(self) -> dict[str, Any]:
        """What ``fit_lossval`` takes from the constructor (besides data and seed)."""
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "n_linear": self.n_linear,
            "hidden_width": self.hidden_width,
            "device": self.device,
        }

    def train_data_values(self, *args: Any, **kwargs: Any) -> LossValODV:
        """Run LossVal once. Arguments forwarded by OpenDataVal are logged, not applied."""
        settings = f"epochs={self.epochs}, lr={self.lr}, batch_size={self.batch_size}"
        task = self._prepare(args, kwargs, settings, logger)
        self.result_: LossValResult = fit_lossval(
            self.x_train,
            self.y_train,
            self.x_valid,
            task=task,
            random_state=self.random_state,
            **self._training_settings(),
        )
        return self

    def evaluate_data_values(self) -> np.ndarray:
        """The learned weights, one per training point (higher = more valuable)."""
        return self._values()

    @classmethod
    def train_together(cls, evaluators: Sequence[LossValODV]) -> None:
        """Train several evaluators in one batched run (``fit_lossval_batched``).

        Each evaluator must hold its data (``input_data`` or ``setup``) and all must share
        their settings, task and data shapes; their data and seeds may differ. Every evaluator
        then holds the values that its own ``train_data_values()`` would give, up to float32
        rounding (batched vs. unbatched matrix products). Raises ``ValueError`` when they are
        not compatible, before any training.
        """
        if not evaluators:
            raise ValueError("no evaluators to train")
        first = evaluators[0]
        settings = first._training_settings()
        tasks = set()
        for evaluator in evaluators:
            if not isinstance(evaluator, cls):
                raise TypeError(f"expected LossValODV evaluators, got {type(evaluator).__name__}")
            if evaluator._training_settings() != settings:
                raise ValueError(
                    "evaluators trained together need the same settings: "
                    f"{evaluator._training_settings()} vs {settings}"
                )
            tasks.add(evaluator._prepare((), {}, "", logger))
        if len(tasks) != 1:
            raise ValueError(f"evaluators trained together need one task, got {sorted(tasks)}")
        results = fit_lossval_batched(
            [e.x_train for e in evaluators],
            [e.y_train for e in evaluators],
            [e.x_valid for e in evaluators],
            task=tasks.pop(),
            seeds=[e.random_state for e in evaluators],
            **settings,
        )
        for evaluator, result in zip(evaluators, results, strict=True):
            evaluator.result_ = result
