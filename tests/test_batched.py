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
from tests.helpers import planted_noise_task
from tests.reference_lossval import reference_fit_lossval

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


def test_batched_sinkhorn_equals_geomloss_per_problem():
    dtype, rtol = torch.float64, 1e-10
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


@pytest.mark.parametrize("fused", [True, False])
def test_stacked_adam_equals_separate_torch_optimisers(fused, monkeypatch):
    from lossval_odv.core import batched

    if fused and not batched._has_fused_adam(torch.device("cpu")):
        pytest.skip("this torch has no fused CPU Adam")
    if not fused:
        monkeypatch.setattr(batched, "_has_fused_adam", lambda device: False)
    gen = torch.Generator().manual_seed(0)
    inits = [torch.randn(3, 4, generator=gen) for _ in range(2)]
    grads = [[torch.randn(3, 4, generator=gen) for _ in range(2)] for _ in range(5)]
    separate = [p.clone().requires_grad_() for p in inits]
    stacked = torch.stack(inits).requires_grad_()
    opts = [torch.optim.Adam([p], lr=0.01, fused=fused or None) for p in separate]
    opt = batched.StackedAdam([stacked], lr=0.01)
    assert opt.fused is fused
    for step in grads:
        for p, o, g in zip(separate, opts, step, strict=True):
            p.grad = g.clone()
            o.step()
        # a transposed (non-contiguous) gradient, as torch.autograd.grad may return
        opt.step([torch.stack(step).transpose(1, 2).contiguous().transpose(1, 2)])
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


def _values_and_grads(fn, leaves):
    leaves = [t.clone().requires_grad_() for t in leaves]
    value = fn(*leaves)
    value.backward()
    return [value.detach().double(), *(t.grad.double() for t in leaves)]


def test_batched_sinkhorn_in_float32_is_as_accurate_as_geomloss():
    """In float32 the fused loop rounds differently from geomloss (fused multiply-adds,
    another summation layout), so the two differ by rounding, amplified in the gradients
    wrt the points at small temperatures; against float64 geomloss, ours is as accurate as
    geomloss' own float32."""
    a, x, b, y, diameters = _problems(torch.float64)
    ours_worst, theirs_worst = np.zeros(5), np.zeros(5)  # value, grads wrt a, x, b, y
    for r, diameter in enumerate(diameters):
        loss = SamplesLoss("sinkhorn", p=2, blur=0.05, diameter=diameter, backend="tensorized")
        problem = [t[r] for t in (a, x, b, y)]
        exact = _values_and_grads(loss, problem)
        theirs = _values_and_grads(loss, [t.float() for t in problem])
        ours = _values_and_grads(
            lambda *leaves, d=diameter: sinkhorn_divergence(*(t[None] for t in leaves), [d])[0],
            [t.float() for t in problem],
        )
        for q, (e, t, o) in enumerate(zip(exact, theirs, ours, strict=True)):
            scale = float(e.abs().max())
            theirs_worst[q] = max(theirs_worst[q], float((t - e).abs().max()) / scale)
            ours_worst[q] = max(ours_worst[q], float((o - e).abs().max()) / scale)
    # observed: both at most 2e-7 on the values and 1.6e-3 on the gradients
    assert np.all(ours_worst <= 1.5 * theirs_worst + 1e-6), (ours_worst, theirs_worst)


def _stacked_tasks(task, seeds, n=200):
    data = [planted_noise_task(s, task, n=n) for s in seeds]
    return (np.stack([d[i] for d in data]) for i in range(4))


# Batched runs equal single runs (the engine with R = 1) bit for bit on one CPU thread:
# every run's entries take the same code path whatever R is. The reference loop (geomloss'
# SamplesLoss every batch) rounds differently; after 2 epochs on 200 points the values
# differ by at most 2e-7 (1-2 float32 ulps). Looser agreement would show as 1e-2 gaps:
# Adam turns the sign of any tiny gradient into a full lr step.
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("n", [200, 250])  # 250: a last batch of 26, odd vector tails
@pytest.mark.slow
def test_batched_runs_equal_single_runs_and_the_geomloss_reference(task, n):
    x, y, x_val, _ = _stacked_tasks(task, [0, 1, 2], n=n)
    seeds = [5, 6, 7]
    results = fit_lossval_batched(x, y, x_val, task=task, seeds=seeds, epochs=2, device="cpu")
    assert [r.seed for r in results] == seeds
    probe = torch.as_tensor(x_val[0], dtype=torch.float32)
    for r, seed in enumerate(seeds):
        single = fit_lossval(x[r], y[r], x_val[r], task=task, epochs=2, random_state=seed)
        reference = reference_fit_lossval(
            x[r], y[r], x_val[r], task=task, epochs=2, random_state=seed
        )
        assert np.all(results[r].values != 1.0)
        np.testing.assert_array_equal(results[r].values, single.values)
        np.testing.assert_allclose(results[r].values, reference.values, rtol=1e-5, atol=1e-6)
        with torch.no_grad():
            outputs = [m(probe).numpy() for m in (results[r].model, single.model)]
            np.testing.assert_array_equal(*outputs)
            reference_out = reference.model(probe).numpy()
        np.testing.assert_allclose(outputs[0], reference_out, rtol=1e-4, atol=1e-5)


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
@pytest.mark.slow
def test_batched_detection_f1_equals_single_runs(task):
    x, y, x_val, noisy = _stacked_tasks(task, [1, 2], n=1000)
    results = fit_lossval_batched(x, y, x_val, task=task, seeds=[1, 2], epochs=5, device="cpu")
    for r in range(2):
        single = reference_fit_lossval(
            x[r], y[r], x_val[r], task=task, epochs=5, random_state=r + 1
        )
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
    from tests.reference_lossval import batch_diameters, epoch_permutations

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 70, 5, generator=gen)
    x_val = torch.randn(2, 9, 5, generator=gen)
    seeds = [4, 8]
    shufflers = [batched.EpochShuffler(70, s + 1) for s in seeds]
    reach = torch.stack([max_distance_to(x[r], x_val[r]) for r in range(2)])
    expected = [
        batch_diameters(reach[r], epoch_permutations(70, 3, s + 1), 32) for r, s in enumerate(seeds)
    ]
    for epoch in range(3):
        perm = torch.stack([s.next() for s in shufflers])
        for r, s in enumerate(seeds):
            assert torch.equal(perm[r], epoch_permutations(70, 3, s + 1)[epoch])
        schedules = batched._epoch_schedules(reach, perm, 32)
        for r in range(2):
            ref_eps, ref_len = epsilon_schedules(expected[r][epoch])
            for b, batch in enumerate(schedules.batches):
                length = int(ref_len[b])
                assert batch.active[r].sum() == length
                np.testing.assert_array_equal(
                    batch.eps[r, :length].numpy(), ref_eps[b, :length].astype(np.float32)
                )
                # the run's g_bb row is that of its own diameter
                row = int(batch.self_rows[r])
                assert schedules.self_runs[row] == r
                assert schedules.self_diameters[row] == np.float32(expected[r][epoch][b])
        for batch in schedules.batches:
            lengths = batch.active.sum(-1)
            assert (batch.n_iterations, batch.n_unmasked) == (lengths.max(), lengths.min())
        runs, diameters = schedules.self_runs.tolist(), schedules.self_diameters.tolist()
        pairs = set(zip(runs, diameters, strict=True))
        assert len(pairs) == len(schedules.self_runs)  # distinct problems only


