"""Who is on a plan and how they are doing: the rows of ``reports/index.html`` and ``pipnb status``.

:func:`dashboard` reads what is on disk — the plan YAMLs (status, dates, signed history), each rep's
``rep.json`` (name, team, manager) and the run record of every report (:mod:`pipnb.record`), whose
``outcome`` says what the report concluded (:mod:`pipnb.outcome`) — and never recomputes a statistic. It gives

* one :class:`PlanRow` per rep with a plan (a plan whose rep has no ``rep.json`` — no job was ever built for
  them, e.g. a rep not in the data — is left out): team, manager, the plan's status and dates as its file holds
  them (only a signed step changes them: a final review's recommendation never does), plan dates, the stage
  reached, the next review with its date and whether it is *due*, *overdue* or *not due* — or, once the final
  review recommends a step nobody has signed yet, *decision due* with what it recommends
  (``decision due: consequences recommended``) —, per measure the latest status with its weekly values, and
  the latest recommendation (final) or status line (checkpoint); most urgent first;
* one :class:`FlaggedRow` per rep the latest team scan flags who has no plan;
* the reps diagnosed but neither flagged nor on a plan (listed as such, never as a missing plan).

:func:`pipnb.index_page.render_dashboard` draws it for the index (no script: marks are text, sparklines inline
SVG); :func:`format_table` and :func:`to_json` print it for ``pipnb status``.

Due, overdue, not due
    A review is *not due* while the data does not reach its last day (nothing to run yet). Once the data
    reaches it, it is *due*, and *overdue* when today is more than :data:`GRACE_DAYS` days past that day and
    the review has still not been written. Once the final review of the plan as it stands recommends a step
    nobody has signed (or every review is written) and the plan is not closed, a *decision is due*: sign the step
    the final review recommends (:attr:`PlanRow.decision` names it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipnb.errors import PipnbError
from pipnb.plan import plans_by_folder
from pipnb.record import Version, reading_once, trusted, versions
from pipnb.stages import stage_title
from pipnb.workdir import rep_dir, rep_info

__all__ = ["GRACE_DAYS", "MARKS", "Dashboard", "FlaggedRow", "Measure", "PlanRow", "dashboard", "format_table",
           "to_json"]

#: Days after a review's last day before a review the data reaches, but nobody ran, is *overdue*.
GRACE_DAYS = 7

#: Sort order of the next review's state: the most urgent first.
_URGENCY = {"overdue": 0, "due": 1, "decision due": 1, "not due": 3, "draft": 4, "closed": 5, "": 6}
#: The mark of each status of a measure, on the index and in ``pipnb status``.
MARKS = {"met": "✓", "not met": "✗", "not yet clear": "?", "no data": "–", "not reviewed yet": "·"}


@dataclass(frozen=True)
class Measure:
    """One target of a plan as the latest review judged it."""

    metric: str
    label: str
    focus: bool
    status: str                                  # met, not met, not yet clear, no data, not reviewed yet
    reason: str = ""
    weekly: tuple[tuple[str, float | None], ...] = ()


@dataclass(frozen=True)
class PlanRow:
    """A rep on a plan."""

    rep_id: str
    rep_name: str
    team: str
    manager: str
    plan_status: str
    status_note: str
    start: str
    end: str
    stage_reached: str
    report: str                                  # the latest report's HTML, relative to reports/ ("" when none)
    next_stage: str
    next_date: str
    next_state: str                              # due, overdue, not due, draft, closed, decision due
    next_note: str
    measures: tuple[Measure, ...]
    latest: str                                  # the recommendation (final) or the status line (checkpoint)
    versions: tuple[tuple[str, str], ...] = ()   # (label, relative HTML path) of every report and earlier version
    decision: str = ""                           # what the final review recommends, unsigned: "consequences
    #                                              recommended", "extension recommended", "completion recommended"
    reason: str = ""                             # why the plan was drafted without a shortfall ("" when it had one)

    @property
    def next_label(self) -> str:
        """The next step as the index and ``pipnb status`` show it: ``decision due: consequences recommended``,
        or the next review's state."""
        return f"{self.next_state}: {self.decision}" if self.decision else self.next_state

    @property
    def urgency(self) -> tuple:
        behind = sum(m.status == "not met" for m in self.measures if m.focus)
        return (_URGENCY.get(self.next_state, 6), -behind, self.next_date or "9999", self.rep_name)


