"""What a batch run tells a script: the files it wrote, and its results as JSON (``pipnb run --format json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipnb.job import RunSummary

__all__ = ["run_json", "written_paths"]


def written_paths(summary: RunSummary) -> list[Path]:
    """The files the run wrote, in job order: each report and its executed notebook, and the notebook kept for
    each failure (a skipped job wrote nothing)."""
    paths: list[Path] = []
    for result in summary.results:
        if result.status == "skipped":
            continue
        paths += [p for p in (result.html, result.ipynb) if p is not None]
    return paths


def run_json(summary: RunSummary, *, pdfs: list[Path] | tuple[Path, ...] = (), **files: Path | None) -> str:
    """The run's results as one JSON object: ``summary`` counts, one entry per job (label, status -- what the
    summary counts it as (:attr:`~pipnb.job.JobResult.outcome`): ``ok``, ``skipped``, ``failed``, or ``not due``
    or ``draft`` for a review not run --, state, seconds, attempts, version, html, ipynb, error, messages), the
    other ``files`` written (index, data quality) and the ``pdfs`` printed."""
    def path(p: Path | None) -> str | None:
        return None if p is None else str(p)

    jobs: list[dict[str, Any]] = [{
        "label": r.label, "status": r.outcome, "state": getattr(r.problem, "state", None) or None,
        "seconds": round(r.seconds, 3), "attempts": r.attempts,
        "version": r.version, "html": path(r.html), "ipynb": path(r.ipynb), "error": r.error,
        "messages": list(r.messages),
    } for r in summary.results]
    counts = {**summary.counts(), "jobs": len(summary.results),
              "seconds": round(sum(r.seconds for r in summary.results), 3)}
    return json.dumps({"summary": counts, "jobs": jobs, "files": {k: path(v) for k, v in files.items()},
                       "pdfs": [str(p) for p in pdfs]}, indent=1)
