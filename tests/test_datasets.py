"""The dataset layer: registration, sources, verification, preprocessing, prefetch."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets
import sklearn.datasets._openml

from lossval_odv import datasets as ds
from lossval_odv.datasets import sources
from lossval_odv.datasets.catalog import DATASETS, SHIPPED_SHA256
from lossval_odv.datasets.preprocess import undersample

from opendataval.dataloader import DataFetcher, Register

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


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configured data dir, an empty sklearn cache, and no network by default."""
    ds.set_data_dir(None)
    monkeypatch.delenv(sources.ENV_DATA_DIR, raising=False)
    monkeypatch.delenv(sources.ENV_OFFLINE, raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "sklearn_home"))
    monkeypatch.setattr(sources, "OPENML_RETRIES", 1)
    monkeypatch.setattr(sources, "OPENML_DELAY", 0.01)

    def no_network(*_args: object, **_kwargs: object) -> None:
        raise URLError("network disabled in tests")

    monkeypatch.setattr(sklearn.datasets._openml, "urlopen", no_network)
    yield
    ds.set_data_dir(None)


def test_all_twelve_registered_and_upstream_replaced() -> None:
    assert len(DATASETS) == 12
    for name, spec in DATASETS.items():
        entry = Register.Datasets[name]
        assert getattr(entry, "_lossval_odv", False), name
        assert entry.one_hot == (spec.task == "classification")
    upstream = {"2dplanes", "electricity", "MiniBooNE", "pol", "fried", "nomao", "wave_energy"}
    assert set(ds.UPSTREAM_REGISTRATIONS) == upstream
    ds.register_datasets()  # idempotent, and keeps the original upstream objects
    assert set(ds.UPSTREAM_REGISTRATIONS) == upstream


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_dataset_loads_through_datafetcher(
    name: str, shared_datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (shared_datasets / f"{name}.csv.gz").exists():
        pytest.skip(f"{name}.csv.gz is not in {shared_datasets}")
    ds.set_data_dir(shared_datasets)
    spec = DATASETS[name]
    fetcher = DataFetcher.setup(
        name, train_count=1000, valid_count=100, test_count=3000, random_state=0
    )
    assert fetcher.x_train.shape == (1000, spec.n_features)
    assert fetcher.x_test.shape == (3000, spec.n_features)
    if spec.task == "classification":
        assert fetcher.y_train.shape == (1000, 2)
    else:
        assert fetcher.y_train.shape[0] == 1000

    x, y = ds.load_dataset(name)
    rows = 38474 if name == "electricity" else spec.rows[0]
    assert x.shape == (rows, spec.n_features) and y.shape == (rows,)
    assert x.dtype == np.float64 and np.issubdtype(y.dtype, np.number)
    assert not np.isnan(x).any() and not np.isnan(y).any()
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-8)
    std = x.std(axis=0)
    constant = std < 1e-6  # constant columns (pol has some) stay 0, as in load_openml
    np.testing.assert_allclose(std[~constant], 1.0, atol=1e-5)
    if spec.task == "classification":
        assert set(np.unique(y)) == {0, 1}
    else:
        assert abs(y.mean()) < 1e-8 and abs(y.std() - 1.0) < 1e-6


