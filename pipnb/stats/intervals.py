"""Intervals for a rep's pooled plan-period level, the evidence behind a target's status.

A status (*met*, *not met*, *not yet clear*) reads a 95% interval of the rep's level over all plan weeks so
far, never one window's point value:

* a **count per week**: the mean of the weekly counts with a t interval whose variance is the larger of the
  weeks' sample variance and the Poisson variance (so three identical weeks are not taken as certainty);
* a **ratio**: Wilson's score interval on the pooled successes and trials (cohort ratios are proper
  proportions);
* **days between touches**: the gaps seen over the days they span as a Poisson count (Garwood's exact
  interval for the touch rate), turned into mean days.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

__all__ = ["count_interval", "proportion_interval", "gap_interval", "level_interval"]


def count_interval(weekly: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean weekly count and its interval.

    Example
    -------
    >>> [round(float(x), 2) for x in count_interval(np.array([4, 6, 5, 5]))]
    [5.0, 1.44, 8.56]
    """
    y = np.asarray(weekly, dtype=float)
    y = y[np.isfinite(y)]
    if y.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(y.mean())
    if y.size == 1:
        return mean, 0.0, math.inf
    var = max(float(y.var(ddof=1)), mean)
    half = sps.t.ppf(0.5 + level / 2, y.size - 1) * math.sqrt(var / y.size)
    return mean, max(0.0, mean - half), mean + half


def proportion_interval(successes: float, trials: float, level: float = 0.95) -> tuple[float, float, float]:
    """Pooled proportion and Wilson's score interval (``statsmodels`` ``proportion_confint``)."""
    from statsmodels.stats.proportion import proportion_confint  # statsmodels (1.5 s)

    if not trials or trials <= 0 or not np.isfinite(trials):
        return math.nan, 0.0, 1.0
    low, high = proportion_confint(successes, trials, alpha=1 - level, method="wilson")
    return float(successes / trials), float(low), float(high)


def gap_interval(days: float, gaps: float, level: float = 0.95) -> tuple[float, float, float]:
    """Mean days between touches and its interval, from ``gaps`` gaps spanning ``days`` days."""
    if not gaps or gaps <= 0 or not days or days <= 0:
        return math.nan, 0.0, math.inf
    tail = (1 - level) / 2
    rate_lo = sps.chi2.ppf(tail, 2 * gaps) / 2 / days
    rate_hi = sps.chi2.ppf(1 - tail, 2 * gaps + 2) / 2 / days
    return float(days / gaps), float(1 / rate_hi), float(1 / rate_lo) if rate_lo > 0 else math.inf


def level_interval(model: str, *, numerator: float, denominator: float, weekly: np.ndarray | None = None,
                   level: float = 0.95) -> tuple[float, float, float]:
    """The level and interval of one metric by its change model (``count``, ``ratio`` or ``gap``)."""
    if model == "count":
        return count_interval(np.asarray(weekly if weekly is not None else []), level)
    if model == "ratio":
        return proportion_interval(numerator, denominator, level)
    return gap_interval(numerator, denominator, level)
