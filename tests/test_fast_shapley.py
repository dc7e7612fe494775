"""FastDataShapley / FastBetaShapley: registry, OpenDataVal's settings, and Monte-Carlo
agreement with OpenDataVal's DataShapley on real model fits."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from lossval_odv.core.runtime import intra_op_threads
from lossval_odv.core.semivalues import beta_shapley_values
from lossval_odv.evaluators import FastBetaShapley, FastDataShapley

from opendataval.dataloader import DataFetcher
from opendataval.dataval import DataEvaluator, DataShapley
from opendataval.dataval.margcontrib.sampler import GrTMCSampler, TMCSampler
from opendataval.metrics import accuracy, neg_mse
from opendataval.model import LogisticRegression, RegressionMLP

CLASSIFICATION_TRAIN = {"epochs": 5, "batch_size": 128, "lr": 0.5}
REGRESSION_TRAIN = {"epochs": 5, "batch_size": 128, "lr": 0.1}


def planted_noise_fetcher(seed: int, task: str = "classification", n: int = 30, d: int = 4):
    """A linear task on 30 training and 40 clean validation points, 20% of the training
    labels corrupted: flipped (classification, one-hot) or negated plus noise (regression)."""
    rng = np.random.RandomState(seed)
    n_val = 40
    x = rng.normal(size=(n + n_val, d)).astype(np.float32)
    signal = x @ rng.normal(size=d)
    noisy = rng.choice(n, n // 5, replace=False)
    if task == "classification":
        labels = (signal > 0).astype(int)
        labels[noisy] ^= 1
        y = np.eye(2, dtype=np.float32)[labels]
    else:
        y = signal / 2
        y[noisy] = -y[noisy] + rng.normal(size=len(noisy))
        y = y.astype(np.float32).reshape(-1, 1)
    fetcher = DataFetcher.from_data_splits(
        x[:n], y[:n], x[n:], y[n:], x[n:], y[n:], one_hot=task == "classification"
    )
    return fetcher, noisy


def test_registered_with_opendataval_defaults():
    assert DataEvaluator.Evaluators["fastdatashapley"] is FastDataShapley
    assert DataEvaluator.Evaluators["fastbetashapley"] is FastBetaShapley
    upstream = GrTMCSampler()
    for evaluator in (FastDataShapley(), FastBetaShapley()):
        for setting in ("gr_threshold", "max_mc_epochs", "models_per_epoch", "min_models"):
            assert getattr(evaluator.sampler, setting) == getattr(upstream, setting)
        assert evaluator.sampler.min_cardinality == upstream.min_cardinality
    beta = FastBetaShapley()
    assert (beta.alpha, beta.beta) == (4, 1)
    assert FastDataShapley(max_mc_epochs=3, min_cardinality=2).sampler.max_mc_epochs == 3


def test_a_given_sampler_gives_the_settings_and_others_are_refused():
    sampler = GrTMCSampler(max_mc_epochs=2, models_per_epoch=7, random_state=1)
    assert FastBetaShapley(sampler=sampler).sampler is sampler
    with pytest.raises(ValueError, match="both a sampler and the sampler settings"):
        FastDataShapley(sampler=sampler, max_mc_epochs=3)
    with pytest.raises(TypeError, match="GrTMCSampler only, got TMCSampler"):
        FastDataShapley(sampler=TMCSampler())


def test_fits_counted_values_from_the_marginal_contributions_and_seeded():
    fetcher, _ = planted_noise_fetcher(0, n=12)
    settings = dict(max_mc_epochs=2, models_per_epoch=3, min_cardinality=4, random_state=5)
    model = LogisticRegression(4, 2)
    beta = FastBetaShapley(alpha=16, beta=1, **settings).train(
        fetcher, model, accuracy, **CLASSIFICATION_TRAIN
    )
    sampling = beta.sampling
    assert beta.n_fits_ == sampling.n_fits == sum(sampling.fits_per_epoch) > 0
    np.testing.assert_array_equal(
        beta.evaluate_data_values(),
        beta_shapley_values(sampling.marginal_contribution, alpha=16, beta=1),
    )
    again = FastBetaShapley(alpha=16, beta=1, **settings).train(
        fetcher, model, accuracy, **CLASSIFICATION_TRAIN
    )
    np.testing.assert_array_equal(again.evaluate_data_values(), beta.evaluate_data_values())


@pytest.mark.slow  # about 10 s of CPU per task, mostly OpenDataVal's one-at-a-time fits
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_agrees_with_opendataval_on_real_fits_and_detects_planted_noise(task):
    """Three planted-noise tasks, a model that learns (logistic regression, accuracy 0.15
    above the class prior; a one-hidden-layer MLP, validation MSE below 0.6 of the target
    variance), 2 epochs of 10 permutations each: the two implementations' values rank alike
    and both find the corrupted points."""
    if task == "classification":
        train, metric, seeds = CLASSIFICATION_TRAIN, accuracy, (0, 1, 3)
    else:
        train, metric, seeds = REGRESSION_TRAIN, neg_mse, (0, 1, 3)
    rhos, aurocs, aurocs_upstream = [], [], []
    with intra_op_threads(1):  # tiny tensors: threads only wait on each other
        for seed in seeds:
            fetcher, noisy = planted_noise_fetcher(seed, task)
            truth = np.isin(np.arange(30), noisy)
            torch.manual_seed(seed)  # the initial weights every fit starts from
            if task == "classification":
                model = LogisticRegression(4, 2)
            else:
                model = RegressionMLP(4, 1, layers=2, hidden_dim=16)
            x_train, y_train, x_valid, y_valid, *_ = fetcher.datapoints
            full = model.clone()
            full.fit(x_train, y_train, **train)
            quality = metric(y_valid, full.predict(x_valid))
            if task == "classification":
                assert quality > y_valid.mean(0).max().item() + 0.15  # the model learns
            else:
                assert -quality < 0.6 * y_valid.var().item()
            budget = dict(max_mc_epochs=2, models_per_epoch=10)
            with contextlib.redirect_stdout(io.StringIO()):  # upstream prints its progress
                upstream = DataShapley(random_state=seed, cache_name=None, **budget)
                upstream.train(fetcher, model, metric, **train)
            fast = FastDataShapley(random_state=seed + 100, device="cpu", **budget)
            fast.train(fetcher, model, metric, **train)
            ours, theirs = fast.evaluate_data_values(), upstream.evaluate_data_values()
            rhos.append(spearmanr(ours, theirs)[0])
            aurocs.append(roc_auc_score(truth, -ours))
            aurocs_upstream.append(roc_auc_score(truth, -theirs))
    assert min(rhos) > 0.2 and np.mean(rhos) > 0.4, rhos
    assert min(aurocs) > 0.6 and np.mean(aurocs) > 0.7, aurocs
    assert np.mean(aurocs_upstream) > 0.7, aurocs_upstream  # the task is fair to both


def test_draws_opendataval_permutations_from_the_same_seed():
    """The fits take their seed from a copy of the sampler's state, so the same seed visits
    the same (point, position) pairs: permutations of 3 steps never truncate, and the counts
    record where every point stood."""
    fetcher, _ = planted_noise_fetcher(0, n=20)
    budget = dict(max_mc_epochs=1, models_per_epoch=4, min_cardinality=17, random_state=0)
    train = (fetcher, LogisticRegression(4, 2), accuracy)
    ours = FastDataShapley(**budget).train(*train, **CLASSIFICATION_TRAIN)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = DataShapley(cache_name=None, **budget).train(*train, **CLASSIFICATION_TRAIN)
    np.testing.assert_array_equal(ours.sampling.marginal_count, theirs.sampler.marginal_count)
