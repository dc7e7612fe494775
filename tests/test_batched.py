"""Batched LossVal: the batched Sinkhorn against geomloss, R runs against R single runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from geomloss import SamplesLoss
from geomloss._legacy.sinkhorn_divergence import epsilon_schedule

from lossval_odv.core import fit_lossval
from lossval_odv.core.batched import fit_lossval_batched, init_stacked_mlp
from lossval_odv.core.sinkhorn import epsilon_schedules, sinkhorn_divergence
from tests.conftest import planted_noise_task

from opendataval.experiment.util import f1_score, oned_twonn_clustering


def test_epsilon_schedules_equal_geomloss_bit_for_bit():
    rng = np.random.default_rng(0)
    diameters = np.concatenate(
        [rng.uniform(0.06, 100.0, 3000), rng.uniform(0.01, 0.2, 200), [0.05, 0.1, 0.2, 1.0]]
    )
    eps, lengths = epsilon_schedules(diameters)
    assert eps.shape == (len(diameters), lengths.max())
    for d, row, length in zip(diameters, eps, lengths, strict=True):
        assert row[:length].tolist() == [float(v) for v in epsilon_schedule(2, float(d), 0.05, 0.5)]
        assert np.all(row[length:] == 0.05**2)


def _problems(dtype):
    gen = torch.Generator().manual_seed(1)
    n_runs, n, m, dim = 5, 12, 20, 4
    x = torch.randn(n_runs, n, dim, generator=gen, dtype=dtype)
    scale = torch.tensor([0.3, 1.0, 2.0, 5.0, 10.0], dtype=dtype)[:, None, None]
    y = torch.randn(n_runs, m, dim, generator=gen, dtype=dtype) * scale
    a = 0.5 + torch.rand(n_runs, n, generator=gen, dtype=dtype)
    a[0, 0] = -0.1  # a weight pushed below zero: geomloss' log floor
    b = 0.5 + torch.rand(n_runs, m, generator=gen, dtype=dtype)
    diameters = [1.1 * float(torch.cdist(x[r], y[r]).max()) for r in range(n_runs)]
    return a, x, b, y, diameters


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_batched_sinkhorn_equals_geomloss_per_problem(dtype, rtol):
    a, x, b, y, diameters = _problems(dtype)
    lengths = {len(epsilon_schedule(2, d, 0.05, 0.5)) for d in diameters}
    assert len(lengths) >= 3, "the problems must have schedules of different lengths"

    leaves = [t.clone().requires_grad_() for t in (a, x, b, y)]
    values = sinkhorn_divergence(*leaves, diameters)
    (values * torch.arange(1, 6, dtype=dtype)).sum().backward()  # distinct upstream grads

    for r, diameter in enumerate(diameters):
        ref_leaves = [t[r].clone().requires_grad_() for t in (a, x, b, y)]
        loss = SamplesLoss("sinkhorn", p=2, blur=0.05, diameter=diameter, backend="tensorized")
        ref = loss(*ref_leaves)
        ((r + 1) * ref).backward()
        assert values[r].item() == pytest.approx(ref.item(), rel=rtol)
        for ours, theirs in zip(leaves, ref_leaves, strict=True):
            scale = float(theirs.grad.abs().max())
            np.testing.assert_allclose(
                ours.grad[r].numpy(), theirs.grad.numpy(), rtol=rtol, atol=rtol * scale
            )


def test_stacked_adam_equals_separate_optimisers():
    gen = torch.Generator().manual_seed(0)
    inits = [torch.randn(3, 4, generator=gen) for _ in range(2)]
    grads = [[torch.randn(3, 4, generator=gen) for _ in range(2)] for _ in range(5)]
    separate = [p.clone().requires_grad_() for p in inits]
    stacked = torch.stack(inits).requires_grad_()
    opts = [torch.optim.Adam([p], lr=0.01) for p in separate]
    opt = torch.optim.Adam([stacked], lr=0.01)
    for step in grads:
        for p, o, g in zip(separate, opts, step, strict=True):
            p.grad = g.clone()
            o.step()
        stacked.grad = torch.stack(step)
        opt.step()
    torch.testing.assert_close(stacked.detach(), torch.stack(separate).detach(), rtol=0, atol=0)


def test_stacked_init_equals_make_mlp_under_each_seed():
    layers = init_stacked_mlp(task="classification", seeds=[3, 9], n_features=6, n_outputs=2)
    for r, seed in enumerate([3, 9]):
        torch.manual_seed(seed)
        from lossval_odv.core import make_mlp

        model = make_mlp(task="classification", n_features=6, n_outputs=2)
        linear = [m for m in model if isinstance(m, torch.nn.Linear)]
        for m, (w, b) in zip(linear, layers, strict=True):
            assert torch.equal(m.weight, w[r]) and torch.equal(m.bias, b[r])


def _stacked_tasks(task, seeds, n=200):
    data = [planted_noise_task(s, task, n=n) for s in seeds]
    return (np.stack([d[i] for d in data]) for i in range(4))


# Observed on CPU (torch 2.13): after 2 epochs on 200 points the batched and single values
# differ by at most 2e-7 (1-2 float32 ulps; batched vs unbatched matmul rounding).
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_batched_runs_equal_single_runs(task):
    x, y, x_val, _ = _stacked_tasks(task, [0, 1, 2])
    seeds = [5, 6, 7]
    results = fit_lossval_batched(x, y, x_val, task=task, seeds=seeds, epochs=2, device="cpu")
    assert [r.seed for r in results] == seeds
    for r, seed in enumerate(seeds):
        single = fit_lossval(x[r], y[r], x_val[r], task=task, epochs=2, random_state=seed)
        assert np.all(results[r].values != 1.0)
        np.testing.assert_allclose(results[r].values, single.values, rtol=1e-5, atol=1e-6)
        probe = torch.as_tensor(x_val[r], dtype=torch.float32)
        with torch.no_grad():
            np.testing.assert_allclose(
                results[r].model(probe).numpy(), single.model(probe).numpy(), rtol=1e-4, atol=1e-5
            )


def test_batched_is_deterministic_and_order_independent():
    x, y, x_val, _ = _stacked_tasks("regression", [0, 1])
    a = fit_lossval_batched(x, y, x_val, task="regression", seeds=[1, 2], epochs=1)
    b = fit_lossval_batched(x, y, x_val, task="regression", seeds=[1, 2], epochs=1)
    c = fit_lossval_batched(
        x[::-1], y[::-1], x_val[::-1], task="regression", seeds=[2, 1], epochs=1
    )
    for r in range(2):
        np.testing.assert_array_equal(a[r].values, b[r].values)
        np.testing.assert_allclose(a[r].values, c[1 - r].values, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[0].values, a[1].values)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_batched_detection_f1_equals_single_runs(task):
    x, y, x_val, noisy = _stacked_tasks(task, [1, 2], n=1000)
    results = fit_lossval_batched(x, y, x_val, task=task, seeds=[1, 2], epochs=5, device="cpu")
    for r in range(2):
        single = fit_lossval(x[r], y[r], x_val[r], task=task, epochs=5, random_state=r + 1)
        f1 = []
        for values in (results[r].values, single.values):
            low, _ = oned_twonn_clustering(values)
            f1.append(f1_score(low, noisy[r], len(values)))
        assert f1[0] == pytest.approx(f1[1], abs=1e-12)
        assert f1[0] > 0.5


def test_batched_rejects_bad_input():
    x, y, x_val, _ = _stacked_tasks("regression", [0, 1], n=40)
    with pytest.raises(ValueError, match="seeds"):
        fit_lossval_batched(x, y, x_val, task="regression", seeds=[1])
    with pytest.raises(ValueError, match="shape"):
        fit_lossval_batched(
            [x[0], x[1][:30]], [y[0], y[1][:30]], x_val, task="regression", seeds=[1, 2]
        )
    with pytest.raises(ValueError, match="seeds is empty"):
        fit_lossval_batched(x[:0], y[:0], x_val[:0], task="regression", seeds=[])


@pytest.mark.cuda
def test_cuda_batched_matches_cpu_single_runs():
    x, y, x_val, _ = _stacked_tasks("classification", [0, 1, 2])
    results = fit_lossval_batched(
        x, y, x_val, task="classification", seeds=[5, 6, 7], epochs=2, device="cuda"
    )
    for r, seed in enumerate([5, 6, 7]):
        single = fit_lossval(
            x[r], y[r], x_val[r], task="classification", epochs=2, random_state=seed, device="cpu"
        )
        np.testing.assert_allclose(results[r].values, single.values, rtol=1e-3, atol=1e-4)


def test_epoch_at_a_time_permutations_and_diameters_equal_the_single_runs():
    from lossval_odv.core import batched
    from lossval_odv.core.losses import max_distance_to
    from lossval_odv.core.sinkhorn import epsilon_schedules
    from lossval_odv.core.trainer import _epoch_permutations, batch_diameters

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 70, 5, generator=gen)
    x_val = torch.randn(2, 9, 5, generator=gen)
    seeds = [4, 8]
    shufflers = [batched.EpochShuffler(70, s + 1) for s in seeds]
    reach = torch.stack([max_distance_to(x[r], x_val[r]) for r in range(2)])
    expected = [
        batch_diameters(reach[r], _epoch_permutations(70, 3, s + 1), 32)
        for r, s in enumerate(seeds)
    ]
    for epoch in range(3):
        perm = torch.stack([s.next() for s in shufflers])
        for r, s in enumerate(seeds):
            assert torch.equal(perm[r], _epoch_permutations(70, 3, s + 1)[epoch])
        eps, active, n_iterations = batched._epoch_schedules(reach, perm, 32)
        for r in range(2):
            ref_eps, ref_len = epsilon_schedules(expected[r][epoch])
            for b in range(3):
                length = int(ref_len[b])
                assert active[b, r].sum() == length
                np.testing.assert_array_equal(
                    eps[b, r, :length].numpy(), ref_eps[b, :length].astype(np.float32)
                )
        assert n_iterations == [int(v) for v in active.sum(-1).amax(-1)]


def test_chunked_reach_equals_max_distance_to(monkeypatch):
    from lossval_odv.core import batched
    from lossval_odv.core.losses import max_distance_to

    gen = torch.Generator().manual_seed(3)
    x, x_val = torch.randn(1000, 6, generator=gen), torch.randn(50, 6, generator=gen)
    monkeypatch.setattr(batched, "REACH_CHUNK", 128)
    torch.testing.assert_close(batched._max_distance_to(x, x_val), max_distance_to(x, x_val))


@pytest.mark.slow  # compiling takes 10-30 s on 2 cores
def test_compiled_sinkhorn_equals_eager():
    """torch.compile path (or its eager fallback where compiling fails) agrees with eager."""
    from lossval_odv.core.sinkhorn import (
        log_weights,
        schedule_tensors,
        sinkhorn_loop_batched,
        squared_cost,
    )

    a, x, b, y, diameters = _problems(torch.float32)
    eps, active, n_it = schedule_tensors(diameters, dtype=torch.float32, device="cpu")
    costs = (squared_cost(x, x), squared_cost(y, y), squared_cost(x, y), squared_cost(y, x))
    args = (log_weights(a), log_weights(b), *costs, eps, active, n_it)
    eager = sinkhorn_loop_batched(*args)
    compiled = sinkhorn_loop_batched(*args, compiled=True)
    for e, c in zip(eager, compiled, strict=True):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-4)
