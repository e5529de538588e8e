"""Drafting a plan: targets computed from the diagnosis by the policy's rules, a glide path, the timeline.

The article's second step. :func:`draft_plan` turns a :class:`~pipnb.diagnosis.Diagnosis` into a
:class:`~pipnb.plan.Plan` (``status: draft``) by the rules of ``params/policy.yaml``; each target states its
rule and the numbers it came from: the policy's rule moved toward the peers for a flagged area, the win rate
from the driver targets through the funnel, and a glide path from a baseline that did not select the rep.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from pipnb.dates import DateError, read_day
from pipnb.diagnosis import Diagnosis
from pipnb.errors import PlanError
from pipnb.plan import Area, DeadOpportunity, HistoryEntry, Plan, Target, Window
from pipnb.policy import Policy, resolve_policy
from pipnb.schema import METRICS, PLAN_METRICS


def _plan_start(value: str | dt.date, day_after: dt.date) -> dt.date:
    """A plan's first day from a date or ISO 8601 text (:func:`pipnb.dates.read_day`); anything else --
    ``07/06/2026``, ``2026-7-6``, ``next monday`` -- is a :class:`PlanError` with a hint."""
    try:
        return read_day(value, "start")
    except DateError as err:
        monday = day_after + dt.timedelta(days=-day_after.weekday() % 7)
        raise PlanError(f"{err.problem}: use YYYY-MM-DD, e.g. '{monday:%Y-%m-%d}' (the first Monday after the "
                        f"diagnosis window), or leave it out for the day after it ({day_after:%Y-%m-%d})",
                        key="start") from None


def draft_plan(diagnosis, start: str | dt.date | None = None, policy: Policy | str | Path | None = None, *,
               reason: str | None = None) -> Plan:
    """Draft a plan from a diagnosis: targets by the policy's rules, a glide path, the timeline.

    Only a rep whose diagnosis finds a shortfall (:attr:`~pipnb.diagnosis.Diagnosis.needs_plan`) gets a plan;
    for any other rep it is refused unless ``reason`` says why it is drafted anyway (the plan file, its history
    and every report of the plan record it).

    Parameters
    ----------
    diagnosis
        From :func:`pipnb.diagnose` (:mod:`pipnb.diagnosis`).
    start
        First day of the plan (default: the Monday after the diagnosis window).
    policy
        A :class:`Policy`, or a path to a policy YAML (default ``params/policy.yaml``).
    reason
        Why a plan is drafted though the diagnosis finds no shortfall (required then; ignored when blank).

    Returns
    -------
    Plan
        With ``status: draft``.

    Raises
    ------
    PlanError
        When the diagnosis finds no shortfall and no ``reason`` is given (one line: :func:`no_plan_needed`).
    """
    if not isinstance(diagnosis, Diagnosis):
        raise PlanError(f"draft_plan takes a diagnosis, not a {type(diagnosis).__name__}: "
                        "pn.draft_plan(pn.diagnose(data, rep_id))")
    reason = " ".join(str(reason or "").split())
    if diagnosis.needs_plan:
        reason = ""                 # a plan the diagnosis warrants needs no other reason
    elif not reason:
        raise PlanError(no_plan_needed(diagnosis))
    policy = resolve_policy(policy)
    day_after = (pd.Timestamp(diagnosis.window_end) + pd.Timedelta(days=1)).date()
    start = _plan_start(start, day_after) if start is not None else day_after
    card = diagnosis.card[diagnosis.card["rep_id"] == diagnosis.rep_id].set_index("metric")
    targets: dict[str, Target] = {}
    for metric in sorted(PLAN_METRICS, key=lambda m: m == "win_rate"):       # the drivers first: the win
        if metric in card.index and metric in policy.targets and card.loc[metric, "flag"] != "unavailable":
            targets[metric] = _target(metric, card.loc[metric], policy, diagnosis, targets)   # rate uses them
    targets = [targets[m] for m in PLAN_METRICS if m in targets]
    areas = [Area(metric=r.metric, classification=r.classification, rationale=r.rationale, evidence=r.evidence,
                  explains=None if not np.isfinite(r.explains) else round(float(r.explains), 3))
             for r in diagnosis.drivers.itertuples()]
    window_start = pd.Timestamp(diagnosis.window_start).date()
    if start <= window_start:
        raise PlanError(f"{start:%Y-%m-%d} is not after the diagnosis window's first day ({window_start:%Y-%m-%d}): "
                        f"a plan starts after what it is drafted from; leave the start out for {day_after:%Y-%m-%d} "
                        "(the day after the diagnosis window)", key="start")
    window_end = min(pd.Timestamp(diagnosis.window_end).date(), start - dt.timedelta(days=1))
    try:
        return _plan(diagnosis, policy, start, window_start, window_end, targets, areas, reason)
    except ValidationError as err:          # e.g. a start so late the plan's end is past year 9999
        first = err.errors()[0]
        raise PlanError(first["msg"].removeprefix("Value error, "),
                        key=".".join(str(p) for p in first["loc"]) or "start") from None


def _plan(diagnosis, policy: Policy, start: dt.date, window_start: dt.date, window_end: dt.date,
          targets: list[Target], areas: list[Area], reason: str) -> Plan:
    return Plan(
        rep_id=diagnosis.rep_id, rep_name=diagnosis.rep_name, team=diagnosis.team, status="draft",
        start=start, weeks=policy.plan_weeks, checkpoints=policy.checkpoints,
        diagnosis_window=Window(start=window_start, end=window_end),
        win_rate_basis=diagnosis.win_rate_basis, peer_by=diagnosis.peer_by,
        data_fingerprint=diagnosis.data_fingerprint, source=diagnosis.source, summary=diagnosis.summary(),
        improvement_areas=areas, targets=targets, consequences=policy.consequences,
        resources=policy.resources, coaching=policy.coaching, dead_opportunities=_dead(diagnosis),
        reason=reason,
        history=[HistoryEntry(date=pd.Timestamp(diagnosis.as_of).date(), status="draft",
                              note="drafted by pipnb from the diagnosis" + (
                                  f", which finds no shortfall; drafted anyway because: {reason}" if reason else ""))])


def no_plan_needed(diagnosis) -> str:
    """Why no plan is drafted for a rep whose diagnosis finds no shortfall, and how to draft one anyway (one
    line)."""
    window = f"{pd.Timestamp(diagnosis.window_start):%Y-%m-%d} to {pd.Timestamp(diagnosis.window_end):%Y-%m-%d}"
    return (f"no plan for {diagnosis.rep_id}: the diagnosis ({window}) finds no shortfall on the win rate or a driver "
            "beyond noise, so there is nothing a plan could ask to improve; to draft one anyway, say why with "
            "--reason TEXT (Python: reason=...)")


def _dead(diagnosis) -> list[DeadOpportunity]:
    """The diagnosis's dead opportunities (open, untouched for more than 14 days), oldest first."""
    dead = getattr(diagnosis, "dead", None)
    if dead is None or dead.empty:
        return []
    return [DeadOpportunity(opp_id=str(r.opp_id), account=str(r.account_id) if isinstance(r.account_id, str) else "",
                            amount=_num(r.amount), days_since_touch=round(float(r.days_since_touch), 1))
            for r in dead.itertuples()]


