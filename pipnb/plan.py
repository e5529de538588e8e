"""The plan document: targets, the timeline, and the plan YAML.

A plan is saved as ``params/plans/<rep>.yaml`` — the contract between stages — and validated on load
(:meth:`Plan.from_yaml`; unknown keys and bad dates are errors). It is drafted by :mod:`pipnb.drafting` and
signed through :mod:`pipnb.lifecycle` (the :class:`Plan` inherits its steps): :func:`sign_plan` takes a step on
a rep's plan file, :func:`record_plan_event` signs a plan event on it (a change the rep does not control, which
reviews rebaseline from), and :func:`plans_by_folder` reads every plan of a working folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import Field, field_validator, model_validator

from pipnb.display import card_html, plan_facts, short_repr
from pipnb.errors import PipnbError, PlanError
from pipnb.io import atomic_write_text, read_yaml
from pipnb.lifecycle import STATUSES, TRANSITIONS, HistoryEntry, Lifecycle, Lock
from pipnb.locks import writing
from pipnb.policy import Policy, RangeModel, StrictModel, check_checkpoints, load_yaml_model
from pipnb.record import AUDIT, append_audit, file_sha256, read_audit, trusted, versions
from pipnb.schema import METRICS, PLAN_METRICS
from pipnb.stages import FINAL, checkpoint_number, parse_stage, review_stages
from pipnb.workdir import plan_path, rep_dir, safe_name

__all__ = ["Area", "DeadOpportunity", "Plan", "Target", "Window", "audit_mismatch", "final_review", "log_signed_step",
           "plans_by_folder", "record_plan_event", "sign_plan"]

DATA_GRACE_DAYS = 2      # a review is due when the data reaches its last day less a weekend


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

    def glide_origin(self) -> str:
        """Where the glide path starts, in words, from the numbers the target records: the rep's level in the
        weeks before the diagnosis; the final target itself when that level already met it; or, without earlier
        weeks, the level over the diagnosis window."""
        spec = METRICS[self.metric]
        start, prior, current = self.baseline, self.basis.get("prior"), self.basis.get("baseline")
        if start is None:
            return "the final target (no level to start from)"
        if prior is not None and np.isfinite(prior) and spec.fmt(prior) == spec.fmt(start):
            return "the rep's level in the weeks before the diagnosis"
        if prior is not None and np.isfinite(prior) and spec.fmt(start) == spec.fmt(self.target):
            return (f"the final target, because the rep's level in the weeks before the diagnosis ({spec.fmt(prior)}) "
                    "already met it")
        if current is not None and spec.fmt(current) == spec.fmt(start):
            return "the rep's level over the diagnosis window (there were no earlier weeks to start from)"
        return "the plan's baseline as the plan file states it"

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



class Plan(Lifecycle, StrictModel):
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
    #: Why the plan was drafted though its diagnosis found no shortfall (``pipnb plan --reason``); "" when the
    #: diagnosis found one. Every report of the plan shows it.
    reason: str = ""
    improvement_areas: list[Area] = []
    targets: list[Target]
    consequences: list[str] = []
    resources: list[str] = []
    coaching: list[str] = []
    dead_opportunities: list[DeadOpportunity] = []
    history: list[HistoryEntry] = []
    lock: Lock | None = None

    @field_validator("reason")
    @classmethod
    def _one_line_reason(cls, value: str) -> str:
        return " ".join(value.split())            # one line, as the history and the reports show it

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
        return short_repr("Plan", plan_facts(self))

    def _repr_html_(self) -> str:
        return card_html("Plan", plan_facts(self))

    # -- timeline ---------------------------------------------------------------------------
    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(weeks=self.weeks, days=-1)

    def stages(self) -> list[str]:
        """The plan's reviews in order, ``checkpoint-1`` … ``checkpoint-N`` and ``final`` (see :mod:`pipnb.stages`)."""
        return review_stages(len(self.checkpoints))

    def checkpoint_week(self, checkpoint: int | str) -> int:
        """Plan week a review closes: ``checkpoint`` is a number, ``"checkpoint-N"`` or ``"final"``."""
        stage = parse_stage(checkpoint, len(self.checkpoints))
        return self.weeks if stage == FINAL else self.checkpoints[checkpoint_number(stage) - 1]

    def look_fractions(self, baseline_weeks: int | None = None) -> list[float]:
        """Information fraction of each review: the information accrued by its week over the final review's,
        with a fixed baseline of ``baseline_weeks`` (default: the assessment's, ``BASELINE_WEEKS``), so 0.40 /
        0.67 / 0.86 / 1 for a 12-week plan reviewed at weeks 3, 6, 9 and 12
        (:func:`pipnb.stats.sequential.information_fractions`)."""
        from pipnb.stats.sequential import information_fractions  # scipy (0.3 s): the boundaries' module
        from pipnb.stats.windows import BASELINE_WEEKS  # pandas (0.5 s): the windows' module

        return information_fractions([*self.checkpoints, self.weeks], baseline_weeks or BASELINE_WEEKS)

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

    # -- the file ---------------------------------------------------------------------------------
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
        raw = self.model_dump(mode="json")
        for entry in raw["history"]:          # an entry without an event is written as before events existed
            if entry.get("event", 0) is None:
                del entry["event"]
            if not entry.get("hash"):         # and one signed before the chain as it was written then
                for key in ("prev", "reports", "scheme", "hash"):
                    entry.pop(key, None)
        lock = raw.pop("lock")
        if lock is not None and not lock.get("scheme"):
            del lock["scheme"]
        text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
        if lock is not None:
            terms = lock.pop("terms")
            text += yaml.safe_dump({"lock": lock}, sort_keys=False, allow_unicode=True, width=100)
            text += "  terms: " + yaml.safe_dump(terms, default_flow_style=True, allow_unicode=True,
                                                 width=1_000_000, sort_keys=True).strip() + "\n"
        return atomic_write_text(path, _PLAN_HEADER + text)

    # -- what a review reads ----------------------------------------------------------------------
    def content_hash(self) -> str:
        """The SHA-256 of what a review reads from the plan: everything but its status, history and lock (a
        signature changes none of a review's numbers)."""
        raw = self.model_dump(mode="json", exclude={"status", "history", "lock"})
        for key in ("dead_opportunities", "reason"):   # plans drafted before these existed keep their hash
            if not raw[key]:
                del raw[key]
        events = [h.sealed() for h in self.events()]
        if events:                     # a plan event changes what a review reads (it rebaselines from its date)
            raw["events"] = events
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()

    def data_notes(self, data, *, now: str | None = None) -> list[str]:
        """Sentences saying when the data behind the plan (up to the end of its diagnosis) is no longer the data
        it was drafted from; ``[]`` when it is. Data added after the diagnosis changes nothing here. ``now``:
        the data's fingerprint up to the end of the diagnosis when already known (a batch keeps them)."""
        end = self.diagnosis_window.end
        if not self.data_fingerprint:
            return []
        from pipnb.fingerprint import fingerprint_until  # pandas (0.35 s): a plan step reads no data

        # one hash of the data as it stood at the end of the diagnosis (the whole data's when nothing is cut)
        now = now or fingerprint_until(data, end)
        if now == self.data_fingerprint:
            return []
        return [f"The data behind this plan (up to {end:%d %b %Y}, the end of its diagnosis) is not the data it "
                f"was drafted from: rows dated on or before that day were added, changed or removed since "
                f"(fingerprint {self.data_fingerprint[:8]}, now {now[:8]}); its baseline and targets may no "
                "longer match the data."]


