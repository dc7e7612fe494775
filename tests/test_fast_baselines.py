"""The fast retraining evaluators against OpenDataVal's own, on tiny data with planted noise.

Given the same ``random_state`` both draw the same subsets; they differ only in where the
fits' shuffles come from. Two checks per evaluator and task:

- full-batch training (``batch_size`` > n): a fit no longer depends on its shuffles, so
  both implementations must give the same values up to float rounding;
- mini-batch training with a model that learns: the fast values of the sampling estimators
  (for AME its utility samples, see ``_compared``) must be as close to OpenDataVal's as a
  second OpenDataVal run (another torch seed) is, in rank correlation and detection AUROC,
  averaged over seeds (agreement within Monte-Carlo noise). LOO is left out there: its
  values at this size are SGD noise for both.
"""

from __future__ import annotations  # noqa: I001  (lossval_odv before opendataval)

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

import lossval_odv  # noqa: F401
from lossval_odv.evaluators.capabilities import capabilities_of
from lossval_odv.evaluators import (
    FastAME,
    FastDataBanzhaf,
    FastDataOob,
    FastInfluenceSubsample,
    FastLeaveOneOut,
)
from opendataval.dataloader import DataFetcher
from opendataval.dataval import (
    AME,
    DataBanzhaf,
    DataEvaluator,
    DataOob,
    InfluenceSubsample,
    LeaveOneOut,
)
from opendataval.metrics import Metrics
from opendataval.model import ClassifierMLP, ClassifierSkLearnWrapper, RegressionMLP

pytestmark = pytest.mark.filterwarnings("ignore:'pin_memory' argument:UserWarning")

N, N_VAL, D = 30, 40, 4
# (OpenDataVal evaluator, fast evaluator, constructor arguments)
PAIRS = {
    "DataOob": (DataOob, FastDataOob, {"num_models": 40}),
    "DataBanzhaf": (DataBanzhaf, FastDataBanzhaf, {"num_models": 40}),
    "InfluenceSubsample": (InfluenceSubsample, FastInfluenceSubsample, {"num_models": 40}),
    "AME": (AME, FastAME, {"num_models": 10}),
    "LeaveOneOut": (LeaveOneOut, FastLeaveOneOut, {}),
}


# The mini-batch comparison leaves LOO out: at this size its values are SGD noise (measured:
# two OpenDataVal runs with different torch seeds agree at Spearman 0.13-0.47, mean 0.25, and
# so do two fast runs); the full-batch test compares its values exactly.
SAMPLING = ["DataOob", "DataBanzhaf", "InfluenceSubsample", "AME"]


