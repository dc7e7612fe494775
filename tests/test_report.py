"""The results layer on a synthetic store: exports, tables, figures, claims, wins, report."""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lossval_odv.bench.config import BenchmarkConfig, parse_config
from lossval_odv.bench.evaluator_factory import implementation
from lossval_odv.bench.grid import Cell, expand
from lossval_odv.bench.records import CellResult
from lossval_odv.bench.store import ResultStore
from lossval_odv.reporting import publish
from lossval_odv.reporting import report as report_module
from lossval_odv.reporting.export import Summary
from lossval_odv.reporting.plots import cut_outliers
from lossval_odv.reporting.report import REPORT_ENTRIES, build_report
from lossval_odv.reporting.wins import overall_wins, section_markdown

DATASETS = {"iris": "classification", "diabetes": "regression"}
NOISES = ("label", "feature")
RATES = (0.1, 0.2)
RUNS = (0, 1)
# method -> (evaluator, base F1 on label noise, seconds per cell)
METHODS = {
    "lossval": ("lossvalodv", 0.8, 1.0),
    "knn": ("knnshapley", 0.5, 0.1),
    "oob": ("dataoob", 0.3, 60.0),
}
AXIS = [i / 20 for i in range(20)]
FAILED_RATE = 0.3  # in the config; its one stored cell failed, the others are missing


def _config() -> BenchmarkConfig:
    return parse_config(
        {
            "name": "synthetic",
            "datasets": list(DATASETS),
            "noise_types": list(NOISES),
            "noise_rates": [*RATES, FAILED_RATE],
            "runs": len(RUNS),
            "methods": [
                {"name": name, "evaluator": evaluator}
                for name, (evaluator, _, _) in METHODS.items()
            ],
        }
    )


def _cell(dataset: str, noise: str, rate: float, run: int, method: str) -> Cell:
    return Cell(
        dataset=dataset,
        noise=noise,
        rate=rate,
        run=run,
        method=method,
        evaluator=METHODS[method][0],
        params={},
        split=(100, 10, 100),
        data_seed=run,
        method_seed=run,
        experiments={},
    )


# which package computed each synthetic method's cells, as the cell records it
IMPLEMENTATIONS = {"lossval": "lossval_odv", "knn": "opendataval", "oob": "lossval_odv"}


def f1_value(method: str, noise: str, rate: float, run: int, *, flip: bool) -> float:
    """The planted F1: LossVal best on label noise (worst when ``flip``), knn on feature."""
    base = METHODS[method][1]
    if flip and method == "lossval":
        base = 0.1
    if noise == "feature":
        base = {"lossval": 0.3, "knn": 0.6, "oob": 0.2}[method]
    return base + 0.05 * run + 0.1 * rate


def _curves(method: str) -> dict:
    strength = {"lossval": 0.2, "knn": 0.1, "oob": 0.0}[method]
    axis = np.array(AXIS)
    return {
        "discovery": {"axis": AXIS + [1.0], "found": list(np.linspace(0, 1, 21) ** 0.5)},
        "removal_paper": {
            "axis": AXIS,
            "remove_low": list(0.8 + strength * axis),
            "remove_high": list(0.8 - strength * axis),
            "metric": "accuracy",
        },
    }


