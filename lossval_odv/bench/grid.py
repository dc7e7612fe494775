"""Expand a config into cells: (dataset, noise type, noise rate, run, method).

A cell is a frozen, picklable value that carries everything needed to compute it, and
a content hash of those inputs (its key in the results store). Seeds come from here:

- ``data_seed`` depends on (config seed, dataset, noise type, rate, run) only, so every
  method of a run sees the same split and the same noise;
- ``method_seed`` also depends on the method, so methods draw independent randomness.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from lossval_odv.bench.config import BenchmarkConfig
from lossval_odv.datasets.register import task_of
from lossval_odv.datasets.tables import TableSource
from lossval_odv.evaluators.capabilities import capabilities_of

GRID_VERSION = 1  # bump when a change alters what a cell computes, to invalidate old rows


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from the SHA-256 of the parts' canonical JSON."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31)


@dataclass(frozen=True)
class Cell:
    """One unit of work: values of one method on one noisy split, then its experiments."""

    dataset: str
    noise: str
    rate: float
    run: int
    method: str
    evaluator: str
    params: dict[str, Any] = field(hash=False)
    split: tuple[int, int, int]
    data_seed: int
    method_seed: int
    experiments: dict[str, Any] = field(hash=False)
    device: str = "cpu"
    data_dir: str | None = None
    metric: str | None = None
    train: dict[str, dict[str, float]] | None = field(default=None, hash=False)
    table: TableSource | None = field(default=None, hash=False)  # a file or OpenML dataset

    @property
    def key(self) -> str:
        """Content hash of everything that determines the result (not where data live).

        An unset ``metric`` (OpenDataVal's default) or ``train`` (the protocol's training
        of the baselines' model) is left out, and so is the ``table`` of
        a registered dataset, so that the cells of stores written before these options
        existed keep their keys. A file dataset's checksum is part of it: a changed file
        gives new cells.
        """
        payload = {k: v for k, v in asdict(self).items() if k not in ("data_dir", "table")}
        for option in ("metric", "train"):
            if payload[option] is None:
                del payload[option]
        if self.table is not None:
            payload["table"] = self.table.identity()
        payload["grid_version"] = GRID_VERSION
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]

    def describe(self) -> str:
        return f"{self.dataset}/{self.noise}@{self.rate:g}/run{self.run}/{self.method}"


def expand(config: BenchmarkConfig) -> list[Cell]:
    """All cells of a config, in a deterministic order (run-major)."""
    split = (config.split.train, config.split.valid, config.split.test)
    experiments = config.experiments.model_dump()
    cells = []
    # run-major: an interrupted grid holds complete early runs of every dataset
    for run in range(config.runs):
        for dataset in config.dataset_names:
            for noise in config.noise_types:
                for rate in config.noise_rates:
                    data_seed = derive_seed(config.seed, dataset, noise, rate, run)
                    for method in config.methods:
                        if method.tasks is not None and task_of(dataset) not in method.tasks:
                            continue
                        if method.runs is not None and run >= method.runs:
                            continue
                        cells.append(
                            Cell(
                                dataset=dataset,
                                noise=noise,
                                rate=float(rate),
                                run=run,
                                method=method.name,
                                evaluator=method.evaluator,
                                params=dict(method.params),
                                split=split,
                                data_seed=data_seed,
                                method_seed=derive_seed(data_seed, method.name),
                                experiments=experiments,
                                device=config.device,
                                data_dir=config.data_dir,
                                metric=method.metric,
                                train=method.training,
                                table=config.table_sources.get(dataset),
                            )
                        )
    return cells


def batch_group(cell: Cell) -> tuple | None:
    """Cells with the same (non-None) group can train together (their evaluator's
    ``trains_together`` capability): same dataset and method, hence the same settings and
    data shapes."""
    if not capabilities_of(cell.evaluator).trains_together:
        return None
    return (cell.dataset, cell.method, cell.split, cell.device)


def shard(cells: list[Cell], index: int, count: int, *, keep_groups: bool = False) -> list[Cell]:
    """The deterministic ``index``-th of ``count`` slices (by key), for job arrays.

    With ``keep_groups`` a whole batch group goes to one shard, so that sharded and
    unsharded runs train the same batches: on one CPU thread a batched run equals the
    run alone bit for bit anyway, but on GPUs batched kernels may round differently.
    """
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be i/N with 0 <= i < N, got {index}/{count}")

    def slot(cell: Cell) -> int:
        group = batch_group(cell) if keep_groups else None
        return int(cell.key, 16) % count if group is None else derive_seed(*group) % count

    return [c for c in cells if slot(c) == index]
