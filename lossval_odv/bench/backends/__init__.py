"""Backends run tasks and hand results back to the driver, which alone writes the store.

- ``serial``: in this process, one task after another.
- ``local``: a pool of worker processes on this machine (``n_jobs``).
- ``ray``: tasks on a Ray cluster (see :mod:`lossval_odv.bench.backends.ray_backend`).
- ``auto`` (the default): ``local`` with one worker per usable core when more than one
  core is usable, else ``serial``.

Every backend runs the same pure task function, :func:`lossval_odv.bench.tasks.compute_task`,
so the same cells give the same results whichever backend computes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Protocol

from lossval_odv.bench import BACKEND_NAMES
from lossval_odv.bench.records import CellResult
from lossval_odv.bench.tasks import Task


class Backend(Protocol):
    """Runs tasks; yields each task's results as soon as it finishes."""

    def run(self, tasks: list[Task]) -> Iterator[list[CellResult]]: ...


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_backend(name: str | None, n_jobs: int | None) -> tuple[str, int]:
    """``auto`` -> ``local`` when more than one core is usable, else ``serial``;
    ``n_jobs`` None -> one worker per usable core."""
    cores = usable_cores()
    jobs = n_jobs if n_jobs and n_jobs > 0 else cores
    if name in (None, "auto"):
        name = "local" if cores > 1 and jobs > 1 else "serial"
    return name, jobs


def make_backend(
    name: str,
    *,
    n_jobs: int | None = None,
    max_retries: int = 2,
    ray_address: str | None = None,
    gpus_per_task: float | None = None,
    plugins: Iterable[str] = (),
) -> Backend:
    """A backend by name: ``auto``, ``serial``, ``local`` or ``ray``.

    ``plugins`` are module names every worker imports before computing (datasets and
    evaluators defined outside this package; see :mod:`lossval_odv.plugins`).
    """
    name, jobs = resolve_backend(name, n_jobs)
    if name == "serial":
        from lossval_odv.bench.backends.serial import SerialBackend

        return SerialBackend()
    if name == "local":
        from lossval_odv.bench.backends.local import LocalPoolBackend

        return LocalPoolBackend(n_jobs=jobs, max_retries=max_retries, plugins=plugins)
    if name == "ray":
        from lossval_odv.bench.backends.ray_backend import RayBackend

        return RayBackend(
            address=ray_address,
            max_retries=max_retries,
            gpus_per_task=gpus_per_task,
            plugins=plugins,
        )
    raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(BACKEND_NAMES)}")
