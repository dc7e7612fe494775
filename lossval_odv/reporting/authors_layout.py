"""The LossVal authors' published result layout (twibiral/LossVal, ``results/``).

Detection F1 of every run, one long-format CSV per (kind, task, dataset, noise type)::

    <root>/<baselines|lossval>/<classification|regression>/<dataset>/<file>

with ``<file>`` one of ``DETECTION_FILES`` and columns ``AUTHORS_COLUMNS``: one row per
(run, method); ``method`` is the evaluator's class name with its budget, e.g.
``DataOob(num_models=1000)``; ``model`` names the prediction model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lossval_odv.bench.config import BenchmarkConfig
from lossval_odv.bench.models import baseline_training
from lossval_odv.reporting.export import write_csv

# our noise type -> the authors' file
DETECTION_FILES = {
    "label": "noisy_label_detection_f1_scores.csv",
    "feature": "noisy_feature_detection_f1_scores.csv",
    "mixed": "mixed_noise_detection_f1_scores.csv",
}
AUTHORS_COLUMNS = ["kmeans_f1", "method", "dataset", "noise_rate", "model"]
KINDS = ("baselines", "lossval")  # the authors keep their own method's results apart
LOSSVAL_KIND, LOSSVAL_EVALUATOR = "lossval", "lossvalodv"
# our evaluators with no OpenDataVal ancestor, and the authors' name for their method
OWN_COUNTERPARTS = {"LossValODV": "LossVal"}
TASKS = ("classification", "regression")


def detection_file(root: Path, kind: str, task: str, dataset: str, noise: str) -> Path:
    """Where the authors' layout keeps one (kind, task, dataset, noise type)'s F1 scores."""
    return root / kind / task / dataset / DETECTION_FILES[noise]


def reference_class(evaluator: str) -> str:
    """The class the authors would name for our registry key ``evaluator``: the nearest
    registered OpenDataVal class in its ancestry (itself when it is OpenDataVal's)."""
    from opendataval.dataval import DataEvaluator

    registered = {cls: key for key, cls in DataEvaluator.Evaluators.items()}
    cls = DataEvaluator.Evaluators[evaluator]
    for ancestor in cls.__mro__:
        if ancestor in registered and ancestor.__module__.startswith("opendataval."):
            return ancestor.__name__
    return OWN_COUNTERPARTS.get(cls.__name__, cls.__name__)


def authors_method_name(evaluator: str, params: dict[str, Any], metric: str | None = None) -> str:
    """Our method as the authors name theirs: the OpenDataVal class it reproduces and its
    params, ``DataOob(num_models=50)``; a utility ``metric`` set in the config is added
    (two methods may differ by it alone)."""
    args = dict(sorted(params.items()))
    if metric is not None:
        args["metric"] = metric
    return f"{reference_class(evaluator)}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def model_description(task: str, training: dict[str, dict] | None = None) -> str:
    """The baselines' prediction model as the authors' ``model`` column writes it, e.g.
    ``classifiermlp (epochs=5, batch_size=128, lr=0.1)``, with a method's ``train``
    changes applied."""
    kind = "classifiermlp" if task == "classification" else "regressionmlp"
    fit = ", ".join(f"{k}={v}" for k, v in baseline_training(task, training).items())
    return f"{kind} ({fit})"


def export_authors_layout(frame: pd.DataFrame, config: BenchmarkConfig, root: Path) -> list[Path]:
    """Write the ``ok`` detection F1 of ``frame`` under ``root`` in the authors' layout.

    Parameters
    ----------
    frame : DataFrame
        ``ok`` rows with display labels as methods (``MethodConfig.display``, as in the
        report): ``task, dataset, noise, rate, run, method, f1``.
    config : BenchmarkConfig
        The methods' evaluators, params and metrics (their names in the files).
    root : Path
        The layout's root (the authors' ``results/``).

    Returns
    -------
    list of Path
        The files written. LossVal's rows go under ``lossval/``, the others' under
        ``baselines/``, one row per run, ordered by method, noise rate and run.
    """
    methods = {m.display: m for m in config.methods}
    cells = frame[frame["method"].isin(methods) & frame["f1"].notna()].copy()
    cells["kind"] = [
        LOSSVAL_KIND if methods[m].evaluator == LOSSVAL_EVALUATOR else "baselines"
        for m in cells["method"]
    ]
    cells["order"] = [list(methods).index(m) for m in cells["method"]]
    written = []
    groups = cells.groupby(["kind", "task", "dataset", "noise"], sort=True)
    for (kind, task, dataset, noise), rows in groups:
        rows = rows.sort_values(["order", "rate", "run"])
        out = pd.DataFrame(
            {
                "kmeans_f1": rows["f1"].to_numpy(),
                "method": [
                    authors_method_name(methods[m].evaluator, methods[m].params, methods[m].metric)
                    for m in rows["method"]
                ],
                "dataset": dataset,
                "noise_rate": rows["rate"].to_numpy(),
                "model": [model_description(task, methods[m].training) for m in rows["method"]],
            },
            columns=AUTHORS_COLUMNS,
        )
        path = detection_file(root, kind, task, dataset, noise)
        written.append(write_csv(path, out))
    return written