@dataclass(frozen=True)
class FlaggedRow:
    """A rep the latest team scan flags, without a plan."""

    rep_id: str
    rep_name: str
    team: str
    manager: str
    metrics: tuple[str, ...]
    diagnosis: str                               # the diagnosis HTML, relative to reports/ ("" when none)


@dataclass(frozen=True)
class Dashboard:
    """Everything the index and ``pipnb status`` show."""

    today: str
    data_date: str
    scan_as_of: str
    scan: str
    plans: tuple[PlanRow, ...]
    flagged: tuple[FlaggedRow, ...]
    diagnosed: tuple[FlaggedRow, ...] = field(default=())

    def teams(self) -> list[tuple[str, list[PlanRow]]]:
        """The plan rows grouped by team (the team with the most urgent row first), most urgent first."""
        groups: dict[str, list[PlanRow]] = {}
        for row in sorted(self.plans, key=lambda r: r.urgency):
            groups.setdefault(row.team, []).append(row)
        return list(groups.items())


def dashboard(reports: Path, params: Path, *, today: dt.date | None = None, data_date: str = "") -> Dashboard:
    """The dashboard of the reports under ``reports`` and the plans under ``params/plans``.

    Parameters
    ----------
    reports, params
        The reports folder and the params folder.
    today
        The day overdue is judged against (default: today).
    data_date
        The data's last day (a batch run knows it); default: the latest one the reports recorded.
    """
    with reading_once():            # every report is read once per dashboard (a notebook holds its charts)
        return _dashboard(Path(reports), Path(params), today or dt.date.today(), data_date)


