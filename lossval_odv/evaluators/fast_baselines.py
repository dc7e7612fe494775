"""OpenDataVal's retraining baselines with their model fits batched (:mod:`core.fitting`).

Each class subclasses its OpenDataVal 1.3.0 counterpart and replaces only
``train_data_values``: the constructor (parameters, defaults), the sampling of subsets from
``random_state`` (the same calls in the same order, so a seed gives the same subsets as
OpenDataVal's), the skipped subsets, the bookkeeping and ``evaluate_data_values`` are
OpenDataVal's. The fits themselves run K at a time on the engine, which reproduces
OpenDataVal's ``fit`` (same initial weights for every fit, Adam, epochs, batches, loss);
their shuffles come from a seed drawn from ``random_state`` after the subsets (OpenDataVal
draws them from torch's global generator). Registry keys: ``"fastdataoob"``,
``"fastdatabanzhaf"``, ``"fastame"``, ``"fastinfluencesubsample"``, ``"fastleaveoneout"``.

Supported prediction models: OpenDataVal's ``ClassifierMLP``, ``RegressionMLP`` and
``LogisticRegression``; any other model raises a ``TypeError`` naming it and the OpenDataVal
evaluator to use instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lossval_odv.core.fitting import Metric, ModelSpec, SubsetUtility
from lossval_odv.core.runtime import to_seed
from lossval_odv.evaluators.capabilities import Capabilities

from opendataval.dataval.ame import AME
from opendataval.dataval.influence import InfluenceSubsample
from opendataval.dataval.margcontrib import DataBanzhaf, LeaveOneOut
from opendataval.dataval.oob import DataOob
from opendataval.metrics import Metrics, accuracy, neg_l2, neg_mse
from opendataval.model import ClassifierMLP, LogisticRegression, RegressionMLP

_ACTIVATION_NAMES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
_METRIC_NAMES = {accuracy: "accuracy", neg_mse: "neg_mse", neg_l2: "neg_l2"}
# OpenDataVal's Torch*Mixin.fit(x, y, sample_weight=None, batch_size=32, epochs=1, lr=0.01)
_FIT_DEFAULTS = {"sample_weight": None, "batch_size": 32, "epochs": 1, "lr": 0.01}


def model_spec(model: Any, evaluator: str, counterpart: str) -> tuple[ModelSpec, list]:
    """The engine's description and the initial weights of an OpenDataVal prediction model.

    Raises
    ------
    TypeError
        For a model the engine does not train (e.g. the scikit-learn wrappers), naming it
        and the OpenDataVal evaluator that trains any model.
    """
    supported = "ClassifierMLP, RegressionMLP, LogisticRegression"
    kind = type(model)
    if kind not in (ClassifierMLP, RegressionMLP, LogisticRegression):
        raise TypeError(
            f"{evaluator} trains OpenDataVal's {supported} only, got the prediction model "
            f"{kind.__name__}; use OpenDataVal's {counterpart} for it"
        )
    if kind is LogisticRegression:
        linears = [model.linear]
        spec = ModelSpec.logistic_regression(model.input_dim, model.num_classes)
    else:
        linears = [m for m in model.mlp if isinstance(m, nn.Linear)]
        acts = {type(m) for m in model.mlp if not isinstance(m, nn.Linear | nn.Softmax)}
        if len(acts) != 1 or next(iter(acts)) not in _ACTIVATION_NAMES:
            raise TypeError(
                f"{evaluator} supports the MLP activations "
                f"{[a.__name__ for a in _ACTIVATION_NAMES]}, got {[a.__name__ for a in acts]}; "
                f"use OpenDataVal's {counterpart}"
            )
        family = "classifier_mlp" if kind is ClassifierMLP else "regression_mlp"
        spec = ModelSpec(
            family,
            input_dim=linears[0].in_features,
            num_classes=linears[-1].out_features,
            layers=len(linears),
            hidden_dim=linears[0].out_features,
            activation=_ACTIVATION_NAMES[next(iter(acts))],
        )
    init = [(m.weight.detach().cpu(), m.bias.detach().cpu()) for m in linears]
    return spec, init


def fit_settings(args: tuple, kwargs: dict, evaluator: str) -> dict[str, Any]:
    """OpenDataVal's ``fit`` arguments (positional ones in its order) with its defaults."""
    names = list(_FIT_DEFAULTS)
    if len(args) > len(names):
        raise TypeError(f"{evaluator}: too many positional train arguments {args}")
    settings = dict(_FIT_DEFAULTS)
    settings.update(zip(names, args, strict=False))
    unknown = set(kwargs) - set(names)
    if unknown:
        raise TypeError(
            f"{evaluator}: unknown train arguments {sorted(unknown)}; fit takes {names}"
        )
    settings.update(kwargs)
    if settings.pop("sample_weight") is not None:
        raise ValueError(
            f"{evaluator} fits on subsets; a sample_weight for the whole training set does not "
            "apply to them (OpenDataVal's evaluator would fail on the length mismatch)"
        )
    return settings


