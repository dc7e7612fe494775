"""The OpenDataVal adapter: registry, mediator integration, arguments and errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lossval_odv import LossValODV, compat
from tests.helpers import planted_noise_task

from opendataval.dataloader import DataFetcher, mix_labels
from opendataval.dataval import DataEvaluator, KNNShapley
from opendataval.experiment import ExperimentMediator
from opendataval.experiment.exper_methods import noisy_detection
from opendataval.model import ClassifierMLP


def test_registered_under_its_own_key():
    assert DataEvaluator.Evaluators["lossvalodv"] is LossValODV
    assert "lossvalevaluator" not in DataEvaluator.Evaluators or (
        DataEvaluator.Evaluators["lossvalevaluator"] is not LossValODV
    )


def _fetcher(n_train: int, seed: int = 0) -> DataFetcher:
    x, y, _, _ = planted_noise_task(seed, "classification", n=n_train + 400, rate=0.0)
    fetcher = DataFetcher.from_data(x, y, one_hot=True, random_state=seed)
    fetcher = fetcher.split_dataset_by_count(n_train, 100, 300)
    return fetcher.noisify(mix_labels, noise_rate=0.2)


@pytest.mark.slow
def test_mediator_runs_lossval_with_baseline_detection_and_removal(caplog):
    # 1003 is not a multiple of round(0.05 * 1003) = 50: upstream remove_high_low breaks here
    fetcher = _fetcher(1003)
    mediator = ExperimentMediator(
        fetcher,
        ClassifierMLP(10, 2),
        train_kwargs={"epochs": 1, "batch_size": 128},
        raises_error=True,
    )
    with caplog.at_level(logging.INFO, logger="lossval_odv.evaluators.lossval"):
        mediator.compute_data_values(
            [LossValODV(random_state=0), KNNShapley(k_neighbors=100, random_state=0)]
        )
    assert "not used" in caplog.text  # forwarded train_kwargs are logged, not applied
    f1 = mediator.evaluate(noisy_detection)["kmeans_f1"]
    assert f1["LossValODV(random_state=0)"] > 0.5
    removal = mediator.evaluate(compat.remove_high_low)
    assert len(removal.loc["LossValODV(random_state=0)"]) == 20
    assert "axis" in removal.columns
    assert any(c.startswith("remove_least_influential_first_") for c in removal.columns)


def test_train_with_fetcher_is_seeded_and_honours_arguments():
    fetcher = _fetcher(300)
    a = LossValODV(epochs=2, random_state=3).train(fetcher).data_values
    b = LossValODV(epochs=2, random_state=3).train(fetcher).data_values
    c = LossValODV(epochs=3, random_state=3).train(fetcher).data_values
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    small = LossValODV(epochs=1, n_linear=2, hidden_width=7, random_state=0).train(fetcher)
    linears = [m for m in small.result_.model if hasattr(m, "out_features")]
    assert [m.out_features for m in linears] == [7, 2]


def test_task_is_inferred_from_labels():
    x, y, x_val, _ = planted_noise_task(0, "regression", n=120)
    ev = LossValODV(epochs=1, random_state=0).input_data(x, y, x_val, np.zeros(len(x_val)))
    ev.train_data_values()
    assert ev.result_.model[-1].out_features == 1  # regression MLP, linear output
    x, y, x_val, _ = planted_noise_task(0, "classification", n=120)
    ev = LossValODV(epochs=1, random_state=0).input_data(x, y, x_val, y[:100])
    ev.train_data_values()
    assert type(ev.result_.model[-1]).__name__ == "Softmax"


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"x_valid": None}, ValueError, "validation set"),
        ({"y_train": np.array([[0.3, 0.7]] * 50)}, ValueError, "one-hot"),
        ({"x_train": list(range(50))}, TypeError, "numpy array or a torch tensor"),
        ({"x_train": np.full((50, 10), np.inf)}, ValueError, "NaN or infinite"),
    ],
)
def test_adapter_errors_name_the_problem(change, error, match):
    x, y, x_val, _ = planted_noise_task(0, "classification", n=50)
    data = {"x_train": x, "y_train": y, "x_valid": x_val, "y_valid": y[:100]}
    data.update(change)
    with pytest.raises(error, match=match):
        LossValODV(epochs=1, task="classification").input_data(
            data["x_train"], data["y_train"], data["x_valid"], data["y_valid"]
        ).train_data_values()


def test_untrained_evaluator_says_so():
    with pytest.raises(RuntimeError, match="not been trained"):
        LossValODV().evaluate_data_values()
