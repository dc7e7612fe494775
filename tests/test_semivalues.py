"""The side-by-side GR-TMC sampler against OpenDataVal 1.3.0's own, and exact Shapley values.

With a deterministic utility, OpenDataVal's ``GrTMCSampler`` (one permutation after the
other) and ``gr_tmc_marginal_contributions`` (an epoch's permutations side by side) must
draw the same permutations, evaluate the same coalitions and agree bit for bit.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lossval_odv.core.semivalues import (
    GR_BURN_IN,
    beta_shapley_values,
    beta_shapley_weights,
    data_shapley_values,
    gr_tmc_marginal_contributions,
)

from opendataval.dataval import BetaShapley, DataShapley
from opendataval.dataval.margcontrib.sampler import GrTMCSampler


def nearest_centroid_accuracy(n: int = 30, n_val: int = 20, seed: int = 0):
    """A set function: validation accuracy of a nearest-centroid classifier on a coalition
    of a small 2-class problem with flipped labels (it saturates, so permutations truncate)."""
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n + n_val, 2))
    labels = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    labels[rng.choice(n, n // 5, replace=False)] ^= 1
    x_train, y_train, x_val, y_val = x[:n], labels[:n], x[n:], labels[n:]

    def utility(coalition) -> float:
        members = np.sort(np.asarray(coalition, dtype=int))  # order-free: a set function
        classes = np.unique(y_train[members])
        centroids = np.stack([x_train[members][y_train[members] == c].mean(0) for c in classes])
        nearest = np.argmin(((x_val[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
        return float(np.mean(classes[nearest] == y_val))

    return utility


def run_opendataval(utility, n: int, **sampler_kwargs):
    """OpenDataVal's sampler and value formulas on ``utility``; returns (sampler, calls,
    Data Shapley values, Beta Shapley values)."""
    sampler = GrTMCSampler(cache_name=None, **sampler_kwargs)
    calls: list[int] = []

    def counted(coalition, *args, **kwargs):
        calls.append(len(coalition))
        return utility(coalition)

    shapley = DataShapley(sampler=sampler)
    dummy = torch.zeros(n, 1)
    shapley.input_data(dummy, dummy, dummy, dummy)  # sets OpenDataVal's model utility...
    sampler.set_evaluator(counted)  # ...which the stub replaces
    shapley.train_data_values()
    beta = BetaShapley(sampler=sampler)  # default alpha=4, beta=1
    beta.num_points, beta.marg_contrib = n, shapley.marg_contrib
    return sampler, calls, shapley.evaluate_data_values(), beta.evaluate_data_values()


def run_ours(utility, n: int, **sampler_kwargs):
    calls: list[int] = []

    def batched(coalitions):
        calls.extend(len(c) for c in coalitions)
        assert len({len(c) for c in coalitions}) == 1, "one cardinality per call"
        return np.array([utility(c) for c in coalitions])

    return gr_tmc_marginal_contributions(batched, num_points=n, **sampler_kwargs), calls


def assert_same_run(n: int, utility, **sampler_kwargs):
    sampler, odv_calls, odv_shapley, odv_beta = run_opendataval(utility, n, **sampler_kwargs)
    result, calls = run_ours(utility, n, **sampler_kwargs)
    np.testing.assert_array_equal(result.marginal_contrib_sum, sampler.marginal_contrib_sum)
    np.testing.assert_array_equal(result.marginal_count, sampler.marginal_count)
    np.testing.assert_array_equal(result.marginal_contribution, sampler.marginal_contribution)
    np.testing.assert_array_equal(
        result.marginal_increments, sampler.marginal_increment_array_stack
    )
    np.testing.assert_array_equal(data_shapley_values(result.marginal_contribution), odv_shapley)
    np.testing.assert_allclose(
        beta_shapley_values(result.marginal_contribution), odv_beta, rtol=1e-12, atol=1e-15
    )
    assert sorted(calls) == sorted(odv_calls)  # the same coalition sizes, as many fits
    assert result.n_fits == len(odv_calls) == sum(result.fits_per_epoch)
    return result


def test_truncation_matches_opendataval():
    n = 30
    result = assert_same_run(
        n, nearest_centroid_accuracy(n), max_mc_epochs=2, models_per_epoch=10, random_state=3
    )
    assert result.epochs == 2 and not result.converged
    assert result.gr_statistics == (GR_BURN_IN, GR_BURN_IN)  # min_models=1000: burn-in only
    assert 0 < result.n_truncated < 20  # truncation happened, not everywhere
    assert result.n_fits < 20 * (n - 5 + 1)


def test_gelman_rubin_stops_before_max_epochs_as_opendataval():
    n = 30
    kwargs = dict(
        gr_threshold=1.1, max_mc_epochs=40, models_per_epoch=10, min_models=40, random_state=5
    )
    result = assert_same_run(n, nearest_centroid_accuracy(n, seed=1), **kwargs)
    assert result.converged and 4 <= result.epochs < 40
    assert result.gr_statistics[:3] == (GR_BURN_IN,) * 3  # 30 < min_models permutations
    assert result.gr_statistics[-1] <= 1.1 < min(result.gr_statistics[:-1])


def test_max_epochs_stops_as_opendataval_without_truncation():
    n = 12
    weights = np.linspace(-1, 2, n)

    def superadditive(coalition) -> float:  # increments never flat: no truncation
        return float(np.sum(weights[np.asarray(coalition, dtype=int)]) + len(coalition) ** 2)

    kwargs = dict(
        gr_threshold=0.5, max_mc_epochs=3, models_per_epoch=20, min_models=20, random_state=11
    )
    result = assert_same_run(n, superadditive, min_cardinality=2, **kwargs)
    assert result.epochs == 3 and not result.converged and result.n_truncated == 0
    assert result.gr_statistics[0] != GR_BURN_IN
    assert result.n_fits == 3 * 20 * (n - 2 + 1)


def test_long_permutations_match_opendataval():
    """n above numpy's pairwise-summation block (128), truncation late: a capped additive game
    saturates after about 180 points."""
    weights = np.random.RandomState(0).uniform(0.5, 1.5, size=300)

    def capped(coalition) -> float:
        return float(min(np.sum(weights[np.sort(np.asarray(coalition, dtype=int))]), 180.0))

    result = assert_same_run(300, capped, max_mc_epochs=1, models_per_epoch=3, random_state=0)
    assert result.n_truncated == 3 and result.n_fits > 3 * 150


def test_a_shared_random_state_is_consumed_alike():
    utility = nearest_centroid_accuracy(20)
    theirs, ours = np.random.RandomState(8), np.random.RandomState(8)
    kwargs = dict(max_mc_epochs=2, models_per_epoch=5)
    run_opendataval(utility, 20, random_state=theirs, **kwargs)
    run_ours(utility, 20, random_state=ours, **kwargs)
    assert theirs.randint(2**31) == ours.randint(2**31)


# ---------------------------------------------------------------- exact values, by hand


def exact_shapley(utility, n: int) -> np.ndarray:
    """Shapley values from the definition: the mean marginal contribution over all n!
    orders."""
    values = np.zeros(n)
    for order in itertools.permutations(range(n)):
        for position, point in enumerate(order):
            values[point] += utility(order[: position + 1]) - utility(order[:position])
    return values / math.factorial(n)


def test_exact_on_a_game_whose_increments_depend_on_the_point_and_size_only():
    """u(S) = sum_S w + g(|S|): every sampled increment of i at size c is w_i + g(c+1) - g(c),
    so the estimate is exact as soon as every (point, size) cell is visited, up to the 1e-8
    that upstream's counts start at (a relative error of 1e-8 / count)."""
    w, g = np.array([0.3, -0.2, 1.1, 0.5]), np.array([0.0, 0.1, 0.7, 0.8, 2.0])

    def utility(coalition) -> float:
        return float(np.sum(w[list(coalition)]) + g[len(coalition)])

    result, _ = run_ours(
        utility, 4, min_cardinality=0, max_mc_epochs=2, models_per_epoch=50, min_models=10**6
    )
    assert np.all(result.marginal_count >= 1)  # every cell visited
    shapley = w + (g[4] - g[0]) / 4  # by hand
    np.testing.assert_allclose(exact_shapley(utility, 4), shapley, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        data_shapley_values(result.marginal_contribution), shapley, rtol=1e-9, atol=0
    )
    beta_by_hand = w + np.array([4 / 7, 2 / 7, 4 / 35, 1 / 35]) @ np.diff(g)  # Beta(4, 1)
    np.testing.assert_allclose(
        beta_shapley_values(result.marginal_contribution), beta_by_hand, rtol=1e-9, atol=0
    )


