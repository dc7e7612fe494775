"""The models of the paper's protocol around the data values: the baselines' prediction
model (the paper's MLPs as OpenDataVal models) and the removal experiment's models."""

from __future__ import annotations

from typing import Any

import torch
from sklearn.linear_model import LinearRegression

from lossval_odv.core.mlp import DEFAULT_SHAPE

from opendataval.metrics import Metrics
from opendataval.model import ClassifierMLP, LogisticRegression, RegressionMLP
from opendataval.model.api import RegressionSkLearnWrapper

# the paper's protocol: how the baselines' prediction model trains
BASELINE_TRAIN_KWARGS = {
    "classification": {"epochs": 5, "batch_size": 128, "lr": 0.1},
    "regression": {"epochs": 5, "batch_size": 32, "lr": 0.01},
}


def baseline_training(task: str, overrides: dict[str, dict] | None = None) -> dict[str, Any]:
    """How the baselines' prediction model trains for ``task``: the protocol's
    :data:`BASELINE_TRAIN_KWARGS`, changed by a method's ``train`` overrides."""
    return {**BASELINE_TRAIN_KWARGS[task], **(overrides or {}).get(task, {})}


def prediction_model(task: str, n_features: int, n_classes: int, device: torch.device):
    """The paper's MLPs (the shapes of :data:`lossval_odv.core.mlp.DEFAULT_SHAPE`), as
    OpenDataVal models, for the baselines that need one."""
    layers, width = DEFAULT_SHAPE[task]
    if task == "classification":
        return ClassifierMLP(n_features, n_classes, layers=layers, hidden_dim=width).to(device)
    return RegressionMLP(n_features, 1, layers=layers, hidden_dim=width, act_fn=torch.nn.Tanh()).to(
        device
    )


def evaluation_model(kind: str, task: str, n_features: int, n_classes: int) -> tuple[Any, dict]:
    """Removal-experiment model and its fit arguments: the authors' (``paper``) or the
    baselines' MLP (``mlp``)."""
    if kind == "mlp":
        return prediction_model(task, n_features, n_classes, torch.device("cpu")), (
            BASELINE_TRAIN_KWARGS[task]
        )
    if task == "classification":
        return LogisticRegression(n_features, n_classes), {}  # fit defaults: 1 epoch, lr 0.01
    return RegressionSkLearnWrapper(LinearRegression), {}


def removal_metric(task: str) -> tuple[Metrics, str]:
    """The removal experiment's metric and its name in the curves."""
    if task == "classification":
        return Metrics.ACCURACY, "accuracy"
    return Metrics.NEG_MSE, "neg_mse"
