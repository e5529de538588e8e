"""Weekly counts (emails, calls, meetings): a two-way (rep x week) Poisson model with working-day
exposure and week effects from peers, quasi-Poisson or negative-binomial variance."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipnb._lazy import optimize, sps
from pipnb.schema import METRICS
from pipnb.stats._common import (
    ChangeVariance,
    Family,
    MetricChange,
    _control_matrix,
    _finish,
    _Fit,
    _grid,
    _safe_div,
    _units,
    _z_crit,
    autocorrelation_inflation,
)
from pipnb.stats.power import detectable_change
from pipnb.stats.trend import trend_test
from pipnb.stats.windows import PlanWindows, working_days

DAYS_PER_WORKING_WEEK = 5.0


def _week_effects(counts: np.ndarray, exposure: np.ndarray, controls: np.ndarray,
                  *, max_iter: int = 500, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Week effects of a two-way Poisson model fitted on each control set, by iterative scaling.

    For control set k the model is ``counts[i, t] ~ Poisson(exposure[i, t] * a[k, i] * g[k, t])``;
    alternating the two closed-form score equations (rep totals, week totals) converges to the
    maximum-likelihood fit, i.e. the Poisson GLM with rep and week dummies.

    Returns
    -------
    g, a, ok
        Week effects (k x t), rep effects (k x i) and whether week t has control exposure (k x t).
    """
    n_sets, n_weeks = controls.shape[0], counts.shape[1]
    if not controls.any():
        ones = np.ones((n_sets, n_weeks))
        return ones, np.ones((n_sets, counts.shape[0])), ones.astype(bool)
    col_counts, ok = controls @ counts, (controls @ exposure) > 0
    row_counts = counts.sum(axis=1)
    g = ok.astype(float)
    for _ in range(max_iter):
        rep_denominator = g @ exposure.T
        a = np.divide(row_counts, rep_denominator, out=np.zeros_like(rep_denominator),
                      where=rep_denominator > 0)
        week_denominator = (controls * a) @ exposure
        g_new = np.divide(col_counts, week_denominator, out=np.zeros_like(week_denominator),
                          where=week_denominator > 0)
        done = np.max(np.abs(g_new - g)) <= tol * max(1.0, float(np.max(g_new)))
        g = g_new
        if done:
            break
    return g, a, ok


def _solve_nb_alpha(y: np.ndarray, mu: np.ndarray, df: float) -> float:
    """Negative-binomial alpha whose Pearson chi-square equals its degrees of freedom (0 if none)."""
    def excess(alpha: float) -> float:
        return float(np.sum((y - mu) ** 2 / (mu * (1 + alpha * mu)))) - df
    if excess(0.0) <= 0:
        return 0.0
    high = 1.0
    while excess(high) > 0 and high < 1e4:
        high *= 10
    return float(optimize.brentq(excess, 0.0, high, xtol=1e-6))


def _dispersion(y: np.ndarray, mu: np.ndarray, df: float, family: Family) -> tuple[float, float, str]:
    """(phi, nb_alpha, model name) from Pearson residuals of the control fit."""
    keep = mu > 0
    y, mu = y[keep], mu[keep]
    if family == "poisson" or df <= 0 or y.size == 0:
        return 1.0, 0.0, "Poisson"
    chi2 = float(np.sum((y - mu) ** 2 / mu))
    if family == "quasipoisson":
        phi = max(1.0, chi2 / df)
        return phi, 0.0, f"quasi-Poisson (dispersion {phi:.2f})"
    if family == "auto" and sps.chi2.sf(chi2, df) >= 0.05:
        return 1.0, 0.0, "Poisson (no overdispersion found)"
    alpha = _solve_nb_alpha(y, mu, df)
    return 1.0, alpha, f"negative binomial (alpha {alpha:.3f})"


def _count_dispersion(counts: np.ndarray, exposure: np.ndarray, g: np.ndarray, a: np.ndarray,
                      valid: np.ndarray, is_plan: np.ndarray, family: Family) -> tuple[float, float, str]:
    """Dispersion from the peers' residuals (the rep's own residuals when there are no peers)."""
    n_units = counts.shape[0]
    if n_units > 1:
        cells = valid[1:]
        mu = (a[0, 1:, None] * exposure[1:] * g[0][None, :])[cells]
        df = cells.sum() - (n_units - 1) - valid[1:].any(axis=0).sum() + 1
        return _dispersion(counts[1:][cells], mu, df, family)
    cells = valid[0]
    rates = [counts[0, cells & p].sum() / max(exposure[0, cells & p].sum(), 1e-12)
             for p in (~is_plan, is_plan)]
    mu = exposure[0] * np.where(is_plan, rates[1], rates[0])
    return _dispersion(counts[0][cells], mu[cells], cells.sum() - 2, family)


