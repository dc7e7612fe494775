"""One LossVal training run: its inputs, its result, and ``fit_lossval``.

A run trains on the batched engine of ``lossval_odv.core.batched`` with R = 1: the data go
to the device once, batches are index slices, each epoch's diameters and Sinkhorn
schedules are computed when it starts, so the training loop never waits on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lossval_odv.core.mlp import Task
from lossval_odv.core.runtime import RandomStateLike


@dataclass(frozen=True)
class LossValResult:
    """What one run returns: the data values (final weights) and the trained network."""

    values: np.ndarray
    model: torch.nn.Module
    seed: int
    device: str


def _as_2d_float(name: str, array: object) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array or a torch tensor, got {type(array).__name__}"
        )
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise ValueError(f"{name} contains NaN or infinite values in {bad} row(s)")
    return array


def check_inputs(
    x_train: object, y_train: object, x_val: object, *, task: Task
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert inputs to float64 2-D arrays, with errors naming the problem."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if x_val is None:
        raise ValueError("LossVal needs a validation set (x_val is None)")
    x_train_a = _as_2d_float("x_train", x_train)
    y_train_a = _as_2d_float("y_train", y_train)
    x_val_a = _as_2d_float("x_val", x_val)
    if len(x_train_a) == 0:
        raise ValueError("the training set is empty")
    if len(x_val_a) == 0:
        raise ValueError("LossVal needs a validation set, but x_val is empty")
    if len(x_train_a) != len(y_train_a):
        raise ValueError(f"x_train has {len(x_train_a)} rows but y_train has {len(y_train_a)}")
    if x_train_a.shape[1] != x_val_a.shape[1]:
        raise ValueError(
            f"x_train has {x_train_a.shape[1]} features but x_val has {x_val_a.shape[1]}"
        )
    if task == "classification" and not is_one_hot(y_train_a):
        raise ValueError(
            "classification needs one-hot labels: y_train must be 2-D with one 1 and "
            "zeros elsewhere in every row"
        )
    return x_train_a, y_train_a, x_val_a


def is_one_hot(y: np.ndarray) -> bool:
    """True for a 2-D array with at least two columns and exactly one 1 per row."""
    return (
        y.ndim == 2
        and y.shape[1] >= 2
        and bool(np.isin(y, (0.0, 1.0)).all())
        and bool((y.sum(axis=1) == 1).all())
    )


def _epoch_permutations(n: int, epochs: int, seed: int) -> torch.Tensor:
    """Every epoch's shuffling of ``n`` points, from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n, generator=generator) for _ in range(epochs)])


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
    # the batched engine with R = 1 (imported here: it builds on this module's checks)
    from lossval_odv.core.batched import fit_lossval_batched

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
