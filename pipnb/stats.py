"""Statistics of improvement: did a rep on a plan change, beyond chance and beyond peers?

A rep is put on a plan after a bad stretch, so part of any later "improvement" is regression to the
mean. This module does not compare the plan period with the stretch that selected the rep (unless no
earlier data exists, and then every sentence says so); it answers, per plan metric:

* **baseline** -- a window that did not select the rep: by default the 12 weeks before the 12-week
  diagnosis window that put the rep on the plan (:func:`plan_windows`, with explicit fallbacks);
* **change** -- the rep's change from baseline to plan period *beyond what peers did over the same
  weeks* (difference in differences), by the model that fits the metric's kind:

  ==========================  ================================================================
  counts per week             two-way (rep x week) Poisson with working-day exposure, week effects
                              from peers; quasi-Poisson or negative-binomial variance
                              (:func:`count_change`)
  ratios                      binomial on period-pooled counts, baseline shrunk toward the peer
                              rate (beta-binomial empirical Bayes), peers' week-standardized change
                              (:func:`ratio_change`)
  days between touches        exponential model per opportunity with open gaps right-censored,
                              opportunity-clustered variance (:func:`gap_change`)
  ==========================  ================================================================

* **placebo** -- every peer is refitted as if it had been on the plan; the rep's rank among them
  (:func:`placebo_rank`) guards against a model that is too sure of itself;
* **several metrics** -- Holm correction (:func:`holm`);
* **power** -- the smallest change the checkpoint could have detected (:func:`mde_rate_ratio`,
  :func:`mde_proportion`): when it exceeds the change the target asks for, the verdict is
  *too early to tell*, not *no improvement*;
* **trend** -- Mann-Kendall and Theil-Sen inside the plan period (:func:`trend_test`).

The verdict rule (:func:`decide_verdict`): *improved* / *worse* when the two-sided p-value of the
change beyond peers, Holm-adjusted across the plan's metrics, is below ``alpha`` (so the 95% interval
excludes no change) **and** the placebo rank agrees (the rep is in the top ``alpha`` share of itself and
its peers refitted as if on the plan); otherwise *too early to tell* when the smallest detectable change
(80% power, two-sided ``alpha``, before the Holm adjustment) exceeds the change the target asks for, else
*no clear change yet*.

:func:`assess` ties these together and returns one verdict row per metric, with a sentence a sales
manager can read. :func:`segmented_count_model` is the interrupted-time-series model (level and
slope change) that the Lopez Bernal et al. (2017) test reproduces.

All functions are pure: they never modify their inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from pipnb.errors import DataError, PlanError, UnknownRepError
from pipnb.schema import METRICS

__all__ = [
    "IMPROVED", "METHOD_NOTE", "NO_CLEAR_CHANGE", "TOO_EARLY", "VERDICTS", "VERDICT_COLUMNS", "WORSE",
    "MetricChange", "PlanWindows", "SegmentedFit", "Trend", "Window",
    "assess", "count_change", "decide_verdict", "describe_change", "detectable", "gap_change", "holm",
    "mde_proportion", "mde_rate_ratio", "measure_change", "metric_kind", "placebo_rank", "plan_windows",
    "pooled_rate_ratio", "ratio_change", "segmented_count_model", "shrink_baseline", "target_change",
    "trend_test", "working_days",
]

# -- vocabulary ---------------------------------------------------------------------------------
IMPROVED = "improved"
NO_CLEAR_CHANGE = "no clear change yet"
WORSE = "worse"
TOO_EARLY = "too early to tell"
VERDICTS = (IMPROVED, NO_CLEAR_CHANGE, WORSE, TOO_EARLY)

VERDICT_COLUMNS = (
    "metric", "label", "baseline", "actual", "target", "estimate", "ci_low", "ci_high", "p_value",
    "p_adjusted", "mde", "peer_change", "verdict", "sentence", "effect", "model", "baseline_raw",
    "placebo_rank", "placebo_n", "placebo_p", "trend_tau", "trend_p", "theil_sen_slope",
    "baseline_window", "baseline_source", "baseline_weeks", "plan_weeks", "caveat",
)

GAP_METRIC = "avg_days_between_touches"
SNAPSHOT_METRICS = frozenset({"stale_opp_share"})
WEEK = pd.Timedelta(weeks=1)
DAYS_PER_WORKING_WEEK = 5.0

METHOD_NOTE = (
    "Reps are put on a plan after a bad stretch, so some recovery happens by chance (regression to the "
    "mean). The plan period is therefore compared with an earlier baseline that did not select the rep, "
    "never with the stretch that triggered the plan; the rep's change is measured beyond what peers did "
    "over the same weeks, checked against every peer refitted as if on the plan, and corrected for "
    "testing several metrics (Holm). 'Too early to tell' means the data so far could not have shown the "
    "change the target asks for."
)

Family = Literal["auto", "poisson", "quasipoisson", "negbin"]
Alternative = Literal["two-sided", "larger", "smaller"]
ArrayLike = Sequence[float] | np.ndarray


# -- windows ------------------------------------------------------------------------------------
def _to_monday(when: Any) -> pd.Timestamp:
    """The Monday starting the week that contains ``when`` (midnight)."""
    stamp = pd.Timestamp(when).normalize()
    return stamp - pd.Timedelta(days=stamp.weekday())


@dataclass(frozen=True)
class Window:
    """A run of whole weeks, named by their Mondays (``first_week`` .. ``last_week`` inclusive)."""

    first_week: pd.Timestamp
    last_week: pd.Timestamp

    @cached_property
    def weeks(self) -> pd.DatetimeIndex:
        """The Mondays of the window (empty when ``last_week < first_week``)."""
        return pd.date_range(self.first_week, self.last_week, freq="W-MON")

    @property
    def n_weeks(self) -> int:
        return len(self.weeks)

    @property
    def start(self) -> pd.Timestamp:
        return self.first_week

    @property
    def end(self) -> pd.Timestamp:
        """The midnight after the window's last day (exclusive end)."""
        return self.last_week + WEEK

    def label(self) -> str:
        """``'1 Jan – 24 Mar 2024'``: the window's first and last day."""
        last_day = self.end - pd.Timedelta(days=1)
        first = f"{self.first_week.day} {self.first_week:%b}"
        if self.first_week.year != last_day.year:
            first += f" {self.first_week.year}"
        return f"{first} – {last_day.day} {last_day:%b %Y}"