def fill_store(path: Path, *, flip: bool = False, failed: bool = True) -> ResultStore:
    """A store with every cell of the synthetic grid, plus one failed cell."""
    store = ResultStore(path)
    grid = {(c.dataset, c.noise, c.rate, c.run, c.method): c for c in expand(_config())}
    for dataset, task in DATASETS.items():
        for noise in NOISES:
            for rate in RATES:
                for run in RUNS:
                    for method in METHODS:
                        cell = grid[dataset, noise, rate, run, method]
                        f1 = f1_value(method, noise, rate, run, flip=flip)
                        result = CellResult(
                            key=cell.key,
                            cell=cell,
                            status="ok",
                            task=task,
                            metrics={"f1": f1, "auroc": f1, "auprc": f1 / 2},
                            curves=_curves(method),
                            seconds=METHODS[method][2] * (1 + 0.1 * run),
                            total_seconds=METHODS[method][2] * 2,
                            versions={
                                "numpy": np.__version__,
                                "implementation": IMPLEMENTATIONS[method],
                            },
                        )
                        store.add(result, config="synthetic")
    if failed:
        cell = grid["iris", "label", FAILED_RATE, 0, "knn"]
        result = CellResult(
            key=cell.key,
            cell=cell,
            status="failed",
            task="classification",
            error="RuntimeError: planted failure\nTraceback (most recent call last): ...",
        )
        store.add(result, config="synthetic")
    return store


@pytest.fixture()
def report(tmp_path: Path) -> dict[str, Path]:
    store = fill_store(tmp_path / "store.sqlite")
    return build_report(_config(), store_path=store.path, output_dir=tmp_path / "out")


