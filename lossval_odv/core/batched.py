"""R independent LossVal runs of identical shape, trained together in one loop.

Every run keeps its own data, seed, network, weights, shuffling and Sinkhorn schedule;
only the arithmetic is shared:

* the R networks are one stack of parameters (R, out, in) / (R, out), applied with
  ``torch.baddbmm`` and initialised exactly like ``make_mlp`` under each run's seed;
* the batches are gathered with per-run permutations, those of ``fit_lossval``
  (``_epoch_permutations(n, epochs, seed + 1)``, drawn one epoch at a time), and every
  run's per-batch diameters are ``batch_diameters``' (same float32 arithmetic);
* the Sinkhorn divergences of the R batches are one call of the batched solver of
  ``lossval_odv.core.sinkhorn``, each problem running its own epsilon schedule;
* one Adam optimises the stacked tensors: Adam is elementwise and every run takes the
  same number of steps, so this is R separate optimisers.

Run r therefore reproduces ``fit_lossval(..., random_state=seeds[r])`` up to the
floating-point rounding of batched vs. unbatched matrix products.

Each epoch's schedules and diameters are computed when it starts (one transfer each way),
so on CUDA the batch loop never waits for the device, and memory stays O(R n): full
datasets (n = 100 000 and more) train in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lossval_odv.core.losses import DIAMETER_FACTOR, max_distance_to, per_sample_loss
from lossval_odv.core.mlp import Task, make_mlp
from lossval_odv.core.runtime import RandomStateLike, resolve_device, to_seed
from lossval_odv.core.sinkhorn import (
    BLUR,
    epsilon_schedules,
    log_weights,
    sinkhorn_loop_batched,
    squared_cost,
)
from lossval_odv.core.trainer import LossValResult, check_inputs

__all__ = ["BatchedOT", "fit_lossval_batched", "init_stacked_mlp", "stacked_mlp_forward"]

# ----------------------------------------------------------------------------------------
# Stacked MLPs
# ----------------------------------------------------------------------------------------


def _linear_layers(model: torch.nn.Sequential) -> list[torch.nn.Linear]:
    return [m for m in model if isinstance(m, torch.nn.Linear)]


def init_stacked_mlp(
    *,
    task: Task,
    seeds: Sequence[int],
    n_features: int,
    n_outputs: int,
    n_linear: int | None = None,
    hidden_width: int | None = None,
    device: torch.device | str = "cpu",
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """R networks' parameters as ``[(W (R, out, in), b (R, out)), ...]``, one per layer.

    Run r's slice is the ``make_mlp`` network initialised under ``torch.manual_seed(seeds[r])``
    (in a forked RNG, as ``fit_lossval`` does).
    """
    per_run = []
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make_mlp(
                task=task,
                n_features=n_features,
                n_outputs=n_outputs,
                n_linear=n_linear,
                hidden_width=hidden_width,
            )
        per_run.append([(m.weight.detach(), m.bias.detach()) for m in _linear_layers(model)])
    return [
        (
            torch.stack([run[i][0] for run in per_run]).to(device).requires_grad_(),
            torch.stack([run[i][1] for run in per_run]).to(device).requires_grad_(),
        )
        for i in range(len(per_run[0]))
    ]


def stacked_mlp_forward(
    task: Task, layers: Sequence[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor
) -> torch.Tensor:
    """Apply R stacked networks to their inputs: x (R, B, in) -> (R, B, out)."""
    h = x
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if i < last:
            h = torch.relu(h) if task == "classification" else torch.tanh(h)
    if task == "classification":
        h = torch.softmax(h, dim=-1)
    return h


def unstack_mlp(
    *,
    task: Task,
    layers: Sequence[tuple[torch.Tensor, torch.Tensor]],
    run: int,
    n_features: int,
    n_outputs: int,
    n_linear: int | None,
    hidden_width: int | None,
) -> torch.nn.Sequential:
    """Run ``run``'s trained network as the ``nn.Sequential`` that ``make_mlp`` builds."""
    model = make_mlp(
        task=task,
        n_features=n_features,
        n_outputs=n_outputs,
        n_linear=n_linear,
        hidden_width=hidden_width,
    )
    with torch.no_grad():
        for m, (w, b) in zip(_linear_layers(model), layers, strict=True):
            m.weight.copy_(w[run])
            m.bias.copy_(b[run])
    return model.to(layers[0][0].device).eval()


