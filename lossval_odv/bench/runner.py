"""The driver: config -> cells -> tasks -> backend -> store, with progress and resume."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from lossval_odv import compat
from lossval_odv.bench.backends import make_backend, resolve_backend
from lossval_odv.bench.config import BenchmarkConfig, ConfigError
from lossval_odv.bench.config_checks import output_dir_problem, split_problems
from lossval_odv.bench.failures import (
    ENVIRONMENT,
    FailureGroup,
    error_message,
    failure_cause,
    failures_text,
    group_failures,
)
from lossval_odv.bench.grid import Cell, expand, shard
from lossval_odv.bench.model_checks import model_checks_of, run_check
from lossval_odv.bench.store import ResultStore
from lossval_odv.bench.tasks import plan_tasks
from lossval_odv.core.runtime import intra_op_threads
from lossval_odv.plugins import all_plugins

STORE_NAME = "store.sqlite"


@dataclass(frozen=True)
class RunSummary:
    store: Path
    total: int
    skipped: int
    computed: int
    failed: int  # of the computed cells
    seconds: float
    failures: tuple[FailureGroup, ...] = ()  # every failed cell of the config, by cause
    failed_checks: tuple[str, ...] = ()  # checks of the prediction model that raised

    @property
    def ok(self) -> bool:
        return not self.failures and not self.failed_checks


def run_benchmark(
    config: BenchmarkConfig,
    *,
    output_dir: str | Path | None = None,
    backend: str | None = None,
    n_jobs: int | None = None,
    shard_spec: tuple[int, int] | None = None,
    methods: Sequence[str] | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    ray_address: str | None = None,
) -> RunSummary:
    """Compute every cell of ``config`` that the store does not hold yet.

    The driver alone writes the store, one row per finished cell, as results arrive;
    stopping it at any point loses only the cells in flight. Environment failures are not
    stored (the next run retries them); method errors are, until ``retry_failed``.
    ``methods`` (names in the config) computes only those methods' cells: a piece of a
    long config, whose cells the full config finds done later.

    Raises
    ------
    ConfigError
        The output directory is not writable or a dataset is smaller than the split.
    StoreError
        The store cannot be used, or another driver is writing it.
    """
    start = time.perf_counter()
    out = config.resolved_output_dir(output_dir)
    store_name = (
        STORE_NAME if shard_spec is None else f"store.shard{shard_spec[0]}of{shard_spec[1]}.sqlite"
    )
    store = ResultStore(out / store_name)
    store.verify()
    cells = expand(config)
    if methods is not None:
        unknown = sorted(set(methods) - {m.name for m in config.methods})
        if unknown:
            names = ", ".join(m.name for m in config.methods)
            raise ConfigError(f"--methods: {unknown} not in config {config.name} ({names})")
        cells = [c for c in cells if c.method in set(methods)]
    if shard_spec is not None:
        cells = shard(cells, *shard_spec, keep_groups=config.batch_lossval)
    problems = []
    if retry_failed or {c.key for c in cells} - store.finished_keys():
        # loads the datasets: only when there is work
        split = (config.split.train, config.split.valid, config.split.test)
        problems += split_problems(
            datasets=config.dataset_names, split=split, data_dir=config.data_dir
        )
    problem = output_dir_problem(out)
    if problem:
        problems.append(f"output_dir: {problem}")
    if problems:
        lines = [f"invalid config {config.name}:", *(f"  {p}" for p in problems)]
        raise ConfigError("\n".join(lines))
    with store.exclusive():
        return _run_locked(
            config,
            cells,
            store,
            start,
            backend=backend,
            n_jobs=n_jobs,
            retry_failed=retry_failed,
            progress=progress,
            ray_address=ray_address,
        )


def _retry_stored_failures(store: ResultStore, cells: list[Cell], *, all_causes: bool) -> int:
    """Forget the stored failures of ``cells`` that a rerun should compute again: those
    the environment caused (stores written before they were told apart keep them), or
    all with ``all_causes`` (``--retry-failed``)."""
    errors = store.failed_errors(c.key for c in cells)
    retry = [k for k, e in errors.items() if all_causes or failure_cause(e) == ENVIRONMENT]
    return store.forget_failed(retry)


def _run_locked(
    config: BenchmarkConfig,
    cells: list[Cell],
    store: ResultStore,
    start: float,
    *,
    backend: str | None,
    n_jobs: int | None,
    retry_failed: bool,
    progress: bool,
    ray_address: str | None,
) -> RunSummary:
    _retry_stored_failures(store, cells, all_causes=retry_failed)
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
    not_kept: dict[str, str | None] = {}  # environment failures of this run, by key
    with tqdm(total=len(todo), unit="cell", disable=not progress, dynamic_ncols=True) as bar:
        for results in engine.run(tasks):
            for result in results:
                computed += 1
                if result.status != "ok":
                    failed += 1
                    first_line = error_message(result.error).splitlines()[0]
                    tqdm.write(f"failed: {result.cell.describe()}: {first_line}", file=sys.stderr)
                if result.status != "ok" and failure_cause(result.error) == ENVIRONMENT:
                    not_kept[result.key] = result.error
                else:
                    store.add(result, config=config.name)
                bar.set_postfix_str(result.cell.describe(), refresh=False)
                bar.update()
    failed_checks = _check_models(config, cells, store, progress=progress)
    errors = {**store.failed_errors(c.key for c in cells), **not_kept}
    groups = group_failures((c.describe(), errors[c.key]) for c in cells if c.key in errors)
    summary = RunSummary(
        store=store.path,
        total=len(cells),
        skipped=len(cells) - len(todo),
        computed=computed,
        failed=failed,
        seconds=time.perf_counter() - start,
        failures=tuple(groups),
        failed_checks=tuple(failed_checks),
    )
    print(
        f"{config.name}: computed {computed} cells ({failed} failed) in {summary.seconds:.1f} s; "
        f"results in {store.path}",
        file=sys.stderr,
    )
    if groups:
        print(failures_text(groups, len(cells)), file=sys.stderr)
    return summary


def _check_models(
    config: BenchmarkConfig, cells: list[Cell], store: ResultStore, *, progress: bool
) -> list[str]:
    """Store the missing checks of the baselines' prediction model for ``cells``' splits
    (in this process: one fit each); returns ``split: error`` of those that raised."""
    done = store.model_check_keys()
    todo = [check for check in model_checks_of(cells) if check.key not in done]
    if not todo:
        return []
    failed = []
    with tqdm(
        todo, unit="check", disable=not progress, dynamic_ncols=True, desc="prediction model"
    ) as bar:
        for check in bar:
            try:  # one thread, as in the local workers: the same figures wherever it runs
                with compat.quiet_upstream(), intra_op_threads(1):
                    diagnosis = run_check(check)
            except Exception as error:  # reported and counted; the cells are kept
                failed.append(f"{check.describe()}: {type(error).__name__}: {error}")
                tqdm.write(f"check failed: {failed[-1]}", file=sys.stderr)
                continue
            store.add_model_check(check, diagnosis, config=config.name)
    return failed
