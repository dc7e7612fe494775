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
from lossval_odv.core.runtime import epoch_permutations
from lossval_odv.core.validation import check_schedule

StepHook = Callable[[int, torch.Tensor, torch.Tensor], None]
EpochHook = Callable[[int, nn.Module], None]
OptimizerName = Literal["adam", "sgd"]


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
    permutations = epoch_permutations(len(x), epochs, seed + 1).to(x.device)
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
