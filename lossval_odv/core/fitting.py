"""Many copies of OpenDataVal's prediction models trained at once (the retraining baselines).

OpenDataVal's retraining-based evaluators (Data-OOB, AME, Data Banzhaf, influence subsample,
leave-one-out, Data/Beta Shapley) fit thousands of small models one at a time through a
DataLoader: a fresh ``deepcopy`` of one prediction model per subset, so every fit starts
from *the same* initial weights and differs only in its data and its shuffles. This module
trains K such fits together, as stacked weights (``torch.baddbmm``), reproducing
OpenDataVal 1.3.0's ``TorchClassMixin.fit`` / ``TorchRegressMixin.fit`` step for step:

- Adam (``torch.optim.Adam`` defaults: betas (0.9, 0.999), eps 1e-8, no weight decay), a
  fresh optimiser per fit; the same initial weights for every fit (the cloned model's);
- ``epochs`` passes, each over a fresh uniform shuffle of the fit's own training points
  (``DataLoader(shuffle=True)``), in ``ceil(n_k / batch_size)`` batches, the last one
  partial (``drop_last=False``); an index subset may repeat points (bootstrap);
- the loss of OpenDataVal's classifiers, quirks included: the network's output is a
  probability (softmax for ``ClassifierMLP``, an element-wise *sigmoid* for
  ``LogisticRegression``); with 2 classes the loss is ``F.binary_cross_entropy`` of that
  output against the one-hot label, averaged over both columns; with more classes it is
  ``F.cross_entropy`` applied to the *probabilities* as if they were logits (a second
  softmax inside). Regression: ``F.mse_loss``;
- sample weights as OpenDataVal applies them: ``(loss(reduction="none") * w).mean()`` with
  ``w`` a column ``(batch, 1)``. For the two-class and regression losses that is the mean of
  the weighted elements; for the >2-class cross entropy, whose unreduced loss is ``(batch,)``,
  the product broadcasts to ``(batch, batch)`` and the "weighted" loss is
  ``mean(loss) * mean(w)`` (OpenDataVal's behaviour, kept);
- an empty training set: OpenDataVal's ``fit`` raises (the DataLoader's sampler refuses
  ``num_samples=0``) and its evaluators skip empty subsets before fitting, so
  :class:`SubsetUtility` refuses them; :func:`fit_models` leaves such a fit untrained.

Fits of unequal sizes train side by side: at step t of an epoch, fit k trains on its batch
t if it has one and is left completely alone otherwise (no forward, no Adam step: Adam with
a zero gradient would still move the weights). Fits are ordered by size so that the ones
still training at a step are a prefix of the stack. Each fit therefore sees exactly the
batches, in the same order of steps, it would see alone; what differs from OpenDataVal is
only where the shuffles come from (a ``torch.Generator`` seeded per chunk from a
``numpy.random.SeedSequence`` instead of torch's global generator) and float rounding.

The utility of a subset (:class:`SubsetUtility`) is OpenDataVal's metric of the fitted
model's validation predictions, ``metric(y_valid, y_hat)``: ``"accuracy"`` compares
``argmax`` over the output columns (for a one-column regression output that is always
equal: accuracy 1.0, as in OpenDataVal), ``"neg_mse"`` is ``-F.mse_loss``, ``"neg_l2"`` is
``-||y - y_hat||_2``; any callable ``metric(y, y_hat) -> float`` is applied per fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from lossval_odv.core.runtime import (
    RandomStateLike,
    has_fused_adam,
    intra_op_threads,
    resolve_device,
    to_seed,
)

Family = Literal["classifier_mlp", "regression_mlp", "logistic_regression"]
Activation = Literal["relu", "tanh", "sigmoid"]
MetricName = Literal["accuracy", "neg_mse", "neg_l2"]
Metric = MetricName | Callable[[torch.Tensor, torch.Tensor], float]
Layers = list[tuple[torch.Tensor, torch.Tensor]]

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


# ----------------------------------------------------------------------------------------
# The models
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One of OpenDataVal's torch prediction models, by shape.

    Parameters
    ----------
    family : {"classifier_mlp", "regression_mlp", "logistic_regression"}
        ``ClassifierMLP`` (Linear + activation blocks, softmax output), ``RegressionMLP``
        (the same blocks, linear output) or ``LogisticRegression`` (one Linear, sigmoid).
    input_dim, num_classes : int
        Input features and output columns (OpenDataVal's names; 1 for scalar regression).
    layers : int
        Linear layers of an MLP (OpenDataVal's ``layers``, >= 2); 1 for logistic regression.
    hidden_dim : int
        Width of the hidden layers (unused by logistic regression).
    activation : {"relu", "tanh", "sigmoid"}
        The MLP's hidden activation (OpenDataVal's ``act_fn``).
    """

    family: Family
    input_dim: int
    num_classes: int
    layers: int = 5
    hidden_dim: int = 25
    activation: Activation = "relu"

    def __post_init__(self) -> None:
        if self.family not in ("classifier_mlp", "regression_mlp", "logistic_regression"):
            raise ValueError(f"unknown model family {self.family!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}")
        if self.input_dim < 1 or self.num_classes < 1 or self.hidden_dim < 1:
            raise ValueError(f"model dimensions must be positive, got {self}")
        if self.family == "logistic_regression" and self.layers != 1:
            raise ValueError("logistic regression has exactly one layer (layers=1)")
        if self.family != "logistic_regression" and self.layers < 2:
            raise ValueError(f"an OpenDataVal MLP has at least 2 layers, got {self.layers}")

    @classmethod
    def classifier_mlp(
        cls,
        input_dim: int,
        num_classes: int,
        *,
        layers: int = 5,
        hidden_dim: int = 25,
        activation: Activation = "relu",
    ) -> ModelSpec:
        """``opendataval.model.ClassifierMLP(input_dim, num_classes, layers, hidden_dim)``."""
        return cls("classifier_mlp", input_dim, num_classes, layers, hidden_dim, activation)

    @classmethod
    def regression_mlp(
        cls,
        input_dim: int,
        num_classes: int = 1,
        *,
        layers: int = 5,
        hidden_dim: int = 25,
        activation: Activation = "relu",
    ) -> ModelSpec:
        """``opendataval.model.RegressionMLP(input_dim, num_classes, layers, hidden_dim)``."""
        return cls("regression_mlp", input_dim, num_classes, layers, hidden_dim, activation)

    @classmethod
    def logistic_regression(cls, input_dim: int, num_classes: int) -> ModelSpec:
        """``opendataval.model.LogisticRegression(input_dim, num_classes)``."""
        return cls("logistic_regression", input_dim, num_classes, layers=1)

    @property
    def is_classifier(self) -> bool:
        return self.family != "regression_mlp"

    @property
    def layer_sizes(self) -> list[tuple[int, int]]:
        """``(in, out)`` of each Linear layer, input first."""
        if self.family == "logistic_regression":
            return [(self.input_dim, self.num_classes)]
        hidden = [(self.hidden_dim, self.hidden_dim)] * (self.layers - 2)
        return [(self.input_dim, self.hidden_dim), *hidden, (self.hidden_dim, self.num_classes)]


