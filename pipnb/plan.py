"""Policy and plan: targets computed from data, a glide path, the timeline, and the plan YAML.

The article's second step. :func:`draft_plan` turns a :class:`~pipnb.diagnosis.Diagnosis` into a
:class:`Plan` by the rules of ``params/policy.yaml``; each target states its rule and the numbers it came
from. A plan is saved as ``params/plans/<rep>.yaml`` — the contract between stages — and validated on load.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from pipnb.peers import fmt
from pipnb.policy import Policy, RangeModel, StrictModel, check_checkpoints, load_yaml_model, resolve_policy
from pipnb.schema import METRICS, PLAN_METRICS

STATUSES = ("draft", "active", "acknowledged", "extended", "completed", "not-completed")
# -- plan ---------------------------------------------------------------------------------------
class Target(RangeModel):
    """One plan target: where the rep starts, where they must get to, and how that was decided."""

    metric: str
    label: str
    direction: Literal["at_least", "at_most"]
    baseline: float | None
    target: float
    glide: list[float]             # targets at each checkpoint, then the final target
    focus: bool                    # an improvement area of the diagnosis
    rule: str                      # the rule in words, with the numbers it used
    basis: dict[str, float | None] = {}

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric '{value}' (use one of {', '.join(PLAN_METRICS)})")
        return value

    def reached(self, actual: float, goal: float) -> bool:
        if actual is None or not np.isfinite(actual):
            return False
        return actual >= goal - 1e-9 if self.direction == "at_least" else actual <= goal + 1e-9


class Window(StrictModel):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Area(StrictModel):
    metric: str
    classification: str
    rationale: str
    evidence: str
    explains: float | None = None


class HistoryEntry(StrictModel):
    date: dt.date
    status: Literal[STATUSES]  # type: ignore[valid-type]
    note: str = ""


class Plan(StrictModel):
    """A performance improvement plan, as stored in ``params/plans/<rep>.yaml``.

    Example
    -------
    >>> plan = Plan.from_yaml("params/plans/R07.yaml")     # doctest: +SKIP
    >>> plan.checkpoint_dates()                             # doctest: +SKIP
    """

    rep_id: str
    rep_name: str
    team: str
    status: Literal[STATUSES] = "draft"  # type: ignore[valid-type]
    start: dt.date
    weeks: int = Field(ge=2, le=52)
    checkpoints: list[int]
    diagnosis_window: Window
    win_rate_basis: Literal["all", "closed"] = "all"
    peer_by: Literal["team", "segment", "all"] = "team"
    data_fingerprint: str
    source: str = ""
    summary: str = ""
    improvement_areas: list[Area] = []
    targets: list[Target]
    consequences: list[str] = []
    resources: list[str] = []
    coaching: list[str] = []
    history: list[HistoryEntry] = []

    @model_validator(mode="after")
    def _consistent(self):
        check_checkpoints(self.checkpoints, self.weeks)
        for target in self.targets:
            if len(target.glide) != len(self.checkpoints) + 1:
                raise ValueError(f"target {target.metric}: glide has {len(target.glide)} values, the plan has "
                                 f"{len(self.checkpoints)} checkpoints and a final review")
        if self.diagnosis_window.end >= self.start:
            raise ValueError(f"diagnosis_window ends {self.diagnosis_window.end}, on or after the plan start "
                             f"{self.start}")
        return self

    # -- timeline ---------------------------------------------------------------------------
    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(weeks=self.weeks, days=-1)

    def stages(self) -> list[str]:
        """The plan's reviews in order, ``checkpoint-1`` … ``checkpoint-N`` and ``final`` (see :mod:`pipnb.stages`)."""
        from pipnb.stages import review_stages

        return review_stages(len(self.checkpoints))

    def checkpoint_week(self, checkpoint: int | str) -> int:
        """Plan week a review closes: ``checkpoint`` is a number, ``"checkpoint-N"`` or ``"final"``."""
        from pipnb.stages import FINAL, checkpoint_number, parse_stage

        stage = parse_stage(checkpoint, len(self.checkpoints))
        return self.weeks if stage == FINAL else self.checkpoints[checkpoint_number(stage) - 1]

    def look_fractions(self) -> list[float]:
        """Information fraction of each review (checkpoint week ÷ plan weeks; the final review 1.0)."""
        return [w / self.weeks for w in self.checkpoints] + [1.0]

    def checkpoint_dates(self) -> dict[str, dt.date]:
        """Last day of each review's window, by stage name (the checkpoints', then the final review's)."""
        weeks = [*self.checkpoints, self.weeks]
        return {stage: self.start + dt.timedelta(weeks=w, days=-1) for stage, w in zip(self.stages(), weeks)}

    def target(self, metric: str) -> Target:
        return next(t for t in self.targets if t.metric == metric)

    # -- files ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> Plan:
        """Load and validate a plan YAML; a problem raises :class:`PlanError` naming the key."""
        return load_yaml_model(cls, Path(path))

    def to_yaml(self, path: str | Path) -> Path:
        """Write the plan atomically as YAML (dates as ISO strings, keys in a stable order)."""
        import yaml

        from pipnb.io import atomic_write_text

        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100)
        return atomic_write_text(path, _PLAN_HEADER + text)

    def with_status(self, status: str, *, on: dt.date | None = None, note: str = "") -> Plan:
        """A copy with a new status and a history entry."""
        entry = HistoryEntry(date=on or dt.date.today(), status=status, note=note)
        return self.model_copy(update={"status": status, "history": [*self.history, entry]})


