"""The run report: exports, figures and ``report.md`` with the paper's claims checked.

:func:`build_report` reads a results store and writes, under the output directory,
``results/`` (paper-layout CSVs, and the detection F1 in the authors' own layout under
``results/{baselines,lossval}/``), ``tables/`` (mean ± SEM, CSV and markdown),
``figures/`` (PNG) and ``report.md``. Every number in the report is computed from the
store; the claims section states for each claim of the paper whether it holds here, and
"Where each method wins" (:mod:`lossval_odv.reporting.wins`) names the best method per task, noise
type, metric and dataset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lossval_odv.bench.config import BenchmarkConfig
from lossval_odv.bench.failures import failures_markdown, group_failures
from lossval_odv.bench.grid import expand
from lossval_odv.bench.store import ResultStore
from lossval_odv.evaluators import KEYS
from lossval_odv.evaluators.capabilities import capabilities_of
from lossval_odv.reporting import (
    authors_layout,
    critical_difference,
    degeneracy,
    export,
    publish,
    reference,
    wins,
)
from lossval_odv.reporting.plots import make_figures

LOSSVAL = KEYS["LossValODV"]
LAVA = "lavaevaluator"
RANDOM = "randomevaluator"
# Evaluators added beyond the paper's comparison: the claims are about the
# paper's methods, so these are left out of the checks and compared in "Where each
# method wins" instead.
BEYOND_PAPER = (KEYS["TracIn"], KEYS["LossTrajectory"], KEYS["CleanlabQuality"])
HOLDS, FAILS = "holds", "does not hold"
MIN_SPEEDUP = 10.0  # "one to two orders of magnitude"
REPORT_ENTRIES = ("results", "tables", "figures", "report.md")  # report.md, the entry, last
REPORT_SUFFIXES = (".csv", ".md", ".png")  # files a report writes; others are carried over


class NothingToReportError(ValueError):
    """The store holds no cell of the config."""


@dataclass(frozen=True)
class ClaimCheck:
    """One claim checked on one task: what was computed and the verdict."""

    claim: str
    task: str
    evidence: str
    verdict: str


def _untestable(reason: str) -> str:
    return f"not testable with this run ({reason})"


def _lossval_methods(frame: pd.DataFrame) -> list[str]:
    return sorted(frame.loc[frame["evaluator"] == LOSSVAL, "method"].unique())


def _means(cells: pd.DataFrame, value: str) -> pd.Series:
    return cells.groupby("method")[value].mean().dropna().sort_values(ascending=False)


def _fmt(ranking: pd.Series, top: int = 3) -> str:
    return ", ".join(f"{m} {v:.3g}" for m, v in ranking.head(top).items())


def check_best_detector(
    frame: pd.DataFrame, noise: str, evaluators: Sequence[str], who: str
) -> list[ClaimCheck]:
    """Is the method with the highest mean F1 on ``noise`` one of ``evaluators``? Per task."""
    claim = f"{who} is best on {noise}-noise detection (highest mean F1)"
    tasks = sorted(frame["task"].unique())
    candidates = set(frame.loc[frame["evaluator"].isin(evaluators), "method"])
    checks = []
    for task in tasks:
        cells = frame[(frame["task"] == task) & (frame["noise"] == noise)]
        ranking = _means(cells, "f1")
        if not candidates:
            verdict = _untestable(f"no {who} method")
        elif ranking.empty:
            verdict = _untestable(f"no {noise}-noise cells")
        elif len(ranking) < 2:
            verdict = _untestable("only one method")
        else:
            verdict = HOLDS if ranking.index[0] in candidates else FAILS
        evidence = f"mean F1: {_fmt(ranking)}" if len(ranking) else "–"
        checks.append(ClaimCheck(claim, task, evidence, verdict))
    return checks


def _epochs(frame: pd.DataFrame, method: str) -> int:
    params = json.loads(frame.loc[frame["method"] == method, "params"].iloc[0])
    return int(params.get("epochs", 5))  # LossValODV's default


def check_longer_training(frame: pd.DataFrame) -> list[ClaimCheck]:
    """Does the LossVal variant with the most epochs beat the one with the fewest on label noise?"""
    claim = "LossVal with more epochs (30) beats fewer (5) on label-noise detection"
    methods = _lossval_methods(frame)
    checks = []
    for task in sorted(frame["task"].unique()):
        cells = frame[(frame["task"] == task) & (frame["noise"] == "label")]
        means = _means(cells, "f1")
        present = [m for m in methods if m in means.index]
        by_epochs = sorted(present, key=lambda m: _epochs(frame, m))
        if len(by_epochs) < 2 or _epochs(frame, by_epochs[0]) == _epochs(frame, by_epochs[-1]):
            evidence = f"LossVal methods with label-noise results: {present or 'none'}"
            verdict = _untestable("needs two LossVal methods with different epochs")
        else:
            short, long = by_epochs[0], by_epochs[-1]
            evidence = (
                f"mean F1 {long} ({_epochs(frame, long)} epochs) {means[long]:.3g} vs "
                f"{short} ({_epochs(frame, short)} epochs) {means[short]:.3g}"
            )
            verdict = HOLDS if means[long] > means[short] else FAILS
        checks.append(ClaimCheck(claim, task, evidence, verdict))
    return checks


def check_removal(frame: pd.DataFrame) -> list[ClaimCheck]:
    """Is the best LossVal method competitive (top half) but not first in point removal?

    Methods are ranked per task by the mean gap between the test score after removing the
    20% lowest-valued and the 20% highest-valued points (the first removal model present).
    """
    claim = (
        "LossVal is competitive (ranked in the top half) but not the best in point removal "
        f"(mean score gap, {export.REMOVAL_FRACTION:.0%} lowest vs highest removed)"
    )
    scores = export.removal_scores(frame)
    methods = _lossval_methods(frame)
    checks = []
    for task in sorted(frame["task"].unique()):
        cells = scores[scores["task"] == task]
        if cells.empty or not methods:
            reason = "no LossVal method" if not methods else "no point-removal results"
            checks.append(ClaimCheck(claim, task, "–", _untestable(reason)))
            continue
        cells = cells[cells["model"] == sorted(cells["model"].unique())[0]]
        ranking = _means(cells, "gap")
        ranks = {m: i + 1 for i, m in enumerate(ranking.index)}
        best = min((m for m in methods if m in ranks), key=ranks.get)
        half = (len(ranking) + 1) // 2
        evidence = (
            f"{best} ranks {ranks[best]} of {len(ranking)} (model {cells['model'].iloc[0]}); "
            f"top: {_fmt(ranking)}"
        )
        if len(ranking) < 3:
            verdict = _untestable("needs at least three methods")
        else:
            verdict = HOLDS if 1 < ranks[best] <= half else FAILS
        checks.append(ClaimCheck(claim, task, evidence, verdict))
    return checks


def check_runtime(frame: pd.DataFrame) -> list[ClaimCheck]:
    """Is every LossVal method at least 10x faster than the slowest retraining-based method?"""
    claim = (
        "One LossVal run costs one to two orders of magnitude less than retraining-based "
        f"methods (at least {MIN_SPEEDUP:g}x faster than the slowest one present)"
    )
    methods = _lossval_methods(frame)
    retraining = {
        method
        for method, evaluator in zip(frame["method"], frame["evaluator"], strict=True)
        if capabilities_of(evaluator).trains_prediction_model
    }
    checks = []
    for task in sorted(frame["task"].unique()):
        seconds = _means(frame[frame["task"] == task], "seconds")
        lossval = [m for m in methods if m in seconds.index]
        slow = [m for m in seconds.index if m in retraining]
        if not lossval or not slow:
            missing = "no LossVal method" if not lossval else "no retraining-based method"
            checks.append(ClaimCheck(claim, task, "–", _untestable(missing)))
            continue
        slowest = slow[0]
        ratios = {m: seconds[slowest] / seconds[m] for m in lossval}
        evidence = f"{slowest} {seconds[slowest]:.3g} s per cell; " + ", ".join(
            f"{m} {seconds[m]:.3g} s ({ratio:.1f}x faster)" for m, ratio in ratios.items()
        )
        verdict = HOLDS if min(ratios.values()) >= MIN_SPEEDUP else FAILS
        checks.append(ClaimCheck(claim, task, evidence, verdict))
    return checks


def check_claims(frame: pd.DataFrame) -> list[ClaimCheck]:
    """Every claim of the paper's protocol ("What the paper claims"), checked on the ``ok`` rows of
    the paper's methods (``BEYOND_PAPER`` evaluators left out)."""
    frame = frame[~frame["evaluator"].isin(BEYOND_PAPER)]
    return [
        *check_best_detector(frame, "label", [LOSSVAL], "LossVal"),
        *check_best_detector(frame, "mixed", [LOSSVAL], "LossVal"),
        *check_best_detector(frame, "feature", [LAVA], "LAVA"),
        *check_longer_training(frame),
        *check_removal(frame),
        *check_runtime(frame),
    ]


