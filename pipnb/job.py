"""The job model: what a batch runs and how each job ended, as plain data.

A :class:`Job` is one notebook run for one rep and stage; a :class:`Problem` is a job that could not be built
(named in the summary, never run); a :class:`JobResult` says how one job ended and :class:`RunSummary` counts a
batch's results and prints them on one screen. :mod:`pipnb.batch` builds the jobs, :func:`pipnb.runner.run_jobs`
runs them (:mod:`pipnb.execute` is one execution) and :mod:`pipnb.versions` decides which version of a report
a run writes; all of them read this model, which reads none of them.

Example
-------
>>> job = Job("notebooks/10-diagnose.ipynb", "reports/R07/diagnose.ipynb", "reports/R07/diagnose.html",
...           parameters={"rep_id": "R07"}, label="R07 diagnose")
>>> job.base.as_posix()
'reports/R07/diagnose'
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipnb.errors import RunError
from pipnb.record import IndexEntry

__all__ = ["Job", "JobResult", "JobStatus", "Problem", "RunSummary"]

JobStatus = Literal["ok", "failed", "skipped"]
#: Why a review skipped in a run waits (:attr:`Problem.state`): counted apart from the other skipped jobs.
WAITING = ("not due", "draft")


@dataclass(frozen=True)
class Job:
    """One notebook execution: a rep at a stage.

    Parameters
    ----------
    notebook
        The source notebook (its first code cell tagged ``parameters``).
    output_ipynb
        Where the executed notebook goes (kept even when a cell fails: the audit record). Later versions of a
        frozen report go beside it (``<stage>.v2.ipynb``, see :mod:`pipnb.record`).
    output_html
        Where the HTML report goes, or None for no report.
    parameters
        Injected by papermill; plain values (str, int, float, bool, None, lists and dicts of them).
        ``Path``, ``date`` and ``datetime`` values are passed as strings (ISO 8601 for dates).
    header
        The report header, see :func:`pipnb.report.export_html` (``rep_name``, ``stage``, ``as_of``,
        ``plan_period``, ``notes``, …).
    label
        A short name for progress, logs and the summary, e.g. ``"R07 diagnose"``.
    kernel_name
        The Jupyter kernel; None uses :func:`~pipnb.runner.run_jobs`'s ``kernel_name``, then the notebook's own.
    cwd
        The kernel's working directory; None is the current directory when :func:`~pipnb.runner.run_jobs` is called.
    fingerprint
        A fingerprint of the data the notebook reads (e.g. the team panel's hash): a change re-runs it.
    timeout
        Seconds the whole notebook may run: a notebook still running then is stopped (its kernel shut down) and
        the job fails alone; None waits forever. A batch takes it from the policy's ``notebook_timeout_minutes``.
    frozen
        A report that, once written, is never replaced: a later run with other inputs (or ``force``) writes
        the next version beside it. Otherwise a good run replaces the report (never a failed one).
    inputs
        Named fingerprints of what the notebook reads (``data``, ``plan``, ``policy`` ...): part of the input
        hash, recorded in the run record, and how "what changed" between versions is told.
    path_parameters
        Names of parameters that are only where an input lives (its content is in ``inputs``): left out of the
        input hash, so moving a file re-runs nothing.
    """

    notebook: Path | str
    output_ipynb: Path | str
    output_html: Path | str | None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    header: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    kernel_name: str | None = None
    cwd: Path | str | None = None
    fingerprint: str = ""
    timeout: float | None = None
    frozen: bool = False
    inputs: Mapping[str, str] = field(default_factory=dict)
    path_parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "notebook", Path(self.notebook))
        set_(self, "output_ipynb", Path(self.output_ipynb))
        set_(self, "output_html", None if self.output_html is None else Path(self.output_html))
        set_(self, "cwd", None if self.cwd is None else Path(self.cwd))
        set_(self, "parameters", {str(k): _plain(v) for k, v in dict(self.parameters).items()})
        set_(self, "header", dict(self.header))
        set_(self, "inputs", {str(k): str(v) for k, v in dict(self.inputs).items()})
        set_(self, "path_parameters", tuple(self.path_parameters))
        if not self.label:
            set_(self, "label", f"{self.notebook.stem} → {self.output_ipynb.stem}")

    @property
    def base(self) -> Path:
        """The report's path without suffix (``reports/R07/checkpoint-1``): its versions are named from it."""
        return self.output_ipynb.with_suffix("")


@dataclass(frozen=True)
class Problem:
    """A job that could not be built: a plan that cannot be read, a plan for a rep not in the data, a plan
    edited after it was locked, or (``skipped``) a file that is not a plan, named and left alone.

    Parameters
    ----------
    label
        What it is about, e.g. ``"params/plans/R14.yaml"`` or ``"R14 checkpoint-1"``.
    error
        One line: what is wrong and how to fix it.
    skipped
        Not a failure: the summary names it, the exit code stays 0.
    state
        For a skipped review, why it is not run yet: ``"not due"`` (the data does not reach its date) or
        ``"draft"`` (the plan was never activated). The summary counts them apart.
    """

    label: str
    error: str
    skipped: bool = False
    state: str = ""


@dataclass(frozen=True)
class JobResult:
    """How one :class:`Job` ended.

    Attributes
    ----------
    job
        The job (paths absolute); None for a :class:`Problem`.
    status
        ``"ok"``, ``"failed"`` or ``"skipped"`` (up to date, not executed; or a file that is not a plan).
    seconds
        Wall time in the worker (0 when skipped).
    error
        One line naming the error, ``""`` unless failed.
    ipynb
        The executed notebook written (or, for a failure, kept), or None when none was written. For a skipped
        job, the notebook of the report that is up to date.
    html
        The HTML report, or None when it was not written (a failure) or not asked for.
    attempts
        Executions tried (2 after a kernel death).
    messages
        Warnings raised while running the job (papermill's, e.g. an unknown parameter), one line each.
    version
        The report version written (or up to date).
    problem
        The problem, for a job that could not be built.
    lost_workers
        Dask workers that died while running the job (it was retried on another each time).
    """

    job: Job | None
    status: JobStatus
    seconds: float = 0.0
    error: str = ""
    ipynb: Path | None = None
    html: Path | None = None
    attempts: int = 0
    messages: tuple[str, ...] = ()
    version: int = 0
    problem: Problem | None = None
    lost_workers: int = 0

    @property
    def label(self) -> str:
        return self.job.label if self.job is not None else self.problem.label if self.problem else ""

    @property
    def outcome(self) -> str:
        """What the run's summary counts this job as: ``ok``, ``failed``, ``skipped``, or, for a review not run,
        why it waits (``not due``, ``draft``: :data:`WAITING`). The text summary and the JSON both use it."""
        state = getattr(self.problem, "state", None) if self.status == "skipped" else None
        return state if state in WAITING else self.status

    def index_entry(self) -> IndexEntry:
        """This result as a row of ``reports/index.html``: the report, or the kept notebook of a
        failure, under the header's ``rep_name`` and ``stage`` (the label when there is no stage)."""
        header = self.job.header if self.job is not None else {}
        return IndexEntry(rep=str(header.get("rep_name", "")), stage=str(header.get("stage") or self.label),
                          status=self.status, path=self.html or self.ipynb, note=self.error)


@dataclass(frozen=True)
class RunSummary:
    """Counts and failures of a batch, printable on one screen (``str(summary)``)."""

    results: tuple[JobResult, ...]

    @classmethod
    def from_results(cls, results: Sequence[JobResult]) -> RunSummary:
        return cls(tuple(results))

    def _with(self, status: JobStatus) -> list[JobResult]:
        return [r for r in self.results if r.status == status]

    @property
    def ok(self) -> list[JobResult]:
        return self._with("ok")

    @property
    def skipped(self) -> list[JobResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[JobResult]:
        return self._with("failed")

    def counts(self) -> dict[str, int]:
        """How many jobs ended each way (:attr:`JobResult.outcome`): ok, skipped, failed, not due, draft."""
        outcomes = [r.outcome for r in self.results]
        return {name: outcomes.count(name) for name in ("ok", "skipped", "failed", *WAITING)}

    def __str__(self) -> str:
        executed = sum(r.seconds for r in self.results)
        counts = self.counts()
        waiting = {s: [r for r in self.results if r.outcome == s] for s in WAITING}
        later = "".join(f", {counts[s]} {s}" for s in WAITING if counts[s])
        lines = [f"{counts['ok']} ok, {counts['skipped']} skipped, "
                 f"{counts['failed']} failed{later} ({len(self.results)} jobs, {executed:.1f} s of execution)"]
        for state, rs in waiting.items():
            if rs:
                lines.append(f"{state}:")
                lines += [f"  {r.label}  {r.error}" for r in rs]
        retried = [r for r in self.results if r.lost_workers]
        if retried:
            lines.append("retried after a lost Dask worker:")
            lines += [f"  {r.label}  ({r.lost_workers} lost, {r.status})" for r in retried]
        ignored = [r for r in self.skipped if r.problem is not None and r.outcome == "skipped"]
        if ignored:
            lines.append("not run:")
            lines += [f"  {r.label}  {r.error}" for r in ignored]
        if self.failed:
            width = max(len(r.label) for r in self.failed)
            lines.append("failed:")
            for r in self.failed:
                lines.append(f"  {r.label:<{width}}  {r.error}")
                if r.ipynb is not None:
                    lines.append(f"  {'':<{width}}  notebook kept: {_display_path(r.ipynb)}")
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise :class:`pipnb.errors.RunError` (exit code 1) when any job failed."""
        if self.failed:
            names = ", ".join(r.label for r in self.failed)
            kept = "; their executed notebooks are kept beside the reports" if any(r.ipynb for r in self.failed) \
                else ""
            raise RunError(f"{len(self.failed)} of {len(self.results)} jobs failed: {names}{kept} (see the summary)")


def _plain(value: Any) -> Any:
    """A parameter value papermill can write as a Python literal."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)

