"""Backends run tasks and hand results back to the driver, which alone writes the store.

- ``serial``: in this process, one task after another.
- ``local``: a pool of worker processes on this machine (``n_jobs``).
- ``ray``: tasks on a Ray cluster (see :mod:`lossval_odv.backends.ray_backend`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from lossval_odv.cell import CellResult
from lossval_odv.tasks import Task


class Backend(Protocol):
    """Runs tasks; yields each task's results as soon as it finishes."""

    def run(self, tasks: list[Task]) -> Iterator[list[CellResult]]: ...


def make_backend(
    name: str,
    *,
    n_jobs: int = 1,
    max_retries: int = 2,
    ray_address: str | None = None,
    gpus_per_task: float = 0.0,
) -> Backend:
    """A backend by name: ``serial``, ``local`` or ``ray``."""
    if name == "serial":
        from lossval_odv.backends.serial import SerialBackend

        return SerialBackend()
    if name == "local":
        from lossval_odv.backends.local import LocalPoolBackend

        return LocalPoolBackend(n_jobs=n_jobs, max_retries=max_retries)
    if name == "ray":
        from lossval_odv.backends.ray_backend import RayBackend

        return RayBackend(address=ray_address, max_retries=max_retries, gpus_per_task=gpus_per_task)
    raise ValueError(f"unknown backend {name!r}; allowed: serial, local, ray")
