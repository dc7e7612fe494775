"""LossVal as an OpenDataVal ``DataEvaluator``: a thin adapter over ``core.fit_lossval``."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from lossval_odv.core.mlp import Task
from lossval_odv.core.runtime import RandomStateLike
from lossval_odv.core.trainer import LossValResult, fit_lossval, is_one_hot

from opendataval.dataval.api import DataEvaluator, ModelLessMixin

logger = logging.getLogger(__name__)


def infer_task(y_train: np.ndarray) -> Task:
    """One-hot labels mean classification; 1-D or single-column targets regression."""
    if y_train.ndim == 1 or (y_train.ndim == 2 and y_train.shape[1] == 1):
        return "regression"
    if is_one_hot(y_train):
        return "classification"
    raise ValueError(
        f"cannot tell the task from y_train of shape {y_train.shape}: classification needs "
        "one-hot labels (one 1 per row); regression needs a 1-D or single-column target. "
        "Pass task='regression' for a multi-output regression target."
    )


def _to_numpy(name: str, data: Any, owner: str = "LossValODV") -> np.ndarray:
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        return data
    raise TypeError(
        f"{owner} needs {name} as a numpy array or a torch tensor, got "
        f"{type(data).__name__} (image/text Datasets must be embedded first)"
    )


class LossValODV(ModelLessMixin, DataEvaluator):
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

    def input_data(self, x_train, y_train, x_valid, y_valid):
        """Store the training and validation data; errors name what is missing."""
        if x_valid is None or y_valid is None:
            raise ValueError("LossValODV needs a validation set; x_valid/y_valid is None")
        return super().input_data(
            _to_numpy("x_train", x_train),
            _to_numpy("y_train", y_train),
            _to_numpy("x_valid", x_valid),
            _to_numpy("y_valid", y_valid),
        )

    def train_data_values(self, *args: Any, **kwargs: Any) -> LossValODV:
        """Run LossVal once. Arguments forwarded by OpenDataVal are logged, not applied."""
        if not hasattr(self, "x_train"):
            raise RuntimeError("call input_data(...) or train(fetcher) before train_data_values")
        if args or kwargs:
            logger.info(
                "LossValODV trains its own network (epochs=%s, lr=%s, batch_size=%s); "
                "prediction-model arguments %s %s are not used",
                self.epochs,
                self.lr,
                self.batch_size,
                args,
                kwargs,
            )
        if self.task == "auto":
            task = infer_task(np.asarray(self.y_train))
        elif self.task in ("classification", "regression"):
            task = self.task
        else:
            raise ValueError(
                f"task must be 'auto', 'classification' or 'regression', got {self.task!r}"
            )
        self.result_: LossValResult = fit_lossval(
            self.x_train,
            self.y_train,
            self.x_valid,
            task=task,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            n_linear=self.n_linear,
            hidden_width=self.hidden_width,
            random_state=self.random_state,
            device=self.device,
        )
        self.__dict__.pop("data_values", None)  # forget values cached from an earlier run
        return self

    def evaluate_data_values(self) -> np.ndarray:
        """The learned weights, one per training point (higher = more valuable)."""
        if not hasattr(self, "result_"):
            raise RuntimeError("LossValODV has not been trained yet")
        return self.result_.values
