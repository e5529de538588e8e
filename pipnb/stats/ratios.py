"""Ratios (follow-up ratio, win rate): binomial on period-pooled counts of the rep's own baseline and
plan period, beyond the peers' week-standardized change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipnb.schema import METRICS
from pipnb.stats._common import (
    SNAPSHOT_METRICS,
    ChangeVariance,
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
from pipnb.stats.windows import PlanWindows


def _binomial_var(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Wald variance p(1-p)/n of a pooled proportion (the binomial GLM's); at 0% or 100% the rate
    (s + 0.5)/(n + 1) is used instead so the variance stays positive."""
    p = _safe_div(s, n)
    p = np.where((s <= 0) | (s >= n), (s + 0.5) / (n + 1), p)
    return _safe_div(p * (1 - p), n)


def _ratio_fit(succ: np.ndarray, trials: np.ndarray, present: np.ndarray, is_plan: np.ndarray
               ) -> tuple[_Fit, dict[str, Any]]:
    """Difference in differences of pooled proportions (points) for every unit as the treated one."""
    n_units = succ.shape[0]
    succ, trials = np.where(present, succ, 0.0), np.where(present, trials, 0.0)
    controls = _control_matrix(n_units)
    pooled = {k: _pool(succ[:, per], trials[:, per]) for k, per in (("B", ~is_plan), ("P", is_plan))}
    s_b, n_b = pooled["B"]
    # The rep's own baseline, unshrunk: shrinking it toward peers inside a within-rep before/after test
    # pulls a low rep's change toward zero (shrinkage belongs to ranking reps, not to this test).
    base, base_var = _safe_div(s_b, n_b), _binomial_var(s_b, n_b)
    s_p, n_p = pooled["P"]
    p_plan = _safe_div(s_p, n_p)
    var_plan = _binomial_var(s_p, n_p)
    expect = {k: _standardized_peer_rate(succ, trials, controls, per) for k, per in
              (("B", ~is_plan), ("P", is_plan))}
    peer = expect["P"][0] - expect["B"][0]
    if n_units == 1:
        peer = np.zeros(1)
    est = (p_plan - base) - peer
    # The rep's part of the variance at the pooled rate of both periods (the score test's): the Wald
    # variance of a handful of trials at 0% or 100% makes a tiny sample look certain.
    pooled = np.clip(_safe_div(s_b + s_p, n_b + n_p), 0.02, 0.98)
    own_var = np.maximum(var_plan + base_var, pooled * (1 - pooled) * (_safe_div(1.0, n_p) + _safe_div(1.0, n_b)))
    se = np.sqrt(own_var + expect["P"][1] + expect["B"][1])
    bad = ~np.isfinite(est) | (n_p < MIN_TRIALS) | (n_b < MIN_TRIALS)
    fit = _Fit(np.where(bad, np.nan, est), np.where(bad, np.nan, se), np.where(n_units > 1, peer, np.nan),
               False, "")
    extra = {"s_b": s_b[0], "n_b": n_b[0], "s_p": s_p[0], "n_p": n_p[0], "base": base[0],
             "base_var": base_var[0],
             "peer_var": expect["P"][1][0] + expect["B"][1][0]}
    return fit, extra


def _weekly_residuals(succ: np.ndarray, trials: np.ndarray, present: np.ndarray, is_plan: np.ndarray
                      ) -> list[np.ndarray]:
    """The rep's weekly Pearson residuals of successes in each period around the period's pooled rate (0 in
    weeks without trials), for :func:`autocorrelation_inflation`."""
    out = []
    for period in (~is_plan, is_plan):
        s, n = np.where(present[period], succ[period], 0.0), np.where(present[period], trials[period], 0.0)
        p = min(max(float(_safe_div(min(s.sum(), n.sum()), n.sum())), 0.02), 0.98) if n.sum() > 0 else 0.5
        out.append(np.where(n > 0, _safe_div(s - p * n, np.sqrt(n * p * (1 - p))), 0.0))
    return out


MIN_TRIALS = 10      # fewer trials in the baseline or the plan period: no verdict yet (too early to tell)