def init_parameters(
    spec: ModelSpec,
    *,
    random_state: RandomStateLike = None,
    dtype: torch.dtype = torch.float32,
) -> Layers:
    """One model's initial ``[(weight (out, in), bias (out,)), ...]``: torch's default
    ``nn.Linear`` initialisation, drawn in a fork of torch's global generator seeded from
    ``random_state`` (the global generator is left as it was)."""
    seed = to_seed(random_state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linears = [torch.nn.Linear(i, o) for i, o in spec.layer_sizes]
    return [(m.weight.detach().to(dtype), m.bias.detach().to(dtype)) for m in linears]


def check_parameters(spec: ModelSpec, init: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Raise naming the layer when ``init`` does not have ``spec``'s shapes."""
    sizes = spec.layer_sizes
    if len(init) != len(sizes):
        raise ValueError(f"init has {len(init)} layers, the {spec.family} has {len(sizes)}")
    for i, ((w, b), (n_in, n_out)) in enumerate(zip(init, sizes, strict=True)):
        if tuple(w.shape) != (n_out, n_in) or tuple(b.shape) != (n_out,):
            raise ValueError(
                f"init layer {i}: weight {tuple(w.shape)} and bias {tuple(b.shape)}, "
                f"expected ({n_out}, {n_in}) and ({n_out},)"
            )


def stacked_forward(spec: ModelSpec, layers: Layers, x: torch.Tensor) -> torch.Tensor:
    """K stacked models on their inputs: x (K, b, in) -> outputs (K, b, num_classes),
    probabilities for the classifiers (softmax / sigmoid), as OpenDataVal's ``forward``.
    ``layers`` hold ``(W (K, in, out), b (K, out))``."""
    h = x
    act = _ACTIVATIONS[spec.activation]
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        h = torch.baddbmm(b.unsqueeze(1), h, w)
        if i < last:
            h = act(h)
    if spec.family == "classifier_mlp":
        return torch.softmax(h, dim=-1)
    if spec.family == "logistic_regression":
        return torch.sigmoid(h)
    return h


def batch_losses(
    spec: ModelSpec,
    out: torch.Tensor,
    y: torch.Tensor,
    valid: torch.Tensor,
    weights: torch.Tensor | None,
) -> torch.Tensor:
    """Each model's OpenDataVal loss on its batch: (K,) from outputs (K, b, c), targets
    (K, b, c), a row mask (K, b) (rows past a model's batch are padding) and optional
    weights (K, b). The quirks are OpenDataVal's (see the module docstring)."""
    rows = valid.sum(1).clamp(min=1).to(out.dtype)
    mask = valid.to(out.dtype)
    if spec.is_classifier and spec.num_classes != 2:
        k, b, c = out.shape
        per_row = F.cross_entropy(out.reshape(k * b, c), y.reshape(k * b, c), reduction="none")
        per_row = per_row.reshape(k, b) * mask
        loss = per_row.sum(1) / rows
        if weights is not None:  # (loss * w[:, None]).mean() == mean(loss) * mean(w)
            loss = loss * (weights * mask).sum(1) / rows
        return loss
    elementwise = (
        F.binary_cross_entropy(out, y, reduction="none")
        if spec.is_classifier
        else F.mse_loss(out, y, reduction="none")
    )
    row_weight = mask if weights is None else mask * weights
    return (elementwise * row_weight.unsqueeze(-1)).sum((1, 2)) / (rows * out.shape[-1])


# ----------------------------------------------------------------------------------------
# Adam with one step count per model
# ----------------------------------------------------------------------------------------


class StackedAdam:
    """``torch.optim.Adam`` (default hyper-parameters) for K stacked models, each with its
    own step count: ``step(grads, active)`` updates the first ``active`` models only, the
    others keep their weights and moments untouched (a skipped step, not a zero gradient).

    Adam is elementwise, so one Adam on stacked models is K separate optimisers. The step
    counts never increase along the stack (fits are ordered by size), so the models with
    equal counts are contiguous slices: each slice takes one call of Adam's fused kernel
    where this torch has it for the device (``torch.optim.Adam(fused=True)``'s update),
    else torch's single-tensor Adam written out with per-model bias corrections.
    """

    def __init__(self, params: Sequence[torch.Tensor], *, lr: float) -> None:
        self.params = list(params)
        self.lr = lr
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = np.zeros(self.params[0].shape[0], dtype=np.int64)
        self.fused = has_fused_adam(self.params[0].device)

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], active: int) -> None:
        self.steps[:active] += 1
        if not self.fused:
            self._step_unfused(grads, active)
            return
        counts = self.steps[:active]
        cuts = [0, *(np.flatnonzero(np.diff(counts)) + 1), active]
        device = self.params[0].device
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            step = torch.tensor(float(counts[a]), device=device)  # the kernel's float32 count
            torch._fused_adam_(
                [p[a:b] for p in self.params],
                [g[a:b].contiguous() for g in grads],
                [m[a:b] for m in self.exp_avg],
                [v[a:b] for v in self.exp_avg_sq],
                [],
                [step] * len(self.params),
                amsgrad=False,
                lr=self.lr,
                beta1=ADAM_BETAS[0],
                beta2=ADAM_BETAS[1],
                weight_decay=0.0,
                eps=ADAM_EPS,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

    def _step_unfused(self, grads: Sequence[torch.Tensor], active: int) -> None:
        beta1, beta2 = ADAM_BETAS
        steps = torch.from_numpy(self.steps[:active]).to(torch.float64)
        device, dtype = self.params[0].device, self.params[0].dtype
        step_size = (self.lr / (1 - beta1**steps)).to(device=device, dtype=dtype)
        bias2_sqrt = (1 - beta2**steps).sqrt().to(device=device, dtype=dtype)
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True):
            shape = (active,) + (1,) * (p.dim() - 1)
            g, m, v, p = g[:active], m[:active], v[:active], p[:active]
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / bias2_sqrt.view(shape)).add_(ADAM_EPS)
            p.sub_(step_size.view(shape) * (m / denom))