_PLAN_HEADER = ("# pipnb performance improvement plan. A manager may edit the text, the targets and the status;\n"
                "# every later stage reads this file and validates it (unknown keys and bad dates are errors).\n")


# -- drafting -----------------------------------------------------------------------------------
def draft_plan(diagnosis, start: str | dt.date | None = None, policy: Policy | str | Path | None = None) -> Plan:
    """Draft a plan from a diagnosis: targets by the policy's rules, a glide path, the timeline.

    Parameters
    ----------
    diagnosis
        From :func:`pipnb.diagnose` (:mod:`pipnb.diagnosis`).
    start
        First day of the plan (default: the Monday after the diagnosis window).
    policy
        A :class:`Policy`, or a path to a policy YAML (default ``params/policy.yaml``).

    Returns
    -------
    Plan
        With ``status: draft``.
    """
    policy = resolve_policy(policy)
    start = pd.Timestamp(start).date() if start is not None else (
        pd.Timestamp(diagnosis.window_end) + pd.Timedelta(days=1)).date()
    card = diagnosis.card[diagnosis.card["rep_id"] == diagnosis.rep_id].set_index("metric")
    targets: dict[str, Target] = {}
    for metric in sorted(PLAN_METRICS, key=lambda m: m == "win_rate"):       # the drivers first: the win
        if metric in card.index and metric in policy.targets and card.loc[metric, "flag"] != "unavailable":
            targets[metric] = _target(metric, card.loc[metric], policy, diagnosis, targets)   # rate uses them
    targets = [targets[m] for m in PLAN_METRICS if m in targets]
    if not any(t.focus for t in targets):      # nothing flagged: the areas are what the plan asks to change
        targets = [t.model_copy(update={"focus": _asks_change(t)}) for t in targets]
    areas = [Area(metric=r.metric, classification=r.classification, rationale=r.rationale, evidence=r.evidence,
                  explains=None if not np.isfinite(r.explains) else round(float(r.explains), 3))
             for r in diagnosis.drivers.itertuples()]
    window_end = min(pd.Timestamp(diagnosis.window_end).date(), start - dt.timedelta(days=1))
    return Plan(
        rep_id=diagnosis.rep_id, rep_name=diagnosis.rep_name, team=diagnosis.team, status="draft",
        start=start, weeks=policy.plan_weeks, checkpoints=policy.checkpoints,
        diagnosis_window=Window(start=pd.Timestamp(diagnosis.window_start).date(), end=window_end),
        win_rate_basis=diagnosis.win_rate_basis, peer_by=diagnosis.peer_by,
        data_fingerprint=diagnosis.data_fingerprint, source=diagnosis.source, summary=diagnosis.summary(),
        improvement_areas=areas, targets=targets, consequences=policy.consequences,
        resources=policy.resources, coaching=policy.coaching,
        history=[HistoryEntry(date=pd.Timestamp(diagnosis.as_of).date(), status="draft",
                              note="drafted by pipnb from the diagnosis")])