def test_env_var_selects_data_dir(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOSSVAL_ODV_DATA", str(shared_datasets))
    x, y = ds.load_dataset("white_wine")
    assert x.shape == (4898, 11)
    present = [n for n in OFFLINE if (shared_datasets / f"{n}.csv.gz").exists()]
    assert ds.available_offline() == present


def test_electricity_is_balanced_and_deterministic(shared_datasets: Path) -> None:
    if not (shared_datasets / "electricity.csv.gz").exists():
        pytest.skip(f"electricity.csv.gz is not in {shared_datasets}")
    x1, y1 = ds.load_dataset("electricity", data_dir=shared_datasets)
    x2, y2 = ds.load_dataset("electricity", data_dir=shared_datasets)
    assert np.bincount(y1).tolist() == [19237, 19237]
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_undersample_is_a_noop_on_balanced_data() -> None:
    frame = pd.DataFrame({"a": np.arange(6.0)})
    target = pd.Series(["x", "y"] * 3)
    out_frame, out_target = undersample(frame, target)
    assert out_frame is frame and out_target is target


def test_checksum_mismatch_is_refused(shared_datasets: Path, tmp_path: Path) -> None:
    src = shared_datasets / "kin8nm.csv.gz"
    if not src.exists():
        pytest.skip(f"kin8nm.csv.gz is not in {shared_datasets}")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    target = data_dir / "kin8nm.csv.gz"
    shutil.copyfile(src, target)
    with open(target, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ds.DatasetIntegrityError) as info:
        ds.load_dataset("kin8nm", data_dir=data_dir)
    message = str(info.value)
    assert "kin8nm.csv.gz" in message and "sha256 mismatch" in message
    assert SHIPPED_SHA256["kin8nm.csv.gz"] in message
    assert sources.sha256_file(target) in message
    assert "kin8nm" not in ds.available_offline(data_dir)


def test_directory_manifest_takes_precedence(shared_datasets: Path, tmp_path: Path) -> None:
    src = shared_datasets / "kin8nm.csv.gz"
    if not src.exists():
        pytest.skip(f"kin8nm.csv.gz is not in {shared_datasets}")
    shutil.copyfile(src, tmp_path / "kin8nm.csv.gz")
    manifest = {"format": sources.MANIFEST_FORMAT, "files": {"kin8nm.csv.gz": {"sha256": "0" * 64}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ds.DatasetIntegrityError, match="expected 0{64}"):
        ds.load_dataset("kin8nm", data_dir=tmp_path)


def _write_with_manifest(data_dir: Path, file_name: str, data: bytes) -> None:
    (data_dir / file_name).write_bytes(data)
    entry = {"sha256": sources.sha256_file(data_dir / file_name)}
    manifest = {"format": sources.MANIFEST_FORMAT, "files": {file_name: entry}}
    (data_dir / "manifest.json").write_text(json.dumps(manifest))


def test_corrupt_gzip_is_refused(tmp_path: Path) -> None:
    _write_with_manifest(tmp_path, "kin8nm.csv.gz", b"this is not gzip data")
    with pytest.raises(ds.DatasetIntegrityError, match="not a readable gzip CSV"):
        ds.load_dataset("kin8nm", data_dir=tmp_path)


def test_wrong_shape_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame(np.zeros((10, 4)), columns=["a", "b", "c", "target"])
    data = gzip.compress(frame.to_csv(index=False).encode(), mtime=0)
    _write_with_manifest(tmp_path, "kin8nm.csv.gz", data)
    with pytest.raises(ds.DatasetIntegrityError, match="expected 8192 rows x 8 feature"):
        ds.load_dataset("kin8nm", data_dir=tmp_path)


def test_file_without_known_checksum_is_refused(tmp_path: Path) -> None:
    (tmp_path / "nomao.csv.gz").write_bytes(gzip.compress(b"a,target\n1,2\n", mtime=0))
    with pytest.raises(ds.DatasetIntegrityError, match="no checksum is known"):
        ds.load_dataset("nomao", data_dir=tmp_path)


@pytest.mark.filterwarnings("ignore:A network error occurred:UserWarning")
def test_missing_dataset_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ds.DatasetUnavailableError) as info:
        ds.load_dataset("nomao", data_dir=empty)
    message = str(info.value)
    assert "'nomao'" in message and "OpenML 1486" in message
    assert str(empty / "nomao.csv.gz") in message
    assert "OpenML cache" in message and str(tmp_path / "sklearn_home") in message
    assert "network disabled in tests" in message
    assert "lossval-odv prefetch" in message and "LOSSVAL_ODV_DATA" in message


def test_missing_dataset_without_data_dir_or_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sources.ENV_OFFLINE, "1")
    with pytest.raises(ds.DatasetUnavailableError, match="none configured") as info:
        DataFetcher.setup("wave_energy", train_count=10, valid_count=10, test_count=10)
    assert "skipped" in str(info.value)