# ----------------------------------------------------------------------------------------
# Fitting one chunk
# ----------------------------------------------------------------------------------------


@dataclass
class FittedBatch:
    """K fitted models: ``layers`` hold ``(W (K, in, out), b (K, out))`` in the order the
    fits were given."""

    spec: ModelSpec
    layers: Layers

    @property
    def n_models(self) -> int:
        return self.layers[0][0].shape[0]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Every model's output on the same points: x (m, in) -> (K, m, num_classes)
        (OpenDataVal's ``predict``: probabilities for the classifiers)."""
        w0 = self.layers[0][0]
        x = x.to(device=w0.device, dtype=w0.dtype)
        return stacked_forward(self.spec, self.layers, x.expand(self.n_models, *x.shape))


def _subset_indices(subsets: Sequence[np.ndarray] | np.ndarray, n: int) -> list[np.ndarray]:
    """Index arrays from index arrays or a (K, n) 0/1 mask; checked against n points."""
    if isinstance(subsets, np.ndarray) and subsets.ndim == 2 and subsets.dtype != object:
        if subsets.shape[1] != n:
            raise ValueError(f"subset masks have {subsets.shape[1]} columns for {n} points")
        if not np.isin(subsets, (0, 1)).all():
            raise ValueError("a 2-D subsets array is a 0/1 mask; it has other values")
        return [np.flatnonzero(row) for row in subsets]
    out = []
    for k, s in enumerate(subsets):
        idx = np.asarray(s)
        if idx.size == 0:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"subset {k} must be a 1-D integer index array, got {idx.dtype}")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"subset {k} has indices outside [0, {n})")
        out.append(idx.astype(np.int64))
    return out