@dataclass(frozen=True)
class PlanWindows:
    """The windows one assessment compares.

    Attributes
    ----------
    baseline, diagnosis, plan
        Whole-week windows. ``plan`` holds the complete plan weeks up to ``as_of`` (a week counts
        once its Friday is on or before ``as_of``) and may be empty.
    baseline_source
        ``"given"`` (passed by the caller), ``"before_diagnosis"`` (the default window),
        ``"earlier_data"`` (fewer weeks than wanted existed: whatever came before the diagnosis
        window) or ``"diagnosis_window"`` (no earlier data: the selecting window itself).
    caveat
        A sentence for the reader when the baseline is not the default one, else ``""``.
    """

    baseline: Window
    diagnosis: Window
    plan: Window
    as_of: pd.Timestamp
    baseline_source: str
    caveat: str = ""

    @cached_property
    def weeks(self) -> pd.DatetimeIndex:
        """Baseline and plan weeks together, sorted (the diagnosis window is left out)."""
        return self.baseline.weeks.union(self.plan.weeks)

    def describe_baseline(self) -> str:
        """The baseline in words, for the ``baseline_window`` column."""
        why = {
            "given": "as set in the plan",
            "before_diagnosis": "before the stretch that put the rep on the plan",
            "earlier_data": "all the data before the stretch that put the rep on the plan",
            "diagnosis_window": "the stretch that put the rep on the plan: no earlier data",
        }[self.baseline_source]
        return f"{self.baseline.label()}, {why}"


def plan_windows(
    panel: pd.DataFrame,
    rep_id: str,
    *,
    plan_start: Any,
    as_of: Any,
    diagnosis_start: Any = None,
    diagnosis_end: Any = None,
    baseline_start: Any = None,
    baseline_end: Any = None,
    diagnosis_weeks: int = 12,
    baseline_weeks: int = 12,
    min_baseline_weeks: int = 4,
) -> PlanWindows:
    """Choose the baseline, diagnosis and plan windows of one rep's assessment.

    The plan period starts on the first Monday on or after ``plan_start``. The diagnosis window (the
    stretch that put the rep on the plan) is ``diagnosis_start``..``diagnosis_end`` when given, else
    the ``diagnosis_weeks`` weeks before the plan. The baseline is ``baseline_start``..``baseline_end``
    when given, else the ``baseline_weeks`` weeks before the diagnosis window; when the rep has fewer
    than ``min_baseline_weeks`` weeks there, it falls back to all the rep's weeks before the diagnosis
    window, and when there are none, to the diagnosis window itself, with a caveat.

    Parameters
    ----------
    panel
        The weekly panel; only the rep's weeks (rows of any metric) are looked at.
    rep_id
        The rep on the plan.
    plan_start, as_of
        Plan start date and the assessment date (dates inclusive).
    diagnosis_start, diagnosis_end, baseline_start, baseline_end
        Optional dates (inclusive); each is taken to the Monday of its week.
    diagnosis_weeks, baseline_weeks, min_baseline_weeks
        Default window lengths and the shortest default baseline accepted.

    Returns
    -------
    PlanWindows

    Raises
    ------
    PlanError
        When the dates contradict each other (baseline after the plan start, ``as_of`` before it).
    """
    first_plan = _first_monday(plan_start)
    as_of = pd.Timestamp(as_of).normalize()
    if as_of < pd.Timestamp(plan_start).normalize():
        raise PlanError(f"as_of {as_of:%Y-%m-%d} is before the plan start "
                        f"{pd.Timestamp(plan_start):%Y-%m-%d}", key="as_of")
    plan = Window(first_plan, _last_complete_week(as_of))
    diagnosis = _diagnosis_window(first_plan, diagnosis_start, diagnosis_end, diagnosis_weeks)
    if diagnosis.last_week >= first_plan:
        raise PlanError("the diagnosis window must end before the plan starts", key="diagnosis_end")
    if baseline_start is not None or baseline_end is not None:
        baseline = _given_baseline(baseline_start, baseline_end, diagnosis, baseline_weeks)
        if baseline.last_week >= first_plan:
            last_day = baseline.end - pd.Timedelta(days=1)
            raise PlanError("the baseline must end before the plan starts "
                            f"(baseline ends {last_day:%Y-%m-%d})", key="baseline_end")
        return PlanWindows(baseline, diagnosis, plan, as_of, "given")
    rep_weeks = _rep_weeks(panel, rep_id)
    return _default_baseline(rep_weeks, diagnosis, plan, as_of, baseline_weeks, min_baseline_weeks)


