"""The batched fitting engine (core/fitting.py) against OpenDataVal's own ``fit``.

The reference is OpenDataVal 1.3.0's model fitted alone in float64, its DataLoader's
shuffles recorded; the engine gets the same initial weights and the same batch orders.
"""

from __future__ import annotations  # noqa: I001  (lossval_odv before opendataval)

import numpy as np
import pytest
import torch
from torch.utils.data import RandomSampler, Subset

import lossval_odv  # noqa: F401
from lossval_odv.core import fitting
from lossval_odv.core.fitting import (
    ModelSpec,
    SubsetUtility,
    fit_models,
    init_parameters,
    stacked_metric,
)
from opendataval.metrics import accuracy, neg_l2, neg_mse
from opendataval.model import ClassifierMLP, LogisticRegression, RegressionMLP

pytestmark = pytest.mark.filterwarnings("ignore:'pin_memory' argument:UserWarning")

N, D = 40, 4
TRAIN = {"epochs": 3, "batch_size": 8, "lr": 0.05}


def _data(num_classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(N, D)))
    if num_classes == 1:
        return x, torch.tanh(x[:, :1] - x[:, 1:2]) + 0.1 * torch.tensor(rng.normal(size=(N, 1)))
    labels = torch.tensor(rng.integers(0, num_classes, N))
    return x, torch.eye(num_classes, dtype=torch.float64)[labels]


MODELS = {
    "classifier_mlp_2": (
        lambda: ClassifierMLP(D, 2, layers=3, hidden_dim=8),
        ModelSpec.classifier_mlp(D, 2, layers=3, hidden_dim=8),
    ),
    "classifier_mlp_3": (
        lambda: ClassifierMLP(D, 3, layers=4, hidden_dim=8),
        ModelSpec.classifier_mlp(D, 3, layers=4, hidden_dim=8),
    ),
    "logistic_regression_2": (
        lambda: LogisticRegression(D, 2),
        ModelSpec.logistic_regression(D, 2),
    ),
    "logistic_regression_3": (
        lambda: LogisticRegression(D, 3),
        ModelSpec.logistic_regression(D, 3),
    ),
    "regression_mlp": (
        lambda: RegressionMLP(D, 1, layers=3, hidden_dim=8, act_fn=torch.nn.Tanh()),
        ModelSpec.regression_mlp(D, 1, layers=3, hidden_dim=8, activation="tanh"),
    ),
}


@pytest.fixture
def recorded_shuffles(monkeypatch):
    """Every DataLoader epoch's shuffle, in order, as OpenDataVal's fit draws them."""
    orders: list[list[int]] = []
    original = RandomSampler.__iter__

    def recording(self):
        order = list(original(self))
        orders.append(order)
        yield from order

    monkeypatch.setattr(RandomSampler, "__iter__", recording)
    return orders