def fit_models(
    spec: ModelSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    subsets: Sequence[np.ndarray],
    *,
    init: Sequence[tuple[torch.Tensor, torch.Tensor]],
    epochs: int,
    batch_size: int,
    lr: float,
    sample_weights: Sequence[np.ndarray] | None = None,
    generator: torch.Generator | None = None,
    orders: Sequence[np.ndarray] | None = None,
) -> FittedBatch:
    """Train one model per subset of ``(x, y)`` together, all from ``init``.

    Parameters
    ----------
    spec : ModelSpec
        The model.
    x, y : torch.Tensor
        The training set on the device the fits run on: (n, input_dim) and
        (n, num_classes) (one-hot labels for the classifiers).
    subsets : sequence of int arrays
        Model k trains on ``x[subsets[k]]`` (repeats allowed; empty: no step).
    init : [(weight (out, in), bias (out,)), ...]
        The initial weights every model starts from (``nn.Linear`` layout).
    epochs, batch_size, lr : int, int, float
        OpenDataVal's train kwargs.
    sample_weights : sequence of float arrays, optional
        Model k's weight of each entry of ``subsets[k]``.
    generator : torch.Generator, optional
        Source of the shuffles (on ``x``'s device).
    orders : sequence of int arrays, optional
        Instead of shuffles: model k's batch order, shape (epochs, len(subsets[k])), each
        row a permutation of ``range(len(subsets[k]))`` (for exact comparisons).

    Returns
    -------
    FittedBatch
        The fitted models, in the order of ``subsets``.
    """
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"need epochs >= 0, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}"
        )
    check_parameters(spec, init)
    n_models = len(subsets)
    if n_models == 0:
        raise ValueError("fit_models needs at least one subset")
    device, dtype = x.device, x.dtype
    sizes = np.array([len(s) for s in subsets], dtype=np.int64)
    # fits by size, largest first: those still training at a step are a prefix
    by_size = np.argsort(-sizes, kind="stable")
    sizes_sorted = sizes[by_size]
    n_max = int(sizes_sorted[0])
    padded = np.zeros((n_models, max(n_max, 1)), dtype=np.int64)
    weight_pad = np.zeros((n_models, max(n_max, 1)))
    for row, k in enumerate(by_size):
        padded[row, : sizes[k]] = subsets[k]
        if sample_weights is not None:
            weight_pad[row, : sizes[k]] = np.asarray(sample_weights[k], dtype=float).reshape(-1)
    members = torch.from_numpy(padded).to(device)
    weights_t = None if sample_weights is None else torch.from_numpy(weight_pad).to(device, dtype)
    sizes_t = torch.from_numpy(sizes_sorted).to(device)
    in_subset = torch.arange(padded.shape[1], device=device) < sizes_t.unsqueeze(1)

    params = []  # contiguous copies: Adam's fused kernel needs its tensors dense
    for w, b in init:
        params.append(
            w.t()
            .to(device, dtype)
            .expand(n_models, -1, -1)
            .clone(memory_format=torch.contiguous_format)
        )
        params.append(
            b.to(device, dtype).expand(n_models, -1).clone(memory_format=torch.contiguous_format)
        )
    for p in params:
        p.requires_grad_(True)
    layers = list(zip(params[0::2], params[1::2], strict=True))
    adam = StackedAdam(params, lr=lr)
    steps_per_epoch = math.ceil(n_max / batch_size)

    for epoch in range(epochs):
        if orders is not None:
            perm_np = np.zeros_like(padded)
            for row, k in enumerate(by_size):
                perm_np[row, : sizes[k]] = np.asarray(orders[k])[epoch]
            perm = torch.from_numpy(perm_np).to(device)
        else:
            # a uniform shuffle of each fit's own positions (padding sorts last); float64
            # keys, so that ties (which argsort would break by position) practically never occur
            keys = torch.rand(padded.shape, generator=generator, device=device, dtype=torch.float64)
            perm = keys.masked_fill_(~in_subset, 2.0).argsort(dim=1)
        order = members.gather(1, perm)
        order_w = None if weights_t is None else weights_t.gather(1, perm)
        for t in range(steps_per_epoch):
            start = t * batch_size
            active = int((sizes_sorted > start).sum())  # on the host: no device sync
            rows = torch.arange(start, min(start + batch_size, n_max), device=device)
            valid = rows.unsqueeze(0) < sizes_t[:active].unsqueeze(1)
            idx = order[:active, start : start + batch_size]
            # all fits training: the stacks themselves (a slice's backward would allocate
            # and fill full-size gradients)
            training = (
                layers if active == n_models else [(w[:active], b[:active]) for w, b in layers]
            )
            out = stacked_forward(spec, training, x[idx])
            w_batch = None if order_w is None else order_w[:active, start : start + batch_size]
            loss = batch_losses(spec, out, y[idx], valid, w_batch).sum()
            grads = torch.autograd.grad(loss, params)
            adam.step(grads, active)

    restore = np.argsort(by_size)
    restore_t = torch.from_numpy(restore).to(device)
    fitted = [(w.detach()[restore_t], b.detach()[restore_t]) for w, b in layers]
    return FittedBatch(spec=spec, layers=fitted)