_PLAN_HEADER = ("# pipnb performance improvement plan. A manager may edit the text of a draft, its targets and its\n"
                "# dates; `pipnb plan activate REP --by NAME` locks the targets and dates (the `lock:` at the end is\n"
                "# the signed copy: an edit is refused by every review until the plan is re-activated with a reason).\n"
                "# Change the status with `pipnb plan acknowledge|extend|complete|close REP --by NAME`; record a\n"
                "# change the rep does not control: `pipnb plan event REP --kind K --date D --note TEXT --by NAME`.\n"
                "# Every later stage reads this file and validates it (unknown keys and bad dates are errors).\n")




# -- a working folder's plans ---------------------------------------------------------------------
def plans_by_folder(params: Path) -> dict[str, Plan]:
    """Every readable plan file under ``params/plans``, by the folder name of its rep (broken ones, and files
    that are not their rep's plan file, such as backup copies, are left out)."""
    plan_dir = params / "plans"
    plans = {}
    for path in sorted(plan_dir.glob("*.yaml")) if plan_dir.is_dir() else []:
        try:
            plan = Plan.from_yaml(path)
        except (PipnbError, RecursionError, MemoryError):     # a crafted file too: its batch job says why
            continue
        if path.name == plan_path(params, plan.rep_id).name:
            plans[safe_name(plan.rep_id)] = plan
    return plans


