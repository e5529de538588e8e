"""A plan's signed lifecycle: the steps, who signed them, and the lock on what was agreed.

:meth:`Lifecycle.transition` (``pipnb plan activate|acknowledge|extend|complete|close REP --by NAME``)
checks the step (draft → active → acknowledged → extended → completed / not-completed, :data:`TRANSITIONS`),
appends who, when and why to the plan's history, and on activation (or extension) locks the plan's whole text
(targets, dates, consequences, resources, coaching, names, areas: every key but the status, the history and the
lock): a :class:`Lock` holds the signed copy and its signature. :meth:`Lifecycle.check_lock` names any later edit
(``key old → new``) in one line; every review calls it, and refuses an edited plan until it is re-activated with
a reason. Each step is chained to the one before (:class:`HistoryEntry`, :func:`chain_breaks`) and signed with
plain SHA-256, or HMAC-SHA256 when ``PIPNB_SIGNING_KEY`` is set (:mod:`pipnb.record`); :mod:`pipnb.plan` records
each step in the rep's audit log, and :mod:`pipnb.verify` checks the whole record.

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
import json
from typing import Any, Literal, Self

from pydantic import ValidationError, model_validator

from pipnb.dates import DateError, read_day
from pipnb.errors import PlanError
from pipnb.policy import StrictModel
from pipnb.record import KEY_ENV, KEYED, PLAIN, check_signature, scheme, sign

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
    :class:`PlanEvent` it records (the status is then unchanged).

    Every step signed since pipnb chained the history also carries the chain: the previous step's signature
    (``prev``; for the first chained step after older, unchained ones, the SHA-256 of those), the SHA-256 of the
    report files it rests on (``reports``: for a close or a completion, the final review's notebook and HTML), how
    it is signed (``scheme``: ``sha256``, or ``hmac-sha256`` with ``PIPNB_SIGNING_KEY``) and its own signature
    (``hash``), so an entry edited, removed or replayed shows (:func:`chain_breaks`)."""

    date: dt.date
    status: Literal[STATUSES]  # type: ignore[valid-type]
    by: str = ""
    note: str = ""
    at: dt.datetime | None = None
    lock: str = ""
    event: PlanEvent | None = None
    prev: str = ""
    reports: dict[str, str] = {}
    scheme: str = ""
    hash: str = ""

    def sealed(self) -> dict[str, Any]:
        """The entry as the seal reads it (an entry without an event as it was before events existed; the chain's
        fields are covered by the entry's own signature)."""
        return self.model_dump(mode="json", exclude={"prev", "reports", "scheme", "hash",
                                                     *(("event",) if self.event is None else ())})

    def chained(self) -> dict[str, Any]:
        """What the entry's signature covers: the entry, the previous signature, the reports and the scheme."""
        return {"entry": self.sealed(), "prev": self.prev, "reports": dict(self.reports), "scheme": self.scheme}

    def signed(self, prev: str, reports: dict[str, str] | None = None) -> HistoryEntry:
        """The entry chained to ``prev`` and signed now (keyed when ``PIPNB_SIGNING_KEY`` is set)."""
        how = scheme()
        entry = self.model_copy(update={"prev": prev, "reports": dict(reports or {}), "scheme": how, "hash": ""})
        return entry.model_copy(update={"hash": sign(entry.chained(), how)})


def chain_link(history: list[HistoryEntry]) -> str:
    """What the next step's ``prev`` is: the last entry's signature, or, when it has none (a history written
    before the chain), the SHA-256 of the history so far; ``""`` for an empty history."""
    if not history:
        return ""
    if history[-1].hash:
        return history[-1].hash
    return sign([h.sealed() for h in history], PLAIN)


def chain_breaks(history: list[HistoryEntry]) -> list[str]:
    """What is wrong with a history's chain, one phrase each (``[]`` when every chained entry checks)."""
    out = []
    for i, entry in enumerate(history):
        what = f"step {i + 1} ({entry.status} on {entry.date})"
        if not entry.hash:
            if any(h.hash for h in history[:i]):
                out.append(f"{what} is not signed, after signed steps")
            continue
        state = check_signature(entry.chained(), entry.hash, entry.scheme)
        if state == "no key":
            out.append(f"{what}: cannot verify signature ({KEY_ENV} is not set)")
        elif state == "bad":
            out.append(f"{what} was edited (its signature does not match)" if entry.scheme == KEYED else
                       f"{what} was edited (its hash does not match)")
        if entry.prev != chain_link(history[:i]):
            out.append(f"{what} does not follow step {i} (a step was removed, added or edited before it)" if i else
                       f"{what} follows a step the history no longer holds (the history was cut)")
    return out