def test_estimate_approaches_exact_shapley_on_a_non_additive_game():
    """A 4-player game with complementarity (u = 1 iff S holds {0, 1} or {2}, plus 0.5 for
    point 3 alone with 2): 4000 permutations put the estimate within 0.03 of the exact values;
    no permutation of 4 points can truncate."""

    def utility(coalition) -> float:
        s = set(coalition)
        return float(({0, 1} <= s) or (2 in s)) + 0.5 * float({2, 3} <= s)

    result, _ = run_ours(
        utility,
        4,
        min_cardinality=0,
        max_mc_epochs=40,
        models_per_epoch=100,
        min_models=10**6,
        random_state=0,
    )
    assert result.n_truncated == 0
    exact = exact_shapley(utility, 4)
    np.testing.assert_allclose(exact.sum(), utility(range(4)) - utility(()), atol=1e-12)
    np.testing.assert_allclose(
        data_shapley_values(result.marginal_contribution), exact, rtol=0, atol=0.03
    )


def test_beta_weights_match_opendataval_and_survive_large_n():
    from scipy.special import beta as beta_function

    for n, alpha, beta in [(4, 4, 1), (30, 16, 1), (1000, 4, 1), (1000, 0.5, 0.5)]:
        upstream = [
            beta_function(j + beta, n - (j + 1) + alpha) / beta_function(j + 1, n - j)
            for j in range(n)
        ]
        np.testing.assert_allclose(
            beta_shapley_weights(n, alpha=alpha, beta=beta),
            np.array(upstream) / np.sum(upstream),
            rtol=1e-12,
        )
    np.testing.assert_allclose(beta_shapley_weights(7, alpha=1, beta=1), np.full(7, 1 / 7))
    large = beta_shapley_weights(5000)
    assert np.all(np.isfinite(large)) and np.all(np.diff(large) < 0)
    assert large.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- bad input


