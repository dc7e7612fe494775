"""Where each method wins: best methods per task and noise type, per dataset, per method.

Every function takes the ``ok`` rows of the store's frame with display method names and
the method order (ties go to the method first in that order). Nothing is hard-coded: the
winners, gaps and summary lines are computed from the frame.

A winner's lead over the runner-up is called *clear* when the mean of the paired per-cell
differences (same dataset, noise rate and run) exceeds ``CLEAR_SEMS`` times their SEM.
Cells of one dataset share data, so this is a rough guide, not a formal test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lossval_odv.reporting import export

METRIC_LABELS = {"f1": "F1", "auroc": "AUROC", "auprc": "AUPRC"}
CLEAR_SEMS = 2.0
PAIR_KEYS = ["dataset", "rate", "run"]


@dataclass(frozen=True)
class Win:
    """The best method of one (task, noise type, metric) and its lead over the runner-up.

    ``gap`` and ``gap_sem`` are the mean and SEM of the paired per-cell differences
    best − runner-up over the ``n_pairs`` cells both have; NaN without a runner-up.
    """

    task: str
    noise: str
    metric: str
    best: str
    best_mean: float
    best_sem: float
    runner_up: str | None
    runner_up_mean: float
    gap: float
    gap_sem: float
    n_pairs: int

    @property
    def setting(self) -> str:
        """``"<task> / <noise>"``, the column name of the detection tables."""
        return f"{self.task} / {self.noise}"

    @property
    def clear(self) -> bool:
        """Whether the gap exceeds ``CLEAR_SEMS`` paired SEMs (False if it cannot be told)."""
        return bool(np.isfinite(self.gap_sem) and self.gap > CLEAR_SEMS * self.gap_sem)


def ranking(cells: pd.DataFrame, metric: str, methods: Sequence[str]) -> pd.Series:
    """Mean ``metric`` per method, best first; ties keep the order of ``methods``.

    Parameters
    ----------
    cells : DataFrame
        ``ok`` rows of one setting, with ``method`` and ``metric`` columns.
    metric : str
        The column ranked (higher is better).
    methods : sequence of str
        Method order; methods without a non-missing value are left out.

    Returns
    -------
    Series
        Method -> mean, sorted descending.
    """
    means = cells.groupby("method")[metric].mean()
    means = means.reindex([m for m in methods if m in means.index]).dropna()
    return means.sort_values(ascending=False, kind="stable")


def paired_gap(
    cells: pd.DataFrame, metric: str, first: str, second: str
) -> tuple[float, float, int]:
    """Mean, SEM and count of the per-cell differences ``first − second``.

    Cells are paired on dataset, noise rate and run; cells only one method has are left out.
    """
    wide = cells.pivot_table(index=PAIR_KEYS, columns="method", values=metric, aggfunc="mean")
    return export.mean_sem(wide[first] - wide[second])


def find_win(
    cells: pd.DataFrame, task: str, noise: str, metric: str, methods: Sequence[str]
) -> Win | None:
    """The :class:`Win` of one setting and metric, or None when no method has a value."""
    ranked = ranking(cells, metric, methods)
    if ranked.empty:
        return None
    best = str(ranked.index[0])
    _, best_sem, _ = export.mean_sem(cells.loc[cells["method"] == best, metric])
    runner_up, runner_mean = None, np.nan
    gap, gap_sem, n_pairs = np.nan, np.nan, 0
    if len(ranked) > 1:
        runner_up, runner_mean = str(ranked.index[1]), float(ranked.iloc[1])
        gap, gap_sem, n_pairs = paired_gap(cells, metric, best, runner_up)
    return Win(
        task=task,
        noise=noise,
        metric=metric,
        best=best,
        best_mean=float(ranked.iloc[0]),
        best_sem=best_sem,
        runner_up=runner_up,
        runner_up_mean=runner_mean,
        gap=gap,
        gap_sem=gap_sem,
        n_pairs=n_pairs,
    )


def overall_wins(frame: pd.DataFrame, methods: Sequence[str]) -> list[Win]:
    """Best method per task x noise type x metric, over all datasets, noise rates and runs."""
    wins = []
    for (task, noise), cells in frame.groupby(["task", "noise"], sort=True):
        for metric in METRIC_LABELS:
            win = find_win(cells, str(task), str(noise), metric, methods)
            if win is not None:
                wins.append(win)
    return wins


def dataset_winners(frame: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Best method by mean over noise rates and runs, per task, dataset, noise type and metric.

    Returns
    -------
    DataFrame
        Columns ``task``, ``dataset``, ``noise``, ``metric``, ``best``, ``mean``.
    """
    records = []
    for (task, dataset, noise), cells in frame.groupby(["task", "dataset", "noise"], sort=True):
        for metric in METRIC_LABELS:
            ranked = ranking(cells, metric, methods)
            if not ranked.empty:
                records.append(
                    {
                        "task": task,
                        "dataset": dataset,
                        "noise": noise,
                        "metric": metric,
                        "best": ranked.index[0],
                        "mean": float(ranked.iloc[0]),
                    }
                )
    return pd.DataFrame(records, columns=["task", "dataset", "noise", "metric", "best", "mean"])


