"""The benchmark runner end to end: config -> store -> exports; crash and resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lossval_odv.bench.config import ConfigError, load_config, parse_config
from lossval_odv.bench.grid import expand, shard
from lossval_odv.bench.store import ResultStore

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "name": "tiny",
    "datasets": ["pol", "kin8nm"],
    "noise_types": ["label"],
    "noise_rates": [0.2],
    "runs": 1,
    "split": {"train": 200, "valid": 40, "test": 200},
    "methods": [
        {"name": "lossval_5", "evaluator": "lossvalodv", "params": {"epochs": 5}},
        {"name": "knn_shapley", "evaluator": "knnshapley", "params": {"k_neighbors": 40}},
    ],
}


def _write(tmp_path: Path, config: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def _cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossval_odv.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
        **kwargs,
    )


def _env(data_dir: Path) -> dict:
    return {**os.environ, "LOSSVAL_ODV_DATA": str(data_dir), "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_tiny_config_end_to_end(tmp_path, shared_datasets):
    config = _write(tmp_path, {**TINY, "output_dir": str(tmp_path / "out")})
    done = _cli("run", str(config), "--quiet", env=_env(shared_datasets))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    frame = ResultStore(out / "store.sqlite").frame(with_curves=True, with_values=True)
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}, frame[["method", "error"]]
    assert {len(v) for v in frame["values"]} == {200}
    assert all(len(c["removal_paper"]["axis"]) == 20 for c in frame["curves"])
    assert (out / "report.md").is_file()
    assert (out / "results" / "classification" / "pol" / "label_f1_scores.csv").is_file()
    assert any((out / "figures").glob("*.png"))
    # a second run finds everything done and computes nothing
    again = _cli("run", str(config), "--quiet", "--no-report", env=_env(shared_datasets))
    assert again.returncode == 0 and "computed 0 cells" in again.stderr


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.slow
def test_sigkill_mid_grid_then_resume_loses_and_duplicates_nothing(tmp_path, shared_datasets):
    config = {
        **TINY,
        "noise_rates": [0.1, 0.2],
        "runs": 2,
        "methods": [{"name": "lossval_5", "evaluator": "lossvalodv", "params": {"epochs": 5}}],
        # four tasks of two batched cells each: two are in flight at once on the two workers,
        # so the kill lands while the second pair still runs (one group per dataset would
        # let both groups, all 8 cells, finish together before the kill)
        "max_batch_runs": 2,
        "output_dir": str(tmp_path / "out"),
    }
    path = _write(tmp_path, config)
    total = len(expand(load_config(path)))
    store = ResultStore(tmp_path / "out" / "store.sqlite")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossval_odv.cli", "run", str(path), "--quiet", "--no-report"],
        cwd=REPO,
        env=_env(shared_datasets),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while store.count() < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = store.frame().set_index("key")["finished_at"]
    assert 2 <= len(before) < total, "the kill must land mid-grid"
    # the orphaned pool workers notice and exit (they would otherwise linger forever)
    assert workers, "the local pool should have started workers"
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]

    resumed = _cli("run", str(path), "--quiet", "--no-report", env=_env(shared_datasets))
    assert resumed.returncode == 0, resumed.stderr
    assert f"computed {total - len(before)} cells" in resumed.stderr
    after = store.frame().set_index("key")
    assert len(after) == total
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(DISTINCT key) FROM cells").fetchone()[0] == total
    # finished cells were not recomputed
    assert after.loc[before.index, "finished_at"].tolist() == before.tolist()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "colour: unknown key"),
        ({"noise_types": ["label", "salt"]}, "noise_types.1"),
        ({"noise_rates": [1.5]}, "noise_rates: Value error, noise rate 1.5"),
        ({"datasets": ["mnist2"]}, "unknown dataset(s) ['mnist2']"),
        ({"methods": [{"name": "x", "evaluator": "nosuch"}]}, "unknown evaluator 'nosuch'"),
        ({"methods": [{"name": "x", "evaluator": "knnshapley", "budget": 3}]}, "methods.0.budget"),
        ({"runs": 0}, "runs: Input should be greater than or equal to 1"),
        ({"backend": "spark"}, "backend"),
    ],
)
def test_malformed_configs_name_the_key(change, message):
    with pytest.raises(ConfigError) as error:
        parse_config({**TINY, **change}, source="bad.yaml")
    assert message in str(error.value)


@pytest.mark.slow
def test_cli_refuses_bad_config_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("name: [unclosed\n")
    done = _cli("run", str(bad_yaml), "--output-dir", str(out))
    assert done.returncode == 2 and "not valid YAML" in done.stderr
    wrong = _write(tmp_path, {**TINY, "noise_types": ["salt"]}, "wrong.yaml")
    done = _cli("run", str(wrong), "--output-dir", str(out))
    assert done.returncode == 2 and "noise_types.0" in done.stderr
    missing = _cli("run", str(tmp_path / "nope.yaml"), "--output-dir", str(out))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not out.exists()


def test_grid_seeds_are_shared_within_a_run_and_shards_partition_the_grid():
    config = parse_config({**TINY, "runs": 3, "noise_rates": [0.1, 0.2]})
    cells = expand(config)
    assert len(cells) == 2 * 1 * 2 * 3 * 2
    by_run: dict = {}
    for cell in cells:
        by_run.setdefault((cell.dataset, cell.noise, cell.rate, cell.run), set()).add(
            cell.data_seed
        )
    assert all(len(seeds) == 1 for seeds in by_run.values())
    assert len({c.data_seed for c in cells}) == len(by_run)
    assert len({c.key for c in cells}) == len(cells)
    assert [c.key for c in expand(config)] == [c.key for c in cells]  # deterministic
    parts = [shard(cells, i, 3) for i in range(3)]
    assert sorted(c.key for p in parts for c in p) == sorted(c.key for c in cells)