def _claims_scope(
    frame: pd.DataFrame, methods: Sequence[str], diagnostics: Sequence[str] = ()
) -> str:
    """Which methods the claims leave out (display names in ``methods`` order): those
    beyond the paper, and the config's diagnostics (``claims: false``)."""
    beyond = set(frame.loc[frame["evaluator"].isin(BEYOND_PAPER), "method"])
    parts = []
    if beyond:
        names = ", ".join(m for m in methods if m in beyond)
        parts.append(
            f"The claims are checked among the paper's methods; {names} (beyond the paper) "
            'are left out here and compared in "Where each method wins".'
        )
    present = [m for m in methods if m in set(diagnostics)]
    if present:
        parts.append(
            "Left out of the claims as diagnostics of this config (`claims: false`): "
            f"{', '.join(present)}."
        )
    return " ".join(parts) + "\n" if parts else ""


def claims_markdown(checks: Sequence[ClaimCheck]) -> str:
    """The claims as a markdown table: claim, task, evidence, verdict."""
    lines = ["| claim | task | evidence | verdict |", "|---|---|---|---|"]
    for check in checks:
        verdict = f"**{check.verdict}**" if check.verdict in (HOLDS, FAILS) else check.verdict
        lines.append(f"| {check.claim} | {check.task} | {check.evidence} | {verdict} |")
    return "\n".join(lines) + "\n"