def _dashboard(reports: Path, params: Path, today: dt.date, data_date: str) -> Dashboard:
    plans = plans_by_folder(params)
    folders = sorted(p for p in reports.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if reports.is_dir() else []
    scan = _latest(reports / "team-scan")
    outcomes = [scan.record.outcome] if scan is not None else []
    infos = {f.name: rep_info(f) or {} for f in folders}
    for folder in folders:
        for v in (_latest(folder / s) for s in ("diagnose", *_review_names(folder, plans.get(folder.name)))):
            if v is not None and v.record.outcome:
                outcomes.append(v.record.outcome)
    data_date = data_date or max((str(o.get("data_end", "")) for o in outcomes), default="")
    plans = {name: plan for name, plan in plans.items() if infos.get(name, {}).get("rep_id") == plan.rep_id}
    rows = [_plan_row(reports, reports / name, plan, infos[name], today, data_date) for name, plan in plans.items()]
    planned = {p.rep_id for p in plans.values()}
    flagged_ids = []
    flagged = []
    for rep in (scan.record.outcome.get("flagged", []) if scan is not None else []):
        rep_id = str(rep.get("rep_id", ""))
        flagged_ids.append(rep_id)
        if rep_id in planned:
            continue
        folder = _folder_of(reports, rep_id)
        diag = _latest(folder / "diagnose") if folder is not None else None
        flagged.append(FlaggedRow(rep_id, str(rep.get("rep_name", rep_id)), str(rep.get("team", "")),
                                  str(rep.get("manager", "")), tuple(str(m) for m in rep.get("metrics", [])),
                                  _rel(reports, diag.html) if diag is not None else ""))
    diagnosed = []
    for folder in folders:
        info = infos[folder.name]
        rep_id = info.get("rep_id", folder.name)
        diag = _latest(folder / "diagnose")
        if diag is None or rep_id in planned or rep_id in flagged_ids:
            continue
        diagnosed.append(FlaggedRow(rep_id, info.get("rep_name", rep_id), info.get("team", ""),
                                    info.get("manager", ""), (), _rel(reports, diag.html)))
    return Dashboard(today=f"{today}", data_date=data_date,
                     scan_as_of=str(scan.record.outcome.get("as_of", scan.record.as_of)) if scan else "",
                     scan=_rel(reports, scan.html) if scan is not None else "",
                     plans=tuple(sorted(rows, key=lambda r: r.urgency)), flagged=tuple(flagged),
                     diagnosed=tuple(diagnosed))


def _plan_row(reports: Path, folder: Path, plan, info: Mapping[str, str], today: dt.date, data_date: str) -> PlanRow:
    dates = plan.checkpoint_dates()
    done: dict[str, Version] = {}
    for stage in plan.stages():
        latest = _latest(folder / stage)
        if latest is not None and latest.record.as_of == f"{dates[stage]}":
            done[stage] = latest
    reached = [s for s in ("diagnose", "plan") if _latest(folder / s) is not None] + list(done)
    last_review = done[list(done)[-1]] if done else None
    outcome = last_review.record.outcome if last_review is not None else {}
    final = _latest(folder / "final")
    final_outcome = final.record.outcome if final is not None else {}
    status, note = _row_status(plan)
    nxt = next((s for s in plan.stages() if s not in done), "")
    decision, next_note = ("", "") if plan.status in ("draft", "completed", "not-completed") else \
        _decision(plan, final_outcome)
    if decision:                  # the final review of the plan as it stands recommends a step nobody signed
        nxt, state = "", "decision due"
    else:
        state, next_note = _next_state(plan, nxt, dates.get(nxt), today, data_date)
    if outcome.get("measures"):
        measures = tuple(Measure(str(m["metric"]), str(m["label"]), bool(m["focus"]), str(m["status"]),
                                 str(m.get("reason", "")),
                                 tuple((str(w), v if v is None else float(v)) for w, v in m.get("weekly", [])))
                         for m in outcome["measures"])
    else:
        measures = tuple(Measure(t.metric, t.label, t.focus, "not reviewed yet") for t in plan.targets)
    if outcome.get("recommendation"):
        latest = f"recommendation: {outcome['recommendation']}" + (
            f" (new end {outcome['extended_end']})" if outcome.get("extended_end") else "")
    else:
        latest = str(outcome.get("status_line", ""))
    edited = [s for s in plan.stages() if any(v.good and not trusted(v) for v in versions(folder / s))]
    if edited:                    # never shown as the plan's outcome, and never silently dropped
        latest = (f"{stage_title(edited[-1])}: its notebook was edited after it was written, so its outcome is not "
                  f"shown (pipnb verify names the file)" + (f"; {latest}" if latest else ""))
    report = last_review or _latest(folder / "plan")
    every = []
    for stage in ("diagnose", "plan", *plan.stages()):
        good = [v for v in versions(folder / stage) if v.good]
        for v in good:
            label = stage_title(stage) + (f" (version {v.number})" if len(good) > 1 else "")
            every.append((label, _rel(reports, v.html)))
    return PlanRow(plan.rep_id, info.get("rep_name", plan.rep_name), info.get("team", plan.team),
                   info.get("manager", ""), status, note, f"{plan.start}", f"{plan.end}",
                   stage_title(reached[-1]) if reached else "", _rel(reports, report.html) if report else "",
                   nxt, f"{dates[nxt]}" if nxt else "", state, next_note, measures, latest, tuple(every), decision,
                   plan.reason)


def _row_status(plan) -> tuple[str, str]:
    """The plan's status as its file holds it (what was signed), and a note: who signed the last step, or what
    to sign. A final review's recommendation is never shown as a status (:func:`_decision`). A report header
    shows the plan's own status and lock instead (:meth:`~pipnb.lifecycle.Lifecycle.signed_status`)."""
    last = plan.history[-1] if plan.history else None
    signed = f"signed by {last.by} on {last.date}" if last is not None and last.by else ""
    if plan.status == "draft":
        return "draft", f"not activated yet: pipnb plan activate {plan.rep_id} --by NAME"
    if plan.status == "extended":
        return "extended", f"{signed}; the plan now ends {plan.end}" if signed else f"the plan now ends {plan.end}"
    return plan.status.replace("-", " "), signed


#: A final review's recommendation: how a decision waiting for sign-off is named, and the step that signs it.
_RECOMMENDED = {"consequences": ("consequences recommended", "close"),
                "extend": ("extension recommended", "extend"),
                "complete": ("completion recommended", "complete")}


def _decision(plan, final_outcome: Mapping[str, Any]) -> tuple[str, str]:
    """What the final review of the plan as it stands recommends, not signed yet, and how to sign it; ("", "")
    when that review recorded no recommendation (or is a review of an earlier end date)."""
    recommended = str(final_outcome.get("recommendation", ""))
    if recommended not in _RECOMMENDED or str(final_outcome.get("as_of", "")) != f"{plan.end}":
        return "", ""
    what, step = _RECOMMENDED[recommended]
    new_end = final_outcome.get("extended_end", "") if recommended == "extend" else ""
    return (what + (f" (to {new_end})" if new_end else ""),
            f"the final review of {plan.end} recommends {recommended}; nothing is decided until it is signed: "
            f"pipnb plan {step} {plan.rep_id} --by NAME")


def _next_state(plan, stage: str, when: dt.date | None, today: dt.date, data_date: str) -> tuple[str, str]:
    if plan.status in ("completed", "not-completed"):
        return "closed", ""
    if plan.status == "draft":
        return "draft", "reviews start once the plan is activated"
    if not stage or when is None:
        return "decision due", "every review is written: sign the plan's next step (pipnb plan extend|complete|close)"
    if not data_date or not plan.data_reaches(stage, dt.date.fromisoformat(data_date)):
        return "not due", f"the data ends {data_date}" if data_date else "no data date recorded"
    late = (today - when).days
    if late > GRACE_DAYS:
        return "overdue", f"{late} days past; the data reaches it"
    return "due", "the data reaches it"


def _review_names(folder: Path, plan) -> list[str]:
    names = {p.name.split(".")[0] for p in folder.glob("checkpoint-*.ipynb")} | set(plan.stages() if plan else [])
    return sorted(n for n in names if n.startswith("checkpoint-")) + ["final"]


def _latest(base: Path) -> Version | None:
    """The newest good version of a report whose notebook is as pipnb wrote it (an outcome edited by hand in an
    executed notebook is never shown: :func:`pipnb.record.trusted`)."""
    good = [v for v in versions(base) if v.good and trusted(v)]
    return good[-1] if good else None


def _folder_of(reports: Path, rep_id: str) -> Path | None:
    """The rep's reports folder, or None when there is none (or the id cannot be a folder name)."""
    try:
        folder = rep_dir(reports, rep_id)
    except PipnbError:
        return None
    return folder if folder.is_dir() else None


def _rel(reports: Path, path: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(reports).resolve())).as_posix()


