"""Benchmark of batched LossVal training.

Prints three tables:

1. throughput: runs per second of ``fit_lossval_batched`` for R in {1, 4, 16, 64} runs
   trained together (classification, 1000 x 10 train, 100 val, 5 epochs), next to the
   single-run ``fit_lossval``;
2. full-dataset valuation: time and peak memory of one epoch on n_train in
   {1 000, 10 000, 100 000} (each in a fresh subprocess, so peak RSS is that run's);
3. the LossVal part of configs/paper.yaml at 5 runs (12 datasets x 3 noise types x
   4 rates x 5 runs, at 5 and at 30 epochs), simulated with synthetic data of the real
   shapes: each dataset's 60 runs train as one batch; every dataset is measured at a few
   epochs and the per-epoch cost is extrapolated to 5 + 30 epochs.

    python benchmarks/bench_batched.py            # everything (about 5 minutes on 2 cores)
    python benchmarks/bench_batched.py --quick    # 1 epoch everywhere, smaller sizes
    python benchmarks/bench_batched.py --device cuda --sections grid
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# OpenMP threads that spin while waiting collapse on a shared, loaded CPU (measured here:
# 2 threads at load 5 ran 100x slower than 1); passive waiting avoids that. Must be set
# before torch loads its OpenMP runtime; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lossval_odv.core import fit_lossval  # noqa: E402
from lossval_odv.core.batched import fit_lossval_batched  # noqa: E402
from lossval_odv.core.runtime import resolve_device  # noqa: E402

# configs/paper.yaml's datasets with their feature counts (the paper's protocol).
PAPER_DATASETS: list[tuple[str, str, int]] = [
    ("2dplanes", "classification", 10),
    ("electricity", "classification", 7),
    ("MiniBooNE", "classification", 50),
    ("pol", "classification", 48),
    ("fried", "classification", 10),
    ("nomao", "classification", 89),
    ("kin8nm", "regression", 8),
    ("white_wine", "regression", 11),
    ("cpu_activity", "regression", 21),
    ("pumadyn32nh", "regression", 32),
    ("superconductivity", "regression", 81),
    ("wave_energy", "regression", 48),
]
NOISE_TYPES, RATES, RUNS = 3, (0.05, 0.10, 0.15, 0.20), 5
GRID_EPOCHS = (5, 30)
TARGET_S = {"cpu": 600.0, "cuda": 120.0}


def synthetic_runs(
    n_runs: int, task: str, d: int, *, n: int = 1000, m: int = 100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R runs shaped like the paper's splits: z-scored features, noise on a share of points.

    Every run gets its own noise rate (cycling through the paper's four) applied to train
    and validation features as OpenDataVal's ``add_gauss_noise`` does (+N(0, 1)), so the
    diameters, hence the Sinkhorn schedules, vary between runs as they do in the grid.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_runs, n, d))
    xv = rng.normal(size=(n_runs, m, d))
    for r in range(n_runs):
        rate = RATES[r % len(RATES)]
        for arr in (x[r], xv[r]):
            chosen = rng.choice(len(arr), int(rate * len(arr)), replace=False)
            arr[chosen] += rng.normal(size=(len(chosen), d))
    if task == "classification":
        beta = rng.normal(size=d)
        y = np.eye(2)[(x @ beta > 0).astype(int)]
    else:
        y = np.tanh(x @ rng.normal(size=d) / np.sqrt(d))[..., None]
    return x, y, xv


def timed(fn, *, device: torch.device, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def warm_up(device: torch.device) -> float:
    """One small call of each engine, kept out of the timings."""
    x, y, xv = synthetic_runs(2, "classification", 10, n=64)
    xr, yr, xvr = synthetic_runs(2, "regression", 10, n=64)
    start = time.perf_counter()
    fit_lossval_batched(x, y, xv, task="classification", seeds=[0, 1], epochs=1, device=device)
    fit_lossval_batched(xr, yr, xvr, task="regression", seeds=[0, 1], epochs=1, device=device)
    fit_lossval(x[0], y[0], xv[0], task="classification", epochs=1, device=device)
    return time.perf_counter() - start


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------


def bench_throughput(args: argparse.Namespace, device: torch.device) -> None:
    epochs = 1 if args.quick else 5
    x, y, xv = synthetic_runs(1, "classification", 10)
    single = timed(
        lambda: fit_lossval(
            x[0], y[0], xv[0], task="classification", epochs=epochs, random_state=0, device=device
        ),
        device=device,
    )
    rows = [["fit_lossval (1 run)", f"{single:.2f}", f"{1 / single:.2f}", "1.0x"]]
    for n_runs in (1, 4, 16, 64):
        x, y, xv = synthetic_runs(n_runs, "classification", 10)
        seconds = timed(
            lambda x=x, y=y, xv=xv, n_runs=n_runs: fit_lossval_batched(
                x,
                y,
                xv,
                task="classification",
                seeds=list(range(n_runs)),
                epochs=epochs,
                device=device,
            ),
            device=device,
            repeats=args.repeats,
        )
        rate = n_runs / seconds
        rows.append(
            [f"batched R={n_runs}", f"{seconds:.2f}", f"{rate:.2f}", f"{rate * single:.1f}x"]
        )
    print(
        f"\n## Throughput: classification, 1000 x 10 train, 100 val, {epochs} epoch(s), "
        f"{device.type}"
    )
    print(table(["engine", "seconds", "runs/s", "vs fit_lossval"], rows))


class RssSampler:
    """Peak resident memory of this process while a block runs (sampled every 50 ms).

    ``ru_maxrss`` is a high-water mark over the whole process, set by the imports and the
    warm-up; sampling gives the block's own peak.
    """

    def __enter__(self) -> RssSampler:
        import threading

        self.before = _rss_mib()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def _child_memory(n: int, engine: str, device_name: str) -> None:
    device = resolve_device(device_name)
    warm_up(device)  # libraries loaded before measuring
    x, y, xv = synthetic_runs(1, "classification", 10, n=n)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with RssSampler() as rss:
        start = time.perf_counter()
        if engine == "batched":
            fit_lossval_batched(
                x,
                y,
                xv,
                task="classification",
                seeds=[0],
                epochs=1,
                device=device,
            )
        else:
            fit_lossval(x[0], y[0], xv[0], task="classification", epochs=1, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    out = {"seconds": seconds, "peak_rss_mib": rss.peak, "rss_before_mib": rss.before}
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(out))


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_memory(args: argparse.Namespace, device: torch.device) -> None:
    sizes = (1000, 10000) if args.quick else (1000, 10000, 100000)
    engines = ("batched",) if args.quick else ("batched", "fit_lossval")
    rows = []
    for n in sizes:
        for engine in engines:
            cmd = [
                sys.executable,
                __file__,
                "--child-memory",
                str(n),
                engine,
                "--device",
                str(device),
            ]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            row = [
                f"{n:,}",
                engine,
                f"{res['seconds']:.2f}",
                f"{res['seconds'] / -(-n // 32) * 1e3:.2f}",
                f"{res['peak_rss_mib']:.0f}",
                f"{res['peak_rss_mib'] - res['rss_before_mib']:.0f}",
            ]
            if device.type == "cuda":
                row.append(f"{res['cuda_peak_mib']:.0f}")
            rows.append(row)
    header = ["n_train", "engine", "s/epoch", "ms/step", "peak RSS MiB", "peak - before MiB"]
    if device.type == "cuda":
        header.append("CUDA peak MiB")
    print(
        f"\n## Full-dataset valuation: 1 run, 1 epoch, classification, d=10, 100 val, {device.type}"
    )
    print(
        "(each row in a fresh process after a warm-up; RSS sampled every 50 ms during the run; "
        "'before' = RSS with the data built, before training)"
    )
    print(table(header, rows))


def bench_grid(args: argparse.Namespace, device: torch.device) -> None:
    measure_epochs = 1 if args.quick else 3
    n_runs = NOISE_TYPES * len(RATES) * RUNS
    total_epochs = sum(GRID_EPOCHS)
    rows = []
    total = 0.0
    real_total = 0.0
    for seed, (name, task, d) in enumerate(PAPER_DATASETS):
        x, y, xv = synthetic_runs(n_runs, task, d, seed=seed)

        def run(epochs, x=x, y=y, xv=xv, task=task):
            return timed(
                lambda: fit_lossval_batched(
                    x,
                    y,
                    xv,
                    task=task,
                    seeds=list(range(n_runs)),
                    epochs=epochs,
                    device=device,
                ),
                device=device,
            )

        if args.grid_real:  # the real thing: 5 and 30 epochs
            seconds = [run(epochs) for epochs in GRID_EPOCHS]
            real_total += sum(seconds)
            per_epoch = sum(seconds) / total_epochs
        else:
            seconds = [run(measure_epochs)]
            per_epoch = seconds[0] / measure_epochs
        estimate = per_epoch * total_epochs
        total += estimate
        rows.append(
            [
                name,
                task[:5],
                str(d),
                " + ".join(f"{t:.2f}" for t in seconds),
                f"{per_epoch / n_runs * 1e3:.2f}",
                f"{estimate:.1f}",
            ]
        )
    if args.grid_real:
        measure_epochs = GRID_EPOCHS[0]
    # The straightforward form: one fit_lossval per run, measured on one shape.
    x, y, xv = synthetic_runs(1, "classification", 10)
    single = timed(
        lambda: fit_lossval(
            x[0], y[0], xv[0], task="classification", epochs=measure_epochs, device=device
        ),
        device=device,
    )
    single_total = single / measure_epochs * n_runs * len(PAPER_DATASETS) * total_epochs
    print(
        f"\n## LossVal part of configs/paper.yaml at {RUNS} runs: {len(PAPER_DATASETS)} datasets x "
        f"{NOISE_TYPES} noise types x {len(RATES)} rates x {RUNS} runs = "
        f"{n_runs * len(PAPER_DATASETS)} runs, at {GRID_EPOCHS[0]} and {GRID_EPOCHS[1]} epochs"
    )
    print(
        f"(synthetic data of the real shapes: 1000 train, 100 val; each dataset's {n_runs} runs "
        + (
            f"train as one batch; measured {measure_epochs} epoch(s) per dataset, estimate = "
            f"per-epoch time x {total_epochs} epochs; "
            if not args.grid_real
            else f"train as one batch; RUN FOR REAL at {GRID_EPOCHS} epochs; "
        )
        + f"{device.type})"
    )
    print(
        table(
            [
                "dataset",
                "task",
                "d",
                "measured s" + (" (5 + 30 ep)" if args.grid_real else f" ({measure_epochs} ep)"),
                "ms/run-epoch",
                "s for 5+30 ep",
            ],
            rows,
        )
    )
    if args.grid_real:
        print(f"measured total (real 5- and 30-epoch runs): {real_total:.0f} s")
    target = TARGET_S[device.type]
    verdict = "meets" if total <= target else f"misses by {total - target:.0f} s"
    print(
        f"estimated total: {total:.0f} s ({total / 60:.1f} min); target {target / 60:.0f} min: "
        f"{verdict}"
    )
    print(
        f"one run at a time (fit_lossval, R = 1, {single / measure_epochs:.3f} s per epoch here "
        f"on 2dplanes' shape): about {single_total:.0f} s ({single_total / 3600:.2f} h)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch, smaller sizes")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--repeats", type=int, default=1, help="best of N for throughput")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--grid-real", action="store_true", help="train the grid at 5 and 30 epochs for real"
    )
    parser.add_argument(
        "--sections", default="throughput,memory,grid", help="comma list of the three"
    )
    parser.add_argument("--child-memory", nargs=2, metavar=("N", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_memory:
        _child_memory(int(args.child_memory[0]), args.child_memory[1], args.device)
        return
    device = resolve_device(args.device)
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} torch threads "
        "(on CPU the engine trains on 1: its cpu_threads default), "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
    )
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min; other processes share the CPU)")
    warm_s = warm_up(device)
    print(f"warm-up: {warm_s:.1f} s")
    sections = args.sections.split(",")
    if "throughput" in sections:
        bench_throughput(args, device)
    if "memory" in sections:
        bench_memory(args, device)
    if "grid" in sections:
        bench_grid(args, device)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
