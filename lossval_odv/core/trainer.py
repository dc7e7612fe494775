"""One LossVal training run: ``fit_lossval``, the batched engine with R = 1.

A run trains on the batched engine of ``lossval_odv.core.batched`` with R = 1: the data go
to the device once, batches are index slices, each epoch's diameters and Sinkhorn
schedules are computed when it starts, so the training loop never waits on the device.
"""

from __future__ import annotations

import torch

from lossval_odv.core.batched import LossValResult, fit_lossval_batched
from lossval_odv.core.mlp import Task
from lossval_odv.core.runtime import RandomStateLike

__all__ = ["LossValResult", "fit_lossval"]


def fit_lossval(
    x_train: object,
    y_train: object,
    x_val: object,
    *,
    task: Task,
    epochs: int = 5,
    lr: float = 0.01,
    batch_size: int = 32,
    n_linear: int | None = None,
    hidden_width: int | None = None,
    random_state: RandomStateLike = None,
    device: str | torch.device = "auto",
    cpu_threads: int | None = 1,
) -> LossValResult:
    """Train one LossVal run and return the learned per-sample weights as data values.

    Parameters
    ----------
    x_train, y_train : array-like
        Training features (n, d) and targets: one-hot (n, k) for classification,
        (n,) or (n, m) for regression.
    x_val : array-like
        Validation features (m, d); only features enter the Sinkhorn distance.
    task : {"classification", "regression"}
    epochs, lr, batch_size : optional
        The paper's defaults: 5 epochs (30 is the other reported setting), Adam at
        lr 0.01, shuffled batches of 32.
    n_linear, hidden_width : int, optional
        MLP shape; the paper's per-task defaults when None.
    random_state : int, numpy RandomState/Generator or None
        Same seed and device give identical values.
    device : "auto", "cpu", "cuda" or "cuda:N"
    cpu_threads : int or None
        torch's intra-op threads while training on the CPU, 1 by default (fastest for
        LossVal's small steps); None keeps the current setting.
    """
    (result,) = fit_lossval_batched(
        [x_train],
        [y_train],
        [x_val],
        task=task,
        seeds=[random_state],
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        n_linear=n_linear,
        hidden_width=hidden_width,
        device=device,
        cpu_threads=cpu_threads,
    )
    return result
