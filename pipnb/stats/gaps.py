"""Days between touches: an exponential model per opportunity with open gaps right-censored and an
opportunity-clustered variance."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pipnb.metrics import week_start
from pipnb.stats._common import (
    GAP_METRIC,
    ChangeVariance,
    MetricChange,
    _control_matrix,
    _finish,
    _Fit,
    _units,
    _z_crit,
)
from pipnb.stats.power import detectable_change
from pipnb.stats.trend import trend_test
from pipnb.stats.windows import PlanWindows, Window


def _gap_exposure(gaps: pd.DataFrame, window_start: pd.Timestamp, window_end: pd.Timestamp) -> pd.DataFrame:
    """Per (rep, opportunity): closed gaps ending in the window and days at risk inside it.

    A gap runs from ``ended_at - days`` to ``ended_at``; the part inside the window is time at risk,
    and it counts as an event only if it closed (not censored) inside the window. Open gaps and gaps
    still running at the window end are right-censored there.
    """
    end = gaps["ended_at"]
    start = end - pd.to_timedelta(gaps["days"], unit="D")
    lo, hi = start.clip(lower=window_start), end.clip(upper=window_end)
    at_risk = ((hi - lo).dt.total_seconds() / 86400.0).clip(lower=0.0)
    event = ~gaps["censored"] & (end >= window_start) & (end < window_end)
    frame = pd.DataFrame({"rep_id": gaps["rep_id"], "opp_id": gaps["opp_id"],
                          "d": event.astype(float), "t": at_risk})
    frame = frame.loc[frame["t"] > 0]
    return frame.groupby(["rep_id", "opp_id"], sort=False)[["d", "t"]].sum()


def _gap_sums(gaps: pd.DataFrame, units: Sequence[str], window: Window) -> dict[str, np.ndarray]:
    """Per unit: events D, days T, and the cluster sums d^2, d*t, t^2 for the sandwich variance."""
    per_opp = _gap_exposure(gaps, window.start, window.end)
    per_opp = per_opp.assign(dd=per_opp["d"] ** 2, dt=per_opp["d"] * per_opp["t"], tt=per_opp["t"] ** 2,
                             g=1.0)
    by_rep = per_opp.groupby(level="rep_id").sum().reindex(pd.Index(units, name="rep_id"), fill_value=0.0)
    return {c: by_rep[c].to_numpy(dtype=float) for c in ("d", "t", "dd", "dt", "tt", "g")}


def _log_gap_and_var(sums: Mapping[str, np.ndarray], weights: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Log mean gap (T/D) and its opportunity-clustered variance, per unit or per control set."""
    pick = (lambda v: v) if weights is None else (lambda v: weights @ v)
    d, t, dd, dt, tt, g = (pick(sums[c]) for c in ("d", "t", "dd", "dt", "tt", "g"))
    d_c = np.where(d > 0, d, 0.5)                           # no closed gap yet: Haldane 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = d_c / t
        robust = (dd - 2 * lam * dt + lam ** 2 * tt) / d_c ** 2 * np.where(g > 1, g / (g - 1), 1.0)
        var = np.maximum(robust, 1 / d_c)                   # never surer than the exponential model
        log_gap = np.where(t > 0, np.log(t / d_c), np.nan)
    return log_gap, var


