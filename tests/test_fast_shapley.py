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

from lossval_odv.core.semivalues import beta_shapley_values
from lossval_odv.evaluators import FastBetaShapley, FastDataShapley

from opendataval.dataloader import DataFetcher
from opendataval.dataval import DataEvaluator, DataShapley
from opendataval.dataval.margcontrib.sampler import GrTMCSampler, TMCSampler
from opendataval.metrics import accuracy
from opendataval.model import LogisticRegression

TRAIN = {"epochs": 5, "batch_size": 128, "lr": 0.5}


def planted_noise_fetcher(seed: int, n: int = 30, n_val: int = 40, d: int = 4):
    """A linearly separable 2-class task, 20% of the training labels flipped; the
    validation labels are clean."""
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n + n_val, d)).astype(np.float32)
    labels = (x @ rng.normal(size=d) > 0).astype(int)
    noisy = rng.choice(n, n // 5, replace=False)
    labels[noisy] ^= 1
    y = np.eye(2, dtype=np.float32)[labels]
    fetcher = DataFetcher.from_data_splits(x[:n], y[:n], x[n:], y[n:], x[n:], y[n:], one_hot=True)
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
    beta = FastBetaShapley(alpha=16, beta=1, **settings).train(fetcher, model, accuracy, **TRAIN)
    sampling = beta.sampling
    assert beta.n_fits_ == sampling.n_fits == sum(sampling.fits_per_epoch) > 0
    np.testing.assert_array_equal(
        beta.evaluate_data_values(),
        beta_shapley_values(sampling.marginal_contribution, alpha=16, beta=1),
    )
    again = FastBetaShapley(alpha=16, beta=1, **settings).train(fetcher, model, accuracy, **TRAIN)
    np.testing.assert_array_equal(again.evaluate_data_values(), beta.evaluate_data_values())


def test_agrees_with_opendataval_on_real_fits_and_detects_planted_noise():
    """Three planted-noise tasks, logistic regression (it learns: validation accuracy 0.15
    above the class prior), 2 epochs of 10 permutations each: the two implementations'
    values rank alike and both find the flipped labels."""
    rhos, aurocs, aurocs_upstream = [], [], []
    for seed in (0, 1, 3):
        fetcher, noisy = planted_noise_fetcher(seed)
        truth = np.isin(np.arange(30), noisy)
        torch.manual_seed(seed)  # the initial weights every fit starts from
        model = LogisticRegression(4, 2)
        x_train, y_train, x_valid, y_valid, *_ = fetcher.datapoints
        full = model.clone()
        full.fit(x_train, y_train, **TRAIN)
        prior = y_valid.mean(0).max().item()
        assert accuracy(y_valid, full.predict(x_valid)) > prior + 0.15  # the model learns
        budget = dict(max_mc_epochs=2, models_per_epoch=10)
        with contextlib.redirect_stdout(io.StringIO()):  # upstream prints its progress
            upstream = DataShapley(random_state=seed, cache_name=None, **budget)
            upstream.train(fetcher, model, accuracy, **TRAIN)
        fast = FastDataShapley(random_state=seed + 100, **budget)
        fast.train(fetcher, model, accuracy, **TRAIN)
        ours, theirs = fast.evaluate_data_values(), upstream.evaluate_data_values()
        rhos.append(spearmanr(ours, theirs)[0])
        aurocs.append(roc_auc_score(truth, -ours))
        aurocs_upstream.append(roc_auc_score(truth, -theirs))
    assert min(rhos) > 0.2 and np.mean(rhos) > 0.4, rhos
    assert min(aurocs) > 0.6 and np.mean(aurocs) > 0.7, aurocs
    assert np.mean(aurocs_upstream) > 0.7, aurocs_upstream  # the task is fair to both