def test_unknown_name_lists_valid_names(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ds.UnknownDatasetError, match="kin8nm, white_wine"):
        ds.load_dataset("bogus")
    assert ds.prefetch_main(["--data-dir", str(tmp_path), "--names", "bogus"]) == 1
    assert "unknown dataset 'bogus'" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())


def test_openml_cache_detection(tmp_path: Path) -> None:
    api = tmp_path / "openml.org" / "api" / "v1" / "json" / "data"
    (api / "features").mkdir(parents=True)
    (api / "qualities").mkdir()
    url = "https://api.openml.org/data/v1/download/22111766/kin8nm.arff"
    description = {"data_set_description": {"url": url}}
    (api / "44980.gz").write_bytes(gzip.compress(json.dumps(description).encode()))
    (api / "features" / "44980.gz").write_bytes(b"")
    (api / "qualities" / "44980.gz").write_bytes(b"")
    spec = DATASETS["kin8nm"]
    assert not sources.in_openml_cache(spec, tmp_path)
    data_file = tmp_path / "openml.org" / "data" / "v1" / "download" / "22111766"
    data_file.mkdir(parents=True)
    (data_file / "kin8nm.arff.gz").write_bytes(b"")
    assert sources.in_openml_cache(spec, tmp_path)


# -- prefetch, with fetch_openml mocked -------------------------------------------------


def _fake_openml(monkeypatch: pytest.MonkeyPatch, fail: set[int] = frozenset()) -> dict:
    """Replace fetch_openml by small fake OpenML bunches for kin8nm and a shrunk nomao."""
    monkeypatch.setitem(DATASETS, "nomao", replace(DATASETS["nomao"], n_features=4, rows=(300,)))
    rng = np.random.default_rng(0)
    kin = pd.DataFrame(rng.normal(size=(8192, 8)), columns=[f"x{i}" for i in range(8)])
    nomao = pd.DataFrame(
        {
            "v1": rng.normal(size=300),
            "v2": rng.integers(0, 5, size=300).astype(float),
            "nominal_digits": pd.Categorical(rng.choice(["1", "2"], size=300)),
            "nominal_letters": pd.Categorical(rng.choice(["n", "m", "c"], size=300)),
        }
    )
    bunches = {
        44980: (kin, pd.Series(rng.normal(3.0, 2.0, size=8192), name="y")),
        1486: (nomao, pd.Series(pd.Categorical(rng.choice(["1", "2"], size=300)), name="Class")),
    }
    calls: list[int] = []

    def fetch_openml(*, data_id: int, **_kwargs: object) -> sklearn.utils.Bunch:
        calls.append(data_id)
        if data_id in fail:
            raise URLError("mocked HTTP failure")
        data, target = bunches[data_id]
        return sklearn.utils.Bunch(data=data, target=target)

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fetch_openml)
    return {"bunches": bunches, "calls": calls}


def test_prefetch_writes_files_that_load_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_openml(monkeypatch)
    data_dir = tmp_path / "data"
    manifest_path = ds.prefetch(data_dir, ["kin8nm", "nomao"])
    manifest = json.loads(manifest_path.read_text())
    assert manifest["format"] == sources.MANIFEST_FORMAT
    assert set(manifest["files"]) == {"kin8nm.csv.gz", "nomao.csv.gz"}
    for file_name, entry in manifest["files"].items():
        assert sources.sha256_file(data_dir / file_name) == entry["sha256"]
    assert manifest["files"]["nomao.csv.gz"]["categorical"] == ["nominal_digits", "nominal_letters"]

    kin_x, kin_y = fake["bunches"][44980]
    x, y = ds.load_dataset("kin8nm", data_dir=data_dir)
    expected_x = (kin_x.to_numpy() - kin_x.to_numpy().mean(0)) / (kin_x.to_numpy().std(0) + 1e-8)
    np.testing.assert_allclose(x, expected_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, (kin_y - kin_y.mean()) / (kin_y.std(ddof=0) + 1e-8))

    x, y = ds.load_dataset("nomao", data_dir=data_dir)
    assert x.shape == (300, 2)  # both nominal columns dropped, even the digit-valued one
    nomao_x, nomao_y = fake["bunches"][1486]
    np.testing.assert_array_equal(y, (nomao_y.astype(str) == "2").astype(int))

    # Deterministic bytes: fetching again gives the same checksums.
    sha = {k: v["sha256"] for k, v in manifest["files"].items()}
    ds.prefetch(data_dir, ["kin8nm", "nomao"])
    again = json.loads(manifest_path.read_text())["files"]
    assert {k: v["sha256"] for k, v in again.items()} == sha
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "kin8nm.csv.gz",
        "manifest.json",
        "nomao.csv.gz",
    ]


