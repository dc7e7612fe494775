"""The baselines' utility metric as a config option (issue 14): validated before compute,
part of a cell's key only when set, and the authors' regression bug reproduced by it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lossval_odv.bench.cell import compute_cell
from lossval_odv.bench.config import ConfigError, load_config, parse_config
from lossval_odv.bench.grid import expand
from tests.helpers import grid_config

REPO = Path(__file__).resolve().parents[1]


def _oob_config(evaluator: str, **method) -> dict:
    return grid_config(
        datasets=["tiny_reg"],
        runs=1,
        methods=[{"name": "oob", "evaluator": evaluator, "params": {"num_models": 20}, **method}],
        experiments={"removal": False, "discovery": False},
    )


def test_unknown_metric_is_refused_naming_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"methods\.0\.metric.*'mse'.*accuracy, neg_l2, neg_mse"):
        parse_config(_oob_config("dataoob", metric="mse"))


def test_same_method_with_another_metric_is_not_a_duplicate():
    config = _oob_config("dataoob")
    config["methods"].append({**config["methods"][0], "name": "oob_acc", "metric": "accuracy"})
    cells = expand(parse_config(config))
    assert [c.metric for c in cells] == [None, "accuracy"]
    assert cells[0].key != cells[1].key


def test_metric_enters_the_key_only_when_set():
    unset = expand(parse_config(_oob_config("dataoob")))[0]
    default_named = expand(parse_config(_oob_config("dataoob", metric="neg_mse")))[0]
    assert unset.metric is None
    # naming upstream's default is another cell: the key says what the config asked for
    assert unset.key != default_named.key


def test_committed_quick_config_keeps_its_stored_keys():
    store = REPO / "results" / "quick" / "store.sqlite"
    with sqlite3.connect(store) as conn:
        stored = {row[0] for row in conn.execute("SELECT key FROM cells")}
    expanded = {cell.key for cell in expand(load_config(REPO / "configs" / "quick.yaml"))}
    assert expanded == stored


@pytest.mark.parametrize("evaluator", ["dataoob", "fastdataoob"])
def test_accuracy_on_regression_reproduces_the_authors_degenerate_baselines(evaluator):
    """OpenDataVal's ``accuracy`` compares the argmax of one-column tensors (always 0), so
    every utility is 1 and the values constant: 2-means then splits off at most one point,
    F1 <= 2 / (n_noisy + 1) (the authors' 0.002 at n = 1000). ``neg_mse`` learns."""
    results = {}
    for metric in ("accuracy", "neg_mse"):
        cell = expand(parse_config(_oob_config(evaluator, metric=metric)))[0]
        result = compute_cell(cell)
        assert result.status == "ok", result.error
        results[metric] = result
    broken, working = results["accuracy"], results["neg_mse"]
    n_noisy = len(broken.noisy_indices)
    assert np.ptp(broken.values) == 0
    assert broken.metrics["f1"] <= 2 / (n_noisy + 1)
    assert np.ptp(working.values) > 0
    assert working.metrics["f1"] > 0.4  # 20% planted label noise: chance is about 0.2-0.33
