"""Datasets from files and OpenML ids in a config (issue 15, item 3): the same checks and
preprocessing as the paper's datasets, the file's checksum in every cell's key, and clear
errors naming the key before anything is computed."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lossval_odv.bench.config import ConfigError, load_config
from lossval_odv.bench.grid import GRID_VERSION, expand
from lossval_odv.bench.store import ResultStore
from lossval_odv.cli import main as cli_main
from lossval_odv.datasets.errors import DatasetIntegrityError, DatasetUnavailableError
from lossval_odv.datasets.tables import load_table

from opendataval.dataloader import Register

ROWS = 260
ENTRY = {"file": "data/points.csv", "target": "label", "task": "classification"}
CONFIG = {
    "name": "table",
    "noise_types": ["label"],
    "noise_rates": [0.2],
    "runs": 1,
    "split": {"train": 100, "valid": 20, "test": 100},
    "backend": "serial",
    "experiments": {"removal": False, "discovery": False},
    "methods": [{"name": "knn", "evaluator": "knnshapley", "params": {"k_neighbors": 5}}],
}


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    x = rng.normal(loc=3.0, scale=[1.0, 2.0, 0.5], size=(ROWS, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["colour"] = rng.choice(["red", "blue"], size=ROWS)  # categorical: dropped
    frame["label"] = np.where(x[:, 0] - x[:, 1] / 2 > 2.0, "yes", "no")
    return frame


def _setup(tmp_path: Path, entry: dict | None = None, frame: pd.DataFrame | None = None) -> Path:
    """A config in tmp_path/cfg naming a CSV in tmp_path/cfg/data (relative path)."""
    folder = tmp_path / "cfg"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (_frame() if frame is None else frame).to_csv(folder / "data" / "points.csv", index=False)
    config = {**CONFIG, "datasets": [entry or ENTRY], "output_dir": str(tmp_path / "out")}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_csv_is_preprocessed_like_the_papers_datasets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the path is relative to the config, not to here
    config = load_config(_setup(tmp_path))
    assert config.dataset_names == ["points"]
    x, y = Register.Datasets["points"].load_data()
    frame = _frame()
    raw = frame[["a", "b", "c"]].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(x, (raw - raw.mean(0)) / (raw.std(0) + 1e-8), rtol=0, atol=1e-12)
    assert Register.Datasets["points"].one_hot  # classification: one-hot labels for OpenDataVal
    np.testing.assert_array_equal(np.argmax(y, axis=1), (frame["label"] == "yes").to_numpy())


def test_a_gzip_csv_gives_the_same_data_and_the_same_cells(tmp_path: Path) -> None:
    plain = load_config(_setup(tmp_path))
    data = (tmp_path / "cfg" / "data" / "points.csv").read_bytes()
    (tmp_path / "cfg" / "data" / "points.csv.gz").write_bytes(gzip.compress(data, mtime=0))
    entry = {**ENTRY, "file": "data/points.csv.gz", "name": "points_gz"}
    packed = load_config(_setup(tmp_path, entry))
    a, b = plain.table_sources["points"], packed.table_sources["points_gz"]
    for left, right in zip(load_table(a), load_table(b), strict=True):
        np.testing.assert_array_equal(left, right)


def test_a_parquet_file_gives_the_same_data(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    plain = load_config(_setup(tmp_path))
    _frame().to_parquet(tmp_path / "cfg" / "data" / "points.parquet")
    entry = {**ENTRY, "file": "data/points.parquet", "name": "points_pq"}
    parquet = load_config(_setup(tmp_path, entry))
    for left, right in zip(
        load_table(plain.table_sources["points"]),
        load_table(parquet.table_sources["points_pq"]),
        strict=True,
    ):
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"file": "data/missing.csv"}, r"datasets\.0: .*data/missing\.csv does not exist"),
        ({"target": "lable"}, r"datasets\.0: .*no target column 'lable'; its columns: a, b, c"),
        ({"task": "clasification"}, r"datasets\.0\.task: Input should be 'classification'"),
        ({"task": None}, r"datasets\.0\.task: Field required"),
        ({"target": None}, r"datasets\.0: .*file: needs target:"),
        ({"openml": 44980}, r"datasets\.0: .*either file: .* or openml:"),
        ({"task": "regression"}, r"datasets\.0: .*column 'label' is not numeric: row 1 holds"),
        ({"name": "pol"}, r"datasets\.0: .*'pol' is one of the paper's datasets"),
        ({"file": "config.yaml"}, r"datasets\.0: .*unknown format; use one of \.csv"),
    ],
)
def test_bad_entries_are_refused_naming_the_key(tmp_path: Path, change, message) -> None:
    entry = {k: v for k, v in {**ENTRY, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        load_config(_setup(tmp_path, entry))


def test_a_bad_value_is_refused_naming_its_column_and_row(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[6, "b"] = np.nan
    with pytest.raises(ConfigError, match=r"column 'b' holds a missing or NaN value in row 7"):
        load_config(_setup(tmp_path, frame=frame))


def test_the_files_checksum_is_in_every_cell_key(tmp_path: Path) -> None:
    path = _setup(tmp_path)
    before = expand(load_config(path))
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "data").mkdir()
    (moved / "data" / "points.csv").write_bytes((path.parent / "data/points.csv").read_bytes())
    (moved / "config.yaml").write_text(path.read_text())
    same = expand(load_config(moved / "config.yaml"))
    assert [c.key for c in same] == [c.key for c in before]  # the place is not the identity
    _frame(seed=1).to_csv(path.parent / "data" / "points.csv", index=False)
    after = expand(load_config(path))
    assert {c.key for c in after}.isdisjoint(c.key for c in before)


def test_a_registered_datasets_cell_key_is_the_one_stores_already_hold() -> None:
    from lossval_odv.bench.grid import Cell

    cell = Cell("pol", "label", 0.2, 0, "knn", "knnshapley", {}, (1, 1, 1), 1, 2, {})
    left_out = ("data_dir", "metric", "table", "train")  # unset: as before these options existed
    payload = {k: v for k, v in asdict(cell).items() if k not in left_out}
    payload["grid_version"] = GRID_VERSION
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
    assert cell.key == digest


def test_a_file_changed_after_the_config_was_read_is_refused(tmp_path: Path) -> None:
    path = _setup(tmp_path)
    source = load_config(path).table_sources["points"]
    _frame(seed=2).to_csv(path.parent / "data" / "points.csv", index=False)
    with pytest.raises(DatasetIntegrityError, match=r"points\.csv changed since the config"):
        load_table(source)


def test_an_openml_entry_loads_its_default_target(tmp_path: Path, monkeypatch) -> None:
    import sklearn.datasets
    from sklearn.utils import Bunch

    frame = _frame()
    asked = {}

    def fetch_openml(*, data_id, target_column, **_):
        asked.update(data_id=data_id, target_column=target_column)
        return Bunch(data=frame.drop(columns="label"), target=frame["label"])

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fetch_openml)
    config = load_config(_setup(tmp_path, {"openml": 4321, "task": "classification"}))
    assert config.dataset_names == ["openml-4321"]
    x, _ = Register.Datasets["openml-4321"].load_data()
    assert asked == {"data_id": 4321, "target_column": "default-target"}
    assert x.shape == (ROWS, 3)  # colour dropped


def test_an_unreachable_openml_id_is_an_environment_failure(tmp_path: Path, monkeypatch) -> None:
    import sklearn.datasets

    from lossval_odv.bench.failures import ENVIRONMENT, failure_cause

    def fetch_openml(**_):
        raise OSError("network is unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fetch_openml)
    source = load_config(_setup(tmp_path, {"openml": 4322, "task": "regression"})).table_sources
    with pytest.raises(DatasetUnavailableError, match="OpenML 4322 could not be loaded") as error:
        load_table(source["openml-4322"])
    assert failure_cause(f"{type(error.value).__name__}: {error.value}") == ENVIRONMENT


def test_lossval_odv_run_on_a_csv_end_to_end(tmp_path: Path, capsys) -> None:
    path = _setup(tmp_path)
    assert cli_main(["run", str(path), "--quiet"]) == 0
    store = ResultStore(tmp_path / "out" / "store.sqlite")
    assert len(store.finished_keys()) == 1
    assert "points" in (tmp_path / "out" / "report.md").read_text()
    # a changed file: a new cell, computed; the old result is not reused
    _frame(seed=3).to_csv(path.parent / "data" / "points.csv", index=False)
    assert cli_main(["run", str(path), "--quiet"]) == 0
    assert len(store.finished_keys()) == 2
    assert "1 to compute" in capsys.readouterr().err


def test_cells_register_their_file_dataset_in_a_fresh_process(tmp_path: Path) -> None:
    # as a worker does: only the cell, no config
    cell = expand(load_config(_setup(tmp_path)))[0]
    renamed = replace(
        cell, dataset="points_worker", table=replace(cell.table, name="points_worker")
    )
    from lossval_odv.bench.cell import compute_cell

    assert "points_worker" not in Register.Datasets
    result = compute_cell(renamed)
    assert result.status == "ok", result.error
    assert result.task == "classification"