def sign_plan(params: str | Path, rep_id: str, action: str, *, by: str, note: str = "",
              weeks: int | None = None, reports: str | Path | None = None) -> tuple[Path, Plan]:
    """Take one signed step of a rep's plan (:meth:`~pipnb.lifecycle.Lifecycle.transition`) on its file,
    ``params/plans/<rep>.yaml``, write it back (``pipnb plan activate|... REP --by NAME``) and record the step in
    the rep's audit log (``reports/<rep>/audit.jsonl``, :func:`pipnb.record.append_audit`).

    Parameters
    ----------
    params
        The params folder (``plans/`` and ``policy.yaml``).
    rep_id, action, by, note
        Whose plan, which step, who signs it and why.
    weeks
        ``extend`` only: the weeks added (default: the policy's ``review.extension_weeks``).
    reports
        The reports folder (default: ``reports`` beside ``params``): the audit log, and the final review a
        completion rests on.

    Returns
    -------
    tuple[Path, Plan]
        The plan file and the signed plan written to it.

    Raises
    ------
    PlanError
        No plan file for the rep, a file holding another rep's plan, a step the plan does not allow, a plan file
        that is not the one the audit log last recorded (an older copy put back, a history cut, a plan stripped
        back to a draft: only a re-activation with ``note`` accepts it), or a completion without a final review
        of the plan (unless ``note`` says why).
    """
    if action == "extend" and weeks is None:
        policy = Path(params) / "policy.yaml"
        weeks = (Policy.from_yaml(policy) if policy.is_file() else Policy.default()).review.extension_weeks
    path = plan_file(Path(params), rep_id)
    root = _reports_root(params, reports)
    with writing(params, root):         # read, change, write: one writer at a time (pipnb.locks)
        plan = Plan.from_yaml(plan_file(Path(params), rep_id))
        if plan.rep_id != rep_id:
            raise PlanError(f"holds the plan of {plan.rep_id!r}, not {rep_id!r}", file=str(path))
        folder = rep_dir(root, rep_id)
        logged = audit_mismatch(plan, read_audit(folder), folder)
        if logged and not (action == "activate" and plan.signed_activation() is None):
            if action != "activate" or not " ".join(note.split()):
                raise PlanError(f"{logged}; put the last signed file back, or re-activate the plan as it is with "
                                f"a reason: pipnb plan activate {rep_id} --by NAME --note WHY", file=str(path))
        files = final_review(plan, folder) if action in ("complete", "close") else {}
        if action == "complete" and plan.status in TRANSITIONS[action][0] and not files and not note.strip():
            raise PlanError(f"no final review of the plan of {rep_id} (ending {plan.end}) has been written: run it "
                            f"(pipnb review --plan {path} --checkpoint final), or say why the plan is completed "
                            f"without it: pipnb plan complete {rep_id} --by NAME --note WHY", file=str(path))
        signed = plan.transition(action, by=by, note=note, extension_weeks=weeks, reports=files,
                                 active_before=logged if plan.signed_activation() is None else "")
        signed.to_yaml(path)
        log_signed_step(folder, signed, action)
    return path, signed


def record_plan_event(params: str | Path, rep_id: str, kind: str, *, on: dt.date, note: str, by: str,
                      until: dt.date | None = None, weeks: int | None = None,
                      metrics: list[str] | None = None, reports: str | Path | None = None) -> tuple[Path, Plan]:
    """Sign a plan event (:meth:`~pipnb.lifecycle.Lifecycle.record_event`) on a rep's plan file,
    ``params/plans/<rep>.yaml``, write it back (``pipnb plan event REP --kind K --date D --note TEXT --by NAME``)
    and record it in the rep's audit log (``reports`` as for :func:`sign_plan`).

    Returns
    -------
    tuple[Path, Plan]
        The plan file and the plan written to it (its last history entry is the event).

    Raises
    ------
    PlanError
        No plan file for the rep, a file holding another rep's plan, a plan file that is not the one the audit
        log last recorded, or an event the plan does not allow (nothing is written then).
    """
    path = plan_file(Path(params), rep_id)
    root = _reports_root(params, reports)
    with writing(params, root):         # read, change, write: one writer at a time (pipnb.locks)
        plan = Plan.from_yaml(plan_file(Path(params), rep_id))
        if plan.rep_id != rep_id:
            raise PlanError(f"holds the plan of {plan.rep_id!r}, not {rep_id!r}", file=str(path))
        folder = rep_dir(root, rep_id)
        logged = audit_mismatch(plan, read_audit(folder), folder)
        if logged:
            raise PlanError(f"{logged}; put the last signed file back, or re-activate the plan as it is with a "
                            f"reason: pipnb plan activate {rep_id} --by NAME --note WHY", file=str(path))
        signed = plan.record_event(kind, on=on, note=note, by=by, until=until, weeks=weeks, metrics=metrics)
        signed.to_yaml(path)
        log_signed_step(folder, signed, "event")
    return path, signed