def _first_monday(when: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(when).normalize()
    return stamp + pd.Timedelta(days=(7 - stamp.weekday()) % 7)


def _last_complete_week(as_of: pd.Timestamp) -> pd.Timestamp:
    """Monday of the last week whose Friday is on or before ``as_of``."""
    monday = _to_monday(as_of)
    return monday if as_of >= monday + pd.Timedelta(days=4) else monday - WEEK


def _diagnosis_window(first_plan: pd.Timestamp, start: Any, end: Any, n_weeks: int) -> Window:
    last = _to_monday(end) if end is not None else first_plan - WEEK
    first = _to_monday(start) if start is not None else last - (n_weeks - 1) * WEEK
    if last < first:
        raise PlanError("the diagnosis window ends before it starts", key="diagnosis_end")
    return Window(first, last)


def _given_baseline(start: Any, end: Any, diagnosis: Window, n_weeks: int) -> Window:
    last = _to_monday(end) if end is not None else diagnosis.first_week - WEEK
    first = _to_monday(start) if start is not None else last - (n_weeks - 1) * WEEK
    if last < first:
        raise PlanError("the baseline ends before it starts", key="baseline_end")
    return Window(first, last)


def _rep_weeks(panel: pd.DataFrame, rep_id: str) -> pd.DatetimeIndex:
    weeks = panel.loc[panel["rep_id"] == rep_id, "week"]
    if weeks.empty:
        raise UnknownRepError(f"rep '{rep_id}' has no rows in the weekly panel (check the rep id)")
    return pd.DatetimeIndex(_mondays(weeks).unique()).sort_values()


def _mondays(stamps: pd.Series) -> pd.Series:
    """Each timestamp taken to the Monday (midnight) starting its week."""
    days = pd.to_datetime(stamps).to_numpy().astype("datetime64[D]")
    monday = days - (days.astype("int64") + 3) % 7                 # 1970-01-01 was a Thursday
    return pd.Series(monday.astype("datetime64[ns]"), index=stamps.index, name=stamps.name)


def _default_baseline(rep_weeks: pd.DatetimeIndex, diagnosis: Window, plan: Window, as_of: pd.Timestamp,
                      n_weeks: int, min_weeks: int) -> PlanWindows:
    wanted = Window(diagnosis.first_week - n_weeks * WEEK, diagnosis.first_week - WEEK)
    available = rep_weeks[(rep_weeks >= wanted.first_week) & (rep_weeks <= wanted.last_week)]
    if len(available) >= min_weeks:
        return PlanWindows(wanted, diagnosis, plan, as_of, "before_diagnosis")
    earlier = rep_weeks[rep_weeks < diagnosis.first_week][-n_weeks:]
    if len(earlier) > 0:
        window = Window(earlier.min(), earlier.max())
        caveat = (f"The baseline is the rep's last {len(earlier)} week{'s' * (len(earlier) != 1)} of data "
                  "before the stretch that triggered the plan"
                  + (", so it is imprecise." if len(earlier) < min_weeks else
                     ", not the weeks just before it (no data then)."))
        return PlanWindows(window, diagnosis, plan, as_of, "earlier_data", caveat)
    caveat = ("Caution: there is no data before the stretch that put the rep on the plan, so the baseline is "
              "that stretch itself; part of any rise is regression to the mean, not improvement.")
    return PlanWindows(diagnosis, diagnosis, plan, as_of, "diagnosis_window", caveat)


def working_days(weeks: pd.DatetimeIndex, holidays: Iterable[Any] | None = None) -> np.ndarray:
    """Working days (Monday-Friday, minus ``holidays``) in each week starting on ``weeks``."""
    start = weeks.values.astype("datetime64[D]")
    hol = np.array([np.datetime64(pd.Timestamp(h).date()) for h in (holidays or ())], dtype="datetime64[D]")
    return np.busday_count(start, start + np.timedelta64(7, "D"), holidays=hol).astype(float)


# -- small results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trend:
    """Mann-Kendall trend and Theil-Sen slope of a weekly series (NaN when fewer than 3 weeks)."""

    tau: float = math.nan
    p_value: float = math.nan
    slope: float = math.nan
    n: int = 0


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
        the requested power.
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


def _finish(fit: _Fit, *, alpha: float, higher_is_better: bool) -> dict[str, float]:
    """Estimate, interval, p-value and placebo of unit 0 from a vectorised fit."""
    z_all = np.divide(fit.est, fit.se, out=np.full_like(fit.est, np.nan), where=fit.se > 0)
    est, se, z = fit.est[0], fit.se[0], z_all[0]
    crit = _z_crit(alpha, "two-sided")
    lo, hi = est - crit * se, est + crit * se
    back = np.exp if fit.log_scale else (lambda v: v)
    rank, n_placebo, p_placebo = placebo_rank(z, z_all[1:], higher_is_better=higher_is_better)
    p = _two_sided_p(z)
    return {"estimate": float(back(est)), "ci_low": float(back(lo)), "ci_high": float(back(hi)),
            "p_value": p, "z": float(z), "peer_change": float(back(fit.peer[0])),
            "placebo_rank": rank, "placebo_n": n_placebo, "placebo_p": p_placebo}


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



# -- counts -------------------------------------------------------------------------------------
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
             "weekly": (counts[0], exposure[0], valid[0])}
    return fit, extra


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
    out = _finish(fit, alpha=alpha, higher_is_better=higher)
    base, plan = extra["parts"]["B"], extra["parts"]["P"]
    rate = {k: _per_week(p["y"][0], p["e"][0]) for k, p in (("B", base), ("P", plan))}
    weekly_counts, weekly_exposure, weekly_valid = extra["weekly"]
    series = (_safe_div(weekly_counts, weekly_exposure) * DAYS_PER_WORKING_WEEK)[weekly_valid & is_plan]
    return MetricChange(
        metric=metric, kind="count", effect="rate ratio", model=fit.model, higher_is_better=higher,
        baseline=rate["B"], baseline_raw=rate["B"], actual=rate["P"],
        mde=_count_mde(extra, alpha, power, higher),
        baseline_weeks=int((weekly_valid & ~is_plan).sum()), plan_weeks=int((weekly_valid & is_plan).sum()),
        trend=trend_test(series),
        detail={"baseline_count": float(base["y"][0]), "plan_count": float(plan["y"][0])}, **out)


def _per_week(count: float, days: float) -> float:
    return float(count / days * DAYS_PER_WORKING_WEEK) if days > 0 else math.nan


def _units(rep_id: str, peers: Sequence[str]) -> list[str]:
    seen = {rep_id}
    units = [rep_id]
    for peer in peers:
        if peer not in seen:
            seen.add(peer)
            units.append(peer)
    return units


def _count_mde(extra: Mapping[str, Any], alpha: float, power: float, higher: bool) -> float:
    """Smallest detectable rate ratio for the rep, with the fit's dispersion and peer noise."""
    base, plan = extra["parts"]["B"], extra["parts"]["P"]
    y_b, m_b, m_p = base["y"][0], base["m"][0], plan["m"][0]
    if y_b <= 0 or m_b <= 0 or m_p <= 0:
        return math.nan
    phi, nb_alpha = extra["phi"], extra["nb_alpha"]
    fixed = phi / y_b + nb_alpha * (base["w2"][0] / m_b ** 2 + plan["w2"][0] / m_p ** 2) + extra["ctrl_var"]
    expected_plan = y_b * m_p / m_b

    def variance(log_ratio: float) -> float:
        return fixed + phi / (expected_plan * math.exp(log_ratio))
    return _solve_mde(variance, alpha, power, "two-sided", increase=higher)


def _solve_mde(variance: Callable[[float], float], alpha: float, power: float,
               alternative: Alternative, *, increase: bool = True, upper: float = 20.0) -> float:
    """Smallest |x| (log ratio) with ``|x| = (z_alpha + z_power) * sd(x)``, returned as exp(+-x)."""
    k = _z_crit(alpha, alternative) + _NORMAL.inv_cdf(power)
    sign = 1.0 if increase else -1.0

    def gap(x: float) -> float:
        return x - k * math.sqrt(variance(sign * x))
    if gap(upper) < 0:
        return math.inf if increase else 0.0
    return math.exp(sign * optimize.brentq(gap, 1e-12, upper, xtol=1e-10))


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

    def variance(log_ratio: float) -> float:
        return fixed + extra_var + dispersion / (baseline_rate * plan_weeks * math.exp(log_ratio))
    return _solve_mde(variance, alpha, power, alternative)


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


# -- ratios -------------------------------------------------------------------------------------
def shrink_baseline(successes: float, trials: float, peer_successes: ArrayLike, peer_trials: ArrayLike
                    ) -> tuple[float, float, float]:
    """Empirical-Bayes (beta-binomial) baseline rate, shrunk toward the peers' pooled rate.

    The prior is ``Beta(m * p_peer, m * (1 - p_peer))`` with ``p_peer`` the peers' pooled rate and the
    prior weight ``m`` from the method of moments on the peers' rates (how much true rates differ
    between reps, beyond binomial noise). ``m`` is capped at the peers' median number of trials, so
    the peer prior never outweighs a typical rep's own baseline.

    Parameters
    ----------
    successes, trials
        The rep's pooled baseline counts.
    peer_successes, peer_trials
        The peers' pooled baseline counts, one value per peer.

    Returns
    -------
    rate, variance, prior_weight
        Posterior mean ``(s + m p_peer) / (n + m)``, its variance as a proportion over ``n + m`` trials,
        and ``m`` (0 with fewer than two peers: no shrinkage).

    Example
    -------
    2 of 10 is pulled most of the way to peers who agree closely (30-40%):

    >>> [round(x, 3) for x in shrink_baseline(2, 10, [30, 35, 40], [100, 100, 100])]
    [0.336, 0.002, 100.0]
    """
    s, n = _as_arrays(peer_successes, peer_trials)
    controls = np.r_[0.0, np.ones(s.size)][None, :]            # column 0 stands for the rep
    m = float(_prior_weight(np.r_[0.0, s], np.r_[0.0, n], controls)[0])
    p_peer = s.sum() / n.sum() if n.sum() > 0 else 0.5
    rate, var, _ = _posterior(successes, trials, m * p_peer, m)
    return float(rate), float(var), m