def test_chunked_reach_equals_max_distance_to(monkeypatch):
    from lossval_odv.core import batched
    from lossval_odv.core.losses import max_distance_to

    gen = torch.Generator().manual_seed(3)
    x, x_val = torch.randn(1000, 6, generator=gen), torch.randn(50, 6, generator=gen)
    monkeypatch.setattr(batched, "REACH_CHUNK", 128)
    torch.testing.assert_close(batched._max_distance_to(x, x_val), max_distance_to(x, x_val))


def test_batched_ot_with_shared_self_potentials_equals_geomloss(monkeypatch):
    """BatchedOT's divergences, with g_bb computed once per (run, diameter) in small chunks
    and through cache evictions, equal geomloss' problem by problem."""
    from lossval_odv.core import batched

    monkeypatch.setattr(batched, "SELF_CHUNK", 2)
    monkeypatch.setattr(batched, "SELF_CACHE_FLOATS", 3 * 20)  # 3 potentials of M = 20
    gen = torch.Generator().manual_seed(4)
    x_val = torch.randn(2, 20, 3, generator=gen) * torch.tensor([1.0, 4.0])[:, None, None]
    ot = batched.BatchedOT(x_val)
    for step in range(4):
        x = torch.randn(2, 8, 3, generator=gen)
        a = (0.5 + torch.rand(2, 8, generator=gen)).requires_grad_()
        diameters = np.array([1.1 * float(torch.cdist(x[r], x_val[r]).max()) for r in range(2)])
        # this step's problems, listed twice (as batches sharing a diameter are)
        g_bb = ot.self_potentials(np.array([0, 1, 0, 1]), np.concatenate([diameters] * 2))
        eps_np, lengths = epsilon_schedules(diameters)
        schedule = batched.BatchSchedule(
            eps=torch.as_tensor(eps_np, dtype=torch.float32),
            active=torch.as_tensor(np.arange(eps_np.shape[1]) < lengths[:, None]),
            n_iterations=int(lengths.max()),
            n_unmasked=int(lengths.min()),
            self_rows=torch.tensor([2, 1]),
        )
        values = ot(a, x, (x * x).sum(-1), g_bb[schedule.self_rows], schedule)
        values.sum().backward()
        for r in range(2):
            ref_a = a[r].detach().clone().requires_grad_()
            loss = SamplesLoss("sinkhorn", p=2, blur=0.05, diameter=diameters[r])
            ref = loss(ref_a, x[r], torch.ones(20), x_val[r])
            ref.backward()
            assert values[r].item() == pytest.approx(ref.item(), rel=1e-5), step
            scale = float(ref_a.grad.abs().max())
            np.testing.assert_allclose(a.grad[r], ref_a.grad, rtol=1e-4, atol=1e-5 * scale)


def test_training_runs_on_cpu_threads_and_restores_the_setting(monkeypatch):
    from lossval_odv.core import batched

    seen = []
    forward = batched.stacked_mlp_forward

    def spy(*args):
        seen.append(torch.get_num_threads())
        return forward(*args)

    monkeypatch.setattr(batched, "stacked_mlp_forward", spy)
    x, y, x_val, _ = _stacked_tasks("regression", [0], n=40)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        fit_lossval_batched(x, y, x_val, task="regression", seeds=[1], epochs=1, device="cpu")
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        fit_lossval_batched(
            x, y, x_val, task="regression", seeds=[1], epochs=1, device="cpu", cpu_threads=None
        )
        assert set(seen) == {2}
        with pytest.raises(ValueError, match="cpu_threads"):
            fit_lossval_batched(x, y, x_val, task="regression", seeds=[1], cpu_threads=0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
