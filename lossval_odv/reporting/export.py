"""Exports of a results store: paper-layout CSVs and mean ± SEM summary tables.

Every function takes the store's frame (``ResultStore.frame(with_curves=True)``) and
works on the ``ok`` rows only; failed cells are listed by the report. Files are written
atomically (temp file + ``os.replace``), so an interrupted export never leaves a
half-written file behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lossval_odv.atomic_files import write_atomic
from lossval_odv.bench.config import BenchmarkConfig

DETECTION_METRICS = ("f1", "auroc", "auprc")
REMOVAL_FRACTION = 0.2
SEM_NOTE = "SEM = sample std (ddof=1) / sqrt(n), n = number of cells (runs) aggregated"


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(path: Path, frame: pd.DataFrame, *, index: bool = False) -> Path:
    """Write ``frame`` as CSV to ``path`` atomically."""
    return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=index))


def ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells that finished with status ``ok``."""
    return frame[frame["status"] == "ok"].reset_index(drop=True)


def failed_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Failed cells with the first line of their error in column ``reason``."""
    failed = frame[frame["status"] != "ok"].copy()
    failed["reason"] = [_first_line(e) for e in failed["error"]]
    return failed.reset_index(drop=True)


def _first_line(error: object) -> str:
    text = error if isinstance(error, str) else ""
    return text.strip().splitlines()[0] if text.strip() else "(no error message)"


def with_display_names(frame: pd.DataFrame, config: BenchmarkConfig) -> pd.DataFrame:
    """Replace config method names by their display labels (``MethodConfig.display``)."""
    labels = {m.name: m.display for m in config.methods}
    out = frame.copy()
    out["method"] = [labels.get(name, name) for name in out["method"]]
    return out


def method_order(frame: pd.DataFrame, config: BenchmarkConfig) -> list[str]:
    """Display names in config order, then any other method of the frame alphabetically."""
    configured = [m.display for m in config.methods]
    present = set(frame["method"])
    extra = sorted(present - set(configured))
    return [m for m in configured if m in present] + extra


# --------------------------------------------------------------------------- paper layout


def removal_long(frame: pd.DataFrame) -> pd.DataFrame:
    """Point-removal curves in long format, one row per (cell, model, fraction removed)."""
    records = []
    for row in frame.itertuples():
        for name, curve in row.curves.items():
            if not name.startswith("removal_"):
                continue
            for fraction, low, high in zip(
                curve["axis"], curve["remove_low"], curve["remove_high"], strict=True
            ):
                records.append(
                    {
                        **_cell_id(row),
                        "model": name.removeprefix("removal_"),
                        "metric": curve.get("metric", ""),
                        "fraction_removed": float(fraction),
                        "remove_low": float(low),
                        "remove_high": float(high),
                    }
                )
    return pd.DataFrame(records, columns=[*_ID_COLUMNS, "model", "metric", *_REMOVAL_VALUES])


def discovery_long(frame: pd.DataFrame) -> pd.DataFrame:
    """Corruption-discovery curves in long format, one row per (cell, fraction inspected)."""
    records = []
    for row in frame.itertuples():
        curve = row.curves.get("discovery")
        if not curve:
            continue
        for fraction, found in zip(curve["axis"], curve["found"], strict=True):
            records.append(
                {**_cell_id(row), "fraction_inspected": float(fraction), "found": float(found)}
            )
    return pd.DataFrame(records, columns=[*_ID_COLUMNS, "fraction_inspected", "found"])


_ID_COLUMNS = ["task", "dataset", "noise", "method", "noise_rate", "run"]
_REMOVAL_VALUES = ["fraction_removed", "remove_low", "remove_high"]


def _cell_id(row) -> dict[str, object]:
    return {
        "task": row.task,
        "dataset": row.dataset,
        "noise": row.noise,
        "method": row.method,
        "noise_rate": float(row.rate),
        "run": int(row.run),
    }


def export_paper_layout(
    frame: pd.DataFrame, results_dir: Path, methods: Sequence[str]
) -> list[Path]:
    """Write the paper's per-dataset CSVs under ``results_dir/<task>/<dataset>/``.

    Per noise type ``<mode>``: ``<mode>_{f1,auroc,auprc}_scores.csv`` (rows = noise rate and
    run, one column per method), ``<mode>_remove_high_low_results.csv`` and
    ``<mode>_corruption_discovery_results.csv`` (long format).

    Parameters
    ----------
    frame : DataFrame
        ``ok`` rows with display method names and decoded curves.
    results_dir : Path
        Root of the layout.
    methods : sequence of str
        Column order of the score files.

    Returns
    -------
    list of Path
        The files written.
    """
    removal = removal_long(frame)
    discovery = discovery_long(frame)
    written = []
    for (task, dataset, mode), cells in frame.groupby(["task", "dataset", "noise"], sort=True):
        folder = results_dir / task / dataset
        for metric in DETECTION_METRICS:
            scores = _score_table(cells, metric, methods)
            written.append(write_csv(folder / f"{mode}_{metric}_scores.csv", scores))
        key = (
            (removal["task"] == task) & (removal["dataset"] == dataset) & (removal["noise"] == mode)
        )
        columns = ["method", "noise_rate", "run", "model", *_REMOVAL_VALUES]
        written.append(
            write_csv(folder / f"{mode}_remove_high_low_results.csv", removal.loc[key, columns])
        )
        key = (
            (discovery["task"] == task)
            & (discovery["dataset"] == dataset)
            & (discovery["noise"] == mode)
        )
        columns = ["method", "noise_rate", "run", "fraction_inspected", "found"]
        written.append(
            write_csv(
                folder / f"{mode}_corruption_discovery_results.csv", discovery.loc[key, columns]
            )
        )
    return written


def _score_table(cells: pd.DataFrame, metric: str, methods: Sequence[str]) -> pd.DataFrame:
    wide = cells.pivot_table(index=["rate", "run"], columns="method", values=metric, dropna=False)
    wide = wide.reindex(columns=[m for m in methods if m in wide.columns])
    wide.columns.name = None
    return wide.reset_index().rename(columns={"rate": "noise_rate"})


# --------------------------------------------------------------------------- summary tables


@dataclass(frozen=True)
class Summary:
    """A mean ± SEM table: rows (methods) x columns, with the cell counts behind it.

    ``higher_is_better`` gives, per column, which direction is best (for bolding).
    """

    name: str
    caption: str
    mean: pd.DataFrame
    sem: pd.DataFrame
    n: pd.DataFrame
    higher_is_better: dict[str, bool]

    def best(self) -> dict[str, str]:
        """The best row per column (ties: the first in row order); empty columns omitted."""
        winners = {}
        for column in self.mean.columns:
            values = self.mean[column].dropna()
            if values.empty:
                continue
            higher = self.higher_is_better.get(column, True)
            winners[column] = values.idxmax() if higher else values.idxmin()
        return winners

    def to_csv_frame(self) -> pd.DataFrame:
        """Wide CSV layout: ``<column> mean``, ``<column> sem``, ``<column> n`` per column."""
        parts = {}
        for column in self.mean.columns:
            parts[f"{column} mean"] = self.mean[column]
            parts[f"{column} sem"] = self.sem[column]
            parts[f"{column} n"] = self.n[column].astype("Int64")
        out = pd.DataFrame(parts, index=self.mean.index)
        out.index.name = "method"
        return out

    def to_markdown(self, digits: int = 3) -> str:
        """A markdown table of ``mean ± SEM`` cells, the best of each column in bold."""
        best = self.best()
        header = ["method", *map(str, self.mean.columns)]
        lines = [
            f"**{self.caption}**",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * len(self.mean.columns)) + "|",
        ]
        for method in self.mean.index:
            cells = [str(method)]
            for column in self.mean.columns:
                text = _format_cell(
                    self.mean.at[method, column], self.sem.at[method, column], digits
                )
                cells.append(f"**{text}**" if best.get(column) == method else text)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _format_cell(mean: float, sem: float, digits: int) -> str:
    if pd.isna(mean):
        return "–"
    if pd.isna(sem):
        return _format_number(mean, digits)
    return f"{_format_number(mean, digits)} ± {_format_number(sem, digits)}"


def _format_number(value: float, digits: int) -> str:
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 10**5 or magnitude < 10**-digits):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def mean_sem(values: pd.Series) -> tuple[float, float, int]:
    """Mean, SEM (sample std / sqrt(n); NaN when n < 2) and n of the non-missing values."""
    clean = values.dropna().to_numpy(dtype=float)
    n = len(clean)
    if n == 0:
        return np.nan, np.nan, 0
    sem = float(clean.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    return float(clean.mean()), sem, n


def summarise(
    frame: pd.DataFrame,
    value: str,
    column: str | Callable[[pd.DataFrame], pd.Series],
    *,
    name: str,
    caption: str,
    rows: Sequence[str],
    columns: Sequence[str] | None = None,
    higher_is_better: bool = True,
) -> Summary:
    """Mean ± SEM of ``frame[value]`` per method (rows) and ``column`` (a column or a labeller).

    Parameters
    ----------
    frame : DataFrame
        One row per observation (a cell), with a ``method`` column.
    value : str
        The column aggregated.
    column : str or callable
        The column whose values become table columns, or a function of the frame giving them.
    name, caption : str
        File stem and caption (the SEM definition is appended to the caption).
    rows : sequence of str
        Row (method) order; methods without data are dropped.
    columns : sequence of str, optional
        Column order (default: sorted).
    higher_is_better : bool
        Direction used to mark the best method of each column.

    Returns
    -------
    Summary
    """
    keys = frame[column] if isinstance(column, str) else column(frame)
    groups = frame.assign(_column=keys.astype(str)).groupby(["method", "_column"])[value]
    stats = groups.apply(mean_sem)
    order = list(columns) if columns is not None else sorted(set(keys.astype(str)))
    present = [m for m in rows if m in set(frame["method"])]
    tables = {}
    for position, label in enumerate(("mean", "sem", "n")):
        table = stats.map(lambda item, p=position: item[p]).unstack("_column")
        table = table.reindex(index=present, columns=order)
        table.columns.name = None
        tables[label] = table
    return Summary(
        name=name,
        caption=f"{caption}. Mean ± SEM; {SEM_NOTE}.",
        mean=tables["mean"],
        sem=tables["sem"],
        n=tables["n"].fillna(0),
        higher_is_better=dict.fromkeys(order, higher_is_better),
    )


def _task_noise(frame: pd.DataFrame) -> pd.Series:
    return frame["task"] + " / " + frame["noise"]


def detection_summaries(frame: pd.DataFrame, methods: Sequence[str]) -> list[Summary]:
    """F1, AUROC, AUPRC per method x (task, noise type), over datasets, rates and runs."""
    pairs = frame[["task", "noise"]].drop_duplicates().sort_values(["task", "noise"])
    columns = [f"{t} / {n}" for t, n in pairs.itertuples(index=False)]
    return [
        summarise(
            frame,
            metric,
            _task_noise,
            name=f"detection_{metric}",
            caption=f"Noisy-sample detection {metric.upper()} by task and noise type "
            "(all datasets, noise rates and runs)",
            rows=methods,
            columns=columns,
        )
        for metric in DETECTION_METRICS
    ]


def rate_summaries(frame: pd.DataFrame, methods: Sequence[str]) -> list[Summary]:
    """F1 per method x noise rate, one table per (task, noise type)."""
    tables = []
    for (task, noise), cells in frame.groupby(["task", "noise"], sort=True):
        rates = sorted(cells["rate"].unique())
        tables.append(
            summarise(
                cells.assign(rate_label=cells["rate"].map(_rate_label)),
                "f1",
                "rate_label",
                name=f"f1_by_rate_{task}_{noise}",
                caption=f"Detection F1 by noise rate, {task}, {noise} noise "
                "(all datasets and runs)",
                rows=methods,
                columns=[_rate_label(r) for r in rates],
            )
        )
    return tables


def _rate_label(rate: float) -> str:
    return f"{rate:g}"


def dataset_summaries(frame: pd.DataFrame, methods: Sequence[str]) -> list[Summary]:
    """F1 per method x dataset, one table per noise type."""
    tables = []
    for noise, cells in frame.groupby("noise", sort=True):
        order = cells[["task", "dataset"]].drop_duplicates().sort_values(["task", "dataset"])
        tables.append(
            summarise(
                cells,
                "f1",
                "dataset",
                name=f"f1_by_dataset_{noise}",
                caption=f"Detection F1 by dataset, {noise} noise (all noise rates and runs)",
                rows=methods,
                columns=list(order["dataset"]),
            )
        )
    return tables


def runtime_summary(frame: pd.DataFrame, methods: Sequence[str]) -> Summary:
    """Valuation wall time (seconds per cell) per method x task; lower is better."""
    return summarise(
        frame,
        "seconds",
        "task",
        name="runtime",
        caption="Valuation wall time in seconds per cell (excluding data loading and "
        "experiments), by task",
        rows=methods,
        higher_is_better=False,
    )


def removal_scores(frame: pd.DataFrame, fraction: float = REMOVAL_FRACTION) -> pd.DataFrame:
    """Per cell and removal model: area under the remove-high curve and the scores at ``fraction``.

    Columns: task, dataset, noise, method, noise_rate, run, model, metric, ``auc_high``
    (trapezoidal area under the remove-high curve over the fractions removed), ``high_at``
    and ``low_at`` (test score after removing the ``fraction`` highest / lowest-valued
    points; the nearest fraction on the curve's axis) and ``gap`` = ``low_at - high_at``.
    """
    curves = removal_long(frame)
    if curves.empty:
        return pd.DataFrame(
            columns=[*_ID_COLUMNS, "model", "metric", "auc_high", "high_at", "low_at", "gap"]
        )
    records = []
    for key, curve in curves.groupby([*_ID_COLUMNS, "model", "metric"], sort=False):
        curve = curve.sort_values("fraction_removed")
        axis = curve["fraction_removed"].to_numpy()
        at = int(np.argmin(np.abs(axis - fraction)))
        high = curve["remove_high"].to_numpy()
        low = curve["remove_low"].to_numpy()
        records.append(
            {
                **dict(zip([*_ID_COLUMNS, "model", "metric"], key, strict=True)),
                "auc_high": float(np.trapezoid(high, axis)),
                "high_at": float(high[at]),
                "low_at": float(low[at]),
                "gap": float(low[at] - high[at]),
            }
        )
    return pd.DataFrame(records)


def removal_summary(frame: pd.DataFrame, methods: Sequence[str]) -> list[Summary]:
    """Point-removal summaries per removal model: method x (task, quantity).

    Quantities: area under the remove-high curve (lower is better: removing the points a
    method values most should hurt most), the test score after removing the 20%
    highest-valued points (lower is better), after removing the 20% lowest-valued points
    (higher is better), and their gap (higher is better).
    """
    scores = removal_scores(frame)
    quantities = {
        "AUC remove-high": ("auc_high", False),
        f"score, {REMOVAL_FRACTION:.0%} highest removed": ("high_at", False),
        f"score, {REMOVAL_FRACTION:.0%} lowest removed": ("low_at", True),
        "gap (low − high)": ("gap", True),
    }
    tables = []
    for model, cells in scores.groupby("model", sort=True):
        long = pd.concat(
            [
                cells.assign(value=cells[column], quantity=quantity)
                for quantity, (column, _) in quantities.items()
            ]
        )
        long["column"] = long["task"] + ": " + long["quantity"]
        order = [
            f"{task}: {quantity}"
            for task in sorted(cells["task"].unique())
            for quantity in quantities
        ]
        table = summarise(
            long,
            "value",
            "column",
            name=f"removal_{model}",
            caption=f"Point removal ({model} evaluation model; test accuracy for "
            "classification, negative MSE for regression), all datasets, noise types, "
            "rates and runs",
            rows=methods,
            columns=order,
        )
        directions = {c: quantities[c.split(": ", 1)[1]][1] for c in order}
        tables.append(replace(table, higher_is_better=directions))
    return tables


def all_summaries(frame: pd.DataFrame, methods: Sequence[str]) -> list[Summary]:
    """Every summary table, in report order."""
    return [
        *detection_summaries(frame, methods),
        *rate_summaries(frame, methods),
        *dataset_summaries(frame, methods),
        runtime_summary(frame, methods),
        *removal_summary(frame, methods),
    ]


def write_summaries(summaries: Sequence[Summary], tables_dir: Path) -> list[Path]:
    """Write each summary as ``<name>.csv`` and ``<name>.md``; returns the files written."""
    written = []
    for summary in summaries:
        written.append(
            write_csv(tables_dir / f"{summary.name}.csv", summary.to_csv_frame(), index=True)
        )
        written.append(write_text(tables_dir / f"{summary.name}.md", summary.to_markdown()))
    return written
