"""What a plan's signed events change in its reviews: the weeks a leave sets aside, and the metrics a territory,
segment or other change rebaselines.

A plan event (:meth:`pipnb.lifecycle.Lifecycle.record_event`, ``pipnb plan event``) records a change the rep does
not control. Its effect on a review, decided here and applied by :func:`pipnb.reviews.review`:

* **Leave** (``--until D`` or ``--weeks N``): the weeks from the Monday of its first day to the week of its last
  day are not plan weeks. The rep's rows in those weeks are dropped (:func:`without_leave`) from the pooled levels,
  the weekly series and the verdicts' windows (which treat a week without rows as a week the rep did not work).
* **Territory, segment, other**: each affected metric's reference level is re-measured from the event on. The
  *reference weeks* (:class:`Rebaseline`) start on the first Monday on or after the event's date and run to the
  plan start, and always for at least :data:`~pipnb.lifecycle.MIN_EVENT_WEEKS` weeks; plan weeks inside them are
  not judged on that metric. The rep's level over them, against the plan's baseline, gives the *factor* the event
  made: the glide path, the final target and the peers' level are all scaled by it (the re-anchored glide), and
  the status judges only the weeks after the reference weeks. A shortfall ("not met", short of the peers) is
  judged against the factor at the end of the reference level's 95% interval that favours the rep, so the
  uncertainty of a reference measured on a few weeks is not counted against the rep; "met" and "at the peers'
  level" use the factor itself. The verdict's baseline moves to the reference weeks
  and its plan period to the weeks after them (:func:`event_verdicts`). Until the reference weeks are complete, or
  when the final review's window has fewer than :data:`~pipnb.lifecycle.MIN_EVENT_WEEKS` judged weeks, the metric
  is "not yet clear" (and its verdict "too early to tell"), so no consequence rests on it.

When the reference weeks lie in the diagnosis window (an event dated before the plan), they are part of the
stretch that put the rep on the plan: that errs towards the rep (a low reference makes "improved" likelier and
"not met" rarer), and the verdict says so. When several events affect one metric, the latest one rebaselines it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipnb.lifecycle import MIN_EVENT_WEEKS, HistoryEntry
from pipnb.metrics import week_start, window_metrics
from pipnb.peer_change import count_dispersion
from pipnb.plan import Plan
from pipnb.schema import METRICS
from pipnb.stats.intervals import level_interval
from pipnb.stats.windows import Window

__all__ = ["Rebaseline", "event_facts", "event_verdicts", "leave_weeks", "leave_weeks_between", "rebaselines",
           "reference_level", "without_leave"]

WEEK = dt.timedelta(weeks=1)


@dataclass(frozen=True)
class Rebaseline:
    """How one event re-measures one metric: the reference weeks (``reference_start`` .. ``reference_end``, whole
    weeks, days inclusive) and the first day judged against the re-anchored glide (``judged_start``)."""

    metric: str
    entry: HistoryEntry
    reference_start: dt.date
    reference_end: dt.date
    judged_start: dt.date
    verdict_start: dt.date | None = None     # the verdict's reference weeks, when the statuses' lie in the
    verdict_end: dt.date | None = None       # window that selected the rep (see :func:`rebaselines`)

    @property
    def reference_weeks(self) -> int:
        return (self.reference_end - self.reference_start).days // 7 + 1

    @property
    def verdict_reference(self) -> tuple[dt.date, dt.date, dt.date]:
        """The verdict's reference weeks (first day, last day) and its first judged day."""
        if self.verdict_start is None or self.verdict_end is None:
            return self.reference_start, self.reference_end, self.judged_start
        return self.verdict_start, self.verdict_end, self.verdict_end + dt.timedelta(days=1)

    def label(self) -> str:
        """The reference weeks in words, as the verdicts name a window (``'4 Mar – 31 Mar 2024'``)."""
        return Window(pd.Timestamp(self.reference_start), pd.Timestamp(self.reference_end - dt.timedelta(days=6))
                      ).label()


def leave_weeks(plan: Plan) -> pd.DatetimeIndex:
    """The Mondays of every week a signed leave sets aside (its first day's week to its last day's)."""
    weeks = [pd.date_range(week_start(pd.Timestamp(h.event.start)), week_start(pd.Timestamp(h.event.end)),
                           freq="W-MON") for h in plan.events() if h.event.kind == "leave"]
    return pd.DatetimeIndex(sorted(set().union(*weeks))) if weeks else pd.DatetimeIndex([])


def leave_weeks_between(plan: Plan, first: dt.date, last: dt.date) -> int:
    """How many of the weeks from ``first``'s week to ``last``'s week (both included) a signed leave sets aside:
    the weeks a review of that stretch does not count as plan weeks."""
    weeks = leave_weeks(plan)
    if not len(weeks):
        return 0
    start, end = week_start(pd.Timestamp(first)), week_start(pd.Timestamp(last))
    return int(((weeks >= start) & (weeks <= end)).sum())