# --------------------------------------------------------------------------- printing

def to_json(board: Dashboard) -> str:
    """The dashboard as JSON (``pipnb status --format json``)."""
    raw = asdict(board)
    raw["teams"] = [{"team": team, "reps": [r.rep_id for r in rows]} for team, rows in board.teams()]
    return json.dumps(raw, indent=1, ensure_ascii=False)


def format_table(board: Dashboard) -> str:
    """The dashboard as plain text (``pipnb status``): one line per rep on a plan, grouped by team."""
    lines = [f"as of {board.today}; data up to {board.data_date or 'unknown'}"
             + (f"; latest team scan as of {board.scan_as_of}" if board.scan_as_of else "")]
    if not board.plans:
        lines.append("no rep is on a plan")
    for team, rows in board.teams():
        lines.append(f"\n{team}")
        for r in rows:
            marks = " ".join(f"{m.label}:{MARKS.get(m.status, '?')}" for m in r.measures if m.focus)
            nxt = f"{r.next_stage} {r.next_date} {r.next_state}".strip() if r.next_stage else r.next_label
            lines.append(f"  {r.rep_name} ({r.rep_id})  manager {r.manager or '—'}  {r.plan_status}  "
                         f"{r.start} to {r.end}  reached {r.stage_reached or '—'}  next {nxt or '—'}  {marks}")
            if r.reason:
                lines.append(f"    drafted without a shortfall, because: {r.reason}")
            if r.latest:
                lines.append(f"    {r.latest}")
    if board.flagged:
        lines.append("\nflagged by the latest team scan, no plan:")
        lines += [f"  {r.rep_name} ({r.rep_id})  {r.team}  short on {', '.join(r.metrics)}" for r in board.flagged]
    lines.append("\nmarks: ✓ met, ✗ not met, ? not yet clear, – no data, · not reviewed yet")
    return "\n".join(lines)
