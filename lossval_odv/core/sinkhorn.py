"""A batched re-implementation of geomloss' tensorized debiased Sinkhorn divergence.

geomloss' ``SamplesLoss("sinkhorn", p=2, blur=blur, diameter=d, scaling=0.5,
backend="tensorized")`` accepts a batch of problems, but only with one diameter, hence one
epsilon schedule, for all of them. LossVal needs a different diameter for every batch of
every run, so this module runs R problems at once, each with its own schedule:

* ``epsilon_schedules`` reproduces ``geomloss...epsilon_schedule`` bit for bit, vectorised
  over many diameters, and pads the schedules to a common length;
* ``sinkhorn_loop_batched`` is ``geomloss...sinkhorn_loop`` (single scale, debiased,
  balanced) where problem r only updates its potentials while ``i < length[r]``, so a
  problem whose schedule is shorter keeps exactly the potentials it would have had alone;
  then, like geomloss, one last extrapolation step at ``eps = blur**p`` with autograd on and
  the loop's potentials detached ("last_extrapolation");
* ``sinkhorn_divergence`` puts them together with geomloss' cost matrices (``|x-y|^2 / 2``
  with the same ``detach`` pattern) and ``sinkhorn_cost``: the values and the gradients wrt
  the weights and the points match geomloss problem by problem.

Only what LossVal uses is supported: p = 2, ``reach=None`` (balanced), ``debias=True``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

BLUR = 0.05
SCALING = 0.5
P = 2
LOG_WEIGHT_FLOOR = -100000.0  # geomloss.log_weights: log(a) with a <= 0 -> -1e5
EXP_FLOOR = -80.0  # see logsumexp_last


def epsilon_schedules(
    diameters: Sequence[float] | np.ndarray,
    *,
    blur: float = BLUR,
    scaling: float = SCALING,
) -> tuple[np.ndarray, np.ndarray]:
    """geomloss' epsilon schedules for many diameters, padded to one length.

    For every diameter ``d`` geomloss uses
    ``[d**p] + [exp(e) for e in np.arange(p log d, p log blur, p log scaling)] + [blur**p]``.
    Returns ``(eps, lengths)``: ``eps`` has shape ``diameters.shape + (L,)`` in float64,
    ``L = lengths.max()``; entries past a schedule's length are ``blur**p`` (any positive
    value would do: they are masked out).
    """
    d = np.asarray(diameters, dtype=np.float64)
    shape = d.shape
    d = d.reshape(-1)
    if d.size and not (np.isfinite(d).all() and (d > 0).all()):
        raise ValueError("diameters must be finite and positive")
    start = P * np.log(d)
    stop = P * np.log(blur)
    step = P * np.log(scaling)
    # np.arange(start, stop, step) on floats: length ceil((stop - start) / step), values
    # start + i * delta with delta = (start + step) - start (numpy's "fill" rule).
    n_arange = np.maximum(np.ceil((stop - start) / step), 0).astype(np.int64)
    delta = (start + step) - start
    length = n_arange + 2
    width = int(length.max()) if d.size else 2
    final = blur**P
    eps = np.full((d.size, width), final, dtype=np.float64)
    # Python's float power (C pow), not numpy's x * x: they differ in the last bit
    eps[:, 0] = [float(v) ** P for v in d]
    if width > 2:
        i = np.arange(width - 2, dtype=np.float64)
        values = np.exp(start[:, None] + i[None, :] * delta[:, None])
        # numpy's arange stores start and start + delta as they are
        values[:, 0] = np.exp(start)
        if width > 3:
            values[:, 1] = np.exp(start + delta)
        inside = np.arange(width - 2)[None, :] < n_arange[:, None]
        eps[:, 1:-1] = np.where(inside, values, final)
    eps[np.arange(d.size), length - 1] = final
    return eps.reshape(*shape, width), length.reshape(shape)


def log_weights(a: torch.Tensor) -> torch.Tensor:
    """geomloss.log_weights: ``log(a)``, with -100000 where ``a <= 0``."""
    return torch.where(a > 0, a.log(), torch.full_like(a, LOG_WEIGHT_FLOOR))


def squared_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """geomloss' p = 2 cost ``|x_i - y_j|^2 / 2`` for (R, N, D), (R, M, D) -> (R, N, M)."""
    d_xx = (x * x).sum(-1).unsqueeze(2)
    d_xy = torch.matmul(x, y.permute(0, 2, 1))
    d_yy = (y * y).sum(-1).unsqueeze(1)
    return (d_xx - 2 * d_xy + d_yy) / 2


