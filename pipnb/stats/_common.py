"""What the statistics modules share: the verdict vocabulary, the small result types, and the helpers
every kind of metric (counts, ratios, gaps) finishes its fit with (interval, p-value, placebo rank)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipnb._lazy import sps

# -- vocabulary ---------------------------------------------------------------------------------
IMPROVED = "improved"
NO_CLEAR_CHANGE = "no clear change yet"
WORSE = "worse"
TOO_EARLY = "too early to tell"
VERDICTS = (IMPROVED, NO_CLEAR_CHANGE, WORSE, TOO_EARLY)
NOT_JUDGED = "not judged (not an improvement area)"

VERDICT_COLUMNS = (
    "metric", "label", "baseline", "actual", "target", "estimate", "ci_low", "ci_high", "ci_kind", "ci_z",
    "ci95_low", "ci95_high", "p_value",
    "z", "boundary", "mde", "peer_change", "verdict", "effect", "model", "baseline_raw",
    "placebo_rank", "placebo_n", "placebo_p", "inflation", "trend_tau", "trend_p", "theil_sen_slope",
    "baseline_window", "baseline_source", "baseline_weeks", "plan_weeks", "caveat",
    # what a sentence about the change needs beyond the numbers above (worded by pipnb.sentences)
    "kind", "higher_is_better", "direction", "nothing_detectable", "target_change",
    "baseline_count", "plan_count", "baseline_successes", "baseline_trials", "plan_successes", "plan_trials",
    "baseline_closed", "plan_closed", "open_gaps", "min_trials",
    # a review's status of the metric's target, filled by pipnb.reviews (one rule for the table and the sentence)
    "target_status", "target_basis", "target_expected", "target_level", "target_low", "target_high", "target_weeks",
)
#: The counts behind a change (``MetricChange.detail``), as columns of a verdict row (NaN where a kind has none).
DETAIL_KEYS = ("baseline_count", "plan_count", "baseline_successes", "baseline_trials", "plan_successes",
               "plan_trials", "baseline_closed", "plan_closed", "open_gaps")

GAP_METRIC = "avg_days_between_touches"
SNAPSHOT_METRICS = frozenset({"stale_opp_share"})

Family = Literal["auto", "poisson", "quasipoisson", "negbin"]
Alternative = Literal["two-sided", "larger", "smaller"]
ArrayLike = Sequence[float] | np.ndarray


# -- small results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trend:
    """Mann-Kendall trend and Theil-Sen slope of a weekly series (NaN when fewer than 3 weeks)."""

    tau: float = math.nan
    p_value: float = math.nan
    slope: float = math.nan
    n: int = 0


@dataclass(frozen=True)
class ChangeVariance:
    """The variance of a metric's change as a function of the true change, before placebo inflation.

    The smallest detectable change must be computed under the alternative: a rep who sends 40% more emails
    has a plan count 40% larger and so a smaller variance, a follow-up ratio that rises from 27% to 45% has a
    different binomial variance. ``kind`` picks the form (``x`` on the model scale, signed as the estimate):

    * ``"log"`` (counts, touch gaps): ``fixed + plan * exp(-events * x)``, where ``plan`` is the variance of
      the plan-period part had the rep stayed at the baseline level and ``events`` is +1 when a larger value
      means more events (counts) and -1 when it means fewer (a longer gap between touches closes fewer gaps);
    * ``"points"`` (ratios): the score variance ``max(v_b + p1(1-p1)/n_p, pbar(1-pbar)(1/n_b + 1/n_p)) +
      fixed`` with ``p1 = p0 + x`` and ``pbar`` the pooled rate of both periods.

    :meth:`at` is the variance the rule divides by; :meth:`sampling` the variance the estimate actually has
    under the alternative. They are the same for counts and gaps; for ratios the score variance at the
    pooled rate exceeds the estimate's own once the two periods' rates differ (a rise from 27% to 77%),
    which a power calculation must not mistake for noise (Fleiss, *Statistical Methods for Rates and
    Proportions*, 3rd ed., 2003, section 4.2: the null and alternative variances of a difference).
    """

    kind: Literal["log", "points"]
    fixed: float
    plan: float = 0.0
    events: float = 1.0
    p0: float = math.nan
    n_b: float = math.nan
    n_p: float = math.nan
    base_var: float = math.nan

    def at(self, x: float) -> float:
        if self.kind == "log":
            return self.fixed + self.plan * math.exp(-self.events * x)
        p1 = min(max(self.p0 + x, 0.02), 0.98)
        pooled = min(max((self.n_b * self.p0 + self.n_p * p1) / (self.n_b + self.n_p), 0.02), 0.98)
        own = max(self.base_var + p1 * (1 - p1) / self.n_p,
                  pooled * (1 - pooled) * (1 / self.n_b + 1 / self.n_p))
        return self.fixed + own

    def sampling(self, x: float) -> float:
        """The estimate's own variance when the true change is ``x``: the Wald variances of both periods."""
        if self.kind == "log":
            return self.at(x)
        p1 = min(max(self.p0 + x, 0.02), 0.98)
        return self.fixed + self.base_var + p1 * (1 - p1) / self.n_p


