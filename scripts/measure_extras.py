"""Noisy-detection F1 and wall time of the extra evaluators (TracIn, LossTrajectory, cleanlab).

Data: ``tests.helpers.planted_noise_task(seed, task, n=1100)`` (20% label noise); the first
1000 points train, the last 100 (noisy too, as in the protocol) validate. CPU, 2 threads.

    python scripts/measure_extras.py detection   # F1 / AUC for seeds 0-3
    python scripts/measure_extras.py timing      # 5 repeats at seed 1, min and median
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from lossval_odv.core import fit_lossval  # noqa: E402  (installs the opendataval shims)
from lossval_odv.core.cleanlab_quality import cleanlab_values  # noqa: E402
from lossval_odv.core.loss_trajectory import loss_trajectory_values  # noqa: E402
from lossval_odv.core.tracin import tracin_values  # noqa: E402
from tests.helpers import planted_noise_task  # noqa: E402

TASKS = ("classification", "regression")


def split(seed: int, task: str):
    x, y, _, noisy = planted_noise_task(seed, task, n=1100)
    return x[:1000], y[:1000], x[1000:], y[1000:], noisy[noisy < 1000]


def methods(x, y, xv, yv, task, seed):
    common = {"task": task, "random_state": seed, "device": "cpu"}
    return {
        "TracIn self": lambda: tracin_values(x, y, mode="self", **common).values,
        "TracIn validation": lambda: (
            tracin_values(x, y, xv, yv, mode="validation", **common).values
        ),
        "LossTrajectory": lambda: loss_trajectory_values(x, y, **common).values,
        "CleanlabQuality": lambda: cleanlab_values(x, y, **common).values,
        "LossValODV (reference)": lambda: fit_lossval(x, y, xv, **common).values,
    }


def detection() -> None:
    from opendataval.experiment.util import f1_score, oned_twonn_clustering

    for task in TASKS:
        for seed in range(4):
            x, y, xv, yv, noisy = split(seed, task)
            is_noisy = np.isin(np.arange(len(x)), noisy)
            for name, run in methods(x, y, xv, yv, task, seed).items():
                values = run()
                low, _ = oned_twonn_clustering(values)
                f1 = f1_score(low, noisy, len(values))
                auc = roc_auc_score(is_noisy, -values)
                print(
                    f"{task:14s} seed={seed} {name:24s} F1={f1:.3f} AUC={auc:.3f} "
                    f"low-cluster={len(low)}",
                    flush=True,
                )


def timing(repeats: int = 5) -> None:
    for task in TASKS:
        x, y, xv, yv, _ = split(1, task)
        for name, run in methods(x, y, xv, yv, task, 1).items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            times.sort()
            print(
                f"{task:14s} {name:24s} min={times[0]:.2f}s median={times[len(times) // 2]:.2f}s",
                flush=True,
            )


if __name__ == "__main__":
    torch.set_num_threads(2)
    {"detection": detection, "timing": timing}[sys.argv[1] if len(sys.argv) > 1 else "detection"]()