def test_prefetch_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_openml(monkeypatch)
    monkeypatch.setenv("LOSSVAL_ODV_DATA", str(tmp_path))
    assert ds.prefetch_main(["--names", "kin8nm"]) == 0
    assert (tmp_path / "kin8nm.csv.gz").exists()
    assert ds.available_offline() == ["kin8nm"]


def test_failed_download_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_openml(monkeypatch, fail={1486})
    with pytest.raises(ds.PrefetchError, match="nomao: URLError") as info:
        ds.prefetch(tmp_path, ["nomao", "kin8nm"])
    assert "kin8nm" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kin8nm.csv.gz", "manifest.json"]
    assert ds.prefetch_main(["--data-dir", str(tmp_path), "--names", "nomao"]) == 1


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_openml(monkeypatch)

    def disk_full(*_args: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ds.PrefetchError, match="No space left"):
        ds.prefetch(tmp_path, ["kin8nm"])
    assert list(tmp_path.iterdir()) == []


def test_prefetch_refuses_wrong_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_openml(monkeypatch)
    monkeypatch.setitem(DATASETS, "kin8nm", replace(DATASETS["kin8nm"], rows=(100,)))
    with pytest.raises(ds.PrefetchError, match="expected 100 rows"):
        ds.prefetch(tmp_path, ["kin8nm"])
    assert list(tmp_path.iterdir()) == []


def _kin8nm_like(data_dir: Path, edit=None) -> None:
    """A kin8nm-shaped file (8192 rows x 8 features + target), listed in the manifest."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(8192, 9)), columns=[*"abcdefgh", "target"])
    frame = frame.astype(object)
    if edit is not None:
        edit(frame)
    data = gzip.compress(frame.to_csv(index=False).encode(), mtime=0)
    _write_with_manifest(data_dir, "kin8nm.csv.gz", data)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("c", "abc", "column 'c' is not numeric: row 7 holds 'abc'"),
        ("c", float("nan"), "column 'c' holds a missing or NaN value in row 7"),
        ("c", float("inf"), "column 'c' holds an infinite value in row 7"),
        ("target", float("nan"), "column 'target' holds a missing or NaN value in row 7"),
    ],
)
def test_bad_content_is_refused_naming_file_column_and_row(
    tmp_path: Path, column: str, value: object, message: str
) -> None:
    def plant(frame: pd.DataFrame) -> None:
        frame.loc[6, column] = value

    _kin8nm_like(tmp_path, plant)
    with pytest.raises(ds.DatasetIntegrityError) as info:
        ds.load_dataset("kin8nm", data_dir=tmp_path)
    assert str(tmp_path / "kin8nm.csv.gz") in str(info.value) and message in str(info.value)
    assert "kin8nm" not in ds.available_offline(tmp_path)


def test_empty_file_is_refused_clearly(tmp_path: Path) -> None:
    _write_with_manifest(tmp_path, "kin8nm.csv.gz", gzip.compress(b"", mtime=0))
    with pytest.raises(ds.DatasetIntegrityError, match="kin8nm.csv.gz: the file is empty"):
        ds.load_dataset("kin8nm", data_dir=tmp_path)


def test_available_offline_lists_files_that_load(tmp_path: Path) -> None:
    _kin8nm_like(tmp_path)
    assert ds.available_offline(tmp_path) == ["kin8nm"]
    x, y = ds.load_dataset("kin8nm", data_dir=tmp_path)
    assert x.shape == (8192, 8) and np.isfinite(x).all() and np.isfinite(y).all()
