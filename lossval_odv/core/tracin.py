"""TracIn (Pruthi, Liu, Kale, Sundararajan; NeurIPS 2020): the functional core, without OpenDataVal.

TracInCP approximates the influence of a training point ``z`` on a point ``z'`` by the
gradient dot products along the training run, read at saved checkpoints ``w_1..w_K``:

    TracInCP(z, z') = sum_k lr_k * < grad l(w_k, z), grad l(w_k, z') >

Two modes:

- ``"validation"``: value_i = sum_k lr_k * < g_k(z_i), sum_{v in val} g_k(z_v) >, the
  TracInCP influence of training point i summed over the validation set (positive =
  training on i lowered the validation loss, a proponent; higher = more valuable);
- ``"self"``: value_i = - sum_k lr_k * ||g_k(z_i)||^2. A high self-influence marks a
  point the model struggles to fit (mislabelled or rare), so the value is its negative.

The network is the paper's MLP trained once with plain SGD (no momentum, no weight
decay), the optimiser TracIn's first-order argument assumes; ``lr`` is the constant step
size and the checkpoint weight ``lr_k``. The batch loss is the mean of the per-sample
losses, so one step moves the parameters by ``lr / |B|`` times each sample's gradient;
``1 / |B|`` is the same for every point and checkpoint and is left out (as in the paper).
Checkpoints are the parameters at ``n_checkpoints`` epoch ends spread evenly over the run
(the last epoch always included). Per-sample gradients over *all* parameters come from
``torch.func`` (``vmap(grad(functional_call))``), in chunks of ``chunk_size`` training
points so that memory stays at ``chunk_size x n_parameters`` floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from lossval_odv.core.losses import per_sample_loss
from lossval_odv.core.mlp import Task
from lossval_odv.core.runtime import RandomStateLike, resolve_device, to_seed
from lossval_odv.core.training import as_tensor, train_mlp
from lossval_odv.core.validation import check_schedule, check_training_set, check_validation_set

Mode = Literal["self", "validation"]


@dataclass(frozen=True)
class TracInResult:
    """Values, the checkpoints they were read at (state dicts on the CPU) and their weights."""

    values: np.ndarray
    model: nn.Module
    checkpoints: list[dict[str, torch.Tensor]]
    checkpoint_epochs: list[int]
    lrs: list[float]
    seed: int
    device: str


def checkpoint_epochs(epochs: int, n_checkpoints: int) -> list[int]:
    """1-based epochs at whose end a checkpoint is saved, evenly spread, the last included."""
    if not 1 <= n_checkpoints <= epochs:
        raise ValueError(
            f"n_checkpoints must be between 1 and epochs ({epochs}), got {n_checkpoints}"
        )
    return [int(np.ceil(k * epochs / n_checkpoints)) for k in range(1, n_checkpoints + 1)]


def tracin_scores(
    model: nn.Module,
    checkpoints: list[dict[str, torch.Tensor]],
    lrs: list[float],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    task: Task,
    mode: Mode,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    chunk_size: int = 256,
) -> torch.Tensor:
    """TracIn values of the rows of ``(x, y)`` from saved checkpoints, shape (n,).

    ``model`` only provides the architecture (its own parameters are not read); every
    checkpoint is a state dict for it. Computed in ``x``'s dtype and on its device.
    """
    if mode not in ("self", "validation"):
        raise ValueError(f"mode must be 'self' or 'validation', got {mode!r}")
    if len(checkpoints) != len(lrs):
        raise ValueError(f"{len(checkpoints)} checkpoints but {len(lrs)} learning rates")
    if mode == "validation" and (x_val is None or y_val is None):
        raise ValueError("TracIn's validation mode needs a validation set (x_val, y_val)")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    def loss_one(params: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor):
        out = functional_call(model, params, (xi.unsqueeze(0),))
        return per_sample_loss(task=task, outputs=out, targets=yi.unsqueeze(0)).squeeze(0)

    def loss_sum(params: dict[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor):
        out = functional_call(model, params, (xs,))
        return per_sample_loss(task=task, outputs=out, targets=ys).sum()

    per_sample_grads = vmap(grad(loss_one), in_dims=(None, 0, 0))
    names = [name for name, _ in model.named_parameters()]
    scores = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    for state, lr in zip(checkpoints, lrs, strict=True):
        params = {n: state[n].to(device=x.device, dtype=x.dtype) for n in names}
        if mode == "validation":
            val_grad = grad(loss_sum)(params, x_val, y_val)
            val_flat = {n: g.reshape(-1) for n, g in val_grad.items()}
        for start in range(0, len(x), chunk_size):
            chunk = slice(start, start + chunk_size)
            grads = per_sample_grads(params, x[chunk], y[chunk])
            if mode == "self":
                s = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
            else:
                s = sum(grads[n].flatten(1) @ val_flat[n] for n in names)
            scores[chunk] += lr * s
    return -scores if mode == "self" else scores


def tracin_values(
    x_train: object,
    y_train: object,
    x_val: object = None,
    y_val: object = None,
    *,
    task: Task,
    mode: Mode = "self",
    epochs: int = 5,
    lr: float = 0.1,
    batch_size: int = 32,
    n_checkpoints: int = 5,
    n_linear: int | None = None,
    hidden_width: int | None = None,
    chunk_size: int = 256,
    random_state: RandomStateLike = None,
    device: str | torch.device = "auto",
) -> TracInResult:
    """Train the paper's MLP once with SGD, save checkpoints, return TracIn values.

    Parameters
    ----------
    x_train, y_train : array-like
        Training features (n, d) and targets (one-hot for classification).
    x_val, y_val : array-like, optional
        The validation set; needed by ``mode="validation"`` only.
    task : {"classification", "regression"}
    mode : {"self", "validation"}
        Negative self-influence, or influence on the validation loss (see module doc).
    epochs, lr, batch_size : optional
        The SGD run: 5 epochs, step size 0.1 (the checkpoint weight), batches of 32.
    n_checkpoints : int
        Epoch-end checkpoints, evenly spread, 1 <= n_checkpoints <= epochs.
    n_linear, hidden_width : int, optional
        MLP shape; the paper's per-task defaults when None.
    chunk_size : int
        Training points per vectorised gradient computation (memory bound).
    random_state, device
        As in ``core.fit_lossval``: same seed and device give identical values.
    """
    if mode not in ("self", "validation"):
        raise ValueError(f"mode must be 'self' or 'validation', got {mode!r}")
    check_schedule(epochs, lr, batch_size)
    saved_at = checkpoint_epochs(epochs, n_checkpoints)
    x_a, y_a = check_training_set(x_train, y_train, task=task)
    if mode == "validation":
        xv_a, yv_a = check_validation_set(
            x_val,
            y_val,
            task=task,
            n_features=x_a.shape[1],
            n_outputs=y_a.shape[1],
            owner="TracIn's validation mode",
        )
    torch_device = resolve_device(device)
    seed = to_seed(random_state)
    x = as_tensor(x_a, torch_device)
    y = as_tensor(y_a, torch_device)

    checkpoints: list[dict[str, torch.Tensor]] = []

    def save(epoch: int, model: nn.Module) -> None:
        if epoch + 1 in saved_at:
            checkpoints.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})

    model = train_mlp(
        x,
        y,
        task=task,
        seed=seed,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        optimizer="sgd",
        n_linear=n_linear,
        hidden_width=hidden_width,
        on_epoch_end=save,
    )
    lrs = [float(lr)] * len(checkpoints)
    scores = tracin_scores(
        model,
        checkpoints,
        lrs,
        x,
        y,
        task=task,
        mode=mode,
        x_val=as_tensor(xv_a, torch_device) if mode == "validation" else None,
        y_val=as_tensor(yv_a, torch_device) if mode == "validation" else None,
        chunk_size=chunk_size,
    )
    return TracInResult(
        values=scores.cpu().numpy().astype(np.float64),
        model=model,
        checkpoints=checkpoints,
        checkpoint_epochs=saved_at,
        lrs=lrs,
        seed=seed,
        device=str(torch_device),
    )