def gap_change(gaps: pd.DataFrame, rep_id: str, *, windows: PlanWindows, peers: Sequence[str],
               alpha: float = 0.05, power: float = 0.8, metric: str = GAP_METRIC) -> MetricChange:
    """Change in the days between touches since the plan start, beyond peers (lower is better).

    The unit is the opportunity. Each gap between touches is split at the window edges; a gap still
    open at the window end (or at the evaluation date) is right-censored, so a neglected opportunity
    counts as a long gap rather than vanishing. The mean gap is estimated as days at risk / closed gaps
    (the exponential model, equivalently a Poisson GLM of closed gaps with log days offset) and its
    variance is clustered by opportunity (sandwich, with a small-sample factor, never below the
    exponential model's). The rep's plan/baseline ratio of mean gaps is divided by the peers' ratio
    over the same windows.

    Parameters
    ----------
    gaps
        One row per gap: rep_id, opp_id, ended_at (when a touch closed it, or the evaluation date),
        days, censored (True for a gap still open at the evaluation date).
    rep_id
        The rep on the plan.
    windows
        From :func:`plan_windows`.
    peers
        Peer rep ids.
    alpha, power
        Level of the interval and power for the detectable change.
    metric
        Name to report (the panel's ``avg_days_between_touches``).

    Returns
    -------
    MetricChange
        ``estimate`` is a gap ratio (0.8 = gaps 20% shorter than expected from peers).
    """
    units = _units(rep_id, peers)
    gaps = gaps.loc[gaps["rep_id"].isin(units)]
    gaps = gaps.assign(ended_at=pd.to_datetime(gaps["ended_at"]), censored=gaps["censored"].astype(bool))
    sums = {k: _gap_sums(gaps, units, w) for k, w in (("B", windows.baseline), ("P", windows.plan))}
    fit, variance = _gap_fit(sums, len(units))
    out = _finish(fit, alpha=alpha, higher_is_better=False)
    mde = math.nan if variance is None else detectable_change(
        variance, _z_crit(alpha, "two-sided"), power=power, inflation=out["inflation"],
        scatter=out["widening"]["scatter"], higher_is_better=False)
    peers_txt = f", peer change from {len(units) - 1} peers" if len(units) > 1 else ", no peers"
    mean = {k: float(s["t"][0] / s["d"][0]) if s["d"][0] > 0 else math.nan for k, s in sums.items()}
    own = gaps.loc[gaps["rep_id"] == rep_id]
    return MetricChange(
        metric=metric, kind="gap", effect="gap ratio", higher_is_better=False,
        model="exponential gaps per opportunity, open gaps censored, clustered by opportunity" + peers_txt,
        baseline=mean["B"], baseline_raw=mean["B"], actual=mean["P"], mde=mde, variance=variance,
        baseline_weeks=windows.baseline.n_weeks, plan_weeks=windows.plan.n_weeks,
        trend=trend_test(_weekly_closed_gaps(own, windows.plan)),
        detail={"baseline_closed": float(sums["B"]["d"][0]), "plan_closed": float(sums["P"]["d"][0]),
                "open_gaps": float(own["censored"].sum())}, **out)


def _gap_fit(sums: Mapping[str, Mapping[str, np.ndarray]], n_units: int) -> tuple[_Fit, ChangeVariance | None]:
    """Log ratio of mean gaps (plan / baseline), minus the controls' log ratio, for every unit, and the
    rep's variance as a function of the true gap ratio."""
    own = {k: _log_gap_and_var(s) for k, s in sums.items()}
    est, var = own["P"][0] - own["B"][0], own["P"][1] + own["B"][1]
    peer = np.full(n_units, np.nan)
    fixed = own["B"][1][0]
    if n_units > 1:
        controls = _control_matrix(n_units)
        ctrl = {k: _log_gap_and_var(s, controls) for k, s in sums.items()}
        peer = ctrl["P"][0] - ctrl["B"][0]
        est, var = est - peer, var + ctrl["P"][1] + ctrl["B"][1]
        fixed = fixed + ctrl["P"][1][0] + ctrl["B"][1][0]
    bad = ((sums["B"]["d"] == 0) & (sums["P"]["d"] == 0)) | ~np.isfinite(est)
    fit = _Fit(np.where(bad, np.nan, est), np.where(bad, np.nan, np.sqrt(var)), peer, True, "")
    return fit, _gap_variance(sums, own["P"][1][0], fixed)


def _gap_variance(sums: Mapping[str, Mapping[str, np.ndarray]], plan_var: float, fixed: float
                  ) -> ChangeVariance | None:
    """The plan part scaled to the closed gaps the rep would have had at the baseline mean gap (days at
    risk in the plan / baseline mean gap); a gap ratio ``r`` closes ``1/r`` times as many."""
    d_b, t_b, d_p, t_p = (float(sums[k][c][0]) for k in ("B", "P") for c in ("d", "t"))
    if d_b <= 0 or t_b <= 0 or t_p <= 0 or not math.isfinite(fixed):
        return None
    expected = t_p * d_b / t_b
    plan = plan_var * max(d_p, 0.5) / expected if math.isfinite(plan_var) else 1 / expected
    return ChangeVariance("log", fixed=float(fixed), plan=float(max(plan, 1 / expected)), events=-1.0)


def _weekly_closed_gaps(gaps: pd.DataFrame, window: Window) -> np.ndarray:
    """Mean length of the gaps closed in each week of ``window`` (a descriptive series for the trend)."""
    ended = gaps["ended_at"]
    closed = gaps.loc[~gaps["censored"] & (ended >= window.start) & (ended < window.end)]
    return closed.groupby(week_start(closed["ended_at"]))["days"].mean().to_numpy(dtype=float)