def _task(kind: str, seed: int) -> tuple[DataFetcher, np.ndarray]:
    """A learnable task, 20% of the training labels corrupted; returns the fetcher and the
    corrupted indices. Classification flips labels; regression swaps targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N + N_VAL, D)).astype(np.float32)
    beta = rng.normal(size=D)
    noisy = rng.choice(N, N // 5, replace=False)
    if kind == "classification":
        labels = (x @ beta > 0).astype(int)
        labels[noisy] = 1 - labels[noisy]
        y = np.eye(2, dtype=np.float32)[labels]
    else:
        target = np.tanh(x @ beta / np.sqrt(D))
        target = ((target - target.mean()) / target.std()).astype(np.float32)
        target[noisy] = rng.permutation(target[:N])[: len(noisy)]
        y = target[:, None]
    fetcher = DataFetcher.from_data_splits(x[:N], y[:N], x[N:], y[N:], x[N:], y[N:], one_hot=False)
    return fetcher, noisy


def _model(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "classification":
        return ClassifierMLP(D, 2, layers=3, hidden_dim=16)
    return RegressionMLP(D, 1, layers=3, hidden_dim=16, act_fn=torch.nn.Tanh())


def _metric(kind: str) -> Metrics:
    return Metrics.ACCURACY if kind == "classification" else Metrics.NEG_MSE


def _trained(evaluator_cls, arguments, fetcher, model, kind, train, seed):
    evaluator = evaluator_cls(random_state=seed, **arguments)
    return evaluator.train(fetcher, model, _metric(kind), **train)


def _values(evaluator_cls, arguments, fetcher, model, kind, train, seed) -> np.ndarray:
    evaluator = _trained(evaluator_cls, arguments, fetcher, model, kind, train, seed)
    return np.asarray(evaluator.evaluate_data_values(), dtype=float)


def _compared(name: str, evaluator) -> np.ndarray:
    """What the mini-batch test compares: the values, except for AME its utility samples
    (the performance of each subset). AME's values are OpenDataVal's own LassoCV on them
    (inherited code); at a test-sized budget the Lasso keeps a handful of coefficients, so
    two OpenDataVal runs give rank correlations anywhere from undefined (all zero) to 1."""
    if name == "AME":
        return np.asarray(evaluator.performance, dtype=float)
    return np.asarray(evaluator.evaluate_data_values(), dtype=float)


@pytest.mark.parametrize("kind", ["classification", "regression"])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_full_batch_values_equal_opendatavals(name, kind):
    """A fit on its whole subset at once does not depend on its shuffle: same subsets, same
    initial weights, same values (float rounding aside)."""
    odv_cls, fast_cls, arguments = PAIRS[name]
    arguments = {key: 12 for key in arguments}  # deterministic fits: a small budget suffices
    fetcher, _ = _task(kind, seed=0)
    model = _model(kind)
    train = {"epochs": 10, "batch_size": 64, "lr": 0.01}
    expected = _values(odv_cls, arguments, fetcher, model, kind, train, seed=3)
    fast = _values(fast_cls, arguments, fetcher, model, kind, train, seed=3)
    if name == "AME":  # LassoCV amplifies rounding a little
        np.testing.assert_allclose(fast, expected, atol=1e-3)
    else:
        np.testing.assert_allclose(fast, expected, atol=1e-4)


def _detection_auroc(values: np.ndarray, noisy: np.ndarray) -> float:
    is_noisy = np.zeros(len(values), dtype=bool)
    is_noisy[noisy] = True
    return roc_auc_score(is_noisy, -values)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_minibatch_values_agree_with_opendatavals_within_its_own_noise(kind):
    train = {"epochs": 5, "batch_size": 8, "lr": 0.03}
    model = _model(kind)
    agreement: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in SAMPLING}
    for seed in (0, 1):
        fetcher, noisy = _task(kind, seed)
        _assert_model_learns(model, fetcher, kind, train)
        for name in SAMPLING:
            odv_cls, fast_cls, arguments = PAIRS[name]
            runs = []
            for implementation, torch_seed in ((odv_cls, 100), (odv_cls, 200), (fast_cls, 0)):
                torch.manual_seed(torch_seed + seed)
                evaluator = _trained(implementation, arguments, fetcher, model, kind, train, seed)
                runs.append(_compared(name, evaluator))
            odv, odv_again, fast = runs
            if name == "AME":  # utility samples, not values: no detection AUROC
                gaps = (0.0, 0.0)
            else:
                auroc = _detection_auroc(odv, noisy)
                gaps = (
                    abs(_detection_auroc(fast, noisy) - auroc),
                    abs(_detection_auroc(odv_again, noisy) - auroc),
                )
            agreement[name].append((spearmanr(fast, odv)[0], spearmanr(odv_again, odv)[0], *gaps))
    for name, rows in agreement.items():
        rho_fast, rho_odv, gap_fast, gap_odv = np.mean(rows, axis=0)
        assert rho_fast >= rho_odv - 0.15, (name, rows)
        assert gap_fast <= gap_odv + 0.1, (name, rows)
    # the sampling estimators detect the planted noise well above chance
    fetcher, noisy = _task(kind, 0)
    oob = _values(FastDataOob, {"num_models": 40}, fetcher, model, kind, train, 0)
    assert _detection_auroc(oob, noisy) > 0.7


def _assert_model_learns(model, fetcher, kind, train) -> None:
    """The prediction model beats the constant prediction clearly (a collapsed model would
    make any two implementations agree trivially)."""
    x_train, y_train, x_valid, y_valid, *_ = fetcher.datapoints
    fitted = model.clone()
    fitted.fit(x_train, y_train, **train)
    score = _metric(kind)(y_valid, fitted.predict(x_valid))
    if kind == "classification":
        prior = y_valid.mean(0).max().item()
        assert score > prior + 0.1, (score, prior)
    else:
        constant = -((y_valid - y_train.mean()) ** 2).mean().item()
        assert score > constant + 0.2, (score, constant)


def test_registered_under_their_own_names_with_opendatavals_defaults():
    for name, (odv_cls, fast_cls, _) in PAIRS.items():
        assert DataEvaluator.Evaluators[f"fast{name.lower()}"] is fast_cls
        assert DataEvaluator.Evaluators[name.lower()] is odv_cls
        odv, fast = odv_cls(), fast_cls()
        for attribute in ("num_models", "proportion"):
            assert getattr(fast, attribute, None) == getattr(odv, attribute, None)
        assert fast.device == "auto"
        assert capabilities_of(f"fast{name.lower()}").device_argument == "str"


def test_unsupported_models_and_arguments_are_named():
    fetcher, _ = _task("classification", 0)
    sklearn_model = ClassifierSkLearnWrapper(RandomForestClassifier, 2)
    with pytest.raises(TypeError, match="ClassifierSkLearnWrapper.*OpenDataVal's DataOob"):
        FastDataOob(num_models=3).train(fetcher, sklearn_model, Metrics.ACCURACY)
    with pytest.raises(TypeError, match="unknown train arguments"):
        FastDataBanzhaf(num_models=3).train(
            fetcher, _model("classification"), Metrics.ACCURACY, momentum=0.9
        )


def test_fit_counts_follow_opendatavals_skips():
    fetcher, _ = _task("classification", 0)
    train = {"epochs": 1, "batch_size": 64, "lr": 0.01}
    loo = FastLeaveOneOut().train(fetcher, _model("classification"), Metrics.ACCURACY, **train)
    assert loo.n_fits_ == N + 1
    ame = FastAME(num_models=4).train(fetcher, _model("classification"), Metrics.ACCURACY, **train)
    assert ame.n_fits_ == 16 and ame.subsets.shape == (16, N)
