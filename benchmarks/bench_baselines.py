"""Seconds per cell of OpenDataVal's retraining baselines and of their fast versions (issue 13).

For each dataset (pol: classification, kin8nm: regression; 1000 train / 100 valid, 20%
label noise) and evaluator (Data-OOB, Data Banzhaf, AME, influence subsample, LOO), with the
paper's prediction models and train kwargs (PROTOCOL.md), it times

- the fast evaluator (``lossval_odv.evaluators.fast_baselines``) at ``--fast-budget``
  models (default: the paper's budget), and
- OpenDataVal 1.3.0's evaluator at ``--odv-budget`` models (default 20: the paper's
  budget takes minutes to hours per cell on a CPU),

and reports seconds per cell at the paper's budget, models fitted per second and fits per
cell. A time measured at a smaller budget than the paper's is extrapolated per fit (the
per-fit cost of these estimators does not depend on the budget) and labelled so. LOO has no
budget parameter: at a smaller budget both implementations time ``k`` of its n
leave-one-out fits plus its full fit, the work of its loop body.

    python benchmarks/bench_baselines.py                      # paper budgets for the fast side
    python benchmarks/bench_baselines.py --fast-budget 100 --odv-budget 10 --markdown out.md
    python benchmarks/bench_baselines.py --device cuda --odv-budget 20 --markdown out.md

Needs the datasets: ``LOSSVAL_ODV_DATA`` (or scikit-learn's OpenML cache).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# OpenMP threads that spin while waiting collapse on a shared, loaded CPU; passive waiting
# avoids that (see bench_batched.py). Must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Subset  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import baseline_cells as cells  # noqa: E402

from lossval_odv.core.runtime import resolve_device  # noqa: E402


def _fast_cell(name, fetcher, model, task, budget, device, max_models, seed):
    """Seconds and fits of the fast evaluator at ``budget`` (LOO: ``k`` fits + the full one)."""
    fast_cls = cells.FAST[name]
    train = cells.PAPER_TRAIN[task]
    if name == "LeaveOneOut" and budget is not None:
        evaluator = fast_cls(random_state=seed, device=device, max_models=max_models)
        evaluator.setup(fetcher, model, cells.metric(task))
        n = len(evaluator.x_train)
        order = evaluator.random_state.permutation(n)
        subsets = [np.arange(n)] + [np.delete(order, i) for i in range(budget)]
        start = time.perf_counter()
        utility = evaluator._utility((), train)
        utility(subsets)
        _sync(device)
        return time.perf_counter() - start, utility.n_fits
    evaluator = fast_cls(
        random_state=seed, device=device, max_models=max_models, **cells.scaled_budget(name, budget)
    )
    start = time.perf_counter()
    evaluator.train(fetcher, model, cells.metric(task), **train)
    evaluator.evaluate_data_values()
    _sync(device)
    return time.perf_counter() - start, evaluator.n_fits_


def _odv_cell(name, fetcher, model, task, budget, seed):
    """Seconds and fits of OpenDataVal's evaluator at ``budget`` (on the CPU, as configured
    by the benchmark; LOO: its loop body for ``budget`` points plus its full fit)."""
    odv_cls = cells.OPENDATAVAL[name]
    train = cells.PAPER_TRAIN[task]
    if name == "LeaveOneOut" and budget is not None:
        evaluator = odv_cls(random_state=seed)
        evaluator.setup(fetcher, model, cells.metric(task))
        n = len(evaluator.x_train)
        order = evaluator.random_state.permutation(n)
        start = time.perf_counter()
        for subset in [np.arange(n)] + [np.delete(order, i) for i in range(budget)]:
            fitted = evaluator.pred_model.clone()
            fitted.fit(
                Subset(evaluator.x_train, subset), Subset(evaluator.y_train, subset), **train
            )
            evaluator.evaluate(evaluator.y_valid, fitted.predict(evaluator.x_valid))
        return time.perf_counter() - start, budget + 1
    evaluator = odv_cls(random_state=seed, **cells.scaled_budget(name, budget))
    start = time.perf_counter()
    evaluator.train(fetcher, model, cells.metric(task), **train)
    evaluator.evaluate_data_values()
    elapsed = time.perf_counter() - start
    fits = cells.fits_at(name, cells.scaled_budget(name, budget), len(evaluator.x_train))
    return elapsed, fits


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _per_cell(seconds: float, fits: int, paper_fits: int) -> tuple[float, str]:
    if fits >= paper_fits:
        return seconds, "measured"
    return seconds / fits * paper_fits, f"extrapolated from {fits} fits"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(cells.TASKS))
    parser.add_argument("--evaluators", nargs="+", default=list(cells.PAPER_BUDGETS))
    parser.add_argument("--fast-budget", type=int, default=None, help="default: the paper's")
    parser.add_argument("--odv-budget", type=int, default=20, help="0: skip OpenDataVal")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-models", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (both)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, default=None, help="write the table here")
    args = parser.parse_args(argv)
    unknown = set(args.evaluators) - set(cells.PAPER_BUDGETS)
    unknown_data = set(args.datasets) - set(cells.TASKS)
    if unknown or unknown_data:
        parser.error(f"unknown evaluators {sorted(unknown)} or datasets {sorted(unknown_data)}")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    load_before = os.getloadavg()

    rows = []
    for dataset in args.datasets:
        task = cells.TASKS[dataset]
        fetcher = cells.noisy_split(dataset, seed=args.seed)
        model = cells.prediction_model(task, fetcher, seed=args.seed)
        n_train = len(fetcher.datapoints[0])
        for name in args.evaluators:
            paper_fits = cells.fits_at(name, cells.PAPER_BUDGETS[name], n_train)
            fast_s, fast_fits = _fast_cell(
                name, fetcher, model, task, args.fast_budget, device, args.max_models, args.seed
            )
            fast_cell, fast_how = _per_cell(fast_s, fast_fits, paper_fits)
            row = {
                "dataset": dataset,
                "evaluator": name,
                "fits": paper_fits,
                "fast_s": fast_cell,
                "fast_rate": fast_fits / fast_s,
                "fast_how": fast_how,
            }
            if args.odv_budget:
                odv_s, odv_fits = _odv_cell(name, fetcher, model, task, args.odv_budget, args.seed)
                odv_cell, odv_how = _per_cell(odv_s, odv_fits, paper_fits)
                row.update(
                    odv_s=odv_cell,
                    odv_rate=odv_fits / odv_s,
                    odv_how=odv_how,
                    speedup=odv_cell / fast_cell,
                )
            rows.append(row)
            print(_line(row), flush=True)

    header = _header(args, device, load_before, os.getloadavg())
    table = _table(rows)
    print("\n" + header + "\n" + table)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(header + "\n" + table + "\n")
    return 0


def _line(row: dict) -> str:
    odv = (
        f"odv {row['odv_s']:8.1f} s/cell ({row['odv_how']}) x{row['speedup']:.1f}"
        if "odv_s" in row
        else ""
    )
    return (
        f"{row['dataset']:7s} {row['evaluator']:18s} fits {row['fits']:5d} "
        f"fast {row['fast_s']:7.1f} s/cell ({row['fast_how']}) {odv}"
    )


def _header(args, device, load_before, load_after) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return (
        f"Retraining baselines, seconds per cell at the paper's budgets "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n\n"
        f"- command: `python benchmarks/bench_baselines.py {' '.join(sys.argv[1:])}`\n"
        f"- fast evaluators on {device} ({name or 'cpu'}), max_models {args.max_models}; "
        f"OpenDataVal 1.3.0 on the CPU; torch {torch.__version__}, "
        f"{args.threads} CPU thread(s), {os.cpu_count()} cores\n"
        f"- load average (1/5/15 min) before {tuple(round(x, 1) for x in load_before)}, "
        f"after {tuple(round(x, 1) for x in load_after)}\n"
        f"- 1000 train / 100 valid, 20% label noise; classification (pol) 5 epochs, batch "
        f"128, lr 0.1; regression (kin8nm) 5 epochs, batch 32, lr 0.01\n"
    )


def _table(rows: list[dict]) -> str:
    lines = [
        "| dataset | evaluator | fits/cell | OpenDataVal s/cell | fast s/cell | speed-up "
        "| OpenDataVal fits/s | fast fits/s | how |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        odv = (
            (f"{r['odv_s']:.1f}", f"{r['speedup']:.1f}x", f"{r['odv_rate']:.1f}")
            if "odv_s" in r
            else ("-", "-", "-")
        )
        how = f"fast: {r['fast_how']}" + (f"; OpenDataVal: {r['odv_how']}" if "odv_s" in r else "")
        lines.append(
            f"| {r['dataset']} | {r['evaluator']} | {r['fits']} | {odv[0]} | {r['fast_s']:.1f} "
            f"| {odv[1]} | {odv[2]} | {r['fast_rate']:.1f} | {how} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