def _as_arrays(s: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s_arr, n_arr = np.asarray(s, dtype=float), np.asarray(n, dtype=float)
    keep = n_arr > 0
    return np.minimum(s_arr[keep], n_arr[keep]), n_arr[keep]


def _prior_weight(s: np.ndarray, n: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """Beta-binomial prior weight ``m = a + b`` per control set (rows of ``controls``).

    Method of moments: the between-rep variance of true rates is the spread of the controls' rates
    beyond binomial noise, ``tau2 = (Q - (K-1) p(1-p)) / (N - sum(n^2)/N)`` with
    ``Q = sum n_i (p_i - p)^2``; a Beta prior with that variance has ``m = p(1-p)/tau2 - 1``. ``m`` is
    capped at the peers' median trials (column 0, the rep, is not a peer); fewer than two controls
    with trials give no shrinkage.
    """
    has = (n > 0) * controls
    total_n, total_s, k = has @ n, has @ s, has.sum(axis=1)
    peers_n = n[1:][n[1:] > 0]
    cap = float(np.median(peers_n)) if peers_n.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        p = total_s / total_n
        q = has @ np.nan_to_num(_safe_div(s ** 2, n)) - p ** 2 * total_n
        tau2 = (q - (k - 1) * p * (1 - p)) / (total_n - (has @ n ** 2) / total_n)
        m = np.where(tau2 > 0, p * (1 - p) / tau2 - 1, cap)
    m = np.clip(np.nan_to_num(m, nan=0.0), 0.0, cap)
    return np.where(k >= 2, m, 0.0)


def _posterior(s: Any, n: Any, a: Any, m: Any) -> tuple[Any, Any, Any]:
    """Shrunk rate and its variance as a binomial proportion over ``n + m`` trials."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (s + a) / (n + m)
        var = rate * (1 - rate) / (n + m)
    return rate, var, m


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
    prior_m = _prior_weight(s_b, n_b, controls)
    peer_rate = _safe_div(controls @ s_b, controls @ n_b)
    base, base_var, _ = _posterior(s_b, n_b, prior_m * np.nan_to_num(peer_rate), prior_m)
    base_var = np.where(prior_m > 0, base_var, _binomial_var(s_b, n_b))
    s_p, n_p = pooled["P"]
    p_plan = _safe_div(s_p, n_p)
    var_plan = _binomial_var(s_p, n_p)
    expect = {k: _standardized_peer_rate(succ, trials, controls, per) for k, per in
              (("B", ~is_plan), ("P", is_plan))}
    peer = expect["P"][0] - expect["B"][0]
    if n_units == 1:
        peer = np.zeros(1)
    est = (p_plan - base) - peer
    se = np.sqrt(var_plan + base_var + expect["P"][1] + expect["B"][1])
    bad = ~np.isfinite(est) | (n_p <= 0) | (n_b <= 0)
    fit = _Fit(np.where(bad, np.nan, est), np.where(bad, np.nan, se), np.where(n_units > 1, peer, np.nan),
               False, "")
    extra = {"s_b": s_b[0], "n_b": n_b[0], "s_p": s_p[0], "n_p": n_p[0], "base": base[0],
             "base_var": base_var[0], "prior_m": prior_m[0],
             "peer_var": expect["P"][1][0] + expect["B"][1][0]}
    return fit, extra


def _pool(succ: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Period totals; successes are capped at trials.

    Flow ratios (second meetings in a week / first meetings in that week) can exceed 1 in a week and,
    rarely, over a short window; a binomial needs successes <= trials, so the pooled numerator is
    capped at the pooled denominator. This errs toward a lower rate, never a higher one.
    """
    n = trials.sum(axis=1)
    return np.minimum(succ.sum(axis=1), n), n


def _safe_div(num: Any, den: Any) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


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
    nothing). The rep's baseline is shrunk toward the peers' pooled rate (:func:`shrink_baseline`), so a
    rep with few baseline trials is not judged against a lucky or unlucky handful. The change is the
    plan rate minus the shrunk baseline minus what peers' week-by-week rates predict for the rep's own
    mix of weeks, in points, with a binomial (Wald) variance of each part. Snapshot metrics such as
    ``stale_opp_share`` compare the last week of each window.

    Parameters
    ----------
    panel
        The weekly panel; the metric's numerator is successes and its denominator trials.
    rep_id, metric
        The rep and a ratio metric.
    windows
        From :func:`plan_windows`.
    peers
        Peer rep ids: the shrinkage prior, the peers' change and the placebo refits.
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
    out = _finish(fit, alpha=alpha, higher_is_better=higher)
    mde = mde_proportion(extra["base"], extra["n_b"], extra["n_p"], baseline_var=extra["base_var"],
                         extra_var=extra["peer_var"], alpha=alpha, power=power, increase=higher)
    shrink = (f", baseline shrunk toward peers (prior worth {extra['prior_m']:.0f} trials)"
              if extra["prior_m"] > 0 else "")
    peers_txt = (f", week-standardized peer change from {len(units) - 1} peers" if len(units) > 1
                 else ", no peers")
    weekly = _safe_div(succ[0], trials[0])[is_plan & present[0]]
    return MetricChange(
        metric=metric, kind="ratio", effect="difference in points", higher_is_better=higher,
        model="binomial on pooled counts" + shrink + peers_txt,
        baseline=float(extra["base"]), baseline_raw=float(_safe_div(extra["s_b"], extra["n_b"])),
        actual=float(_safe_div(extra["s_p"], extra["n_p"])), mde=float(mde),
        baseline_weeks=int((present[0] & ~is_plan).sum()), plan_weeks=int((present[0] & is_plan).sum()),
        trend=trend_test(weekly),
        detail={"baseline_successes": float(extra["s_b"]), "baseline_trials": float(extra["n_b"]),
                "plan_successes": float(extra["s_p"]), "plan_trials": float(extra["n_p"])}, **out)


# -- days between touches -----------------------------------------------------------------------
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
    fit = _gap_fit(sums, len(units))
    out = _finish(fit, alpha=alpha, higher_is_better=False)
    crit = _z_crit(alpha, "two-sided") + _NORMAL.inv_cdf(power)
    mde = math.exp(-crit * fit.se[0]) if np.isfinite(fit.se[0]) else math.nan
    peers_txt = f", peer change from {len(units) - 1} peers" if len(units) > 1 else ", no peers"
    mean = {k: float(s["t"][0] / s["d"][0]) if s["d"][0] > 0 else math.nan for k, s in sums.items()}
    own = gaps.loc[gaps["rep_id"] == rep_id]
    return MetricChange(
        metric=metric, kind="gap", effect="gap ratio", higher_is_better=False,
        model="exponential gaps per opportunity, open gaps censored, clustered by opportunity" + peers_txt,
        baseline=mean["B"], baseline_raw=mean["B"], actual=mean["P"], mde=mde,
        baseline_weeks=windows.baseline.n_weeks, plan_weeks=windows.plan.n_weeks,
        trend=trend_test(_weekly_closed_gaps(own, windows.plan)),
        detail={"baseline_closed": float(sums["B"]["d"][0]), "plan_closed": float(sums["P"]["d"][0]),
                "open_gaps": float(own["censored"].sum())}, **out)


def _gap_fit(sums: Mapping[str, Mapping[str, np.ndarray]], n_units: int) -> _Fit:
    """Log ratio of mean gaps (plan / baseline), minus the controls' log ratio, for every unit."""
    own = {k: _log_gap_and_var(s) for k, s in sums.items()}
    est, var = own["P"][0] - own["B"][0], own["P"][1] + own["B"][1]
    peer = np.full(n_units, np.nan)
    if n_units > 1:
        controls = _control_matrix(n_units)
        ctrl = {k: _log_gap_and_var(s, controls) for k, s in sums.items()}
        peer = ctrl["P"][0] - ctrl["B"][0]
        est, var = est - peer, var + ctrl["P"][1] + ctrl["B"][1]
    bad = ((sums["B"]["d"] == 0) & (sums["P"]["d"] == 0)) | ~np.isfinite(est)
    return _Fit(np.where(bad, np.nan, est), np.where(bad, np.nan, np.sqrt(var)), peer, True, "")


def _weekly_closed_gaps(gaps: pd.DataFrame, window: Window) -> np.ndarray:
    """Mean length of the gaps closed in each week of ``window`` (a descriptive series for the trend)."""
    ended = gaps["ended_at"]
    closed = gaps.loc[~gaps["censored"] & (ended >= window.start) & (ended < window.end)]
    return closed.groupby(_mondays(closed["ended_at"]))["days"].mean().to_numpy(dtype=float)


# -- trend --------------------------------------------------------------------------------------
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


# -- multiplicity and verdicts ------------------------------------------------------------------
def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values (same as ``multipletests(p, method="holm")``); NaNs stay NaN.

    A metric with no estimate (NaN) is left out of the family rather than counted.

    Example
    -------
    >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    if idx.size == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(stepped, 1.0)
    return out


def target_change(change: MetricChange, target: float | None) -> float:
    """The change the target asks for, on the ``effect`` scale (NaN when no target or no baseline)."""
    if target is None or not np.isfinite(target) or not np.isfinite(change.baseline):
        return math.nan
    if change.effect == "difference in points":
        return float(target - change.baseline)
    return float(target / change.baseline) if change.baseline > 0 else math.nan


def detectable(change: MetricChange, target: float | None) -> bool:
    """Whether this checkpoint could have detected the change the target asks for (80% power).

    False when the smallest detectable change is larger than the target change, or when no change at
    all is detectable yet; True when there is no target (or it asks for no change in the better
    direction) and some change is detectable, or when the detectable change is unknown.
    """
    if _nothing_detectable(change):
        return False
    wanted = target_change(change, target)
    if not np.isfinite(change.mde) or not np.isfinite(wanted):
        return True
    null = 0.0 if change.effect == "difference in points" else 1.0
    if wanted == null or (wanted > null) != change.higher_is_better:
        return True
    return abs(_scale(change.mde, change.effect)) <= abs(_scale(wanted, change.effect))


def _nothing_detectable(change: MetricChange) -> bool:
    return bool(np.isinf(change.mde)) or (change.effect != "difference in points" and change.mde == 0.0)


def _scale(value: float, effect: str) -> float:
    return value if effect == "difference in points" else math.log(value)


def decide_verdict(change: MetricChange, p_adjusted: float, *, target: float | None = None,
                   alpha: float = 0.05) -> str:
    """The verdict word for one metric.

    *improved* / *worse*: the Holm-adjusted p-value of the change beyond peers is below ``alpha`` and
    the placebo check agrees (the rep's change is in the top ``alpha`` share of the rep and its peers
    refitted as if on the plan; with fewer than ``1/alpha - 1`` peers, it must beat every peer).
    Otherwise *too early to tell* when the checkpoint could not have detected the target change (or has
    no data), else *no clear change yet*.

    Parameters
    ----------
    change
        The metric's change (:func:`count_change`, :func:`ratio_change`, :func:`gap_change`).
    p_adjusted
        Its Holm-adjusted p-value across the plan's metrics.
    target
        The plan's final target for the metric, in the metric's units.
    alpha
        Significance level.

    Returns
    -------
    str
        One of :data:`VERDICTS`.
    """
    if not np.isfinite(change.estimate) or not np.isfinite(p_adjusted):
        return TOO_EARLY
    if p_adjusted < alpha and change.direction != 0 and _placebo_agrees(change, alpha):
        return IMPROVED if change.direction > 0 else WORSE
    return NO_CLEAR_CHANGE if detectable(change, target) else TOO_EARLY


def _placebo_agrees(change: MetricChange, alpha: float) -> bool:
    if change.placebo_n == 0 or not np.isfinite(change.placebo_p):
        return True
    return change.placebo_p <= max(alpha, 1.0 / (change.placebo_n + 1))


# -- sentences ----------------------------------------------------------------------------------
def describe_change(change: MetricChange, verdict: str, *, target: float | None = None,
                    baseline_label: str = "", caveat: str = "") -> str:
    """One paragraph a sales manager can read: counts and ranges, then the verdict, then peers.

    Names no peer: peers appear only as "peers over the same weeks" and a count.

    Parameters
    ----------
    change
        The metric's change.
    verdict
        From :func:`decide_verdict`.
    target
        The plan's final target, if any.
    baseline_label
        The baseline window in words (``PlanWindows.describe_baseline()``).
    caveat
        Sentences appended at the end (short or selecting baseline, few peers).

    Example
    -------
    ``"Emails per week: 17.3 a week over 13 plan weeks (222 in all), against 12.6 a week over the 12
    baseline weeks (1 Jan – 24 Mar 2024). Beyond what peers did, the change is +41% (plausibly +6% to
    +86%). Verdict: no clear change yet (this data would show a change of +49% or more). Peers over the
    same weeks: -2%; measured the same way, none of 29 peers improved as much."``
    """
    label = METRICS[change.metric].label if change.metric in METRICS else change.metric
    parts = [f"{label}: {_levels(change, baseline_label)}.", _range_text(change),
             _target_text(change, target), f"Verdict: {verdict}{_verdict_reason(change, verdict, target)}.",
             _peer_text(change), caveat]
    return " ".join(p for p in parts if p)


def _levels(c: MetricChange, baseline_label: str) -> str:
    d = c.detail
    plan = f"over {_weeks(c.plan_weeks, 'plan')}"
    base = f"over the {_weeks(c.baseline_weeks, 'baseline')}"
    base += f" ({baseline_label})" if baseline_label else ""
    if c.plan_weeks == 0:
        return f"no complete plan week yet; the baseline is {_baseline_value(c)} {base}"
    if c.kind == "count":
        return (f"{_num(c.actual)} a week {plan} ({d['plan_count']:.0f} in all), "
                f"against {_num(c.baseline)} a week {base}")
    if c.kind == "ratio":
        shrunk = (f", or {_pct(c.baseline)} once weighed against the peer rate"
                  if np.isfinite(c.baseline) and abs(c.baseline - c.baseline_raw) >= 0.005 else "")
        return (f"{d['plan_successes']:.0f} of {d['plan_trials']:.0f} ({_pct(c.actual)}) {plan}, against "
                f"{d['baseline_successes']:.0f} of {d['baseline_trials']:.0f} ({_pct(c.baseline_raw)}) "
                f"{base}{shrunk}")
    return (f"{_num(c.actual)} days on average {plan} ({d['plan_closed']:.0f} gaps closed; gaps still open "
            f"count as running), against {_num(c.baseline)} days {base}")


def _weeks(n: int, kind: str) -> str:
    return f"{n} {kind} week{'s' * (n != 1)}"


def _baseline_value(c: MetricChange) -> str:
    if c.kind == "count":
        return f"{_num(c.baseline)} a week"
    if c.kind == "ratio":
        d = c.detail
        return f"{d['baseline_successes']:.0f} of {d['baseline_trials']:.0f} ({_pct(c.baseline_raw)})"
    return f"{_num(c.baseline)} days"


def _num(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.1f}"


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.0%}"


