"""Critical-difference diagrams: Friedman test with the Nemenyi post-hoc test (Demšar 2006).

Methods are ranked within each block (rank 1 = best, ties share their mean rank); the
Friedman test asks whether the average ranks differ at all, and the Nemenyi test calls two
methods different when their average ranks differ by at least the critical difference

    CD = q_alpha * sqrt(k (k + 1) / (6 N)),   q_alpha = Q(1 - alpha; k, inf) / sqrt(2),

with k methods, N blocks and Q the studentized range distribution's quantile.

Blocks, as the authors' visualisations use them: dataset x noise rate (a "setting"), each
block the mean over its runs, per task and noise type. Runs of one setting share the
dataset, so they are averaged rather than counted as independent blocks. Only blocks in
which every method has a value count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import friedmanchisquare, rankdata, studentized_range

from lossval_odv.reporting.export import write_csv
from lossval_odv.reporting.plots import plt, save_figure

ALPHA = 0.05
BLOCK = ["dataset", "rate"]  # a block: one dataset at one noise rate, mean over runs
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


def block_scores(cells: pd.DataFrame, value: str, methods: Sequence[str]) -> pd.DataFrame:
    """Blocks (``BLOCK``) x methods: the mean of ``value`` over each block's runs."""
    table = cells.pivot_table(index=BLOCK, columns="method", values=value, aggfunc="mean")
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


def cd_section(
    ok: pd.DataFrame, methods: Sequence[str], figures_dir: Path, tables_dir: Path, output_dir: Path
) -> str:
    """Friedman + Nemenyi for detection F1 per task and noise type: diagrams under
    ``figures_dir``, ``critical_difference.csv`` under ``tables_dir``, and the markdown."""
    rows, parts, skipped = [], [], []
    for (task, noise), cells in ok.groupby(["task", "noise"], sort=True):
        name = f"{task} / {noise} noise"
        try:
            result = friedman_nemenyi(block_scores(cells, "f1", methods))
        except ValueError as error:
            skipped.append(f"{name}: {error}")
            continue
        path = plot_cd(result, f"Detection F1, {name}", figures_dir / f"cd_f1_{task}_{noise}.png")
        parts.append(f"![{name}]({path.relative_to(output_dir).as_posix()})\n")
        for method, rank in zip(result.methods, result.average_ranks, strict=True):
            rows.append(
                {
                    "task": task,
                    "noise": noise,
                    "method": method,
                    "average_rank": rank,
                    "blocks": result.blocks,
                    "friedman_chi2": result.statistic,
                    "friedman_p": result.p_value,
                    "critical_difference": result.critical_difference,
                }
            )
    if rows:
        write_csv(tables_dir / "critical_difference.csv", pd.DataFrame(rows))
    intro = (
        "Detection F1 ranked within blocks of one dataset at one noise rate (mean over the "
        "runs), per task and noise type; rank 1 is best. Friedman test over the blocks, "
        f"Nemenyi post-hoc test at alpha = {ALPHA:g}: methods joined by a red bar are not "
        "significantly different (their average ranks differ by less than CD). Only blocks "
        "where every method has a value count. Ranks and statistics: "
        "`tables/critical_difference.csv`.\n"
    )
    notes = [f"- not tested: {line}" for line in skipped]
    return "\n".join([intro, *parts, *notes, ""])