# ----------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------


def stacked_metric(metric: Metric, y: torch.Tensor, y_hat: torch.Tensor) -> np.ndarray:
    """OpenDataVal's ``metric(y, y_hat)`` for each of K predictions y_hat (K, m, c) of the
    same targets y (m, c): (K,) floats. Named metrics are computed for all K at once."""
    if not isinstance(metric, str):
        y_cpu = y.cpu()
        return np.array([metric(y_cpu, pred.cpu()) for pred in y_hat], dtype=float)
    if y_hat.shape[1:] != y.shape:
        raise ValueError(f"predictions {tuple(y_hat.shape[1:])} and targets {tuple(y.shape)}")
    y = y.to(y_hat.dtype)
    if metric == "accuracy":
        hits = (y_hat.argmax(dim=2) == y.argmax(dim=1)).float().mean(1)
        return hits.cpu().numpy().astype(float)
    if metric == "neg_mse":
        return -((y_hat - y) ** 2).mean((1, 2)).cpu().numpy().astype(float)
    if metric == "neg_l2":
        return -((y_hat - y) ** 2).sum((1, 2)).sqrt().cpu().numpy().astype(float)
    raise ValueError(
        f"unknown metric {metric!r}: use 'accuracy', 'neg_mse', 'neg_l2' or a callable"
    )


# ----------------------------------------------------------------------------------------
# The utility of subsets
# ----------------------------------------------------------------------------------------


