"""Data Shapley and Beta Shapley by truncated Monte-Carlo sampling, permutations side by side.

This is OpenDataVal 1.3.0's ``GrTMCSampler`` (``opendataval.dataval.margcontrib.sampler``)
with the same arithmetic, draws and stopping rules, but the ``models_per_epoch``
permutations of an epoch advance together: at each cardinality, one call of the utility
evaluates the coalitions of every permutation still running, so a batched fitter can train
all their models at once. With a deterministic utility, the marginal contributions, the
Gelman-Rubin statistics, the number of fits and the Data Shapley values equal OpenDataVal's
bit for bit, the Beta Shapley values to rounding (tested).

The semantics, as in OpenDataVal 1.3.0:

* an epoch draws ``models_per_epoch`` permutations, one ``random_state.permutation(n)``
  each, in order; a permutation starts from the utility of its first ``min_cardinality``
  points and adds one point at a time; the point at position ``c`` (0-based) gets the
  marginal contribution ``u(first c + 1) - u(first c)``, summed in
  ``marginal_contrib_sum[i, c]`` and counted in ``marginal_count[i, c]`` (which starts at
  1e-8, so cells never visited give 0);
* truncation: a permutation's increments start at 1e-8 each; after ten additions in a row
  whose ``|increment| / sum(increments so far)`` is below 1e-8, it stops and the count of
  every later (point, position) of it is raised by one, i.e. they contribute 0;
* after each epoch, the Gelman-Rubin statistic of all permutations' increment vectors
  split into 10 chains (the maximum over points); it is 100 until ``min_models``
  permutations are in (burn-in); sampling stops when it is at most ``gr_threshold`` or
  after ``max_mc_epochs`` epochs, or on a NaN statistic (a point whose increments are the
  same in every permutation), unconverged, as upstream;
* values: the marginal contribution ``sum / count`` weighted by cardinality, 1/n for
  Data Shapley, OpenDataVal's Beta(alpha, beta) weights for Beta Shapley.

Positions below ``min_cardinality`` are never evaluated: their marginal contribution is 0,
exactly as in OpenDataVal, so the values are OpenDataVal's estimator, not the textbook one.
Two deliberate differences: where OpenDataVal's Gelman-Rubin check would see fewer than
two permutations per chain (``min_models`` below 20), it returns NaN and silently stops,
here that configuration is an error before any model is fitted; and the Beta weights are
computed in log space (see ``beta_shapley_weights``), so they do not turn NaN above n = 1070.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

__all__ = [
    "GR_BURN_IN",
    "EpochProgress",
    "GrTMCResult",
    "SubsetUtilityFn",
    "beta_shapley_values",
    "beta_shapley_weights",
    "data_shapley_values",
    "gelman_rubin",
    "gr_tmc_marginal_contributions",
]

SubsetUtilityFn = Callable[[Sequence[np.ndarray]], np.ndarray]
"""Utilities of a batch of coalitions (index arrays into the training set), shape (K,)."""

GR_BURN_IN = 100.0
"""The Gelman-Rubin statistic reported before ``min_models`` permutations (OpenDataVal's
``GrTMCSampler.GR_MAX``): larger than any threshold, so sampling goes on."""

INCREMENT_FLOOR = 1e-8  # each permutation's increments start here (OpenDataVal: "overflow")
TRUNCATION_TOLERANCE = 1e-8  # relative increment below which an addition counts as flat
TRUNCATION_RUN = 10  # flat additions in a row that truncate a permutation
GR_CHAINS = 10  # chains the Gelman-Rubin statistic splits the permutations into


@dataclass(frozen=True)
class EpochProgress:
    """What a progress callback receives after each epoch."""

    epoch: int  # 1-based
    gr_statistic: float
    n_fits: int  # utility evaluations (model fits) so far
    n_truncated: int  # permutations truncated so far


@dataclass(frozen=True)
class GrTMCResult:
    """The sampler's bookkeeping after it stopped.

    Attributes
    ----------
    marginal_contrib_sum, marginal_count : np.ndarray
        (n, n): point x position (the coalition size before the point joins).
    marginal_increments : np.ndarray
        (permutations, n): every permutation's increments (1e-8 where not evaluated),
        the samples of the Gelman-Rubin statistic.
    gr_statistics : tuple[float, ...]
        The statistic after each epoch (``GR_BURN_IN`` during burn-in).
    fits_per_epoch : tuple[int, ...]
        Utility evaluations (one model fit each) per epoch; fewer than
        ``models_per_epoch * (n - min_cardinality + 1)`` where permutations truncate.
    n_truncated : int
        Permutations stopped by the truncation rule.
    converged : bool
        Whether sampling stopped on the Gelman-Rubin threshold (not on ``max_mc_epochs``).
    """

    marginal_contrib_sum: np.ndarray
    marginal_count: np.ndarray
    marginal_increments: np.ndarray
    gr_statistics: tuple[float, ...]
    fits_per_epoch: tuple[int, ...]
    n_truncated: int
    converged: bool

    @property
    def marginal_contribution(self) -> np.ndarray:
        """Mean marginal contribution per (point, position), 0 where never evaluated."""
        return self.marginal_contrib_sum / self.marginal_count

    @property
    def epochs(self) -> int:
        return len(self.gr_statistics)

    @property
    def n_fits(self) -> int:
        """Utility evaluations (model fits) in all."""
        return sum(self.fits_per_epoch)


def gelman_rubin(samples: np.ndarray, *, min_models: int, num_chains: int = GR_CHAINS) -> float:
    """OpenDataVal's Gelman-Rubin statistic of ``samples`` (permutations x points).

    The first ``len(samples) % num_chains`` rows are dropped, the rest split into
    ``num_chains`` consecutive chains; per point, sqrt((m - 1) / m + B / (S m)) with m the
    chain length, S the mean within-chain variance and B / m the variance of the chain means
    (Vats and Knudson 2018, eq. 4); the maximum over points. ``GR_BURN_IN`` below
    ``min_models`` samples.
    """
    if len(samples) < min_models:
        return GR_BURN_IN
    num_samples, num_points = samples.shape
    per_chain, offset = divmod(num_samples, num_chains)
    chains = samples[offset:].reshape(num_chains, per_chain, num_points)
    s_term = np.mean(np.var(chains, axis=1, ddof=1), axis=0)
    b_term = per_chain * np.var(np.mean(chains, axis=1), axis=0, ddof=1)
    return float(np.max(np.sqrt((per_chain - 1) / per_chain + b_term / (s_term * per_chain))))


def _check_settings(
    *,
    num_points: int,
    gr_threshold: float,
    max_mc_epochs: int,
    models_per_epoch: int,
    min_models: int,
    min_cardinality: int,
) -> None:
    for name, value, low in (
        ("num_points", num_points, 1),
        ("max_mc_epochs", max_mc_epochs, 1),
        ("models_per_epoch", models_per_epoch, 1),
        ("min_models", min_models, 0),
        ("min_cardinality", min_cardinality, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not np.isfinite(gr_threshold):
        raise ValueError(f"gr_threshold must be a finite number, got {gr_threshold!r}")
    first_check = max(1, -(-min_models // models_per_epoch))  # first epoch past burn-in
    if first_check <= max_mc_epochs and first_check * models_per_epoch < 2 * GR_CHAINS:
        raise ValueError(
            f"the Gelman-Rubin statistic splits the permutations into {GR_CHAINS} chains and "
            f"needs at least 2 per chain, but with models_per_epoch={models_per_epoch} and "
            f"min_models={min_models} its first check sees "
            f"{first_check * models_per_epoch}; set min_models to at least {2 * GR_CHAINS}"
        )


def _run_epoch(
    utility: SubsetUtilityFn,
    permutations: np.ndarray,
    *,
    min_cardinality: int,
    contrib_sum: np.ndarray,
    count: np.ndarray,
) -> tuple[np.ndarray, int, int]:
    """Advance ``permutations`` (K x n) side by side; update the sums and counts in place.

    Returns the (K, n) increments, the number of utility evaluations and of truncations.
    """
    n_perms, num_points = permutations.shape
    increments = np.full((n_perms, num_points), INCREMENT_FLOOR)
    prev = _evaluate(utility, [p[:min_cardinality] for p in permutations])
    n_fits = n_perms
    n_truncated = 0
    flat_run = np.zeros(n_perms, dtype=np.int64)
    active = np.arange(n_perms)
    for cutoff in range(min_cardinality, num_points):
        if active.size == 0:
            break
        points = permutations[active, cutoff]
        curr = _evaluate(utility, [permutations[k, : cutoff + 1] for k in active])
        n_fits += active.size
        delta = curr - prev[active]
        increments[active, points] = delta
        # unbuffered and in permutation order: the same additions, in the same order, as
        # OpenDataVal's one-permutation-after-the-other loop
        np.add.at(contrib_sum, (points, cutoff), delta)
        np.add.at(count, (points, cutoff), 1)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 is "not flat", as upstream
            flat = np.abs(delta) / increments[active].sum(axis=1) < TRUNCATION_TOLERANCE
        flat_run[active] = np.where(flat, flat_run[active] + 1, 0)
        truncated = flat_run[active] == TRUNCATION_RUN
        for k in active[truncated]:  # the rest of the permutation contributes zeros
            count[permutations[k, cutoff + 1 :], np.arange(cutoff + 1, num_points)] += 1
        n_truncated += int(truncated.sum())
        prev[active] = curr
        active = active[~truncated]
    return increments, n_fits, n_truncated


def _evaluate(utility: SubsetUtilityFn, coalitions: list[np.ndarray]) -> np.ndarray:
    values = np.asarray(utility(coalitions), dtype=np.float64)
    if values.shape != (len(coalitions),):
        raise ValueError(
            f"the utility returned shape {values.shape} for {len(coalitions)} coalitions; "
            f"it must return one value per coalition, shape ({len(coalitions)},)"
        )
    return values


def gr_tmc_marginal_contributions(
    utility: SubsetUtilityFn,
    *,
    num_points: int,
    gr_threshold: float = 1.05,
    max_mc_epochs: int = 100,
    models_per_epoch: int = 100,
    min_models: int = 1000,
    min_cardinality: int = 5,
    random_state: int | np.random.RandomState | None = None,
    progress: bool = False,
    on_epoch: Callable[[EpochProgress], None] | None = None,
) -> GrTMCResult:
    """Marginal contributions by OpenDataVal's GR-TMC sampler, an epoch's permutations at once.

    Parameters
    ----------
    utility : callable
        ``utility(coalitions) -> (K,)``: the utility (e.g. validation metric of a model
        trained on the coalition) of each of K index arrays. All coalitions of one call have
        the same size; the first call of an epoch has size ``min_cardinality``.
    num_points : int
        Training set size n.
    gr_threshold, max_mc_epochs, models_per_epoch, min_models, min_cardinality
        OpenDataVal's ``GrTMCSampler`` settings and defaults (see module docstring).
        ``min_models`` counts permutations, as upstream.
    random_state : int, numpy RandomState or None
        As upstream (sklearn's ``check_random_state``): the same seed draws the same
        permutations as OpenDataVal's sampler.
    progress : bool
        A tqdm bar over epochs (quiet by default).
    on_epoch : callable, optional
        Called with an ``EpochProgress`` after each epoch.

    Returns
    -------
    GrTMCResult
    """
    _check_settings(
        num_points=num_points,
        gr_threshold=gr_threshold,
        max_mc_epochs=max_mc_epochs,
        models_per_epoch=models_per_epoch,
        min_models=min_models,
        min_cardinality=min_cardinality,
    )
    rng = check_random_state(random_state)
    contrib_sum = np.zeros((num_points, num_points))
    count = np.zeros((num_points, num_points)) + 1e-8
    increments: list[np.ndarray] = []
    gr_statistics: list[float] = []
    fits_per_epoch: list[int] = []
    n_truncated = 0
    gr_stat = GR_BURN_IN
    with tqdm(total=max_mc_epochs, unit="epoch", disable=not progress) as bar:
        while len(gr_statistics) < max_mc_epochs and gr_stat > gr_threshold:
            permutations = np.stack([rng.permutation(num_points) for _ in range(models_per_epoch)])
            epoch_increments, n_fits, truncated = _run_epoch(
                utility,
                permutations,
                min_cardinality=min_cardinality,
                contrib_sum=contrib_sum,
                count=count,
            )
            increments.append(epoch_increments)
            fits_per_epoch.append(n_fits)
            n_truncated += truncated
            gr_stat = gelman_rubin(np.concatenate(increments), min_models=min_models)
            gr_statistics.append(gr_stat)
            bar.update()
            bar.set_postfix(gr=gr_stat, fits=sum(fits_per_epoch))
            if on_epoch is not None:
                on_epoch(
                    EpochProgress(
                        epoch=len(gr_statistics),
                        gr_statistic=gr_stat,
                        n_fits=sum(fits_per_epoch),
                        n_truncated=n_truncated,
                    )
                )
    return GrTMCResult(
        marginal_contrib_sum=contrib_sum,
        marginal_count=count,
        marginal_increments=np.concatenate(increments),
        gr_statistics=tuple(gr_statistics),
        fits_per_epoch=tuple(fits_per_epoch),
        n_truncated=n_truncated,
        converged=gr_stat <= gr_threshold,
    )


def data_shapley_values(marginal_contribution: np.ndarray) -> np.ndarray:
    """Data Shapley: the mean over positions (OpenDataVal's uniform weight 1/n)."""
    return np.sum(marginal_contribution * (1 / len(marginal_contribution)), axis=1)


def beta_shapley_weights(num_points: int, *, alpha: float = 4, beta: float = 1) -> np.ndarray:
    """OpenDataVal's Beta Shapley weight of each position j = 0..n-1, normalised to sum 1:
    Beta(j + beta, n - j - 1 + alpha) / Beta(j + 1, n - j) (Kwon and Zou 2021, eq. 3, 5).

    Computed from log-Beta values: OpenDataVal divides the Beta values themselves, which turn
    subnormal above n of about 1000 (weights off by up to 1% at n = 1050) and underflow to
    0 above about 1070 (every weight NaN); up to n = 1000, the two agree to rounding (tested).
    """
    j = np.arange(num_points)
    log_weights = betaln(j + beta, num_points - (j + 1) + alpha) - betaln(j + 1, num_points - j)
    weights = np.exp(log_weights - log_weights.max())
    return weights / weights.sum()


def beta_shapley_values(
    marginal_contribution: np.ndarray, *, alpha: float = 4, beta: float = 1
) -> np.ndarray:
    """Beta(alpha, beta) Shapley: marginal contributions weighted by position."""
    weights = beta_shapley_weights(len(marginal_contribution), alpha=alpha, beta=beta)
    return np.sum(marginal_contribution * weights, axis=1)
