"""cleanlab's label-quality scores from out-of-fold MLP predictions: the functional core.

Out-of-fold predictions of the paper's MLP (K folds, default 5, seeded; each fold's model
trained with the paper's settings: Adam, lr 0.01, shuffled batches of 32, 5 epochs) are
passed to cleanlab:

- classification: ``cleanlab.rank.get_label_quality_scores(labels, pred_probs)``, labels
  the argmax of the one-hot targets, ``pred_probs`` the MLP's softmax outputs;
- regression: ``cleanlab.regression.rank.get_label_quality_scores(labels, predictions)``
  (single-output targets only).

The scores lie in [0, 1], higher = the label looks right = more valuable. Classification
folds are stratified when every class has at least ``n_folds`` members.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import KFold, StratifiedKFold

from lossval_odv.core.mlp import Task
from lossval_odv.core.runtime import RandomStateLike, resolve_device, to_seed
from lossval_odv.core.training import as_tensor, train_mlp
from lossval_odv.core.validation import check_training_set


@dataclass(frozen=True)
class CleanlabResult:
    """cleanlab's scores and the out-of-fold predictions they came from."""

    values: np.ndarray
    out_of_fold: np.ndarray
    seed: int
    device: str


def out_of_fold_predictions(
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: Task,
    n_folds: int,
    seed: int,
    device: torch.device,
    epochs: int,
    lr: float,
    batch_size: int,
) -> np.ndarray:
    """Predictions (probabilities for classification) of models that never saw the row."""
    if not 2 <= n_folds <= len(x):
        raise ValueError(f"n_folds must be between 2 and the training size, got {n_folds}")
    splitter: KFold | StratifiedKFold
    labels = y.argmax(axis=1) if task == "classification" else None
    if labels is not None and np.bincount(labels).min() >= n_folds:
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_folds, shuffle=True, random_state=seed)
    xt = as_tensor(x, device)
    yt = as_tensor(y, device)
    out = np.zeros(y.shape, dtype=np.float64)
    for fold, (fit_idx, held_idx) in enumerate(splitter.split(x, labels)):
        model = train_mlp(
            xt[fit_idx],
            yt[fit_idx],
            task=task,
            seed=(seed + 2 * (fold + 1)) % (2**31),
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer="adam",
        )
        with torch.no_grad():
            out[held_idx] = model(xt[held_idx]).cpu().numpy()
    return out


def cleanlab_values(
    x_train: object,
    y_train: object,
    *,
    task: Task,
    n_folds: int = 5,
    method: str | None = None,
    epochs: int = 5,
    lr: float = 0.01,
    batch_size: int = 32,
    random_state: RandomStateLike = None,
    device: str | torch.device = "auto",
) -> CleanlabResult:
    """cleanlab label-quality scores from K-fold out-of-fold MLP predictions.

    ``method`` is cleanlab's scoring method; None takes its default
    (``"self_confidence"`` for classification, ``"outre"`` for regression).
    """
    try:
        from cleanlab.rank import get_label_quality_scores as classification_scores
        from cleanlab.regression.rank import get_label_quality_scores as regression_scores
    except ImportError as exc:  # pragma: no cover - cleanlab is a declared dependency
        raise ImportError("CleanlabQuality needs the package 'cleanlab>=2.6'") from exc
    x_a, y_a = check_training_set(x_train, y_train, task=task)
    if task == "regression" and y_a.shape[1] != 1:
        raise ValueError(
            f"cleanlab's regression scores need a single target, y_train has {y_a.shape[1]} columns"
        )
    torch_device = resolve_device(device)
    seed = to_seed(random_state)
    oof = out_of_fold_predictions(
        x_a,
        y_a,
        task=task,
        n_folds=n_folds,
        seed=seed,
        device=torch_device,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
    )
    kwargs = {} if method is None else {"method": method}
    if task == "classification":
        # float32 softmax rows can miss 1 by ~1e-7; cleanlab checks the sums
        probs = oof / oof.sum(axis=1, keepdims=True)
        values = classification_scores(y_a.argmax(axis=1), probs, **kwargs)
    else:
        values = regression_scores(y_a[:, 0], oof[:, 0], **kwargs)
    return CleanlabResult(
        values=np.asarray(values, dtype=np.float64),
        out_of_fold=oof,
        seed=seed,
        device=str(torch_device),
    )
