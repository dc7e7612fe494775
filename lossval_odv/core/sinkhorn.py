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
# The loop, split in two independent parts
#
# geomloss' debiased loop updates four potentials per iteration: f_aa (x -> x), g_bb
# (y -> y), g_ab and f_ba (between x and y). g_bb never meets x or a: it depends on the
# validation side and on the epsilon schedule only. So it is computed on its own
# (``symmetric_potential``), where LossVal can share it between all batches with the same
# diameter, and the three others are fused (``_cross_update``):
#
#   rows of x over the columns [x | y]   -> f_aa (h = a_log + f_aa/eps), f_ba (h = b_log + g_ab/eps)
#   rows of y over the columns of x      -> g_ab (h = a_log + f_ba/eps)
#
# With the potentials stored as P = [f_aa | g_ab | f_ba] (R, 1, K + n), K = n + m, and the
# log-weights as W = [a_log | b_log | a_log], h = W + P / eps gives both rows' columns at
# once: h[..., :K] for the rows of x, h[..., K:] for the rows of y. One update is about 17
# tensor operations on n (n + 2m) cost entries, element by element the arithmetic of
# geomloss' soft-mins (up to fused multiply-adds).
# ----------------------------------------------------------------------------------------


def _symmetric_update(g: torch.Tensor, e: torch.Tensor, w_log: torch.Tensor, cost: torch.Tensor):
    """geomloss' self-transport soft-min ``T(g)`` at temperatures ``e`` (R, 1)."""
    return softmin(e, cost, w_log + g / e)


def _symmetric_loop(
    w_log: torch.Tensor,
    cost: torch.Tensor,
    eps: torch.Tensor,
    active: torch.Tensor,
    n_iterations: int,
    n_unmasked: int,
) -> torch.Tensor:
    """The self-transport potential after the loop, before the last extrapolation."""
    with torch.inference_mode():
        g = softmin(eps[:, :1], cost, w_log)  # zero potentials at eps_0: h = w_log
        for i in range(n_iterations):
            e = eps[:, i : i + 1]
            g_new = 0.5 * (g + _symmetric_update(g, e, w_log, cost))
            g = g_new if i < n_unmasked else torch.where(active[:, i : i + 1], g_new, g)
    return g


def symmetric_potential(
    w_log: torch.Tensor,
    cost: torch.Tensor,
    eps: torch.Tensor,
    active: torch.Tensor,
    n_iterations: int,
    *,
    n_unmasked: int = 0,
    blur: float = BLUR,
) -> torch.Tensor:
    """The debiasing potential of geomloss' loop (its ``g_bb``) for R problems, shape (R, M).

    ``w_log`` (R, M) log-weights, ``cost`` (R, M, M) the self cost, ``eps``/``active``
    (R, L) the schedules; the result includes the last extrapolation at ``blur**2``.
    Iterations ``i < n_unmasked`` are active for every problem (no masking needed).
    """
    g = _symmetric_loop(w_log, cost, eps, active, n_iterations, n_unmasked)
    with torch.inference_mode():
        return _symmetric_update(g, torch.full_like(eps[:, :1], blur**P), w_log, cost)


class _CrossBuffers:
    """Scratch tensors and their views for one cross loop, allocated once per loop.

    Potentials and log-weights are kept as (R, 1, K + n) and temperatures as (R, 1, 1),
    so that every operation of an update broadcasts without a reshape.
    """

    def __init__(self, w: torch.Tensor, n: int, m: int) -> None:
        r = w.shape[0]
        k = n + m
        self.z = torch.empty(r, n * k + m * n, dtype=w.dtype, device=w.device)
        zx = self.z[:, : n * k].view(r, n, k)  # rows of x over [x | y]
        zy = self.z[:, n * k :].view(r, m, n)  # rows of y over x
        self.zx, self.zy = zx, zy
        self.blocks = (zx[:, :, :n], zy, zx[:, :, n:])  # -> f_aa, g_ab, f_ba
        self.h = torch.empty(r, 1, k + n, dtype=w.dtype, device=w.device)
        self.h_x, self.h_y = self.h[:, :, :k], self.h[:, :, k:]
        self.top = torch.empty_like(self.h)
        self.total = torch.empty_like(self.h)
        bounds = ((0, n), (n, k), (k, k + n))
        self.tops = [self.top[:, 0, lo:hi] for lo, hi in bounds]
        self.tops_3d = [t.unsqueeze(2) for t in self.tops]
        self.totals = [self.total[:, 0, lo:hi] for lo, hi in bounds]


