"""Data Shapley and Beta Shapley with OpenDataVal's GR-TMC sampler, an epoch's permutations
advancing side by side (:mod:`lossval_odv.core.semivalues`).

``FastDataShapley`` / ``FastBetaShapley`` (registry keys ``"fastdatashapley"``,
``"fastbetashapley"``) subclass OpenDataVal's ``DataShapley`` / ``BetaShapley`` and replace
only ``train_data_values``: the constructor (a ``GrTMCSampler`` built from the same
arguments and defaults, or the one given as ``sampler``), the truncation rule, the
Gelman-Rubin stopping and the value formulas are OpenDataVal's. What differs is how the
coalitions' models are fitted: the permutations of an epoch that are still running add
their next point together, and the models of one cardinality step are fitted in one call
of the batched utility. The seed of the fits' shuffles is drawn from the sampler's random
state before the permutations (OpenDataVal draws shuffles from torch's global generator),
so a seed draws other permutations than OpenDataVal's sampler does, from the same law.

After training, ``n_fits_`` is the number of models fitted (it depends on truncation and
on convergence) and ``sampling`` the sampler's full record
(:class:`~lossval_odv.core.semivalues.GrTMCResult`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lossval_odv.core.runtime import to_seed
from lossval_odv.core.semivalues import (
    GrTMCResult,
    beta_shapley_values,
    data_shapley_values,
    gr_tmc_marginal_contributions,
)

from opendataval.dataval.margcontrib import BetaShapley, DataShapley
from opendataval.dataval.margcontrib.sampler import GrTMCSampler

SAMPLER_SETTINGS = (
    "gr_threshold",
    "max_mc_epochs",
    "models_per_epoch",
    "min_models",
    "min_cardinality",
)


class _SequentialUtility:
    """LOCAL ADAPTER until the batched fitting engine is merged: OpenDataVal's own utility
    (clone the prediction model, fit it on the coalition, metric on the validation set),
    one coalition after the other."""

    def __init__(self, evaluator: Any, train_args: tuple, train_kwargs: dict) -> None:
        self.evaluator = evaluator
        self.train_args = train_args
        self.train_kwargs = train_kwargs
        self.n_fits = 0

    def __call__(self, subsets: Sequence[np.ndarray]) -> np.ndarray:
        ev = self.evaluator
        values = []
        for subset in subsets:
            model = ev.pred_model.clone()
            indices = [int(i) for i in subset]
            model.fit(
                torch.utils.data.Subset(ev.x_train, indices=indices),
                torch.utils.data.Subset(ev.y_train, indices=indices),
                *self.train_args,
                **self.train_kwargs,
            )
            values.append(ev.evaluate(ev.y_valid, model.predict(ev.x_valid)))
            self.n_fits += 1
        return np.array(values, dtype=np.float64)


class _FastShapley:
    """What the two evaluators share (not a DataEvaluator itself, so that OpenDataVal,
    which registers every subclass under its lower-cased name, does not list it)."""

    counterpart: str

    def _init_sampling(
        self,
        sampler: GrTMCSampler | None,
        settings: dict[str, Any],
        device: str | torch.device,
        progress: bool,
    ) -> dict[str, Any]:
        """Check the sampler and its settings, keep the engine's; return the settings given
        (GrTMCSampler's own defaults fill in the rest)."""
        name = type(self).__name__
        if sampler is not None and type(sampler) is not GrTMCSampler:
            raise TypeError(
                f"{name} batches OpenDataVal's GrTMCSampler only, got {type(sampler).__name__}; "
                f"use OpenDataVal's {self.counterpart} with it"
            )
        given = {k: v for k, v in settings.items() if v is not None}
        if sampler is not None and given:
            raise ValueError(f"{name} got both a sampler and the sampler settings {given}")
        self.device = device
        self.progress = progress
        return given

    def train_data_values(self, *args, **kwargs):
        """Sample the marginal contributions with the sampler's settings, fitting the
        prediction model with ``args`` / ``kwargs`` (OpenDataVal's ``fit`` arguments)."""
        self.random_state = self.sampler.random_state  # the fits' seed comes first from it
        utility = self._utility(args, kwargs)
        self.sampling: GrTMCResult = gr_tmc_marginal_contributions(
            utility,
            num_points=self.num_points,
            random_state=self.sampler.random_state,
            progress=self.progress,
            **{k: getattr(self.sampler, k) for k in SAMPLER_SETTINGS},
        )
        self.marg_contrib = self.sampling.marginal_contribution
        self.n_fits_ = self.sampling.n_fits
        return self

    def _utility(self, args: tuple, kwargs: dict) -> _SequentialUtility:
        to_seed(self.random_state)  # the draw the batched engine's seed will take
        return _SequentialUtility(self, args, kwargs)


_SAMPLER_DOC = """
    Parameters
    ----------
    sampler : GrTMCSampler, optional
        Take the settings and the random state from this OpenDataVal sampler (its own
        marginal contributions are neither computed nor cached); otherwise one is built
        from the arguments below, with OpenDataVal's defaults.
    gr_threshold : float, optional
        Gelman-Rubin threshold of convergence, by default 1.05
    max_mc_epochs : int, optional
        Epochs at most, by default 100
    models_per_epoch : int, optional
        Permutations per epoch (advancing side by side), by default 100
    min_models : int, optional
        Permutations before the first Gelman-Rubin check, by default 1000
    min_cardinality : int, optional
        Coalition size every permutation starts from, by default 5
    random_state : int or RandomState, optional
        Draws the seed of the fits, then the permutations, by default None
    device : {"auto", "cpu", "cuda", "cuda:N"}, optional
        Where the fits run; "auto": CUDA when available, by default "auto"
    progress : bool, optional
        A progress bar over epochs, by default False
"""


class FastDataShapley(_FastShapley, DataShapley):
    __doc__ = "OpenDataVal's DataShapley (GR-TMC sampler), permutations side by side.\n" + (
        _SAMPLER_DOC
    )
    counterpart = "DataShapley"

    def __init__(
        self,
        sampler: GrTMCSampler | None = None,
        *,
        gr_threshold: float | None = None,
        max_mc_epochs: int | None = None,
        models_per_epoch: int | None = None,
        min_models: int | None = None,
        min_cardinality: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str | torch.device = "auto",
        progress: bool = False,
    ):
        settings = {
            "gr_threshold": gr_threshold,
            "max_mc_epochs": max_mc_epochs,
            "models_per_epoch": models_per_epoch,
            "min_models": min_models,
            "min_cardinality": min_cardinality,
        }
        given = self._init_sampling(sampler, settings, device, progress)
        super().__init__(sampler=sampler, random_state=random_state, **given)

    def evaluate_data_values(self) -> np.ndarray:
        return data_shapley_values(self.marg_contrib)


class FastBetaShapley(_FastShapley, BetaShapley):
    __doc__ = (
        "OpenDataVal's BetaShapley (GR-TMC sampler), permutations side by side.\n"
        + _SAMPLER_DOC
        + """    alpha, beta : float, optional
        Parameters of the Beta cardinality weights, by default 4 and 1 (upstream's);
        computed in log space, so they stay finite above 1070 points (upstream's turn NaN)
"""
    )
    counterpart = "BetaShapley"

    def __init__(
        self,
        sampler: GrTMCSampler | None = None,
        alpha: float = 4,
        beta: float = 1,
        *,
        gr_threshold: float | None = None,
        max_mc_epochs: int | None = None,
        models_per_epoch: int | None = None,
        min_models: int | None = None,
        min_cardinality: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str | torch.device = "auto",
        progress: bool = False,
    ):
        settings = {
            "gr_threshold": gr_threshold,
            "max_mc_epochs": max_mc_epochs,
            "models_per_epoch": models_per_epoch,
            "min_models": min_models,
            "min_cardinality": min_cardinality,
        }
        given = self._init_sampling(sampler, settings, device, progress)
        super().__init__(
            sampler=sampler, alpha=alpha, beta=beta, random_state=random_state, **given
        )

    def evaluate_data_values(self) -> np.ndarray:
        return beta_shapley_values(self.marg_contrib, alpha=self.alpha, beta=self.beta)
