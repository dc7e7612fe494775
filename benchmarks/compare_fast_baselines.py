"""The fast retraining baselines against OpenDataVal's own on real data (issue 13, item 3).

For each dataset (pol: classification, kin8nm: regression; 1000 train / 100 valid, 20%
label noise through the real loaders), training setting and seed, it runs OpenDataVal 1.3.0's
evaluator and the fast one with the same ``random_state`` (hence the same subsets) and the
same prediction model, and reports the rank correlation of their values and the noisy-label
detection of each (AUROC, and OpenDataVal's 2-means F1). Settings:

- ``paper``: PROTOCOL.md's train kwargs (classification lr 0.1, which collapses the MLP to
  one class on these datasets: values then carry little signal for either implementation);
- ``learning``: the same but classification at lr 0.01, a model that learns.

The prediction model's validation score next to the constant prediction's is reported for
each setting. With ``--reference`` a second OpenDataVal run (another torch seed) gives the
agreement of OpenDataVal with itself, the yardstick for the fast one.

    python benchmarks/compare_fast_baselines.py --budget 1000 --seeds 0 1 2 \\
        --markdown results/fast_baselines/comparison.md

Needs the datasets: ``LOSSVAL_ODV_DATA`` (or scikit-learn's OpenML cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_batched.py

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import baseline_cells as cells  # noqa: E402

from opendataval.experiment.exper_methods import noisy_detection  # noqa: E402

SETTINGS = {
    "paper": cells.PAPER_TRAIN,
    "learning": {
        **cells.PAPER_TRAIN,
        "classification": {"epochs": 5, "batch_size": 128, "lr": 0.01},
    },
}


def model_score(model, fetcher, task: str, train: dict) -> tuple[float, float]:
    """The prediction model's validation metric after one fit on the whole training set,
    and the constant prediction's (class prior / training mean)."""
    x_train, y_train, x_valid, y_valid, *_ = fetcher.datapoints
    fitted = model.clone()
    fitted.fit(x_train, y_train, **train)
    score = cells.metric(task)(y_valid, fitted.predict(x_valid))
    if task == "classification":
        return score, y_valid.mean(0).max().item()
    return score, -((y_valid - y_train.mean()) ** 2).mean().item()


def run(evaluator_cls, arguments, fetcher, model, task, train, seed):
    evaluator = evaluator_cls(random_state=seed, **arguments)
    start = time.perf_counter()
    evaluator.train(fetcher, model, cells.metric(task), **train)
    values = np.asarray(evaluator.evaluate_data_values(), dtype=float)
    elapsed = time.perf_counter() - start
    noisy = np.zeros(len(values), dtype=bool)
    noisy[fetcher.noisy_train_indices] = True
    f1 = noisy_detection(evaluator, fetcher)["kmeans_f1"]
    return values, roc_auc_score(noisy, -values), f1, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(cells.TASKS))
    parser.add_argument("--evaluators", nargs="+", default=list(cells.PAPER_BUDGETS))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--budget", type=int, default=None, help="num_models (default paper)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--reference", action="store_true", help="a second OpenDataVal run")
    parser.add_argument("--device", default="auto", help="of the fast evaluators")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    lines = [
        "| dataset | setting | evaluator | budget | seed | model score (constant) | rho(fast, odv) "
        + ("| rho(odv, odv') " if args.reference else "")
        + "| AUROC odv / fast | F1 odv / fast | s odv / fast |",
        "|---|---|---|---:|---:|---|---:|" + ("---:|" if args.reference else "") + "---|---|---|",
    ]
    for dataset in args.datasets:
        task = cells.TASKS[dataset]
        for setting in args.settings:
            train = SETTINGS[setting][task]
            for seed in args.seeds:
                fetcher = cells.noisy_split(dataset, seed=seed)
                model = cells.prediction_model(task, fetcher, seed=seed)
                score, constant = model_score(model, fetcher, task, train)
                for name in args.evaluators:
                    arguments = cells.scaled_budget(name, args.budget)
                    fast_arguments = {**arguments, "device": args.device}
                    torch.manual_seed(1000 + seed)
                    odv = run(cells.OPENDATAVAL[name], arguments, fetcher, model, task, train, seed)
                    fast = run(cells.FAST[name], fast_arguments, fetcher, model, task, train, seed)
                    reference = ""
                    if args.reference:
                        torch.manual_seed(2000 + seed)
                        again = run(
                            cells.OPENDATAVAL[name], arguments, fetcher, model, task, train, seed
                        )
                        reference = f"| {spearmanr(again[0], odv[0])[0]:.3f} "
                    budget = arguments.get("num_models", "n+1")
                    line = (
                        f"| {dataset} | {setting} | {name} | {budget} | {seed} "
                        f"| {score:.3f} ({constant:.3f}) | {spearmanr(fast[0], odv[0])[0]:.3f} "
                        f"{reference}| {odv[1]:.3f} / {fast[1]:.3f} | {odv[2]:.3f} / {fast[2]:.3f} "
                        f"| {odv[3]:.0f} / {fast[3]:.0f} |"
                    )
                    lines.append(line)
                    print(line, flush=True)

    header = (
        f"Fast retraining baselines vs OpenDataVal 1.3.0 "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n\n"
        f"- command: `python benchmarks/compare_fast_baselines.py {' '.join(sys.argv[1:])}`\n"
        f"- wall time {time.perf_counter() - started:.0f} s; load average at the end "
        f"{tuple(round(x, 1) for x in os.getloadavg())} on {os.cpu_count()} cores\n"
        f"- same random_state (same subsets), same initial weights; the fits' shuffles differ\n"
        f"- model score: the prediction model's validation accuracy / neg. MSE after one fit "
        f"on the training set, next to the constant prediction's\n"
    )
    table = "\n".join(lines)
    print("\n" + header + "\n" + table)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(header + "\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