def _odv_fits(make_model, x, y, subsets, shuffles, weights=None):
    """OpenDataVal's fit of one float64 model clone per subset; returns the initial
    weights, each fit's validation predictions and the batch orders it used."""
    torch.manual_seed(0)
    base = make_model().double()
    init = [(m.weight.detach(), m.bias.detach()) for m in base.modules() if hasattr(m, "bias")]
    preds, orders = [], []
    for k, subset in enumerate(subsets):
        shuffles.clear()
        model = base.clone()
        extra = {} if weights is None else {"sample_weight": torch.tensor(weights[k])[:, None]}
        model.fit(Subset(x, subset), Subset(y, subset), **TRAIN, **extra)
        preds.append(model.predict(x))
        orders.append(np.array(shuffles))
    return init, torch.stack(preds), orders


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_unequal_subsets_in_one_batch_equal_opendatavals_separate_fits(
    name, fused, recorded_shuffles, monkeypatch
):
    """Both Adam paths: the fused kernel per run of equal step counts, and the written-out
    update with per-model step counts."""
    if fused and not fitting.has_fused_adam(torch.device("cpu")):
        pytest.skip("this torch has no fused CPU Adam")
    if not fused:
        monkeypatch.setattr(fitting, "has_fused_adam", lambda device: False)
    make_model, spec = MODELS[name]
    x, y = _data(spec.num_classes)
    rng = np.random.default_rng(1)
    # unequal sizes (partial last batches of different lengths, a single point, one
    # subset shorter than a batch) and repeated points (bootstrap)
    subsets = [rng.integers(0, N, size=s) for s in (N, 29, 1, 7, 17)]
    init, expected, orders = _odv_fits(make_model, x, y, subsets, recorded_shuffles)
    fitted = fit_models(spec, x, y, subsets, init=init, **TRAIN, orders=orders)
    torch.testing.assert_close(fitted.predict(x), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "name", ["classifier_mlp_2", "classifier_mlp_3", "logistic_regression_2", "regression_mlp"]
)
def test_sample_weights_equal_opendatavals_weighted_fit(name, recorded_shuffles):
    """OpenDataVal weights the unreduced loss by a (batch, 1) column; with 3 classes that
    broadcasts to (batch, batch): the engine reproduces it."""
    make_model, spec = MODELS[name]
    x, y = _data(spec.num_classes, seed=2)
    rng = np.random.default_rng(3)
    subsets = [np.arange(N), rng.choice(N, 21, replace=False)]
    weights = [rng.uniform(0, 2, size=len(s)) for s in subsets]
    init, expected, orders = _odv_fits(make_model, x, y, subsets, recorded_shuffles, weights)
    fitted = fit_models(
        spec, x, y, subsets, init=init, **TRAIN, orders=orders, sample_weights=weights
    )
    torch.testing.assert_close(fitted.predict(x), expected, rtol=1e-10, atol=1e-12)


def test_a_fit_without_a_batch_takes_no_adam_step():
    """Next to a long fit, a short one ends where it ends alone; Adam with a zero gradient
    would have moved it (its moments decay but stay non-zero)."""
    _, spec = MODELS["classifier_mlp_2"]
    x, y = _data(2)
    init = [(w.double(), b.double()) for w, b in _init(spec)]
    short, long = np.arange(5), np.arange(N)
    orders_short = [np.arange(5)] * TRAIN["epochs"]
    orders_long = [np.arange(N)] * TRAIN["epochs"]
    alone = fit_models(spec, x, y, [short], init=init, **TRAIN, orders=[orders_short])
    together = fit_models(
        spec, x, y, [long, short], init=init, **TRAIN, orders=[orders_long, orders_short]
    )
    torch.testing.assert_close(together.predict(x)[1], alone.predict(x)[0], rtol=1e-12, atol=0)
    assert not torch.allclose(together.predict(x)[0], alone.predict(x)[0])


def _init(spec: ModelSpec):
    return init_parameters(spec, random_state=0)


def _utility(**overrides) -> SubsetUtility:
    x, y = _data(2, seed=4)
    settings = {
        "x_train": x.numpy(),
        "y_train": y.numpy(),
        "x_valid": x.numpy()[:10],
        "y_valid": y.numpy()[:10],
        "model": ModelSpec.classifier_mlp(D, 2, layers=3, hidden_dim=8),
        "metric": "neg_mse",
        "random_state": 7,
        "max_models": 3,
        "device": "cpu",
        **TRAIN,
    }
    return SubsetUtility(**{**settings, **overrides})


def test_utility_is_deterministic_under_a_seed_and_varies_with_it():
    subsets = [np.arange(0, N, 2), np.arange(N), np.arange(12), np.arange(5, 30)]
    first = _utility()(subsets)
    assert np.array_equal(first, _utility()(subsets))
    assert not np.array_equal(first, _utility(random_state=8)(subsets))
    assert first.shape == (4,)