def _signed(value: float, effect: str, *, unit: bool = True, plural: bool = False) -> str:
    """'+41%', '-6 points', '+12'; ratios shown as percent changes."""
    if not np.isfinite(value):
        return "n/a" if np.isnan(value) else "any change"
    if effect == "difference in points":
        points = f"{value * 100:+.0f}"
        return points + (f" point{'s' * (plural or points not in ('+1', '-1'))}" if unit else "")
    return f"{(value - 1) * 100:+.0f}%"


def _range_text(c: MetricChange) -> str:
    if not np.isfinite(c.estimate):
        return "There is not enough data yet to measure a change."
    what = "the gap between touches changed by" if c.kind == "gap" else "the change is"
    against = "Beyond what peers did" if np.isfinite(c.peer_change) else "Against the baseline (no peers)"
    return (f"{against}, {what} {_signed(c.estimate, c.effect)} (plausibly "
            f"{_signed(c.ci_low, c.effect, unit=False)} to {_signed(c.ci_high, c.effect, plural=True)}).")


def _target_text(c: MetricChange, target: float | None) -> str:
    if target is None or not np.isfinite(target):
        return ""
    shown = {"ratio": _pct(target), "gap": f"{target:.1f} days"}.get(c.kind, f"{target:.1f} a week")
    met = np.isfinite(c.actual) and ((c.actual >= target) if c.higher_is_better else (c.actual <= target))
    return f"Target: {shown} ({'met so far' if met else 'not met yet'})."


