"""Four looks at one plan under one error budget: group-sequential boundaries.

A plan is reviewed at each checkpoint and at the final review. Testing each look at the fixed-sample level
would say "improved" (or "worse") by chance far more often than the stated rate. The boundaries here spend
the one-sided error ``alpha`` over the looks with the Lan–DeMets O'Brien–Fleming-type spending function
``alpha(t) = 2 - 2 Phi(z_{alpha/2} / sqrt(t))`` (Lan & DeMets 1983; O'Brien & Fleming 1979), where ``t`` is
the look's information fraction: the information accrued by the look over that of the final review, where
information is the inverse of the change's variance (:func:`information_fractions`; with a fixed baseline of
``B`` weeks and ``P`` plan weeks the variance is proportional to ``1/B + 1/P``, so a 12-week plan reviewed at
weeks 3, 6, 9 and 12 after a 12-week baseline has fractions 0.40, 0.67, 0.86 and 1, not 0.25, 0.5, 0.75, 1).
The look statistics are jointly normal with correlation ``sqrt(t_i / t_j)``; each boundary solves ``P(no
earlier crossing, cross now) = alpha(t_k) - alpha(t_{k-1})`` by recursive numerical integration. An early
checkpoint therefore needs a large change (about z > 3.4 at t = 0.4 for a one-sided 2.5%, z > 4.3 at t = 1/4);
the final look is close to the fixed-sample boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from pipnb._lazy import optimize, signal, sps

__all__ = ["obf_spending", "sequential_boundaries", "look_boundary", "information_fractions"]


def obf_spending(t: float | np.ndarray, alpha: float) -> float | np.ndarray:
    """Cumulative one-sided error spent by information fraction ``t`` (O'Brien–Fleming type)."""
    t = np.clip(np.asarray(t, dtype=float), 1e-12, 1.0)
    spent = 2.0 - 2.0 * sps.norm.cdf(sps.norm.isf(alpha / 2.0) / np.sqrt(t))
    return float(spent) if spent.ndim == 0 else spent


def sequential_boundaries(fractions: Sequence[float], alpha: float = 0.025) -> np.ndarray:
    """One-sided z boundaries for looks at the given information fractions (increasing, last ≤ 1).

    Parameters
    ----------
    fractions
        Information fraction of each look, e.g. ``[3/12, 6/12, 9/12, 1]``.
    alpha
        The one-sided error spent over all the looks.

    Returns
    -------
    numpy.ndarray
        The z value each look's statistic must reach.

    Example
    -------
    >>> sequential_boundaries([0.25, 0.5, 0.75, 1.0], 0.025).round(3)   # Jennison & Turnbull; gsDesign
    array([4.333, 2.963, 2.359, 2.014])
    """
    return np.array(_boundaries(tuple(round(float(t), 10) for t in fractions), float(alpha)))


@lru_cache(maxsize=256)
def _boundaries(fractions: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    t = np.asarray(fractions, dtype=float)
    if len(t) == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1 + 1e-9:
        raise ValueError(f"information fractions must increase within (0, 1]: {list(fractions)}")
    spent = np.atleast_1d(obf_spending(t, alpha))
    # Recursive numerical integration (Armitage, McPherson & Rowe 1969) on the score scale
    # S_k = Z_k sqrt(t_k), a Brownian motion: deterministic, unlike a Monte Carlo multivariate normal cdf.
    grid = np.arange(-8.0, 8.0 + _STEP, _STEP)
    bounds: list[float] = []
    density = None                                   # sub-density of S at the last look, no crossing yet
    for k in range(len(t)):
        budget = spent[k] - (spent[k - 1] if k else 0.0)
        if k == 0:
            c = float(sps.norm.isf(budget))
            density = np.where(grid < c * np.sqrt(t[0]), sps.norm.pdf(grid, scale=np.sqrt(t[0])), 0.0)
            bounds.append(c)
            continue
        step_sd = np.sqrt(t[k] - t[k - 1])
        weights = density * _STEP

        args = (weights, grid, step_sd, float(t[k]), float(budget))
        if _crossing(12.0, *args) >= 0:             # a look with (almost) no new information spends nothing
            c = math.inf
        else:
            c = float(optimize.brentq(_crossing, -5.0, 12.0, xtol=1e-9, args=args))
        kernel = sps.norm.pdf(np.arange(-len(grid) + 1, len(grid)) * _STEP / step_sd) / step_sd
        moved = signal.fftconvolve(weights, kernel)[len(grid) - 1: 2 * len(grid) - 1]
        density = np.where(grid < c * np.sqrt(t[k]), moved, 0.0)
        bounds.append(c)
    return tuple(bounds)


_STEP = 0.001


def _crossing(c: float, weights: np.ndarray, grid: np.ndarray, step_sd: float, tk: float, budget: float) -> float:
    """Probability of first crossing boundary ``c`` at this look, minus the error it may spend."""
    return float(weights @ sps.norm.sf((c * np.sqrt(tk) - grid) / step_sd)) - budget


def look_boundary(fractions: Sequence[float], look: int, alpha: float) -> float:
    """The z boundary of look ``look`` (0-based) of a design with these information fractions."""
    return float(sequential_boundaries(fractions, alpha)[look])


def information_fractions(look_weeks: Sequence[float], baseline_weeks: float) -> list[float]:
    """Information fraction of each look of a before/after comparison with a fixed baseline.

    The change at a look after ``P`` plan weeks is the plan-period mean minus the baseline mean, with variance
    proportional to ``1/B + 1/P`` (``B`` baseline weeks); its information is the inverse. Successive looks
    share the baseline and the earlier plan weeks, so their statistics are jointly normal with correlation
    ``sqrt(I_j / I_k)``, the canonical form the boundaries assume, with ``t_k = I_k / I_K``. A look with no plan
    week yet has no information; it gets a tiny fraction (its boundary is then unreachable, not an error).

    Example
    -------
    >>> [round(t, 2) for t in information_fractions([3, 6, 9, 12], 12)]
    [0.4, 0.67, 0.86, 1.0]
    """
    weeks = [float(w) for w in look_weeks]
    if not weeks or baseline_weeks <= 0 or weeks[-1] <= 0:
        raise ValueError(f"need plan weeks and a baseline to weigh the looks: {weeks}, baseline {baseline_weeks}")

    def information(p: float) -> float:
        return 1.0 / (1.0 / baseline_weeks + 1.0 / p) if p > 0 else 0.0
    final = information(weeks[-1])
    out = [information(p) / final for p in weeks]
    out[-1] = 1.0
    for k in range(len(out) - 2, -1, -1):          # a look that adds no week (a leave) adds (almost) no information
        out[k] = min(out[k], out[k + 1] - 1e-6)
    for k in range(len(out)):
        out[k] = max(out[k], 1e-6 * (k + 1), out[k - 1] + 1e-7 if k else 0.0)
    return out