def without_leave(panel: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The panel without the rep's rows in the weeks a leave sets aside (the panel itself when there are none)."""
    weeks = leave_weeks(plan)
    if not len(weeks):
        return panel
    away = (panel["rep_id"] == plan.rep_id) & week_start(panel["week"]).isin(weeks)
    return panel[~away.to_numpy()]


def rebaselines(plan: Plan) -> dict[str, Rebaseline]:
    """The metric → :class:`Rebaseline` of every plan metric a territory, segment or other event affects (the
    latest event by its date, then by when it was signed).

    The reference weeks must not be the weeks that chose the rep. A rep is put on a plan (and a metric made a
    focus) because the diagnosis window looked low; part of that is chance, which does not repeat, so a reference
    measured in it is low by chance too and the plan weeks "improve" on it without any change (regression to the
    mean: the verdicts' own baseline is the weeks before the diagnosis window for that reason). So:

    * an event in the diagnosis window (an event is never dated before it): no week after the event is free of
      selection before the plan. The statuses keep the weeks from the event to the plan start (at least
      :data:`~pipnb.lifecycle.MIN_EVENT_WEEKS`): a reference low by chance lowers the goals, which errs towards
      the rep, and a shortfall must stand beyond the reference's interval too. The verdict (whether the rep
      changed) takes its reference from the first ``MIN_EVENT_WEEKS`` plan weeks, which chose nobody, and judges
      the weeks after them (``verdict_start`` .. ``verdict_end``); a rep who improved at once keeps that in the
      statuses, only the word "improved" waits for a change beyond those weeks;
    * an event after the diagnosis window: the weeks from it on (at least ``MIN_EVENT_WEEKS``), for both.
    """
    out: dict[str, Rebaseline] = {}
    changes = sorted((h for h in plan.events() if h.event.kind != "leave"), key=lambda h: h.event.start)
    span = MIN_EVENT_WEEKS * WEEK - dt.timedelta(days=1)
    for entry in changes:
        day = entry.event.start
        first = day + dt.timedelta(days=(7 - day.weekday()) % 7)          # the first whole week from the event
        end = max(plan.start - dt.timedelta(days=1), first + span)
        verdict: tuple[dt.date | None, dt.date | None] = (None, None)
        if first <= plan.diagnosis_window.end:                             # the weeks after it chose the rep
            verdict = (plan.start, max(plan.start + span, end))
        for metric in entry.event.metrics:
            out[metric] = Rebaseline(metric, entry, first, end, end + dt.timedelta(days=1), *verdict)
    return out


def reference_level(panel: pd.DataFrame, plan: Plan, rb: Rebaseline) -> tuple[float, float, float, int]:
    """The rep's level of ``rb.metric`` over its reference weeks, its 95% interval (:func:`level_interval`, the
    week-to-week dispersion read relative to the other reps' weeks in ``panel``, the peers as a review passes it:
    :func:`pipnb.peer_change.count_dispersion`) and how many of those weeks hold the rep's rows."""
    start, end = pd.Timestamp(rb.reference_start), pd.Timestamp(rb.reference_end)
    inside = panel[(week_start(panel["week"]) >= start) & (week_start(panel["week"]) <= end)]
    rows = inside[inside["rep_id"] == plan.rep_id]
    n = int(week_start(rows["week"]).nunique())
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    pooled = window_metrics(rows, start, end, win_rate_basis=plan.win_rate_basis).set_index("metric")
    if rb.metric not in pooled.index:
        return math.nan, math.nan, math.nan, n
    model = METRICS[rb.metric].model or "count"
    mine = rows[rows["metric"] == rb.metric].pivot_table(index="week", columns="metric", values="numerator",
                                                        aggfunc="sum")
    others = inside[(inside["rep_id"] != plan.rep_id) & (inside["metric"] == rb.metric)]
    season = others.pivot_table(index="week", columns="metric", values="numerator", aggfunc="sum")
    level, low, high = level_interval(model, numerator=float(pooled.loc[rb.metric, "numerator"]),
                                      denominator=float(pooled.loc[rb.metric, "denominator"]),
                                      weekly=mine[rb.metric].fillna(0.0).to_numpy(float) if rb.metric in mine else
                                      np.array([]), dispersion=count_dispersion(mine, season, rb.metric))
    return float(level), float(low), float(high), n


def factor(plan: Plan, metric: str, level: float) -> float:
    """How much the event moved the rep's level: the reference level over the plan's baseline (NaN without
    either, or with a baseline of zero). With the end of the reference level's 95% interval that favours the rep
    (its low end for a metric where higher is better), the factor a shortfall is judged against: the reference
    is measured on a few weeks, and a shortfall must stand beyond that uncertainty too."""
    base = plan.target(metric).baseline
    if base is None or not np.isfinite(base) or base <= 0 or not np.isfinite(level):
        return math.nan
    return float(level / base)


def event_verdicts(verdicts: pd.DataFrame, panel: pd.DataFrame, plan: Plan, *, as_of: dt.date,
                   **assess_args) -> pd.DataFrame:
    """The verdict rows with every rebaselined metric judged from its reference weeks: its baseline moves to them
    and its plan period to the weeks after them (one more :func:`pipnb.stats.assess` of all the plan's metrics per
    reference window, so the Holm family stays the plan's focus metrics); "too early to tell" until those weeks
    are complete and a judged week has passed."""
    from pipnb.stats import assess  # statsmodels (1.5 s): the change models behind assess
    from pipnb.stats._common import NOT_JUDGED, TOO_EARLY  # scipy (0.3 s): loaded with the models above

    by_window: dict[tuple[dt.date, dt.date, dt.date], list[Rebaseline]] = {}
    for rb in rebaselines(plan).values():
        by_window.setdefault(rb.verdict_reference, []).append(rb)
    if not by_window or verdicts.empty:
        return verdicts
    out = verdicts.copy()
    index = {m: i for i, m in zip(out.index, out["metric"])}
    for (start, end, judged), group in by_window.items():
        scaled = {rb.metric: _scaled_target(panel, plan, rb) for rb in group}
        kind, day = group[0].entry.event.kind, group[0].entry.event.start
        if as_of < judged + dt.timedelta(days=4):
            for rb in group:
                i = index.get(rb.metric)
                if i is not None and out.loc[i, "verdict"] != NOT_JUDGED:
                    out.loc[i, "verdict"] = TOO_EARLY
                    out.loc[i, "caveat"] = _too_early(rb, as_of)
            continue
        targets = dict(assess_args.get("targets") or {})
        targets.update({m: t for m, t in scaled.items() if np.isfinite(t)})
        again = assess(panel, plan.rep_id, plan_start=judged, as_of=as_of, baseline_start=start, baseline_end=end,
                       **{**assess_args, "targets": targets}).set_index("metric")
        for rb in group:
            i = index.get(rb.metric)
            if i is None or rb.metric not in again.index:
                continue
            row = again.loc[rb.metric]
            for column in out.columns:
                if column in row.index:
                    out.at[i, column] = row[column]
            out.at[i, "baseline_window"] = (f"{_label(start, end)}, re-measured after the {kind} change of "
                                            f"{day:%d %b %Y}")
            out.at[i, "caveat"] = " ".join(x for x in (str(row["caveat"] or ""), _selecting(rb, plan)) if x)
    return out


def _scaled_target(panel: pd.DataFrame, plan: Plan, rb: Rebaseline) -> float:
    level = reference_level(panel, plan, rb)[0]
    return plan.target(rb.metric).target * factor(plan, rb.metric, level)


def _label(start: dt.date, end: dt.date) -> str:
    return Window(pd.Timestamp(start), pd.Timestamp(end - dt.timedelta(days=6))).label()


def _too_early(rb: Rebaseline, as_of: dt.date) -> str:
    event = rb.entry.event
    start, end, _ = rb.verdict_reference
    return (f"Its reference level is re-measured after the {event.kind} change of {event.start:%d %b %Y} over "
            f"{(end - start).days // 7 + 1} weeks to {end:%d %b %Y}, and judged only on the weeks after them; "
            f"by {as_of:%d %b %Y} none of those weeks is complete.")


def _selecting(rb: Rebaseline, plan: Plan) -> str:
    """Why the verdict's reference weeks are plan weeks, when they are (the facts of :func:`rebaselines`)."""
    start, end, _ = rb.verdict_reference
    if rb.verdict_start is None:
        return ""
    return (f"The weeks from the change to the plan start are the stretch that put the rep on the plan, which a "
            f"low stretch by chance would make look like improvement afterwards; the change is read against plan "
            f"weeks {(start - plan.start).days // 7 + 1}–{(end - plan.start).days // 7 + 1} instead.")


def event_facts(plan: Plan, table: pd.DataFrame, *, as_of: dt.date) -> list[dict]:
    """One record per signed event, for its sentence (:func:`pipnb.sentences.describe_event`): kind, dates,
    note, signer, the weeks a leave set aside up to ``as_of`` (its weeks that began by then), and per rebaselined
    metric of the review's table its reference weeks, factor and whether it is judged yet."""
    rebased = rebaselines(plan)
    rows = table.set_index("metric") if "rebaselined" in table else pd.DataFrame()
    out = []
    for h in plan.events():
        e = h.event
        fact = {"kind": e.kind, "start": e.start, "end": e.end, "note": h.note, "by": h.by, "signed": h.date,
                "metrics": [], "weeks_set_aside": 0, "leave_weeks": e.weeks()}
        if e.kind == "leave":
            fact["weeks_set_aside"] = len(pd.date_range(week_start(pd.Timestamp(e.start)), min(
                week_start(pd.Timestamp(e.end)), week_start(pd.Timestamp(as_of))), freq="W-MON"))
        for metric in e.metrics:
            rb = rebased.get(metric)
            if e.kind == "leave" or rb is None or rb.entry is not h or metric not in rows.index:
                continue
            row = rows.loc[metric]
            fact["metrics"].append({
                "metric": metric, "label": METRICS[metric].label, "reference_start": rb.reference_start,
                "reference_end": rb.reference_end, "reference_weeks": rb.reference_weeks,
                "judged_start": rb.judged_start, "factor": float(row["event_factor"]),
                "judged": bool(row["event_judged"])})
        out.append(fact)
    return out
