"""One cell: fetch -> split -> noise -> data values -> experiments -> a result record.

Pure with respect to its input: the same :class:`~lossval_odv.bench.grid.Cell` gives the same
record on the same device type, whichever process or machine computes it.
"""

from __future__ import annotations

import platform
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LinearRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from lossval_odv import compat
from lossval_odv.bench.grid import Cell
from lossval_odv.bench.noise import NOISE_FUNCTIONS

from opendataval.dataloader import DataFetcher, Register
from opendataval.dataval import DataEvaluator
from opendataval.dataval.margcontrib.sampler import GrTMCSampler, MonteCarloSampler, TMCSampler
from opendataval.experiment.exper_methods import discover_corrupted_sample, noisy_detection
from opendataval.model import ClassifierMLP, LogisticRegression, RegressionMLP
from opendataval.model.api import RegressionSkLearnWrapper

# PROTOCOL.md: the baselines' prediction model and how it trains.
BASELINE_TRAIN_KWARGS = {
    "classification": {"epochs": 5, "batch_size": 128, "lr": 0.1},
    "regression": {"epochs": 5, "batch_size": 32, "lr": 0.01},
}


@dataclass
class CellResult:
    """What a cell produces; the store writes it as one row."""

    key: str
    cell: Cell
    status: str  # "ok" or "failed"
    task: str
    values: np.ndarray | None = None
    noisy_indices: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the valuation alone
    total_seconds: float = 0.0
    device: str = "cpu"
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def versions() -> dict[str, str]:
    """Library versions that can change a result."""
    import geomloss
    import sklearn

    import lossval_odv

    import opendataval

    return {
        "lossval_odv": lossval_odv.__version__,
        "opendataval": getattr(opendataval, "__version__", "1.3.0"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "geomloss": geomloss.__version__,
        "python": platform.python_version(),
    }


def task_of(dataset: str) -> str:
    return "classification" if Register.Datasets[dataset].one_hot else "regression"


@lru_cache(maxsize=4)
def _fetch_cached(dataset: str, split: tuple[int, int, int], seed: int, noise: str, rate: float):
    train, valid, test = split
    return DataFetcher.setup(
        dataset_name=dataset,
        train_count=train,
        valid_count=valid,
        test_count=test,
        random_state=np.random.RandomState(seed),
        add_noise=NOISE_FUNCTIONS[noise],
        noise_kwargs={"noise_rate": rate},
    )


def make_fetcher(cell: Cell) -> DataFetcher:
    """The cell's split with its noise; shared by all methods of a run in one process."""
    if cell.data_dir is not None:
        from lossval_odv.datasets import set_data_dir

        set_data_dir(cell.data_dir)
    return _fetch_cached(cell.dataset, cell.split, cell.data_seed, cell.noise, cell.rate)


def prediction_model(task: str, n_features: int, n_classes: int, device: torch.device):
    """PROTOCOL.md's MLPs, as OpenDataVal models, for the baselines that need one."""
    if task == "classification":
        return ClassifierMLP(n_features, n_classes, layers=5, hidden_dim=100).to(device)
    return RegressionMLP(n_features, 1, layers=3, hidden_dim=90, act_fn=torch.nn.Tanh()).to(device)


def evaluation_model(kind: str, task: str, n_features: int, n_classes: int):
    """Removal-experiment model: the authors' (``paper``) or the baselines' MLP."""
    if kind == "mlp":
        return prediction_model(task, n_features, n_classes, torch.device("cpu")), (
            BASELINE_TRAIN_KWARGS[task]
        )
    if task == "classification":
        return LogisticRegression(n_features, n_classes), {}  # fit defaults: 1 epoch, lr 0.01
    return RegressionSkLearnWrapper(LinearRegression), {}


# OpenDataVal evaluators that take a torch.device and default to the CPU
TORCH_DEVICE_EVALUATORS = ("lavaevaluator", "dvrl")
SAMPLERS = {"grtmc": GrTMCSampler, "tmc": TMCSampler, "montecarlo": MonteCarloSampler}


def build_evaluator(cell: Cell, device: torch.device) -> DataEvaluator:
    """The cell's evaluator from the registry, seeded by the cell.

    A ``sampler`` parameter given as a mapping (``{kind: grtmc|tmc|montecarlo, ...}``)
    becomes that OpenDataVal sampler (for DataShapley / BetaShapley budgets).
    """
    cls = DataEvaluator.Evaluators[cell.evaluator]
    params = dict(cell.params)
    if isinstance(params.get("sampler"), dict):
        spec = dict(params["sampler"])
        kind = spec.pop("kind", "grtmc")
        if kind not in SAMPLERS:
            raise ValueError(f"unknown sampler kind {kind!r}; allowed: {', '.join(SAMPLERS)}")
        params["sampler"] = SAMPLERS[kind](
            random_state=np.random.RandomState(cell.method_seed), **spec
        )
    if cell.evaluator == "lossvalodv":
        params.setdefault("device", str(device))
    elif cell.evaluator in TORCH_DEVICE_EVALUATORS:
        params["device"] = torch.device(params.get("device", device))
    return cls(random_state=np.random.RandomState(cell.method_seed), **params)


def detection_metrics(values: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC of 'low value = noisy' against the planted noisy points."""
    truth = np.zeros(len(values), dtype=bool)
    truth[noisy] = True
    score = -values  # lower value -> more likely noisy
    if not np.isfinite(score).all():
        score = np.nan_to_num(score, nan=0.0, posinf=1e300, neginf=-1e300)
    return {
        "auroc": float(roc_auc_score(truth, score)),
        "auprc": float(average_precision_score(truth, score)),
    }


def _as_float(value: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        return [_as_float(v) for v in value]
    return float(value)


@dataclass(frozen=True)
class Valuation:
    """Data values computed outside the cell, e.g. by the batched LossVal trainer, and
    the cell's data they were computed on (the experiments reuse it)."""

    values: np.ndarray
    seconds: float
    fetcher: DataFetcher


@dataclass(frozen=True)
class _ValuesOnly:
    """What OpenDataVal's experiment functions need of an evaluator: its values."""

    data_values: np.ndarray


def cell_device(cell: Cell) -> torch.device:
    """The device a cell computes on: its own, with "auto" meaning CUDA when present."""
    if cell.device != "auto":
        return torch.device(cell.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def compute_cell(cell: Cell, *, precomputed: Valuation | None = None) -> CellResult:
    """Compute one cell; a failing evaluator gives a ``failed`` result with its error.

    With ``precomputed`` values the valuation step is skipped and only the experiments
    run (the values must come from this cell's data and seed).
    """
    start = time.perf_counter()
    device = cell_device(cell)
    task = task_of(cell.dataset)
    result = CellResult(
        key=cell.key,
        cell=cell,
        status="failed",
        task=task,
        device=str(device),
        versions=versions(),
    )
    try:
        with compat.quiet_upstream():
            _value_and_evaluate(cell, device, result, precomputed)
        result.status = "ok"
    except Exception as exc:  # recorded, not fatal to the grid
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    result.total_seconds = time.perf_counter() - start
    if precomputed is not None:  # its share of the batched valuation ran before this call
        result.total_seconds += precomputed.seconds
    return result


def _value_and_evaluate(
    cell: Cell, device: torch.device, result: CellResult, precomputed: Valuation | None
) -> None:
    fetcher = make_fetcher(cell) if precomputed is None else precomputed.fetcher
    x_train, *_ = fetcher.datapoints
    task = result.task
    n_features = int(np.prod(fetcher.covar_dim))
    n_classes = int(fetcher.label_dim[0]) if task == "classification" else 1
    evaluator = build_evaluator(cell, device) if precomputed is None else None
    # Baselines and the experiments' models draw from torch's global generator. The
    # prediction model is drawn in both branches (LossVal's trainers leave the generator
    # untouched), so the experiments of precomputed values see the same generator state.
    torch.manual_seed(cell.method_seed)
    model = prediction_model(task, n_features, n_classes, device)
    if evaluator is not None:
        t0 = time.perf_counter()
        evaluator.train(fetcher, model, None, **BASELINE_TRAIN_KWARGS[task])
        values = np.asarray(evaluator.data_values, dtype=np.float64).reshape(-1)
        result.seconds = time.perf_counter() - t0
    else:
        values, result.seconds = precomputed.values, precomputed.seconds
        evaluator = _ValuesOnly(values)
    if len(values) != len(x_train):
        raise ValueError(
            f"{cell.evaluator} returned {len(values)} values for {len(x_train)} points"
        )
    result.values = values
    result.noisy_indices = np.asarray(fetcher.noisy_train_indices, dtype=np.int64)
    _run_experiments(cell, evaluator, fetcher, task, n_features, n_classes, result)


def _run_experiments(cell, evaluator, fetcher, task, n_features, n_classes, result) -> None:
    experiments = cell.experiments
    noisy = result.noisy_indices
    if experiments["detection"]:
        result.metrics["f1"] = float(noisy_detection(evaluator, fetcher)["kmeans_f1"])
        result.metrics.update(detection_metrics(result.values, noisy))
    if experiments["discovery"]:
        found = discover_corrupted_sample(evaluator, fetcher)
        result.curves["discovery"] = {
            "axis": _as_float(found["axis"]),
            "found": _as_float(found["corrupt_found"]),
        }
    if experiments["removal"]:
        for kind in experiments["removal_models"]:
            model, train_kwargs = evaluation_model(kind, task, n_features, n_classes)
            torch.manual_seed(cell.method_seed)
            curves = compat.remove_high_low(
                evaluator,
                fetcher,
                model=model,
                percentile=experiments["removal_percentile"],
                metric=_metric(task),
                train_kwargs=train_kwargs,
            )
            low = next(v for k, v in curves.items() if k.startswith("remove_least"))
            high = next(v for k, v in curves.items() if k.startswith("remove_most"))
            result.curves[f"removal_{kind}"] = {
                "axis": _as_float(curves["axis"]),
                "remove_low": _as_float(low),
                "remove_high": _as_float(high),
                "metric": "accuracy" if task == "classification" else "neg_mse",
            }


def _metric(task: str):
    from opendataval.metrics import Metrics

    return Metrics.ACCURACY if task == "classification" else Metrics.NEG_MSE


def failed_result(cell: Cell, reason: str) -> CellResult:
    """The record of a cell that could not be computed at all (e.g. its worker died)."""
    return CellResult(
        key=cell.key,
        cell=cell,
        status="failed",
        task=task_of(cell.dataset),
        error=reason,
        versions=versions(),
    )
