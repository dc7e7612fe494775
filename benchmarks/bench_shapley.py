"""Data Shapley's cost per cell: OpenDataVal's DataShapley against FastDataShapley (issue 13).

One epoch of the GR-TMC sampler on each dataset's benchmark cell (1000 train / 100 valid,
20% label noise, PROTOCOL.md's prediction model and training), OpenDataVal's (one fit
after the other) and the fast one (side by side), with ``--permutations`` permutations and
the same seed, hence the same permutations (truncation may still end them at different
steps: the fits differ in their shuffles). ``--fast-permutations`` gives the fast one a
larger epoch (better batching). Prints one markdown table: permutations, model fits
actually made (truncation ends permutations early), seconds, fits per second, and seconds
per permutation. The default budget needs at least ``min_models`` = 1000 permutations before
its first convergence check, so 1000 x (seconds per permutation) bounds a cell's cost below.

    LOSSVAL_ODV_DATA=../shared/datasets python benchmarks/bench_shapley.py
    python benchmarks/bench_shapley.py --datasets pol --fast-permutations 100 --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

# spinning OpenMP threads collapse on a shared, loaded CPU (see bench_batched.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lossval_odv  # noqa: E402, F401  (compatibility layer before OpenDataVal)
from lossval_odv.bench.models import BASELINE_TRAIN_KWARGS, prediction_model  # noqa: E402
from lossval_odv.core.runtime import intra_op_threads, resolve_device  # noqa: E402
from lossval_odv.datasets.register import task_of  # noqa: E402
from lossval_odv.evaluators import FastDataShapley  # noqa: E402

from opendataval.dataloader import DataFetcher, mix_labels  # noqa: E402
from opendataval.dataval import DataShapley  # noqa: E402
from opendataval.metrics import Metrics  # noqa: E402


def upstream_fits(sampler) -> int:
    """Fits OpenDataVal's sampler made: one at the minimal cardinality per permutation, one
    per point it evaluated (the increments it did not evaluate keep their 1e-8)."""
    stack = sampler.marginal_increment_array_stack
    return len(stack) + int(np.sum(stack != 1e-8))


def bench(dataset: str, *, odv_permutations: int, fast_permutations: int, device: str):
    fetcher = DataFetcher.setup(
        dataset_name=dataset,
        train_count=1000,
        valid_count=100,
        test_count=100,
        random_state=np.random.RandomState(0),
        add_noise=mix_labels,
        noise_kwargs={"noise_rate": 0.2},
    )
    task = task_of(dataset)
    x_train, y_train, *_ = fetcher.datapoints
    n_classes = int(fetcher.label_dim[0]) if task == "classification" else 1
    torch.manual_seed(0)
    model = prediction_model(task, x_train.shape[1], n_classes, torch.device("cpu"))
    metric = Metrics.ACCURACY if task == "classification" else Metrics.NEG_MSE
    train = BASELINE_TRAIN_KWARGS[task]
    rows = []
    if odv_permutations:
        upstream = DataShapley(max_mc_epochs=1, models_per_epoch=odv_permutations, random_state=0)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            upstream.train(fetcher, model, metric, **train)
        seconds = time.perf_counter() - start
        fits = upstream_fits(upstream.sampler)
        rows.append((dataset, "OpenDataVal", "cpu", odv_permutations, fits, seconds))
    fast = FastDataShapley(
        max_mc_epochs=1, models_per_epoch=fast_permutations, random_state=0, device=device
    )
    start = time.perf_counter()
    fast.train(fetcher, model, metric, **train)
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    where = str(resolve_device(device))
    rows.append((dataset, "fast", where, fast_permutations, fast.n_fits_, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["pol", "kin8nm"])
    parser.add_argument("--permutations", type=int, default=2)
    parser.add_argument("--fast-permutations", type=int, default=None, help="default: same")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    print(
        "| dataset | implementation | device | permutations | fits | s | fits/s | s/permutation |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    with intra_op_threads(args.threads):
        for dataset in args.datasets:
            rows = bench(
                dataset,
                odv_permutations=args.permutations,
                fast_permutations=args.fast_permutations or args.permutations,
                device=args.device,
            )
            for name, impl, where, perms, fits, seconds in rows:
                print(
                    f"| {name} | {impl} | {where} | {perms} | {fits} | {seconds:.1f} "
                    f"| {fits / seconds:.0f} | {seconds / perms:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