def logsumexp_last(z: torch.Tensor) -> torch.Tensor:
    """``torch.logsumexp(z, -1)`` for finite ``z``, overwriting ``z``, and fast on CPU.

    Same arithmetic as torch's (shift by the row max, exp, sum, log, add the max back),
    except that shifted values below -80 are raised to -80 before ``exp``: their terms
    become 1.8e-35 instead of (nearly) 0 next to the max term's 1, which changes no float32
    or float64 sum, while ``exp`` of arguments below about -88 takes a slow path on x86
    CPUs (10x slower), and Sinkhorn's small temperatures produce many of them.
    """
    if z.requires_grad:  # the last step, differentiable wrt the points: torch's own
        return z.logsumexp(-1)
    m = z.amax(-1, keepdim=True)
    s = z.sub_(m).clamp_min_(EXP_FLOOR).exp_().sum(-1)
    return s.log_().add_(m.squeeze(-1))


def softmin(eps: torch.Tensor, cost: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``-eps * logsumexp_j(h_j - C_ij / eps)`` with a per-problem ``eps`` of shape (R, 1).

    ``addcdiv`` computes ``h + (-C) / eps``, the same float as geomloss' ``h - C / eps``,
    in one pass.
    """
    z = torch.addcdiv(h.unsqueeze(1), cost, eps.unsqueeze(2), value=-1)
    return -eps * logsumexp_last(z)


# ----------------------------------------------------------------------------------------
# The four transport problems of one Sinkhorn iteration, fused
#
# With z = [x; y] (K = N + M points) and the full cost matrix C = [[C_xx, C_xy], [C_yx, C_yy]],
# the four soft-min updates of an iteration are, row by row, two log-sum-exps over the
# column blocks [x | y]:
#   rows of x: over x -> f_aa (h = a_log + f_aa/eps),  over y -> f_ba (h = b_log + g_ab/eps)
#   rows of y: over x -> g_ab (h = a_log + f_ba/eps),  over y -> g_bb (h = b_log + g_bb/eps)
# so with the potentials stored as P (R, 2, K), P[:, 0] = [f_aa; g_ab], P[:, 1] = [f_ba; g_bb],
# the row-block-0 columns use h = w_log + P[:, 0] / eps and row block 1 uses
# w_log + P[:, 1] / eps, where w_log = [a_log; b_log]; and the result has P's layout.
# One iteration is then ~20 tensor operations instead of ~45 (what matters for small R and
# on GPUs), with the same arithmetic element by element as geomloss' four soft-mins.
# ----------------------------------------------------------------------------------------


def _fused_softmin(
    p: torch.Tensor, e: torch.Tensor, w_log: torch.Tensor, cost: torch.Tensor, n: int
) -> torch.Tensor:
    """The four soft-min updates from potentials ``p`` (R, 2, K) at temperatures ``e`` (R, 1)."""
    e3 = e.unsqueeze(2)
    h = w_log.unsqueeze(1) + p / e3  # (R, 2, K)
    z = torch.empty_like(cost)
    torch.addcdiv(h[:, 0:1], cost[:, :n], e3, value=-1, out=z[:, :n])
    torch.addcdiv(h[:, 1:2], cost[:, n:], e3, value=-1, out=z[:, n:])
    zx, zy = z[:, :, :n], z[:, :, n:]
    m = torch.stack((zx.amax(-1), zy.amax(-1)), 1)  # (R, 2, K)
    zx.sub_(m[:, 0].unsqueeze(2))
    zy.sub_(m[:, 1].unsqueeze(2))
    z.clamp_min_(EXP_FLOOR).exp_()
    s = torch.stack((zx.sum(-1), zy.sum(-1)), 1)
    return -e3 * s.log_().add_(m)


def _softmin_pure(eps: torch.Tensor, cost: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``softmin`` without in-place operations, for ``torch.compile`` to fuse."""
    z = h.unsqueeze(1) - cost / eps.unsqueeze(2)
    m = z.amax(-1, keepdim=True)
    return -eps * ((z - m).clamp_min(EXP_FLOOR).exp().sum(-1).log() + m.squeeze(-1))


def _fused_softmin_pure(
    p: torch.Tensor, e: torch.Tensor, w_log: torch.Tensor, cost: torch.Tensor, n: int
) -> torch.Tensor:
    """``_fused_softmin`` as geomloss' four soft-mins, for ``torch.compile`` to fuse."""
    a_log, b_log = w_log[:, :n], w_log[:, n:]
    f_aa, g_ab, f_ba, g_bb = p[:, 0, :n], p[:, 0, n:], p[:, 1, :n], p[:, 1, n:]
    ft_aa = _softmin_pure(e, cost[:, :n, :n], a_log + f_aa / e)
    ft_ba = _softmin_pure(e, cost[:, :n, n:], b_log + g_ab / e)
    gt_ab = _softmin_pure(e, cost[:, n:, :n], a_log + f_ba / e)
    gt_bb = _softmin_pure(e, cost[:, n:, n:], b_log + g_bb / e)
    return torch.stack((torch.cat((ft_aa, gt_ab), 1), torch.cat((ft_ba, gt_bb), 1)), 1)


def _iteration(p, e, on, w_log, cost, n: int, *, softmin_fn=_fused_softmin):
    """One symmetric Sinkhorn update ``p <- (p + T(p)) / 2`` where ``on`` (R, 1)."""
    return torch.where(on.unsqueeze(2), 0.5 * (p + softmin_fn(p, e, w_log, cost, n)), p)


def _pure_iteration(p, e, on, w_log, cost, n: int):
    return _iteration(p, e, on, w_log, cost, n, softmin_fn=_fused_softmin_pure)


_compiled: dict[str, object] = {}  # device type -> compiled iteration, or None if it failed


def _compiled_iteration(device_type: str):
    if device_type not in _compiled:
        try:
            _compiled[device_type] = torch.compile(_pure_iteration, dynamic=True)
        except Exception as exc:  # no compiler backend at all
            warnings.warn(f"torch.compile unavailable ({exc}); Sinkhorn runs eagerly", stacklevel=3)
            _compiled[device_type] = None
    return _compiled[device_type]


def _run_iteration(compiled: bool, *args):
    if compiled:
        device_type = args[0].device.type
        fn = _compiled_iteration(device_type)
        if fn is not None:
            try:
                return fn(*args)
            except Exception as exc:  # e.g. no C++ compiler / triton: fall back, once
                warnings.warn(
                    f"torch.compile of the Sinkhorn loop failed ({type(exc).__name__}: {exc}); "
                    "running it eagerly",
                    stacklevel=3,
                )
                _compiled[device_type] = None
    return _iteration(*args)


def sinkhorn_loop_batched(
    a_log: torch.Tensor,
    b_log: torch.Tensor,
    c_xx: torch.Tensor,
    c_yy: torch.Tensor,
    c_xy: torch.Tensor,
    c_yx: torch.Tensor,
    eps: torch.Tensor,
    active: torch.Tensor,
    n_iterations: int,
    *,
    blur: float = BLUR,
    compiled: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """geomloss' debiased single-scale Sinkhorn loop with one schedule per problem.

    ``eps`` (R, L) holds each problem's schedule (same dtype as the costs), ``active``
    (R, L) says where it is defined, ``n_iterations <= L`` is the longest schedule (a host
    int, so the loop never syncs). Returns ``(f_aa, g_bb, g_ab, f_ba)`` like geomloss: the
    loop runs without autograd, the last extrapolation at ``eps = blur**2`` with it
    (through the cost matrices, the weights being detached, as in geomloss).
    ``compiled=True`` runs the loop's iterations through ``torch.compile`` (falling back
    to eager mode, with a warning, where that fails).
    """
    n = c_xx.shape[1]
    with torch.no_grad():
        cost = torch.cat(
            (torch.cat((c_xx, c_xy), 2), torch.cat((c_yx, c_yy), 2)), 1
        )  # (R, K, K), no autograd
        w_log = torch.cat((a_log, b_log), 1)
        # initialisation at eps_0 from zero potentials: h = w_log + 0 / eps = w_log
        p = _fused_softmin(torch.zeros_like(cost[:, :2]), eps[:, :1], w_log, cost, n)
        for i in range(n_iterations):
            p = _run_iteration(compiled, p, eps[:, i : i + 1], active[:, i : i + 1], w_log, cost, n)
    final = blur**P  # every schedule ends here; geomloss extrapolates at its last eps
    e = torch.full_like(eps[:, :1], final)
    if not any(c.requires_grad for c in (c_xx, c_yy, c_xy, c_yx)) or not torch.is_grad_enabled():
        with torch.no_grad():
            p = _fused_softmin(p, e, w_log, cost, n)
        return p[:, 0, :n], p[:, 1, n:], p[:, 0, n:], p[:, 1, :n]
    # differentiable wrt the points: geomloss' four soft-mins on its cost matrices
    f_aa, g_ab, f_ba, g_bb = p[:, 0, :n], p[:, 0, n:], p[:, 1, :n], p[:, 1, n:]
    a_log, b_log = a_log.detach(), b_log.detach()
    return (
        softmin(e, c_xx, a_log + f_aa / e),
        softmin(e, c_yy, b_log + g_bb / e),
        softmin(e, c_yx, a_log + f_ba / e),
        softmin(e, c_xy, b_log + g_ab / e),
    )


def schedule_tensors(
    diameters: Sequence[float] | np.ndarray,
    *,
    dtype: torch.dtype,
    device: torch.device | str,
    blur: float = BLUR,
    scaling: float = SCALING,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(eps, active, n_iterations)`` for ``sinkhorn_loop_batched`` from R diameters."""
    eps_np, lengths = epsilon_schedules(diameters, blur=blur, scaling=scaling)
    width = eps_np.shape[-1]
    active_np = np.arange(width)[None, :] < lengths[:, None]
    eps = torch.as_tensor(eps_np, dtype=dtype, device=device)
    active = torch.as_tensor(active_np, device=device)
    return eps, active, width


def sinkhorn_divergence(
    a: torch.Tensor,
    x: torch.Tensor,
    b: torch.Tensor,
    y: torch.Tensor,
    diameters: Sequence[float] | np.ndarray,
    *,
    blur: float = BLUR,
    scaling: float = SCALING,
) -> torch.Tensor:
    """Debiased Sinkhorn divergences of R problems, each with its own diameter, shape (R,).

    Problem r equals ``SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling,
    diameter=diameters[r], backend="tensorized")(a[r], x[r], b[r], y[r])``, value and
    gradients (wrt ``a``, ``b``, ``x``, ``y``), up to floating-point rounding.
    a (R, N), x (R, N, D), b (R, M), y (R, M, D).
    """
    if x.dim() != 3 or y.dim() != 3 or a.dim() != 2 or b.dim() != 2:
        raise ValueError("expected a (R, N), x (R, N, D), b (R, M), y (R, M, D)")
    if len(diameters) != x.shape[0]:
        raise ValueError(f"need one diameter per problem: {len(diameters)} for {x.shape[0]}")
    eps, active, n_iterations = schedule_tensors(
        diameters, dtype=x.dtype, device=x.device, blur=blur, scaling=scaling
    )
    c_xy = squared_cost(x, y.detach())
    c_yx = squared_cost(y, x.detach())
    c_xx = squared_cost(x, x.detach())
    c_yy = squared_cost(y, y.detach())
    f_aa, g_bb, g_ab, f_ba = sinkhorn_loop_batched(
        log_weights(a),
        log_weights(b),
        c_xx,
        c_yy,
        c_xy,
        c_yx,
        eps,
        active,
        n_iterations,
        blur=blur,
    )
    return (a * (f_ba - f_aa)).sum(1) + (b * (g_ab - g_bb)).sum(1)
