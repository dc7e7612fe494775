"""Degenerate baselines, diagnosed per cell and reported per method and dataset.

Two ways a method's detection F1 can say nothing about the method:

- its **values are (near-)constant**: all equal, or the 2-means split that the detection
  F1 uses separates only a handful of points (:data:`HANDFUL_SHARE` of them at most), which
  gives an F1 near 0 whatever the noise;
- the **prediction model it fits collapses** (retraining baselines only): trained on the
  split's noisy training set as the method trains it, it predicts one class, scores at the
  class prior, or outputs a constant (:mod:`lossval_odv.bench.model_checks`, whose stored
  checks are joined to the cells here).

The 2-means split is computed exactly (1-D k-means with k = 2 is the best cut of the sorted
values), so it does not depend on k-means' initialisation.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lossval_odv.bench.config import BenchmarkConfig
from lossval_odv.bench.model_checks import canonical_training
from lossval_odv.bench.models import baseline_training
from lossval_odv.datasets.register import task_of
from lossval_odv.evaluators.capabilities import capabilities_of
from lossval_odv.reporting.export import write_csv

HANDFUL_SHARE = 0.01  # a 2-means group of at most this share of the points is "a handful"
CONSTANT_RTOL = 1e-6  # values within this relative range of each other are constant


DIAGNOSIS_COLUMNS = [
    "task",
    "dataset",
    "noise",
    "rate",
    "run",
    "data_seed",
    "method",
    "f1",
    "values",
    "smaller_2means_group",
    "training",
    "model",
    "model_reason",
]


def smaller_group(values: np.ndarray) -> int:
    """Size of the smaller group of the exact 2-means split of ``values`` (0 when they
    are constant): the cut of the sorted values with the least within-group sum of
    squares."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n < 2 or is_constant(x):
        return 0
    prefix, prefix_sq = np.cumsum(x), np.cumsum(x**2)
    left = np.arange(1, n)  # sizes of the lower group
    low_sum, low_sq = prefix[:-1], prefix_sq[:-1]
    high_sum, high_sq = prefix[-1] - low_sum, prefix_sq[-1] - low_sq
    within = (low_sq - low_sum**2 / left) + (high_sq - high_sum**2 / (n - left))
    cut = int(np.argmin(within)) + 1
    return min(cut, n - cut)


def is_constant(values: np.ndarray) -> bool:
    x = np.asarray(values, dtype=np.float64)
    scale = max(float(np.abs(x).max()), np.finfo(np.float64).tiny)
    return float(x.max() - x.min()) <= CONSTANT_RTOL * scale


def values_diagnosis(values: np.ndarray) -> tuple[str, int]:
    """``("constant" | "near-constant" | "", smaller 2-means group)`` of one cell's values."""
    group = smaller_group(values)
    if is_constant(values):
        return "constant", group
    if group <= HANDFUL_SHARE * len(values):
        return "near-constant", group
    return "", group


