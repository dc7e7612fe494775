"""What the fast retraining evaluators share: the engine's view of what OpenDataVal's
``DataEvaluator.train`` receives (the prediction model, its ``fit`` arguments, the metric)
and the mixin that builds a :class:`~lossval_odv.core.fitting.SubsetUtility` from it.

OpenDataVal is imported inside the functions, not at the top: the first ``import
opendataval`` registers every adapter (:mod:`lossval_odv.compat`), and an adapter that is
itself being imported then must find this module complete.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossval_odv.core.fitting import Metric, ModelSpec, SubsetUtility
from lossval_odv.core.runtime import to_seed
from lossval_odv.evaluators.capabilities import Capabilities

_ACTIVATION_NAMES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
_METRIC_NAMES = ("accuracy", "neg_mse", "neg_l2")
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
    from opendataval.model import ClassifierMLP, LogisticRegression, RegressionMLP

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
    from opendataval import metrics

    for name in _METRIC_NAMES:
        if metric is getattr(metrics, name) or metric is metrics.Metrics(name):
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
    capabilities = Capabilities(device_argument="str", trains_prediction_model=True)

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


ENGINE_DOC = """
    device : {"auto", "cpu", "cuda", "cuda:N"}, optional
        Where the fits run (runs on GPU); "auto": CUDA when available, by default "auto"
    max_models : int, optional
        Fits trained at once (bounds memory), by default 256
"""