def _cross_update(
    p: torch.Tensor,
    e: torch.Tensor,
    w: torch.Tensor,
    c_x: torch.Tensor,
    c_yx: torch.Tensor,
    buf: _CrossBuffers,
) -> torch.Tensor:
    """The three cross log-sum-exps at temperatures ``e`` (R, 1, 1), in P's layout
    (R, 1, K + n): the soft-mins are ``T(P) = -e * result``. The result lives in ``buf``
    until the next update."""
    torch.addcdiv(w, p, e, out=buf.h)  # h = W + P / e
    torch.addcdiv(buf.h_x, c_x, e, value=-1, out=buf.zx)  # h - C / e
    torch.addcdiv(buf.h_y, c_yx, e, value=-1, out=buf.zy)
    # the three blocks written out: this runs ~12 times a step, Python loops cost here
    z_aa, z_ab, z_ba = buf.blocks
    top_aa, top_ab, top_ba = buf.tops
    top3_aa, top3_ab, top3_ba = buf.tops_3d
    torch.amax(z_aa, -1, out=top_aa)
    torch.amax(z_ab, -1, out=top_ab)
    torch.amax(z_ba, -1, out=top_ba)
    z_aa.sub_(top3_aa)
    z_ab.sub_(top3_ab)
    z_ba.sub_(top3_ba)
    buf.z.clamp_min_(EXP_FLOOR).exp_()  # see logsumexp_last
    total_aa, total_ab, total_ba = buf.totals
    torch.sum(z_aa, -1, out=total_aa)
    torch.sum(z_ab, -1, out=total_ab)
    torch.sum(z_ba, -1, out=total_ba)
    return buf.total.log_().add_(buf.top)


def _cross_loop(
    a_log: torch.Tensor,
    b_log: torch.Tensor,
    c_x: torch.Tensor,
    c_yx: torch.Tensor,
    eps: torch.Tensor,
    active: torch.Tensor,
    n_iterations: int,
    n_unmasked: int,
) -> tuple[torch.Tensor, torch.Tensor, _CrossBuffers]:
    """The cross potentials P (R, 1, K + n) after the loop, before the last extrapolation,
    with the log-weights W and the buffers the extrapolation reuses."""
    with torch.inference_mode():
        w = torch.cat((a_log, b_log, a_log), 1).unsqueeze(1)
        buf = _CrossBuffers(w, c_x.shape[1], c_yx.shape[1])
        # every iteration's temperature as an (R, 1, 1) view, and its negative
        e = eps[:, None, :n_iterations, None].unbind(2)
        neg_e = (-eps[:, None, :n_iterations, None]).unbind(2)
        on = active[:, None, :n_iterations, None].unbind(2)
        lse = _cross_update(torch.zeros_like(w), e[0], w, c_x, c_yx, buf)
        p = lse.mul(neg_e[0])  # T(0), out of the scratch buffer
        for i in range(n_iterations):
            lse = _cross_update(p, e[i], w, c_x, c_yx, buf)
            p_new = torch.addcmul(p, lse, neg_e[i]).mul_(0.5)  # (P + T(P)) / 2
            p = p_new if i < n_unmasked else torch.where(on[i], p_new, p)
    return p, w, buf


