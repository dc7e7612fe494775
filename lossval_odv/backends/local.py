"""Run tasks in a pool of worker processes on this machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from lossval_odv.cell import CellResult, failed_result
from lossval_odv.tasks import Task, compute_task


def _worker_init() -> None:
    import torch

    # n_jobs processes share the cores: one intra-op thread each avoids oversubscription
    torch.set_num_threads(1)


class LocalPoolBackend:
    """A process pool of ``n_jobs`` workers; a task whose worker dies is retried.

    A worker killed mid-task (OOM, signal) breaks the pool: the pool is rebuilt and the
    unfinished tasks resubmitted; a task that has killed its worker more than
    ``max_retries`` times is reported as failed with the reason.
    """

    def __init__(self, *, n_jobs: int = 1, max_retries: int = 2) -> None:
        self.n_jobs = n_jobs if n_jobs > 0 else (os.cpu_count() or 1)
        self.max_retries = max_retries

    def run(self, tasks: list[Task]) -> Iterator[list[CellResult]]:
        attempts = {i: 0 for i in range(len(tasks))}
        pending = list(range(len(tasks)))
        while pending:
            with ProcessPoolExecutor(max_workers=self.n_jobs, initializer=_worker_init) as pool:
                futures: dict[Future, int] = {
                    pool.submit(compute_task, tasks[i]): i for i in pending
                }
                pending = []
                broken = False
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = futures.pop(future)
                        try:
                            yield future.result()
                        except BrokenProcessPool as exc:
                            broken = True
                            attempts[index] += 1
                            if attempts[index] > self.max_retries:
                                reason = f"worker died {attempts[index]} times: {exc}"
                                yield [failed_result(cell, reason) for cell in tasks[index]]
                            else:
                                pending.append(index)
                    if broken:
                        # every other in-flight future fails too; resubmit them unpenalised
                        for future, index in futures.items():
                            if future.done() and future.exception() is None:
                                yield future.result()
                            else:
                                pending.append(index)
                        futures = {}
                        pool.shutdown(wait=False, cancel_futures=True)