def metric_of(metric: Any) -> Metric:
    """OpenDataVal's metric as the engine's name when it is one of OpenDataVal's own (then
    computed for all fits at once), else the callable itself (applied per fit)."""
    for function, name in _METRIC_NAMES.items():
        if metric is function or metric is Metrics(name):
            return name
    return metric


class FastRetraining:
    """What the fast evaluators share (not a DataEvaluator itself, so it is not registered):
    the engine's settings and the utility built from what ``train`` received.

    Subclasses call ``FastRetraining.__init__(self, device, max_models)`` and
    ``self._utility(args, kwargs)`` in ``train_data_values``; ``self.n_fits_`` counts the
    models they fitted.
    """

    counterpart: str  # the OpenDataVal evaluator it reimplements
    # the fits run on ``device`` (a string; 'auto' picks CUDA when available)
    capabilities = Capabilities(device_argument="str")

    def _engine_settings(self, device: str, max_models: int) -> None:
        self.device = device
        self.max_models = max_models

    def _utility(self, args: tuple, kwargs: dict, *, validation: bool = True) -> SubsetUtility:
        """The utility of subsets of this evaluator's data for its prediction model. Draws
        the seed of the shuffles from ``random_state`` (call it after drawing subsets)."""
        name = type(self).__name__
        for attr in ("x_train", "y_train") + (("x_valid", "y_valid") if validation else ()):
            data = getattr(self, attr, None)
            if not isinstance(data, torch.Tensor):
                raise TypeError(
                    f"{name} needs {attr} as a tensor, got {type(data).__name__} "
                    f"(embed image/text Datasets first, or use OpenDataVal's {self.counterpart})"
                )
        spec, init = model_spec(self.pred_model, name, self.counterpart)
        settings = fit_settings(args, kwargs, name)
        return SubsetUtility(
            x_train=self.x_train,
            y_train=self.y_train,
            x_valid=self.x_valid if validation else None,
            y_valid=self.y_valid if validation else None,
            model=spec,
            epochs=int(settings["epochs"]),
            batch_size=int(settings["batch_size"]),
            lr=float(settings["lr"]),
            metric=metric_of(self.metric) if validation else "accuracy",
            init=init,
            device=self.device,
            dtype=init[0][0].dtype,
            random_state=to_seed(self.random_state),
            max_models=self.max_models,
        )


_ENGINE_DOC = """
    device : {"auto", "cpu", "cuda", "cuda:N"}, optional
        Where the fits run (runs on GPU); "auto": CUDA when available, by default "auto"
    max_models : int, optional
        Fits trained at once (bounds memory), by default 256
"""