def _verdict_reason(c: MetricChange, verdict: str, target: float | None) -> str:
    if verdict == TOO_EARLY and not np.isfinite(c.estimate):
        return " — no data for the plan period or the baseline yet"
    if verdict == TOO_EARLY:
        wanted = target_change(c, target)
        if _nothing_detectable(c) or not np.isfinite(wanted):
            return f" — {_weeks(c.plan_weeks, 'plan')} of data cannot show a change yet"
        return (f" — with {_weeks(c.plan_weeks, 'plan')} the smallest change this data can show is "
                f"{_signed(c.mde, c.effect)}, more than the {_signed(wanted, c.effect)} the target asks for")
    if verdict == NO_CLEAR_CHANGE and np.isfinite(c.mde) and not _nothing_detectable(c):
        return f" (this data would show a change of {_signed(c.mde, c.effect)} or more)"
    return ""


def _peer_text(c: MetricChange) -> str:
    if c.placebo_n == 0:
        return "No peers to compare with over the same weeks."
    if not np.isfinite(c.peer_change):
        return ""
    text = f"Peers over the same weeks: {_signed(c.peer_change, c.effect)}"
    if np.isfinite(c.placebo_rank):
        toward_better = c.direction >= 0
        k = int(c.placebo_rank) - 1 if toward_better else c.placebo_n + 1 - int(c.placebo_rank)
        way = "improved" if toward_better else "declined"
        text += f"; measured the same way, {'none' if k == 0 else k} of {c.placebo_n} peers {way} as much"
    return text + "."


# -- the entry point ----------------------------------------------------------------------------
def measure_change(panel: pd.DataFrame, rep_id: str, metric: str, *, windows: PlanWindows,
                   peers: Sequence[str], gaps: pd.DataFrame | None = None,
                   holidays: Iterable[Any] | None = None, family: Family = "auto", alpha: float = 0.05,
                   power: float = 0.8) -> MetricChange:
    """Dispatch one metric to :func:`count_change`, :func:`ratio_change` or :func:`gap_change`.

    Raises
    ------
    PlanError
        For a metric that cannot be assessed (deal size, cycle length, velocity).
    DataError
        When ``avg_days_between_touches`` is asked for without the ``gaps`` table.
    """
    kind = metric_kind(metric)
    if kind == "gap":
        if gaps is None:
            raise DataError(f"{metric} needs the per-gap table `gaps` (rep_id, opp_id, ended_at, days, "
                            "censored); pass gaps=... to assess")
        return gap_change(gaps, rep_id, windows=windows, peers=peers, alpha=alpha, power=power, metric=metric)
    if kind == "ratio":
        return ratio_change(panel, rep_id, metric, windows=windows, peers=peers, alpha=alpha, power=power)
    return count_change(panel, rep_id, metric, windows=windows, peers=peers, holidays=holidays, family=family,
                        alpha=alpha, power=power)


def metric_kind(metric: str) -> str:
    """``"count"``, ``"ratio"`` or ``"gap"``; raises :class:`PlanError` for metrics without a test."""
    if metric == GAP_METRIC:
        return "gap"
    meta = METRICS.get(metric)
    if meta is None or meta.kind not in ("count", "ratio"):
        known = ", ".join(m for m, v in METRICS.items() if v.kind in ("count", "ratio")) + f", {GAP_METRIC}"
        raise PlanError(f"metric '{metric}' cannot be assessed for improvement (use one of: {known})",
                        key="metrics")
    return meta.kind


