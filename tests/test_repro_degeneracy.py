"""Degenerate baselines diagnosed (issue 14): the prediction-model checks, the values'
diagnosis, the ``train``/``tasks``/``runs`` method options, ``run --methods``, and the
report."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from lossval_odv import cli
from lossval_odv.bench.config import ConfigError, parse_config
from lossval_odv.bench.grid import expand
from lossval_odv.bench.model_checks import (
    ModelCheck,
    diagnose_classification,
    diagnose_regression,
    model_checks_of,
    run_check,
)
from lossval_odv.bench.models import baseline_training
from lossval_odv.bench.runner import run_benchmark
from lossval_odv.bench.store import ResultStore
from lossval_odv.reporting.degeneracy import smaller_group, values_diagnosis
from lossval_odv.reporting.report import build_report
from tests.helpers import grid_config

OOB = {"name": "oob", "evaluator": "fastdataoob", "params": {"num_models": 10}}
LEARNS = {**OOB, "name": "oob_learns", "train": {"classification": {"lr": 0.01}}}
NO_EXPERIMENTS = {"removal": False, "discovery": False}


def _config(methods, **overrides):
    return parse_config(
        grid_config(methods=methods, **{"runs": 1, "experiments": NO_EXPERIMENTS, **overrides})
    )


# --- the exact 2-means split and the values' diagnosis ---------------------------------


def _brute_force_smaller_group(values: np.ndarray) -> int:
    x = np.sort(values.astype(np.float64))
    within = [x[:c].var() * c + x[c:].var() * (len(x) - c) for c in range(1, len(x))]
    cut = int(np.argmin(within)) + 1
    return min(cut, len(x) - cut)


@pytest.mark.parametrize("seed", range(5))
def test_smaller_group_is_the_best_cut(seed):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0, 1, 150), rng.normal(4, 1, 50 + 10 * seed)])
    assert smaller_group(values) == _brute_force_smaller_group(values)


def test_values_diagnosis_tells_constant_handful_and_informative_apart():
    n = 1000
    assert values_diagnosis(np.full(n, 0.25)) == ("constant", 0)
    handful = np.zeros(n)
    handful[:3] = 5.0  # 2-means splits off the 3 outliers: the authors' F1 of 0.002
    assert values_diagnosis(handful) == ("near-constant", 3)
    rng = np.random.default_rng(0)
    bimodal = np.concatenate([rng.normal(0, 0.5, 800), rng.normal(10, 0.5, 200)])
    assert values_diagnosis(bimodal) == ("", 200)


# --- the prediction-model checks -------------------------------------------------------


def test_classification_diagnosis():
    y = np.eye(2)[np.array([0] * 60 + [1] * 40)]
    one_class = np.tile([0.9, 0.1], (100, 1))
    collapsed = diagnose_classification(one_class, one_class, y, y)
    assert collapsed["collapsed"] and collapsed["classes_predicted"] == 1
    assert collapsed["test_score"] == pytest.approx(0.6) == collapsed["baseline_score"]
    assert "one class" in collapsed["reason"]
    learned = diagnose_classification(y * 0.8 + 0.1, y * 0.8 + 0.1, y, y)
    assert not learned["collapsed"] and learned["test_score"] == 1.0 and learned["reason"] == ""


def test_regression_diagnosis():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 1))
    constant = diagnose_regression(np.zeros(200), np.full(200, 0.01), y, y)
    assert constant["collapsed"] and "constant output" in constant["reason"]
    shuffled = diagnose_regression(y, rng.permutation(y), y, y)  # spread ok, R² < 0
    assert shuffled["collapsed"] and "no better than predicting the mean" in shuffled["reason"]
    good = diagnose_regression(y, y + 0.1 * rng.normal(size=(200, 1)), y, y)
    assert not good["collapsed"] and good["test_score"] > 0.95


def test_one_check_per_split_and_training_for_retraining_methods_only():
    config = _config([OOB, {**OOB, "name": "oob2", "params": {"num_models": 20}}, LEARNS,
                      {"name": "knn", "evaluator": "knnshapley"}])  # fmt: skip
    checks = model_checks_of(expand(config))
    # 2 datasets; the lr 0.01 training differs from the protocol's on tiny_clf only
    assert sorted((c.cell.dataset, c.training["lr"]) for c in checks) == [
        ("tiny_clf", 0.01),
        ("tiny_clf", 0.1),
        ("tiny_reg", 0.01),
    ]


def test_a_check_is_deterministic():
    cell = expand(_config([OOB]))[0]
    check = ModelCheck(
        cell=cell, task="classification", training=baseline_training("classification")
    )
    assert run_check(check) == run_check(check)


# --- config options ----------------------------------------------------------------------


def test_train_is_refused_for_an_evaluator_without_a_prediction_model():
    knn = {"name": "knn", "evaluator": "knnshapley", "train": {"classification": {"lr": 0.01}}}
    with pytest.raises(ConfigError, match="knnshapley.*does not fit the baselines' prediction"):
        _config([knn])


def test_train_rejects_unknown_fields_and_bad_values():
    with pytest.raises(ConfigError, match="momentum"):
        _config([{**OOB, "train": {"classification": {"momentum": 0.9}}}])
    with pytest.raises(ConfigError, match="lr"):
        _config([{**OOB, "train": {"classification": {"lr": 0}}}])


def test_train_enters_the_key_only_when_set_and_reaches_the_fit():
    plain, learns = expand(_config([OOB, LEARNS], datasets=["tiny_clf"]))
    assert plain.train is None and learns.train == {"classification": {"lr": 0.01}}
    assert plain.key != learns.key
    assert baseline_training("classification", learns.train)["lr"] == 0.01
    assert baseline_training("regression", learns.train) == baseline_training("regression")


def test_tasks_restricts_a_method_to_its_datasets():
    reg_only = {**OOB, "name": "reg_only", "metric": "accuracy", "tasks": ["regression"]}
    cells = expand(_config([OOB, reg_only]))
    assert sorted((c.dataset, c.method) for c in cells) == [
        ("tiny_clf", "oob"),
        ("tiny_reg", "oob"),
        ("tiny_reg", "reg_only"),
    ]


def test_a_method_whose_tasks_match_no_dataset_is_refused():
    clf_only = {**OOB, "tasks": ["classification"]}
    with pytest.raises(ConfigError, match="'oob' runs on classification datasets only"):
        _config([clf_only], datasets=["tiny_reg"])


def test_a_methods_runs_are_the_first_runs_of_the_config():
    knn = {"name": "knn", "evaluator": "knnshapley"}
    three_runs = expand(_config([OOB, knn], runs=3, datasets=["tiny_clf"]))
    fewer = expand(_config([{**OOB, "runs": 1}, knn], runs=3, datasets=["tiny_clf"]))
    assert sorted((c.method, c.run) for c in fewer) == [
        ("knn", 0),
        ("knn", 1),
        ("knn", 2),
        ("oob", 0),
    ]
    # the same cells as in the config with every method at 3 runs: stored cells stay done
    assert {c.key for c in fewer} < {c.key for c in three_runs}


def test_a_method_with_more_runs_than_the_config_is_refused():
    with pytest.raises(ConfigError, match="'oob' asks for 3 runs, more than the config's runs"):
        _config([{**OOB, "runs": 3}], runs=2)


# --- run and report ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def checked_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("degeneracy")
    config = _config([OOB, LEARNS, {"name": "knn", "evaluator": "knnshapley"}])
    summary = run_benchmark(config, output_dir=out, backend="serial", progress=False)
    assert summary.ok and summary.computed == 6
    return config, out, summary


def test_run_stores_the_checks_and_a_rerun_adds_none(checked_run):
    config, out, summary = checked_run
    store = ResultStore(summary.store)
    checks = store.model_checks_frame()
    assert len(checks) == 3
    assert set(checks["training"]) == {
        '{"batch_size": 128, "epochs": 5, "lr": 0.1}',
        '{"batch_size": 128, "epochs": 5, "lr": 0.01}',
        '{"batch_size": 32, "epochs": 5, "lr": 0.01}',
    }
    finished = set(checks["finished_at"])
    run_benchmark(config, output_dir=out, backend="serial", progress=False)
    assert set(store.model_checks_frame()["finished_at"]) == finished


def test_report_joins_each_retraining_cell_to_its_check(checked_run):
    config, out, summary = checked_run
    build_report(config, store_path=summary.store, output_dir=out / "report")
    cells = pd.read_csv(out / "report" / "tables" / "degeneracy_cells.csv")
    retraining = cells[cells["method"].isin(["oob", "oob_learns"])]
    assert set(retraining["model"]) <= {"collapsed", "learns"}
    assert cells.loc[cells["method"] == "knn", "model"].isna().all()  # fits no model
    text = (out / "report" / "report.md").read_text()
    assert "## Degenerate baselines" in text and "The checks, per dataset and training" in text


def test_report_states_the_runs_of_a_method_with_fewer(tmp_path):
    knn = {"name": "knn", "evaluator": "knnshapley", "label": "KNN"}
    config = _config([{**OOB, "runs": 1, "label": "OOB"}, knn], runs=2, datasets=["tiny_clf"])
    summary = run_benchmark(config, output_dir=tmp_path, backend="serial", progress=False)
    assert summary.ok and summary.computed == 3
    build_report(config, store_path=summary.store, output_dir=tmp_path)
    assert "runs per setting: 2 (OOB: 1)" in (tmp_path / "report.md").read_text()


def test_run_methods_computes_a_piece(tmp_path):
    config = _config([OOB, {"name": "knn", "evaluator": "knnshapley"}])
    summary = run_benchmark(
        config, output_dir=tmp_path, backend="serial", progress=False, methods=["knn"]
    )
    assert (summary.total, summary.computed) == (2, 2)
    with sqlite3.connect(summary.store) as conn:
        assert {row[0] for row in conn.execute("SELECT method FROM cells")} == {"knn"}
    with pytest.raises(ConfigError, match=r"--methods: \['lava'\] not in config"):
        run_benchmark(config, output_dir=tmp_path, backend="serial", methods=["lava"])


def test_stores_without_checks_are_read_and_merged(checked_run, tmp_path):
    _, _, summary = checked_run
    bare = tmp_path / "bare.sqlite"
    with sqlite3.connect(summary.store) as source, sqlite3.connect(bare) as target:
        source.backup(target)
        target.execute("DROP TABLE model_checks")
    assert ResultStore(bare).model_checks_frame().empty  # a store from before the checks
    assert ResultStore(bare).count() == 6
    merged = ResultStore(tmp_path / "merged.sqlite")
    merged.merge_from([bare, summary.store])
    assert len(merged.model_checks_frame()) == 3


def _tiny_config_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: c\nplugins: [tests.tiny_datasets]\ndatasets: [tiny_clf]\n"
        "noise_types: [label]\nnoise_rates: [0.2]\n"
        "methods: [{name: r, evaluator: randomevaluator}]\n"
    )
    return config


def test_cli_refuses_a_missing_reference(tmp_path, capsys):
    config = _tiny_config_file(tmp_path)
    assert cli.main(["report", str(config), "--reference", str(tmp_path / "nowhere")]) == 2
    assert "reference directory" in capsys.readouterr().err


def test_cli_refuses_a_bad_device_before_any_compute(tmp_path, capsys):
    config = _tiny_config_file(tmp_path)
    out = tmp_path / "out"
    assert cli.main(["run", str(config), "--device", "gpu7", "--output-dir", str(out)]) == 2
    assert "--device: 'gpu7' is not a device" in capsys.readouterr().err
    assert not out.exists()


def test_a_diagnostic_method_is_left_out_of_the_claims(checked_run):
    config, out, summary = checked_run
    knn = {"name": "knn", "evaluator": "knnshapley", "claims": False, "label": "KNN diag"}
    diagnostic = _config([OOB, LEARNS, knn])
    assert [c.key for c in expand(diagnostic)] == [c.key for c in expand(config)]
    build_report(diagnostic, store_path=summary.store, output_dir=out / "diagnostic")
    text = (out / "diagnostic" / "report.md").read_text()
    claims = text.split("## Paper claims vs this run")[1].split("\n## ")[0]
    assert "diagnostics of this config (`claims: false`): KNN diag." in claims
    assert "KNN diag" not in claims.split("| claim |")[1]  # not in the evidence
    assert "KNN diag" in text.split("## Degenerate baselines")[1]  # reported elsewhere