@dataclass(frozen=True)
class MetricChange:
    """One metric's change from baseline to plan period, beyond peers.

    Attributes
    ----------
    metric, kind
        Panel metric name and ``"count"``, ``"ratio"`` or ``"gap"``.
    effect
        The scale of ``estimate``: ``"rate ratio"``, ``"difference in points"`` or ``"gap ratio"``.
    model
        The model in words, e.g. ``"negative binomial (alpha=0.05), week effects from 29 peers"``.
    baseline, baseline_raw, actual
        The rep's baseline (shrunk toward peers for ratios), its raw value, and the plan-period value.
    estimate, ci_low, ci_high, p_value, z
        The difference-in-differences change, its interval, two-sided p-value and z statistic.
    peer_change
        What peers did over the same weeks, on the ``effect`` scale.
    placebo_rank, placebo_n, placebo_p
        Rank of the rep's change among itself and ``placebo_n`` peers refitted as if on the plan
        (1 = most improved) and the one-sided placebo p-value in the direction of the rep's change.
    mde
        The smallest change (``effect`` scale, in the better direction) this data could detect with
        the requested power (replaced by :func:`assess` with that of the sequential rule at the look).
    se, inflation
        Standard error of the change on the model scale (log ratio or points), after multiplying by
        ``inflation``: how much more the peers' placebo changes vary than the model says (at least 1), with
        an allowance for that being estimated from a few placebos (:func:`placebo_inflation`).
    widening
        Where the widening comes from (facts for the caveat): ``placebo_spread`` (the root mean square of the
        placebo z-scores, the rep's own in-time ones when larger; NaN with fewer than ``MIN_PLACEBOS``),
        ``placebos`` (how many), ``weeks`` (the rep's own week-to-week correlation,
        :func:`autocorrelation_inflation`) and ``scatter`` (the point estimate of the true widening, without the
        decision's allowances, for the power of the rule: :func:`placebo_scatter`).
    variance
        The change's variance under an alternative (:class:`ChangeVariance`), for the detectable change.
    detail
        Counts behind the numbers (for the sentence): e.g. ``plan_count``, ``baseline_trials``.
    """

    metric: str
    kind: str
    effect: str
    model: str
    higher_is_better: bool
    baseline: float
    baseline_raw: float
    actual: float
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    z: float
    peer_change: float
    placebo_rank: float
    placebo_n: int
    placebo_p: float
    mde: float
    baseline_weeks: int
    plan_weeks: int
    se: float = math.nan
    inflation: float = 1.0
    widening: Mapping[str, float] = field(default_factory=dict)
    variance: ChangeVariance | None = None
    trend: Trend = field(default_factory=Trend)
    detail: Mapping[str, float] = field(default_factory=dict)

    @property
    def direction(self) -> int:
        """+1 if the estimate points the better way, -1 the worse way, 0 if none or unknown."""
        null = 0.0 if self.effect == "difference in points" else 1.0
        if not np.isfinite(self.estimate) or self.estimate == null:
            return 0
        up = self.estimate > null
        return 1 if up == self.higher_is_better else -1


