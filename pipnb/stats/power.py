"""Power: the smallest change a checkpoint could detect (rate ratios and proportions), and the pooled
rate ratio of two Poisson counts."""

from __future__ import annotations

import math

from pipnb._lazy import optimize
from pipnb.stats._common import _NORMAL, Alternative, ChangeVariance, _two_sided_p, _z_crit


def detectable_change(variance: ChangeVariance, crit: float, *, power: float = 0.8, inflation: float = 1.0,
                      scatter: float | None = None, higher_is_better: bool = True) -> float:
    """Smallest change in the better direction that a rule rejecting at ``|z| >= crit`` detects with ``power``.

    Solves ``d = inflation * crit * sqrt(variance.at(x)) + scatter * z_power * sqrt(variance.sampling(x))`` with
    ``x = +-d`` the change on the model scale: the rule rejects when the estimate passes ``crit`` times the
    standard error it computes (widened by the decision's ``inflation``), and the estimate scatters with its own
    standard deviation (widened by ``scatter``, the point estimate of the true widening,
    :func:`pipnb.stats.placebo_scatter`; the decision's ``inflation`` when not given), both under the
    alternative (more events after a rise, the binomial variance at the new rate), not the null data's.

    Returns
    -------
    float
        On the effect scale: a ratio ``exp(x)`` for ``"log"`` variances, points ``x`` for ``"points"``;
        ``inf`` (``0`` for a ratio that must fall, ``-inf`` for points that must fall) when even the largest
        change could not be detected.

    Example
    -------
    >>> v = ChangeVariance("log", fixed=1 / 60, plan=1 / 60)
    >>> round(detectable_change(v, 1.96), 2)       # 60 events in each period at the baseline rate
    1.59
    """
    if not math.isfinite(crit) or not math.isfinite(variance.fixed):
        return math.inf if higher_is_better else (0.0 if variance.kind == "log" else -math.inf)
    widen = max(float(inflation), 1.0)
    spread = widen if scatter is None or not math.isfinite(scatter) else min(max(float(scatter), 1.0), widen)
    k_rule, k_power = crit * widen, _NORMAL.inv_cdf(power) * spread
    sign = 1.0 if higher_is_better else -1.0
    if variance.kind == "log":
        upper = 20.0
    else:
        upper = (1 - variance.p0) if higher_is_better else variance.p0
        if not math.isfinite(upper) or upper <= 0 or variance.n_p <= 0 or variance.n_b <= 0:
            return sign * math.inf

    def gap(d: float) -> float:
        x = sign * d
        return d - k_rule * math.sqrt(max(variance.at(x), 0.0)) - k_power * math.sqrt(max(variance.sampling(x), 0.0))
    if gap(upper) < 0:
        if variance.kind == "log":
            return math.inf if higher_is_better else 0.0
        return sign * math.inf
    d = float(optimize.brentq(gap, 0.0, upper, xtol=1e-10))
    return math.exp(sign * d) if variance.kind == "log" else sign * d


def mde_rate_ratio(baseline_rate: float, baseline_weeks: float, plan_weeks: float, *,
                   dispersion: float = 1.0, nb_alpha: float = 0.0, extra_var: float = 0.0,
                   alpha: float = 0.05, power: float = 0.8, alternative: Alternative = "two-sided") -> float:
    """Smallest rate ratio a before/after comparison of a weekly count can detect.

    Solves ``log R = (z_alpha + z_power) * sd(log R)`` with the variance under the alternative,
    ``phi * (1/(r*n_b) + 1/(R*r*n_p)) + nb_alpha * (1/n_b + 1/n_p) + extra_var``.

    Parameters
    ----------
    baseline_rate
        Events per week in the baseline.
    baseline_weeks, plan_weeks
        Lengths of the two windows (weeks; fractions allowed).
    dispersion, nb_alpha
        Quasi-Poisson dispersion and negative-binomial alpha (weekly counts), 1 and 0 for Poisson.
    extra_var
        Extra variance of the log ratio, e.g. from the peers' change.
    alpha, power, alternative
        Level, power, and ``"two-sided"`` or one-sided (``"larger"``) testing.

    Returns
    -------
    float
        The ratio (> 1), or ``inf`` when no change is detectable.

    Example
    -------
    >>> round(mde_rate_ratio(5, 12, 13, alternative="larger"), 2)
    1.5
    """
    if baseline_rate <= 0 or baseline_weeks <= 0 or plan_weeks <= 0:
        return math.inf
    fixed = dispersion / (baseline_rate * baseline_weeks) + nb_alpha * (1 / baseline_weeks + 1 / plan_weeks)
    variance = ChangeVariance("log", fixed=fixed + extra_var, plan=dispersion / (baseline_rate * plan_weeks))
    return detectable_change(variance, _z_crit(alpha, alternative), power=power)


