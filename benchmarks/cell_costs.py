"""Where a cell's time goes, and what more runs of a config would cost at those rates.

Two sources, printed as markdown tables:

1. the stored cells of a results store (``--store``): per method and task, the mean
   seconds of valuation and of everything else (data, detection, discovery, removal);
2. a live timing of one cell's steps per task (``--live``): fetching the noisy split and
   each experiment, each timed after one untimed call (as in a worker's later cells: a
   process's first fit imports ``torch._dynamo``, about 1 s), for one cheap method (Random,
   whose valuation is free, so the rest is the overhead every cell pays).

Then the projection: cells still to compute for ``--runs`` runs of the store's config
(a method's own ``runs`` kept), at the stored mean seconds per cell of each method and task.

    python benchmarks/cell_costs.py --store results/offline/store.sqlite --runs 25 \\
        --config configs/offline.yaml --live
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

import lossval_odv  # noqa: E402, F401  (compatibility layer before OpenDataVal)
from lossval_odv.bench.config import load_config  # noqa: E402
from lossval_odv.bench.store import ResultStore  # noqa: E402
from lossval_odv.datasets.register import task_of  # noqa: E402


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (numbers right-aligned), without extra packages."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "".join("---:|" if n else "---|" for n in numeric),
    ]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def stored_costs(store: Path) -> pd.DataFrame:
    frame = ResultStore(store).frame()
    frame = frame[frame["status"] == "ok"]
    frame = frame.assign(other=frame["total_seconds"] - frame["seconds"])
    costs = frame.groupby(["method", "task"]).agg(
        cells=("key", "size"),
        valuation_s=("seconds", "mean"),
        other_s=("other", "mean"),
        total_s=("total_seconds", "mean"),
    )
    return costs.reset_index()


def projection(costs: pd.DataFrame, store: Path, config_path: Path, runs: int) -> pd.DataFrame:
    """Cells of ``runs`` runs of the config (methods with fewer ``runs`` keep theirs) not
    in the store, and their cost at the stored mean seconds per cell."""
    from lossval_odv.bench.grid import expand

    config = load_config(config_path).model_copy(update={"runs": runs})
    done = ResultStore(store).finished_keys()
    cells = pd.DataFrame(
        [(c.method, task_of(c.dataset), c.key in done) for c in expand(config)],
        columns=["method", "task", "stored"],
    )
    rate = costs.set_index(["method", "task"])["total_s"]
    rows = []
    for (method, task), group in cells.groupby(["method", "task"], sort=False):
        seconds = float(rate.get((method, task), float("nan")))
        todo = int((~group["stored"]).sum())
        rows.append(
            {
                "method": method,
                "task": task,
                "cells wanted": len(group),
                "stored": int(group["stored"].sum()),
                "to compute": todo,
                "s/cell (stored mean)": round(seconds, 2),
                "hours (one core)": round(todo * seconds / 3600, 2),
            }
        )
    return pd.DataFrame(rows)


def live_steps(config_path: Path) -> pd.DataFrame:
    """Seconds of each step of one Random cell per task (first run, first noise and rate)."""
    import numpy as np
    import torch

    from lossval_odv.bench.cell import make_fetcher
    from lossval_odv.bench.experiments import EXPERIMENTS, ExperimentInput
    from lossval_odv.bench.grid import expand

    torch.set_num_threads(1)
    config = load_config(config_path)
    seen, rows = set(), []
    for cell in expand(config):
        task = task_of(cell.dataset)
        if cell.evaluator != "randomevaluator" or task in seen:
            continue
        seen.add(task)
        t0 = time.perf_counter()
        fetcher = make_fetcher(cell)
        row = {"task": task, "dataset": cell.dataset, "fetch_s": time.perf_counter() - t0}
        x_train, *_ = fetcher.datapoints
        values = np.random.default_rng(0).random(len(x_train))

        class Values:
            data_values = values

        run = ExperimentInput(
            cell=cell,
            evaluator=Values(),
            fetcher=fetcher,
            task=task,
            n_features=int(np.prod(fetcher.covar_dim)),
            n_classes=int(fetcher.label_dim[0]) if task == "classification" else 1,
            values=values,
            noisy=np.asarray(fetcher.noisy_train_indices),
        )
        for name, experiment in EXPERIMENTS.items():
            if cell.experiments[name]:
                experiment(run)  # warm-up: a process's first fit imports torch._dynamo (~1 s)
                t0 = time.perf_counter()
                experiment(run)
                row[f"{name}_s"] = time.perf_counter() - t0
        rows.append(row)
    return pd.DataFrame(rows).round(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="the store's config, for --runs")
    parser.add_argument("--runs", type=int, help="project the cost of this many runs")
    parser.add_argument("--live", action="store_true", help="time one cell's steps per task")
    args = parser.parse_args()
    costs = stored_costs(args.store)
    print(f"## Stored cells: mean seconds per cell ({args.store})\n")
    print(markdown(costs.round(3)))
    if args.runs is not None:
        if args.config is None:
            parser.error("--runs needs --config")
        table = projection(costs, args.store, args.config, args.runs)
        print(f"\n## {args.runs} runs of {args.config}: what is left, at the stored rates\n")
        print(markdown(table))
        print(f"\ntotal: {table['hours (one core)'].sum():.1f} core-hours")
    if args.live:
        if args.config is None:
            parser.error("--live needs --config")
        print("\n## One Random cell's steps, live (seconds, one thread)\n")
        print(markdown(live_steps(args.config)))


if __name__ == "__main__":
    main()
