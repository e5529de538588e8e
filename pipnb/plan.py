"""Policy and plan: targets computed from data, a glide path, the timeline, and the plan YAML.

The article's second step. :func:`draft_plan` turns a :class:`~pipnb.diagnosis.Diagnosis` into a
:class:`Plan` by the rules of ``params/policy.yaml``; each target states its rule and the numbers it came
from. A plan is saved as ``params/plans/<rep>.yaml`` — the contract between stages — and validated on load.

A plan's lifecycle is signed: :meth:`Plan.transition` (``pipnb plan activate|acknowledge|extend|complete|close
REP --by NAME``) checks the step (draft → active → acknowledged → extended → completed / not-completed),
appends who, when and why to its history, and on activation (or extension) locks its targets and dates: a
:class:`Lock` holds the signed terms and their hash. :meth:`Plan.check_lock` names any later edit of them in
one line; every review calls it, and refuses an edited plan until it is re-activated with a reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from pipnb.errors import PlanError
from pipnb.peers import fmt
from pipnb.policy import Policy, RangeModel, StrictModel, check_checkpoints, load_yaml_model, resolve_policy
from pipnb.schema import METRICS, PLAN_METRICS

STATUSES = ("draft", "active", "acknowledged", "extended", "completed", "not-completed")
#: The signed steps of a plan's lifecycle: the statuses each may start from, and the status it leads to.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "activate": (("draft", "active", "acknowledged", "extended"), "active"),
    "acknowledge": (("active",), "acknowledged"),
    "extend": (("active", "acknowledged", "extended"), "extended"),
    "complete": (("active", "acknowledged", "extended"), "completed"),
    "close": (("active", "acknowledged", "extended"), "not-completed"),
}
#: What activation locks: the dates, the settings that judge the plan, and every target's numbers.
LOCKED_FIELDS = ("rep_id", "start", "weeks", "checkpoints", "diagnosis_window", "win_rate_basis", "peer_by")
DATA_GRACE_DAYS = 2      # a review is due when the data reaches its last day less a weekend
LOCKED_TARGET_FIELDS = ("direction", "baseline", "target", "min", "max", "glide", "focus")
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


class DeadOpportunity(StrictModel):
    """An open opportunity of the rep untouched for more than 14 days at the end of the diagnosis: the plan asks
    the rep to close it out or re-engage it by checkpoint 1."""

    opp_id: str
    account: str = ""
    amount: float | None = None
    days_since_touch: float


class HistoryEntry(StrictModel):
    """One step of the plan's life: the status it led to, on which day, who signed it, why, and when exactly
    (``at``, UTC); an activation or an extension also names the hash of the lock it set."""

    date: dt.date
    status: Literal[STATUSES]  # type: ignore[valid-type]
    by: str = ""
    note: str = ""
    at: dt.datetime | None = None
    lock: str = ""


class Lock(StrictModel):
    """The terms a plan was activated with (:data:`LOCKED_FIELDS` and the targets' numbers), who locked them
    and when, and the SHA-256 of all that (``sha256``): an edit to the plan, or to the lock itself, shows. Every
    signed step also seals the status and the history (``record``), so neither can be rewritten by hand."""

    sha256: str
    on: dt.date
    by: str
    record: str = ""
    terms: dict[str, Any]

    @staticmethod
    def digest(terms: dict[str, Any], on: dt.date, by: str) -> str:
        text = json.dumps({"terms": terms, "on": f"{on}", "by": by}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @staticmethod
    def seal(status: str, history: list[HistoryEntry]) -> str:
        raw = {"status": status, "history": [h.model_dump(mode="json") for h in history]}
        return hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Plan(StrictModel):
    """A performance improvement plan, as stored in ``params/plans/<rep>.yaml``.

    Example
    -------
    >>> plan = Plan.from_yaml("params/plans/R07.yaml")     # doctest: +SKIP
    >>> plan.checkpoint_dates()                             # doctest: +SKIP
    """

    rep_id: str = Field(min_length=1)
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
    dead_opportunities: list[DeadOpportunity] = []
    history: list[HistoryEntry] = []
    lock: Lock | None = None

    @field_validator("targets")
    @classmethod
    def _some_targets(cls, targets: list[Target]) -> list[Target]:
        if not targets:
            raise ValueError("a plan needs at least one target (the list is empty)")
        seen = [t.metric for t in targets]
        twice = sorted({m for m in seen if seen.count(m) > 1})
        if twice:
            raise ValueError(f"{twice[0]} has two targets; keep one")
        return targets

    @model_validator(mode="after")
    def _consistent(self):
        try:
            self.start + dt.timedelta(weeks=self.weeks)
        except OverflowError:
            raise ValueError(f"start {self.start} leaves no room for a {self.weeks}-week plan (use a real start "
                             "date, YYYY-MM-DD)") from None
        check_checkpoints(self.checkpoints, self.weeks)
        for target in self.targets:
            if len(target.glide) != len(self.checkpoints) + 1:
                raise ValueError(f"target {target.metric}: glide has {len(target.glide)} values, the plan has "
                                 f"{len(self.checkpoints)} checkpoints and a final review")
        if self.diagnosis_window.end >= self.start:
            raise ValueError(f"diagnosis_window ends {self.diagnosis_window.end}, on or after the plan start "
                             f"{self.start}")
        return self

    # -- display (Jupyter) -------------------------------------------------------------------
    def __repr__(self) -> str:
        from pipnb.display import plan_facts, short_repr

        return short_repr("Plan", plan_facts(self))

    def _repr_html_(self) -> str:
        from pipnb.display import card_html, plan_facts

        return card_html("Plan", plan_facts(self))

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

    def data_reaches(self, stage: str, data_end: dt.date) -> bool:
        """Whether data ending on ``data_end`` covers the review ``stage``: its last day, less a weekend
        without activity (which is not missing data). The one rule for :func:`pipnb.review` and batch runs."""
        return data_end >= self.checkpoint_dates()[stage] - dt.timedelta(days=DATA_GRACE_DAYS)

    def target(self, metric: str) -> Target:
        return next(t for t in self.targets if t.metric == metric)

    # -- files ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> Plan:
        """Load and validate a plan YAML; a problem raises :class:`PlanError` naming the key.

        A file that is not UTF-8 text or cannot be read is a :class:`PlanError` too (one line).
        """
        path = Path(path)
        try:
            return load_yaml_model(cls, path)
        except UnicodeDecodeError as err:
            raise PlanError(f"not UTF-8 text (byte 0x{err.object[err.start]:02x} at position {err.start}); save "
                            "it as UTF-8", file=str(path)) from None
        except OSError as err:
            raise PlanError(f"cannot be read ({err.strerror or err})", file=str(path)) from None

    def to_yaml(self, path: str | Path) -> Path:
        """Write the plan atomically as YAML (dates as ISO strings, keys in a stable order).

        The lock's terms are written on one line, in flow style: they are the signed copy, not for editing.
        """
        import yaml

        from pipnb.io import atomic_write_text

        raw = self.model_dump(mode="json")
        lock = raw.pop("lock")
        text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
        if lock is not None:
            terms = lock.pop("terms")
            text += yaml.safe_dump({"lock": lock}, sort_keys=False, allow_unicode=True, width=100)
            text += "  terms: " + yaml.safe_dump(terms, default_flow_style=True, allow_unicode=True,
                                                 width=1_000_000, sort_keys=True).strip() + "\n"
        return atomic_write_text(path, _PLAN_HEADER + text)

    def with_status(self, status: str, *, on: dt.date | None = None, note: str = "") -> Plan:
        """A copy with a new status and a history entry, unsigned and unchecked (see :meth:`transition`)."""
        entry = HistoryEntry(date=on or dt.date.today(), status=status, note=note)
        return self.model_copy(update={"status": status, "history": [*self.history, entry]})

    # -- the signed lifecycle ---------------------------------------------------------------------
    def terms(self) -> dict[str, Any]:
        """What activation locks (:data:`LOCKED_FIELDS`, and per target :data:`LOCKED_TARGET_FIELDS`), as plain
        JSON values."""
        raw = self.model_dump(mode="json")
        terms = {key: raw[key] for key in LOCKED_FIELDS}
        terms["targets"] = {t["metric"]: {k: t[k] for k in LOCKED_TARGET_FIELDS} for t in raw["targets"]}
        return terms

    def content_hash(self) -> str:
        """The SHA-256 of what a review reads from the plan: everything but its status, history and lock (a
        signature changes none of a review's numbers)."""
        raw = self.model_dump(mode="json", exclude={"status", "history", "lock"})
        if not raw["dead_opportunities"]:       # plans drafted before the list existed keep their hash
            del raw["dead_opportunities"]
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()

    def transition(self, action: str, *, by: str, note: str = "", on: dt.date | None = None,
                   extension_weeks: int | None = None) -> Plan:
        """The plan after one signed step of its lifecycle.

        Parameters
        ----------
        action
            ``activate``, ``acknowledge``, ``extend``, ``complete`` or ``close`` (see :data:`TRANSITIONS`).
        by
            Who signs the step (recorded in the history).
        note
            Why; required to re-activate a plan that was activated before.
        on
            The day recorded (default today); the history also records the exact time.
        extension_weeks
            ``extend`` only: the weeks added to the plan (the policy's ``review.extension_weeks``).

        Returns
        -------
        Plan
            A validated copy: the new status, a history entry, and for ``activate`` and ``extend`` a new lock.

        Raises
        ------
        PlanError
            A step the plan's status does not allow, a missing signature or reason, a plan edited since it
            was locked (for any step but ``activate``), or an extension past 52 weeks.
        """
        if action not in TRANSITIONS:
            raise PlanError(f"'{action}' is not a step of a plan's lifecycle (use {', '.join(TRANSITIONS)})")
        sources, status = TRANSITIONS[action]
        by, note = " ".join(str(by).split()), " ".join(str(note).split())
        if not by:
            raise PlanError(f"say who signs this step: pipnb plan {action} {self.rep_id} --by NAME")
        if self.status not in sources:
            allowed = ", ".join(s for s, (starts, _) in TRANSITIONS.items() if self.status in starts) or "none"
            raise PlanError(f"the plan of {self.rep_id} is {self.status}: it cannot {action} (steps allowed from "
                            f"{self.status}: {allowed})")
        on = on or dt.date.today()
        update: dict[str, Any] = {"status": status}
        lines = []
        if action == "activate":
            before = self.edits()
            if self.signed_activation() is not None:
                if not note:
                    raise PlanError(f"the plan of {self.rep_id} was activated before: say why it is re-activated "
                                    f"with --note (what changed: {before or 'nothing'})")
                lines.append(f"re-activated; changed since the last lock: {before or 'nothing'}")
        else:
            self.check_lock(signed=True)
        if action == "extend":
            if not extension_weeks or extension_weeks < 1:
                raise PlanError("an extension needs a number of weeks (the policy's review.extension_weeks)")
            update["weeks"] = self.weeks + int(extension_weeks)
            new_end = self.start + dt.timedelta(weeks=update["weeks"], days=-1)
            lines.append(f"extended by {extension_weeks} weeks: the plan now ends {new_end} (was {self.end})")
        try:
            plan = self._validated(update)
        except PlanError as err:
            raise PlanError(f"cannot {action} the plan of {self.rep_id}: {err}") from None
        if action in ("activate", "extend"):
            terms = plan.terms()
            lock = Lock(sha256=Lock.digest(terms, on, by), on=on, by=by, terms=terms)
            plan = plan.model_copy(update={"lock": lock})
        entry = HistoryEntry(date=on, status=status, by=by, note="; ".join([*lines, note] if note else lines),
                             at=dt.datetime.now(dt.UTC).replace(microsecond=0),
                             lock=plan.lock.sha256[:12] if action in ("activate", "extend") else "")
        history = [*plan.history, entry]
        sealed = plan.lock.model_copy(update={"record": Lock.seal(status, history)})
        return plan.model_copy(update={"history": history, "lock": sealed})

    def signed_activation(self) -> HistoryEntry | None:
        """The last history entry that locked the plan (an activation or an extension), or None."""
        return next((h for h in reversed(self.history) if h.lock), None)

    def edits(self) -> str | None:
        """What changed since the plan was locked, in one line; None when it is as signed (or never was)."""
        if self.lock is None:
            signed = self.signed_activation()
            return None if signed is None else f"its lock was removed (locked {signed.date} by {signed.by})"
        if Lock.digest(self.lock.terms, self.lock.on, self.lock.by) != self.lock.sha256:
            return "its lock was edited (the signed terms no longer match their hash)"
        changes = _differences(self.lock.terms, self.terms())
        if changes:
            more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
            return ", ".join(changes[:3]) + more
        if self.history and self.history[-1].status != self.status:
            return (f"its status was set to {self.status} by hand (the history ends with {self.history[-1].status}; "
                    "use pipnb plan to change it)")
        if self.lock.record and Lock.seal(self.status, self.history) != self.lock.record:
            return (f"its status ({self.status}) or its history was edited by hand (they no longer match what the "
                    "last signed step sealed; use pipnb plan to change them)")
        return None

    def check_lock(self, *, file: str | None = None, signed: bool = False) -> None:
        """Refuse a plan edited since it was locked: one :class:`PlanError` line saying what changed.

        With ``signed``, a plan that was never locked is refused too (a lifecycle step needs an activation).
        """
        edit = self.edits()
        if edit is not None:
            locked = f" (locked {self.lock.on} by {self.lock.by})" if self.lock is not None else ""
            raise PlanError(f"the plan of {self.rep_id} was edited after it was locked{locked}: {edit}; re-activate "
                            f"it with a reason to accept the change: pipnb plan activate {self.rep_id} --by NAME "
                            "--note WHY", file=file)
        if signed and self.lock is None:
            raise PlanError(f"the plan of {self.rep_id} was never activated with its targets locked: activate it "
                            f"first: pipnb plan activate {self.rep_id} --by NAME", file=file)

    def data_notes(self, data, *, now: str | None = None) -> list[str]:
        """Sentences saying when the data behind the plan (up to the end of its diagnosis) is no longer the data
        it was drafted from; ``[]`` when it is. Data added after the diagnosis changes nothing here. ``now``:
        the data's fingerprint up to the end of the diagnosis when already known (a batch keeps them)."""
        from pipnb.fingerprint import fingerprint_until

        end = self.diagnosis_window.end
        if not self.data_fingerprint or (now is None and self.data_fingerprint == data.fingerprint()):
            return []
        now = now or fingerprint_until(data, end)
        if now == self.data_fingerprint:
            return []
        return [f"The data behind this plan (up to {end:%d %b %Y}, the end of its diagnosis) is not the data it "
                f"was drafted from: rows dated on or before that day were added, changed or removed since "
                f"(fingerprint {self.data_fingerprint[:8]}, now {now[:8]}); its baseline and targets may no "
                "longer match the data."]

    def _validated(self, update: dict[str, Any]) -> Plan:
        try:
            return type(self).model_validate({**self.model_dump(), **update})
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or None
            raise PlanError(first["msg"].removeprefix("Value error, "), key=key) from None


def _differences(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: old → new`` for every locked value that differs (nested keys dotted)."""
    out = []
    for key in sorted(set(before) | set(after), key=str):
        name = f"{prefix}{key}"
        if key not in after:
            out.append(f"{name} removed")
        elif key not in before:
            out.append(f"{name} added")
        elif isinstance(before[key], dict) and isinstance(after[key], dict):
            out += _differences(before[key], after[key], f"{name}.")
        elif before[key] != after[key]:
            out.append(f"{name} {_short(before[key])} → {_short(after[key])}")
    return out


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


_PLAN_HEADER = ("# pipnb performance improvement plan. A manager may edit the text of a draft, its targets and its\n"
                "# dates; `pipnb plan activate REP --by NAME` locks the targets and dates (the `lock:` at the end is\n"
                "# the signed copy: an edit is refused by every review until the plan is re-activated with a reason).\n"
                "# Change the status with `pipnb plan acknowledge|extend|complete|close REP --by NAME`.\n"
                "# Every later stage reads this file and validates it (unknown keys and bad dates are errors).\n")


# -- drafting -----------------------------------------------------------------------------------
def _plan_start(value: str | dt.date, day_after: dt.date) -> dt.date:
    """A plan's first day from a date or ``YYYY-MM-DD``; anything else is a :class:`PlanError` with a hint."""
    if isinstance(value, dt.date):
        return pd.Timestamp(value).date()         # a Timestamp or datetime is a date too: its day
    try:
        return pd.Timestamp(str(value)).date()
    except (ValueError, TypeError):
        monday = day_after + dt.timedelta(days=-day_after.weekday() % 7)
        raise PlanError(f"'{value}' is not a date: use YYYY-MM-DD, e.g. '{monday:%Y-%m-%d}' (the first "
                        f"Monday after the diagnosis window), or leave it out for the day after it "
                        f"({day_after:%Y-%m-%d})", key="start") from None


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
    from pipnb.diagnosis import Diagnosis

    if not isinstance(diagnosis, Diagnosis):
        raise PlanError(f"draft_plan takes a diagnosis, not a {type(diagnosis).__name__}: "
                        "pn.draft_plan(pn.diagnose(data, rep_id))")
    policy = resolve_policy(policy)
    day_after = (pd.Timestamp(diagnosis.window_end) + pd.Timedelta(days=1)).date()
    start = _plan_start(start, day_after) if start is not None else day_after
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
        resources=policy.resources, coaching=policy.coaching, dead_opportunities=_dead(diagnosis),
        history=[HistoryEntry(date=pd.Timestamp(diagnosis.as_of).date(), status="draft",
                              note="drafted by pipnb from the diagnosis")])


def _dead(diagnosis) -> list[DeadOpportunity]:
    """The diagnosis's dead opportunities (open, untouched for more than 14 days), oldest first."""
    dead = getattr(diagnosis, "dead", None)
    if dead is None or dead.empty:
        return []
    return [DeadOpportunity(opp_id=str(r.opp_id), account=str(r.account_id) if isinstance(r.account_id, str) else "",
                            amount=_num(r.amount), days_since_touch=round(float(r.days_since_touch), 1))
            for r in dead.itertuples()]


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
    """Whether a target asks for a material change (5%) from the diagnosis window's level.

    Judged on the diagnosis window, never on the weeks before it: those are the verdicts' baseline, and
    choosing the areas where that baseline happened to be low would make them "improve" by chance.
    """
    current = target.basis.get("baseline")
    if current is None or not np.isfinite(current) or current == 0:
        return False
    change = (target.target - current) / abs(current)
    return change > material if target.direction == "at_least" else change < -material


def _glide_start(prior: float | None, current: float, goal: float, up: bool) -> float:
    """Where the glide path starts: the level before the window that selected the rep, never past the goal."""
    if prior is None or not np.isfinite(prior):
        return current
    return min(prior, goal) if up else max(prior, goal)


def _num(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
