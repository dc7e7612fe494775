"""Figures of a results store, as PNG files (matplotlib's Agg backend, no display needed).

Every function takes the ``ok`` rows of the store's frame, with display method names,
and a fixed method -> colour map so that a method has the same colour in every figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lossval_odv.atomic_files import write_atomic  # noqa: E402
from lossval_odv.reporting.export import (  # noqa: E402
    discovery_long,
    mean_sem,
    removal_long,
)

METRIC_LABELS = {"accuracy": "test accuracy", "neg_mse": "test negative MSE"}
LEGEND_WIDTH = 1.8  # inches added to multi-panel figures for the legend on their right
OUTLIER_FENCE = 3.0  # y axes of removal curves are cut at the quartiles ± 3 IQR


def method_colors(methods: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A fixed colour per method, in method order (tab10, then tab20 for more methods)."""
    palette = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {method: palette(i % palette.N) for i, method in enumerate(methods)}


def save_figure(figure: Figure, path: Path) -> Path:
    """Save ``figure`` as PNG to ``path`` atomically and close it."""
    try:
        return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(figure)


def _sem(values: pd.Series) -> float:
    return mean_sem(values)[1]


def _panels(count: int, width: float = 4.8) -> tuple[Figure, np.ndarray]:
    figure, axes = plt.subplots(
        1,
        count,
        figsize=(width * count + LEGEND_WIDTH, 4.2),
        squeeze=False,
        constrained_layout=True,
    )
    return figure, axes[0]


def _legend(figure: Figure, axes: Sequence[plt.Axes]) -> None:
    """One legend of every method in ``axes``, right of the panels, so it hides no curve."""
    entries: dict[str, object] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    figure.legend(
        list(entries.values()),
        list(entries),
        title="method",
        fontsize="small",
        loc="outside right upper",
    )


