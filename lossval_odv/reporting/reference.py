"""Side by side with a reference: the paper's detection F1 next to ours (issue 14).

The reference is a results tree in the authors' layout (:mod:`.authors_layout`), e.g. the
authors' published baselines. For every task x dataset x noise type x method that both
sides have, over the noise rates both have, the comparison gives each side's mean F1,
standard error and number of runs, the difference (ours - paper) and whether it is
within noise: ``|diff| <= 2 * sqrt(se_paper^2 + se_ours^2)``. Runs of all common noise
rates are pooled on both sides, so each side's SE also carries the rates' spread.

Methods are matched by evaluator: the authors' class name against the OpenDataVal class
our evaluator is (our fast evaluators count as the OpenDataVal evaluator they reproduce,
e.g. ``fastdataoob`` as ``DataOob``). The budget is then compared argument by argument:
each argument the authors state (``num_models=1000``) against our params, or our
evaluator's default where our config leaves it out. A ``cache_name`` argument is a file
name, not a budget, and is dropped; a method row that does not read as ``Class(args)``
(the authors' ``DataOOB `` side experiment, which their notebook drops) is left out and
counted.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossval_odv.bench.config import BenchmarkConfig
from lossval_odv.bench.models import BASELINE_TRAIN_KWARGS
from lossval_odv.reporting.authors_layout import DETECTION_FILES, KINDS, TASKS, reference_class
from lossval_odv.reporting.export import mean_sem, write_csv, write_text

_METHOD = re.compile(r"^(?P<cls>[A-Za-z_]\w*)\((?P<args>.*)\)$")
NOT_A_BUDGET = ("cache_name",)
NOISE_Z = 2.0  # the difference counts as noise within 2 combined standard errors
COLUMNS = [
    "task",
    "dataset",
    "noise",
    "method",
    "paper_method",
    "budget",
    "noise_rates",
    "paper_mean",
    "paper_se",
    "paper_n",
    "ours_mean",
    "ours_se",
    "ours_n",
    "diff",
    "within_noise",
]


class ReferenceError(ValueError):
    """A reference directory that holds no results in the authors' layout."""


