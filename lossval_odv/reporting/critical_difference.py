"""Critical-difference diagrams: Friedman test with the Nemenyi post-hoc test (Demšar 2006).

Methods are ranked within each block (rank 1 = best, ties share their mean rank); the
Friedman test asks whether the average ranks differ at all, and the Nemenyi test calls two
methods different when their average ranks differ by at least the critical difference

    CD = q_alpha * sqrt(k (k + 1) / (6 N)),   q_alpha = Q(1 - alpha; k, inf) / sqrt(2),

with k methods, N blocks and Q the studentized range distribution's quantile.

Two scores are compared, both higher-is-better, each block the mean over its runs (runs of
one setting share the dataset, so they are averaged rather than counted as independent
blocks); only blocks in which every method has a value count:

- detection F1 per task and noise type, blocks dataset x noise rate (a "setting"), as the
  authors' visualisations use them;
- the point-removal gap (``export.removal_scores``) per task and removal model, all noise
  types pooled as the report's removal claim check pools them, blocks dataset x noise type
  x noise rate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import friedmanchisquare, rankdata, studentized_range

from lossval_odv.reporting import export
from lossval_odv.reporting.plots import plt, save_figure

ALPHA = 0.05
BLOCK = ["dataset", "rate"]  # detection: one dataset at one noise rate, mean over runs
REMOVAL_BLOCK = ["dataset", "noise", "rate"]  # removal pools the noise types into its blocks
POOLED = "all"  # the ``noise`` of a comparison that pools the noise types
MIN_METHODS = 3  # the Friedman test compares at least three methods


@dataclass(frozen=True)
class CDResult:
    """One Friedman + Nemenyi comparison: methods by average rank (best first)."""

    methods: list[str]
    average_ranks: np.ndarray
    blocks: int
    statistic: float
    p_value: float
    critical_difference: float
    alpha: float = ALPHA

    def cliques(self) -> list[tuple[int, int]]:
        """Maximal runs ``(first, last)`` of rank-ordered methods whose average ranks lie
        within the critical difference of each other (the diagram's bars)."""
        ranks = self.average_ranks
        spans = []
        for first in range(len(ranks)):
            last = first
            while (
                last + 1 < len(ranks) and ranks[last + 1] - ranks[first] < self.critical_difference
            ):
                last += 1
            if last > first and not any(a <= first and last <= b for a, b in spans):
                spans.append((first, last))
        return spans


def nemenyi_critical_difference(*, methods: int, blocks: int, alpha: float = ALPHA) -> float:
    """The Nemenyi critical difference of average ranks for ``methods`` over ``blocks``."""
    q_alpha = studentized_range.ppf(1 - alpha, methods, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(methods * (methods + 1) / (6 * blocks)))


def friedman_nemenyi(scores: pd.DataFrame, *, alpha: float = ALPHA) -> CDResult:
    """Friedman test and Nemenyi critical difference of a blocks x methods score table
    (higher is better); rows with a missing score are dropped."""
    complete = scores.dropna()
    if complete.shape[1] < MIN_METHODS or len(complete) < 2:
        raise ValueError(
            f"need at least {MIN_METHODS} methods and 2 complete blocks, got "
            f"{complete.shape[1]} methods and {len(complete)} blocks"
        )
    values = complete.to_numpy(dtype=float)
    ranks = np.vstack([rankdata(-row) for row in values]).mean(axis=0)
    statistic, p_value = friedmanchisquare(*values.T)
    order = np.argsort(ranks, kind="stable")
    return CDResult(
        methods=[str(complete.columns[i]) for i in order],
        average_ranks=ranks[order],
        blocks=len(complete),
        statistic=float(statistic),
        p_value=float(p_value),
        critical_difference=nemenyi_critical_difference(
            methods=values.shape[1], blocks=len(complete), alpha=alpha
        ),
        alpha=alpha,
    )


def block_scores(
    cells: pd.DataFrame, value: str, methods: Sequence[str], *, blocks: Sequence[str] = BLOCK
) -> pd.DataFrame:
    """Blocks (the distinct values of the ``blocks`` columns) x methods: the mean of
    ``value`` over each block's runs."""
    table = cells.pivot_table(index=list(blocks), columns="method", values=value, aggfunc="mean")
    return table.reindex(columns=[m for m in methods if m in table.columns])


def plot_cd(result: CDResult, title: str, path: Path) -> Path:
    """The diagram: an axis of average ranks (1 = best, left), each method's rank, bars
    joining methods not significantly different, and the CD as a scale bar."""
    k = len(result.methods)
    half = (k + 1) // 2
    cliques = result.cliques()
    first_row = -0.5 - 0.25 * len(cliques)  # the labels start below the clique bars
    bottom = first_row - 0.5 * half
    figure, axis = plt.subplots(figsize=(8, 1.0 - 0.45 * bottom))
    axis.set_xlim(-2.2, k + 3.2)
    axis.set_ylim(bottom - 0.2, 1.6)
    axis.axis("off")
    axis.hlines(0, 1, k, color="black", linewidth=1)
    for tick in range(1, k + 1):
        axis.vlines(tick, 0, 0.15, color="black", linewidth=1)
        axis.text(tick, 0.25, str(tick), ha="center", va="bottom", fontsize=8)
    axis.hlines(1.2, 1, 1 + result.critical_difference, color="black", linewidth=2)
    axis.text(1, 1.3, f"CD = {result.critical_difference:.2f}", fontsize=8, va="bottom")
    for bar, (first, last) in enumerate(cliques):
        ranks = result.average_ranks
        y = -0.25 - 0.25 * bar
        axis.hlines(y, ranks[first] - 0.05, ranks[last] + 0.05, color="tab:red", linewidth=3)
    for index, (method, rank) in enumerate(zip(result.methods, result.average_ranks, strict=True)):
        left = index < half
        row = first_row - 0.5 * (index if left else k - 1 - index)
        end = 0.8 if left else k + 0.2
        axis.plot([rank, rank, end], [0, row, row], color="black", linewidth=0.8)
        axis.text(
            end - 0.1 if left else end + 0.1,
            row,
            f"{method} ({rank:.2f})",
            ha="right" if left else "left",
            va="center",
            fontsize=8,
        )
    axis.set_title(
        f"{title}: Friedman p = {result.p_value:.2g}, N = {result.blocks} blocks", fontsize=9
    )
    return save_figure(figure, path)


@dataclass(frozen=True)
class Comparison:
    """One diagram's input: a score's blocks x methods table for one group of cells."""

    score: str  # the CSV's ``score``: detection_f1 | removal_gap
    task: str
    noise: str  # the noise type, or ``POOLED``
    model: str  # the removal model; empty for detection
    title: str
    file_name: str
    scores: pd.DataFrame


def detection_comparisons(ok: pd.DataFrame, methods: Sequence[str]) -> Iterator[Comparison]:
    """Detection F1 per task and noise type, blocks ``BLOCK``."""
    for (task, noise), cells in ok.groupby(["task", "noise"], sort=True):
        yield Comparison(
            score="detection_f1",
            task=task,
            noise=noise,
            model="",
            title=f"Detection F1, {task} / {noise} noise",
            file_name=f"cd_f1_{task}_{noise}.png",
            scores=block_scores(cells, "f1", methods),
        )


def removal_comparisons(ok: pd.DataFrame, methods: Sequence[str]) -> Iterator[Comparison]:
    """The point-removal gap per task and removal model, noise types pooled (``REMOVAL_BLOCK``)."""
    gaps = export.removal_scores(ok).rename(columns={"noise_rate": "rate"})
    for (task, model), cells in gaps.groupby(["task", "model"], sort=True):
        yield Comparison(
            score="removal_gap",
            task=task,
            noise=POOLED,
            model=model,
            title=f"Point-removal gap, {task} / removal model {model}",
            file_name=f"cd_removal_{task}_{model}.png",
            scores=block_scores(cells, "gap", methods, blocks=REMOVAL_BLOCK),
        )


def cd_section(
    ok: pd.DataFrame, methods: Sequence[str], figures_dir: Path, tables_dir: Path, output_dir: Path
) -> str:
    """Friedman + Nemenyi for detection F1 and the point-removal gap (``Comparison``):
    diagrams under ``figures_dir``, ``critical_difference.csv`` under ``tables_dir``, and
    the markdown."""
    rows, parts, skipped = [], [], []
    removal = list(removal_comparisons(ok, methods))
    if not removal:
        skipped.append("point-removal gap: no point-removal results")
    for comparison in [*detection_comparisons(ok, methods), *removal]:
        try:
            result = friedman_nemenyi(comparison.scores)
        except ValueError as error:
            skipped.append(f"{comparison.title}: {error}")
            continue
        path = plot_cd(result, comparison.title, figures_dir / comparison.file_name)
        parts.append(f"![{comparison.title}]({path.relative_to(output_dir).as_posix()})\n")
        for method, rank in zip(result.methods, result.average_ranks, strict=True):
            rows.append(
                {
                    "score": comparison.score,
                    "task": comparison.task,
                    "noise": comparison.noise,
                    "model": comparison.model,
                    "method": method,
                    "average_rank": rank,
                    "blocks": result.blocks,
                    "friedman_chi2": result.statistic,
                    "friedman_p": result.p_value,
                    "critical_difference": result.critical_difference,
                }
            )
    if rows:
        export.write_csv(tables_dir / "critical_difference.csv", pd.DataFrame(rows))
    intro = (
        "Each diagram ranks the methods within blocks (mean over a block's runs; rank 1 is "
        f"best) and tests the ranks with the Friedman test and the Nemenyi post-hoc test at "
        f"alpha = {ALPHA:g}: methods joined by a red bar are not significantly different "
        "(their average ranks differ by less than CD). Only blocks where every method has a "
        "value count. *Detection F1* (`cd_f1_<task>_<noise>`): per task and noise type, "
        "blocks of one dataset at one noise rate. *Point-removal gap* "
        "(`cd_removal_<task>_<model>`): the test score after removing the "
        f"{export.REMOVAL_FRACTION:.0%} lowest-valued minus after removing the "
        f"{export.REMOVAL_FRACTION:.0%} highest-valued points (higher is better), per task "
        "and removal model with the noise types pooled, as in the removal claim check: "
        "blocks of one dataset, noise type and noise rate. Ranks and statistics: "
        "`tables/critical_difference.csv` (column `score`: detection_f1 or removal_gap; "
        f"`noise` is `{POOLED}` for pooled noise types).\n"
    )
    notes = [f"- not tested: {line}" for line in skipped]
    return "\n".join([intro, *parts, *notes, ""])
