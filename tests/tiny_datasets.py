"""Test plugin: tiny deterministic datasets and worker-killing evaluators.

Import it (``plugins: [tests.tiny_datasets]`` in a config, or
``LOSSVAL_ODV_PLUGINS=tests.tiny_datasets``) in the driver and every worker; see
:mod:`lossval_odv.plugins`. Importing it twice registers nothing twice.
"""

from __future__ import annotations  # noqa: I001  (lossval_odv before opendataval)

import os
import signal
from pathlib import Path

import numpy as np

import lossval_odv  # noqa: F401  (compatibility layer before OpenDataVal)
from opendataval.dataloader import Register
from opendataval.dataval import DataEvaluator

N_POINTS, N_FEATURES = 240, 6


def _tiny_clf() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(20240601)
    x = rng.normal(size=(N_POINTS, N_FEATURES)).astype(np.float32)
    y = (x @ rng.normal(size=N_FEATURES) > 0).astype(np.int64)
    return x, y


def _tiny_reg() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(20240602)
    x = rng.normal(size=(N_POINTS, N_FEATURES)).astype(np.float32)
    y = np.tanh(x @ rng.normal(size=N_FEATURES) / 2) + 0.1 * rng.normal(size=N_POINTS)
    return x, y.astype(np.float32).reshape(-1, 1)


if "tiny_clf" not in Register.Datasets:
    Register("tiny_clf", one_hot=True)(_tiny_clf)
if "tiny_reg" not in Register.Datasets:
    Register("tiny_reg")(_tiny_reg)


class KillWorker(DataEvaluator):
    """Kills its own process in ``train_data_values``: once (the first attempt creates
    ``marker`` and dies; later attempts find it and compute) or ``always``.

    Never run it serially: it would kill the driver.
    """

    def __init__(self, marker: str, always: bool = False, random_state=None) -> None:
        super().__init__(random_state=random_state)
        self.marker = Path(marker)
        self.always = always

    def train_data_values(self, *args, **kwargs):
        if self.always or not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return self

    def evaluate_data_values(self) -> np.ndarray:
        return self.random_state.uniform(size=len(self.x_train))


class AlwaysFails(DataEvaluator):
    """Raises the same error on every cell: a deterministic method error."""

    def train_data_values(self, *args, **kwargs):
        raise ValueError("planted method error")

    def evaluate_data_values(self) -> np.ndarray:
        raise AssertionError("never reached")
