"""A plan's signed lifecycle: the steps, who signed them, and the lock on what was agreed.

:meth:`Lifecycle.transition` (``pipnb plan activate|acknowledge|extend|complete|close REP --by NAME``)
checks the step (draft → active → acknowledged → extended → completed / not-completed, :data:`TRANSITIONS`),
appends who, when and why to the plan's history, and on activation (or extension) locks its targets and dates:
a :class:`Lock` holds the signed terms and their hash. :meth:`Lifecycle.check_lock` names any later edit of
them in one line; every review calls it, and refuses an edited plan until it is re-activated with a reason.

:class:`Lifecycle` is the part of :class:`pipnb.plan.Plan` that does this (the plan document inherits it); it
reads only the plan's ``rep_id``, ``status``, ``start``, ``weeks``, ``end``, ``history``, ``lock``, ``reason``,
``targets`` and the fields :data:`LOCKED_FIELDS` names, so this module needs nothing of the plan module.

:meth:`Lifecycle.record_event` (``pipnb plan event REP --kind territory|leave|segment|other --date D --note TEXT
--by NAME``) signs a **plan event**: a change the rep does not control (a territory or account reassignment, a
leave, a segment or quota change). It is a history entry that keeps the plan's status and carries a
:class:`PlanEvent` (its kind, its dates and the plan metrics it affects, :data:`EVENT_METRICS`); it is sealed like
every signed step, so an event edited by hand shows in :meth:`Lifecycle.edits`. Reviews rebaseline the metrics
an event affects from its date, and set a leave's weeks aside (:mod:`pipnb.reviews`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Literal, Self

from pydantic import ValidationError, model_validator

from pipnb.dates import DateError, read_day
from pipnb.errors import PlanError
from pipnb.policy import StrictModel

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
LOCKED_TARGET_FIELDS = ("direction", "baseline", "target", "min", "max", "glide", "focus")

#: The kinds of plan event, and the plan metrics each affects (``other`` names its metrics with ``--metrics``).
#: A territory (or account) change moves how many accounts the rep can work, so the volume metrics: the
#: opportunities created, the meetings, the emails and the calls. A segment (or quota) change moves those and
#: the win rate (another segment closes at another rate). A leave affects every metric: its weeks are not plan
#: weeks.
VOLUME_METRICS = ("opps_created_per_week", "first_meetings_per_week", "meetings_per_week", "emails_per_week",
                  "calls_per_week")
EVENT_METRICS: dict[str, tuple[str, ...] | None] = {
    "territory": VOLUME_METRICS,
    "segment": (*VOLUME_METRICS, "win_rate"),
    "leave": None,              # every metric: the leave's weeks are set aside
    "other": (),                # the metrics named with --metrics
}
EVENT_KINDS = tuple(EVENT_METRICS)
#: Whole weeks a metric's new reference level is measured on after an event (from the event's week on, and at
#: least up to the plan start); until that many weeks exist, the metric is "not yet clear" and no consequence
#: rests on it. Plan weeks used to measure the reference are not judged on that metric.
MIN_EVENT_WEEKS = 4
#: The statuses a plan event can be signed on (a draft is redrafted or edited instead; a closed plan is closed).
EVENT_STATUSES = ("active", "acknowledged", "extended")


class PlanEvent(StrictModel):
    """A change the rep does not control, as a plan event records it: its kind (:data:`EVENT_KINDS`), the day it
    took effect (``start``), the last day of a leave (``end``; None for the other kinds) and the plan metrics it
    affects (every plan metric for a leave)."""

    kind: Literal[EVENT_KINDS]  # type: ignore[valid-type]
    start: dt.date
    end: dt.date | None = None
    metrics: list[str] = []

    @model_validator(mode="after")
    def _dated(self):
        if (self.kind == "leave") != (self.end is not None):
            raise ValueError("a leave needs its last day (end), and only a leave has one")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"the leave ends {self.end}, before it starts {self.start}")
        return self

    def weeks(self) -> int:
        """A leave's length in whole weeks (Monday of its first day to Monday of its last); 0 for other kinds."""
        if self.end is None:
            return 0
        return (_monday(self.end) - _monday(self.start)).days // 7 + 1


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