def test_a_gelman_rubin_check_on_too_few_permutations_is_refused():
    with pytest.raises(ValueError, match="min_models to at least 20"):
        gr_tmc_marginal_contributions(
            lambda c: np.zeros(len(c)), num_points=10, models_per_epoch=5, min_models=10
        )


def test_bad_settings_and_a_wrong_utility_shape_are_named():
    with pytest.raises(ValueError, match="models_per_epoch must be an integer >= 1"):
        gr_tmc_marginal_contributions(lambda c: np.zeros(len(c)), num_points=10, models_per_epoch=0)
    with pytest.raises(ValueError, match="one value per coalition"):
        gr_tmc_marginal_contributions(lambda c: np.zeros(1), num_points=10, models_per_epoch=3)


def test_progress_callback_reports_each_epoch():
    seen = []
    result, _ = run_ours(
        nearest_centroid_accuracy(20),
        20,
        max_mc_epochs=3,
        models_per_epoch=4,
        random_state=0,
    )
    gr_tmc_marginal_contributions(
        lambda cs: np.array([nearest_centroid_accuracy(20)(c) for c in cs]),
        num_points=20,
        max_mc_epochs=3,
        models_per_epoch=4,
        random_state=0,
        on_epoch=seen.append,
    )
    assert [p.epoch for p in seen] == [1, 2, 3]
    assert seen[-1].n_fits == result.n_fits and seen[-1].n_truncated == result.n_truncated