def cut_outliers(axis: plt.Axes, values: np.ndarray, fence: float = OUTLIER_FENCE) -> bool:
    """Limit the y axis to the quartiles ± ``fence`` IQR of ``values`` if some lie beyond.

    A few blown-up means (e.g. a regression MSE after removing 95% of the training set)
    would otherwise squash every other curve into a flat line.

    Returns
    -------
    bool
        Whether the axis was cut (some values are off-scale).
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return False
    q1, q3 = np.percentile(finite, [25, 75])
    low, high = q1 - fence * (q3 - q1), q3 + fence * (q3 - q1)
    if finite.min() >= low and finite.max() <= high:
        return False
    low, high = max(finite.min(), low), min(finite.max(), high)
    pad = 0.05 * (high - low) if high > low else 0.05 * abs(high) + 1e-9
    axis.set_ylim(low - pad, high + pad)
    return True


def plot_f1_by_rate(
    frame: pd.DataFrame, task: str, colors: dict[str, tuple[float, ...]], path: Path
) -> Path:
    """Mean detection F1 (± SEM over datasets and runs) against noise rate, one panel per noise.

    Parameters
    ----------
    frame : DataFrame
        ``ok`` rows of one or more tasks.
    task : str
        The task plotted.
    colors : dict
        Method -> colour; also fixes the legend order.
    path : Path
        Output PNG.

    Returns
    -------
    Path
        ``path``.
    """
    cells = frame[frame["task"] == task]
    noises = sorted(cells["noise"].unique())
    figure, axes = _panels(len(noises))
    for axis, noise in zip(axes, noises, strict=True):
        subset = cells[cells["noise"] == noise]
        for method in [m for m in colors if m in set(subset["method"])]:
            stats = subset[subset["method"] == method].groupby("rate")["f1"].agg(["mean", _sem])
            axis.errorbar(
                stats.index,
                stats["mean"],
                yerr=stats["_sem"].fillna(0.0),  # one run: no SEM, a bar of length 0
                label=method,
                color=colors[method],
                marker="o",
                capsize=3,
            )
        axis.set(title=f"{noise} noise", xlabel="noise rate", ylabel="detection F1")
        axis.grid(alpha=0.3)
    _legend(figure, axes)
    figure.suptitle(f"Noisy-sample detection F1, {task} (mean ± SEM over datasets and runs)")
    return save_figure(figure, path)


def plot_removal(
    frame: pd.DataFrame,
    task: str,
    model: str,
    colors: dict[str, tuple[float, ...]],
    path: Path,
) -> Path:
    """Point-removal curves of one task and evaluation model, mean over datasets and runs.

    Left panel: removing the highest-valued points first (a good valuation drops fast);
    right panel: the lowest-valued first (a good valuation holds or rises).
    """
    curves = removal_long(frame[frame["task"] == task])
    curves = curves[curves["model"] == model]
    metric = METRIC_LABELS.get(curves["metric"].iloc[0], "test score") if len(curves) else ""
    figure, axes = _panels(2)
    for axis, column, title in zip(
        axes,
        ("remove_high", "remove_low"),
        ("highest-valued removed first", "lowest-valued removed first"),
        strict=True,
    ):
        means = curves.groupby(["method", "fraction_removed"])[column].mean()
        for method in [m for m in colors if m in set(curves["method"])]:
            mean = means.loc[method]
            axis.plot(mean.index, mean.to_numpy(), label=method, color=colors[method])
        cut = cut_outliers(axis, means.to_numpy(dtype=float))
        axis.set(
            title=title + ("\n(y axis cut: some means off-scale)" if cut else ""),
            xlabel="fraction of training points removed",
            ylabel=metric,
        )
        axis.grid(alpha=0.3)
    _legend(figure, axes)
    figure.suptitle(f"Point removal, {task} ({model} model; mean over datasets, noise, runs)")
    return save_figure(figure, path)


def plot_discovery(
    frame: pd.DataFrame, task: str, colors: dict[str, tuple[float, ...]], path: Path
) -> Path:
    """Share of noisy points found among the lowest-valued ones, one panel per noise type."""
    curves = discovery_long(frame[frame["task"] == task])
    noises = sorted(curves["noise"].unique())
    figure, axes = _panels(max(len(noises), 1))
    for axis, noise in zip(axes, noises, strict=False):
        subset = curves[curves["noise"] == noise]
        for method in [m for m in colors if m in set(subset["method"])]:
            mean = subset[subset["method"] == method].groupby("fraction_inspected")["found"].mean()
            axis.plot(mean.index, mean.to_numpy(), label=method, color=colors[method])
        axis.set(
            title=f"{noise} noise",
            xlabel="fraction of training points inspected (lowest value first)",
            ylabel="fraction of noisy points found",
        )
        axis.grid(alpha=0.3)
    _legend(figure, axes)
    figure.suptitle(f"Corruption discovery, {task} (mean over datasets, rates and runs)")
    return save_figure(figure, path)


def plot_runtime(frame: pd.DataFrame, colors: dict[str, tuple[float, ...]], path: Path) -> Path:
    """Mean valuation seconds per cell, per method and task (horizontal bars, log scale)."""
    tasks = sorted(frame["task"].unique())
    methods = [m for m in colors if m in set(frame["method"])]
    means = frame.groupby(["method", "task"])["seconds"].mean()
    figure, axis = plt.subplots(figsize=(7, 0.5 + 0.45 * len(methods) * len(tasks)))
    height = 0.8 / len(tasks)
    positions = np.arange(len(methods))
    for offset, (task, hatch) in enumerate(zip(tasks, ["", "//", "..", "xx"], strict=False)):
        seconds = [means.get((m, task), np.nan) for m in methods]
        axis.barh(
            positions + offset * height,
            np.clip(seconds, 1e-6, None),
            height=height,
            color=[colors[m] for m in methods],
            hatch=hatch,
            edgecolor="black",
            label=task,
        )
    axis.set_yticks(positions + height * (len(tasks) - 1) / 2, methods)
    axis.invert_yaxis()
    axis.set_xscale("log")
    axis.set(xlabel="valuation wall time per cell (s, log scale)", title="Runtime per method")
    axis.grid(axis="x", alpha=0.3, which="both")
    axis.legend(title="task (hatch)", fontsize="small")
    figure.tight_layout()
    return save_figure(figure, path)


def make_figures(frame: pd.DataFrame, methods: Sequence[str], figures_dir: Path) -> dict[str, Path]:
    """Every figure of the report; returns name -> PNG path.

    Parameters
    ----------
    frame : DataFrame
        ``ok`` rows with display method names and decoded curves.
    methods : sequence of str
        Method order; fixes the colours.
    figures_dir : Path
        Output directory.
    """
    colors = method_colors(methods)
    figures = {}
    for task in sorted(frame["task"].unique()):
        cells = frame[frame["task"] == task]
        name = f"f1_by_rate_{task}"
        figures[name] = plot_f1_by_rate(frame, task, colors, figures_dir / f"{name}.png")
        models = sorted(removal_long(cells)["model"].unique())
        for model in models:
            name = f"removal_{model}_{task}"
            figures[name] = plot_removal(frame, task, model, colors, figures_dir / f"{name}.png")
        if any("discovery" in curves for curves in cells["curves"]):
            name = f"discovery_{task}"
            figures[name] = plot_discovery(frame, task, colors, figures_dir / f"{name}.png")
    figures["runtime"] = plot_runtime(frame, colors, figures_dir / "runtime.png")
    return figures
