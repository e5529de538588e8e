"""A review's statuses: the rep's level against what the plan asks for by now, moved with the team's change.

One row per target (:func:`status_table`): the glide path's average over the plan weeks so far and the final
target, each moved by the peers' change from the diagnosis window (:mod:`pipnb.peer_change`), read against the
rep's 95% interval widened by that change's uncertainty; a metric a signed plan event rebaselined is judged from
its new reference level instead (:func:`rebaselined`, :mod:`pipnb.events`). :mod:`pipnb.reviews` builds the
review and its recommendation from these rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipnb.alerts import CREATED, nobody_created
from pipnb.events import factor, rebaselines, reference_level
from pipnb.lifecycle import MIN_EVENT_WEEKS
from pipnb.metrics import window_metrics
from pipnb.peer_change import count_dispersion, moved, peer_values, team_change, widen
from pipnb.plan import Plan, Target
from pipnb.policy import Policy
from pipnb.schema import METRICS
from pipnb.stats.intervals import level_interval

MET, NOT_MET, NOT_YET_CLEAR, NO_DATA = "met", "not met", "not yet clear", "no data"
STATUSES = (MET, NOT_MET, NOT_YET_CLEAR, NO_DATA)


def pooled(panel: pd.DataFrame, start: dt.date, end: dt.date, plan: Plan) -> pd.DataFrame:
    pooled = window_metrics(panel, pd.Timestamp(start), pd.Timestamp(end), win_rate_basis=plan.win_rate_basis)
    return pooled.set_index(["rep_id", "metric"])


def weekly_numerators(panel: pd.DataFrame, rep_id: str | None, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The rep's weekly numerators over the plan weeks so far (metric × week); ``rep_id=None``: every rep's in
    ``panel``, summed."""
    rows = panel[((panel["rep_id"] == rep_id) if rep_id is not None else True) & (panel["week"] >= pd.Timestamp(start))
                 & (panel["week"] <= pd.Timestamp(end))]
    return rows.pivot_table(index="week", columns="metric", values="numerator", aggfunc="sum")


def glide_average(target: Target, plan_week: int, plan_weeks: int) -> float:
    """The glide path's average over plan weeks 1..``plan_week``: what the pooled plan level should reach.

    The glide runs in a straight line from the baseline (week 0) to the final target (the last week), so
    a rep on the path averages ``baseline + (target - baseline) * (W + 1) / (2 T)`` over the first W weeks.
    """
    base = target.target if target.baseline is None else target.baseline
    return float(base + (target.target - base) * (plan_week + 1) / (2 * plan_weeks))


