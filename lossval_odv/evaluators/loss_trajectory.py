"""Loss-trajectory values: each sample's training loss averaged over one training run.

In the spirit of dynamic loss-based sample reweighting: points that the network keeps
failing to fit (mislabelled, outlying) have a high loss throughout training. The loss of a
point is read at every step where it is in the batch, from the batch's own forward pass
(before the step; no extra forward passes), and the value is the negative mean, so a high
loss means a low value. The run is the paper's: Adam, lr 0.01, shuffled batches of 32,
5 epochs; every point is seen once per epoch, so the mean is over ``epochs`` readings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lossval_odv.core.mlp import Task
from lossval_odv.core.runtime import RandomStateLike, resolve_device, to_seed
from lossval_odv.evaluators._adapter import OwnNetworkAdapter
from lossval_odv.evaluators._training import (
    as_tensor,
    check_training_set,
    train_mlp,
)

from opendataval.dataval.api import DataEvaluator, ModelLessMixin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossTrajectoryResult:
    """Values (negative mean loss), the summed losses and reading counts, the network."""

    values: np.ndarray
    loss_sum: np.ndarray
    counts: np.ndarray
    model: nn.Module
    seed: int
    device: str


def loss_trajectory_values(
    x_train: object,
    y_train: object,
    *,
    task: Task,
    epochs: int = 5,
    lr: float = 0.01,
    batch_size: int = 32,
    n_linear: int | None = None,
    hidden_width: int | None = None,
    random_state: RandomStateLike = None,
    device: str | torch.device = "auto",
) -> LossTrajectoryResult:
    """Train the paper's MLP once (Adam) and return ``-mean per-sample training loss``.

    Parameters as in ``core.fit_lossval``, without a validation set.
    """
    x_a, y_a = check_training_set(x_train, y_train, task=task)
    torch_device = resolve_device(device)
    seed = to_seed(random_state)
    x = as_tensor(x_a, torch_device)
    y = as_tensor(y_a, torch_device)
    loss_sum = torch.zeros(len(x), dtype=torch.float64, device=torch_device)
    counts = torch.zeros(len(x), dtype=torch.float64, device=torch_device)

    def record(_epoch: int, idx: torch.Tensor, losses: torch.Tensor) -> None:
        loss_sum.index_add_(0, idx, losses.to(torch.float64))
        counts.index_add_(0, idx, torch.ones_like(losses, dtype=torch.float64))

    model = train_mlp(
        x,
        y,
        task=task,
        seed=seed,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        optimizer="adam",
        n_linear=n_linear,
        hidden_width=hidden_width,
        on_step=record,
    )
    loss_sum_a = loss_sum.cpu().numpy()
    counts_a = counts.cpu().numpy()
    return LossTrajectoryResult(
        values=-loss_sum_a / counts_a,
        loss_sum=loss_sum_a,
        counts=counts_a,
        model=model,
        seed=seed,
        device=str(torch_device),
    )


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
