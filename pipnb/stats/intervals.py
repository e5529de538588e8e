"""Intervals for a rep's level over some weeks, the evidence behind a target's status.

A status (*met*, *not met*, *not yet clear*) reads a 95% interval of the rep's level, never one window's point
value:

* a **count per week**: the mean of the weekly counts. Its interval is Garwood's exact Poisson interval on the
  total (so a stretch of weeks with no event is never certain: twelve weeks with none give 0 to 0.31 a week),
  widened by the weeks' own overdispersion (so weeks that vary more than Poisson, holidays and busy weeks, are
  not taken as certainty);
* a **ratio**: Wilson's score interval on the pooled successes and trials (cohort ratios are proper
  proportions);
* **days between touches**: the gaps seen over the days they span as a Poisson count (Garwood's exact
  interval for the touch rate), turned into mean days.

Garwood, F. (1936). Fiducial limits for the Poisson distribution. *Biometrika* 28, 437-442.
"""

from __future__ import annotations

import math

import numpy as np

from pipnb._lazy import sps

__all__ = ["count_interval", "weekly_dispersion", "garwood_interval", "proportion_interval", "gap_interval",
           "level_interval"]


def garwood_interval(events: float, level: float = 0.95) -> tuple[float, float]:
    """Garwood's exact two-sided interval for the mean of a Poisson count of ``events``.

    Example
    -------
    >>> [round(x, 3) for x in garwood_interval(0)]
    [0.0, 3.689]
    >>> [round(x, 2) for x in garwood_interval(10)]
    [4.8, 18.39]
    """
    tail = (1 - level) / 2
    k = max(float(events), 0.0)
    low = 0.0 if k <= 0 else float(sps.chi2.ppf(tail, 2 * k) / 2)
    return low, float(sps.chi2.ppf(1 - tail, 2 * k + 2) / 2)


def count_interval(weekly: np.ndarray, level: float = 0.95, *, dispersion: float | None = None
                   ) -> tuple[float, float, float]:
    """Mean weekly count and its interval: Garwood's exact Poisson limits, widened for overdispersion.

    With a dispersion ``phi`` (the weeks' variance over their mean, at least 1) the total ``k`` counts as
    ``k / phi`` Poisson events scaled back by ``phi`` (the quasi-Poisson analogue of the exact interval), so
    weeks that vary more than Poisson are not taken as certainty and a stretch without events is never
    certain either. ``dispersion`` defaults to the one these weeks show; a review passes the one of all
    plan weeks so far, which rests on more weeks than its last window.

    Example
    -------
    >>> [round(float(x), 2) for x in count_interval(np.array([4, 6, 5, 5]))]
    [5.0, 3.05, 7.72]
    >>> [round(float(x), 3) for x in count_interval(np.zeros(12))]
    [0.0, 0.0, 0.307]
    """
    y = np.asarray(weekly, dtype=float)
    y = y[np.isfinite(y)]
    if y.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(y.mean())
    phi = weekly_dispersion(y) if dispersion is None else max(float(dispersion), 1.0)
    low, high = garwood_interval(float(y.sum()) / phi, level)
    return mean, low * phi / y.size, high * phi / y.size


def weekly_dispersion(weekly: np.ndarray) -> float:
    """The weeks' variance over their mean, at least 1 (1 with fewer than two weeks or no event)."""
    y = np.asarray(weekly, dtype=float)
    y = y[np.isfinite(y)]
    if y.size < 2 or y.mean() <= 0:
        return 1.0
    return max(1.0, float(y.var(ddof=1) / y.mean()))


def proportion_interval(successes: float, trials: float, level: float = 0.95) -> tuple[float, float, float]:
    """Pooled proportion and Wilson's score interval (``statsmodels`` ``proportion_confint``)."""
    from statsmodels.stats.proportion import proportion_confint  # statsmodels (1.5 s)

    if not trials or trials <= 0 or not np.isfinite(trials):
        return math.nan, 0.0, 1.0
    low, high = proportion_confint(min(successes, trials), trials, alpha=1 - level, method="wilson")
    return float(successes / trials), float(low), float(high)


def gap_interval(days: float, gaps: float, level: float = 0.95) -> tuple[float, float, float]:
    """Mean days between touches and its interval, from ``gaps`` gaps spanning ``days`` days."""
    if not gaps or gaps <= 0 or not days or days <= 0:
        return math.nan, 0.0, math.inf
    rate_lo, rate_hi = (x / days for x in garwood_interval(gaps, level))
    return float(days / gaps), float(1 / rate_hi), float(1 / rate_lo) if rate_lo > 0 else math.inf


def level_interval(model: str, *, numerator: float, denominator: float, weekly: np.ndarray | None = None,
                   level: float = 0.95, dispersion: float | None = None) -> tuple[float, float, float]:
    """The level and interval of one metric by its change model (``count``, ``ratio`` or ``gap``);
    ``dispersion`` is a count's (default: its own weeks')."""
    if model == "count":
        return count_interval(np.asarray(weekly if weekly is not None else []), level, dispersion=dispersion)
    if model == "ratio":
        return proportion_interval(numerator, denominator, level)
    return gap_interval(numerator, denominator, level)