def _count_fit(counts: np.ndarray, present: np.ndarray, days: np.ndarray, is_plan: np.ndarray,
               family: Family) -> tuple[_Fit, dict[str, Any]]:
    """Difference-in-differences log rate ratios for every unit as the treated one."""
    n_units = counts.shape[0]
    exposure = np.where(present, days[None, :], 0.0)
    controls = _control_matrix(n_units)
    g, a, ok = _week_effects(np.where(present, counts, 0.0), exposure, controls)
    valid = present & ok & (exposure > 0)
    phi, nb_alpha, model = _count_dispersion(counts, exposure, g, a, valid, is_plan, family)
    fitted = np.where(valid, exposure * g, 0.0)              # expected counts at a rate of 1 per unit
    y, e = np.where(valid, counts, 0.0), np.where(valid, exposure, 0.0)
    parts = {name: {"y": y[:, period].sum(1), "m": fitted[:, period].sum(1), "e": e[:, period].sum(1),
                    "w2": (fitted[:, period] ** 2).sum(1),
                    "ctrl": _control_var(a, exposure, g, ok, controls, period, phi, nb_alpha)}
             for name, period in (("B", ~is_plan), ("P", is_plan))}
    est, var = _count_log_ratio(parts, phi, nb_alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        peer = np.log((parts["P"]["m"] / parts["P"]["e"]) / (parts["B"]["m"] / parts["B"]["e"]))
    if n_units == 1:
        peer = np.full(1, np.nan)
    empty = (parts["P"]["y"] + parts["B"]["y"] == 0) | (parts["P"]["m"] == 0) | (parts["B"]["m"] == 0)
    model += f", week effects from {n_units - 1} peers" if n_units > 1 else ", no peers (no week effects)"
    fit = _Fit(np.where(empty, np.nan, est), np.where(empty, np.nan, np.sqrt(var)), peer, True, model)
    extra = {"phi": phi, "nb_alpha": nb_alpha, "parts": parts,
             "ctrl_var": parts["B"]["ctrl"][0] + parts["P"]["ctrl"][0],
             "weekly": (counts[0], exposure[0], valid[0]), "fitted": fitted[0]}
    return fit, extra


def _weekly_residuals(extra: Mapping[str, Any], is_plan: np.ndarray) -> list[np.ndarray]:
    """The rep's weekly Pearson residuals in each period (baseline, plan), around the period's fitted rate
    times the week effects, in week order (0 in weeks without data): what :func:`autocorrelation_inflation`
    reads."""
    y, _, valid = extra["weekly"]
    out = []
    for name, period in (("B", ~is_plan), ("P", is_plan)):
        part = extra["parts"][name]
        rate = part["y"][0] / part["m"][0] if part["m"][0] > 0 else 0.0
        mu = extra["fitted"][period] * rate
        sd = np.sqrt(mu * (extra["phi"] + extra["nb_alpha"] * mu))
        keep = valid[period] & (sd > 0)
        out.append(np.where(keep, _safe_div(y[period] - mu, sd), 0.0))
    return out


def _count_log_ratio(parts: Mapping[str, Mapping[str, np.ndarray]], phi: float, nb_alpha: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """log[(Y_P / M_P) / (Y_B / M_B)] and its variance: the rep's two totals (quasi-Poisson or NB) plus
    the controls' noise in the week effects. A zero total gets the Haldane 0.5 correction."""
    zero = (parts["B"]["y"] == 0) | (parts["P"]["y"] == 0)
    log_rate, var = {}, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, part in parts.items():
            y, m = part["y"] + 0.5 * zero, part["m"]
            log_rate[name] = np.log(y / m)
            var = var + phi / y + nb_alpha * part["w2"] / m ** 2 + part["ctrl"]
    return log_rate["P"] - log_rate["B"], var


def _control_var(a: np.ndarray, exposure: np.ndarray, g: np.ndarray, ok: np.ndarray, controls: np.ndarray,
                 period: np.ndarray, phi: float, nb_alpha: float) -> np.ndarray:
    """Variance of the log of the controls' fitted total over ``period``, for every control set."""
    if not controls.any():
        return np.zeros(controls.shape[0])
    gp = np.where(ok, g, 0.0)[:, period]
    mu_sum = (((controls * a) @ exposure[:, period]) * gp).sum(1)
    mu2_sum = (((controls * a ** 2) @ exposure[:, period] ** 2) * gp ** 2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mu_sum > 0, phi / mu_sum + nb_alpha * mu2_sum / mu_sum ** 2, np.inf)


def count_change(panel: pd.DataFrame, rep_id: str, metric: str, *, windows: PlanWindows,
                 peers: Sequence[str], holidays: Iterable[Any] | None = None, family: Family = "auto",
                 alpha: float = 0.05, power: float = 0.8) -> MetricChange:
    """Change of a weekly count metric since the plan start, beyond peers, with its placebo check.

    The model is a two-way Poisson regression ``count ~ rep + week (+ plan for the treated rep)`` with
    working-day exposure. Week effects are fitted on the peers only, so the rep's own plan weeks cannot
    bend the counterfactual, and they absorb seasonality, quarter ends and holiday weeks; the rep's
    rate ratio (plan vs baseline) is then divided by what the week effects predict. The variance is
    quasi-Poisson or negative binomial (alpha fitted on the peers' residuals) when the counts are
    overdispersed, plus the peers' own sampling noise. Each peer is refitted as if it were on the plan
    (placebo).

    Parameters
    ----------
    panel
        The weekly panel (long: rep_id, week, metric, numerator, denominator, value).
    rep_id, metric
        The rep and a count metric (numerator = events in the week).
    windows
        From :func:`plan_windows`.
    peers
        Peer rep ids (the rep itself is ignored if listed).
    holidays
        Dates that are not working days.
    family
        ``"auto"`` (Poisson unless the peers' Pearson test shows overdispersion, then negative binomial),
        ``"poisson"``, ``"quasipoisson"`` or ``"negbin"``.
    alpha, power
        Level of the 95% interval (two-sided) and the power for the detectable change.

    Returns
    -------
    MetricChange
        ``estimate`` is a rate ratio (1.25 = 25% more per working day than expected from peers).
    """
    units, weeks = _units(rep_id, peers), windows.weeks
    rows = panel.loc[panel["metric"] == metric]
    counts, _, present = _grid(rows, units, weeks)
    days = working_days(weeks, holidays)
    is_plan = np.asarray(weeks.isin(windows.plan.weeks))
    fit, extra = _count_fit(counts, present, days, is_plan, family)
    meta = METRICS.get(metric)
    higher = meta.higher_is_better if meta else True
    in_time = in_time_placebo_z(rows, units, windows, holidays=holidays, family=family)
    weekly_floor = autocorrelation_inflation(_weekly_residuals(extra, is_plan))
    out = _finish(fit, alpha=alpha, higher_is_better=higher, own_placebo_z=in_time, weekly_floor=weekly_floor)
    variance = _count_variance(extra)
    mde = math.nan if variance is None else detectable_change(
        variance, _z_crit(alpha, "two-sided"), power=power, inflation=out["inflation"],
        scatter=out["widening"]["scatter"], higher_is_better=higher)
    base, plan = extra["parts"]["B"], extra["parts"]["P"]
    rate = {k: _per_week(p["y"][0], p["e"][0]) for k, p in (("B", base), ("P", plan))}
    weekly_counts, weekly_exposure, weekly_valid = extra["weekly"]
    series = (_safe_div(weekly_counts, weekly_exposure) * DAYS_PER_WORKING_WEEK)[weekly_valid & is_plan]
    model = fit.model + (f", variance checked on {in_time.size} placebo plan starts in the rep's own history"
                         if in_time.size else "")
    return MetricChange(
        metric=metric, kind="count", effect="rate ratio", model=model, higher_is_better=higher,
        baseline=rate["B"], baseline_raw=rate["B"], actual=rate["P"],
        mde=mde, variance=variance,
        baseline_weeks=int((weekly_valid & ~is_plan).sum()), plan_weeks=int((weekly_valid & is_plan).sum()),
        trend=trend_test(series),
        detail={"baseline_count": float(base["y"][0]), "plan_count": float(plan["y"][0])}, **out)


MAX_OWN_PLACEBOS = 8


def in_time_placebo_z(rows: pd.DataFrame, units: Sequence[str], windows: PlanWindows, *,
                      holidays: Iterable[Any] | None = None, family: Family = "auto") -> np.ndarray:
    """z-scores of the rep's own history refitted with placebo plan starts (in-time placebos).

    The baseline and plan windows are moved back together, a few weeks at a time, as far as the rep's data
    before the diagnosis window reach: the diagnosis window selected the rep for looking low, so a placebo
    reaching into it would show a fall by construction. Each placebo is the same two-way model with the same
    peers; when the model's variance fits the rep's own week-to-week correlation, the z-scores are N(0, 1)
    and their root mean square, pooled with the peers' in-space placebos, is the inflation of
    :func:`placebo_inflation`. Up to ``MAX_OWN_PLACEBOS`` placebos; none when history is short.
    """
    n_plan, n_base = windows.plan.n_weeks, windows.baseline.n_weeks
    if n_plan == 0 or n_base == 0:
        return np.empty(0)
    own = rows.loc[rows["rep_id"] == units[0], "week"]
    if own.empty:
        return np.empty(0)
    earliest = pd.Timestamp(own.min())
    limit = windows.plan.first_week
    if windows.diagnosis.n_weeks:
        limit = min(limit, windows.diagnosis.first_week)
    base_plan = windows.plan.first_week - windows.baseline.first_week
    step = pd.Timedelta(weeks=max(1, (n_plan + 1) // 2))
    z = []
    plan_first = limit - pd.Timedelta(weeks=n_plan)
    while len(z) < MAX_OWN_PLACEBOS:
        base_first = plan_first - base_plan
        if base_first < earliest:
            break
        b = pd.date_range(base_first, periods=n_base, freq="W-MON")
        p = pd.date_range(plan_first, periods=n_plan, freq="W-MON")
        if b[-1] >= p[0]:
            break
        weeks = b.union(p)
        counts, _, present = _grid(rows, units, weeks)
        fit, _ = _count_fit(counts, present, working_days(weeks, holidays), np.asarray(weeks.isin(p)), family)
        if np.isfinite(fit.est[0]) and fit.se[0] > 0:
            z.append(float(fit.est[0] / fit.se[0]))
        plan_first -= step
    return np.asarray(z)


def _per_week(count: float, days: float) -> float:
    return float(count / days * DAYS_PER_WORKING_WEEK) if days > 0 else math.nan


# The baseline count a stated change is computed from: the lower limit of its one-sided 70% interval (Garwood's
# exact Poisson limit), the 70% upper confidence limit of the variance it implies (after Browne 1995).
BASELINE_COUNT_LEVEL = 0.3


def planning_count(count: float, level: float = BASELINE_COUNT_LEVEL) -> float:
    """The count a power calculation reads for an observed Poisson ``count``: its exact lower confidence limit at
    ``level`` (one-sided), ``chi2.ppf(level, 2 count) / 2``.

    A stated change is a promise about power, and a power computed from a variance that is itself estimated
    falls short of the power asked for on average: a baseline that came out high by chance gives too small a
    variance, hence too small a stated change, and the same chance leaves the estimate short of it (Browne,
    "On the use of a pilot sample for sample size determination", *Statistics in Medicine* 14, 1995, 1933-1940;
    Teare et al., *Trials* 15, 2014, 264, for event rates). Browne's remedy reads the variance at an upper
    confidence limit; his 80% aims at the power being reached with 80% confidence, more than the average a
    stated change promises. On the simulated teams (``benchmarks/bench_fairness.py``, scenario 7; a rep at 60%
    of peers: about 14 first meetings and 22 opportunities in the baseline) the observed count gave a true
    change of the stated size "improved" 77.0% of the time for first meetings [72.6-80.9] (400 plans) and 76.6%
    for opportunities [71.6-80.9] (320); the 80% limit 82.5% and 87.5% (80 plans each); this 70% limit 82.5%
    [78.0-86.3] and 81.2% [76.6-85.1] (320 each, 240 of them on seeds no level was tried on). A dense count
    moves little: 430 baseline emails read as 419.

    >>> round(planning_count(14), 1), round(planning_count(430), 1)
    (11.8, 418.9)
    """
    return float(sps.chi2.ppf(level, 2 * count) / 2) if count > 0 else 0.0


def _count_variance(extra: Mapping[str, Any]) -> ChangeVariance | None:
    """The log rate ratio's variance as a function of the true ratio: the baseline total, the negative-
    binomial terms and the peers' noise are fixed; the plan total is the baseline rate projected onto the
    plan weeks (by the week effects) times the ratio. The baseline total is read at its lower confidence limit
    (:func:`planning_count`): the rate the variance is projected from is itself estimated."""
    base, plan = extra["parts"]["B"], extra["parts"]["P"]
    y_b, m_b, m_p = planning_count(base["y"][0]), base["m"][0], plan["m"][0]
    if y_b <= 0 or m_b <= 0 or m_p <= 0:
        return None
    phi, nb_alpha = extra["phi"], extra["nb_alpha"]
    fixed = phi / y_b + nb_alpha * (base["w2"][0] / m_b ** 2 + plan["w2"][0] / m_p ** 2) + extra["ctrl_var"]
    return ChangeVariance("log", fixed=float(fixed), plan=float(phi / (y_b * m_p / m_b)), events=1.0)
