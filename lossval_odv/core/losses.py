"""The LossVal objective: weighted task loss times a squared Sinkhorn distance.

    LossVal = ( sum_{i in B} w_i * l_i ) * OT_w(X_B, X_val) ** 2

``OT_w`` is geomloss' debiased Sinkhorn divergence (p=2, blur=0.05) between the batch
features carrying the *unnormalised* weights ``w_B`` and the validation features carrying
ones, with ``diameter = 1.1 * max_{i in B, v in val} ||x_i - x_v||``.
"""

from __future__ import annotations

import torch
from geomloss import SamplesLoss

from lossval_odv.core.mlp import Task
from lossval_odv.core.sinkhorn import BLUR

CE_EPS = 1e-8
DIAMETER_FACTOR = 1.1


def per_sample_loss(*, task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Unweighted loss of every sample, shape (batch,).

    Classification: cross-entropy of softmax probabilities against one-hot targets,
    ``-sum_k y_k log(p_k + 1e-8)``. Regression: squared error summed over outputs.
    """
    if task == "classification":
        return -(targets * torch.log(outputs + CE_EPS)).sum(dim=-1)
    return ((outputs - targets) ** 2).sum(dim=-1)


def max_distance_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``max_v ||x_i - reference_v||`` for every row of ``x``, shape (n,)."""
    return torch.cdist(x, reference).amax(dim=-1)


class SinkhornOT:
    """geomloss' Sinkhorn divergence, built once and re-used with a per-batch diameter."""

    def __init__(self, *, blur: float = BLUR) -> None:
        self._loss = SamplesLoss("sinkhorn", p=2, blur=blur, diameter=1.0, backend="tensorized")

    def __call__(
        self,
        weights: torch.Tensor,
        x_batch: torch.Tensor,
        val_weights: torch.Tensor,
        x_val: torch.Tensor,
        *,
        diameter: float,
    ) -> torch.Tensor:
        self._loss.diameter = diameter
        return self._loss(weights, x_batch, val_weights, x_val)


def lossval_loss(
    *,
    task: Task,
    outputs: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    x_batch: torch.Tensor,
    x_val: torch.Tensor,
    diameter: float,
    ot: SinkhornOT,
    val_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The LossVal objective for one batch (a scalar tensor)."""
    if val_weights is None:
        val_weights = torch.ones(len(x_val), dtype=x_val.dtype, device=x_val.device)
    weighted = (weights * per_sample_loss(task=task, outputs=outputs, targets=targets)).sum()
    distance = ot(weights, x_batch, val_weights, x_val, diameter=diameter)
    return weighted * distance**2
