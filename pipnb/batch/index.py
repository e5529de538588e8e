"""``reports/index.html``: every report on disk with its status, and the stages a plan still expects.

The index is rebuilt from the files, not from memory, so ``pipnb index`` after any run (or none) gives the
same page: a rep's folder holds ``rep.json`` (their display name, written by :func:`remember_rep` when a
job is built), their executed notebooks and their HTML reports. A stage with HTML is *ok* (with the line
its notebook printed in the cell tagged ``pipnb-result``, e.g. a final review's recommendation), one with
only a notebook is *failed* or *missing* by the notebook's :class:`~pipnb.record.RunRecord`, and a review
an active plan expects but nobody ran yet is *missing*.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipnb.batch.prepare import rep_dir, safe_name
from pipnb.errors import PipnbError
from pipnb.io import atomic_write_text
from pipnb.plan import Plan
from pipnb.record import read_record
from pipnb.report import IndexEntry
from pipnb.report import write_index as write_page
from pipnb.stages import FIXED_STAGES, checkpoint_number, review_stages

if TYPE_CHECKING:
    from pipnb.runner import JobResult

#: The tag of the cell whose first printed line the index shows beside the report.
RESULT_TAG = "pipnb-result"


def remember_rep(reports: Path, rep_id: str, rep: Mapping[str, Any]) -> None:
    """Record the rep's display name and team beside their reports (``reports/<rep>/rep.json``), for the index."""
    folder = rep_dir(reports, rep_id)
    atomic_write_text(folder / "rep.json", json.dumps({"rep_id": str(rep_id), "rep_name": str(rep["rep_name"]),
                                                       "team": str(rep["team"])}))


def index_entries(reports: Path, params: Path, results: Iterable[JobResult] = ()) -> list[IndexEntry]:
    """Every report under ``reports/`` with its status; stages a plan expects but lacks are *missing*.

    Parameters
    ----------
    reports, params
        The reports folder and the params folder (its ``plans/*.yaml`` say which reviews are expected).
    results
        This run's results: a failure is shown with its error, a skipped job as up to date.

    Returns
    -------
    list[IndexEntry]
        The team scan first, then per rep folder (sorted) its stages in lifecycle order.
    """
    by_path = {Path(r.job.output_ipynb).resolve(): r for r in results}
    entries = []
    if (reports / "team-scan.html").exists() or (reports / "team-scan.ipynb").exists():
        entries.append(_entry("", "scan", reports / "team-scan", by_path))
    plans = _plans_by_folder(Path(params) / "plans")
    folders = sorted(p for p in Path(reports).iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if Path(reports).is_dir() else []
    for folder in folders:
        meta = folder / "rep.json"
        info = json.loads(meta.read_text()) if meta.exists() else {"rep_id": folder.name, "rep_name": folder.name}
        who = f"{info['rep_name']} ({info['rep_id']})"
        plan = plans.get(folder.name)
        wanted = ["diagnose", "plan", *(plan.stages() if plan is not None and plan.status != "draft" else [])]
        on_disk = [checkpoint_number(p.stem) or 0 for p in folder.glob("checkpoint-*.ipynb")]
        n_checkpoints = max([len(plan.checkpoints) if plan is not None else 0, *on_disk])
        for stage in [s for s in FIXED_STAGES if s != "scan"] + review_stages(n_checkpoints):
            base = folder / stage
            if stage in wanted or base.with_suffix(".ipynb").exists():
                entry = _entry(who, stage, base, by_path)
                if stage == "plan" and plan is not None and entry.status == "ok":
                    entry = IndexEntry(who, stage, "ok", entry.path, f"plan status: {plan.status}")
                entries.append(entry)
    return entries


def write_index(reports: Path, params: Path, results: Iterable[JobResult] = ()) -> Path:
    """Write ``reports/index.html`` from :func:`index_entries`; returns its path."""
    return write_page(index_entries(Path(reports), Path(params), results), Path(reports) / "index.html",
                      title="pipnb — performance improvement plans",
                      header={"audience": "sales managers and HR partners"})


def _plans_by_folder(plan_dir: Path) -> dict[str, Plan]:
    """Every readable plan under ``params/plans``, by the folder name of its rep (broken ones are left out)."""
    plans = {}
    for path in sorted(plan_dir.glob("*.yaml")) if plan_dir.is_dir() else []:
        try:
            plan = Plan.from_yaml(path)
        except PipnbError:
            continue
        plans[safe_name(plan.rep_id)] = plan
    return plans


def _entry(who: str, stage: str, base: Path, by_path: dict) -> IndexEntry:
    html, ipynb = base.with_suffix(".html"), base.with_suffix(".ipynb")
    result = by_path.get(ipynb.resolve())
    if result is not None and result.status == "failed":
        return IndexEntry(who, stage, "failed", ipynb if ipynb.exists() else None, result.error)
    if result is not None and result.status == "skipped" and html.exists():
        return IndexEntry(who, stage, "ok", html, result_line(ipynb) or "up to date")
    if html.exists():
        return IndexEntry(who, stage, "ok", html, result_line(ipynb))
    if ipynb.exists():
        record = read_record(ipynb)
        failed = record is not None and record.status == "failed"
        return IndexEntry(who, stage, "failed" if failed else "missing", ipynb,
                          "the executed notebook is kept for inspection")
    return IndexEntry(who, stage, "missing", None, "not run yet")


def result_line(ipynb: Path) -> str:
    """The first printed line of the executed notebook's cell tagged ``pipnb-result`` (e.g. the final
    review's recommendation), or "" when there is none."""
    try:
        cells = json.loads(ipynb.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return ""
    for cell in cells:
        if RESULT_TAG in cell.get("metadata", {}).get("tags", []):
            text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("name") == "stdout")
            return text.strip().splitlines()[0] if text.strip() else ""
    return ""
