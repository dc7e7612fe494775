"""Loss-trajectory values: each sample's training loss averaged over one training run.

In the spirit of dynamic loss-based sample reweighting: points that the network keeps
failing to fit (mislabelled, outlying) have a high loss throughout training. The loss of a
point is read at every step where it is in the batch, from the batch's own forward pass
(before the step; no extra forward passes), and the value is the negative mean, so a high
loss means a low value. The run is the paper's: Adam, lr 0.01, shuffled batches of 32,
5 epochs; every point is seen once per epoch, so the mean is over ``epochs`` readings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lossval_odv.core.mlp import Task
from lossval_odv.core.runtime import RandomStateLike, resolve_device, to_seed
from lossval_odv.core.training import as_tensor, train_mlp
from lossval_odv.core.validation import check_training_set


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