class SubsetUtility:
    """The utility of training subsets as OpenDataVal's retraining evaluators define it:
    the metric, on the validation set, of a fresh copy of the prediction model fitted on the
    subset. ``utility(subsets)`` fits them ``max_models`` at a time.

    Parameters
    ----------
    x_train, y_train, x_valid, y_valid : array-like
        The data (numpy arrays or tensors); labels one-hot for classifiers, targets 2-D
        (n, num_classes) for regression (a 1-D target is taken as one column).
    model : ModelSpec
        The prediction model.
    epochs, batch_size, lr : int, int, float
        OpenDataVal's ``fit`` keyword arguments (its defaults: 1, 32, 0.01).
    metric : "accuracy" | "neg_mse" | "neg_l2" | callable
        OpenDataVal's metric, ``metric(y_valid, y_hat) -> float``.
    init : [(weight (out, in), bias (out,)), ...], optional
        The weights every fit starts from (an OpenDataVal model's cloned weights). Default:
        one torch-default initialisation drawn from ``random_state`` on first use and shared
        by every fit, as OpenDataVal clones one model for all of them.
    device : "auto" | "cpu" | "cuda" | "cuda:N"
        Where the fits run.
    dtype : torch.dtype
        Floating point type of the fits (OpenDataVal's models are float32).
    random_state : int | numpy RandomState/Generator | None
        Seeds the shuffles (and the default init). Each call spawns one child seed per
        chunk of a ``numpy.random.SeedSequence``: a sequence of calls is reproducible.
    max_models : int
        Fits trained at once (bounds memory: parameters and Adam moments of ``max_models``
        models, and their activations of one batch).
    cpu_threads : int | None
        torch intra-op threads during the fits (None: unchanged).
    """

    def __init__(
        self,
        *,
        x_train: np.ndarray | torch.Tensor,
        y_train: np.ndarray | torch.Tensor,
        x_valid: np.ndarray | torch.Tensor | None,
        y_valid: np.ndarray | torch.Tensor | None,
        model: ModelSpec,
        epochs: int = 1,
        batch_size: int = 32,
        lr: float = 0.01,
        metric: Metric = "accuracy",
        init: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
        device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float32,
        random_state: RandomStateLike = None,
        max_models: int = 256,
        cpu_threads: int | None = None,
    ) -> None:
        self.data = (x_train, y_train, x_valid, y_valid)
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.metric = metric
        self.init = init
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.max_models = max_models
        self.cpu_threads = cpu_threads
        self.n_fits = 0  # models fitted so far (the evaluators report it)

    # -- preparation (on first use) -----------------------------------------------------

    def _prepare(self) -> None:
        if hasattr(self, "_tensors"):
            return
        if self.max_models < 1:
            raise ValueError(f"max_models must be >= 1, got {self.max_models}")
        device = resolve_device(self.device)
        tensors = []
        for name, a in zip(("x_train", "y_train", "x_valid", "y_valid"), self.data, strict=True):
            if a is None and name.endswith("valid"):
                tensors.append(None)  # predictions() only
                continue
            t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
            t = t.detach().to(device=device, dtype=self.dtype)
            if t.dim() == 1 and name.startswith("y"):
                t = t.unsqueeze(1)
            if t.dim() != 2:
                raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
            tensors.append(t)
        x_train, y_train, x_valid, y_valid = tensors
        if (x_valid is None) != (y_valid is None):
            raise ValueError("give both x_valid and y_valid, or neither")
        if len(x_train) != len(y_train) or (x_valid is not None and len(x_valid) != len(y_valid)):
            raise ValueError("x and y of the training or validation set differ in length")
        spec = self.model
        for name, t, width in (
            ("x_train", x_train, spec.input_dim),
            ("x_valid", x_valid, spec.input_dim),
            ("y_train", y_train, spec.num_classes),
            ("y_valid", y_valid, spec.num_classes),
        ):
            if t is not None and t.shape[1] != width:
                raise ValueError(
                    f"{name} has {t.shape[1]} columns, the {spec.family} expects {width}"
                )
        self._seeds = np.random.SeedSequence(to_seed(self.random_state))
        if self.init is None:
            init_seed = int(self._seeds.spawn(1)[0].generate_state(1)[0])
            init = init_parameters(spec, random_state=init_seed, dtype=self.dtype)
        else:
            check_parameters(spec, self.init)
            init = [(w.detach(), b.detach()) for w, b in self.init]
        self._init = [(w.to(device, self.dtype), b.to(device, self.dtype)) for w, b in init]
        self._tensors = tensors
        self._device = device

    @property
    def n_train(self) -> int:
        return len(self.data[0])

    def _fits(
        self,
        subsets: Sequence[np.ndarray] | np.ndarray,
        sample_weights: Sequence[np.ndarray] | None,
    ):
        """Yield ``(positions, FittedBatch)`` chunk by chunk, chunks of similar sizes."""
        self._prepare()
        x_train, y_train, *_ = self._tensors
        indices = _subset_indices(subsets, len(x_train))
        empty = [k for k, s in enumerate(indices) if len(s) == 0]
        if empty:
            # OpenDataVal's torch fit raises on an empty Subset (the DataLoader's sampler
            # refuses num_samples=0); its evaluators skip such subsets before fitting
            raise ValueError(
                f"subsets {empty[:5]} are empty: OpenDataVal cannot fit its torch models on "
                "an empty training set (its evaluators skip empty subsets)"
            )
        if sample_weights is not None:
            if len(sample_weights) != len(indices):
                raise ValueError(f"{len(sample_weights)} weight arrays for {len(indices)} fits")
            for k, (w, s) in enumerate(zip(sample_weights, indices, strict=True)):
                if np.size(w) != len(s):
                    raise ValueError(f"fit {k}: {np.size(w)} weights for {len(s)} points")
        by_size = np.argsort([-len(s) for s in indices], kind="stable")
        chunks = [by_size[i : i + self.max_models] for i in range(0, len(indices), self.max_models)]
        seeds = self._seeds.spawn(len(chunks))
        with intra_op_threads(self.cpu_threads):
            for chunk, seed in zip(chunks, seeds, strict=True):
                generator = torch.Generator(device=self._device)
                generator.manual_seed(int(seed.generate_state(1)[0]))
                fitted = fit_models(
                    self.model,
                    x_train,
                    y_train,
                    [indices[k] for k in chunk],
                    init=self._init,
                    epochs=self.epochs,
                    batch_size=self.batch_size,
                    lr=self.lr,
                    sample_weights=(
                        None if sample_weights is None else [sample_weights[k] for k in chunk]
                    ),
                    generator=generator,
                )
                self.n_fits += len(chunk)
                yield chunk, fitted

    # -- the public calls ---------------------------------------------------------------

    def __call__(self, subsets: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """The utility of each subset (index arrays, or a (K, n) 0/1 mask): (K,) floats."""
        return self.utilities(subsets)

    def utilities(
        self,
        subsets: Sequence[np.ndarray] | np.ndarray,
        *,
        sample_weights: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """The validation metric of a model fitted on each subset, optionally with a weight
        per subset entry (``sample_weights[k]`` aligned with ``subsets[k]``)."""
        self._prepare()
        *_, x_valid, y_valid = self._tensors
        if x_valid is None:
            raise ValueError("utilities need a validation set: x_valid/y_valid were None")
        values = np.zeros(len(subsets))
        for chunk, fitted in self._fits(subsets, sample_weights):
            values[chunk] = stacked_metric(self.metric, y_valid, fitted.predict(x_valid))
        return values

    def weighted_utilities(self, sample_weights: np.ndarray) -> np.ndarray:
        """The utility of fits on the whole training set, fit k weighting point i by
        ``sample_weights[k, i]`` (OpenDataVal's ``fit(..., sample_weight=w)``)."""
        weights = np.asarray(sample_weights, dtype=float)
        if weights.ndim != 2 or weights.shape[1] != self.n_train:
            raise ValueError(f"sample_weights must be (K, {self.n_train}), got {weights.shape}")
        everything = [np.arange(self.n_train)] * len(weights)
        return self.utilities(everything, sample_weights=list(weights))

    def predictions(
        self,
        subsets: Sequence[np.ndarray] | np.ndarray,
        x: np.ndarray | torch.Tensor,
        *,
        sample_weights: Sequence[np.ndarray] | None = None,
    ) -> torch.Tensor:
        """Each subset's fitted model's outputs on the points ``x`` (m, input_dim): a CPU
        tensor (K, m, num_classes) of ``dtype`` (probabilities for the classifiers)."""
        self._prepare()
        x_t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        x_t = x_t.to(device=self._device, dtype=self.dtype)
        out = torch.empty((len(subsets), len(x_t), self.model.num_classes), dtype=self.dtype)
        for chunk, fitted in self._fits(subsets, sample_weights):
            out[torch.from_numpy(chunk)] = fitted.predict(x_t).cpu()
        return out
