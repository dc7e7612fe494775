"""What bench_baselines.py and compare_fast_baselines.py share: a real noisy split, the
paper's prediction models and train kwargs (PROTOCOL.md), the paper's budgets, and the
OpenDataVal / fast evaluator pairs."""

from __future__ import annotations  # noqa: I001  (lossval_odv before opendataval)

import numpy as np
import torch

import lossval_odv  # noqa: F401  (compatibility layer and dataset registry first)
from lossval_odv.evaluators import fast_baselines
from opendataval.dataloader import DataFetcher, mix_labels
from opendataval.dataval import AME, DataBanzhaf, DataOob, InfluenceSubsample, LeaveOneOut
from opendataval.metrics import Metrics
from opendataval.model import ClassifierMLP, RegressionMLP

# PROTOCOL.md: the baselines' prediction model trains with these.
PAPER_TRAIN = {
    "classification": {"epochs": 5, "batch_size": 128, "lr": 0.1},
    "regression": {"epochs": 5, "batch_size": 32, "lr": 0.01},
}
# PROTOCOL.md's budgets (constructor arguments); LOO has none (n + 1 fits).
PAPER_BUDGETS = {
    "DataOob": {"num_models": 1000},
    "DataBanzhaf": {"num_models": 1000},
    "AME": {"num_models": 1000},
    "InfluenceSubsample": {"num_models": 1000},
    "LeaveOneOut": {},
}
OPENDATAVAL = {
    "DataOob": DataOob,
    "DataBanzhaf": DataBanzhaf,
    "AME": AME,
    "InfluenceSubsample": InfluenceSubsample,
    "LeaveOneOut": LeaveOneOut,
}
FAST = fast_baselines.FAST_BASELINES
TASKS = {"pol": "classification", "kin8nm": "regression"}


def noisy_split(
    dataset: str, *, seed: int, rate: float = 0.2, train: int = 1000, valid: int = 100
) -> DataFetcher:
    """The benchmark's split (train / valid / 3000 test) with OpenDataVal's label noise."""
    return DataFetcher.setup(
        dataset_name=dataset,
        train_count=train,
        valid_count=valid,
        test_count=3000,
        random_state=np.random.RandomState(seed),
        add_noise=mix_labels,
        noise_kwargs={"noise_rate": rate},
    )


def prediction_model(task: str, fetcher: DataFetcher, *, seed: int = 0) -> torch.nn.Module:
    """PROTOCOL.md's MLPs as OpenDataVal models, initialised under ``seed``."""
    n_features = fetcher.datapoints[0].shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if task == "classification":
            return ClassifierMLP(n_features, fetcher.label_dim[0], layers=5, hidden_dim=100)
        return RegressionMLP(n_features, 1, layers=3, hidden_dim=90, act_fn=torch.nn.Tanh())


def metric(task: str) -> Metrics:
    return Metrics.ACCURACY if task == "classification" else Metrics.NEG_MSE


def scaled_budget(name: str, num_models: int | None) -> dict[str, int]:
    """The paper's budget, or ``num_models`` instead of it (LOO has no budget)."""
    if num_models is None or name == "LeaveOneOut":
        return dict(PAPER_BUDGETS[name])
    return {"num_models": num_models}


def fits_at(name: str, budget: dict[str, int], n_train: int) -> int:
    """Model fits an evaluator makes at a budget (before OpenDataVal's rare skips)."""
    if name == "LeaveOneOut":
        return n_train + 1
    return budget["num_models"] * (4 if name == "AME" else 1)