def _pool(succ: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Period totals; successes are capped at trials.

    Flow ratios (second meetings in a week / first meetings in that week) can exceed 1 in a week and,
    rarely, over a short window; a binomial needs successes <= trials, so the pooled numerator is
    capped at the pooled denominator. This errs toward a lower rate, never a higher one.
    """
    n = trials.sum(axis=1)
    return np.minimum(succ.sum(axis=1), n), n


def _standardized_peer_rate(succ: np.ndarray, trials: np.ndarray, controls: np.ndarray, period: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Peers' rate in each week, averaged with the treated unit's own weekly trials as weights.

    This is the ratio analogue of week fixed effects: if the rep had most first meetings in a week
    when everyone converted well, the expected rate is higher. Returns (rate, variance) per unit.
    """
    cs, cn = (controls @ succ)[:, period], (controls @ trials)[:, period]
    fallback = _safe_div(cs.sum(1), cn.sum(1))
    weekly = np.where(cn > 0, _safe_div(cs, cn), fallback[:, None])
    weekly = np.clip(np.nan_to_num(weekly), 0.0, 1.0)
    own = trials[:, period]
    weights = _safe_div(own, own.sum(1, keepdims=True))
    rate = np.clip((weights * weekly).sum(1), 0.0, 1.0)
    var = (weights ** 2 * _safe_div(weekly * (1 - weekly), np.where(cn > 0, cn, np.inf))).sum(1)
    return rate, np.nan_to_num(var)


def _ratio_rows(panel: pd.DataFrame, metric: str, windows: PlanWindows) -> pd.DataFrame:
    """Rows of a ratio metric; a snapshot metric keeps only the last week of each window."""
    rows = panel.loc[panel["metric"] == metric]
    if metric not in SNAPSHOT_METRICS:
        return rows
    last = [w.last_week for w in (windows.baseline, windows.plan) if w.n_weeks]
    return rows.loc[rows["week"].isin(last)]


def ratio_change(panel: pd.DataFrame, rep_id: str, metric: str, *, windows: PlanWindows,
                 peers: Sequence[str], alpha: float = 0.05, power: float = 0.8) -> MetricChange:
    """Change of a ratio metric (follow-up ratio, win rate) since the plan start, beyond peers.

    Counts are pooled over each window (never a mean of weekly ratios; weeks with no trials add
    nothing). The rep's baseline is their own pooled rate (never shrunk toward peers: that would bias a
    low rep's change toward zero). The change is the plan rate minus the baseline minus what peers'
    week-by-week rates predict for the rep's own mix of weeks, in points, with a binomial (Wald)
    variance of each part. Snapshot metrics such as ``stale_opp_share`` compare the last week of each
    window.

    Parameters
    ----------
    panel
        The weekly panel; the metric's numerator is successes and its denominator trials.
    rep_id, metric
        The rep and a ratio metric.
    windows
        From :func:`plan_windows`.
    peers
        Peer rep ids: the peers' change and the placebo refits.
    alpha, power
        Level of the 95% interval (two-sided) and the power for the detectable change.

    Returns
    -------
    MetricChange
        ``estimate`` is a difference in points (0.12 = 12 points higher than expected).
    """
    units, weeks = _units(rep_id, peers), windows.weeks
    succ, trials, present = _grid(_ratio_rows(panel, metric, windows), units, weeks)
    is_plan = np.asarray(weeks.isin(windows.plan.weeks))
    fit, extra = _ratio_fit(succ, trials, present, is_plan)
    meta = METRICS.get(metric)
    higher = meta.higher_is_better if meta else True
    out = _finish(fit, alpha=alpha, higher_is_better=higher,
                  weekly_floor=autocorrelation_inflation(_weekly_residuals(succ[0], trials[0], present[0], is_plan)))
    variance = ChangeVariance("points", fixed=float(extra["peer_var"]), p0=float(extra["base"]),
                              n_b=float(extra["n_b"]), n_p=float(extra["n_p"]), base_var=float(extra["base_var"]))
    mde = detectable_change(variance, _z_crit(alpha, "two-sided"), power=power, inflation=out["inflation"],
                            scatter=out["widening"]["scatter"], higher_is_better=higher)
    peers_txt = (f", week-standardized peer change from {len(units) - 1} peers" if len(units) > 1
                 else ", no peers")
    weekly = _safe_div(succ[0], trials[0])[is_plan & present[0]]
    return MetricChange(
        metric=metric, kind="ratio", effect="difference in points", higher_is_better=higher,
        model="binomial on pooled counts" + peers_txt,
        baseline=float(extra["base"]), baseline_raw=float(_safe_div(extra["s_b"], extra["n_b"])),
        actual=float(_safe_div(extra["s_p"], extra["n_p"])), mde=float(mde), variance=variance,
        baseline_weeks=int((present[0] & ~is_plan).sum()), plan_weeks=int((present[0] & is_plan).sum()),
        trend=trend_test(weekly),
        detail={"baseline_successes": float(extra["s_b"]), "baseline_trials": float(extra["n_b"]),
                "plan_successes": float(extra["s_p"]), "plan_trials": float(extra["n_p"])}, **out)
