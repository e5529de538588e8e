"""``reports/index.html``: every report on disk with its status and versions, and the stages a plan still expects.

The index is rebuilt from the files, not from memory, so ``pipnb index`` after any run (or none) gives the
same page: a rep's folder holds ``rep.json`` (their display name, written by :func:`pipnb.workdir.remember_rep`
when a job is built), their executed notebooks and their HTML reports, in versions (:mod:`pipnb.record`). A stage
shows its latest good report (with the line its notebook printed in the cell tagged ``pipnb-result``, e.g. a
final review's recommendation, and what changed since the version before) and links the earlier versions; a
failure newer than it is shown as *failed*, with a link to the kept notebook and to the last good report left
in place; a review an active plan expects but nobody ran yet is *missing* (a rep without a plan expects none).
Above that list, the dashboard of :mod:`pipnb.dashboard`. A ``rep.json`` that cannot be read
is named, never a traceback. This module gathers the rows from the files; :mod:`pipnb.index_page` draws the page.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pipnb.dashboard import dashboard
from pipnb.index_page import write_index as write_page
from pipnb.locks import writing
from pipnb.plan import plans_by_folder
from pipnb.record import IndexEntry, Version, failure_path, read_record, reading_once, versions
from pipnb.stages import FIXED_STAGES, checkpoint_number, review_stages
from pipnb.workdir import rep_info

if TYPE_CHECKING:
    from pipnb.job import JobResult

#: The tag of the cell whose first printed line the index shows beside the report.
RESULT_TAG = "pipnb-result"


def index_entries(reports: Path, params: Path, results: Iterable[JobResult] = (), *, data_date: str = ""
                  ) -> list[IndexEntry]:
    """Every report under ``reports/`` with its status; stages a plan expects but lacks are *missing*.

    Parameters
    ----------
    reports, params
        The reports folder and the params folder (its ``plans/*.yaml`` say which reviews are expected).
    results
        This run's results: a failure is shown with its error, a skipped job as up to date.
    data_date
        The data's last day: a review the data does not reach yet is *not due*, not *missing*.

    Returns
    -------
    list[IndexEntry]
        The team scan first, then per rep folder (sorted) its stages in lifecycle order.
    """
    by_base = {r.job.base.resolve(): r for r in results if r.job is not None}
    reports = Path(reports)
    entries = []
    if versions(reports / "team-scan") or failure_path(reports / "team-scan").exists():
        entries.append(_entry("", "scan", reports / "team-scan", by_base))
    plans = plans_by_folder(Path(params))
    folders = sorted(p for p in reports.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if reports.is_dir() else []
    for folder in folders:
        info = rep_info(folder)
        who = (f"{info.get('rep_name', folder.name)} ({info.get('rep_id', folder.name)})" if info is not None
               else f"{folder.name} (its rep.json cannot be read)")
        plan = plans.get(folder.name)
        wanted = ["diagnose", *(["plan"] if plan is not None else []),
                  *(plan.stages() if plan is not None and plan.status != "draft" else [])]
        on_disk = [checkpoint_number(p.name.split(".")[0]) or 0 for p in folder.glob("checkpoint-*.ipynb")]
        n_checkpoints = max([len(plan.checkpoints) if plan is not None else 0, *on_disk])
        for stage in [s for s in FIXED_STAGES if s != "scan"] + review_stages(n_checkpoints):
            base = folder / stage
            if stage in wanted or versions(base) or failure_path(base).exists():
                entry = _entry(who, stage, base, by_base)
                due = plan.checkpoint_dates().get(stage) if plan is not None else None
                if (entry.status == "missing" and due is not None and data_date
                        and not plan.data_reaches(stage, dt.date.fromisoformat(data_date))):
                    entry = IndexEntry(who, stage, "not due", None, f"due {due}; the data ends {data_date}")
                if stage == "plan" and plan is not None and entry.status == "ok":
                    entry = IndexEntry(who, stage, "ok", entry.path, f"plan status: {plan.signed_status()}",
                                       entry.earlier)
                entries.append(entry)
    return entries


def write_index(reports: Path, params: Path, results: Iterable[JobResult] = (), *, data_date: str = "") -> Path:
    """Write ``reports/index.html`` (:mod:`pipnb.index_page`): the dashboard (:mod:`pipnb.dashboard`: who is on a
    plan and how they are doing, then the flagged reps without a plan), then every report with its versions
    (:func:`index_entries`); returns its path. ``data_date`` is the data's last day, when the caller knows it."""
    with writing(reports), reading_once():     # one writer (pipnb.locks); each report read once between the
        board = dashboard(Path(reports), Path(params), data_date=data_date)     # dashboard and the report list
        entries = index_entries(Path(reports), Path(params), results, data_date=board.data_date)
        return write_page(entries, Path(reports) / "index.html",
                          title="pipnb — performance improvement plans",
                          header={"audience": "sales managers and HR partners", "as_of": board.today},
                          board=board, heading="Every report, with its earlier versions")


def _entry(who: str, stage: str, base: Path, by_base: dict) -> IndexEntry:
    """The row of one report: its latest good version (earlier ones linked), or a newer failure."""
    on_disk = versions(base)
    good = [v for v in on_disk if v.good]
    last = good[-1] if good else None
    kept = _newest_failure(on_disk, base, last)
    result = by_base.get(base.resolve())
    earlier = tuple((f"version {v.number}", v.html, _when(v)) for v in reversed(good[:-1]))
    if result is not None and result.status == "failed":
        keep = ((f"last good report, version {last.number}", last.html, _when(last)),) if last else ()
        return IndexEntry(who, stage, "failed", result.ipynb, result.error, keep + earlier)
    if kept is not None and (result is None or result.status != "skipped"):
        note = kept.record.error if kept.record is not None and kept.record.error else \
            "the executed notebook is kept for inspection"
        keep = ((f"last good report, version {last.number}", last.html, _when(last)),) if last else ()
        return IndexEntry(who, stage, "failed", kept.ipynb, note, keep + earlier)
    if last is not None:
        note = result_line(last.ipynb) or ("up to date" if result is not None and result.status == "skipped" else "")
        if last.record.version > 1:
            changed = "; ".join(last.record.changes)
            note = "; ".join(p for p in (note, f"version {last.record.version}" + (f": {changed}" if changed else ""))
                             if p)
        return IndexEntry(who, stage, "ok", last.html, note, earlier)
    if on_disk:
        record = on_disk[-1].record
        failed = record is not None and record.status == "failed"
        return IndexEntry(who, stage, "failed" if failed else "missing", on_disk[-1].ipynb,
                          "the executed notebook is kept for inspection")
    return IndexEntry(who, stage, "missing", None, "not run yet")


def _newest_failure(on_disk: list[Version], base: Path, last: Version | None) -> Version | None:
    """A failed run newer than the last good version: a failed version after it, or ``<base>.failed.ipynb``
    written after it."""
    after = [v for v in on_disk
             if v.record is not None and not v.record.ok and (last is None or v.number > last.number)]
    if after:
        return after[-1]
    path = failure_path(base)
    record = read_record(path)
    if record is None or record.ok:
        return None
    if last is not None and not _later(record.written_at, path, last.record.written_at or "", last.ipynb):
        return None
    return Version(last.number if last else 1, path, path.with_suffix(".html"), record)


def _later(written: str, path: Path, other_written: str, other_path: Path) -> bool:
    """Whether the report at ``path`` was written after the one at ``other_path``: by their records' times
    (whole seconds), and within the same second by the files' modification times."""
    if written != other_written:
        return written > other_written
    try:
        return path.stat().st_mtime_ns > other_path.stat().st_mtime_ns
    except OSError:
        return False


def _when(version: Version) -> str:
    """"as of 2026-04-26, written 2026-07-01; the data up to 2026-04-26 changed" for an earlier version."""
    record = version.record
    parts = [f"as of {record.as_of}" if record and record.as_of else "",
             f"written {record.written_at[:10]}" if record and record.written_at else ""]
    text = ", ".join(p for p in parts if p)
    return "; ".join([text, *record.changes]) if record and record.changes else text


def result_line(ipynb: Path) -> str:
    """The first printed line of the executed notebook's cell tagged ``pipnb-result`` (e.g. the final
    review's recommendation), or "" when there is none."""
    try:
        cells = json.loads(ipynb.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    for cell in cells:
        if RESULT_TAG in cell.get("metadata", {}).get("tags", []):
            text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("name") == "stdout")
            return text.strip().splitlines()[0] if text.strip() else ""
    return ""