def assess(
    panel: pd.DataFrame,
    rep_id: str,
    *,
    metrics: Sequence[str],
    plan_start: Any,
    as_of: Any,
    peers: Sequence[str],
    targets: Mapping[str, float] | None = None,
    gaps: pd.DataFrame | None = None,
    baseline_start: Any = None,
    baseline_end: Any = None,
    diagnosis_start: Any = None,
    diagnosis_end: Any = None,
    holidays: Iterable[Any] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    family: Family = "auto",
    baseline_weeks: int = 12,
    diagnosis_weeks: int = 12,
    min_baseline_weeks: int = 4,
) -> pd.DataFrame:
    """Judge, per plan metric, whether the rep has improved since the plan started.

    Parameters
    ----------
    panel
        The weekly panel (rep_id, week, metric, numerator, denominator, value) for the rep and peers.
    rep_id
        The rep on the plan.
    metrics
        The plan's metrics: counts, ratios, or ``avg_days_between_touches`` (needs ``gaps``).
    plan_start, as_of
        Plan start date and assessment date; only complete plan weeks up to ``as_of`` count.
    peers
        Peer rep ids, compared over the same weeks and refitted as placebos.
    targets
        Final target value per metric (same units as ``actual``: per week, a share, days).
    gaps
        Per-gap table (rep_id, opp_id, ended_at, days, censored) for ``avg_days_between_touches``.
    baseline_start, baseline_end, diagnosis_start, diagnosis_end
        Windows recorded in the plan; by default the diagnosis window is the ``diagnosis_weeks`` weeks
        before the plan and the baseline the ``baseline_weeks`` before that (see :func:`plan_windows`).
    holidays
        Non-working days (count exposure).
    alpha, power
        Significance level (two-sided, Holm-adjusted across metrics) and power for the detectable change.
    family
        Count model: ``"auto"``, ``"poisson"``, ``"quasipoisson"`` or ``"negbin"``.
    baseline_weeks, diagnosis_weeks, min_baseline_weeks
        Default window lengths and the shortest default baseline accepted before falling back.

    Returns
    -------
    pandas.DataFrame
        One row per metric with :data:`VERDICT_COLUMNS`: ``baseline`` / ``actual`` / ``target`` in the
        metric's units; ``estimate``, ``ci_low``, ``ci_high``, ``mde`` and ``peer_change`` on the
        ``effect`` scale (rate or gap ratio, or difference in points); ``p_value`` two-sided and
        ``p_adjusted`` (Holm); ``verdict`` one of :data:`VERDICTS`; ``sentence`` for the manager.

    Raises
    ------
    UnknownRepError
        The rep has no rows in the panel.
    PlanError
        Contradictory dates, or a metric that cannot be assessed.
    DataError
        ``avg_days_between_touches`` without ``gaps``, or a metric missing from the panel.

    Example
    -------
    >>> verdicts = assess(panel, "R07", metrics=["emails_per_week", "followup_meeting_ratio"],
    ...                   plan_start="2024-07-01", as_of="2024-09-29", peers=peer_ids,
    ...                   targets={"emails_per_week": 60})                            # doctest: +SKIP
    """
    targets = dict(targets or {})
    metrics = list(dict.fromkeys(metrics))
    for metric in metrics:
        metric_kind(metric)
    units = _units(rep_id, peers)
    windows = plan_windows(panel, rep_id, plan_start=plan_start, as_of=as_of,
                           diagnosis_start=diagnosis_start, diagnosis_end=diagnosis_end,
                           baseline_start=baseline_start, baseline_end=baseline_end,
                           diagnosis_weeks=diagnosis_weeks, baseline_weeks=baseline_weeks,
                           min_baseline_weeks=min_baseline_weeks)
    rows = _relevant_rows(panel, units, metrics, windows)
    peers = _peers_with_data(units[1:], rows, gaps)
    changes = [measure_change(rows, rep_id, m, windows=windows, peers=peers, gaps=gaps, holidays=holidays,
                              family=family, alpha=alpha, power=power) for m in metrics]
    adjusted = holm([c.p_value for c in changes])
    records = [_verdict_record(c, p, targets.get(c.metric), windows, alpha)
               for c, p in zip(changes, adjusted, strict=True)]
    return pd.DataFrame.from_records(records, columns=list(VERDICT_COLUMNS))


def _relevant_rows(panel: pd.DataFrame, units: Sequence[str], metrics: Sequence[str],
                   windows: PlanWindows) -> pd.DataFrame:
    """The panel rows one assessment uses, with weeks taken to their Monday (a new frame)."""
    missing = [m for m in metrics if m != GAP_METRIC and m not in set(panel["metric"].unique())]
    if missing:
        raise DataError(f"metric(s) {', '.join(missing)} are not in the weekly panel; compute them first or "
                        "drop them from the plan")
    unit_code = pd.Index(units).get_indexer(panel["rep_id"])
    metric_code = pd.Index(metrics).get_indexer(panel["metric"])
    keep = np.flatnonzero((unit_code >= 0) & (metric_code >= 0))
    weeks = _mondays(panel["week"].iloc[keep]).to_numpy()
    inside = windows.weeks.get_indexer(weeks) >= 0
    keep = keep[inside]
    return pd.DataFrame({                     # categorical ids: the per-metric grids index them cheaply
        "rep_id": pd.Categorical.from_codes(unit_code[keep], categories=list(units)),
        "week": weeks[inside],
        "metric": pd.Categorical.from_codes(metric_code[keep], categories=list(metrics)),
        "numerator": panel["numerator"].to_numpy(dtype=float)[keep],
        "denominator": panel["denominator"].to_numpy(dtype=float)[keep],
    })


def _peers_with_data(peers: Sequence[str], rows: pd.DataFrame, gaps: pd.DataFrame | None) -> list[str]:
    """The peers that have any row in the compared weeks (or any gap): the others add nothing."""
    seen = set(rows["rep_id"].unique())
    if gaps is not None:
        seen |= set(gaps["rep_id"].unique())
    return [peer for peer in peers if peer in seen]


def _verdict_record(c: MetricChange, p_adjusted: float, target: float | None, windows: PlanWindows,
                    alpha: float) -> dict[str, Any]:
    verdict = decide_verdict(c, p_adjusted, target=target, alpha=alpha)
    caveat = " ".join(x for x in (windows.caveat, _placebo_caveat(c, alpha)) if x)
    sentence = describe_change(c, verdict, target=target, baseline_label=windows.describe_baseline(),
                               caveat=caveat)
    label = METRICS[c.metric].label if c.metric in METRICS else c.metric
    return {
        "metric": c.metric, "label": label, "baseline": c.baseline, "actual": c.actual,
        "target": math.nan if target is None else float(target), "estimate": c.estimate, "ci_low": c.ci_low,
        "ci_high": c.ci_high, "p_value": c.p_value, "p_adjusted": float(p_adjusted), "mde": c.mde,
        "peer_change": c.peer_change, "verdict": verdict, "sentence": sentence, "effect": c.effect,
        "model": c.model, "baseline_raw": c.baseline_raw, "placebo_rank": c.placebo_rank,
        "placebo_n": c.placebo_n, "placebo_p": c.placebo_p, "trend_tau": c.trend.tau,
        "trend_p": c.trend.p_value,
        "theil_sen_slope": c.trend.slope, "baseline_window": windows.describe_baseline(),
        "baseline_source": windows.baseline_source, "baseline_weeks": c.baseline_weeks,
        "plan_weeks": c.plan_weeks, "caveat": caveat,
    }