def _target(metric: str, row: pd.Series, policy: Policy, diagnosis, drivers: dict[str, Target]) -> Target:
    """One target: the policy's rule, moved toward the peers for an area flagged against them; the win
    rate from the driver targets through the funnel; the glide path from a baseline that did not select
    the rep."""
    rule = policy.targets[metric]
    spec = METRICS[metric]
    current = float(row["value"]) if np.isfinite(row["value"]) else None
    median = float(row["peer_median"]) if np.isfinite(row["peer_median"]) else None
    up = spec.higher_is_better
    base = current if current is not None else (median or 0.0)
    focus = metric in diagnosis.improvement_areas or (metric == "win_rate" and row["flag"] == "shortfall")
    goal, text, lo, hi = _rule_goal(rule, base, median, spec)
    if metric == "win_rate" and focus:
        goal, text = _funnel_win_rate(goal, text, base, spec, diagnosis, drivers)
    better = (lambda a, b: a > b) if up else (lambda a, b: a < b)
    if focus and median is not None and not better(goal, base):
        goal = base + policy.peer_gap_share * (median - base)
        text += (f"; flagged against peers, so the target moves {policy.peer_gap_share:.0%} of the way from "
                 f"{fmt(base, spec)} toward the peers' median {fmt(median, spec)}")
    elif not focus and better(base, goal):
        text += f"; already at {fmt(base, spec)}: the target is to stay at or beyond the standard"
    start = _glide_start(diagnosis.prior.get(metric), base, goal, up)
    glide = [round(start + (goal - start) * w / policy.plan_weeks, 6)
             for w in [*policy.checkpoints, policy.plan_weeks]]
    if start != base:
        text += (f"; the glide path starts from {fmt(start, spec)}, the level in the weeks before the diagnosis "
                 "(the window that selected the rep is not a fair starting point)")
    return Target(
        metric=metric, label=spec.label, direction="at_least" if up else "at_most",
        baseline=round(start, 6), target=round(goal, 6), min=lo, max=hi, glide=glide, focus=focus,
        rule=f"{spec.label}: {text}.",
        basis={"baseline": current, "prior": diagnosis.prior.get(metric), "peer_median": median,
               "peer_p25": _num(row["peer_p25"]), "peer_p75": _num(row["peer_p75"]),
               "n_peers": _num(row["n_peers"])})


def _rule_goal(rule, base: float, median: float | None, spec) -> tuple[float, str, float | None, float | None]:
    lo = hi = None
    if rule.rule == "peer_median":
        goal = median if median is not None else base
        text = f"the peers' median {fmt(goal, spec)}"
    elif rule.rule == "close_gap":
        ref = median if median is not None else base
        goal = base + rule.share * (ref - base)
        text = (f"{rule.share:.0%} of the way from the baseline {fmt(base, spec)} to the peers' median "
                f"{fmt(ref, spec)}")
    elif rule.rule == "range":
        lo, hi = rule.min, rule.max
        goal = lo if lo is not None else base
        text = f"between {fmt(lo, spec)} and {fmt(hi, spec)}"
    elif rule.rule == "at_most":
        goal, hi = rule.max, rule.max
        text = f"fewer than {fmt(goal, spec)} on average"
    else:
        goal, lo = rule.min, rule.min
        text = f"at least {fmt(goal, spec)}"
    return goal, text, lo, hi


def _funnel_win_rate(fair: float, fair_text: str, base: float, spec, diagnosis,
                     drivers: dict[str, Target]) -> tuple[float, str]:
    """The win rate the driver targets lead to (the article's "based on the previous actions"), capped by
    the fair-increase rule: target first meetings × target follow-up ratio × wins per follow-up, over the
    deals the rep closes a week."""
    card = diagnosis.card[diagnosis.card["rep_id"] == diagnosis.rep_id].set_index("metric")
    needed = ("first_meetings_per_week", "followup_meeting_ratio", "win_rate")
    if not all(m in card.index and m in drivers for m in needed[:2]) or "win_rate" not in card.index:
        return fair, fair_text
    weeks = float(diagnosis.weeks)
    wins, closed = float(card.loc["win_rate", "numerator"]), float(card.loc["win_rate", "denominator"])
    followups = float(card.loc["followup_meeting_ratio", "numerator"])
    if followups < 1 or closed <= 0 or wins <= 0:
        return fair, fair_text
    per_followup = wins / followups
    meetings, ratio = drivers["first_meetings_per_week"].target, drivers["followup_meeting_ratio"].target
    expected = meetings * ratio * per_followup
    derived = expected / (closed / weeks)
    goal = min(derived, fair) if derived > base else fair
    text = (f"from the driver targets: {meetings:.1f} first meetings a week × {ratio:.0%} followed up × "
            f"{per_followup:.0%} of follow-ups won = {expected:.2f} wins a week over {closed / weeks:.1f} deals "
            f"closed a week = {fmt(derived, spec)}; capped by the fair increase ({fair_text}) at "
            f"{fmt(goal, spec)}")
    return goal, text


def _asks_change(target: Target, material: float = 0.05) -> bool:
    """Whether a target asks for a material change (5%) from where its glide path starts."""
    if target.baseline is None or target.baseline == 0:
        return False
    change = (target.target - target.baseline) / abs(target.baseline)
    return change > material if target.direction == "at_least" else change < -material


def _glide_start(prior: float | None, current: float, goal: float, up: bool) -> float:
    """Where the glide path starts: the level before the window that selected the rep, never past the goal."""
    if prior is None or not np.isfinite(prior):
        return current
    return min(prior, goal) if up else max(prior, goal)


def _num(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
