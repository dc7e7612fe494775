"""One training run of the paper's MLP, shared by TracIn, LossTrajectory and CleanlabQuality.

The loop mirrors ``core.fit_lossval`` without the LossVal weights: the data sit on the
device, batches are index slices of one seeded permutation per epoch, and the network is
initialised under its own seed. The batch loss is the *mean* of ``core.per_sample_loss``
(cross-entropy of softmax probabilities with +1e-8, or squared error). Two hooks let the
evaluators observe the run without extra forward passes:

- ``on_step(epoch, idx, losses)``: after every optimiser step, with the batch's indices and
  its per-sample losses (detached, computed *before* the step, on the device);
- ``on_epoch_end(epoch, model)``: after the last step of every epoch (0-based ``epoch``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import nn

from lossval_odv.core.losses import per_sample_loss
from lossval_odv.core.mlp import Task, make_mlp
from lossval_odv.core.trainer import (
    _as_2d_float,
    _epoch_permutations,
    check_inputs,
    is_one_hot,
)

StepHook = Callable[[int, torch.Tensor, torch.Tensor], None]
EpochHook = Callable[[int, nn.Module], None]
OptimizerName = Literal["adam", "sgd"]


def check_training_set(
    x_train: object, y_train: object, *, task: Task
) -> tuple[np.ndarray, np.ndarray]:
    """``core.check_inputs`` for evaluators that need no validation set."""
    x_a, y_a, _ = check_inputs(x_train, y_train, _as_2d_float("x_train", x_train), task=task)
    return x_a, y_a


def check_validation_set(
    x_val: object, y_val: object, *, task: Task, n_features: int, n_outputs: int, owner: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a labelled validation set against the training set's shapes."""
    if x_val is None or y_val is None:
        raise ValueError(f"{owner} needs a validation set (x_val or y_val is None)")
    x_a = _as_2d_float("x_val", x_val)
    y_a = _as_2d_float("y_val", y_val)
    if len(x_a) == 0:
        raise ValueError(f"{owner} needs a validation set, but x_val is empty")
    if len(x_a) != len(y_a):
        raise ValueError(f"x_val has {len(x_a)} rows but y_val has {len(y_a)}")
    if x_a.shape[1] != n_features:
        raise ValueError(f"x_train has {n_features} features but x_val has {x_a.shape[1]}")
    if y_a.shape[1] != n_outputs:
        raise ValueError(f"y_train has {n_outputs} columns but y_val has {y_a.shape[1]}")
    if task == "classification" and not is_one_hot(y_a):
        raise ValueError("classification needs one-hot validation labels (y_val)")
    return x_a, y_a


def check_schedule(epochs: int, lr: float, batch_size: int) -> None:
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}"
        )


def as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(array, dtype=torch.float32, device=device)


def train_mlp(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    task: Task,
    seed: int,
    epochs: int = 5,
    lr: float = 0.01,
    batch_size: int = 32,
    optimizer: OptimizerName = "adam",
    n_linear: int | None = None,
    hidden_width: int | None = None,
    on_step: StepHook | None = None,
    on_epoch_end: EpochHook | None = None,
) -> nn.Module:
    """Train the paper's MLP on ``(x, y)`` (float tensors on one device); returns it in eval mode.

    ``optimizer`` is ``"adam"`` (the paper's setting) or ``"sgd"`` (plain SGD, no momentum,
    no weight decay: what TracIn's derivation assumes). ``seed`` fixes the initialisation
    (``seed``) and the shuffling (``seed + 1``), as in ``core.fit_lossval``.
    """
    check_schedule(epochs, lr, batch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_mlp(
            task=task,
            n_features=x.shape[1],
            n_outputs=y.shape[1],
            n_linear=n_linear,
            hidden_width=hidden_width,
        ).to(x.device)
    opt: torch.optim.Optimizer
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    permutations = _epoch_permutations(len(x), epochs, seed + 1).to(x.device)
    model.train()
    for epoch in range(epochs):
        order = permutations[epoch]
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            losses = per_sample_loss(task=task, outputs=model(x[idx]), targets=y[idx])
            opt.zero_grad(set_to_none=True)
            losses.mean().backward()
            opt.step()
            if on_step is not None:
                on_step(epoch, idx, losses.detach())
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return model.eval()
