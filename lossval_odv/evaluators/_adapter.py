"""Shared plumbing of the adapters that train their own network: LossVal, TracIn,
loss trajectory and cleanlab (input conversion, task resolution, forwarded arguments)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lossval_odv.core.mlp import Task
from lossval_odv.core.validation import infer_task


def _to_numpy(name: str, data: Any, owner: str = "LossValODV") -> np.ndarray:
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        return data
    raise TypeError(
        f"{owner} needs {name} as a numpy array or a torch tensor, got "
        f"{type(data).__name__} (image/text Datasets must be embedded first)"
    )


class OwnNetworkAdapter:
    """Shared plumbing of the adapters that train their own MLP (not a DataEvaluator itself,
    so that it is not registered): input conversion, task resolution, forwarded arguments.

    Subclasses set ``self.task`` and ``self.random_state`` in ``__init__`` and call
    ``self._prepare(args, kwargs, settings)`` at the start of ``train_data_values``.
    """

    task: str
    needs_validation: bool = False

    def input_data(self, x_train, y_train, x_valid, y_valid):
        """Store the data as numpy arrays; errors name what is wrong."""
        owner = type(self).__name__
        if self.needs_validation and (x_valid is None or y_valid is None):
            raise ValueError(f"{owner} needs a validation set; x_valid/y_valid is None")
        self.x_train = _to_numpy("x_train", x_train, owner)
        self.y_train = _to_numpy("y_train", y_train, owner)
        self.x_valid = None if x_valid is None else _to_numpy("x_valid", x_valid, owner)
        self.y_valid = None if y_valid is None else _to_numpy("y_valid", y_valid, owner)
        return self

    def _prepare(self, args: tuple, kwargs: dict, settings: str, logger: Any) -> Task:
        """Check that data are in, log forwarded arguments, return the task."""
        owner = type(self).__name__
        if not hasattr(self, "x_train"):
            raise RuntimeError("call input_data(...) or train(fetcher) before train_data_values")
        if args or kwargs:
            logger.info(
                "%s trains its own network (%s); prediction-model arguments %s %s are not used",
                owner,
                settings,
                args,
                kwargs,
            )
        self.__dict__.pop("data_values", None)  # forget values cached from an earlier run
        if self.task == "auto":
            return infer_task(np.asarray(self.y_train))
        if self.task in ("classification", "regression"):
            return self.task  # type: ignore[return-value]
        raise ValueError(
            f"task must be 'auto', 'classification' or 'regression', got {self.task!r}"
        )

    def _values(self) -> np.ndarray:
        if not hasattr(self, "result_"):
            raise RuntimeError(f"{type(self).__name__} has not been trained yet")
        return self.result_.values