# ----------------------------------------------------------------------------------------
# The batched LossVal step
# ----------------------------------------------------------------------------------------


class BatchedOT:
    """Sinkhorn divergences between R weighted batches and R fixed validation sets.

    The validation side (ones as weights) and its cost matrix are computed once; each
    call builds the batch-side cost matrices like geomloss and runs the batched loop.
    """

    def __init__(self, x_val: torch.Tensor, *, blur: float = BLUR, compiled: bool = False) -> None:
        self.y = x_val
        self.b = torch.ones(x_val.shape[:2], dtype=x_val.dtype, device=x_val.device)
        self.b_log = log_weights(self.b)
        self.c_yy = squared_cost(x_val, x_val)
        self.blur = blur
        self.compiled = compiled

    def __call__(
        self,
        a: torch.Tensor,
        x: torch.Tensor,
        eps: torch.Tensor,
        active: torch.Tensor,
        n_iterations: int,
    ) -> torch.Tensor:
        c_xy = squared_cost(x, self.y)
        c_yx = squared_cost(self.y, x)
        c_xx = squared_cost(x, x)
        f_aa, g_bb, g_ab, f_ba = sinkhorn_loop_batched(
            log_weights(a),
            self.b_log,
            c_xx,
            self.c_yy,
            c_xy,
            c_yx,
            eps,
            active,
            n_iterations,
            blur=self.blur,
            compiled=self.compiled,
        )
        return (a * (f_ba - f_aa)).sum(1) + (self.b * (g_ab - g_bb)).sum(1)


def _adam_kwargs(device: torch.device) -> dict[str, bool]:
    """Adam's fused kernel where this torch has it (one pass instead of about ten).

    Same update formula as the default implementation, elementwise, up to rounding.
    """
    return {"fused": True} if device.type in ("cpu", "cuda") else {}


