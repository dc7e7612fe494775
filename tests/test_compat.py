"""The compatibility layer: stand-ins fail loudly on use, aliases work, fixes are exact."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossval_odv import compat

# The layer installs itself at the first `import opendataval`; the skip conditions below
# read its stand-ins at collection time, so install it now.
compat.install()


def test_install_is_idempotent_and_reports_what_it_did():
    first = compat.install()
    assert compat.install() == first
    assert set(first) == {"torchvision", "transformers", "geomloss.utils"}


INSTALL_COMMANDS = (
    "pip install --no-deps opendataval==1.3.0",
    "uv pip install --no-deps opendataval==1.3.0",
)


def test_missing_opendataval_stops_with_the_install_commands(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "opendataval" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(compat.importlib.util, "find_spec", find_spec)
    with pytest.raises(compat.OpenDataValNotInstalled, match=r"found: none") as error:
        compat.install()
    assert all(command in str(error.value) for command in INSTALL_COMMANDS)


def test_another_opendataval_release_stops_the_import_with_the_install_commands(tmp_path: Path):
    # An OpenDataVal 1.2.0 ahead of the real one on the path, as pip would install it.
    (tmp_path / "opendataval").mkdir()
    (tmp_path / "opendataval" / "__init__.py").write_text("raise RuntimeError('loaded')\n")
    dist_info = tmp_path / "opendataval-1.2.0.dist-info"
    dist_info.mkdir()
    metadata = "Metadata-Version: 2.1\nName: opendataval\nVersion: 1.2.0\n"
    (dist_info / "METADATA").write_text(metadata)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", "import lossval_odv, opendataval"],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "OpenDataValNotInstalled" in result.stderr and "found: 1.2.0" in result.stderr
    assert "RuntimeError: loaded" not in result.stderr  # stopped before OpenDataVal's code
    assert all(command in result.stderr for command in INSTALL_COMMANDS)


def _standin(package: str) -> bool:
    return bool(getattr(sys.modules.get(package), compat.STANDIN_MARKER, False))


@pytest.mark.skipif(not _standin("torchvision"), reason="the real torchvision is installed")
def test_image_symbols_raise_a_clear_import_error_when_used():
    import torchvision

    assert getattr(torchvision, compat.STANDIN_MARKER)
    from opendataval.dataloader.datasets import imagesets  # imported eagerly upstream

    with pytest.raises(compat.MissingOptionalDependency, match="torchvision"):
        imagesets.CIFAR10()


@pytest.mark.skipif(not _standin("transformers"), reason="the real transformers is installed")
def test_bert_model_raises_a_clear_import_error_when_used():
    from opendataval.model import BertClassifier

    with pytest.raises(compat.MissingOptionalDependency, match="transformers"):
        BertClassifier()


def test_geomloss_utils_alias_lets_lava_run():
    import geomloss

    from opendataval.dataval import LavaEvaluator

    assert sys.modules["geomloss.utils"] is geomloss.utils
    rng = np.random.default_rng(0)
    x, xv = rng.normal(size=(60, 4)), rng.normal(size=(20, 4))
    y, yv = np.eye(2)[rng.integers(0, 2, 60)], np.eye(2)[rng.integers(0, 2, 20)]
    values = LavaEvaluator(random_state=0).input_data(x, y, xv, yv).train_data_values()
    assert np.isfinite(values.evaluate_data_values()).all()


class _FixedValues:
    def __init__(self, values):
        self.data_values = values


class _MeanModel:
    """A model whose test score is the number of training points it saw."""

    def clone(self):
        return _MeanModel()

    def fit(self, x, y, **_):
        self.n = len(x)
        return self

    def predict(self, x):
        return np.full(len(x), self.n)


@pytest.mark.parametrize(("n", "levels"), [(100, 20), (103, 20), (119, 19)])
def test_remove_high_low_curves_line_up_with_axis(n, levels):
    data = {
        "x_train": np.zeros((n, 1)),
        "y_train": np.zeros(n),
        "x_test": np.zeros((3, 1)),
        "y_test": np.zeros(3),
    }
    result = compat.remove_high_low(
        _FixedValues(np.arange(n)), data=data, model=_MeanModel(), metric=lambda _, p: p[0]
    )
    assert len(result["axis"]) == levels
    period = max(round(n * 0.05), 5)
    low = result["remove_least_influential_first_<lambda>"]
    assert len(low) == levels
    assert low == [n - k * period for k in range(levels)]


def test_quiet_upstream_silences_default_bars_only_inside_the_block():
    from tqdm import tqdm

    with compat.quiet_upstream():
        assert tqdm(range(3)).disable
        assert not tqdm(range(3), disable=False).disable  # an explicit choice is kept
    assert not tqdm(range(3)).disable
