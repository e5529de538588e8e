"""The entry point: :func:`assess` measures every plan metric, adjusts for testing several, and returns
one verdict row per metric: numbers and the facts a sentence needs (words: :func:`pipnb.sentences.describe_verdict`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from pipnb.errors import DataError, PlanError
from pipnb.metrics import week_start
from pipnb.schema import METRICS
from pipnb.stats._common import (
    DETAIL_KEYS,
    GAP_METRIC,
    MIN_PLACEBOS,
    NOT_JUDGED,
    VERDICT_COLUMNS,
    Family,
    MetricChange,
    _units,
)
from pipnb.stats.counts import count_change
from pipnb.stats.gaps import gap_change
from pipnb.stats.ratios import MIN_TRIALS, ratio_change
from pipnb.stats.sequential import information_fractions
from pipnb.stats.verdicts import (
    decide_verdict,
    decision_boundaries,
    decision_range,
    nothing_detectable,
    oriented_z,
    rule_mde,
    sequential_holm,
    target_change,
)
from pipnb.stats.windows import BASELINE_WEEKS, PlanWindows, Window, plan_windows


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
    windows = cohort_windows(windows, metric)
    if kind == "gap":
        if gaps is None:
            raise DataError(f"{metric} needs the per-gap table `gaps` (rep_id, opp_id, ended_at, days, "
                            "censored); pass gaps=... to assess")
        return gap_change(gaps, rep_id, windows=windows, peers=peers, alpha=alpha, power=power, metric=metric)
    if kind == "ratio":
        return ratio_change(panel, rep_id, metric, windows=windows, peers=peers, alpha=alpha, power=power)
    return count_change(panel, rep_id, metric, windows=windows, peers=peers, holidays=holidays, family=family,
                        alpha=alpha, power=power)


def cohort_windows(windows: PlanWindows, metric: str) -> PlanWindows:
    """The windows a metric is judged on: its plan period starts after the metric's ``carryover_weeks``.

    A follow-up cohort is judged 21 days after its first meeting, and a deal closed in the first plan weeks
    was mostly worked before the plan, so those weeks still carry the luck of the window that selected the
    rep (who would look "worse", or "improved", by chance); they are left out of the verdict.
    """
    lag = METRICS[metric].carryover_weeks if metric in METRICS else 0
    if not lag or windows.plan.n_weeks == 0:
        return windows
    first = windows.plan.first_week + pd.Timedelta(weeks=lag)
    return replace(windows, plan=Window(first, windows.plan.last_week))


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
    baseline_weeks: int = BASELINE_WEEKS,
    diagnosis_weeks: int = 12,
    min_baseline_weeks: int = 4,
    focus: Sequence[str] | None = None,
    fractions: Sequence[float] = (1.0,),
    look: int = -1,
    look_ends: Sequence[Any] | None = None,
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
        One-sided error for "improved", and separately for "worse", spent over the plan's looks and
        shared by its focus metrics (Holm); power for the smallest detectable change.
    family
        Count model: ``"auto"``, ``"poisson"``, ``"quasipoisson"`` or ``"negbin"``.
    baseline_weeks, diagnosis_weeks, min_baseline_weeks
        Default window lengths and the shortest default baseline accepted before falling back.
    focus
        The plan's improvement areas: only they get a verdict (default: every metric); the others are
        measured and shown as :data:`NOT_JUDGED`.
    fractions, look
        Information fraction of every look of the plan (:meth:`pipnb.plan.Plan.look_fractions`: the
        information accrued by the look over the final review's, the final review 1.0) and which look this
        is (0-based; -1 the last). One look at 1.0 is a fixed-sample test.
    look_ends
        The last day of every look of the plan (the checkpoints' and the final review's). When given, each
        metric's information fractions are those it has accrued (:func:`metric_fractions`: its own judged weeks
        with data, after its carry-over weeks, against its own baseline weeks) and ``fractions`` is not used.

    Returns
    -------
    pandas.DataFrame
        One row per metric with :data:`VERDICT_COLUMNS`: ``baseline`` / ``actual`` / ``target`` in the
        metric's units; ``estimate``, ``ci_low``, ``ci_high``, ``mde`` and ``peer_change`` on the
        ``effect`` scale (rate or gap ratio, or difference in points); ``p_value`` two-sided (fixed
        sample, for reference); ``z`` oriented so positive is better and ``boundary`` the z it had to
        reach at this look; ``verdict`` one of :data:`VERDICTS` or :data:`NOT_JUDGED`; and the facts
        :func:`pipnb.sentences.describe_verdict` words for the manager (kind, counts, what is detectable).

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
    peers = _peers_with_data(units[1:], rows, gaps, windows)
    changes = [measure_change(rows, rep_id, m, windows=windows, peers=peers, gaps=gaps, holidays=holidays,
                              family=family, alpha=alpha, power=power) for m in metrics]
    judged = [focus is None or c.metric in focus for c in changes]
    z = [oriented_z(c) if j else math.nan for c, j in zip(changes, judged, strict=True)]
    if look_ends is not None:
        look = look % len(look_ends)
        fractions = [metric_fractions(rows, rep_id, c, windows=windows, look_ends=look_ends) for c in changes]
    else:
        look = look % len(fractions)
    family = sum(judged)                # one Holm family per plan: its focus metrics, the same m at every look
    crossed, boundary = sequential_holm(z, fractions=fractions, look=look, alpha=alpha, family=family)
    decided = decision_boundaries(z, fractions=fractions, look=look, alpha=alpha, family=family)
    changes = [replace(c, mde=rule_mde(c, b, power)) if j else c
               for c, b, j in zip(changes, boundary, judged, strict=True)]
    records = [_verdict_record(c, int(x), float(b), float(d), j, targets.get(c.metric), windows)
               for c, x, b, d, j in zip(changes, crossed, boundary, decided, judged, strict=True)]
    return pd.DataFrame.from_records(records, columns=list(VERDICT_COLUMNS))


def metric_fractions(panel: pd.DataFrame, rep_id: str, change: MetricChange, *, windows: PlanWindows,
                     look_ends: Sequence[Any]) -> list[float]:
    """The information fraction of every look for one metric, from the information it has actually accrued.

    The change's variance is proportional to ``1/B + 1/P`` (:func:`pipnb.stats.sequential.information_fractions`)
    with ``B`` the metric's baseline weeks with data and ``P`` its judged plan weeks by the look: the weeks from its
    own plan period's first week (after its carry-over weeks, :func:`cohort_windows`; after a plan event's reference
    weeks when the plan period was moved) to the look's last complete week, without the weeks already past in
    which the rep has no row for it (a leave set aside, no data yet); weeks still to come count as planned. A
    metric with no judged week by a look has (almost) no information there, so its boundary is out of reach.
    """
    own = cohort_windows(windows, change.metric).plan
    rows = panel[(panel["rep_id"] == rep_id) & (panel["metric"] == change.metric)]
    present = set(week_start(rows["week"]))
    today = windows.plan.last_week if windows.plan.n_weeks else own.first_week - pd.Timedelta(weeks=1)
    weeks = []
    for end in look_ends:
        last = week_start(pd.Timestamp(end) - pd.Timedelta(days=6))    # the look's last complete week
        span = pd.date_range(own.first_week, last, freq="W-MON")
        weeks.append(sum(1 for w in span if w > today or w in present))
    base = change.baseline_weeks or windows.baseline.n_weeks
    if base <= 0 or weeks[-1] <= 0:             # nothing to judge (no estimate either): the looks before it are moot
        return [1e-6 * (k + 1) for k in range(len(weeks) - 1)] + [1.0]
    return information_fractions(weeks, base)


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
    weeks = week_start(panel["week"].iloc[keep]).to_numpy()
    # every week up to the plan's end: counts check their variance on the rep's own earlier history
    inside = (weeks <= windows.plan.last_week.to_datetime64()) | (windows.weeks.get_indexer(weeks) >= 0)
    keep = keep[inside]
    return pd.DataFrame({                     # categorical ids: the per-metric grids index them cheaply
        "rep_id": pd.Categorical.from_codes(unit_code[keep], categories=list(units)),
        "week": weeks[inside],
        "metric": pd.Categorical.from_codes(metric_code[keep], categories=list(metrics)),
        "numerator": panel["numerator"].to_numpy(dtype=float)[keep],
        "denominator": panel["denominator"].to_numpy(dtype=float)[keep],
    })


def _peers_with_data(peers: Sequence[str], rows: pd.DataFrame, gaps: pd.DataFrame | None,
                     windows: PlanWindows) -> list[str]:
    """The peers that have any row in the compared weeks (or any gap): the others add nothing."""
    compared = windows.weeks.get_indexer(pd.DatetimeIndex(rows["week"])) >= 0
    seen = set(rows.loc[compared, "rep_id"].unique())
    if gaps is not None:
        seen |= set(gaps["rep_id"].unique())
    return [peer for peer in peers if peer in seen]


def _verdict_record(c: MetricChange, crossed: int, boundary: float, decided: float, judged: bool,
                    target: float | None, windows: PlanWindows) -> dict[str, Any]:
    verdict = decide_verdict(c, crossed, target=target) if judged else NOT_JUDGED
    caveat = " ".join(x for x in (windows.caveat, _placebo_caveat(c)) if x)
    return verdict_record(c, verdict, target=target, boundary=boundary, decided=decided if judged else math.nan,
                          baseline_window=windows.describe_baseline(), baseline_source=windows.baseline_source,
                          caveat=caveat)


def verdict_record(c: MetricChange, verdict: str, *, target: float | None = None, boundary: float = math.nan,
                   decided: float = math.nan, baseline_window: str = "", baseline_source: str = "",
                   caveat: str = "") -> dict[str, Any]:
    """One row of :data:`VERDICT_COLUMNS`: the change, its verdict and the facts a sentence about it needs.

    ``ci_low`` / ``ci_high`` are the interval the verdict reads: with ``decided`` (the z boundary the verdict
    was decided at, :func:`pipnb.stats.verdicts.decision_boundaries`) the *decision range* ``estimate ±
    decided · se`` (``ci_kind`` "decision"), which lies wholly on one side of no change exactly when the verdict
    is *improved* or *worse*; without it (a metric not judged) the two-sided 95% interval (``ci_kind`` "95%").
    ``ci95_low`` / ``ci95_high`` always hold the 95% interval. Statistics return facts only;
    :func:`pipnb.sentences.describe_verdict` words such a row.
    """
    label = METRICS[c.metric].label if c.metric in METRICS else c.metric
    low, high = decision_range(c, decided) if np.isfinite(decided) else (c.ci_low, c.ci_high)
    decision = bool(np.isfinite(decided) and np.isfinite(low))
    return {
        "metric": c.metric, "label": label, "baseline": c.baseline, "actual": c.actual,
        "target": math.nan if target is None else float(target), "estimate": c.estimate,
        "ci_low": low if decision else c.ci_low, "ci_high": high if decision else c.ci_high,
        "ci_kind": "decision" if decision else "95%", "ci_z": decided if decision else 1.959963984540054,
        "ci95_low": c.ci_low, "ci95_high": c.ci_high,
        "p_value": c.p_value, "z": oriented_z(c), "boundary": boundary, "mde": c.mde,
        "peer_change": c.peer_change, "verdict": verdict, "effect": c.effect,
        "model": c.model, "baseline_raw": c.baseline_raw, "placebo_rank": c.placebo_rank,
        "placebo_n": c.placebo_n, "placebo_p": c.placebo_p, "inflation": c.inflation,
        "trend_tau": c.trend.tau, "trend_p": c.trend.p_value,
        "theil_sen_slope": c.trend.slope, "baseline_window": baseline_window,
        "baseline_source": baseline_source, "baseline_weeks": c.baseline_weeks,
        "plan_weeks": c.plan_weeks, "caveat": caveat,
        "kind": c.kind, "higher_is_better": c.higher_is_better, "direction": c.direction,
        "nothing_detectable": nothing_detectable(c), "target_change": target_change(c, target),
        "min_trials": float(MIN_TRIALS) if c.kind == "ratio" else math.nan,
        "target_status": "", "target_basis": "", "target_expected": math.nan, "target_level": math.nan,
        "target_low": math.nan, "target_high": math.nan, "target_weeks": math.nan,
        **{key: float(c.detail.get(key, math.nan)) for key in DETAIL_KEYS},
    }


def _placebo_caveat(c: MetricChange) -> str:
    """Why the interval is wider than the model's, from the facts of :attr:`MetricChange.widening`."""
    if c.inflation <= 1.05:
        return ""
    spread, n, weeks = (c.widening.get(k, math.nan) for k in ("placebo_spread", "placebos", "weeks"))
    why = []
    if spread > 1.0:
        why.append(f"placebo changes (peers refitted as if on the plan, plan starts in the rep's own history) "
                   f"spread {spread:.1f} times as wide as the model expects")
    if weeks > 1.0:
        why.append(f"the rep's neighbouring weeks are correlated (a period's total spreads {weeks:.1f} times as "
                   "wide)")
    if n >= MIN_PLACEBOS:
        why.append(f"that spread is estimated from {n:.0f} placebos, not known")
    return f"The interval is {c.inflation:.1f} times as wide as the model's: {'; '.join(why)}." if why else ""