class Lock(StrictModel):
    """The terms a plan was activated with, who locked them and when, and their signature (``sha256``): an edit
    to the plan, or to the lock itself, shows. Every signed step also seals the status and the history
    (``record``), so neither can be rewritten by hand.

    ``scheme`` says what the lock covers and how it is signed: ``sha256``, or ``hmac-sha256`` (with
    ``PIPNB_SIGNING_KEY``: nobody without the key can recompute it), over the plan's whole text (every key of
    the file but ``status``, ``history`` and ``lock``); ``""`` for a lock set before pipnb locked the whole text,
    which covers :data:`LOCKED_FIELDS` and the targets' numbers only (plain SHA-256)."""

    sha256: str
    on: dt.date
    by: str
    record: str = ""
    scheme: str = ""
    terms: dict[str, Any]

    @staticmethod
    def digest(terms: dict[str, Any], on: dt.date, by: str, how: str = PLAIN) -> str:
        return sign({"terms": terms, "on": f"{on}", "by": by}, how)

    @staticmethod
    def seal(status: str, history: list[HistoryEntry], how: str = PLAIN) -> str:
        return sign({"status": status, "history": [h.sealed() for h in history]}, how)

    def how(self) -> str:
        """The signature scheme (a lock set before schemes were recorded: plain SHA-256)."""
        return self.scheme or PLAIN

    def signature(self) -> str:
        """``"ok"``, ``"bad"`` or ``"no key"`` (:func:`pipnb.record.check_signature`) for the lock's terms."""
        return check_signature({"terms": self.terms, "on": f"{self.on}", "by": self.by}, self.sha256, self.how())

    def sealed_as(self, status: str, history: list[HistoryEntry]) -> str:
        """``"ok"``, ``"bad"`` or ``"no key"`` for the seal of the status and history (``record``)."""
        return check_signature({"status": status, "history": [h.sealed() for h in history]}, self.record,
                               self.how())


