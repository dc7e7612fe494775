"""The 12 datasets: offline copies through DataFetcher, verification, errors, prefetch.

OpenML is unreachable here: the network path is exercised with scikit-learn's
``fetch_openml`` replaced by a fake that returns a small table (or fails).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from opendataval.dataloader import DataFetcher, Register

from lossval_odv.datasets import DATASETS, DatasetError, load_dataset, prefetch, sources, spec_of
from lossval_odv.datasets.loading import ELECTRICITY_SEED, undersample_majority

OFFLINE = [
    "2dplanes",
    "electricity",
    "pol",
    "fried",
    "kin8nm",
    "white_wine",
    "cpu_activity",
    "pumadyn32nh",
]
ROWS = {
    "2dplanes": 40768,
    "electricity": 38474,
    "pol": 15000,
    "fried": 40768,
    "kin8nm": 8192,
    "white_wine": 4898,
    "cpu_activity": 8192,
    "pumadyn32nh": 8192,
}


@pytest.fixture
def data_dir(shared_datasets, monkeypatch):
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(shared_datasets))
    return shared_datasets


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """OpenML unreachable and its cache empty, whatever this machine has."""

    def unreachable(**_):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr("sklearn.datasets.fetch_openml", unreachable)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "sklearn_cache"))


def test_all_twelve_are_registered_with_our_loaders():
    assert len(DATASETS) == 12
    for name, spec in DATASETS.items():
        entry = Register.Datasets[name]
        assert entry.one_hot == (spec.task == "classification")
    assert Register.Datasets["pol"].covar_label_func.func.__name__ == "load_pol"


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_dataset_loads_through_datafetcher(name, data_dir):
    spec = spec_of(name)
    x, y = load_dataset(name)
    assert x.shape == (ROWS[name], spec.n_columns) and len(y) == ROWS[name]
    assert x.dtype == np.float64 and not np.isnan(x).any() and not np.isnan(y).any()
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-7)
    std = x.std(axis=0)
    assert np.all(np.isclose(std, 1, atol=1e-6) | np.isclose(std, 0)), "z-scored (or constant)"
    if spec.task == "regression":
        assert abs(y.mean()) < 1e-7 and y.std() == pytest.approx(1, abs=1e-6)
    else:
        assert set(np.unique(y)) == {0, 1}
    fetcher = DataFetcher.setup(
        name,
        train_count=1000,
        valid_count=100,
        test_count=300,
        random_state=np.random.RandomState(0),
    )
    assert fetcher.x_train.shape == (1000, spec.n_columns)
    assert fetcher.y_train.shape[0] == 1000
    assert (fetcher.y_train.ndim == 2) == (spec.task == "classification")


def test_electricity_is_rebuilt_balanced_and_deterministic(data_dir):
    x1, y1 = load_dataset("electricity")
    assert np.bincount(y1).tolist() == [19237, 19237]
    table = pd.read_csv(data_dir / "electricity.csv.gz")
    again = undersample_majority(table, seed=ELECTRICITY_SEED)
    assert len(again) == 38474 and again.equals(undersample_majority(table, seed=ELECTRICITY_SEED))
    assert not again.equals(undersample_majority(table, seed=ELECTRICITY_SEED + 1))


def test_checksum_mismatch_is_refused(shared_datasets, tmp_path):
    shutil.copy(shared_datasets / "pol.csv.gz", tmp_path / "pol.csv.gz")
    with (tmp_path / "pol.csv.gz").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(
        DatasetError, match=r"pol.csv.gz failed its checksum \(expected sha256 514a"
    ):
        load_dataset("pol", data_dir_path=tmp_path)


def _write_table(directory: Path, name: str, table: pd.DataFrame, *, manifest: bool = True):
    path = directory / f"{name}.csv.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(table.to_csv(index=False).encode())
    if manifest:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        (directory / "checksums.sha256").write_text(f"{digest}  {path.name}\n")
    return path


def _fake_table(n_columns: int, rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        rng.normal(size=(rows, n_columns)), columns=[f"f{i}" for i in range(n_columns)]
    )
    table["target"] = rng.normal(size=rows)
    return table


def test_directory_manifest_verifies_files_it_lists(tmp_path):
    _write_table(tmp_path, "kin8nm", _fake_table(8))
    x, y = load_dataset("kin8nm", data_dir_path=tmp_path)
    assert x.shape == (60, 8)


def test_wrong_shape_and_corrupt_files_are_refused(tmp_path):
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    _write_table(wrong, "kin8nm", _fake_table(3))
    with pytest.raises(DatasetError, match="3 feature columns, but kin8nm has 8"):
        load_dataset("kin8nm", data_dir_path=wrong)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "kin8nm.csv.gz").write_bytes(b"this is not gzip")
    digest = hashlib.sha256(b"this is not gzip").hexdigest()
    (corrupt / "checksums.sha256").write_text(f"{digest}  kin8nm.csv.gz\n")
    with pytest.raises(DatasetError, match="could not be read as a gzip CSV"):
        load_dataset("kin8nm", data_dir_path=corrupt)
    unlisted = tmp_path / "unlisted"
    unlisted.mkdir()
    _write_table(unlisted, "nomao", _fake_table(118), manifest=False)
    with pytest.raises(DatasetError, match="no checksum to verify against"):
        load_dataset("nomao", data_dir_path=unlisted)


def test_missing_dataset_message_says_where_it_looked_and_what_to_do(tmp_path, no_network):
    with pytest.raises(DatasetError) as error:
        load_dataset("nomao", data_dir_path=tmp_path)
    message = str(error.value)
    assert "dataset 'nomao' is not available" in message
    assert f"data directory {tmp_path}: no nomao.csv.gz" in message
    assert "OpenML cache (id 1486)" in message and "network unreachable" in message
    assert "lossval-odv prefetch --data-dir DIR" in message and "LOSSVAL_ODV_DATA" in message


def test_unknown_name_lists_the_datasets():
    with pytest.raises(KeyError, match="the benchmark datasets are: 2dplanes"):
        load_dataset("mnist2")


def _fake_fetch_openml(fail_on: int | None = None):
    def fetch(*, data_id, **_):
        if data_id == fail_on:
            raise OSError("connection reset (test)")
        spec = next(s for s in DATASETS.values() if s.openml_id == data_id)
        table = _fake_table(spec.n_columns, seed=data_id)
        return SimpleNamespace(data=table.drop(columns="target"), target=table["target"])

    return fetch


def test_prefetch_writes_verified_files_that_load_back(tmp_path, monkeypatch):
    monkeypatch.setattr("sklearn.datasets.fetch_openml", _fake_fetch_openml())
    out = prefetch(tmp_path / "data", ["kin8nm", "superconductivity"])
    manifest = (out / "checksums.sha256").read_text().splitlines()
    assert len(manifest) == 2
    for line in manifest:
        digest, name = line.split()
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    x, _ = load_dataset("superconductivity", data_dir_path=out)
    assert x.shape == (60, 81)
    first = (out / "kin8nm.csv.gz").read_bytes()
    prefetch(out, ["kin8nm"])
    assert (out / "kin8nm.csv.gz").read_bytes() == first, "gzip mtime 0: same data, same bytes"


def test_failed_prefetch_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr("sklearn.datasets.fetch_openml", _fake_fetch_openml(fail_on=44964))
    with pytest.raises(OSError, match="connection reset"):
        prefetch(tmp_path, ["kin8nm", "superconductivity", "wave_energy"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checksums.sha256", "kin8nm.csv.gz"]
    assert "superconductivity" not in (tmp_path / "checksums.sha256").read_text()
