"""Does the baselines' prediction model learn? One fit per noisy split and training.

The retraining baselines (evaluators with the ``trains_prediction_model`` capability) value
a point by how the prediction model's validation score changes with it. When that model,
trained on the whole noisy training set, predicts one class everywhere or a constant, every
utility is the same and so is every value: the method has nothing to rank with. The paper's
classification model (5x100 MLP, Adam lr 0.1) does this on the offline datasets.

A check fits the model once as the method's baselines train it (the protocol's training,
changed by the method's ``train``) on the split's noisy training set, seeded by the split,
and scores it on the validation set (what the baselines' utility sees) and the test set.
Checks are stored beside the cells (:meth:`ResultStore.add_model_check`) and reported per
dataset and method (:mod:`lossval_odv.reporting.degeneracy`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lossval_odv.bench.cell import make_fetcher
from lossval_odv.bench.grid import Cell, derive_seed
from lossval_odv.bench.models import baseline_training, prediction_model
from lossval_odv.datasets.register import task_of
from lossval_odv.evaluators.capabilities import capabilities_of

CHECK_VERSION = 1  # bump when a change alters what a check computes
ONE_CLASS_SHARE = 0.99  # one class predicted on at least this share of test points
PRIOR_MARGIN = 0.01  # test accuracy at most the class prior plus this: not learning
CONSTANT_SPREAD = 0.05  # std(prediction) / std(target) below this: constant output


@dataclass(frozen=True)
class ModelCheck:
    """The check of one split (that of ``cell``) under one training of the model."""

    cell: Cell
    task: str
    training: dict[str, Any]

    @property
    def split_text(self) -> str:
        return "/".join(str(n) for n in self.cell.split)

    @property
    def training_text(self) -> str:
        return canonical_training(self.training)

    @property
    def key(self) -> str:
        cell = self.cell
        payload = {
            "dataset": cell.dataset,
            "noise": cell.noise,
            "rate": cell.rate,
            "run": cell.run,
            "data_seed": cell.data_seed,
            "split": list(cell.split),
            "table": None if cell.table is None else cell.table.identity(),
            "training": self.training,
            "version": CHECK_VERSION,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]

    def describe(self) -> str:
        cell = self.cell
        return f"{cell.dataset}/{cell.noise}@{cell.rate:g}/run{cell.run} ({self.training_text})"


def canonical_training(training: dict[str, Any]) -> str:
    """A training as stored and joined on: canonical JSON."""
    return json.dumps(training, sort_keys=True)


def model_checks_of(cells: list[Cell]) -> list[ModelCheck]:
    """One check per split and training among the cells whose evaluator fits the
    prediction model, in the cells' order."""
    checks: dict[str, ModelCheck] = {}
    for cell in cells:
        if not capabilities_of(cell.evaluator).trains_prediction_model:
            continue
        task = task_of(cell.dataset)
        check = ModelCheck(cell=cell, task=task, training=baseline_training(task, cell.train))
        checks.setdefault(check.key, check)
    return list(checks.values())


def run_check(check: ModelCheck) -> dict[str, Any]:
    """Fit the check's model on its split's noisy training set; its diagnosis."""
    fetcher = make_fetcher(check.cell)
    x_train, y_train, x_valid, y_valid, x_test, y_test = fetcher.datapoints
    n_features = int(np.prod(fetcher.covar_dim))
    n_classes = int(fetcher.label_dim[0]) if check.task == "classification" else 1
    torch.manual_seed(derive_seed(check.cell.data_seed, "model_check"))
    model = prediction_model(check.task, n_features, n_classes, torch.device("cpu"))
    model.fit(x_train, y_train, **check.training)
    with torch.no_grad():
        predictions = [_numpy(model.predict(x)) for x in (x_valid, x_test)]
    targets = [_numpy(y) for y in (y_valid, y_test)]
    if check.task == "classification":
        return diagnose_classification(*predictions, *targets)
    return diagnose_regression(*predictions, *targets)


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu() if isinstance(tensor, torch.Tensor) else tensor)


def diagnose_classification(
    proba_valid: np.ndarray, proba_test: np.ndarray, y_valid: np.ndarray, y_test: np.ndarray
) -> dict[str, Any]:
    """Accuracies, the class prior (the test share of its most frequent class), how many
    classes the model predicts on the test set and the share of the most predicted one;
    ``collapsed`` with its reason when it predicts one class or scores at the prior."""
    predicted = proba_test.argmax(axis=1)
    truth = y_test.argmax(axis=1)
    counts = np.bincount(predicted, minlength=proba_test.shape[1])
    top_share = float(counts.max() / len(predicted))
    prior = float(np.bincount(truth, minlength=proba_test.shape[1]).max() / len(truth))
    test_score = float((predicted == truth).mean())
    if top_share >= ONE_CLASS_SHARE:
        reason = f"predicts one class on {top_share:.1%} of the test points"
    elif test_score <= prior + PRIOR_MARGIN:
        reason = f"test accuracy {test_score:.3f} at the class prior {prior:.3f}"
    else:
        reason = ""
    return {
        "metric": "accuracy",
        "valid_score": float((proba_valid.argmax(axis=1) == y_valid.argmax(axis=1)).mean()),
        "test_score": test_score,
        "baseline_score": prior,
        "classes_predicted": int((counts > 0).sum()),
        "top_class_share": top_share,
        "collapsed": bool(reason),
        "reason": reason,
    }


def _r2(prediction: np.ndarray, target: np.ndarray) -> float:
    residual = float(((target - prediction) ** 2).sum())
    total = float(((target - target.mean()) ** 2).sum())
    return 1.0 - residual / total if total > 0 else float("nan")


def diagnose_regression(
    pred_valid: np.ndarray, pred_test: np.ndarray, y_valid: np.ndarray, y_test: np.ndarray
) -> dict[str, Any]:
    """R² on validation and test (0 = predicting the mean) and the spread of the test
    predictions relative to the targets'; ``collapsed`` with its reason when the output
    is (nearly) constant or no better than the mean."""
    pred_test, y_test = pred_test.reshape(-1), y_test.reshape(-1)
    spread = float(pred_test.std() / y_test.std()) if y_test.std() > 0 else float("nan")
    test_score = _r2(pred_test, y_test)
    if spread < CONSTANT_SPREAD:
        reason = f"constant output (prediction spread {spread:.3f} of the target's)"
    elif test_score <= 0:
        reason = f"test R² {test_score:.3f}: no better than predicting the mean"
    else:
        reason = ""
    return {
        "metric": "r2",
        "valid_score": _r2(pred_valid.reshape(-1), y_valid.reshape(-1)),
        "test_score": test_score,
        "baseline_score": 0.0,
        "output_spread": spread,
        "collapsed": bool(reason),
        "reason": reason,
    }