def status_table(plan: Plan, look: int, plan_week: int, window: pd.DataFrame, since: pd.DataFrame,
                  weekly: pd.DataFrame, peers: list[str], policy: Policy, *, final: bool = False,
                  window_start: dt.date | None = None,
                  team: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per target. ``team``: the pooled diagnosis window and review window of the rep and the peers, and the
    peers' weekly totals over the plan weeks; the week-to-week dispersion of a count is read from the rep's weeks
    relative to the peers' (:func:`pipnb.peer_change.count_dispersion`: a dip every rep shares is not the rep's
    noise), and the expected levels move with the peers' change from the diagnosis window
    (:func:`pipnb.peer_change.team_change`), and the statuses read the rep's interval widened by that change's
    uncertainty (:func:`pipnb.peer_change.widen`)."""
    rows = []
    recent = weekly[weekly.index >= pd.Timestamp(window_start)] if window_start is not None else weekly
    mine = since.loc[plan.rep_id] if plan.rep_id in since.index.get_level_values(0) else pd.DataFrame()
    before, pooled_window, season = team if team is not None else (None, None, None)
    for target in plan.targets:
        spec, metric = METRICS[target.metric], target.metric
        model = spec.model or "count"
        num, den = _get(mine, metric, "numerator"), _get(mine, metric, "denominator")
        phi = count_dispersion(weekly, season, metric)                         # all plan weeks so far
        level, low, high = level_interval(model, numerator=num, denominator=den, weekly=_series(weekly, metric),
                                          dispersion=phi)
        w_num, w_den = _get(window, metric, "numerator"), _get(window, metric, "denominator")
        w_level, w_low, w_high = level_interval(model, numerator=w_num, denominator=w_den,
                                                weekly=_series(recent, metric), dispersion=phi)
        if metric == CREATED:          # nobody created an opportunity: not measurable, "no data", never "not met"
            if nobody_created(since.reset_index()):
                level = low = high = np.nan
            if nobody_created(window.reset_index()):
                w_level = w_low = w_high = np.nan
        goal = glide_average(target, plan_week, plan.weeks)
        glide_change = team_change(metric, before, since, peers)
        final_change = team_change(metric, before, pooled_window, peers) if final else glide_change
        glide_goal = moved(model, goal, glide_change)
        glide_low, glide_high = widen(model, level, low, high, glide_change)
        glide_status = _status(level, glide_low, glide_high, glide_goal, spec.higher_is_better)
        final_goal = moved(model, target.target, final_change)
        status_low, status_high = widen(model, w_level, w_low, w_high, final_change) if final else (
            glide_low, glide_high)
        final_status = _status(w_level, status_low, status_high, final_goal, spec.higher_is_better) if final else None
        shown = final_change if final else glide_change
        raw_status = (_status(w_level, w_low, w_high, target.target, spec.higher_is_better) if final else
                      _status(level, low, high, goal, spec.higher_is_better))
        peer_level = _peer_level(since, peers, metric)
        rows.append({
            "metric": metric, "label": target.label, "focus": target.focus, "baseline": target.baseline,
            "target": goal, "glide_target": target.glide[look], "final_target": target.target,
            "adjusted_target": glide_goal, "adjusted_final_target": final_goal if final else np.nan,
            "team_before": shown.before, "team_now": shown.now, "team_change": shown.change,
            "team_change_low": shown.low, "team_change_high": shown.high, "team_peers": shown.peers,
            "team_weeks_from": _plan_week(plan, window_start) if final else 1, "team_weeks_to": plan_week,
            "status_low": status_low, "status_high": status_high, "unadjusted": raw_status,
            "actual": w_level if model == "count" else _get(window, metric, "value"),
            "actual_low": w_low, "actual_high": w_high, "numerator": w_num, "denominator": w_den,
            "window_weeks": len(recent.index), "plan_weeks": len(weekly.index),
            "since_start": level, "since_low": low, "since_high": high, "since_numerator": num,
            "since_denominator": den, "peer_level": peer_level,
            "short_of_peers": _beyond(high, low, peer_level, policy.margin, spec.higher_is_better, worse=True),
            "at_peer_level": _beyond(high, low, peer_level, policy.margin, spec.higher_is_better, worse=False),
            "margin": policy.margin, "glide_status": glide_status, "final_status": final_status,
            "status": final_status if final else glide_status,
        })
    return pd.DataFrame(rows)


def rebaselined(table: pd.DataFrame, plan: Plan, mine: pd.DataFrame, peers: list[str], policy: Policy, *,
                 look: int, final: bool, window_start: dt.date, as_of: dt.date) -> pd.DataFrame:
    """The status table with every metric a plan event rebaselined judged from its new reference level (see
    :mod:`pipnb.events`): the glide, the final target and the peers' level scaled by the factor the event made
    (a shortfall by the factor at the reference level's interval end that favours the rep), over the weeks after
    the reference weeks only; "not yet clear" (neither short of nor at the peers' level) until the reference
    weeks are complete, or at the final review when they reach into its window and leave fewer than
    :data:`MIN_EVENT_WEEKS` judged weeks in it. The table itself when no event rebaselines a plan metric."""
    rebased = rebaselines(plan)
    if not rebased:
        return table
    out = table.assign(rebaselined=False, event_factor=np.nan, event_judged=False)
    for i, metric in zip(out.index, out["metric"]):
        rb = rebased.get(metric)
        if rb is None:
            continue
        target, spec = plan.target(metric), METRICS[metric]
        level, low, high, _ = reference_level(mine, plan, rb)
        k = factor(plan, metric, level)
        k_short = factor(plan, metric, low if spec.higher_is_better else high)   # a shortfall beyond the reference
        since = pooled(mine, rb.judged_start, as_of, plan)
        weekly = weekly_numerators(mine, plan.rep_id, rb.judged_start, as_of)
        start = max(window_start, rb.judged_start)
        recent = weekly[weekly.index >= pd.Timestamp(start)]
        window = pooled(mine, start, as_of, plan)
        out.loc[i, ["rebaselined", "event_factor", "baseline"]] = [True, k, level]
        ready = as_of >= rb.judged_start + dt.timedelta(days=4) and np.isfinite(k) and len(weekly.index) > 0
        # an event whose reference weeks reach into the final review's window needs enough judged weeks in it
        enough = not final or rb.judged_start <= window_start or len(recent.index) >= MIN_EVENT_WEEKS
        if not (ready and enough):
            out.loc[i, ["glide_status", "status", "short_of_peers", "at_peer_level", "plan_weeks", "window_weeks"]] = [
                NOT_YET_CLEAR, NOT_YET_CLEAR, False, False, len(weekly.index), len(recent.index)]
            if final:
                out.loc[i, "final_status"] = NOT_YET_CLEAR
            _without_team(out, i, final=final)
            continue
        model = spec.model or "count"
        rep = since.loc[plan.rep_id] if plan.rep_id in since.index.get_level_values(0) else pd.DataFrame()
        season = weekly_numerators(mine[mine["rep_id"].isin(peers)], None, rb.judged_start, as_of)
        phi = count_dispersion(weekly, season, metric)                         # the judged weeks, as above
        s_level, s_low, s_high = level_interval(model, numerator=_get(rep, metric, "numerator"),
                                                denominator=_get(rep, metric, "denominator"),
                                                weekly=_series(weekly, metric), dispersion=phi)
        mine_w = window.loc[plan.rep_id] if plan.rep_id in window.index.get_level_values(0) else pd.DataFrame()
        w_num, w_den = _get(mine_w, metric, "numerator"), _get(mine_w, metric, "denominator")
        w_level, w_low, w_high = level_interval(model, numerator=w_num, denominator=w_den,
                                                weekly=_series(recent, metric), dispersion=phi)
        if metric == CREATED:          # nobody created an opportunity: not measurable, "no data", never "not met"
            if nobody_created(since.reset_index()):
                level = low = high = np.nan
            if nobody_created(window.reset_index()):
                w_level = w_low = w_high = np.nan
        skipped = (rb.judged_start - plan.start).days // 7 if rb.judged_start > plan.start else 0
        plan_week = plan.checkpoint_week(plan.stages()[look])
        base = target.target if target.baseline is None else target.baseline
        path = base + (target.target - base) * (skipped + 1 + plan_week) / (2 * plan.weeks)
        goal, final_target, peers_median = k * path, k * target.target, _peer_level(since, peers, metric)
        peer_level = k * peers_median
        glide_status = _event_status((s_level, s_low, s_high), path, k, k_short, spec.higher_is_better)
        final_status = (_event_status((w_level, w_low, w_high), target.target, k, k_short, spec.higher_is_better)
                        if final else None)
        out.loc[i, ["target", "glide_target", "final_target", "actual", "actual_low", "actual_high", "numerator",
                    "denominator", "window_weeks", "plan_weeks", "since_start", "since_low", "since_high",
                    "since_numerator", "since_denominator", "peer_level", "short_of_peers", "at_peer_level",
                    "glide_status", "status", "event_judged"]] = [
            goal, k * target.glide[look], final_target, w_level, w_low, w_high, w_num, w_den, len(recent.index),
            len(weekly.index), s_level, s_low, s_high, _get(rep, metric, "numerator"),
            _get(rep, metric, "denominator"), peer_level,
            _beyond(s_high, s_low, k_short * peers_median, policy.margin, spec.higher_is_better, worse=True),
            _beyond(s_high, s_low, peer_level, policy.margin, spec.higher_is_better, worse=False),
            glide_status, final_status if final else glide_status, True]
        if final:
            out.loc[i, "final_status"] = final_status
        _without_team(out, i, final=final)
    return out


def _without_team(out: pd.DataFrame, i, *, final: bool) -> None:
    """A rebaselined row is judged against the rep's own level after the event, not moved with the peers: its
    adjusted levels are its own, its status interval the rep's, and no team's change is claimed for it."""
    out.loc[i, ["adjusted_target", "team_before", "team_now", "team_change", "team_change_low",
                "team_change_high"]] = [out.loc[i, "target"], np.nan, np.nan, np.nan, np.nan, np.nan]
    if final:
        out.loc[i, "adjusted_final_target"] = out.loc[i, "final_target"]
    low, high = ("actual_low", "actual_high") if final else ("since_low", "since_high")
    out.loc[i, ["status_low", "status_high", "unadjusted"]] = [out.loc[i, low], out.loc[i, high], out.loc[i, "status"]]


def _event_status(interval: tuple[float, float, float], goal: float, k: float, k_short: float, up: bool) -> str:
    """A rebaselined status: *met* against the goal scaled by the factor ``k``, *not met* only when also short of
    it scaled by ``k_short`` (the reference level's interval end that favours the rep), else *not yet clear*."""
    status = _status(*interval, k * goal, up)
    if status == NOT_MET and _status(*interval, k_short * goal, up) != NOT_MET:
        return NOT_YET_CLEAR
    return status


def _plan_week(plan: Plan, day: dt.date | None) -> int:
    return 1 if day is None else (day - plan.start).days // 7 + 1


def _series(weekly: pd.DataFrame, metric: str) -> np.ndarray:
    return weekly[metric].fillna(0.0).to_numpy(float) if metric in weekly else np.array([])


def _status(level: float, low: float, high: float, goal: float, up: bool) -> str:
    """*met* when the whole interval reaches the target, *not met* when it all falls short."""
    if not np.isfinite(level):
        return NO_DATA
    if (low >= goal - 1e-9) if up else (high <= goal + 1e-9):
        return MET
    if (high < goal) if up else (low > goal):
        return NOT_MET
    return NOT_YET_CLEAR


def _peer_level(since: pd.DataFrame, peers: list[str], metric: str) -> float:
    values = peer_values(since, peers, metric, "value")
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else np.nan


def _beyond(high: float, low: float, peer_level: float, margin: float, up: bool, *, worse: bool) -> bool:
    """Whether the interval lies wholly short of the peers' level by the margin (``worse``), or wholly
    within the margin of it or better (not ``worse``)."""
    if not np.isfinite(peer_level):
        return False
    line = peer_level * ((1 - margin) if up else (1 + margin))
    if worse:
        return bool(high < line) if up else bool(low > line)
    return bool(low >= line) if up else bool(high <= line)


def _get(frame: pd.DataFrame, metric: str, column: str) -> float:
    return float(frame.loc[metric, column]) if metric in frame.index else np.nan
