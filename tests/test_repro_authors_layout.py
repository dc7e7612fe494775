"""Our results in the LossVal authors' layout (issue 14): the files their scripts read,
read back through the reference comparison."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lossval_odv.bench.config import parse_config
from lossval_odv.bench.runner import run_benchmark
from lossval_odv.bench.store import ResultStore
from lossval_odv.reporting.authors_layout import AUTHORS_COLUMNS, authors_method_name
from lossval_odv.reporting.reference import compare, parse_method, read_reference
from lossval_odv.reporting.report import build_report

CONFIG = {
    "name": "authors",
    "datasets": ["tiny_clf", "tiny_reg"],
    "noise_types": ["label", "mixed"],
    "noise_rates": [0.1, 0.2],
    "runs": 2,
    "split": {"train": 100, "valid": 20, "test": 100},
    "plugins": ["tests.tiny_datasets"],
    "backend": "serial",
    "experiments": {"removal": False, "discovery": False},
    "methods": [
        {"name": "lossval", "evaluator": "lossvalodv", "params": {"epochs": 1}},
        {"name": "knn", "evaluator": "knnshapley", "params": {"k_neighbors": 5}, "label": "KNN"},
        {"name": "random", "evaluator": "randomevaluator"},
    ],
}


def test_method_names_read_back_with_their_params():
    name = authors_method_name("fastdataoob", {"num_models": 50}, "neg_mse")
    assert name == "DataOob(num_models=50, metric='neg_mse')"
    assert parse_method(name) == ("DataOob", {"metric": "neg_mse", "num_models": 50})
    sampler = {"kind": "tmc", "mc_epochs": 10}
    name = authors_method_name("datashapley", {"sampler": sampler})
    assert parse_method(name) == ("DataShapley", {"sampler": sampler})


def test_exported_layout_reads_back_as_our_own_numbers(tmp_path: Path):
    out = tmp_path / "out"
    config = parse_config(CONFIG)
    run_benchmark(config, output_dir=out, backend="serial", progress=False)
    results = build_report(config, store_path=out / "store.sqlite", output_dir=out)["results"]

    label_knn = (
        results / "baselines" / "regression" / "tiny_reg" / "noisy_label_detection_f1_scores.csv"
    )
    written = pd.read_csv(label_knn)
    assert list(written.columns) == AUTHORS_COLUMNS
    assert set(written["method"]) == {"KNNShapley(k_neighbors=5)", "RandomEvaluator()"}
    assert set(written["model"]) == {"regressionmlp (epochs=5, batch_size=32, lr=0.01)"}
    assert len(written) == 2 * 2 * 2  # methods x rates x runs
    lossval = (
        results / "lossval" / "classification" / "tiny_clf" / "mixed_noise_detection_f1_scores.csv"
    )
    assert set(pd.read_csv(lossval)["method"]) == {"LossVal(epochs=1)"}

    reference, skipped = read_reference(results)
    assert skipped == {}
    store = ResultStore(out / "store.sqlite").frame()
    ours = store.assign(method=store["method"].map({"knn": "KNN"}).fillna(store["method"]))
    table = compare(ours, reference, config)
    assert len(table) == 2 * 2 * 3  # datasets x noise types x methods
    assert (table["budget"] == "same").all()
    assert (table["paper_n"] == table["ours_n"]).all() and (table["ours_n"] == 4).all()
    assert table["diff"].abs().max() < 1e-12
    assert table["within_noise"].all()
