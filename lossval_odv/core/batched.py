"""R independent LossVal runs of identical shape, trained together in one loop.

Every run keeps its own data, seed, network, weights, shuffling and Sinkhorn schedule;
only the arithmetic is shared:

* the R networks are one stack of parameters (R, out, in) / (R, out), applied with
  ``torch.baddbmm`` (a one-output layer as a reduction) and initialised exactly like
  ``make_mlp`` under each run's seed;
* the batches are gathered with per-run permutations (``epoch_permutations(n, epochs,
  seed + 1)``, drawn one epoch at a time), and every batch's diameter is 1.1 times the
  largest distance between its points and the run's validation set;
* the Sinkhorn divergences of the R batches are one call of the batched solver of
  ``lossval_odv.core.sinkhorn``, each problem running its own epsilon schedule;
* one Adam optimises the stacked tensors, packed so that every run's entries take the
  same code path whatever R is (``PackedRuns``): Adam is elementwise and every run takes
  the same number of steps, so this is R separate optimisers.

``fit_lossval`` is this engine with R = 1, and run r of a batch is bit for bit
``fit_lossval(..., random_state=seeds[r])`` on one CPU thread (tested; on CUDA or with
more threads, batched kernels may round differently). The reference it is tested against,
geomloss' own ``SamplesLoss`` every batch, agrees to float32 rounding.

Each epoch's schedules and diameters are computed when it starts (one transfer each way),
so on CUDA the batch loop never waits for the device, and memory stays O(R n): full
datasets (n = 100 000 and more) train in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lossval_odv.core.losses import DIAMETER_FACTOR, max_distance_to, per_sample_loss
from lossval_odv.core.mlp import Task, make_mlp
from lossval_odv.core.runtime import RandomStateLike, intra_op_threads, resolve_device, to_seed
from lossval_odv.core.sinkhorn import (
    BLUR,
    cross_potentials,
    log_weights,
    schedule_tensors,
    squared_cost,
    symmetric_potential,
)
from lossval_odv.core.validation import check_inputs

__all__ = [
    "BatchedOT",
    "LossValResult",
    "fit_lossval_batched",
    "init_stacked_mlp",
    "stacked_mlp_forward",
]


@dataclass(frozen=True)
class LossValResult:
    """What one run returns: the data values (final weights) and the trained network."""

    values: np.ndarray
    model: torch.nn.Module
    seed: int
    device: str


# ----------------------------------------------------------------------------------------
# Stacked MLPs
# ----------------------------------------------------------------------------------------


def _linear_layers(model: torch.nn.Sequential) -> list[torch.nn.Linear]:
    return [m for m in model if isinstance(m, torch.nn.Linear)]


def _mlp_in_forked_generator(seed: int | None, **shape: object) -> torch.nn.Sequential:
    """``make_mlp(**shape)`` initialised from a fork of torch's global generator (seeded
    with ``seed`` when given): the global generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return make_mlp(**shape)


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
        model = _mlp_in_forked_generator(
            seed,
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
        if w.shape[1] == 1:
            # one output (regression): the dot products as a reduction over the last axis,
            # computed alike for every R (batched BLAS picks another kernel when R = 1)
            h = (h * w).sum(-1, keepdim=True) + b.unsqueeze(1)
        else:
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
    """Run ``run``'s trained network as the ``nn.Sequential`` that ``make_mlp`` builds.

    Its throw-away initialisation draws from a forked generator: training leaves torch's
    global generator as it found it (the benchmark's experiments draw from it next).
    """
    model = _mlp_in_forked_generator(
        None,
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

    The validation side (ones as weights), its cost matrix and squared norms are computed
    once. Its debiasing potential (geomloss' ``g_bb``) depends on the validation set and
    the batch's diameter only; a batch's diameter is set by its farthest point, and the
    same few points set most batches' diameters, so ``self_potentials`` computes it once
    per distinct (run, diameter) and keeps it (up to ``SELF_CACHE_FLOATS``). Each call
    then runs the loop of the three other potentials.
    """

    def __init__(self, x_val: torch.Tensor, *, blur: float = BLUR) -> None:
        self.y = x_val
        self.y_sq = (x_val * x_val).sum(-1)
        self.b = torch.ones(x_val.shape[:2], dtype=x_val.dtype, device=x_val.device)
        self.b_log = log_weights(self.b)
        self.c_yy = squared_cost(x_val, x_val)
        self.blur = blur
        self._known: dict[tuple[int, float], torch.Tensor] = {}

    def self_potentials(self, runs: np.ndarray, diameters: np.ndarray) -> torch.Tensor:
        """``g_bb`` (U, M) of the problems (validation set of ``runs[u]``, ``diameters[u]``)."""
        keys = list(zip(runs.tolist(), diameters.tolist(), strict=True))
        todo = [i for i, key in enumerate(keys) if key not in self._known]
        if len(self._known) + len(todo) > SELF_CACHE_FLOATS // self.y.shape[1]:
            self._known.clear()  # bounded memory on long runs over full datasets
            todo = list(range(len(keys)))
        for lo in range(0, len(todo), SELF_CHUNK):  # (chunk, M, M) scratch at a time
            chunk = todo[lo : lo + SELF_CHUNK]
            rows = torch.as_tensor(runs[chunk], device=self.y.device)
            eps, active, lengths = schedule_tensors(
                diameters[chunk], dtype=self.y.dtype, device=self.y.device, blur=self.blur
            )
            potentials = symmetric_potential(
                self.b_log[rows],
                self.c_yy[rows],
                eps,
                active,
                int(lengths.max()),
                n_unmasked=int(lengths.min()),
                blur=self.blur,
            )
            for i, row in zip(chunk, potentials, strict=True):
                self._known[keys[i]] = row
        return torch.stack([self._known[key] for key in keys])

    def __call__(
        self,
        a: torch.Tensor,
        x: torch.Tensor,
        x_sq: torch.Tensor,
        g_bb: torch.Tensor,
        schedule: BatchSchedule,
    ) -> torch.Tensor:
        """The R divergences, differentiable wrt the weights ``a`` (R, N) of the batches
        ``x`` (R, N, D) with squared norms ``x_sq`` (R, N)."""
        n = x.shape[1]
        # No gradient flows through the points or the potentials (geomloss' envelope
        # gradient wrt the weights is the potentials): inference mode, the leanest one.
        with torch.inference_mode():
            # [C_xx | C_xy] = (|x|^2 + |z|^2) / 2 - x.z for z in [x; y], in one product;
            # C_yx is the transpose of C_xy (geomloss computes it apart: equal up to rounding)
            z = torch.cat((x, self.y), 1)
            half_sq = 0.5 * (x_sq.unsqueeze(2) + torch.cat((x_sq, self.y_sq), 1).unsqueeze(1))
            c_x = torch.baddbmm(half_sq, x, z.transpose(1, 2), alpha=-1)
            f_aa, g_ab, f_ba = cross_potentials(
                log_weights(a.detach()),
                self.b_log,
                c_x,
                c_x[:, :, n:].transpose(1, 2),
                schedule.eps,
                schedule.active,
                schedule.n_iterations,
                n_unmasked=schedule.n_unmasked,
                blur=self.blur,
            )
            b_term = (self.b * (g_ab - g_bb)).sum(1)  # the validation side's term
        a_potential = f_ba - f_aa  # a normal tensor: autograd saves it for the backward
        return (a * a_potential).sum(1) + b_term


PACK_ALIGN = 64  # floats: a multiple of every CPU vector width times its unrolling


class PackedRuns:
    """The R runs' trained tensors (network and weights) as views of one (R, P) buffer.

    Each run's entries start at a multiple of ``PACK_ALIGN``, P too, and the padding
    is never read: an elementwise kernel over the buffer (Adam's) puts every real entry
    in its vectorised main loop, never in a scalar tail that rounds differently. So run
    r's update is bit for bit the same whatever R is, and a batched run equals the run
    trained alone (R = 1) exactly. One buffer is also one Adam call.

    ``tensors`` are (R, ...) initial values; ``views`` the trainable leaves, in order.
    """

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        first = tensors[0]
        sizes = [t[0].numel() for t in tensors]
        width = -(-sum(sizes) // PACK_ALIGN) * PACK_ALIGN
        self.buffer = torch.zeros(first.shape[0], width, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.buffer)
        self.views: list[torch.Tensor] = []
        self._grad_views: list[torch.Tensor] = []
        start = 0
        for tensor, size in zip(tensors, sizes, strict=True):
            view = self.buffer[:, start : start + size].view(tensor.shape)
            view.copy_(tensor.detach())
            self.views.append(view.requires_grad_())
            self._grad_views.append(self.grad[:, start : start + size].view(tensor.shape))
            start += size

    def gradient(self, grads: Sequence[torch.Tensor]) -> torch.Tensor:
        """The views' gradients laid out like the buffer (zeros in the padding)."""
        for view, grad in zip(self._grad_views, grads, strict=True):
            view.copy_(grad)
        return self.grad


class StackedAdam:
    """Adam on a fixed list of tensors, stepped with gradients from ``torch.autograd.grad``.

    Where this torch has Adam's fused kernel for the device, it is called directly, the
    update of ``torch.optim.Adam(fused=True)`` bit for bit: at LossVal's step sizes that
    optimizer's Python wrapper and the ``.grad`` round trip cost more than the update.
    Adam is elementwise, so one Adam on R stacked networks is R separate optimisers.
    Elsewhere ``torch.optim.Adam`` runs as usual.
    """

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, params: list[torch.Tensor], *, lr: float) -> None:
        self.params = params
        self.lr = lr
        self.fused = _has_fused_adam(params[0].device)
        if self.fused:
            self.exp_avgs = [torch.zeros_like(p) for p in params]
            self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
            # the fused kernel's float32 step count: every tensor steps together, so one
            # counter serves them all (torch.optim keeps one per tensor, always equal)
            self.step_count = torch.zeros((), device=params[0].device)
        else:
            self.optimizer = torch.optim.Adam(params, lr=lr)

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor]) -> None:
        if not self.fused:
            for p, g in zip(self.params, grads, strict=True):
                p.grad = g
            self.optimizer.step()
            return
        self.step_count.add_(1)
        torch._fused_adam_(
            self.params,
            # .backward() would lay gradients out like their tensors; autograd.grad may
            # return expanded or transposed ones, which the kernel must not see
            [g if g.is_contiguous() else g.contiguous() for g in grads],
            self.exp_avgs,
            self.exp_avg_sqs,
            [],
            [self.step_count] * len(self.params),
            amsgrad=False,
            lr=self.lr,
            beta1=self.BETAS[0],
            beta2=self.BETAS[1],
            weight_decay=0.0,
            eps=self.EPS,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


def _has_fused_adam(device: torch.device) -> bool:
    """Whether ``torch.optim.Adam(fused=True)`` works here (CPU from torch 2.4)."""
    if not hasattr(torch, "_fused_adam_"):
        return False
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


class EpochShuffler:
    """The permutations of ``epoch_permutations(n, epochs, seed)``, one epoch at a time."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=self.generator)


REACH_CHUNK = 65536  # rows of cdist at a time: bounded memory on full datasets
SELF_CHUNK = 256  # self-transport problems at a time: (256, M, M) scratch
SELF_CACHE_FLOATS = 2**24  # 64 MiB of float32 debiasing potentials at most


def _max_distance_to(x: torch.Tensor, x_val: torch.Tensor) -> torch.Tensor:
    """``max_distance_to`` in row chunks (identical to it up to ``REACH_CHUNK`` rows)."""
    return torch.cat([max_distance_to(c, x_val) for c in x.split(REACH_CHUNK)])


@dataclass(frozen=True)
class BatchSchedule:
    """One batch's Sinkhorn schedules for the R runs."""

    eps: torch.Tensor  # (R, L) on the device
    active: torch.Tensor  # (R, L) on the device: where each run's schedule is defined
    n_iterations: int  # the longest schedule
    n_unmasked: int  # the shortest one: iterations before it need no masking
    self_rows: torch.Tensor  # (R,) each run's row in the epoch's g_bb table


@dataclass(frozen=True)
class EpochSchedules:
    """An epoch's batch schedules and its distinct (run, diameter) self-transport problems."""

    batches: list[BatchSchedule]
    self_runs: np.ndarray  # (U,) int
    self_diameters: np.ndarray  # (U,) float64


def _epoch_schedules(reach: torch.Tensor, perm: torch.Tensor, batch_size: int) -> EpochSchedules:
    """Per-batch, per-run Sinkhorn schedules of one epoch (one transfer each way).

    A batch's diameter is 1.1 times the largest ``reach`` (each point's farthest
    validation distance) among its points, in float32, for R runs at once.
    """
    n_runs, n = perm.shape
    n_batches = -(-n // batch_size)
    padded = torch.full((n_runs, n_batches * batch_size), -torch.inf, device=reach.device)
    padded[:, :n] = torch.gather(reach, 1, perm)
    per_batch = DIAMETER_FACTOR * padded.view(n_runs, n_batches, batch_size).amax(dim=-1)
    diameters = per_batch.cpu().numpy().astype(np.float64).T  # (n_batches, R)
    eps, active, lengths = schedule_tensors(diameters, dtype=reach.dtype, device=reach.device)
    pairs = np.stack([np.broadcast_to(np.arange(n_runs), diameters.shape), diameters], -1)
    unique, rows = np.unique(pairs.reshape(-1, 2), axis=0, return_inverse=True)
    rows = torch.as_tensor(rows.reshape(n_batches, n_runs)).to(reach.device, non_blocking=True)
    batches = [
        BatchSchedule(
            eps=eps[b],
            active=active[b],
            n_iterations=int(lengths[b].max()),
            n_unmasked=int(lengths[b].min()),
            self_rows=rows[b],
        )
        for b in range(n_batches)
    ]
    return EpochSchedules(batches, unique[:, 0].astype(np.int64), unique[:, 1])


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
    cpu_threads: int | None = 1,
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
    cpu_threads : int or None
        torch's intra-op threads while training on the CPU (restored afterwards); None
        keeps the current setting. One by default: a step's tensors are small, and
        threads cost more than they give (``benchmarks/bench_batched.py --threads``).

    Returns
    -------
    list of LossValResult, one per run, in the order of ``seeds``.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}"
        )
    if cpu_threads is not None and cpu_threads < 1:
        raise ValueError(f"cpu_threads must be >= 1 or None, got {cpu_threads}")
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
    packed = PackedRuns([*(t for layer in layers for t in layer), torch.ones(n_runs, n)])
    *params, weights = packed.views
    layers = list(zip(params[::2], params[1::2], strict=True))
    optimizer = StackedAdam([packed.buffer], lr=lr)

    # Each run's farthest validation distance per point, as fit_lossval computes it.
    reach = torch.stack([_max_distance_to(x[r], xv[r]) for r in range(n_runs)])  # (R, n)
    shuffles = [EpochShuffler(n, seed + 1) for seed in seeds]
    ot = BatchedOT(xv)
    # features, targets and squared norms (for the costs) side by side: one gather a batch
    data = torch.cat((x, y, (x * x).sum(-1, keepdim=True)), 2)
    runs = torch.arange(n_runs, device=torch_device).unsqueeze(1)

    with intra_op_threads(cpu_threads if torch_device.type == "cpu" else None):
        for _ in range(epochs):
            # This epoch's permutations and Sinkhorn schedules: O(R n) memory, one transfer.
            perm = torch.stack([s.next() for s in shuffles]).to(torch_device)  # (R, n)
            schedules = _epoch_schedules(reach, perm, batch_size)
            self_potentials = ot.self_potentials(schedules.self_runs, schedules.self_diameters)
            for schedule, start in zip(schedules.batches, range(0, n, batch_size), strict=True):
                idx = perm[:, start : start + batch_size]
                batch = data[runs, idx]
                x_batch, y_batch, x_sq = batch[..., :d], batch[..., d : d + k], batch[..., -1]
                w_batch = weights[runs, idx]
                outputs = stacked_mlp_forward(task, layers, x_batch)
                per = per_sample_loss(task=task, outputs=outputs, targets=y_batch)
                g_bb = self_potentials[schedule.self_rows]
                distance = ot(w_batch, x_batch, x_sq, g_bb, schedule)
                loss = ((w_batch * per).sum(1) * distance**2).sum()
                optimizer.step([packed.gradient(torch.autograd.grad(loss, packed.views))])

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
