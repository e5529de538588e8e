"""Trend inside the plan period: Mann-Kendall test and Theil-Sen slope of a weekly series."""

from __future__ import annotations

import math

import numpy as np

from pipnb._lazy import sps
from pipnb.stats._common import ArrayLike, Trend, _two_sided_p


def trend_test(values: ArrayLike) -> Trend:
    """Mann-Kendall trend test and Theil-Sen slope (per week) of a weekly series.

    NaNs are dropped. Ten values or fewer use Kendall's tau against time with the exact null
    distribution (asymptotic when there are ties); more use the Mann-Kendall normal approximation
    with the tie correction and continuity correction, the same numbers as
    ``pymannkendall.original_test`` (computed here in numpy: the same answer, without its per-call
    overhead). Fewer than 3 values give NaNs.

    Example
    -------
    >>> trend_test([1, 2, 3, 4, 6]).slope
    1.0
    """
    y = np.asarray(values, dtype=float)
    y = y[np.isfinite(y)]
    if y.size < 3:
        return Trend(n=int(y.size))
    if np.ptp(y) == 0:
        return Trend(0.0, 1.0, 0.0, int(y.size))
    if y.size <= 10:
        method = "exact" if np.unique(y).size == y.size else "asymptotic"
        res = sps.kendalltau(np.arange(y.size), y, method=method)
        return Trend(float(res.statistic), float(res.pvalue), _theil_sen(y), int(y.size))
    tau, p = _mann_kendall(y)
    return Trend(tau, p, _theil_sen(y), int(y.size))


def _mann_kendall(y: np.ndarray) -> tuple[float, float]:
    """Mann-Kendall tau and two-sided p-value (tie-corrected variance, continuity correction)."""
    n = y.size
    i, j = np.triu_indices(n, k=1)
    score = float(np.sign(y[j] - y[i]).sum())
    _, ties = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - np.sum(ties * (ties - 1) * (2 * ties + 5))) / 18.0
    z = (score - np.sign(score)) / math.sqrt(var) if var > 0 else 0.0
    return score / (n * (n - 1) / 2), _two_sided_p(z)


def _theil_sen(y: np.ndarray) -> float:
    """Median of the slopes between every pair of weeks (as ``scipy.stats.theilslopes``)."""
    i, j = np.triu_indices(y.size, k=1)
    return float(np.median((y[j] - y[i]) / (j - i)))
