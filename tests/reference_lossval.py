"""The reference LossVal run: one network, geomloss' ``SamplesLoss`` every batch.

This is the loop lossval-odv trained with before its batched engine, kept as the
reference the engine is tested against (``fit_lossval`` runs the engine with R = 1):
same seed, permutations, diameters and initial network, geomloss' own Sinkhorn.
"""

from __future__ import annotations

import numpy as np
import torch

from lossval_odv.core.batched import LossValResult
from lossval_odv.core.losses import DIAMETER_FACTOR, SinkhornOT, lossval_loss, max_distance_to
from lossval_odv.core.mlp import make_mlp
from lossval_odv.core.runtime import epoch_permutations, resolve_device, to_seed
from lossval_odv.core.validation import check_inputs


def batch_diameters(
    reach: torch.Tensor, permutations: torch.Tensor, batch_size: int
) -> list[list[float]]:
    """Per-epoch, per-batch diameters from each point's farthest validation distance.

    ``reach[i] = max_v ||x_i - x_v||``, so a batch's diameter is 1.1 times the largest
    ``reach`` among its points: one gather and one transfer for the whole run.
    """
    epochs, n = permutations.shape
    n_batches = -(-n // batch_size)
    padded = torch.full((epochs, n_batches * batch_size), -torch.inf, device=reach.device)
    padded[:, :n] = reach[permutations.to(reach.device)]
    per_batch = DIAMETER_FACTOR * padded.view(epochs, n_batches, batch_size).amax(dim=-1)
    return per_batch.cpu().tolist()


def make_adam(params: list[torch.nn.Parameter], *, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has it for the device (same update
    rule, a third of the per-step time on CPU), else the default implementation."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):  # torch < 2.4 has no fused CPU kernel
        return torch.optim.Adam(params, lr=lr)


def reference_fit_lossval(
    x_train,
    y_train,
    x_val,
    *,
    task,
    epochs=5,
    lr=0.01,
    batch_size=32,
    random_state=None,
    device="cpu",
) -> LossValResult:
    """``fit_lossval``'s contract, computed the reference way."""
    x_train_a, y_train_a, x_val_a = check_inputs(x_train, y_train, x_val, task=task)
    torch_device = resolve_device(device)
    seed = to_seed(random_state)
    n_linear = hidden_width = None

    x = torch.as_tensor(x_train_a, dtype=torch.float32, device=torch_device)
    y = torch.as_tensor(y_train_a, dtype=torch.float32, device=torch_device)
    xv = torch.as_tensor(x_val_a, dtype=torch.float32, device=torch_device)
    val_weights = torch.ones(len(xv), device=torch_device)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_mlp(
            task=task,
            n_features=x.shape[1],
            n_outputs=y.shape[1],
            n_linear=n_linear,
            hidden_width=hidden_width,
        ).to(torch_device)
    weights = torch.nn.Parameter(torch.ones(len(x), device=torch_device))
    optimizer = make_adam([*model.parameters(), weights], lr=lr)
    ot = SinkhornOT()

    permutations = epoch_permutations(len(x), epochs, seed + 1).to(torch_device)
    diameters = batch_diameters(max_distance_to(x, xv), permutations, batch_size)

    model.train()
    for epoch in range(epochs):
        order = permutations[epoch]
        for b, start in enumerate(range(0, len(x), batch_size)):
            idx = order[start : start + batch_size]
            x_batch = x[idx]
            loss = lossval_loss(
                task=task,
                outputs=model(x_batch),
                targets=y[idx],
                weights=weights[idx],
                x_batch=x_batch,
                x_val=xv,
                diameter=diameters[epoch][b],
                ot=ot,
                val_weights=val_weights,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return LossValResult(
        values=weights.detach().cpu().numpy().astype(np.float64),
        model=model.eval(),
        seed=seed,
        device=str(torch_device),
    )