def cell_diagnoses(
    frame: pd.DataFrame, values: pd.Series, checks: pd.DataFrame, config: BenchmarkConfig
) -> pd.DataFrame:
    """One row per ``ok`` cell: its values' diagnosis and, for retraining baselines, the
    check of the prediction model it trained (``model``: collapsed / learns / not checked).

    ``frame`` has display labels as methods; ``values`` maps a cell key to its values;
    ``checks`` is the store's :meth:`~lossval_odv.bench.store.ResultStore.model_checks_frame`.
    """
    methods = {m.display: m for m in config.methods}
    by_setting = {
        (r.dataset, r.noise, round(r.rate, 6), r.run, r.data_seed, r.training): r.diagnosis
        for r in checks_of_split(checks, config).itertuples()
    }
    rows = []
    for row in frame.itertuples():
        stored = values[row.key]
        kind, group = ("not stored", 0) if stored is None else values_diagnosis(stored)
        method = methods[row.method]
        training, model, reason = "", "", ""
        if capabilities_of(method.evaluator).trains_prediction_model:
            training = canonical_training(baseline_training(task_of(row.dataset), method.training))
            key = (row.dataset, row.noise, round(row.rate, 6), row.run, row.data_seed, training)
            check = by_setting.get(key)
            if check is None:
                model = "not checked"
            else:
                model = "collapsed" if check["collapsed"] else "learns"
                reason = check["reason"]
        rows.append(
            {
                "task": row.task,
                "dataset": row.dataset,
                "noise": row.noise,
                "rate": row.rate,
                "run": row.run,
                "data_seed": row.data_seed,
                "method": row.method,
                "f1": row.f1,
                "values": kind or "informative",
                "smaller_2means_group": group,
                "training": training,
                "model": model,
                "model_reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=DIAGNOSIS_COLUMNS)


def checks_of_split(checks: pd.DataFrame, config: BenchmarkConfig) -> pd.DataFrame:
    """The stored checks made on the config's split sizes."""
    split = "/".join(str(n) for n in (config.split.train, config.split.valid, config.split.test))
    return checks[checks["split"] == split]


def _count(flags: pd.Series) -> str:
    return f"{int(flags.sum())}/{len(flags)}"


def method_dataset_table(cells: pd.DataFrame, methods: Sequence[str], flag: pd.Series) -> str:
    """Markdown: methods x datasets, ``k/n`` cells flagged; only methods with a flag."""
    flagged = cells.assign(flag=flag)
    datasets = sorted(cells["dataset"].unique(), key=lambda d: (task_of(d), d))
    lines = [
        "| method | " + " | ".join(datasets) + " |",
        "|---|" + "---:|" * len(datasets),
    ]
    for method in methods:
        mine = flagged[flagged["method"] == method]
        if mine.empty or not mine["flag"].any():
            continue
        entries = []
        for dataset in datasets:
            part = mine[mine["dataset"] == dataset]["flag"]
            entries.append(_count(part) if len(part) else "–")
        lines.append(f"| {method} | " + " | ".join(entries) + " |")
    return "\n".join(lines) + "\n"


def model_table(checks: pd.DataFrame, cells: pd.DataFrame) -> str:
    """Markdown: per dataset and training of the retraining baselines' prediction model
    (those of ``cells``, :func:`cell_diagnoses`' rows), how many of the checked splits
    collapsed, mean validation / test score against the
    baseline score (class prior or R² 0), and a typical reason."""
    lines = [
        "| dataset | model training | splits collapsed | score | valid | test "
        "| prior / mean | typical reason |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    settings = ["dataset", "noise", "rate", "run", "data_seed", "training"]
    used = checks.merge(cells[settings].drop_duplicates(), on=settings)
    for (dataset, training), part in used.groupby(["dataset", "training"], sort=True):
        diagnoses = list(part["diagnosis"])
        collapsed = [d for d in diagnoses if d["collapsed"]]
        metric = diagnoses[0]["metric"]
        reasons = Counter(_reason_kind(d["reason"]) for d in collapsed)
        reason = reasons.most_common(1)[0][0] if reasons else ""
        fit = ", ".join(f"{k} {v}" for k, v in sorted(json.loads(training).items()))
        lines.append(
            f"| {dataset} | {fit} | {len(collapsed)}/{len(diagnoses)} "
            f"| {metric} | {np.mean([d['valid_score'] for d in diagnoses]):.3f} "
            f"| {np.mean([d['test_score'] for d in diagnoses]):.3f} "
            f"| {np.mean([d['baseline_score'] for d in diagnoses]):.3f} | {reason} |"
        )
    return "\n".join(lines) + "\n"


def _reason_kind(reason: str) -> str:
    """A reason without its numbers (``predicts one class on 100.0% of ...`` -> ``predicts
    one class``), so that the reasons of several splits can be counted."""
    return reason.split(" on ")[0].split(" (")[0].split(":")[0]


def authors_metric_note(cells: pd.DataFrame, config: BenchmarkConfig) -> str:
    """What the utility metric ``accuracy`` does to regression baselines in this run, and
    why: the authors' regression baselines ran with it. Empty when no such cell."""
    methods = {m.display for m in config.methods if m.metric == "accuracy"}
    mine = cells[cells["method"].isin(methods) & (cells["task"] == "regression")]
    if mine.empty:
        return ""
    constant = mine["values"] == "constant"
    return (
        "**The utility metric `accuracy` on regression.** "
        f"{', '.join(sorted(methods))}: values constant in {_count(constant)} regression "
        f"cells, mean detection F1 {mine['f1'].mean():.3f}. Verified here (these cells, and "
        "`tests/test_repro_metric.py`): OpenDataVal's `accuracy` compares the argmax over "
        "the columns of prediction and target, a regression output has one column, so "
        "every model scores 1.0, every marginal contribution is 0 and the values are "
        "constant; the 2-means split then separates next to nothing. Read in the authors' "
        "code (twibiral/LossVal at 59f4b18), not run: `run_baselines_regression.py` calls "
        "`run_baseline_experiments` of `run_baselines_classification.py`, which builds its "
        '`ExperimentMediator` with that module\'s `METRIC = "accuracy"`. That this is why '
        "their regression baselines score an F1 of about 0.002 is our conclusion from both, "
        "consistent with these cells, not a run of their code.\n"
    )


def degenerate_counts(cells: pd.DataFrame) -> pd.DataFrame:
    """Per task, dataset, noise type and method: ``k/n`` cells with constant or
    near-constant values (``degenerate``), from :func:`cell_diagnoses`' rows."""
    flagged = cells.assign(flag=cells["values"].isin(["constant", "near-constant"]))
    counts = flagged.groupby(["task", "dataset", "noise", "method"])["flag"].agg(_count)
    return counts.rename("degenerate").reset_index()


def degeneracy_section(
    cells: pd.DataFrame,
    checks: pd.DataFrame,
    config: BenchmarkConfig,
    methods: Sequence[str],
    tables_dir: Path,
) -> str:
    """The report's section for :func:`cell_diagnoses`' rows, with
    ``tables/degeneracy_cells.csv`` (one row per cell)."""
    write_csv(tables_dir / "degeneracy_cells.csv", cells)
    degenerate = cells["values"].isin(["constant", "near-constant"])
    parts = [
        "Per cell (`tables/degeneracy_cells.csv`): whether the values are *constant* or "
        "*near-constant* (the exact 2-means split on the values, as the detection F1 uses "
        f"it, separates at most {HANDFUL_SHARE:.0%} of the points), and for the retraining "
        "baselines whether the prediction model they fit collapses: trained once on the "
        "split's noisy training set as the method trains it, it predicts one class on "
        "99% or more of the test points, scores at most 0.01 above the class prior, or "
        "outputs a near-constant (prediction spread under 5% of the target's) or no "
        "better than the mean (test R² <= 0).\n",
    ]
    if degenerate.any():
        share = cells.loc[degenerate, "f1"].mean()
        parts += [
            f"**Constant or near-constant values** in {_count(degenerate)} cells (mean "
            f"detection F1 of those cells {share:.3f}), cells per method and dataset:\n",
            method_dataset_table(cells, methods, degenerate),
        ]
    elif (cells["values"] == "not stored").all():
        parts.append("The store holds no values of these cells: their values are not diagnosed.\n")
    else:
        parts.append("No method's values are constant or near-constant in any cell.\n")
    note = authors_metric_note(cells, config)
    if note:
        parts.append(note)
    retraining = cells[cells["model"] != ""]
    if retraining.empty:
        parts.append("No method of this config fits the baselines' prediction model.\n")
        return "\n".join(parts)
    collapsed = retraining["model"] == "collapsed"
    unchecked = retraining["model"] == "not checked"
    parts.append(
        f"**The baselines' prediction model** collapsed in the splits of "
        f"{_count(collapsed)} retraining-baseline cells"
        + (
            f" ({int(unchecked.sum())} not checked yet: `lossval-odv run` adds the checks)"
            if unchecked.any()
            else ""
        )
        + ("; cells per method and dataset:\n" if collapsed.any() else ".\n")
    )
    if collapsed.any():
        parts.append(method_dataset_table(retraining, methods, collapsed))
    parts += [
        "The checks, per dataset and training (scores: accuracy or R²; mean over the "
        "checked splits of this config):\n",
        model_table(checks_of_split(checks, config), retraining),
    ]
    return "\n".join(parts)