def _split(p: torch.Tensor, n: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``f_aa``, ``g_ab``, ``f_ba`` out of P's layout (R, K + n)."""
    return p[:, :n], p[:, n : n + m], p[:, n + m :]


def cross_potentials(
    a_log: torch.Tensor,
    b_log: torch.Tensor,
    c_x: torch.Tensor,
    c_yx: torch.Tensor,
    eps: torch.Tensor,
    active: torch.Tensor,
    n_iterations: int,
    *,
    n_unmasked: int = 0,
    blur: float = BLUR,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """geomloss' ``f_aa``, ``g_ab``, ``f_ba`` (after the last extrapolation), without autograd.

    ``c_x`` (R, N, N + M) is ``[C_xx | C_xy]``, ``c_yx`` (R, M, N); ``eps``/``active``
    (R, L) the schedules, iterations ``i < n_unmasked`` active for every problem.
    """
    p, w, buf = _cross_loop(a_log, b_log, c_x, c_yx, eps, active, n_iterations, n_unmasked)
    with torch.inference_mode():
        final = torch.full_like(eps[:, :1], blur**P).unsqueeze(1)
        p = _cross_update(p, final, w, c_x, c_yx, buf).mul_(-final).squeeze(1)
    return _split(p, c_x.shape[1], c_yx.shape[1])


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """geomloss' debiased single-scale Sinkhorn loop with one schedule per problem.

    ``eps`` (R, L) holds each problem's schedule (same dtype as the costs), ``active``
    (R, L) says where it is defined, ``n_iterations <= L`` is the longest schedule (a host
    int, so the loop never syncs). Returns ``(f_aa, g_bb, g_ab, f_ba)`` like geomloss: the
    loop runs without autograd, the last extrapolation at ``eps = blur**2`` with it
    (through the cost matrices, the weights being detached, as in geomloss).
    """
    if not any(c.requires_grad for c in (c_xx, c_yy, c_xy, c_yx)) or not torch.is_grad_enabled():
        g_bb = symmetric_potential(b_log, c_yy, eps, active, n_iterations, blur=blur)
        f_aa, g_ab, f_ba = cross_potentials(
            a_log, b_log, torch.cat((c_xx, c_xy), 2), c_yx, eps, active, n_iterations, blur=blur
        )
        return f_aa, g_bb, g_ab, f_ba
    # differentiable wrt the points: the loops without autograd, then geomloss' four
    # soft-mins on its cost matrices
    n, m = c_xx.shape[1], c_yy.shape[1]
    a_log, b_log = a_log.detach(), b_log.detach()
    g_bb = _symmetric_loop(b_log, c_yy.detach(), eps, active, n_iterations, 0)
    c_x = torch.cat((c_xx, c_xy), 2).detach()
    p, _, _ = _cross_loop(a_log, b_log, c_x, c_yx.detach(), eps, active, n_iterations, 0)
    f_aa, g_ab, f_ba = _split(p.squeeze(1), n, m)
    e = torch.full_like(eps[:, :1], blur**P)
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
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``epsilon_schedules`` on the device: ``(eps, active, lengths)``.

    ``eps`` (..., L) in ``dtype`` and ``active`` (..., L), where each schedule is defined,
    are on ``device``; ``lengths`` (...) stays on the host, so that the loops' bounds
    (its max and min) never need a synchronisation.
    """
    eps_np, lengths = epsilon_schedules(diameters, blur=blur, scaling=scaling)
    active_np = np.arange(eps_np.shape[-1]) < lengths[..., None]
    eps = torch.as_tensor(eps_np, dtype=dtype).to(device, non_blocking=True)
    active = torch.as_tensor(active_np).to(device, non_blocking=True)
    return eps, active, lengths


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
    eps, active, lengths = schedule_tensors(
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
        int(lengths.max()),
        blur=blur,
    )
    return (a * (f_ba - f_aa)).sum(1) + (b * (g_ab - g_bb)).sum(1)