def _placebo_caveat(c: MetricChange, alpha: float) -> str:
    if 0 < c.placebo_n < math.ceil(1 / alpha) - 1:
        return f"With only {c.placebo_n} peers, a change counts only if it beats every peer's."
    return ""


# -- interrupted time series --------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentedFit:
    """Result of :func:`segmented_count_model`.

    Attributes
    ----------
    table
        One row per term (``level``, ``slope`` when fitted, ``time``): rate ratio, interval, p-value.
    dispersion
        Pearson dispersion (1 for Poisson, alpha-adjusted for negative binomial).
    fitted, counterfactual
        Expected counts with the interruption, and with its level and slope terms switched off
        (the baseline trend projected, for a dashed line on a chart).
    result
        The statsmodels results object.
    """

    table: pd.DataFrame
    dispersion: float
    family: str
    fitted: pd.Series
    counterfactual: pd.Series
    result: Any

    def rate_ratio(self, term: str) -> tuple[float, float, float]:
        """(rate ratio, ci_low, ci_high) of ``"level"``, ``"slope"`` or ``"time"``."""
        row = self.table.loc[term]
        return float(row["rate_ratio"]), float(row["ci_low"]), float(row["ci_high"])


def segmented_count_model(
    data: pd.DataFrame,
    *,
    count: str,
    time: str,
    post: str,
    offset: str | None = None,
    exposure: str | None = None,
    slope_change: bool = False,
    season: str | None = None,
    period: float = 12,
    harmonics: int = 2,
    family: Literal["poisson", "quasipoisson", "negbin"] = "quasipoisson",
    alpha: float = 0.05,
) -> SegmentedFit:
    """Interrupted-time-series regression of a count: level change, optional slope change, seasonality.

    ``log E[count] = b0 + b1*time + b2*post [+ b3*(time - t0)*post] + harmonics + log(offset)``, where
    ``t0`` is the last time before the interruption and the harmonics are ``harmonics`` sine/cosine pairs
    ``sin(2 pi k season / period)``, ``cos(...)``, as in Lopez Bernal, Cummins & Gasparrini (2017).

    Parameters
    ----------
    data
        One row per period.
    count, time, post
        Column names: the count, a numeric time index, and a 0/1 indicator of the post-interruption period.
    offset, exposure
        A column whose log is the offset (e.g. standardized population), or the exposure itself;
        give at most one.
    slope_change
        Add the slope-change term (time since the interruption, 0 before it).
    season, period, harmonics
        Column giving the position in the seasonal cycle (e.g. month 1..12), its period, and the number
        of Fourier pairs; ``season=None`` fits no seasonality.
    family
        ``"quasipoisson"`` (Poisson with Pearson dispersion, the paper's model), ``"poisson"`` or
        ``"negbin"`` (alpha fitted by maximum likelihood, then a GLM with that alpha).
    alpha
        1 - confidence level of the intervals (normal-theory, as the paper).

    Returns
    -------
    SegmentedFit
    """
    import statsmodels.api as sm

    design = _segmented_design(data, time=time, post=post, slope_change=slope_change, season=season,
                               period=period, harmonics=harmonics)
    y = data[count].to_numpy(dtype=float)
    log_offset = _log_offset(data, offset, exposure)
    glm_family, scale = _segmented_family(sm, y, design, log_offset, family)
    result = sm.GLM(y, design, family=glm_family, offset=log_offset).fit(scale=scale)
    table = _segmented_table(result, alpha)
    switched_off = design.assign(**{c: 0.0 for c in ("level", "slope") if c in design})
    fitted = pd.Series(result.predict(design, offset=log_offset), index=data.index, name="fitted")
    counterfactual = pd.Series(result.predict(switched_off, offset=log_offset), index=data.index,
                               name="counterfactual")
    dispersion = float(result.scale) if scale == "X2" else float(result.pearson_chi2 / result.df_resid)
    return SegmentedFit(table, dispersion, family, fitted, counterfactual, result)


def _segmented_design(data: pd.DataFrame, *, time: str, post: str, slope_change: bool, season: str | None,
                      period: float, harmonics: int) -> pd.DataFrame:
    t = data[time].to_numpy(dtype=float)
    after = data[post].to_numpy(dtype=float)
    columns: dict[str, np.ndarray] = {"const": np.ones(len(data)), "level": after, "time": t}
    if slope_change:
        t0 = t[after == 0].max()
        columns["slope"] = (t - t0) * after
    if season is not None:
        position = data[season].to_numpy(dtype=float)
        for k in range(1, harmonics + 1):
            columns[f"sin{k}"] = np.sin(2 * np.pi * k * position / period)
            columns[f"cos{k}"] = np.cos(2 * np.pi * k * position / period)
    return pd.DataFrame(columns, index=data.index)


def _log_offset(data: pd.DataFrame, offset: str | None, exposure: str | None) -> np.ndarray | None:
    if offset is not None and exposure is not None:
        raise ValueError("give offset or exposure, not both")
    column = offset or exposure
    return None if column is None else np.log(data[column].to_numpy(dtype=float))


def _segmented_family(sm: Any, y: np.ndarray, design: pd.DataFrame, log_offset: np.ndarray | None,
                      family: str) -> tuple[Any, str | None]:
    if family == "quasipoisson":
        return sm.families.Poisson(), "X2"
    if family == "poisson":
        return sm.families.Poisson(), None
    if family == "negbin":
        nb = sm.NegativeBinomial(y, design, offset=log_offset).fit(disp=0, maxiter=200)
        return sm.families.NegativeBinomial(alpha=float(nb.params.iloc[-1])), None
    raise ValueError(f"unknown family '{family}' (use quasipoisson, poisson or negbin)")


def _segmented_table(result: Any, alpha: float) -> pd.DataFrame:
    ci = result.conf_int(alpha=alpha)
    terms = [t for t in ("level", "slope", "time") if t in result.params.index]
    return pd.DataFrame({
        "rate_ratio": np.exp(result.params[terms]),
        "ci_low": np.exp(ci.loc[terms, 0]),
        "ci_high": np.exp(ci.loc[terms, 1]),
        "p_value": result.pvalues[terms],
    }, index=pd.Index(terms, name="term"))
