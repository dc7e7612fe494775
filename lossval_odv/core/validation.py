"""The core's input checks, in one place: errors name the problem before any compute."""

from __future__ import annotations

import numpy as np
import torch

from lossval_odv.core.mlp import Task


def as_2d_float(name: str, array: object) -> np.ndarray:
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
    x_train_a = as_2d_float("x_train", x_train)
    y_train_a = as_2d_float("y_train", y_train)
    x_val_a = as_2d_float("x_val", x_val)
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


def check_training_set(
    x_train: object, y_train: object, *, task: Task
) -> tuple[np.ndarray, np.ndarray]:
    """``core.check_inputs`` for evaluators that need no validation set."""
    x_a, y_a, _ = check_inputs(x_train, y_train, as_2d_float("x_train", x_train), task=task)
    return x_a, y_a


def check_validation_set(
    x_val: object, y_val: object, *, task: Task, n_features: int, n_outputs: int, owner: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a labelled validation set against the training set's shapes."""
    if x_val is None or y_val is None:
        raise ValueError(f"{owner} needs a validation set (x_val or y_val is None)")
    x_a = as_2d_float("x_val", x_val)
    y_a = as_2d_float("y_val", y_val)
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
    """Training schedule: positive epochs, batch size and learning rate."""
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}"
        )


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
