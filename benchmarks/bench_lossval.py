"""Speed of one LossVal run: lossval-odv's trainer vs the straightforward published form.

One run = 1000 train / 100 validation points with 20% label noise, at 5 and 30 epochs,
on a 10-feature (2dplanes) and a ~50-feature (pol, 48) dataset. The straightforward form
is the method as the authors published it: a shuffled DataLoader, and every batch a new
``SamplesLoss`` whose diameter comes from ``cdist(...).max().item()``. Both start from
the same seed (same initial network); they shuffle with different generators, so their
F1 agree within run-to-run noise, which the table shows over ``--seeds`` seeds.

    python benchmarks/bench_lossval.py [--seeds 3] [--device cpu|cuda] [--datasets ...]

Needs the datasets (LOSSVAL_ODV_DATA or the config's data directory).
"""

from __future__ import annotations

import argparse
import resource
import time
from functools import partial

import numpy as np
import torch
from geomloss import SamplesLoss

import lossval_odv  # noqa: F401  (compatibility layer and dataset registry)
from lossval_odv.core import fit_lossval, make_mlp, per_sample_loss, resolve_device
from lossval_odv.core.runtime import intra_op_threads
from lossval_odv.core.validation import check_inputs

from opendataval.dataloader import DataFetcher, mix_labels
from opendataval.experiment.util import f1_score, oned_twonn_clustering


def straightforward_lossval(x_train, y_train, x_val, *, task, epochs, seed, device):
    """LossVal written the direct way: DataLoader batches, per-batch loss and diameter."""
    x_train, y_train, x_val = check_inputs(x_train, y_train, x_val, task=task)
    x = torch.tensor(x_train, dtype=torch.float32, device=device)
    y = torch.tensor(y_train, dtype=torch.float32, device=device)
    xv = torch.tensor(x_val, dtype=torch.float32, device=device)
    torch.manual_seed(seed)
    model = make_mlp(task=task, n_features=x.shape[1], n_outputs=y.shape[1]).to(device)
    weights = torch.nn.Parameter(torch.ones(len(x), device=device))
    optimizer = torch.optim.Adam([*model.parameters(), weights], lr=0.01)
    dataset = torch.utils.data.TensorDataset(x, y, torch.arange(len(x), device=device))
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True)
    for _ in range(epochs):
        for xb, yb, idx in loader:
            diameter = 1.1 * torch.cdist(xb, xv).max().item()
            sinkhorn = SamplesLoss("sinkhorn", p=2, blur=0.05, diameter=diameter)
            wb = weights[idx]
            loss = (wb * per_sample_loss(task=task, outputs=model(xb), targets=yb)).sum()
            loss = loss * sinkhorn(wb, xb, torch.ones(len(xv), device=device), xv) ** 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return weights.detach().cpu().numpy()


def lossval_odv_form(x_train, y_train, x_val, *, task, epochs, seed, device):
    """lossval-odv's trainer, with the same arguments as the straightforward form."""
    return fit_lossval(
        x_train, y_train, x_val, task=task, epochs=epochs, random_state=seed, device=device
    ).values


FORMS = {"straightforward": straightforward_lossval, "lossval-odv": lossval_odv_form}


def _noisy_split(name: str, seed: int):
    fetcher = DataFetcher.setup(
        name,
        train_count=1000,
        valid_count=100,
        test_count=100,
        random_state=np.random.RandomState(seed),
        add_noise=mix_labels,
        noise_kwargs={"noise_rate": 0.2},
    )
    x, y, xv, *_ = fetcher.datapoints
    return np.asarray(x), np.asarray(y), np.asarray(xv), fetcher.noisy_train_indices


def _timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    values = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return values, time.perf_counter() - start, peak


def _forms(device: torch.device) -> dict[str, tuple]:
    """Row label -> (form, torch threads): the straightforward form at torch's thread count
    and (on CPU) at one thread, so that the speed-up is against its faster setting;
    lossval-odv with its defaults (on CPU its loop runs on one thread)."""
    forms = {f"straightforward ({torch.get_num_threads()} threads)": ("straightforward", None)}
    if device.type == "cpu" and torch.get_num_threads() > 1:
        forms["straightforward (1 thread)"] = ("straightforward", 1)
    forms["lossval-odv"] = ("lossval-odv", None)
    return forms


def _warm_up(forms: dict[str, tuple], device: torch.device) -> None:
    """One untimed short run of every form: first-call costs stay out of the table."""
    x, y, xv, _ = _noisy_split("2dplanes", 99)
    for form, threads in forms.values():
        with intra_op_threads(threads):
            FORMS[form](x, y, xv, task="classification", epochs=1, seed=0, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["2dplanes", "pol"])
    parser.add_argument("--epochs", nargs="+", type=int, default=[5, 30])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    forms = _forms(device)
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    _warm_up(forms, device)
    mem = "peak GPU MiB" if device.type == "cuda" else "process peak RSS MiB"
    print(f"| dataset | d | epochs | form | s/run (mean of {args.seeds}) | F1 mean ± sd | {mem} |")
    print("|---|---|---|---|---|---|---|")
    for name in args.datasets:
        for epochs in args.epochs:
            rows = {}
            for label, (form, threads) in forms.items():
                seconds, f1s, peak = [], [], 0.0
                for seed in range(args.seeds):
                    x, y, xv, noisy = _noisy_split(name, seed)
                    task = "classification" if y.ndim == 2 and y.shape[1] > 1 else "regression"
                    with intra_op_threads(threads):
                        values, dt, peak = _timed(
                            partial(
                                FORMS[form],
                                x,
                                y,
                                xv,
                                task=task,
                                epochs=epochs,
                                seed=seed,
                                device=device,
                            ),
                            device,
                        )
                    seconds.append(dt)
                    low, _ = oned_twonn_clustering(values)
                    f1s.append(f1_score(low, noisy, len(values)))
                rows[label] = np.mean(seconds)
                print(
                    f"| {name} | {x.shape[1]} | {epochs} | {label} | {np.mean(seconds):.2f} | "
                    f"{np.mean(f1s):.3f} ± {np.std(f1s):.3f} | {peak:.0f} |"
                )
            baseline = min(v for k, v in rows.items() if k.startswith("straightforward"))
            speedup = baseline / rows["lossval-odv"]
            print(f"|  |  |  | speed-up vs the faster straightforward | {speedup:.1f}x |  |  |")


if __name__ == "__main__":
    main()