def _target(metric: str, row: pd.Series, policy: Policy, diagnosis, drivers: dict[str, Target]) -> Target:
    """One target: the policy's rule, moved toward the peers for an area short of them; the win rate from the
    driver targets through the funnel; the glide path from a baseline that did not select the rep.

    A focus target is set on an area short of peers, or by a standard of the policy that applies to every rep
    (a range, a floor or a cap) the rep does not meet, and its rule says which; an area with neither is
    monitored, never a focus. Every number of the rule's sentence is a value the target records (``basis``).
    """
    rule = policy.targets[metric]
    spec = METRICS[metric]
    current, median = _num(row["value"]), _num(row["peer_median"])
    up = spec.higher_is_better
    base = current if current is not None else (median or 0.0)
    short = metric in diagnosis.improvement_areas or (metric == "win_rate" and row["flag"] == "shortfall")
    goal, text, lo, hi = _rule_goal(rule, base, median, spec)
    basis: dict[str, float | None] = {"rule_target": goal}
    if metric == "win_rate" and short:
        goal, text, funnel = _funnel_win_rate(goal, text, base, spec, diagnosis, drivers)
        basis.update(funnel)
    better = (lambda a, b: a > b + 1e-12) if up else (lambda a, b: a < b - 1e-12)
    standard = rule.rule in ("range", "at_most", "at_least")        # the same for every rep
    if short and median is not None and not better(goal, base):
        moved = base + policy.peer_gap_share * (median - base)
        text += (f"; short of peers, so the target moves {policy.peer_gap_share:.0%} of the way from "
                 f"{spec.fmt(base)} toward the peers' median {spec.fmt(median)}: {spec.fmt(moved)}")
        goal = moved
    focus = short or (standard and current is not None and better(goal, base))
    if not short and focus:
        standard_text = text.replace("between ", "", 1).replace(" and ", " to ", 1) if rule.rule == "range" else text
        text = (f"the policy's standard of {standard_text}, which applies to every rep; the rep is at "
                f"{spec.fmt(base)} (no shortfall against peers beyond noise)")
    elif not short and not better(goal, base):
        text += f"; already at {spec.fmt(base)}: the target is to stay at or beyond it"
    elif not short:
        text += ("; not a focus: no shortfall against peers beyond noise, so this is monitored, not an "
                 "improvement the plan asks for")
    start = _glide_start(diagnosis.prior.get(metric), base, goal, up)
    glide = [round(start + (goal - start) * w / policy.plan_weeks, 6)
             for w in [*policy.checkpoints, policy.plan_weeks]]
    text += _glide_text(spec, start, base, goal, diagnosis.prior.get(metric))
    return Target(
        metric=metric, label=spec.label, direction="at_least" if up else "at_most",
        baseline=round(start, 6), target=round(goal, 6), min=lo, max=hi, glide=glide, focus=focus,
        rule=f"{spec.label}: {text}.",
        basis={"baseline": current, "prior": diagnosis.prior.get(metric), "peer_median": median,
               "peer_p25": _num(row["peer_p25"]), "peer_p75": _num(row["peer_p75"]),
               "n_peers": _num(row["n_peers"]), **basis})