def win_counts(winners: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Datasets each method is best on, per metric and ``"<task> / <noise>"`` setting.

    Returns
    -------
    DataFrame
        Index (method, metric) over ``methods`` x metrics, one integer column per setting
        (sorted) and ``total``.
    """
    long = winners.assign(setting=winners["task"] + " / " + winners["noise"])
    counts = long.groupby(["best", "metric", "setting"]).size().unstack("setting", fill_value=0)
    index = pd.MultiIndex.from_product([methods, list(METRIC_LABELS)], names=["method", "metric"])
    counts = counts.reindex(index=index, columns=sorted(long["setting"].unique()), fill_value=0)
    counts = counts.astype(int)
    counts.columns.name = None
    counts["total"] = counts.sum(axis=1)
    return counts


@dataclass(frozen=True)
class WinTables:
    """Everything the section is made of.

    ``overall``: :func:`overall_wins`; ``by_dataset``: :func:`dataset_winners`;
    ``counts``: :func:`win_counts`; ``datasets``: number of datasets per setting.
    """

    overall: list[Win]
    by_dataset: pd.DataFrame
    counts: pd.DataFrame
    datasets: dict[str, int]


def compute_wins(frame: pd.DataFrame, methods: Sequence[str]) -> WinTables:
    """The :class:`WinTables` of ``frame``'s ``ok`` rows, for the methods present."""
    present = [m for m in methods if m in set(frame["method"])]
    winners = dataset_winners(frame, present)
    settings = frame["task"] + " / " + frame["noise"]
    datasets = frame.assign(setting=settings).groupby("setting")["dataset"].nunique()
    return WinTables(
        overall=overall_wins(frame, present),
        by_dataset=winners,
        counts=win_counts(winners, present),
        datasets={str(s): int(n) for s, n in datasets.items()},
    )


def wins_frame(wins: Sequence[Win]) -> pd.DataFrame:
    """The wins as a flat table (one row per task, noise type and metric) for CSV export."""
    rows = [
        {
            "task": w.task,
            "noise": w.noise,
            "metric": w.metric,
            "best": w.best,
            "best_mean": w.best_mean,
            "best_sem": w.best_sem,
            "runner_up": w.runner_up,
            "runner_up_mean": w.runner_up_mean,
            "gap": w.gap,
            "gap_sem": w.gap_sem,
            "n_pairs": w.n_pairs,
            "clear": w.clear,
        }
        for w in wins
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- markdown


def _lead(win: Win) -> str:
    if win.runner_up is None:
        return "only method"
    if not np.isfinite(win.gap_sem):
        return f"+{win.gap:.3f} (SEM unknown)"
    verdict = "clear" if win.clear else f"within {CLEAR_SEMS:g} SEM"
    return f"+{win.gap:.3f} ± {win.gap_sem:.3f} ({verdict})"


def wins_markdown(wins: Sequence[Win]) -> str:
    """Markdown table: setting, metric, best (mean ± SEM), runner-up (mean), lead."""
    lines = [
        "| task / noise | metric | best (mean ± SEM) | runner-up (mean) | lead, paired |",
        "|---|---|---|---|---|",
    ]
    for w in wins:
        runner = f"{w.runner_up} ({w.runner_up_mean:.3f})" if w.runner_up else "–"
        lines.append(
            f"| {w.setting} | {METRIC_LABELS[w.metric]} | **{w.best}** "
            f"({w.best_mean:.3f} ± {w.best_sem:.3f}) | {runner} | {_lead(w)} |"
        )
    return "\n".join(lines) + "\n"


def counts_markdown(tables: WinTables) -> str:
    """Markdown table of the per-dataset win counts: ``F1 / AUROC / AUPRC`` per setting."""
    counts, datasets = tables.counts, tables.datasets
    columns = [c for c in counts.columns if c != "total"]
    header = [f"{c} (of {datasets.get(c, 0)})" for c in columns]
    header.append(f"total (of {sum(datasets.get(c, 0) for c in columns)})")
    lines = ["| method | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for method in counts.index.get_level_values("method").unique():
        cells = [
            " / ".join(str(counts.at[(method, m), c]) for m in METRIC_LABELS)
            for c in [*columns, "total"]
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _overall_phrases(method: str, wins: Sequence[Win]) -> list[str]:
    phrases = []
    for setting in dict.fromkeys(w.setting for w in wins):
        own = [w for w in wins if w.setting == setting and w.best == method]
        if not own:
            continue
        metrics = ", ".join(METRIC_LABELS[w.metric] for w in own)
        unclear = [METRIC_LABELS[w.metric] for w in own if not w.clear]
        note = f" (lead within {CLEAR_SEMS:g} SEM by {', '.join(unclear)})" if unclear else ""
        phrases.append(f"{setting} by {metrics}{note}")
    return phrases


def _never_best_noises(method: str, tables: WinTables) -> list[str]:
    winners = tables.by_dataset
    noises = sorted({w.noise for w in tables.overall} | set(winners["noise"]))
    won = {w.noise for w in tables.overall if w.best == method}
    won |= set(winners.loc[winners["best"] == method, "noise"])
    return [n for n in noises if n not in won]


def _top_rank(frame: pd.DataFrame, method: str, methods: Sequence[str]) -> str:
    ranks = []
    for (task, noise), cells in frame.groupby(["task", "noise"], sort=True):
        ranked = list(ranking(cells, "f1", methods).index)
        if method in ranked:
            ranks.append((ranked.index(method) + 1, f"{task} / {noise}", len(ranked)))
    if not ranks:
        return "no F1 results"
    rank, setting, of = min(ranks)
    return f"highest mean-F1 rank {rank} of {of}, on {setting}"


def method_summary(
    method: str, frame: pd.DataFrame, tables: WinTables, methods: Sequence[str]
) -> str:
    """One markdown bullet on where ``method`` wins: overall, on how many datasets, never.

    Parameters
    ----------
    method : str
        The method summarised.
    frame : DataFrame
        ``ok`` rows.
    tables : WinTables
        :func:`compute_wins` of ``frame``.
    methods : sequence of str
        Method order.

    Returns
    -------
    str
        ``"- **<method>**: ..."``.
    """
    overall = _overall_phrases(method, tables.overall)
    if overall:
        parts = [f"best overall on {'; '.join(overall)}"]
    else:
        parts = [f"never best overall ({_top_rank(frame, method, methods)})"]
    totals = tables.counts.loc[method, "total"]
    settings = sum(tables.datasets.values())
    if totals.sum() > 0:
        counts = " / ".join(str(totals[m]) for m in METRIC_LABELS)
        labels = " / ".join(METRIC_LABELS.values())
        parts.append(f"best on {counts} of {settings} dataset × noise-type settings ({labels})")
    else:
        parts.append("best on no dataset")
    never = _never_best_noises(method, tables)
    if never and (overall or totals.sum() > 0):
        parts.append(f"never best on {' or '.join(never)} noise")
    return f"- **{method}**: " + "; ".join(parts) + "."


def section_markdown(frame: pd.DataFrame, methods: Sequence[str]) -> tuple[str, WinTables]:
    """The body of the report's "Where each method wins" section, and its tables.

    Parameters
    ----------
    frame : DataFrame
        ``ok`` rows with display method names.
    methods : sequence of str
        Method order (ties go to the earlier method).

    Returns
    -------
    tuple of (str, WinTables)
    """
    tables = compute_wins(frame, methods)
    present = [m for m in methods if m in set(frame["method"])]
    bullets = "\n".join(method_summary(m, frame, tables, present) for m in present)
    text = "\n".join(
        [
            "Best method by mean over all datasets, noise rates and runs of each task and "
            "noise type. *Lead, paired*: mean ± SEM of the per-cell difference best − "
            "runner-up over the cells both have (same dataset, rate and run); *clear* when "
            f"it exceeds {CLEAR_SEMS:g} SEM. Cells of one dataset share data, so this is a "
            "rough guide, not a formal test.\n",
            wins_markdown(tables.overall),
            "On how many datasets each method has the best mean (over noise rates and runs), "
            "per task and noise type, as F1 / AUROC / AUPRC counts (no significance test; "
            "ties go to the method listed first).\n",
            counts_markdown(tables),
            "Per method (overall wins are those of the first table; *never best on* a noise "
            "type: neither overall nor on any dataset, by any metric):\n",
            bullets + "\n",
        ]
    )
    return text, tables


def write_tables(tables: WinTables, tables_dir: Path) -> list[Path]:
    """Write ``wins_overall.csv``, ``wins_by_dataset.csv`` and ``wins_counts.csv``."""
    return [
        export.write_csv(tables_dir / "wins_overall.csv", wins_frame(tables.overall)),
        export.write_csv(tables_dir / "wins_by_dataset.csv", tables.by_dataset),
        export.write_csv(tables_dir / "wins_counts.csv", tables.counts, index=True),
    ]