def test_masks_and_index_arrays_give_the_same_utilities():
    rng = np.random.default_rng(0)
    masks = rng.binomial(1, 0.5, size=(5, N))
    from_masks = _utility()(masks)
    from_indices = _utility()([np.flatnonzero(m) for m in masks])
    assert np.array_equal(from_masks, from_indices)


def test_weighted_utilities_with_unit_weights_equal_plain_fits_on_everything():
    weighted = _utility().weighted_utilities(np.ones((2, N)))
    plain = _utility()([np.arange(N), np.arange(N)])
    np.testing.assert_allclose(weighted, plain, rtol=1e-5)


def test_predictions_are_those_of_the_utilitys_fits():
    subsets = [np.arange(20), np.arange(N)]
    utility, twin = _utility(metric="neg_mse"), _utility(metric="neg_mse")
    x_valid, y_valid = utility.data[2], utility.data[3]
    preds = twin.predictions(subsets, x_valid)
    assert preds.shape == (2, 10, 2)
    expected = [neg_mse(torch.tensor(y_valid), p) for p in preds]
    np.testing.assert_allclose(utility(subsets), expected, rtol=1e-6)


def test_empty_subsets_are_refused_as_opendataval_refuses_them():
    with pytest.raises(ValueError, match="empty"):
        _utility()([np.arange(4), np.array([], dtype=int)])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="outside"):
        _utility()([np.array([0, N])])
    with pytest.raises(ValueError, match="x_train has 4 columns"):
        _utility(model=ModelSpec.classifier_mlp(5, 2))([np.arange(3)])
    with pytest.raises(ValueError, match="0/1 mask"):
        _utility()(np.full((2, N), 2))


@pytest.mark.parametrize("metric", [accuracy, neg_mse, neg_l2])
@pytest.mark.parametrize("width", [1, 3])
def test_named_metrics_equal_opendatavals(metric, width):
    """Including accuracy on a one-column output: argmax is always 0, accuracy 1.0."""
    rng = np.random.default_rng(width)
    y = torch.tensor(rng.normal(size=(12, width)), dtype=torch.float32)
    y_hat = torch.tensor(rng.normal(size=(4, 12, width)), dtype=torch.float32)
    expected = [metric(y, p) for p in y_hat]
    np.testing.assert_allclose(stacked_metric(metric.__name__, y, y_hat), expected, rtol=1e-6)
    np.testing.assert_allclose(stacked_metric(metric, y, y_hat), expected, rtol=1e-6)
    if metric is accuracy and width == 1:
        assert expected == [1.0] * 4


def test_model_spec_checks_its_shape():
    assert ModelSpec.classifier_mlp(48, 2, layers=5, hidden_dim=100).layer_sizes == [
        (48, 100),
        (100, 100),
        (100, 100),
        (100, 100),
        (100, 2),
    ]
    with pytest.raises(ValueError, match="at least 2 layers"):
        ModelSpec.regression_mlp(3, layers=1)
    with pytest.raises(ValueError, match="activation"):
        ModelSpec.regression_mlp(3, activation="gelu")


@pytest.mark.cuda
def test_cuda_fits_equal_cpu_fits():
    _, spec = MODELS["classifier_mlp_3"]
    x, y = _data(3)
    init = [(w.double(), b.double()) for w, b in _init(spec)]
    rng = np.random.default_rng(5)
    subsets = [rng.integers(0, N, size=s) for s in (N, 13, 3)]
    orders = [np.stack([rng.permutation(len(s)) for _ in range(3)]) for s in subsets]
    cpu = fit_models(spec, x, y, subsets, init=init, **TRAIN, orders=orders).predict(x)
    cuda = fit_models(spec, x.cuda(), y.cuda(), subsets, init=init, **TRAIN, orders=orders)
    torch.testing.assert_close(cuda.predict(x).cpu(), cpu, rtol=1e-9, atol=1e-11)
    utility = _utility(device="cuda")
    assert np.isfinite(utility([np.arange(N), np.arange(9)])).all()