def _versions(frame: pd.DataFrame) -> dict[str, list[str]]:
    seen: dict[str, set[str]] = {}
    for text in frame["versions"].dropna():
        for library, version in json.loads(text).items():
            if library != "implementation":
                seen.setdefault(library, set()).add(str(version))
    return {library: sorted(versions) for library, versions in sorted(seen.items())}


def _implementations(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Method -> the packages whose code computed its finished cells (recorded per cell)."""
    seen: dict[str, set[str]] = {}
    ok = frame[frame["status"] == "ok"]
    for method, text in ok[["method", "versions"]].dropna().itertuples(index=False):
        seen.setdefault(method, set()).add(json.loads(text).get("implementation", "unrecorded"))
    return {method: sorted(found) for method, found in sorted(seen.items())}


def _runs_text(frame: pd.DataFrame, methods: Sequence[str]) -> str:
    """Runs per setting: one number, or the most common and the methods with other counts
    (a method's ``runs`` option)."""
    runs = frame.groupby("method")["run"].nunique()
    common = int(runs.mode().max())
    others = [f"{m}: {runs[m]}" for m in methods if m in runs.index and runs[m] != common]
    return f"{common}" + (f" ({'; '.join(others)})" if others else "")


def metadata_markdown(
    config: BenchmarkConfig, frame: pd.DataFrame, store_path: Path, methods: Sequence[str]
) -> str:
    """Run metadata: config, cell counts, datasets, methods, versions, devices, compute time."""
    ok = frame[frame["status"] == "ok"]
    datasets = frame[["task", "dataset"]].drop_duplicates().sort_values(["task", "dataset"])
    versions = "; ".join(f"{lib} {', '.join(v)}" for lib, v in _versions(frame).items())
    lines = [
        f"- config: `{config.name}`; store: `{store_path}`",
        f"- cells: {len(frame)} ({len(ok)} ok, {len(frame) - len(ok)} failed)",
        "- datasets: " + ", ".join(f"{d} ({t})" for t, d in datasets.itertuples(index=False)),
        f"- noise types: {', '.join(sorted(frame['noise'].unique()))}; noise rates: "
        + ", ".join(f"{r:g}" for r in sorted(frame["rate"].unique()))
        + f"; runs per setting: {_runs_text(frame, methods)}",
        f"- methods: {', '.join(methods)}",
        "- implementations: "
        + ", ".join(f"{m} ({', '.join(i)})" for m, i in _implementations(frame).items()),
        f"- devices: {', '.join(sorted(frame['device'].dropna().unique()))}",
        f"- library versions: {versions or '–'}",
        f"- compute time: {frame['total_seconds'].sum():.1f} s in cells, of which "
        f"{frame['seconds'].sum():.1f} s valuation",
    ]
    return "\n".join(lines) + "\n"


def failed_markdown(failed: pd.DataFrame) -> str:
    """The failed cells with the first line of their error, or a line saying there are none."""
    if failed.empty:
        return "No failed cells.\n"
    lines = ["| dataset | noise | rate | run | method | error |", "|---|---|---:|---:|---|---|"]
    for row in failed.sort_values(["dataset", "noise", "rate", "run", "method"]).itertuples():
        reason = row.reason.replace("|", "\\|")
        lines.append(
            f"| {row.dataset} | {row.noise} | {row.rate:g} | {row.run} | {row.method} | {reason} |"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ReportScope:
    """How the store's rows relate to the config's grid."""

    cells: int  # of the config
    found: int  # config cells with a row in the store
    ignored: int  # store rows of other configs or settings

    def markdown(self) -> str:
        lines = []
        if self.found < self.cells:
            lines.append(
                f"- not in the store: {self.cells - self.found} of the config's {self.cells} "
                "cells (not computed yet, or failed for environment reasons and retried "
                "by the next run)"
            )
        if self.ignored:
            lines.append(
                f"- ignored: {self.ignored} row(s) of the store that are not cells of this "
                "config (other configs, or earlier parameters, methods or rates)"
            )
        return "\n".join(lines) + "\n" if lines else ""


def config_rows(frame: pd.DataFrame, config: BenchmarkConfig) -> tuple[pd.DataFrame, ReportScope]:
    """The rows of exactly the config's cells (its expanded grid's keys), and the scope.

    Any other row of the store (another config's, or one of earlier settings of this
    config) is left out, never averaged in.
    """
    keys = {cell.key for cell in expand(config)}
    mine = frame["key"].isin(keys)
    scope = ReportScope(cells=len(keys), found=int(mine.sum()), ignored=int((~mine).sum()))
    return frame[mine].reset_index(drop=True), scope


def _figures_markdown(figures: dict[str, Path], output_dir: Path) -> str:
    return "\n".join(
        f"![{name}]({path.relative_to(output_dir).as_posix()})\n" for name, path in figures.items()
    )


def _tables_markdown(summaries: Sequence[export.Summary]) -> str:
    main = [s for s in summaries if not s.name.startswith(("f1_by_rate", "detection_au"))]
    return "\n".join(s.to_markdown() for s in main)


def build_report(
    config: BenchmarkConfig, *, store_path: str | Path, output_dir: str | Path
) -> dict[str, Path]:
    """Write exports, tables, figures and ``report.md`` for a results store.

    Parameters
    ----------
    config : BenchmarkConfig
        The benchmark's config (name, method display labels and order).
    store_path : str or Path
        The results store.
    output_dir : str or Path
        Where ``results/``, ``tables/``, ``figures/`` and ``report.md`` go. The report is
        built aside and replaces an earlier one as a whole (:mod:`lossval_odv.reporting.publish`):
        none of its CSV, markdown or PNG files remain; other files there are kept.

    Returns
    -------
    dict of str to Path
        ``report``, ``tables``, ``figures`` and ``results`` (directories except the first).

    Raises
    ------
    NothingToReportError
        If the store holds no cells of the config.
    """
    store_path, output_dir = Path(store_path), Path(output_dir)
    frame, scope = config_rows(ResultStore(store_path).frame(with_curves=True), config)
    if frame.empty:
        raise NothingToReportError(
            f"results store {store_path} holds no cells of config {config.name!r} "
            f"({scope.ignored} other rows ignored); nothing to report"
        )
    paths = {name.removesuffix(".md"): output_dir / name for name in REPORT_ENTRIES}
    with publish.staged(output_dir, REPORT_ENTRIES, report_suffixes=REPORT_SUFFIXES) as stage:
        _write_report(config, frame, scope, store_path, stage)
    return paths


def _write_report(
    config: BenchmarkConfig,
    frame: pd.DataFrame,
    scope: ReportScope,
    store_path: Path,
    output_dir: Path,
) -> None:
    """Write the report's entries (``REPORT_ENTRIES``) of the config's rows under ``output_dir``."""
    frame = export.with_display_names(frame, config)
    methods = export.method_order(frame, config)
    diagnostics = [m.display for m in config.methods if not m.claims]
    ok = export.ok_rows(frame)
    paths = {name.removesuffix(".md"): output_dir / name for name in REPORT_ENTRIES}
    for key in ("results", "tables", "figures"):
        paths[key].mkdir(parents=True)
    sections = [
        f"# LossVal benchmark report: {config.name}\n",
        "## Run\n",
        metadata_markdown(config, frame, store_path, methods),
        scope.markdown(),
    ]
    if ok.empty:
        sections.append("No cell finished successfully: no tables, figures or claims.\n")
    else:
        export.export_paper_layout(ok, paths["results"], methods)
        authors_layout.export_authors_layout(ok, config, paths["results"])
        summaries = export.all_summaries(ok, methods)
        export.write_summaries(summaries, paths["tables"])
        wins_text, win_tables = wins.section_markdown(ok, methods)
        wins.write_tables(win_tables, paths["tables"])
        figures = make_figures(ok, methods, paths["figures"])
        sections += [
            "## Paper claims vs this run\n",
            _claims_scope(ok, methods, diagnostics),
            claims_markdown(check_claims(ok[~ok["method"].isin(diagnostics)])),
        ]
        store = ResultStore(store_path)
        checks = store.model_checks_frame()
        diagnoses = degeneracy.cell_diagnoses(ok, _values_of(store, ok["key"]), checks, config)
        if config.reference is not None:
            sections += [
                "## Side by side with the paper\n",
                reference.reference_section(
                    ok,
                    config,
                    config.reference,
                    paths["tables"],
                    degeneracy.degenerate_counts(diagnoses),
                ),
            ]
        sections += [
            "## Degenerate baselines\n",
            degeneracy.degeneracy_section(diagnoses, checks, config, methods, paths["tables"]),
        ]
        sections += [
            "## Significance: critical-difference diagrams\n",
            critical_difference.cd_section(
                ok, methods, paths["figures"], paths["tables"], output_dir
            ),
            "## Where each method wins\n",
            wins_text,
            "## Tables\n",
            "All tables (also per noise rate, AUROC and AUPRC) are in `tables/` as CSV and "
            "markdown (the win tables above as `tables/wins_*.csv`); per-dataset "
            "paper-layout CSVs are in `results/`, and the detection F1 also in the LossVal "
            "authors' own layout, which their scripts read, in `results/baselines/` and "
            "`results/lossval/`. The best method of each column is in bold.\n",
            _tables_markdown(summaries),
            "## Figures\n",
            _figures_markdown(figures, output_dir),
        ]
    sections += ["## Failed cells\n", failed_markdown(export.failed_rows(frame))]
    failed = frame[frame["status"] != "ok"]
    if not failed.empty:
        groups = group_failures(
            (f"{r.dataset}/{r.noise}@{r.rate:g}/run{r.run}/{r.method}", r.error)
            for r in failed.itertuples()
        )
        sections += ["### Failure causes\n", failures_markdown(groups)]
    export.write_text(paths["report"], "\n".join(sections))


def _values_of(store: ResultStore, keys: pd.Series) -> pd.Series:
    """The stored values of the cells ``keys``, by key."""
    frame = store.frame(with_values=True)
    return frame.set_index("key").loc[list(keys), "values"]


def compare_store(
    config: BenchmarkConfig,
    *,
    output_dir: Path,
    source: str | Path | None = None,
    to: Path | None = None,
) -> str:
    """Compare the config's ``ok`` cells in ``output_dir``'s store with ``source`` (or the
    config's ``reference``); write the tables under ``to`` (default
    ``output_dir/reference_comparison``) and return the markdown.

    Raises
    ------
    reference.ReferenceError
        No reference given, no store, or no results in the authors' layout.
    """
    from lossval_odv.bench.runner import STORE_NAME

    source = source if source is not None else config.reference
    if source is None:
        raise reference.ReferenceError(
            "no reference: give --reference DIR or set reference: in the config"
        )
    store = output_dir / STORE_NAME
    if not store.is_file():
        raise reference.ReferenceError(f"no results store at {store}; run the config first")
    results = ResultStore(store)
    rows, _ = config_rows(results.frame(), config)
    ok = export.ok_rows(export.with_display_names(rows, config))
    diagnoses = degeneracy.cell_diagnoses(
        ok, _values_of(results, ok["key"]), results.model_checks_frame(), config
    )
    return reference.reference_section(
        ok,
        config,
        source,
        to or output_dir / "reference_comparison",
        degeneracy.degenerate_counts(diagnoses),
    )