@dataclass(frozen=True)
class _Fit:
    """Vectorised fit: element 0 is the rep, elements 1.. are the peers refitted as if on the plan."""

    est: np.ndarray       # model scale: log ratio or difference in points
    se: np.ndarray
    peer: np.ndarray      # peers' change on the model scale
    log_scale: bool
    model: str


# -- helpers shared by the three kinds ----------------------------------------------------------
_NORMAL = NormalDist()


def _z_crit(alpha: float, alternative: Alternative) -> float:
    """Critical normal quantile of a two-sided or one-sided test at level ``alpha``."""
    return _NORMAL.inv_cdf(1 - (alpha / 2 if alternative == "two-sided" else alpha))


def _two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2)) if np.isfinite(z) else math.nan


def _control_matrix(n_units: int) -> np.ndarray:
    """Row k says which units are the controls when unit k is treated: peers, never unit 0 nor k."""
    controls = np.ones((n_units, n_units))
    controls[:, 0] = 0.0
    np.fill_diagonal(controls, 0.0)
    return controls


def _grid(rows: pd.DataFrame, units: Sequence[str], weeks: pd.DatetimeIndex
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numerators, denominators and presence as (unit x week) arrays; duplicate rows are summed."""
    shape = (len(units), len(weeks))
    num, den, present = np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=bool)
    ui = pd.Index(units).get_indexer(rows["rep_id"])
    wi = weeks.get_indexer(rows["week"])
    n_val = rows["numerator"].to_numpy(dtype=float)
    d_val = rows["denominator"].to_numpy(dtype=float)
    keep = (ui >= 0) & (wi >= 0) & np.isfinite(n_val)
    where = (ui[keep], wi[keep])
    np.add.at(num, where, n_val[keep])
    np.add.at(den, where, np.nan_to_num(d_val[keep]))
    present[where] = True
    return num, den, present


def _finish(fit: _Fit, *, alpha: float, higher_is_better: bool, own_placebo_z: ArrayLike = (),
            weekly_floor: float = 1.0) -> dict[str, float]:
    """Estimate, interval, p-value and placebo of unit 0 from a vectorised fit; ``own_placebo_z`` (the rep's
    in-time placebos) join the peers' in checking the variance, not in ranking the rep; ``weekly_floor`` is the
    widening the rep's own week-to-week correlation asks for (:func:`autocorrelation_inflation`)."""
    z_all = np.divide(fit.est, fit.se, out=np.full_like(fit.est, np.nan), where=fit.se > 0)
    inflation = placebo_inflation(z_all[1:], own_placebo_z, floor=weekly_floor)
    placebos, own = np.concatenate([_finite(z_all[1:]), _finite(own_placebo_z)]), _finite(own_placebo_z)
    widening = {"placebo_spread": max(_rms(placebos) if placebos.size >= MIN_PLACEBOS else math.nan,
                                      _rms(own) if own.size >= MIN_PLACEBOS else math.nan),
                "placebos": float(placebos.size), "weeks": float(weekly_floor),
                "scatter": placebo_scatter(z_all[1:], own_placebo_z, floor=weekly_floor)}
    z_all = z_all / inflation
    est, se, z = fit.est[0], fit.se[0] * inflation, z_all[0]
    crit = _z_crit(alpha, "two-sided")
    lo, hi = est - crit * se, est + crit * se
    back = np.exp if fit.log_scale else (lambda v: v)
    rank, n_placebo, p_placebo = placebo_rank(z, z_all[1:], higher_is_better=higher_is_better)
    p = _two_sided_p(z)
    return {"estimate": float(back(est)), "ci_low": float(back(lo)), "ci_high": float(back(hi)),
            "p_value": p, "z": float(z), "peer_change": float(back(fit.peer[0])),
            "placebo_rank": rank, "placebo_n": n_placebo, "placebo_p": p_placebo, "se": float(se),
            "inflation": float(inflation), "widening": widening}


MIN_PLACEBOS = 4


def placebo_inflation(peer_z: ArrayLike, own_z: ArrayLike = (), *, floor: float = 1.0) -> float:
    """How much wider the model's standard errors must be to match the placebo changes.

    Each peer refitted as if it had been on the plan (in space, ``peer_z``), and for counts the rep's own
    history refitted with earlier plan starts (in time, ``own_z``), should give a z-score drawn from N(0, 1)
    when the model's variance is right. Week-to-week correlation (pipelines, quarters) makes real z-scores
    spread wider; the root mean square of the placebo z-scores is the factor to widen by. It is itself an
    estimate from ``k`` placebos, not a known constant: the factor is multiplied by ``t_k / z`` at 95%
    (:func:`estimated_scale`), the widening a variance estimated on ``k`` degrees of freedom needs, so a few
    placebos that happen to sit close to zero cannot make a noisy model look exact.

    The factor is never below:

    * 1 (the model's own variance);
    * ``floor``: what the rep's own weeks show (:func:`autocorrelation_inflation`, the Newey–West widening
      of the rep's weekly residuals), which also stands when there are fewer than ``MIN_PLACEBOS``
      placebos (no placebo check is not evidence that the weeks are independent);
    * the root mean square of the rep's own in-time placebos alone, when there are at least
      ``MIN_PLACEBOS`` of them (the rep's own history is not averaged away by calmer peers).

    Example
    -------
    >>> round(placebo_inflation([2.0, -2.0, 2.0, -2.0, 2.0, -2.0, 2.0, -2.0]), 2)    # 2 x t_8 / z
    2.35
    >>> placebo_inflation([5.0, 5.0], floor=1.3)                                        # too few: the floor
    1.3
    """
    peers, own = _finite(peer_z), _finite(own_z)
    pooled = np.concatenate([peers, own])
    widen = max(1.0, float(floor) if np.isfinite(floor) else 1.0)
    if pooled.size >= MIN_PLACEBOS:
        widen = max(widen, _rms(pooled) * estimated_scale(pooled.size))
    if own.size >= MIN_PLACEBOS:
        widen = max(widen, _rms(own))
    return float(widen)


def placebo_scatter(peer_z: ArrayLike, own_z: ArrayLike = (), *, floor: float = 1.0) -> float:
    """The point estimate of how much more the change truly scatters than the model says: the root mean square of
    the placebo z-scores (in space and in time) when there are at least ``MIN_PLACEBOS``, else the rep's own weeks'
    widening ``floor``; at least 1, at most :func:`placebo_inflation`.

    :func:`placebo_inflation` is the widening the *decision* divides by: the largest of several estimates, times
    the allowance ``t_k / z`` for estimating it, so that noise is not mistaken for a change. A power calculation
    needs the other number: how far the estimate itself scatters around a true change. Using the decision's
    widening there too counts the allowance twice, and the stated smallest detectable change is then found more
    than the promised 80% of the time (84-88% at a widening of 1.2-1.3 where the truth is about 1).

    Example
    -------
    >>> round(placebo_scatter([2.0, -2.0, 2.0, -2.0, 2.0, -2.0, 2.0, -2.0]), 2)      # the spread itself, no t_k / z
    2.0
    >>> placebo_scatter([0.1, -0.2, 0.3, 0.1])                                        # never below the model
    1.0
    """
    pooled = np.concatenate([_finite(peer_z), _finite(own_z)])
    widen = _rms(pooled) if pooled.size >= MIN_PLACEBOS else (float(floor) if np.isfinite(floor) else 1.0)
    return float(min(max(1.0, widen), placebo_inflation(peer_z, own_z, floor=floor)))


def estimated_scale(k: int, level: float = 0.95) -> float:
    """``t_k / z`` at two-sided ``level``: how much wider an interval must be when its scale is estimated
    from ``k`` values rather than known (Student's t with ``k`` degrees of freedom; 1 as ``k`` grows).

    Example
    -------
    >>> round(estimated_scale(8), 3)
    1.177
    """
    if k <= 0:
        return math.inf
    q = 1 - (1 - level) / 2
    return float(sps.t.ppf(q, k) / sps.norm.ppf(q))


def autocorrelation_inflation(residuals: Sequence[ArrayLike], max_lag: int = 2) -> float:
    """How much wider a sum of weekly values must be because neighbouring weeks are correlated.

    ``residuals`` holds the rep's weekly residuals of each period (baseline, plan), in week order, each
    centred on its period's fitted level. The Newey–West (Bartlett kernel) long-run variance over the plain
    variance, ``1 + 2 sum_l (1 - l / (L + 1)) r_l`` with the lag-``l`` autocorrelations ``r_l`` pooled over the
    periods (pairs never span two periods), is the variance ratio of a period total under correlation; its
    square root (at least 1) is the widening of the change's standard error. ``L`` = ``max_lag`` (2 for a
    12-week window, ``floor(4 (T/100)^(2/9))``; Newey & West 1994). Weeks with no data are 0 residuals.

    Example
    -------
    >>> round(autocorrelation_inflation([[1, 1, -1, -1, 1, 1, -1, -1]]), 2)
    1.0
    >>> round(autocorrelation_inflation([[2, 1, 0, -1, -2, -1, 0, 1, 2, 1, 0, -1]]), 2)
    1.31
    """
    series = [np.nan_to_num(np.asarray(r, dtype=float)) for r in residuals]
    gamma0 = sum(float(r @ r) for r in series)
    if gamma0 <= 0:
        return 1.0
    ratio = 1.0
    for lag in range(1, max_lag + 1):
        cross = sum(float(r[lag:] @ r[:-lag]) for r in series if r.size > lag)
        ratio += 2 * (1 - lag / (max_lag + 1)) * cross / gamma0
    return float(math.sqrt(max(ratio, 1.0)))


def _finite(values: ArrayLike) -> np.ndarray:
    z = np.asarray(values, dtype=float).ravel()
    return z[np.isfinite(z)]


def _rms(z: np.ndarray) -> float:
    return float(math.sqrt(float(np.mean(z ** 2))))


def placebo_rank(rep_z: float, peer_z: ArrayLike, *, higher_is_better: bool = True
                 ) -> tuple[float, int, float]:
    """Rank the rep's change among peers refitted as if they had been on the plan.

    Parameters
    ----------
    rep_z
        The rep's standardized change (estimate / standard error).
    peer_z
        The same statistic for each peer, with the peer treated as the rep; NaNs (peers without
        enough data) are ignored.
    higher_is_better
        Direction of the metric.

    Returns
    -------
    rank, n, p
        ``rank`` among the ``n + 1`` units, 1 = most improved (ties count against the rep);
        ``p`` = one-sided placebo p-value in the direction of the rep's change: the share of the
        ``n + 1`` units whose change is at least as extreme that way. NaN rank/p when ``rep_z`` is NaN.

    Example
    -------
    >>> placebo_rank(3.0, [0.1, -1.2, 2.0])
    (1.0, 3, 0.25)
    """
    peers = np.asarray(peer_z, dtype=float)
    peers = peers[np.isfinite(peers)]
    if not np.isfinite(rep_z):
        return math.nan, int(peers.size), math.nan
    sign = 1.0 if higher_is_better else -1.0
    better_rank = 1 + int(np.sum(sign * peers >= sign * rep_z))
    worse_rank = 1 + int(np.sum(sign * peers <= sign * rep_z))
    toward_better = sign * rep_z >= 0
    p = (better_rank if toward_better else worse_rank) / (peers.size + 1)
    return float(better_rank), int(peers.size), float(p)


def _units(rep_id: str, peers: Sequence[str]) -> list[str]:
    seen = {rep_id}
    units = [rep_id]
    for peer in peers:
        if peer not in seen:
            seen.add(peer)
            units.append(peer)
    return units


def _safe_div(num: Any, den: Any) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)