class HistoryEntry(StrictModel):
    """One step of the plan's life: the status it led to, on which day, who signed it, why, and when exactly
    (``at``, UTC); an activation or an extension also names the hash of the lock it set, a plan event the
    :class:`PlanEvent` it records (the status is then unchanged)."""

    date: dt.date
    status: Literal[STATUSES]  # type: ignore[valid-type]
    by: str = ""
    note: str = ""
    at: dt.datetime | None = None
    lock: str = ""
    event: PlanEvent | None = None

    def sealed(self) -> dict[str, Any]:
        """The entry as the seal reads it (an entry without an event as it was before events existed)."""
        return self.model_dump(mode="json", exclude={"event"} if self.event is None else None)


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
        raw = {"status": status, "history": [h.sealed() for h in history]}
        return hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Lifecycle:
    """The signed steps of a plan, mixed into the pydantic model :class:`pipnb.plan.Plan` (whose fields and
    ``model_copy`` / ``model_dump`` they use): each step returns a validated copy."""

    def with_status(self, status: str, *, on: dt.date | None = None, note: str = "") -> Self:
        """A copy with a new status and a history entry, unsigned and unchecked (see :meth:`transition`)."""
        entry = HistoryEntry(date=on or dt.date.today(), status=status, note=note)
        return self.model_copy(update={"status": status, "history": [*self.history, entry]})

    def terms(self) -> dict[str, Any]:
        """What activation locks (:data:`LOCKED_FIELDS`, and per target :data:`LOCKED_TARGET_FIELDS`), as plain
        JSON values."""
        raw = self.model_dump(mode="json")
        terms = {key: raw[key] for key in LOCKED_FIELDS}
        terms["targets"] = {t["metric"]: {k: t[k] for k in LOCKED_TARGET_FIELDS} for t in raw["targets"]}
        if raw.get("reason"):       # why a plan without a shortfall was drafted is part of what was signed
            terms["reason"] = raw["reason"]
        return terms

    def transition(self, action: str, *, by: str, note: str = "", on: dt.date | None = None,
                   extension_weeks: int | None = None) -> Self:
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
            A validated copy (of the plan's own class): the new status, a history entry, and for ``activate``
            and ``extend`` a new lock.

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
        on = _day(on, "on") or dt.date.today()
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

    def record_event(self, kind: str, *, on: dt.date, note: str, by: str, until: dt.date | None = None,
                     weeks: int | None = None, metrics: list[str] | tuple[str, ...] | None = None,
                     signed_on: dt.date | None = None) -> Self:
        """The plan with one signed plan event in its history (its status unchanged), sealed like every step.

        Parameters
        ----------
        kind
            ``territory``, ``leave``, ``segment`` or ``other`` (:data:`EVENT_KINDS`).
        on
            The day the change took effect: from the first day of the diagnosis window to the plan's last day.
        note
            What changed (required; kept in the history and stated by every review).
        by
            Who signs the event.
        until, weeks
            ``leave`` only, exactly one of them: its last day, or its length in weeks (from ``on``).
        metrics
            ``other`` only (required there): the plan metrics the change affects.
        signed_on
            The day recorded as signed (default today).

        Returns
        -------
        Plan
            A validated copy with the event appended to its history and the history sealed again.

        Raises
        ------
        PlanError
            A plan that is not active, acknowledged or extended (a draft is redrafted instead, a closed plan is
            closed), one edited since it was locked, a missing signer or note, a date outside the window, or a
            leave without its end (or a kind given metrics it does not take).
        """
        by, note = " ".join(str(by).split()), " ".join(str(note).split())
        on, until, signed_on = _day(on, "on"), _day(until, "until"), _day(signed_on, "signed_on")   # ISO only
        cmd = f"pipnb plan event {self.rep_id}"
        if kind not in EVENT_METRICS:
            raise PlanError(f"'{kind}' is not a kind of plan event (use {', '.join(EVENT_KINDS)})", key="kind")
        if self.status not in EVENT_STATUSES:
            how = ("while it is a draft, redraft it or edit its dates and targets, then activate it: pipnb plan "
                   f"activate {self.rep_id} --by NAME" if self.status == "draft" else "the plan is closed")
            raise PlanError(f"the plan of {self.rep_id} is {self.status}: an event is signed on an active, "
                            f"acknowledged or extended plan ({how})")
        if not by:
            raise PlanError(f"say who signs the event: {cmd} ... --by NAME", key="by")
        if not note:
            raise PlanError(f"say what changed: {cmd} ... --note TEXT", key="note")
        self.check_lock(signed=True)
        first, last = self.diagnosis_window.start, self.end
        if not first <= on <= last:
            raise PlanError(f"the event's date {on} is outside the plan's window: from the diagnosis start {first} "
                            f"to the plan's last day {last}", key="date")
        end = None
        if kind == "leave":
            if (until is None) == (weeks is None):
                raise PlanError(f"a leave needs its end: --until YYYY-MM-DD (its last day) or --weeks N, one of them "
                                f"({cmd} --kind leave --date {on} --until D ...)", key="until")
            if weeks is not None and int(weeks) < 1:
                raise PlanError("a leave lasts at least 1 week (--weeks N, N ≥ 1)", key="weeks")
            end = until if until is not None else on + dt.timedelta(weeks=int(weeks), days=-1)
            if end < on:
                raise PlanError(f"the leave ends {end}, before it starts {on}", key="until")
            if end > last:
                raise PlanError(f"the leave ends {end}, after the plan's last day {last}: end it by {last} (extend "
                                "the plan first if the leave runs longer)", key="until")
        elif until is not None or weeks is not None:
            raise PlanError(f"--until and --weeks apply to a leave, not to a {kind} event", key="until")
        planned = [t.metric for t in self.targets]
        if kind == "other":
            named = list(dict.fromkeys(metrics or []))
            if not named:
                raise PlanError(f"an 'other' event names the plan metrics it affects: --metrics a,b (plan metrics: "
                                f"{', '.join(planned)})", key="metrics")
            unknown = [m for m in named if m not in planned]
            if unknown:
                raise PlanError(f"metric '{unknown[0]}' is not a plan metric (use {', '.join(planned)})",
                                key="metrics")
            affected = named
        elif metrics:
            raise PlanError(f"--metrics applies to an 'other' event; a {kind} event affects "
                            f"{_affects(kind)}", key="metrics")
        else:
            kinds = EVENT_METRICS[kind]
            affected = planned if kinds is None else [m for m in planned if m in kinds]
        event = PlanEvent(kind=kind, start=on, end=end, metrics=affected)
        entry = HistoryEntry(date=signed_on or dt.date.today(), status=self.status, by=by, note=note,
                             at=dt.datetime.now(dt.UTC).replace(microsecond=0), event=event)
        history = [*self.history, entry]
        sealed = self.lock.model_copy(update={"record": Lock.seal(self.status, history)})
        return self.model_copy(update={"history": history, "lock": sealed})

    def events(self) -> list[HistoryEntry]:
        """The history entries that record a plan event, in the order they were signed."""
        return [h for h in self.history if h.event is not None]

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

    def signed_status(self) -> str:
        """The status as a report header and the index show it: signed (who locked it, when) or not."""
        if self.lock is not None:
            return f"{self.status} (targets and dates locked {self.lock.on:%d %b %Y} by {self.lock.by})"
        return self.status if self.status == "draft" else f"{self.status} (not signed: never activated with pipnb plan)"

    def _validated(self, update: dict[str, Any]) -> Self:
        try:
            return type(self).model_validate({**self.model_dump(), **update})
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or None
            raise PlanError(first["msg"].removeprefix("Value error, "), key=key) from None


def _affects(kind: str) -> str:
    """The metrics a kind of plan event affects, in words."""
    kinds = EVENT_METRICS[kind]
    return "every plan metric" if kinds is None else ", ".join(kinds) or "the metrics named with --metrics"


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



def _day(value: object, name: str) -> dt.date | None:
    """A date argument of the API (:func:`pipnb.dates.read_day`: ``YYYY-MM-DD`` or a date): a :class:`PlanError`
    naming ``name`` otherwise."""
    try:
        return read_day(value, name)
    except DateError as err:
        raise PlanError(f"{err.problem} (use YYYY-MM-DD)", key=name) from None