def _glide_text(spec, start: float, base: float, goal: float, prior: float | None) -> str:
    """Where the glide path starts, and why: the level before the diagnosis, or the target itself when that
    level already meets it (the window that selected the rep is not a fair starting point)."""
    if spec.fmt(start) == spec.fmt(base):
        return ""
    if prior is not None and np.isfinite(prior) and spec.fmt(start) == spec.fmt(prior):
        return (f"; the glide path starts from {spec.fmt(start)}, the level in the weeks before the diagnosis "
                "(the window that selected the rep is not a fair starting point)")
    return (f"; the glide path stays at the target {spec.fmt(goal)} throughout: the level in the weeks before the "
            f"diagnosis, {spec.fmt(prior)}, already meets it")


def _rule_goal(rule, base: float, median: float | None, spec) -> tuple[float, str, float | None, float | None]:
    lo = hi = None
    if rule.rule == "peer_median":
        goal = median if median is not None else base
        text = f"the peers' median {spec.fmt(goal)}"
    elif rule.rule == "close_gap":
        ref = median if median is not None else base
        goal = base + rule.share * (ref - base)
        text = (f"{rule.share:.0%} of the way from the rep's {spec.fmt(base)} to the peers' median "
                f"{spec.fmt(ref)}: {spec.fmt(goal)}")
    elif rule.rule == "range":
        lo, hi = rule.min, rule.max
        goal = lo if lo is not None else base
        text = f"between {spec.fmt(lo)} and {spec.fmt(hi)}"
    elif rule.rule == "at_most":
        goal, hi = rule.max, rule.max
        text = f"at most {spec.fmt(goal)} on average"
    else:
        goal, lo = rule.min, rule.min
        text = f"at least {spec.fmt(goal)}"
    return goal, text, lo, hi


def _funnel_win_rate(fair: float, fair_text: str, base: float, spec, diagnosis,
                     drivers: dict[str, Target]) -> tuple[float, str, dict[str, float]]:
    """The win rate the driver targets lead to (the article's "based on the previous actions"), no higher than
    the fair-increase rule: target first meetings × target follow-up ratio × wins per follow-up, over the deals
    the rep closes a week. Returns the goal, its sentence and the numbers the sentence uses."""
    card = diagnosis.card[diagnosis.card["rep_id"] == diagnosis.rep_id].set_index("metric")
    needed = ("first_meetings_per_week", "followup_meeting_ratio", "win_rate")
    if not all(m in card.index and m in drivers for m in needed[:2]) or "win_rate" not in card.index:
        return fair, fair_text, {}
    weeks = float(diagnosis.weeks)
    wins, closed = float(card.loc["win_rate", "numerator"]), float(card.loc["win_rate", "denominator"])
    followups = float(card.loc["followup_meeting_ratio", "numerator"])
    if followups < 1 or closed <= 0 or wins <= 0:
        return fair, fair_text, {}
    per_followup = wins / followups
    meetings, ratio = drivers["first_meetings_per_week"].target, drivers["followup_meeting_ratio"].target
    expected = meetings * ratio * per_followup
    derived = expected / (closed / weeks)
    funnel = (f"from the driver targets: {meetings:.2f} first meetings a week × {ratio:.0%} followed up × "
              f"{per_followup:.0%} of follow-ups won = {expected:.2f} wins a week, over {closed / weeks:.2f} deals "
              f"closed a week = {spec.fmt(derived)}")
    if derived <= base:
        goal, text = fair, f"{funnel}, no higher than now, so the target is the fair increase ({fair_text})"
    elif derived > fair:
        goal, text = fair, f"{funnel}, capped by the fair increase ({fair_text})"
    else:
        goal, text = derived, f"{funnel}, within the fair increase ({fair_text})"
    numbers = {"first_meetings_target": meetings, "followup_ratio_target": ratio, "wins_per_followup": per_followup,
               "wins_per_week": expected, "closed_per_week": closed / weeks, "funnel_target": derived,
               "fair_target": fair}
    return goal, text, numbers


def _glide_start(prior: float | None, current: float, goal: float, up: bool) -> float:
    """Where the glide path starts: the level before the window that selected the rep, never past the goal."""
    if prior is None or not np.isfinite(prior):
        return current
    return min(prior, goal) if up else max(prior, goal)


def _num(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
