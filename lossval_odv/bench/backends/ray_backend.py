"""Run tasks on a Ray cluster: an existing one by address, or a local one started here.

Each task is one Ray task running the same pure :func:`~lossval_odv.bench.tasks.compute_task`
as every other backend; its results travel back to the driver, which alone writes the
store, so the workers need no shared filesystem.

Faults: a worker that dies mid-task (signal, OOM, lost node) is a *system* failure,
which Ray retries itself up to ``max_retries`` times; a task that still fails yields a
``failed`` result for each of its cells, with the reason. Errors raised by a method are
caught inside :func:`~lossval_odv.bench.cell.compute_cell` and recorded, never retried.

GPUs: tasks whose cells run on ``cuda``/``auto`` ask Ray for a *fraction* of a GPU when
the cluster has GPUs (``gpus_per_task``; by default the evaluator's ``gpu_share``
capability: 0.25 for a LossVal task, 0.5 for other methods), so several small trainings
share one device; Ray sets each task's ``CUDA_VISIBLE_DEVICES``. Without GPUs in the
cluster every task asks for none and ``auto`` cells run on CPU.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from lossval_odv.bench.backends import usable_cores
from lossval_odv.bench.cell import failed_result
from lossval_odv.bench.records import CellResult
from lossval_odv.bench.tasks import Task, compute_task
from lossval_odv.evaluators.capabilities import capabilities_of

# environment variables the driver passes on to its Ray workers
FORWARDED_ENV = ("TQDM_DISABLE", "LOSSVAL_ODV_PLUGINS")


def compute_in_worker(task: Task, plugins: tuple[str, ...]) -> list[CellResult]:
    """The Ray task: import the plugin modules, then compute the task."""
    from lossval_odv.plugins import load_plugins

    load_plugins(plugins)
    return compute_task(task)


def _uses_gpu(task: Task) -> bool:
    return any(cell.device != "cpu" for cell in task)


class RayBackend:
    """Tasks on Ray: ``address`` (e.g. ``"auto"``, ``"ray://head:10001"``,
    ``"10.0.0.1:6379"``) connects to a running cluster; None starts a local one with
    one CPU per usable core (or reuses a Ray already initialised in this process).
    A cluster this backend started is shut down when its run ends; one it merely
    joined is left alone.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        max_retries: int = 2,
        gpus_per_task: float | None = None,
        plugins: Iterable[str] = (),
        num_cpus: int | None = None,
    ) -> None:
        self.address = address
        self.max_retries = max_retries
        self.gpus_per_task = gpus_per_task
        self.plugins = tuple(plugins)
        self.num_cpus = num_cpus

    def _connect(self) -> bool:
        """Initialise Ray if needed; True if this call started (and must stop) it."""
        import ray

        if ray.is_initialized():
            return False
        # the job's workers see the driver's progress-bar and plugin settings
        env_vars = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        runtime_env = {"env_vars": env_vars} if env_vars else None
        if self.address:
            ray.init(address=self.address, logging_level="WARNING", runtime_env=runtime_env)
            return True
        # A local cluster: its workers inherit this environment; make sure they can
        # import this package (and plugins next to it) even when the driver's working
        # directory is elsewhere. Ray also adds the driver's working directory.
        package_root = str(Path(__file__).resolve().parents[2])
        paths = [package_root, os.getcwd(), *[p for p in sys.path if p and Path(p).is_dir()]]
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        try:
            ray.init(
                address="local",  # a new cluster, even if another one runs on this machine
                num_cpus=self.num_cpus or usable_cores(),
                include_dashboard=False,
                logging_level="WARNING",
                runtime_env=runtime_env,
            )
        finally:
            if old is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = old
        return True

    def gpu_share(self, task: Task, cluster_gpus: float) -> float:
        """GPUs this task asks Ray for (0 when the cluster has none or it runs on CPU)."""
        if cluster_gpus <= 0 or not _uses_gpu(task):
            return 0.0
        if self.gpus_per_task is not None:
            return float(self.gpus_per_task)
        return capabilities_of(task[0].evaluator).gpu_share

    def run(self, tasks: list[Task]) -> Iterator[list[CellResult]]:
        if not tasks:
            return
        import ray
        from ray.exceptions import RayError, RayTaskError

        started = self._connect()
        refs: dict = {}
        try:
            cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
            if cluster_gpus <= 0 and any(
                c.device.startswith("cuda") for task in tasks for c in task
            ):
                warnings.warn(
                    "cells ask for a CUDA device but the Ray cluster has no GPUs; "
                    "use device: auto (or cpu) to run them on CPU",
                    stacklevel=2,
                )
            remote = ray.remote(compute_in_worker)
            for index, task in enumerate(tasks):
                ref = remote.options(
                    num_cpus=1,
                    num_gpus=self.gpu_share(task, cluster_gpus),
                    max_retries=self.max_retries,  # system failures: worker/node death
                    retry_exceptions=False,  # method errors are recorded, not retried
                ).remote(task, self.plugins)
                refs[ref] = index
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    index = refs.pop(ref)
                    try:
                        results = ray.get(ref)
                    except RayTaskError as exc:  # raised in the task itself: not retried
                        reason = f"{type(exc).__name__}: {exc}"
                        results = [failed_result(cell, reason) for cell in tasks[index]]
                    except RayError as exc:  # worker/node death: Ray retried it already
                        reason = (
                            f"{type(exc).__name__} (worker died; Ray retried the task "
                            f"max_retries={self.max_retries} times): {exc}"
                        )
                        results = [failed_result(cell, reason) for cell in tasks[index]]
                    yield results
        finally:
            for ref in refs:  # driver stopped early: don't leave work running
                with contextlib.suppress(Exception):  # best effort
                    ray.cancel(ref, force=True)
            if started:
                ray.shutdown()
