"""Run tasks in a pool of worker processes on this machine."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from lossval_odv.bench.cell import failed_result
from lossval_odv.bench.records import CellResult
from lossval_odv.bench.tasks import Task, compute_task

ORPHAN_CHECK_SECONDS = 2.0


def _exit_when_orphaned(driver_pid: int) -> None:
    """Exit this worker once its driver is gone (e.g. killed with SIGKILL, which leaves
    no chance to shut the pool down): an orphan would otherwise wait forever on its pipe,
    holding its memory."""
    while os.getppid() == driver_pid:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(1)


def _worker_init(plugins: tuple[str, ...], driver_pid: int) -> None:
    import torch

    from lossval_odv.plugins import load_plugins

    threading.Thread(target=_exit_when_orphaned, args=(driver_pid,), daemon=True).start()
    # n_jobs processes share the cores: one intra-op thread each avoids oversubscription
    torch.set_num_threads(1)
    load_plugins(plugins)


def _failed(task: Task, exc: BaseException) -> list[CellResult]:
    """Failed results for a task whose computation raised outside its cells' guard."""
    return [failed_result(cell, f"{type(exc).__name__}: {exc}") for cell in task]


class LocalPoolBackend:
    """A process pool of ``n_jobs`` workers; a task whose worker dies is retried.

    Workers are started with ``spawn`` (no state forked from the driver, the same on
    Linux and macOS), and import the ``plugins`` modules before any task.

    A worker killed mid-task (OOM, signal) breaks the whole pool, and every task in
    flight fails with it, so the culprit is unknown. The pool is rebuilt and the tasks
    that were in flight ("suspects") are rerun one at a time in a single-worker pool:
    there a death is the task's own. A task that has killed its worker more than
    ``max_retries`` times is reported as failed with the reason; tasks that merely
    shared the broken pool are never penalised.
    """

    def __init__(
        self, *, n_jobs: int = 1, max_retries: int = 2, plugins: Iterable[str] = ()
    ) -> None:
        self.n_jobs = n_jobs if n_jobs > 0 else (os.cpu_count() or 1)
        self.max_retries = max_retries
        self.plugins = tuple(plugins)
        self._context = multiprocessing.get_context("spawn")

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=self._context,
            initializer=_worker_init,
            initargs=(self.plugins, os.getpid()),
        )

    def run(self, tasks: list[Task]) -> Iterator[list[CellResult]]:
        deaths = dict.fromkeys(range(len(tasks)), 0)
        pending = deque(range(len(tasks)))
        suspects: list[int] = []
        while pending or suspects:
            if suspects:
                yield from self._isolate(tasks, suspects, deaths)
                suspects = []
                continue
            pool = self._pool(min(self.n_jobs, len(pending)))
            try:
                # at most n_jobs tasks in flight, so a broken pool takes only those along
                futures: dict[Future, int] = {}
                while pending or futures:
                    while pending and len(futures) < self.n_jobs:
                        try:
                            future = pool.submit(compute_task, tasks[pending[0]])
                        except BrokenProcessPool:  # a worker died since the last wait()
                            break  # its task's future reports it below
                        futures[future] = pending.popleft()
                    if not futures:  # the pool broke with nothing in flight: a new one
                        break
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    broken = False
                    for future in done:
                        index = futures.pop(future)
                        try:
                            yield future.result()
                        except BrokenProcessPool:
                            broken = True
                            suspects.append(index)
                        except Exception as exc:  # e.g. a result that cannot be pickled
                            yield _failed(tasks[index], exc)
                    if broken:
                        # the others in flight fail too: all are suspects
                        for future, index in futures.items():
                            if future.done() and future.exception() is None:
                                yield future.result()
                            else:
                                suspects.append(index)
                        if len(suspects) == 1:  # it was alone in the pool: its own death
                            deaths[suspects[0]] += 1
                        break
            finally:
                pool.shutdown(wait=False, cancel_futures=True)

    def _isolate(
        self, tasks: list[Task], suspects: list[int], deaths: dict[int, int]
    ) -> Iterator[list[CellResult]]:
        """Rerun each suspect alone until it finishes or has died too often."""
        queue = sorted(suspects)
        pool = None
        try:
            while queue:
                index = queue[0]
                if deaths[index] > self.max_retries:
                    queue.pop(0)
                    reason = (
                        f"WorkerDied: the worker process died {deaths[index]} times "
                        f"computing this task (max_retries={self.max_retries})"
                    )
                    yield [failed_result(cell, reason) for cell in tasks[index]]
                    continue
                if pool is None:
                    pool = self._pool(1)
                try:
                    results = pool.submit(compute_task, tasks[index]).result()
                except BrokenProcessPool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = None
                    deaths[index] += 1
                    continue
                except Exception as exc:
                    results = _failed(tasks[index], exc)
                queue.pop(0)
                yield results
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
