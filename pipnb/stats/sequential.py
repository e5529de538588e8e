"""Four looks at one plan under one error budget: group-sequential boundaries.

A plan is reviewed at each checkpoint and at the final review. Testing each look at the fixed-sample level
would say "improved" (or "worse") by chance far more often than the stated rate. The boundaries here spend
the one-sided error ``alpha`` over the looks with the Lan–DeMets O'Brien–Fleming-type spending function
``alpha(t) = 2 - 2 Phi(z_{alpha/2} / sqrt(t))`` (Lan & DeMets 1983; O'Brien & Fleming 1979), where ``t`` is
the look's information fraction (plan weeks elapsed ÷ plan weeks). The look statistics are jointly normal
with correlation ``sqrt(t_i / t_j)``; each boundary solves ``P(no earlier crossing, cross now) = alpha(t_k) -
alpha(t_{k-1})`` with :func:`scipy.stats.multivariate_normal.cdf`. An early checkpoint therefore needs a very
large change (about z > 4.3 at t = 1/4 for a one-sided 2.5%); the final look is close to the fixed-sample
boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import optimize, signal
from scipy import stats as sps

__all__ = ["obf_spending", "sequential_boundaries", "look_boundary"]


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

        c = float(optimize.brentq(_crossing, -5.0, 12.0, xtol=1e-9,
                                  args=(weights, grid, step_sd, float(t[k]), float(budget))))
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