class FastDataOob(FastRetraining, DataOob):
    __doc__ = (DataOob.__doc__ or "") + _ENGINE_DOC
    counterpart = "DataOob"

    def __init__(
        self,
        num_models: int = 1000,
        proportion: float = 1.0,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(num_models=num_models, proportion=proportion, random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``DataOob.train_data_values`` with the bootstrap fits batched."""
        sample_dim = (self.num_models, self.max_samples)
        subsets = self.random_state.randint(0, self.num_points, size=sample_dim)
        in_bags, out_bags = [], []
        for in_bag in subsets:
            out_bag = (np.bincount(in_bag, minlength=self.num_points) == 0).nonzero()[0]
            if not out_bag.any():  # OpenDataVal's test: also skips an out-of-bag set {0}
                continue
            in_bags.append(in_bag)
            out_bags.append(out_bag)
        if in_bags:
            utility = self._utility(args, kwargs, validation=False)
            predictions = utility.predictions(in_bags, self.x_train)
            self.n_fits_ = utility.n_fits
            self.oob_pred = torch.cat(
                [self.oob_pred] + [p[o] for p, o in zip(predictions, out_bags, strict=True)]
            )
        else:
            self.n_fits_ = 0
        for out_bag in out_bags:
            self.oob_indices.add_indices(out_bag)
        return self


class FastDataBanzhaf(FastRetraining, DataBanzhaf):
    __doc__ = (DataBanzhaf.__doc__ or "") + _ENGINE_DOC
    counterpart = "DataBanzhaf"

    def __init__(
        self,
        num_models: int = 1000,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(num_models=num_models, random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``DataBanzhaf.train_data_values`` with the fits batched."""
        sample_dim = (self.num_models, self.num_points)
        subsets = self.random_state.binomial(1, 0.5, size=sample_dim)
        kept = [i for i in range(self.num_models) if subsets[i].nonzero()[0].any()]
        perf = _utilities(self, args, kwargs, [subsets[i].nonzero()[0] for i in kept])
        for i, curr_perf in zip(kept, perf, strict=True):
            self.sample_utility[range(self.num_points), subsets[i]] += curr_perf
            self.sample_counts[range(self.num_points), subsets[i]] += 1
        return self


class FastAME(FastRetraining, AME):
    __doc__ = (AME.__doc__ or "") + _ENGINE_DOC
    counterpart = "AME"

    def __init__(
        self,
        num_models: int = 1000,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(num_models=num_models, random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``AME.train_data_values`` (four ``BaggingEvaluator`` runs sharing
        ``random_state``) with all 4 x num_models fits batched together."""
        n = len(self.x_train)
        masks = np.vstack(
            [
                self.random_state.binomial(1, proportion, size=(self.num_models, n))
                for proportion in [0.2, 0.4, 0.6, 0.8]
            ]
        )
        kept = [i for i in range(len(masks)) if masks[i].nonzero()[0].any()]
        performance = np.zeros(len(masks))  # a skipped subset keeps performance 0
        performance[kept] = _utilities(self, args, kwargs, [masks[i].nonzero()[0] for i in kept])
        self.subsets = masks
        self.performance = performance
        return self


class FastInfluenceSubsample(FastRetraining, InfluenceSubsample):
    __doc__ = (InfluenceSubsample.__doc__ or "") + _ENGINE_DOC
    counterpart = "InfluenceSubsample"

    def __init__(
        self,
        num_models: int = 1000,
        proportion: float = 0.7,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(num_models=num_models, proportion=proportion, random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``InfluenceSubsample.train_data_values`` with the fits batched."""
        size = round(self.proportion * self.num_points)
        subsets = [
            self.random_state.choice(self.num_points, size, replace=False)
            for _ in range(self.num_models)
        ]
        perf = _utilities(self, args, kwargs, subsets)
        for subset, curr_perf in zip(subsets, perf, strict=True):
            included = (np.bincount(subset, minlength=self.num_points) != 0).astype(int)
            self.influence_matrix[range(self.num_points), included] += curr_perf
            self.sample_counts[range(self.num_points), included] += 1
        return self


class FastLeaveOneOut(FastRetraining, LeaveOneOut):
    __doc__ = (LeaveOneOut.__doc__ or "") + _ENGINE_DOC
    counterpart = "LeaveOneOut"

    def __init__(
        self,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``LeaveOneOut.train_data_values``: the full fit and the n
        leave-one-out fits, batched."""
        indices = self.random_state.permutation(self.num_points)
        subsets = [np.arange(self.num_points)]
        subsets += [np.delete(indices, i) for i in range(self.num_points)]
        scores = _utilities(self, args, kwargs, subsets)
        self.data_values = np.zeros((self.num_points,))
        self.data_values[indices] = scores[0] - scores[1:]
        return self


def _utilities(
    evaluator: FastRetraining, args: tuple, kwargs: dict, subsets: Sequence[np.ndarray]
) -> np.ndarray:
    """The validation utility of each subset; records the number of fits."""
    if not subsets:
        evaluator.n_fits_ = 0
        return np.zeros(0)
    utility = evaluator._utility(args, kwargs)
    values = utility(subsets)
    evaluator.n_fits_ = utility.n_fits
    return values


FAST_BASELINES: dict[str, type] = {
    cls.counterpart: cls
    for cls in (FastDataOob, FastDataBanzhaf, FastAME, FastInfluenceSubsample, FastLeaveOneOut)
}