def mde_proportion(baseline_rate: float, baseline_trials: float, plan_trials: float, *,
                   baseline_var: float | None = None, extra_var: float = 0.0, alpha: float = 0.05,
                   power: float = 0.8, alternative: Alternative = "two-sided",
                   increase: bool = True) -> float:
    """Smallest change in a proportion (in points, e.g. 0.39) that a checkpoint can detect.

    Solves ``d = (z_alpha + z_power) * sqrt(v_b + (p+d)(1-p-d)/n_p + extra_var)``, with
    ``v_b = p(1-p)/n_b`` unless ``baseline_var`` is given (e.g. a shrunk baseline's posterior variance).

    Parameters
    ----------
    baseline_rate, baseline_trials
        The baseline proportion and its number of trials.
    plan_trials
        Trials in the plan period so far (e.g. first meetings).
    baseline_var, extra_var
        Baseline variance to use instead of the binomial one, and extra variance (peers' change).
    alpha, power, alternative
        Level, power, and ``"two-sided"`` or one-sided testing.
    increase
        Look for a rise (higher is better) or a fall.

    Returns
    -------
    float
        ``d`` (positive when ``increase``, negative otherwise), or ``inf`` / ``-inf`` when even the
        largest possible change could not be detected.

    Example
    -------
    >>> round(0.30 + mde_proportion(0.30, 40, 13, alternative="larger"), 2)
    0.67
    """
    p0 = float(baseline_rate)
    if plan_trials <= 0 or not 0 <= p0 <= 1:
        return math.inf if increase else -math.inf
    v_b = p0 * (1 - p0) / baseline_trials if baseline_var is None else baseline_var
    k = _z_crit(alpha, alternative) + _NORMAL.inv_cdf(power)
    sign = 1.0 if increase else -1.0
    room = (1 - p0) if increase else p0

    def gap(d: float) -> float:
        p1 = p0 + sign * d
        return d - k * math.sqrt(max(v_b + p1 * (1 - p1) / plan_trials + extra_var, 0.0))
    if room <= 0 or gap(room) < 0:
        return sign * math.inf
    return sign * float(optimize.brentq(gap, 0.0, room, xtol=1e-10))


def pooled_rate_ratio(count1: float, exposure1: float, count0: float, exposure0: float, *,
                      dispersion: float = 1.0, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """Rate ratio of two pooled Poisson counts with a Wald interval on the log scale.

    This is the Poisson GLM ``count ~ period`` with ``exposure`` on two pooled rows (quasi-Poisson
    when ``dispersion > 1``); a zero count gets the Haldane 0.5 correction.

    Parameters
    ----------
    count1, exposure1
        Events and exposure (e.g. working days) of the period compared (the plan).
    count0, exposure0
        The same for the reference period (the baseline).
    dispersion
        Quasi-Poisson dispersion multiplying the variance.
    alpha
        1 - confidence level.

    Returns
    -------
    ratio, ci_low, ci_high, p_value
        Two-sided p-value for ratio = 1.
    """
    zero = 0.5 if min(count1, count0) == 0 else 0.0
    c1, c0 = count1 + zero, count0 + zero
    log_ratio = math.log((c1 / exposure1) / (c0 / exposure0))
    se = math.sqrt(dispersion * (1 / c1 + 1 / c0))
    crit = _z_crit(alpha, "two-sided")
    p = _two_sided_p(log_ratio / se)
    return math.exp(log_ratio), math.exp(log_ratio - crit * se), math.exp(log_ratio + crit * se), p
