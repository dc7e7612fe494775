"""OpenDataVal's retraining baselines with their model fits batched (:mod:`core.fitting`).

Each class subclasses its OpenDataVal 1.3.0 counterpart and replaces only
``train_data_values``: the constructor (parameters, defaults), the sampling of subsets from
``random_state`` (the same calls in the same order, so a seed gives the same subsets as
OpenDataVal's), the skipped subsets, the bookkeeping and ``evaluate_data_values`` are
OpenDataVal's. The fits themselves run K at a time on the engine, which reproduces
OpenDataVal's ``fit`` (same initial weights for every fit, Adam, epochs, batches, loss);
their shuffles come from a seed drawn from ``random_state`` after the subsets (OpenDataVal
draws them from torch's global generator). Registry keys: ``"fastdataoob"``,
``"fastdatabanzhaf"``, ``"fastame"``, ``"fastinfluencesubsample"``, ``"fastleaveoneout"``.

Supported prediction models: OpenDataVal's ``ClassifierMLP``, ``RegressionMLP`` and
``LogisticRegression``; any other model raises a ``TypeError`` naming it and the OpenDataVal
evaluator to use instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lossval_odv.evaluators.retraining import ENGINE_DOC, FastRetraining

from opendataval.dataval.ame import AME
from opendataval.dataval.influence import InfluenceSubsample
from opendataval.dataval.margcontrib import DataBanzhaf, LeaveOneOut
from opendataval.dataval.oob import DataOob


class FastDataOob(FastRetraining, DataOob):
    __doc__ = (DataOob.__doc__ or "") + ENGINE_DOC
    counterpart = "DataOob"

    def __init__(
        self,
        num_models: int = 1000,
        proportion: float = 1.0,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(num_models=num_models, proportion=proportion, random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``DataOob.train_data_values`` with the bootstrap fits batched."""
        sample_dim = (self.num_models, self.max_samples)
        subsets = self.random_state.randint(0, self.num_points, size=sample_dim)
        in_bags, out_bags = [], []
        for in_bag in subsets:
            out_bag = (np.bincount(in_bag, minlength=self.num_points) == 0).nonzero()[0]
            if not out_bag.any():  # OpenDataVal's test: also skips an out-of-bag set {0}
                continue
            in_bags.append(in_bag)
            out_bags.append(out_bag)
        if in_bags:
            utility = self._utility(args, kwargs, validation=False)
            predictions = utility.predictions(in_bags, self.x_train)
            self.n_fits_ = utility.n_fits
            self.oob_pred = torch.cat(
                [self.oob_pred] + [p[o] for p, o in zip(predictions, out_bags, strict=True)]
            )
        else:
            self.n_fits_ = 0
        for out_bag in out_bags:
            self.oob_indices.add_indices(out_bag)
        return self


class FastDataBanzhaf(FastRetraining, DataBanzhaf):
    __doc__ = (DataBanzhaf.__doc__ or "") + ENGINE_DOC
    counterpart = "DataBanzhaf"

    def __init__(
        self,
        num_models: int = 1000,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(num_models=num_models, random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``DataBanzhaf.train_data_values`` with the fits batched."""
        sample_dim = (self.num_models, self.num_points)
        subsets = self.random_state.binomial(1, 0.5, size=sample_dim)
        kept = [i for i in range(self.num_models) if subsets[i].nonzero()[0].any()]
        perf = _utilities(self, args, kwargs, [subsets[i].nonzero()[0] for i in kept])
        for i, curr_perf in zip(kept, perf, strict=True):
            self.sample_utility[range(self.num_points), subsets[i]] += curr_perf
            self.sample_counts[range(self.num_points), subsets[i]] += 1
        return self


class FastAME(FastRetraining, AME):
    __doc__ = (AME.__doc__ or "") + ENGINE_DOC
    counterpart = "AME"

    def __init__(
        self,
        num_models: int = 1000,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(num_models=num_models, random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``AME.train_data_values`` (four ``BaggingEvaluator`` runs sharing
        ``random_state``) with all 4 x num_models fits batched together."""
        n = len(self.x_train)
        masks = np.vstack(
            [
                self.random_state.binomial(1, proportion, size=(self.num_models, n))
                for proportion in [0.2, 0.4, 0.6, 0.8]
            ]
        )
        kept = [i for i in range(len(masks)) if masks[i].nonzero()[0].any()]
        performance = np.zeros(len(masks))  # a skipped subset keeps performance 0
        performance[kept] = _utilities(self, args, kwargs, [masks[i].nonzero()[0] for i in kept])
        self.subsets = masks
        self.performance = performance
        return self


class FastInfluenceSubsample(FastRetraining, InfluenceSubsample):
    __doc__ = (InfluenceSubsample.__doc__ or "") + ENGINE_DOC
    counterpart = "InfluenceSubsample"

    def __init__(
        self,
        num_models: int = 1000,
        proportion: float = 0.7,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(num_models=num_models, proportion=proportion, random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``InfluenceSubsample.train_data_values`` with the fits batched."""
        size = round(self.proportion * self.num_points)
        subsets = [
            self.random_state.choice(self.num_points, size, replace=False)
            for _ in range(self.num_models)
        ]
        perf = _utilities(self, args, kwargs, subsets)
        for subset, curr_perf in zip(subsets, perf, strict=True):
            included = (np.bincount(subset, minlength=self.num_points) != 0).astype(int)
            self.influence_matrix[range(self.num_points), included] += curr_perf
            self.sample_counts[range(self.num_points), included] += 1
        return self


class FastLeaveOneOut(FastRetraining, LeaveOneOut):
    __doc__ = (LeaveOneOut.__doc__ or "") + ENGINE_DOC
    counterpart = "LeaveOneOut"

    def __init__(
        self,
        random_state: np.random.RandomState | None = None,
        device: str = "auto",
        max_models: int = 256,
    ):
        super().__init__(random_state=random_state)
        self._engine_settings(device, max_models)

    def train_data_values(self, *args, **kwargs):
        """OpenDataVal's ``LeaveOneOut.train_data_values``: the full fit and the n
        leave-one-out fits, batched."""
        indices = self.random_state.permutation(self.num_points)
        subsets = [np.arange(self.num_points)]
        subsets += [np.delete(indices, i) for i in range(self.num_points)]
        scores = _utilities(self, args, kwargs, subsets)
        self.data_values = np.zeros((self.num_points,))
        self.data_values[indices] = scores[0] - scores[1:]
        return self


def _utilities(
    evaluator: FastRetraining, args: tuple, kwargs: dict, subsets: Sequence[np.ndarray]
) -> np.ndarray:
    """The validation utility of each subset; records the number of fits."""
    if not subsets:
        evaluator.n_fits_ = 0
        return np.zeros(0)
    utility = evaluator._utility(args, kwargs)
    values = utility(subsets)
    evaluator.n_fits_ = utility.n_fits
    return values


FAST_BASELINES: dict[str, type] = {
    cls.counterpart: cls
    for cls in (FastDataOob, FastDataBanzhaf, FastAME, FastInfluenceSubsample, FastLeaveOneOut)
}
