"""Data Shapley and Beta Shapley with OpenDataVal's GR-TMC sampler, an epoch's permutations
advancing side by side (:mod:`lossval_odv.core.semivalues`).

``FastDataShapley`` / ``FastBetaShapley`` (registry keys ``"fastdatashapley"``,
``"fastbetashapley"``) subclass OpenDataVal's ``DataShapley`` / ``BetaShapley`` and replace
only ``train_data_values``: the constructor (a ``GrTMCSampler`` built from the same
arguments and defaults, or the one given as ``sampler``), the truncation rule, the
Gelman-Rubin stopping and the value formulas are OpenDataVal's. What differs is how the
coalitions' models are fitted: the permutations of an epoch that are still running add
their next point together, and the models of one cardinality step are fitted in one call
of the batched utility. The permutations are the ones OpenDataVal's sampler draws from the
same random state; the seed of the fits' shuffles is drawn from a copy of that state
(OpenDataVal draws shuffles from torch's global generator).

After training, ``n_fits_`` is the number of models fitted (it depends on truncation and
on convergence) and ``sampling`` the sampler's full record
(:class:`~lossval_odv.core.semivalues.GrTMCResult`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossval_odv.core.semivalues import (
    GrTMCResult,
    beta_shapley_values,
    data_shapley_values,
    gr_tmc_marginal_contributions,
)
from lossval_odv.evaluators.retraining import ENGINE_DOC, FastRetraining

from opendataval.dataval.margcontrib import BetaShapley, DataShapley
from opendataval.dataval.margcontrib.sampler import GrTMCSampler

SAMPLER_SETTINGS = (
    "gr_threshold",
    "max_mc_epochs",
    "models_per_epoch",
    "min_models",
    "min_cardinality",
)


class _FastShapley(FastRetraining):
    """What the two evaluators share (not a DataEvaluator itself, so that OpenDataVal,
    which registers every subclass under its lower-cased name, does not list it)."""

    def _init_sampling(
        self,
        sampler: GrTMCSampler | None,
        settings: dict[str, Any],
        device: str,
        max_models: int,
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
        self._engine_settings(device, max_models)
        self.progress = progress
        return given

    def train_data_values(self, *args, **kwargs):
        """Sample the marginal contributions with the sampler's settings, fitting the
        prediction model with ``args`` / ``kwargs`` (OpenDataVal's ``fit`` arguments)."""
        # the fits' seed comes from a copy of the sampler's random state, so that the
        # permutations are the ones OpenDataVal's sampler draws from the same state
        self.random_state = np.random.RandomState()
        self.random_state.set_state(self.sampler.random_state.get_state())
        utility = self._utility(args, kwargs)
        self.sampling: GrTMCResult = gr_tmc_marginal_contributions(
            utility,
            num_points=self.num_points,
            random_state=self.sampler.random_state,
            progress=self.progress,
            **{k: getattr(self.sampler, k) for k in SAMPLER_SETTINGS},
        )
        self.marg_contrib = self.sampling.marginal_contribution
        self.n_fits_ = utility.n_fits  # the engine's own count (tests: = sampling.n_fits)
        return self


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
        Draws the permutations (OpenDataVal's, for the same state) and the fits' seed,
        by default None
    progress : bool, optional
        A progress bar over epochs, by default False
"""


class FastDataShapley(_FastShapley, DataShapley):
    __doc__ = (
        "OpenDataVal's DataShapley (GR-TMC sampler), permutations side by side.\n"
        + _SAMPLER_DOC
        + ENGINE_DOC
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
        device: str = "auto",
        max_models: int = 256,
        progress: bool = False,
    ):
        settings = {
            "gr_threshold": gr_threshold,
            "max_mc_epochs": max_mc_epochs,
            "models_per_epoch": models_per_epoch,
            "min_models": min_models,
            "min_cardinality": min_cardinality,
        }
        given = self._init_sampling(sampler, settings, device, max_models, progress)
        super().__init__(sampler=sampler, random_state=random_state, **given)

    def evaluate_data_values(self) -> np.ndarray:
        return data_shapley_values(self.marg_contrib)


class FastBetaShapley(_FastShapley, BetaShapley):
    __doc__ = (
        "OpenDataVal's BetaShapley (GR-TMC sampler), permutations side by side.\n"
        + _SAMPLER_DOC
        + ENGINE_DOC
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
        device: str = "auto",
        max_models: int = 256,
        progress: bool = False,
    ):
        settings = {
            "gr_threshold": gr_threshold,
            "max_mc_epochs": max_mc_epochs,
            "models_per_epoch": models_per_epoch,
            "min_models": min_models,
            "min_cardinality": min_cardinality,
        }
        given = self._init_sampling(sampler, settings, device, max_models, progress)
        super().__init__(
            sampler=sampler, alpha=alpha, beta=beta, random_state=random_state, **given
        )

    def evaluate_data_values(self) -> np.ndarray:
        return beta_shapley_values(self.marg_contrib, alpha=self.alpha, beta=self.beta)