class Lifecycle:
    """The signed steps of a plan, mixed into the pydantic model :class:`pipnb.plan.Plan` (whose fields and
    ``model_copy`` / ``model_dump`` they use): each step returns a validated copy."""

    def with_status(self, status: str, *, on: dt.date | None = None, note: str = "") -> Self:
        """A copy with a new status and a history entry, unsigned and unchecked (see :meth:`transition`); a status
        that is not one of :data:`STATUSES` is a :class:`~pipnb.errors.PlanError` naming them."""
        if status not in STATUSES:
            raise PlanError(f"'{status}' is not a plan status (use {', '.join(STATUSES)}); to sign a step of the "
                            "lifecycle, use transition() or pipnb plan activate|acknowledge|extend|complete|close")
        entry = HistoryEntry(date=on or dt.date.today(), status=status, note=note)
        return self.model_copy(update={"status": status, "history": [*self.history, entry]})

    def terms(self, whole: bool = True) -> dict[str, Any]:
        """What activation locks, as plain JSON values: the plan's whole text (every key but ``status``,
        ``history`` and ``lock``; the targets by metric), or with ``whole=False`` what a lock set before pipnb
        locked the whole text covered (:data:`LOCKED_FIELDS`, per target :data:`LOCKED_TARGET_FIELDS`, and the
        reason)."""
        raw = self.model_dump(mode="json")
        if whole:
            text = {key: value for key, value in raw.items() if key not in ("status", "history", "lock")}
            text["targets"] = {t["metric"]: t for t in raw["targets"]}
            return text
        terms = {key: raw[key] for key in LOCKED_FIELDS}
        terms["targets"] = {t["metric"]: {k: t[k] for k in LOCKED_TARGET_FIELDS} for t in raw["targets"]}
        if raw.get("reason"):       # why a plan without a shortfall was drafted is part of what was signed
            terms["reason"] = raw["reason"]
        return terms

    def transition(self, action: str, *, by: str, note: str = "", on: dt.date | None = None,
                   extension_weeks: int | None = None, reports: dict[str, str] | None = None,
                   active_before: str = "") -> Self:
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
        reports
            The SHA-256 of the report files the step rests on, by file name (kept in its history entry).
        active_before
            When the plan file shows no activation but the rep's audit log does (a plan stripped back to a
            draft), what the log says, in words: re-activating then needs a ``note`` too.

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
            if self.signed_activation() is None and active_before:
                before = f"its lock and history were removed from the file ({active_before})"
            if self.signed_activation() is not None or active_before:
                if not note:
                    raise PlanError(f"the plan of {self.rep_id} was activated before: say why it is re-activated "
                                    f"with --note (what changed: {before or 'nothing'})")
                lines.append(f"re-activated; changed since the last lock: {before or 'nothing'}")
        else:
            self.check_lock(signed=True)
        if action == "extend":
            if extension_weeks is None:
                raise PlanError("an extension needs a number of weeks (extension_weeks=, or the policy's "
                                "review.extension_weeks)")
            if not 1 <= extension_weeks <= 26:
                raise PlanError(f"an extension of {extension_weeks} weeks is not one: extend by 1 to 26 weeks")
            update["weeks"] = self.weeks + int(extension_weeks)
            new_end = self.start + dt.timedelta(weeks=update["weeks"], days=-1)
            lines.append(f"extended by {extension_weeks} weeks: the plan now ends {new_end} (was {self.end})")
        try:
            plan = self._validated(update)
        except PlanError as err:
            raise PlanError(f"cannot {action} the plan of {self.rep_id}: {err}") from None
        relock = action in ("activate", "extend")
        entry = HistoryEntry(date=on, status=status, by=by, note="; ".join([*lines, note] if note else lines),
                             at=dt.datetime.now(dt.UTC).replace(microsecond=0))
        return plan._signed_step(entry, status, relock=relock, reports=reports)

    def _signed_step(self, entry: HistoryEntry, status: str, *, relock: bool,
                     reports: dict[str, str] | None = None) -> Self:
        """The plan with ``entry`` chained to its history and signed, the lock set anew when ``relock`` (or when
        it is a lock set before pipnb locked the whole text: from this step on, the whole text is locked), and
        the status and history sealed."""
        how = scheme()
        lock = self.lock
        keyed = (lock is not None and lock.how() == KEYED) or any(h.scheme == KEYED for h in self.history)
        if keyed and how == PLAIN:        # once signed with the key, every later step is
            raise PlanError(f"the plan of {self.rep_id} was signed with {KEY_ENV}: set it to sign the next step "
                            "(it is never stored in the folder)")
        if relock or lock is None or not lock.scheme:
            terms = self.terms()
            lock = Lock(sha256=Lock.digest(terms, entry.date, entry.by, how), on=entry.date, by=entry.by,
                        scheme=how, terms=terms)
            if not relock and self.lock is not None:
                entry = entry.model_copy(update={"note": "; ".join(
                    x for x in ("the whole text of the plan is locked from this step on", entry.note) if x)})
            entry = entry.model_copy(update={"lock": lock.sha256[:12]})
        entry = entry.signed(chain_link(self.history), reports)
        history = [*self.history, entry]
        sealed = lock.model_copy(update={"record": Lock.seal(status, history, lock.how())})
        return self.model_copy(update={"status": status, "history": history, "lock": sealed})

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
        return self._signed_step(entry, self.status, relock=False)

    def events(self) -> list[HistoryEntry]:
        """The history entries that record a plan event, in the order they were signed."""
        return [h for h in self.history if h.event is not None]

    def signed_activation(self) -> HistoryEntry | None:
        """The last history entry that locked the plan (an activation or an extension), or None."""
        return next((h for h in reversed(self.history) if h.lock), None)

    def edits(self) -> str | None:
        """What changed since the plan was locked, in one line (``key old → new``, each value shortened); None
        when it is as signed (or never was). A signature that needs ``PIPNB_SIGNING_KEY`` is not checked without
        it (``pipnb verify`` says so); the text is still compared with the signed copy."""
        if self.lock is None:
            signed = self.signed_activation()
            return None if signed is None else f"its lock was removed (locked {signed.date} by {signed.by})"
        if self.lock.signature() == "bad":
            return "its lock was edited (the signed terms no longer match their signature)"
        changes = _differences(self.lock.terms, self.terms(whole=bool(self.lock.scheme)))
        if changes:
            more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
            return ", ".join(changes[:3]) + more
        if self.history and self.history[-1].status != self.status:
            return (f"its status was set to {self.status} by hand (the history ends with {self.history[-1].status}; "
                    "use pipnb plan to change it)")
        if self.lock.record and self.lock.sealed_as(self.status, self.history) == "bad":
            return (f"its status ({self.status}) or its history was edited by hand (they no longer match what the "
                    "last signed step sealed; use pipnb plan to change them)")
        broken = [b for b in chain_breaks(self.history) if "cannot verify" not in b]
        if broken:
            return f"its history was edited by hand: {broken[0]}"
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
            what = "the whole plan" if self.lock.scheme else "targets and dates"     # a lock from before the whole text
            return f"{self.status} ({what} locked {self.lock.on:%d %b %Y} by {self.lock.by})"
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
        elif isinstance(before[key], list) and isinstance(after[key], list) and _nested(before[key], after[key]):
            out += _differences({f"[{i + 1}]": v for i, v in enumerate(before[key])},
                                {f"[{i + 1}]": v for i, v in enumerate(after[key])}, name)
        elif json.dumps(before[key], sort_keys=True) != json.dumps(after[key], sort_keys=True):
            out.append(f"{name} {_short(before[key])} → {_short(after[key])}")
    return out


#: The most characters of one value a changed line shows.
SHOWN = 60


def _nested(before: list, after: list) -> bool:
    """Whether two lists are compared item by item: lists of text or of records (not lists of numbers, such
    as a glide path, which read best whole)."""
    return any(isinstance(v, (str, dict)) for v in [*before, *after])


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        text = "[" + ", ".join(_short(v) for v in value) + "]"
    elif isinstance(value, str):
        text = repr(value) if value != " ".join(value.split()) or not value else value
    else:
        text = str(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"



def _day(value: object, name: str) -> dt.date | None:
    """A date argument of the API (:func:`pipnb.dates.read_day`: ``YYYY-MM-DD`` or a date): a :class:`PlanError`
    naming ``name`` otherwise."""
    try:
        return read_day(value, name)
    except DateError as err:
        raise PlanError(f"{err.problem} (use YYYY-MM-DD)", key=name) from None