def _markdown_table(path: Path) -> pd.DataFrame:
    rows = [line for line in path.read_text().splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return pd.DataFrame(cells[1:], columns=cells[0]).set_index("method")


def _claim_rows(report_path: Path, claim_start: str, task: str) -> list[str]:
    return [
        line
        for line in report_path.read_text().splitlines()
        if line.startswith(f"| {claim_start}") and f"| {task} |" in line
    ]


def test_paper_layout_exports(report: dict[str, Path]) -> None:
    folder = report["results"] / "classification" / "iris"
    for noise in NOISES:
        for metric in ("f1", "auroc", "auprc"):
            scores = pd.read_csv(folder / f"{noise}_{metric}_scores.csv")
            assert list(scores.columns) == ["noise_rate", "run", *METHODS]
            assert len(scores) == len(RATES) * len(RUNS)
        removal = pd.read_csv(folder / f"{noise}_remove_high_low_results.csv")
        assert list(removal.columns) == [
            "method",
            "noise_rate",
            "run",
            "model",
            "fraction_removed",
            "remove_low",
            "remove_high",
        ]
        assert len(removal) == len(METHODS) * len(RATES) * len(RUNS) * len(AXIS)
        discovery = pd.read_csv(folder / f"{noise}_corruption_discovery_results.csv")
        assert list(discovery.columns) == [
            "method",
            "noise_rate",
            "run",
            "fraction_inspected",
            "found",
        ]
        assert len(discovery) == len(METHODS) * len(RATES) * len(RUNS) * (len(AXIS) + 1)
    assert (report["results"] / "regression" / "diabetes" / "label_f1_scores.csv").is_file()
    scores = pd.read_csv(folder / "label_f1_scores.csv")
    first = scores[(scores["noise_rate"] == 0.2) & (scores["run"] == 1)]
    assert first["lossval"].item() == pytest.approx(
        f1_value("lossval", "label", 0.2, 1, flip=False)
    )


def test_summary_tables_exist(report: dict[str, Path]) -> None:
    names = [
        "detection_f1",
        "detection_auroc",
        "detection_auprc",
        "f1_by_rate_classification_label",
        "f1_by_rate_regression_feature",
        "f1_by_dataset_label",
        "runtime",
        "removal_paper",
    ]
    for name in names:
        assert (report["tables"] / f"{name}.csv").is_file()
        assert (report["tables"] / f"{name}.md").is_file()
    assert (
        "SEM = sample std (ddof=1) / sqrt(n)" in (report["tables"] / "detection_f1.md").read_text()
    )


def test_mean_sem_matches_hand_computation(report: dict[str, Path]) -> None:
    values = np.array(
        [f1_value("lossval", "label", r, run, flip=False) for r in RATES for run in RUNS]
    )
    mean = values.sum() / len(values)
    sem = math.sqrt(((values - mean) ** 2).sum() / (len(values) - 1)) / math.sqrt(len(values))
    table = pd.read_csv(report["tables"] / "detection_f1.csv", index_col="method")
    assert table.at["lossval", "classification / label mean"] == pytest.approx(mean)
    assert table.at["lossval", "classification / label sem"] == pytest.approx(sem)
    assert table.at["lossval", "classification / label n"] == len(values)
    markdown = _markdown_table(report["tables"] / "detection_f1.md")
    assert markdown.at["lossval", "classification / label"] == f"**{mean:.3f} ± {sem:.3f}**"


def test_best_method_is_bold(report: dict[str, Path]) -> None:
    markdown = _markdown_table(report["tables"] / "detection_f1.md")
    for column, best in [("classification / label", "lossval"), ("regression / feature", "knn")]:
        bold = [m for m in markdown.index if markdown.at[m, column].startswith("**")]
        assert bold == [best]
    runtime = _markdown_table(report["tables"] / "runtime.md")  # lower is better
    assert [m for m in runtime.index if runtime.at[m, "classification"].startswith("**")] == ["knn"]


def test_summary_best_respects_direction() -> None:
    frame = pd.DataFrame({"a": [1.0, 3.0], "b": [1.0, 3.0]}, index=["x", "y"])
    summary = Summary("t", "t", frame, frame * 0, frame * 0 + 2, {"a": True, "b": False})
    assert summary.best() == {"a": "y", "b": "x"}


def test_claims_hold_for_planted_method(report: dict[str, Path]) -> None:
    for task in DATASETS.values():
        rows = _claim_rows(report["report"], "LossVal is best on label-noise", task)
        assert len(rows) == 1 and rows[0].endswith("| **holds** |")
        runtime = _claim_rows(report["report"], "One LossVal run costs", task)
        assert runtime[0].endswith("| **holds** |")
    epochs = _claim_rows(report["report"], "LossVal with more epochs", "classification")
    assert "not testable with this run" in epochs[0]
    lava = _claim_rows(report["report"], "LAVA is best", "classification")
    assert "not testable with this run (no LAVA method)" in lava[0]


def test_claims_do_not_hold_when_flipped(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "store.sqlite", flip=True)
    paths = build_report(_config(), store_path=store.path, output_dir=tmp_path / "out")
    for task in DATASETS.values():
        rows = _claim_rows(paths["report"], "LossVal is best on label-noise", task)
        assert len(rows) == 1 and rows[0].endswith("| **does not hold** |")


def test_figures_are_png(report: dict[str, Path]) -> None:
    figures = sorted(report["figures"].glob("*.png"))
    names = {f.stem for f in figures}
    for task in DATASETS.values():
        assert {f"f1_by_rate_{task}", f"removal_paper_{task}", f"discovery_{task}"} <= names
    assert "runtime" in names
    for figure in figures:
        data = figure.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    text = report["report"].read_text()
    assert "](figures/runtime.png)" in text


def test_report_lists_run_and_failed_cells(report: dict[str, Path]) -> None:
    text = report["report"].read_text()
    ok = len(DATASETS) * len(NOISES) * len(RATES) * len(RUNS) * len(METHODS)
    assert f"cells: {ok + 1} ({ok} ok, 1 failed)" in text
    failed = text.split("## Failed cells", 1)[1]
    assert "| iris | label | 0.3 | 0 | knn | RuntimeError: planted failure |" in failed
    assert "Traceback" not in failed
    assert "config: `synthetic`" in text and "numpy " + np.__version__ in text
    expected = ", ".join(f"{m} ({i})" for m, i in sorted(IMPLEMENTATIONS.items()))
    assert f"- implementations: {expected}\n" in text
    assert "implementation " not in text.split("library versions:", 1)[1].splitlines()[0]


def test_cells_record_the_implementing_package() -> None:
    assert implementation("knnshapley") == "opendataval"
    assert implementation("dataoob") == "opendataval"
    assert implementation("fastdataoob") == "lossval_odv"
    assert implementation("fastdatashapley") == "lossval_odv"
    assert implementation("lossvalodv") == "lossval_odv"
    assert implementation("nosuchevaluator") == "unregistered"


def test_empty_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    with pytest.raises(ValueError, match="empty.sqlite.*no cells"):
        build_report(_config(), store_path=path, output_dir=tmp_path / "out")
    store = ResultStore(path)  # a store file that exists but holds no rows
    cell = _cell("iris", "label", 0.1, 0, "knn")
    store.add(
        CellResult(key=cell.key, cell=cell, status="failed", task="classification"), config="x"
    )
    store.forget_failed([cell.key])
    assert path.is_file() and store.count() == 0
    with pytest.raises(ValueError, match="empty.sqlite.*no cells"):
        build_report(_config(), store_path=path, output_dir=tmp_path / "out")


@pytest.mark.slow
def test_rerun_overwrites_cleanly(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "store.sqlite", failed=False)
    out = tmp_path / "out"
    first = build_report(_config(), store_path=store.path, output_dir=out)
    before = first["report"].read_text()
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    second = build_report(_config(), store_path=store.path, output_dir=out)
    assert second["report"].read_text() == before
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == files
    assert not list(out.rglob("*.tmp"))
    stale = out / "results" / "classification" / "gone" / "label_f1_scores.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("left over from an earlier report")
    notes = out / "tables" / "notes.txt"
    notes.write_text("not a report output")
    fill_store(store.path, failed=True)  # one more (failed) cell in the store
    third = build_report(_config(), store_path=store.path, output_dir=out)
    assert "1 failed" in third["report"].read_text()
    assert not stale.parent.exists() and notes.exists()


# ------------------------------------------------------------------ where each method wins


def _wins_frame() -> pd.DataFrame:
    """Planted winners: on classification label noise ``a`` by F1 and AUPRC (a constant lead,
    so clear) and ``b`` by AUROC; on feature noise ``b`` on d1 and ``c`` on d2, ``b`` ahead
    overall by a lead far within its noise; on regression label noise ``c``."""
    f1 = {
        ("label", "d1"): {"a": 0.8, "b": 0.5, "c": 0.2},
        ("label", "d2"): {"a": 0.7, "b": 0.4, "c": 0.3},
        ("feature", "d1"): {"a": 0.1, "b": 0.6, "c": 0.4},
        ("feature", "d2"): {"a": 0.1, "b": 0.3, "c": 0.45},
        ("label", "r1"): {"a": 0.2, "b": 0.3, "c": 0.5},
    }
    rows = []
    for (noise, dataset), values in f1.items():
        for rate in (0.1, 0.2):
            for run in range(3):
                for method, value in values.items():
                    score = value + 0.01 * run + rate / 10
                    planted = (noise, method) == ("label", "b") and dataset != "r1"
                    auroc = 0.95 if planted else score
                    rows.append(
                        {
                            "task": "regression" if dataset == "r1" else "classification",
                            "dataset": dataset,
                            "noise": noise,
                            "rate": rate,
                            "run": run,
                            "method": method,
                            "f1": score,
                            "auroc": auroc,
                            "auprc": score / 2,
                        }
                    )
    return pd.DataFrame(rows)


def test_overall_wins_find_planted_winners() -> None:
    wins = {(w.setting, w.metric): w for w in overall_wins(_wins_frame(), ["a", "b", "c"])}
    label = wins[("classification / label", "f1")]
    assert (label.best, label.runner_up) == ("a", "b")
    assert label.gap == pytest.approx(0.3) and label.n_pairs == 12 and label.clear
    assert wins[("classification / label", "auprc")].best == "a"
    assert wins[("classification / label", "auroc")].best == "b"
    feature = wins[("classification / feature", "f1")]
    assert (feature.best, feature.runner_up) == ("b", "c")
    assert feature.best_mean == pytest.approx(0.45 + 0.01 + 0.015)
    assert feature.gap == pytest.approx(0.025) and not feature.clear
    assert wins[("regression / label", "f1")].best == "c"
    assert len(wins) == 3 * 3  # three settings, three metrics


def test_win_counts_and_method_summaries() -> None:
    frame = _wins_frame()
    text, tables = section_markdown(frame, ["a", "b", "c", "absent"])
    counts = tables.counts
    assert list(counts.index.get_level_values("method").unique()) == ["a", "b", "c"]
    assert counts.at[("a", "f1"), "classification / label"] == 2
    assert counts.at[("b", "f1"), "classification / feature"] == 1
    assert counts.at[("c", "f1"), "classification / feature"] == 1
    assert counts.at[("c", "f1"), "total"] == 2 and counts.at[("a", "auroc"), "total"] == 0
    assert tables.datasets == {
        "classification / feature": 2,
        "classification / label": 2,
        "regression / label": 1,
    }
    assert "| a | 0 / 0 / 0 | 2 / 0 / 2 | 0 / 0 / 0 | 2 / 0 / 2 |" in text
    assert "| classification / label | F1 | **a** (" in text and "(clear) |" in text
    bullets = {line.split("**")[1]: line for line in text.splitlines() if line.startswith("- **")}
    assert bullets["a"] == (
        "- **a**: best overall on classification / label by F1, AUPRC; best on 2 / 0 / 2 of 5 "
        "dataset × noise-type settings (F1 / AUROC / AUPRC); never best on feature noise."
    )
    assert (
        "best overall on classification / feature by F1, AUROC, AUPRC (lead within 2 SEM by "
        "F1, AUROC, AUPRC); classification / label by AUROC; best on 1 / 3 / 1 of 5"
    ) in bullets["b"]
    assert "never best on" not in bullets["b"]
    summary_c = bullets["c"]
    assert "best overall on regression / label by F1, AUROC, AUPRC; best on 2 / 2 / 2" in summary_c


def test_method_that_never_wins_gets_its_best_rank() -> None:
    frame = _wins_frame()
    frame = frame[~((frame["method"] == "c") & (frame["task"] == "regression"))]
    text, _ = section_markdown(frame[frame["noise"] == "label"], ["a", "b", "c"])
    line = next(line for line in text.splitlines() if line.startswith("- **c**"))
    assert "never best overall (highest mean-F1 rank 3 of 3, on classification / label)" in line
    assert "best on no dataset" in line


def test_report_has_wins_section(report: dict[str, Path]) -> None:
    text = report["report"].read_text()
    section = text.split("## Where each method wins", 1)[1].split("## Tables", 1)[0]
    assert "| classification / label | F1 | **lossval** (" in section
    assert "| regression / feature | F1 | **knn** (" in section
    assert "- **oob**: never best overall" in section
    for name in ("wins_overall", "wins_by_dataset", "wins_counts"):
        assert (report["tables"] / f"{name}.csv").is_file()
    overall = pd.read_csv(report["tables"] / "wins_overall.csv")
    assert len(overall) == len(DATASETS) * len(NOISES) * 3


def test_cut_outliers_only_when_needed() -> None:
    figure, axis = plt.subplots()
    try:
        assert not cut_outliers(axis, np.linspace(0.4, 0.8, 50))
        values = np.append(np.linspace(-0.6, -1.0, 50), [-500.0, np.nan])
        assert cut_outliers(axis, values)
        low, high = axis.get_ylim()
        assert -2.0 < low < -1.0 and -0.6 < high < -0.5
    finally:
        plt.close(figure)


def test_claims_leave_out_methods_beyond_the_paper() -> None:
    """A newer method beating LossVal does not change the paper's claim (checked among the
    paper's methods); without the filter the claim would not hold."""
    from lossval_odv.reporting.report import check_best_detector, check_claims

    rows = [
        {
            "task": "classification",
            "noise": "label",
            "run": run,
            "method": method,
            "evaluator": evaluator,
            "f1": f1 + 0.01 * run,
            "seconds": 1.0,
            "params": "{}",
            "curves": {},
        }
        for run in range(2)
        for method, evaluator, f1 in (
            ("LossVal", "lossvalodv", 0.6),
            ("KNN-Shapley", "knnshapley", 0.4),
            ("Loss trajectory", "losstrajectory", 0.9),
        )
    ]
    frame = pd.DataFrame(rows)
    label = [c for c in check_claims(frame) if c.claim.startswith("LossVal is best on label")]
    assert [c.verdict for c in label] == ["holds"]
    assert "Loss trajectory" not in label[0].evidence
    unfiltered = check_best_detector(frame, "label", ["lossvalodv"], "LossVal")
    assert [c.verdict for c in unfiltered] == ["does not hold"]


# ------------------------------------------------------------- 6. the report as a whole


def _snapshot(out: Path) -> dict[str, bytes]:
    """Every file of a report directory (the store aside), by relative path."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith("store.")
    }


def _text_snapshot(out: Path) -> dict[str, bytes]:
    return {k: v for k, v in _snapshot(out).items() if k.endswith((".csv", ".md"))}


def _flipped_store(tmp_path: Path) -> Path:
    return fill_store(tmp_path / "flipped.sqlite", flip=True).path


def test_killed_build_leaves_the_old_report_untouched(tmp_path: Path, monkeypatch) -> None:

    out = tmp_path / "out"
    store = fill_store(tmp_path / "store.sqlite")
    build_report(_config(), store_path=store.path, output_dir=out)
    before = _snapshot(out)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what SIGINT raises; a kill stops at the same point

    monkeypatch.setattr(report_module, "make_figures", killed)
    with pytest.raises(KeyboardInterrupt):
        build_report(_config(), store_path=_flipped_store(tmp_path), output_dir=out)
    assert _snapshot(out) == before
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_killed_publish_is_completed_by_the_next_build(tmp_path: Path, monkeypatch) -> None:

    flipped = _flipped_store(tmp_path)
    reference = tmp_path / "reference"
    build_report(_config(), store_path=flipped, output_dir=reference)
    out = tmp_path / "out"
    build_report(_config(), store_path=fill_store(tmp_path / "s.sqlite").path, output_dir=out)
    renames = []
    real_rename = Path.rename

    def rename_then_die(self: Path, target):
        renames.append(self)
        if len(renames) == 3:  # results/ is new, the rest old: a mix on disk
            raise KeyboardInterrupt
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        build_report(_config(), store_path=flipped, output_dir=out)
    monkeypatch.setattr(Path, "rename", real_rename)
    assert _text_snapshot(out) != _text_snapshot(reference)
    publish.recover(out, REPORT_ENTRIES)  # what the next build does first
    assert _text_snapshot(out) == _text_snapshot(reference)
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_report_files_respect_the_umask(tmp_path: Path) -> None:

    store = fill_store(tmp_path / "store.sqlite")
    previous = os.umask(0o027)
    try:
        build_report(_config(), store_path=store.path, output_dir=tmp_path / "out")
    finally:
        os.umask(previous)
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert modes == {0o640}


def test_critical_difference_ranks_detection_and_removal(report: dict[str, Path]) -> None:
    table = pd.read_csv(report["tables"] / "critical_difference.csv", keep_default_na=False)
    text = report["report"].read_text()
    for task in DATASETS.values():
        removal = table[(table["score"] == "removal_gap") & (table["task"] == task)]
        # planted removal strength: lossval > knn > oob in every cell
        assert removal["method"].tolist() == ["lossval", "knn", "oob"]
        assert set(removal["model"]) == {"paper"} and set(removal["noise"]) == {"all"}
        assert (removal["blocks"] == len(NOISES) * len(RATES)).all()
        assert f"](figures/cd_removal_{task}_paper.png)" in text
        detection = table[(table["score"] == "detection_f1") & (table["task"] == task)]
        assert set(detection["noise"]) == set(NOISES)