class EpochShuffler:
    """The permutations of ``_epoch_permutations(n, epochs, seed)``, one epoch at a time."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=self.generator)


REACH_CHUNK = 65536  # rows of cdist at a time: bounded memory on full datasets


def _max_distance_to(x: torch.Tensor, x_val: torch.Tensor) -> torch.Tensor:
    """``max_distance_to`` in row chunks (identical to it up to ``REACH_CHUNK`` rows)."""
    return torch.cat([max_distance_to(c, x_val) for c in x.split(REACH_CHUNK)])


def _epoch_schedules(
    reach: torch.Tensor, perm: torch.Tensor, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Per-batch, per-run Sinkhorn schedules of one epoch.

    The diameters are ``batch_diameters``' (same float32 arithmetic, for R runs at once):
    returns ``eps`` (n_batches, R, L), ``active`` (n_batches, R, L) on the device and the
    number of iterations of every batch as host ints.
    """
    n_runs, n = perm.shape
    n_batches = -(-n // batch_size)
    padded = torch.full((n_runs, n_batches * batch_size), -torch.inf, device=reach.device)
    padded[:, :n] = torch.gather(reach, 1, perm)
    per_batch = DIAMETER_FACTOR * padded.view(n_runs, n_batches, batch_size).amax(dim=-1)
    diameters = per_batch.cpu().numpy().astype(np.float64).T  # (n_batches, R)
    eps_np, lengths = epsilon_schedules(diameters)
    active_np = np.arange(eps_np.shape[-1]) < lengths[..., None]
    eps = torch.as_tensor(eps_np, dtype=reach.dtype).to(reach.device, non_blocking=True)
    active = torch.as_tensor(active_np).to(reach.device, non_blocking=True)
    return eps, active, lengths.max(axis=1).tolist()


def _stack_runs(name: str, array: object, n_runs: int) -> list[object]:
    if isinstance(array, torch.Tensor | np.ndarray):
        if array.ndim not in (2, 3):
            raise ValueError(f"{name} must be (R, n, d) (or (R, n) for targets), got {array.shape}")
        runs = list(array)
    elif isinstance(array, Sequence):
        runs = list(array)
    else:
        raise TypeError(f"{name} must be an array, a tensor or a sequence of per-run arrays")
    if len(runs) != n_runs:
        raise ValueError(f"{name} holds {len(runs)} runs but {n_runs} seeds were given")
    return runs


def fit_lossval_batched(
    x_train: object,
    y_train: object,
    x_val: object,
    *,
    task: Task,
    seeds: Sequence[RandomStateLike],
    epochs: int = 5,
    lr: float = 0.01,
    batch_size: int = 32,
    n_linear: int | None = None,
    hidden_width: int | None = None,
    device: str | torch.device = "auto",
    compile: bool = False,
) -> list[LossValResult]:
    """Train R LossVal runs together; run r equals ``fit_lossval(..., random_state=seeds[r])``.

    Parameters
    ----------
    x_train, y_train, x_val : array-like
        Per-run data stacked on a first axis: (R, n, d), (R, n, k) (or (R, n) for a
        single regression target) and (R, m, d); or sequences of R per-run 2-D arrays
        of identical shapes. Runs may hold different data.
    task : {"classification", "regression"}
    seeds : list of int, numpy RandomState/Generator or None
        One seed per run; run r uses it exactly as ``fit_lossval(random_state=seed)``.
    epochs, lr, batch_size, n_linear, hidden_width, device
        As in ``fit_lossval``.
    compile : bool
        Run the Sinkhorn iterations through ``torch.compile`` (about 2x faster on CPU
        once compiled; the first call compiles for seconds to a minute). Falls back to
        eager mode with a warning where compilation fails.

    Returns
    -------
    list of LossValResult, one per run, in the order of ``seeds``.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}"
        )
    seeds = [to_seed(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give one seed per run")
    n_runs = len(seeds)
    torch_device = resolve_device(device)
    # Validated and converted one run at a time: only the float32 stacks are held.
    stacks: list[torch.Tensor] = []
    for r, run in enumerate(
        zip(
            _stack_runs("x_train", x_train, n_runs),
            _stack_runs("y_train", y_train, n_runs),
            _stack_runs("x_val", x_val, n_runs),
            strict=True,
        )
    ):
        arrays = check_inputs(*run, task=task)
        if r == 0:
            stacks = [
                torch.empty((n_runs, *a.shape), dtype=torch.float32, device=torch_device)
                for a in arrays
            ]
        for name, stack, a in zip(("x_train", "y_train", "x_val"), stacks, arrays, strict=True):
            if a.shape != stack.shape[1:]:
                raise ValueError(
                    f"all runs must have the same {name} shape: run {r} has {a.shape}, "
                    f"run 0 {tuple(stack.shape[1:])}"
                )
            stack[r] = torch.as_tensor(a, dtype=torch.float32)
    x, y, xv = stacks
    _, n, d = x.shape
    k = y.shape[2]

    layers = init_stacked_mlp(
        task=task,
        seeds=seeds,
        n_features=d,
        n_outputs=k,
        n_linear=n_linear,
        hidden_width=hidden_width,
        device=torch_device,
    )
    weights = torch.ones(n_runs, n, device=torch_device, requires_grad=True)
    params = [t for layer in layers for t in layer]
    optimizer = torch.optim.Adam([*params, weights], lr=lr, **_adam_kwargs(torch_device))

    # Each run's farthest validation distance per point, as fit_lossval computes it.
    reach = torch.stack([_max_distance_to(x[r], xv[r]) for r in range(n_runs)])  # (R, n)
    shuffles = [EpochShuffler(n, seed + 1) for seed in seeds]
    ot = BatchedOT(xv, compiled=compile)
    runs = torch.arange(n_runs, device=torch_device).unsqueeze(1)

    for _ in range(epochs):
        # This epoch's permutations and Sinkhorn schedules: O(R n) memory, one transfer.
        perm = torch.stack([s.next() for s in shuffles]).to(torch_device)  # (R, n)
        eps, active, n_iterations = _epoch_schedules(reach, perm, batch_size)
        for b, start in enumerate(range(0, n, batch_size)):
            idx = perm[:, start : start + batch_size]
            x_batch = x[runs, idx]
            w_batch = weights[runs, idx]
            outputs = stacked_mlp_forward(task, layers, x_batch)
            per = per_sample_loss(task=task, outputs=outputs, targets=y[runs, idx])
            distance = ot(w_batch, x_batch, eps[b], active[b], n_iterations[b])
            loss = ((w_batch * per).sum(1) * distance**2).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    values = weights.detach().cpu().numpy().astype(np.float64)
    return [
        LossValResult(
            values=values[r].copy(),
            model=unstack_mlp(
                task=task,
                layers=layers,
                run=r,
                n_features=d,
                n_outputs=k,
                n_linear=n_linear,
                hidden_width=hidden_width,
            ),
            seed=seeds[r],
            device=str(torch_device),
        )
        for r in range(n_runs)
    ]
