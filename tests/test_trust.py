"""Results a researcher can trust (issue 11): reports hold exactly the config's cells,
failures are loud and retried when the environment caused them, bad configs and stores
are refused before anything is computed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lossval_odv.bench import failures
from lossval_odv.bench.config import ConfigError, load_config, parse_config
from lossval_odv.bench.grid import expand
from lossval_odv.bench.runner import run_benchmark
from lossval_odv.bench.store import ResultStore, StoreError, StoreLockedError
from lossval_odv.reporting.report import build_report

REPO = Path(__file__).resolve().parents[1]

# tiny_clf (tests/tiny_datasets.py) has 240 points; every cell takes well under a second
BASE = {
    "name": "trust",
    "datasets": ["tiny_clf"],
    "noise_types": ["label"],
    "noise_rates": [0.2],
    "runs": 1,
    "split": {"train": 100, "valid": 20, "test": 100},
    "plugins": ["tests.tiny_datasets"],
    "backend": "serial",
    "experiments": {"removal": False, "discovery": False},
    "methods": [
        {"name": "lossval", "evaluator": "lossvalodv", "params": {"epochs": 1}},
        {"name": "knn", "evaluator": "knnshapley", "params": {"k_neighbors": 5}},
    ],
}


def _config(**changes):
    return parse_config({**BASE, **changes})


def _run(config, out: Path, **kwargs):
    return run_benchmark(config, output_dir=out, backend="serial", progress=False, **kwargs)


def _f1(out: Path, dataset: str = "tiny_clf") -> pd.DataFrame:
    return pd.read_csv(out / "results" / "classification" / dataset / "label_f1_scores.csv")


# ------------------------------------------------------------ 1. exactly the config's cells


def test_report_holds_exactly_the_current_configs_cells(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old = _config()
    _run(old, out)
    # same method name, another parameter: a new cell; the old one must not be averaged in
    new = _config(
        methods=[
            {"name": "lossval", "evaluator": "lossvalodv", "params": {"epochs": 3}},
            {"name": "knn", "evaluator": "knnshapley", "params": {"k_neighbors": 5}},
        ]
    )
    _run(new, out)
    store = ResultStore(out / "store.sqlite").frame()
    assert len(store) == 3
    paths = build_report(new, store_path=out / "store.sqlite", output_dir=out)
    expected = store.set_index("key").loc[[c.key for c in expand(new)], ["method", "f1"]]
    assert (
        _f1(out)["lossval"].tolist() == expected.set_index("method").loc[["lossval"], "f1"].tolist()
    )
    counts = pd.read_csv(paths["tables"] / "detection_f1.csv")
    assert counts["classification / label n"].tolist() == [1, 1]
    text = paths["report"].read_text()
    assert "cells: 2 (2 ok, 0 failed)" in text
    assert "ignored: 1 row(s) of the store" in text


def test_two_configs_share_an_output_dir_without_contamination(tmp_path: Path) -> None:
    out = tmp_path / "out"
    knn5 = _config(name="a", methods=[BASE["methods"][1]])
    knn10 = _config(
        name="b",
        methods=[{"name": "knn", "evaluator": "knnshapley", "params": {"k_neighbors": 10}}],
    )
    _run(knn5, out)
    _run(knn10, out)
    frame = ResultStore(out / "store.sqlite").frame().set_index("key")
    for config in (knn5, knn10):
        build_report(config, store_path=out / "store.sqlite", output_dir=out)
        (key,) = [c.key for c in expand(config)]
        assert _f1(out)["knn"].tolist() == [frame.loc[key, "f1"]]
        assert "ignored: 1 row(s)" in (out / "report.md").read_text()


# ------------------------------------------------------------------ 2. failures are loud


def test_failure_cause_tells_environment_from_method() -> None:
    assert failures.failure_cause("DatasetUnavailableError: dataset 'pol' ...") == "environment"
    assert failures.failure_cause("WorkerDied: the worker process died 3 times") == "environment"
    assert failures.failure_cause("RuntimeError: CUDA out of memory. Tried") == "environment"
    assert failures.failure_cause("ValueError: k must be positive\nTraceback ...") == "method"
    assert failures.failure_cause(None) == "method"


def test_summary_groups_by_cause_with_full_messages() -> None:
    long = "DatasetUnavailableError: not available. Looked in:\n  - here\nTo get it: prefetch"
    tb = f"\n{failures.TRACEBACK_MARK}\n  File x"
    groups = failures.group_failures(
        [("c1", long + tb), ("c2", "ValueError: bad k" + tb), ("c3", long + tb)]
    )
    assert [(g.cause, g.cells) for g in groups] == [
        ("environment", ("c1", "c3")),
        ("method", ("c2",)),
    ]
    text = failures.failures_text(groups, total=5)
    assert text.startswith("3 of 5 cells failed, 2 distinct cause(s)")
    assert "    To get it: prefetch" in text and "Traceback" not in text
    assert "--retry-failed" in text and "the next run retries" in text


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossval_odv.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        timeout=300,
    )


def _write(tmp_path: Path, config: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_environment_failures_exit_nonzero_and_are_retried_by_the_next_run(
    tmp_path: Path, shared_datasets: Path
) -> None:
    out = tmp_path / "out"
    config = {**BASE, "datasets": ["pol"], "plugins": [], "output_dir": str(out)}
    path = _write(tmp_path, config)
    offline = {"LOSSVAL_ODV_DATA": str(tmp_path / "no-data"), "LOSSVAL_ODV_OFFLINE": "1"}
    done = _cli("run", str(path), "--quiet", env=offline)
    assert done.returncode == 1, done.stderr
    assert "2 of 2 cells failed, 1 distinct cause(s)" in done.stderr
    assert "the next run retries these cells by itself" in done.stderr
    assert "To get it: on a machine with internet run" in done.stderr  # the full message
    assert ResultStore(out / "store.sqlite").count() == 0  # not kept as final
    fixed = _cli("run", str(path), "--quiet", env={"LOSSVAL_ODV_DATA": str(shared_datasets)})
    assert fixed.returncode == 0, fixed.stderr
    assert "computed 2 cells (0 failed)" in fixed.stderr


def test_method_errors_are_kept_until_retry_failed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    bad = {"name": "bad", "evaluator": "alwaysfails"}
    config = _config(methods=[BASE["methods"][1], bad])
    first = _run(config, out)
    assert first.computed == 2 and first.failed == 1
    [group] = first.failures
    assert group.cause == "method" and group.message == "ValueError: planted method error"
    again = _run(config, out)
    assert again.computed == 0 and len(again.failures) == 1  # still reported, not recomputed
    retried = _run(config, out, retry_failed=True)
    assert retried.computed == 1


# ------------------------------------------------------------ 3. checks before computing


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"methods": [{"name": "x", "evaluator": "lossvalodv", "params": {"epoch": 1}}]},
         "methods.0.params.epoch: unknown parameter of lossvalodv; it takes: epochs"),
        ({"methods": [{"name": "x", "evaluator": "lossvalodv", "params": {"lr": "fast"}}]},
         "methods.0.params.lr: expected float, got 'fast'"),
        ({"methods": [{"name": "x", "evaluator": "lossvalodv", "params": {"device": "banana"}}]},
         "methods.0.params.device: 'banana' is not a device"),
        ({"methods": [{"name": "x", "evaluator": "knnshapley", "params": {"k_neighbors": -5}}]},
         "methods.0.params.k_neighbors: must be at least 1, got -5"),
        ({"methods": [{"name": "x", "evaluator": "tracin", "params": {"mode": "both"}}]},
         "methods.0.params.mode: expected 'self' or 'validation', got 'both'"),
        ({"methods": [{"name": "x", "evaluator": "knnshapley", "params": {"random_state": 1}}]},
         "methods.0.params.random_state: set by the benchmark"),
        ({"device": "banana"}, "device: 'banana' is not a device"),
        ({"noise_rates": [0.7]}, "noise rate 0.7 must be strictly between 0 and 0.5"),
        ({"datasets": ["tiny_clf", "tiny_clf"]}, "datasets: listed more than once: ['tiny_clf']"),
        ({"noise_rates": [0.2, 0.2]}, "noise_rates: listed more than once: [0.2]"),
        ({"methods": [BASE["methods"][1], {**BASE["methods"][1], "name": "knn2"}]},
         "methods.1: 'knn2' repeats methods.0 ('knn')"),
    ],
)  # fmt: skip
def test_config_checks_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({**BASE, **change}, source="bad.yaml")
    assert message in str(error.value)


def test_valid_params_pass_including_int_for_float() -> None:
    config = _config(
        methods=[
            {"name": "lv", "evaluator": "lossvalodv", "params": {"lr": 1, "n_linear": 2}},
            {"name": "oob", "evaluator": "dataoob", "params": {"proportion": 0.5}},
            {"name": "lava", "evaluator": "lavaevaluator", "params": {"device": "cpu"}},
        ]
    )
    assert len(config.methods) == 3


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(BASE) + "runs: 3\n")
    with pytest.raises(ConfigError, match="duplicate key 'runs'"):
        load_config(path)


def test_split_larger_than_dataset_is_refused_before_computing(tmp_path: Path) -> None:
    config = _config(split={"train": 200, "valid": 20, "test": 100})
    with pytest.raises(ConfigError, match="= 320 points, but dataset 'tiny_clf' has 240"):
        _run(config, tmp_path / "out")
    assert not (tmp_path / "out" / "store.sqlite").exists()


def test_unwritable_output_dir_is_refused_before_computing(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="output_dir: output directory .* is not writable"):
        _run(_config(), locked / "out")


def test_output_dir_that_is_a_file_is_refused_before_computing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="output_dir: output directory .* is not writable"):
        _run(_config(), blocker / "out")


# ----------------------------------------------------------------------------- 4. the store


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is an empty file, not a results store"),
        (b"hello, not a database at all", "is not a SQLite database"),
    ],
)
def test_unusable_store_is_refused_and_left_untouched(
    tmp_path: Path, content: bytes, message: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "store.sqlite").write_bytes(content)
    with pytest.raises(StoreError, match=message):
        _run(_config(), out)
    assert (out / "store.sqlite").read_bytes() == content


def test_corrupt_store_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(_config(), out)
    path = out / "store.sqlite"
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the first page's b-tree header
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt"):
        _run(_config(), out)
    assert path.read_bytes() == bytes(data)


def test_store_of_another_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "out" / "store.sqlite"
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE cells (key TEXT PRIMARY KEY, f1 REAL)")
    with pytest.raises(StoreError, match="schema version 0 .* reads version 1"):
        _run(_config(), path.parent)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(StoreError, match="schema version 7"):
        ResultStore(path).frame()


def test_new_store_records_its_schema_version(tmp_path: Path) -> None:
    import sqlite3

    _run(_config(), tmp_path)
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1


@pytest.mark.slow
def test_second_driver_on_the_same_store_is_refused(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "store.sqlite")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from lossval_odv.bench.store import ResultStore\n"
            f"with ResultStore({str(store.path)!r}).exclusive():\n"
            "    print('locked', flush=True); time.sleep(60)",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            StoreLockedError, match=f"another lossval-odv run \\(pid {holder.pid}\\)"
        ):
            _run(_config(), tmp_path)
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # a killed holder releases the lock
        try:
            with store.exclusive():
                break
        except StoreLockedError:
            time.sleep(0.1)
    else:
        pytest.fail("the lock of a killed driver was not released")


def test_cli_report_of_a_config_without_cells_in_the_store(tmp_path: Path, capsys) -> None:
    from lossval_odv.cli import main as cli_main

    out = tmp_path / "out"
    _run(_config(), out)
    other = {**BASE, "methods": [{"name": "knn", "evaluator": "knnshapley"}]}
    path = _write(tmp_path, {**other, "output_dir": str(out)})
    assert cli_main(["report", str(path)]) == 2
    assert "holds no cells of config 'trust' (2 other rows ignored)" in capsys.readouterr().err


def test_cli_run_with_a_method_error_exits_1_and_says_how_to_retry(tmp_path: Path, capsys) -> None:
    from lossval_odv.cli import main as cli_main

    bad = {"name": "bad", "evaluator": "alwaysfails"}
    path = _write(tmp_path, {**BASE, "methods": [bad], "output_dir": str(tmp_path / "out")})
    assert cli_main(["run", str(path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "1 of 1 cells failed" in err and "rerun with --retry-failed" in err
    assert "    ValueError: planted method error" in err
    assert "planted method error" in (tmp_path / "out" / "report.md").read_text()
