"""Backends: same results serially, in the local pool and on a real local Ray cluster;
worker deaths retried (bounded); shard-and-collect equals a single run; driver resume.

The grid's datasets and the worker-killing evaluator come from the plugin module
``tests.tiny_datasets``, which every worker imports (config key ``plugins``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import tests.tiny_datasets  # noqa: F401  (tiny datasets, KillWorker in this process)
from lossval_odv.bench.backends import resolve_backend, usable_cores
from lossval_odv.bench.backends.ray_backend import RayBackend
from lossval_odv.bench.config import parse_config
from lossval_odv.bench.grid import expand
from lossval_odv.bench.runner import RunSummary, run_benchmark
from lossval_odv.bench.store import ResultStore
from lossval_odv.cli import main as cli_main
from tests.helpers import PLUGIN, grid_config

REPO = Path(__file__).resolve().parents[1]


def kill_config(tmp: Path, **overrides) -> dict:
    """One run of tiny_clf: an ordinary cell, one that kills its worker once, one always."""
    return grid_config(
        "killgrid",
        datasets=["tiny_clf"],
        runs=1,
        max_retries=1,
        methods=[
            {"name": "knn", "evaluator": "knnshapley"},
            {"name": "once", "evaluator": "killworker", "params": {"marker": str(tmp / "once")}},
            {
                "name": "always",
                "evaluator": "killworker",
                "params": {"marker": str(tmp / "always"), "always": True},
            },
        ],
        **overrides,
    )


def rows(store_path: Path) -> dict[str, dict]:
    """Every stored row by key, with its values decoded; asserts one row per key."""
    frame = ResultStore(store_path).frame(with_curves=True, with_values=True)
    assert frame["key"].is_unique
    return {row["key"]: row for row in frame.to_dict("records")}


def assert_same_results(a: dict[str, dict], b: dict[str, dict]) -> None:
    """Same keys; per key the same status, metrics, noisy points, values and curves.

    Exact equality, no tolerance: every backend runs the same pure compute_task on
    CPU with the cell's own seeds, so the float results are bit-identical.
    """
    assert sorted(a) == sorted(b)
    for key, row in a.items():
        other = b[key]
        assert row["status"] == other["status"] == "ok", (row["error"], other["error"])
        for column in ("f1", "auroc", "auprc", "curves"):
            assert row[column] == other[column], (row["method"], column)
        np.testing.assert_array_equal(row["noisy"], other["noisy"])
        np.testing.assert_array_equal(row["values"], other["values"])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """In-process (serial) cells on 1 thread, as in the pool: 2 threads on 2 cores are
    several times slower for these tiny tensors (the results are the same either way)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ.setdefault("TQDM_DISABLE", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster with 2 CPUs, started through RayBackend's own path."""
    ray = pytest.importorskip("ray")
    backend = RayBackend(num_cpus=2)
    started = backend._connect()
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("serial")
    summary = run_benchmark(
        parse_config(grid_config()), output_dir=out, backend="serial", progress=False
    )
    assert (summary.total, summary.computed, summary.failed) == (8, 8, 0)
    return rows(summary.store)


@pytest.mark.slow
def test_local_pool_equals_serial(serial_run, tmp_path):
    summary = run_benchmark(
        parse_config(grid_config()), output_dir=tmp_path, backend="local", n_jobs=2,
        progress=False,
    )  # fmt: skip
    assert (summary.computed, summary.failed) == (8, 0)
    assert_same_results(serial_run, rows(summary.store))


@pytest.mark.slow
def test_ray_equals_serial(serial_run, ray_cluster, tmp_path):
    summary = run_benchmark(
        parse_config(grid_config()), output_dir=tmp_path, backend="ray", progress=False
    )
    assert (summary.computed, summary.failed) == (8, 0)
    assert_same_results(serial_run, rows(summary.store))
    assert ray_cluster.is_initialized()  # a cluster it did not start is left running


def check_killed_workers(summary: RunSummary, tmp: Path) -> None:
    by_method = {row["method"]: row for row in rows(summary.store).values()}
    # each cell stored at most once; the cell that always kills its worker is an
    # environment failure: reported, not kept, so the next run tries it again
    assert sorted(by_method) == ["knn", "once"]
    assert (tmp / "once").exists()  # the first attempt did die
    assert by_method["once"]["status"] == "ok"  # ... and the retry finished
    assert by_method["knn"]["status"] == "ok"
    [failure] = summary.failures
    assert failure.cause == "environment" and failure.cells[0].endswith("/always")
    assert "WorkerDied" in failure.message or "Crash" in failure.message


@pytest.mark.slow
def test_local_pool_retries_a_killed_worker(tmp_path):
    summary = run_benchmark(
        parse_config(kill_config(tmp_path)), output_dir=tmp_path / "out", backend="local",
        n_jobs=2, progress=False,
    )  # fmt: skip
    assert (summary.computed, summary.failed) == (3, 1)
    check_killed_workers(summary, tmp_path)


def test_local_pool_survives_a_pool_broken_between_two_submits():
    """A worker can die after wait() returned and before the next submit, which then
    raises BrokenProcessPool itself: the task goes to a fresh pool, nothing is lost."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from lossval_odv.bench.backends.local import LocalPoolBackend

    class BreaksOnSecondSubmit(ThreadPoolExecutor):
        submits = 0

        def submit(self, fn, /, *args, **kwargs):
            type(self).submits += 1
            if type(self).submits == 2:
                raise BrokenProcessPool("a worker died meanwhile")
            return super().submit(fn, *args, **kwargs)

    cells = [c for c in expand(parse_config(grid_config())) if c.evaluator == "knnshapley"]
    backend = LocalPoolBackend(n_jobs=1)
    backend._pool = lambda workers: BreaksOnSecondSubmit(max_workers=workers)
    results = [r for batch in backend.run([(cell,) for cell in cells]) for r in batch]
    assert sorted(r.key for r in results) == sorted(c.key for c in cells)
    assert all(r.status == "ok" for r in results)
    assert BreaksOnSecondSubmit.submits == len(cells) + 1


@pytest.mark.slow
def test_ray_retries_a_killed_worker(ray_cluster, tmp_path):
    summary = run_benchmark(
        parse_config(kill_config(tmp_path)), output_dir=tmp_path / "out", backend="ray",
        progress=False,
    )  # fmt: skip
    assert (summary.computed, summary.failed) == (3, 1)
    check_killed_workers(summary, tmp_path)


def test_shards_then_collect_equal_a_single_run(serial_run, tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(grid_config()))
    out = tmp_path / "out"
    keys = set()
    for index in range(2):
        argv = ["run", str(config_path), "--output-dir", str(out), "--backend", "serial"]
        assert cli_main([*argv, "--shard", f"{index}/2", "--quiet"]) == 0
        shard_keys = set(rows(out / f"store.shard{index}of2.sqlite"))
        assert shard_keys and not shard_keys & keys  # disjoint, non-empty slices
        keys |= shard_keys
    assert cli_main(["collect", str(config_path), "--output-dir", str(out)]) == 0
    assert_same_results(serial_run, rows(out / "store.sqlite"))
    # collecting again adds nothing
    assert cli_main(["collect", str(config_path), "--output-dir", str(out)]) == 0
    assert len(rows(out / "store.sqlite")) == 8


def _count(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


@pytest.mark.slow
def test_killed_driver_resumes_without_loss_or_duplicates(tmp_path):
    """SIGKILL the whole CLI job (driver and pool) once some cells are stored; the
    rerun keeps every stored row and computes only the rest.

    The job gets its plugin from $LOSSVAL_ODV_PLUGINS, not from the config: the CLI
    process and its spawned pool workers import it with the package.
    """
    config = grid_config("resume", runs=3, batch_lossval=False)
    del config["plugins"]
    config_path = tmp_path / "resume.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    store = out / "store.sqlite"
    argv = [sys.executable, "-m", "lossval_odv.cli", "run", str(config_path)]
    argv += ["--output-dir", str(out), "--backend", "local", "--n-jobs", "2", "--no-report"]
    env = dict(os.environ, LOSSVAL_ODV_PLUGINS=PLUGIN)
    job = subprocess.Popen(
        argv, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _count(store) < 3 and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.1)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)  # its own session: the driver and its pool
        job.wait()
    before = rows(store)
    assert 3 <= len(before) < 12, "the job should have been killed mid-run"
    # resuming does not depend on the backend; serially here saves a pool start-up
    summary = run_benchmark(parse_config(config), output_dir=out, backend="serial", progress=False)
    assert summary.skipped == len(before) and summary.computed == 12 - len(before)
    after = rows(store)
    assert len(after) == 12 and all(r["status"] == "ok" for r in after.values())
    for key, row in before.items():  # finished rows kept as they were
        assert after[key]["finished_at"] == row["finished_at"]


def test_auto_backend_and_gpu_shares(monkeypatch):
    assert resolve_backend("serial", None) == ("serial", usable_cores())
    monkeypatch.setattr("lossval_odv.bench.backends.usable_cores", lambda: 1)
    assert resolve_backend("auto", None) == ("serial", 1)
    monkeypatch.setattr("lossval_odv.bench.backends.usable_cores", lambda: 4)
    assert resolve_backend(None, None) == ("local", 4)
    assert resolve_backend("auto", 1) == ("serial", 1)
    assert parse_config(grid_config()).backend == "auto"

    cells = expand(parse_config(grid_config(device="auto")))
    lossval = next(c for c in cells if c.evaluator == "lossvalodv")
    knn = next(c for c in cells if c.evaluator == "knnshapley")
    auto = RayBackend()
    assert auto.gpu_share((lossval,), cluster_gpus=0) == 0.0  # no GPUs: CPU only
    assert auto.gpu_share((lossval,), cluster_gpus=1) == 0.25  # 4 LossVal runs per GPU
    assert auto.gpu_share((knn,), cluster_gpus=1) == 0.5
    assert RayBackend(gpus_per_task=0.1).gpu_share((knn,), cluster_gpus=2) == 0.1
    cpu_cells = expand(parse_config(grid_config()))  # device: cpu
    assert auto.gpu_share((cpu_cells[0],), cluster_gpus=1) == 0.0