def parse_method(name: str) -> tuple[str, dict[str, Any]] | None:
    """``"DataOob(num_models=1000)"`` -> ``("DataOob", {"num_models": 1000})``; None when
    the name is not ``Class(arg=value, ...)``. Values are Python literals where they read
    as one, else their source text (``cache_name=cached_9``); ``cache_name`` is dropped."""
    if _METHOD.match(name) is None:
        return None
    try:
        call = ast.parse(name, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
        return None
    args: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg in NOT_A_BUDGET:
            continue
        try:
            args[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            args[keyword.arg] = ast.unparse(keyword.value)
    return call.func.id, args


def _results_root(directory: Path) -> Path:
    for root in (directory, directory / "results"):
        if any((root / kind).is_dir() for kind in KINDS):
            return root
    raise ReferenceError(
        f"reference {directory} holds no results in the authors' layout: expected "
        f"{' or '.join(KINDS)}/<{'|'.join(TASKS)}>/<dataset>/*_f1_scores.csv under it "
        "(or under its results/)"
    )


def read_reference(directory: str | Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """All detection F1 rows of a reference tree, and the method names left out.

    Returns
    -------
    DataFrame
        ``task, dataset, noise, paper_method, evaluator_class, args, noise_rate, f1``;
        ``paper_method`` is the class with its budget arguments (``cache_name`` dropped).
    dict of str to int
        Rows per method name that does not read as ``Class(args)``.
    """
    root = _results_root(Path(directory))
    frames, skipped = [], {}
    for kind in KINDS:
        for task in TASKS:
            for folder in sorted((root / kind / task).glob("*")):
                for noise, file_name in DETECTION_FILES.items():
                    path = folder / file_name
                    if not path.is_file():
                        continue
                    rows = pd.read_csv(path)
                    rows["task"], rows["noise"] = task, noise
                    frames.append(rows)
    if not frames:
        raise ReferenceError(f"reference {root} has no *_f1_scores.csv in the authors' layout")
    raw = pd.concat(frames, ignore_index=True)
    parsed = [parse_method(str(name)) for name in raw["method"]]
    keep = np.array([p is not None for p in parsed])
    for name, count in raw.loc[~keep, "method"].value_counts().items():
        skipped[str(name)] = int(count)
    kept = raw[keep].copy()
    classes = [p[0] for p in parsed if p is not None]
    args = [p[1] for p in parsed if p is not None]
    kept["evaluator_class"] = classes
    kept["args"] = args
    kept["paper_method"] = [
        f"{cls}({', '.join(f'{k}={v}' for k, v in sorted(a.items()))})"
        for cls, a in zip(classes, args, strict=True)
    ]
    kept = kept.rename(columns={"kmeans_f1": "f1"})
    columns = ["task", "dataset", "noise", "paper_method", "evaluator_class", "args"]
    return kept[[*columns, "noise_rate", "f1"]].reset_index(drop=True), skipped


def _effective(evaluator: str, params: dict[str, Any], name: str) -> Any:
    from opendataval.dataval import DataEvaluator

    if name in params:
        return params[name]
    parameter = inspect.signature(DataEvaluator.Evaluators[evaluator]).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def budget_note(evaluator: str, params: dict[str, Any], paper_args: dict[str, Any]) -> str:
    """``same`` when every argument the authors state equals ours (given or default), else
    what differs, e.g. ``num_models: ours 50, paper 1000``."""
    differences = []
    for name, paper_value in sorted(paper_args.items()):
        ours = _effective(evaluator, params, name)
        if ours != paper_value:
            differences.append(f"{name}: ours {ours}, paper {paper_value}")
    return "same" if not differences else "; ".join(differences)


def training_note(task: str, training: dict[str, dict] | None) -> str:
    """What a method's ``train`` changes in the baselines' prediction model for ``task``
    (the authors trained it as the protocol says), e.g. ``; model lr: ours 0.001, paper
    0.1``; empty when nothing changes."""
    changes = (training or {}).get(task, {})
    return "".join(
        f"; model {name}: ours {value}, paper {BASELINE_TRAIN_KWARGS[task][name]}"
        for name, value in sorted(changes.items())
        if value != BASELINE_TRAIN_KWARGS[task][name]
    )


def compare(ours: pd.DataFrame, reference: pd.DataFrame, config: BenchmarkConfig) -> pd.DataFrame:
    """The side-by-side table (columns ``COLUMNS``), one row per task x dataset x noise type
    x our method x matching paper method.

    Parameters
    ----------
    ours : DataFrame
        Our ``ok`` cells of ``config``: ``task, dataset, noise, rate, method, f1`` with
        ``method`` the display label (``MethodConfig.display``, as in the report).
    reference : DataFrame
        :func:`read_reference`'s rows.
    config : BenchmarkConfig
        Our methods' evaluators, params and display labels.
    """
    rows = []
    for method in config.methods:
        target = reference_class(method.evaluator)
        theirs = reference[reference["evaluator_class"].str.lower() == target.lower()]
        mine = ours[ours["method"] == method.display]
        by_setting = mine.groupby(["task", "dataset", "noise"], sort=True)
        for (task, dataset, noise), cells in by_setting:
            same = theirs[
                (theirs["task"] == task)
                & (theirs["dataset"] == dataset)
                & (theirs["noise"] == noise)
            ]
            for paper_method, paper in same.groupby("paper_method", sort=True):
                rates = sorted(
                    set(np.round(cells["rate"], 6)) & set(np.round(paper["noise_rate"], 6))
                )
                if not rates:
                    continue
                a_mean, a_se, a_n = mean_sem(
                    paper.loc[np.round(paper["noise_rate"], 6).isin(rates), "f1"]
                )
                b_mean, b_se, b_n = mean_sem(
                    cells.loc[np.round(cells["rate"], 6).isin(rates), "f1"]
                )
                diff = b_mean - a_mean
                bound = NOISE_Z * np.sqrt(a_se**2 + b_se**2)
                rows.append(
                    {
                        "task": task,
                        "dataset": dataset,
                        "noise": noise,
                        "method": method.display,
                        "paper_method": paper_method,
                        "budget": budget_note(
                            method.evaluator, method.params, paper["args"].iloc[0]
                        )
                        + training_note(task, method.training),
                        "noise_rates": " ".join(f"{r:g}" for r in rates),
                        "paper_mean": a_mean,
                        "paper_se": a_se,
                        "paper_n": a_n,
                        "ours_mean": b_mean,
                        "ours_se": b_se,
                        "ours_n": b_n,
                        "diff": diff,
                        "within_noise": bool(abs(diff) <= bound) if np.isfinite(bound) else None,
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def comparison_markdown(table: pd.DataFrame, skipped: dict[str, int], source: str) -> str:
    """The table as markdown with how to read it; ``source`` names the reference."""
    lines = [
        f"Reference: `{source}` (the authors' layout). Detection F1, mean ± SE over the runs "
        "of the noise rates both sides have; diff = ours - paper; *noise* when "
        f"|diff| <= {NOISE_Z:g} sqrt(se_paper² + se_ours²). Budget: the arguments the "
        "authors state against ours (*same*, or what differs).\n",
    ]
    if table.empty:
        lines.append("No dataset x noise type x method is on both sides.\n")
    else:
        matched = table["within_noise"].eq(True)
        lines.append(
            f"{int(matched.sum())} of {len(table)} comparisons within noise; "
            f"{int((table['budget'] != 'same').sum())} with another budget.\n"
        )
        extra = "degenerate" in table.columns
        if extra:
            lines.append(
                "*Our degenerate*: our cells whose values are constant or near-constant "
                '(section "Degenerate baselines"): their 2-means F1 rests on differences near '
                "float precision, so such rows say little either way.\n"
            )
        lines.append(
            "| task | dataset | noise | method | paper method | budget | paper | n | ours | n "
            "| diff | within noise |" + (" our degenerate |" if extra else "")
        )
        lines.append("|" + "---|" * (13 if extra else 12))
        for r in table.itertuples():
            verdict = {True: "yes", False: "**no**"}.get(r.within_noise, "n/a")
            lines.append(
                f"| {r.task} | {r.dataset} | {r.noise} | {r.method} | `{r.paper_method}` "
                f"| {r.budget} | {_pm(r.paper_mean, r.paper_se)} | {r.paper_n} "
                f"| {_pm(r.ours_mean, r.ours_se)} | {r.ours_n} | {r.diff:+.3f} | {verdict} |"
                + (f" {r.degenerate} |" if extra else "")
            )
        lines.append("")
    if skipped:
        left_out = ", ".join(f"`{name}` ({count} rows)" for name, count in sorted(skipped.items()))
        lines.append(f"Left out of the reference (not `Class(args)`): {left_out}.\n")
    return "\n".join(lines)


def _pm(mean: float, se: float) -> str:
    return f"{mean:.3f} ± {se:.3f}" if np.isfinite(se) else f"{mean:.3f}"


def write_comparison(
    table: pd.DataFrame, skipped: dict[str, int], source: str, directory: Path
) -> list[Path]:
    """``reference_comparison.csv`` and ``.md`` under ``directory``."""
    return [
        write_csv(directory / "reference_comparison.csv", table),
        write_text(
            directory / "reference_comparison.md",
            "# Detection F1 next to the reference\n\n"
            + comparison_markdown(table, skipped, source),
        ),
    ]


def reference_section(
    ok: pd.DataFrame,
    config: BenchmarkConfig,
    reference: str | Path,
    tables_dir: Path,
    degenerate: pd.DataFrame | None = None,
) -> str:
    """The report's section: compare ``ok`` rows (display labels) with ``reference``,
    write the tables, return the markdown. ``degenerate`` (``task, dataset, noise,
    method, degenerate``: a ``k/n`` count of our cells with constant or near-constant
    values) adds that column, which accounts for many disagreements."""
    rows, skipped = read_reference(reference)
    table = compare(ok, rows, config)
    if degenerate is not None:
        keys = ["task", "dataset", "noise", "method"]
        table = table.merge(degenerate, on=keys, how="left")
    write_comparison(table, skipped, str(reference), tables_dir)
    return comparison_markdown(table, skipped, str(reference))
