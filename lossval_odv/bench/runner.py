"""The driver: config -> cells -> tasks -> backend -> store, with progress and resume."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from lossval_odv.bench.backends import make_backend, resolve_backend
from lossval_odv.bench.config import BenchmarkConfig
from lossval_odv.bench.grid import expand, shard
from lossval_odv.bench.store import ResultStore
from lossval_odv.bench.tasks import plan_tasks
from lossval_odv.plugins import all_plugins

STORE_NAME = "store.sqlite"


@dataclass(frozen=True)
class RunSummary:
    store: Path
    total: int
    skipped: int
    computed: int
    failed: int
    seconds: float


def run_benchmark(
    config: BenchmarkConfig,
    *,
    output_dir: str | Path | None = None,
    backend: str | None = None,
    n_jobs: int | None = None,
    shard_spec: tuple[int, int] | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    ray_address: str | None = None,
) -> RunSummary:
    """Compute every cell of ``config`` that the store does not hold yet.

    The driver alone writes the store, one row per finished cell, as results arrive;
    stopping it at any point loses only the cells in flight.
    """
    start = time.perf_counter()
    out = config.resolved_output_dir(output_dir)
    store_name = (
        STORE_NAME if shard_spec is None else f"store.shard{shard_spec[0]}of{shard_spec[1]}.sqlite"
    )
    store = ResultStore(out / store_name)
    if retry_failed:
        store.forget_failed()

    cells = expand(config)
    if shard_spec is not None:
        cells = shard(cells, *shard_spec, keep_groups=config.batch_lossval)
    done = store.finished_keys()
    todo = [c for c in cells if c.key not in done]
    tasks = plan_tasks(
        todo, batch_lossval=config.batch_lossval, max_batch_runs=config.max_batch_runs
    )
    backend_name, jobs = resolve_backend(backend or config.backend, n_jobs or config.n_jobs)
    engine = make_backend(
        backend_name,
        n_jobs=jobs,
        max_retries=config.max_retries,
        ray_address=ray_address or config.ray_address,
        gpus_per_task=config.gpus_per_task,
        plugins=all_plugins(config.plugins),
    )
    if backend_name == "local":
        backend_name = f"local, {jobs} workers"
    print(
        f"{config.name}: {len(cells)} cells, {len(cells) - len(todo)} already in {store.path}, "
        f"{len(todo)} to compute ({backend_name} backend)",
        file=sys.stderr,
    )
    failed = computed = 0
    with tqdm(total=len(todo), unit="cell", disable=not progress, dynamic_ncols=True) as bar:
        for results in engine.run(tasks):
            for result in results:
                store.add(result, config=config.name)
                computed += 1
                if result.status != "ok":
                    failed += 1
                    first_line = (result.error or "").splitlines()[0] if result.error else ""
                    tqdm.write(f"failed: {result.cell.describe()}: {first_line}", file=sys.stderr)
                bar.set_postfix_str(result.cell.describe(), refresh=False)
                bar.update()
    summary = RunSummary(
        store=store.path,
        total=len(cells),
        skipped=len(cells) - len(todo),
        computed=computed,
        failed=failed,
        seconds=time.perf_counter() - start,
    )
    print(
        f"{config.name}: computed {computed} cells ({failed} failed) in {summary.seconds:.1f} s; "
        f"results in {store.path}",
        file=sys.stderr,
    )
    return summary