def _reports_root(params: str | Path, reports: str | Path | None) -> Path:
    """The reports folder a signed step records in: ``reports``, or ``reports`` beside the params folder."""
    return Path(reports).expanduser().resolve() if reports else Path(params).expanduser().resolve().parent / "reports"


def log_signed_step(folder: Path, plan: Plan, action: str) -> None:
    """Record a plan's last signed step in the rep's audit log (``folder``: their reports folder; the caller holds
    its lock). :func:`sign_plan` and :func:`record_plan_event` do it; code that signs a step with
    :meth:`~pipnb.lifecycle.Lifecycle.transition` and writes the file itself (the demo) calls it, else
    ``pipnb verify`` finds a chained history its audit log does not know."""
    entry = plan.history[-1]
    append_audit(folder, {"kind": "step", "rep_id": plan.rep_id, "action": action, "status": entry.status,
                          "date": f"{entry.date}", "by": entry.by, "hash": entry.hash,
                          "lock": plan.lock.sha256 if plan.lock is not None else "", "steps": len(plan.history)})


def audit_mismatch(plan: Plan, log: list[dict], folder: Path) -> str:
    """How the plan file differs from what the rep's audit log last recorded, in words (``""`` when it is the
    file last signed, or the log records no step): an older copy put back, a history cut, or a plan stripped back
    to a draft."""
    steps = [line for line in log if line.get("kind") == "step" and line.get("rep_id") == plan.rep_id]
    if not steps:
        return ""
    last = steps[-1]
    chained = [h.hash for h in plan.history if h.hash]
    if chained and chained[-1] == last.get("hash"):
        return ""
    told = (f"{folder.parent.name}/{folder.name}/{AUDIT} records {len(steps)} signed steps, the last "
            f"{last.get('action')} "
            f"({last.get('status')}) on {last.get('date')} by {last.get('by')}")
    if plan.lock is None and not plan.history:
        return f"the plan file was stripped back to a draft: {told}"
    ends = plan.history[-1] if plan.history else None
    where = f"ends with {ends.status} on {ends.date}" if ends is not None else "is empty"
    if chained and chained[-1] in {str(line.get("hash")) for line in steps}:
        return f"the plan file is an older copy, or its history was cut: {told}; its history {where}"
    return f"the plan file is not the one last signed: {told}; its history {where}"


def final_review(plan: Plan, folder: Path) -> dict[str, str]:
    """The SHA-256 of the files of the plan's final review (its last good version for the plan's end), by file
    name; ``{}`` when none was written. A final review whose notebook was edited after it was written is refused
    (a :class:`PlanError`): a step never rests on it."""
    good = [v for v in versions(folder / FINAL) if v.good and v.record.as_of == f"{plan.end}"]
    if not good:
        return {}
    last = good[-1]
    if not trusted(last):
        raise PlanError(f"{last.ipynb}: the final review's notebook was edited after it was written (it no longer "
                        "matches the hash its audit log recorded); run pipnb verify, and run the review again")
    return {p.name: file_sha256(p) for p in (last.ipynb, last.html) if p.is_file()}


def plan_file(params: Path, rep_id: str) -> Path:
    """The rep's plan file in ``params/plans/``; a rep with none is a :class:`PlanError` with a did-you-mean over
    the plans there (:func:`pipnb.data.rep_hint`: ``r07`` for ``R07``), or how to draft one."""
    path = plan_path(params, rep_id)
    if path.is_file():
        return path
    from pipnb.data import rep_hint  # pandas (0.35 s): only for the hint, a plan step reads no data

    known = plan_rep_ids(params)
    hint = rep_hint(rep_id, known, examples="the plans there are for") if known else \
        f"there is no plan in {path.parent} yet"
    draft = f"draft it with pipnb plan --data SRC --rep {rep_id}"
    raise PlanError(f"no plan for {rep_id} (looked for {path}); {hint}" + (
        "" if hint.startswith("did you mean") else f"; {draft}"))


def plan_rep_ids(params: Path) -> list[str]:
    """The reps with a plan file in ``params/plans/``: each file's ``rep_id`` (its name when it cannot be read)."""
    ids = []
    for path in sorted(plan_path(params, "x").parent.glob("*.yaml")):
        try:
            content = read_yaml(path, aliases=False)
        except PipnbError:
            content = None
        rep_id = content.get("rep_id") if isinstance(content, dict) else None
        ids.append(str(rep_id) if rep_id else path.stem)
    return ids
