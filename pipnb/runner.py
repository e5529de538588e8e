"""Batch execution: run many parameterized notebooks with papermill, in parallel, resumably.

One :class:`Job` is one notebook run for one rep and stage. :func:`run_jobs` fans jobs out over a
bounded process pool (or a Dask cluster), and each worker

1. executes the notebook with papermill into a hidden temporary ``.ipynb`` beside the output;
2. stamps its :class:`~pipnb.record.RunRecord` (input hash, status) and renames it into place: the audit
   record;
3. exports the HTML report in-process (:func:`pipnb.report.export_html`), atomically.

A job whose cell raises is *failed*: its partially executed notebook (with papermill's error cell)
is kept, no HTML is written, the other jobs go on. A kernel that dies (or loses a ZMQ port race on
start) is retried once. A job whose inputs (notebook content, parameters, header, data fingerprint)
are unchanged since its last successful run is *skipped*, unless ``force``. Every file is written
through a rename, so an interrupted batch leaves whole files only and a rerun finishes the rest.

Example
-------
>>> jobs = [Job("notebooks/10-diagnose.ipynb", "reports/R07/diagnose.ipynb",      # doctest: +SKIP
...             "reports/R07/diagnose.html", parameters={"rep_id": "R07"},
...             header={"rep_name": "Dana Reyes", "stage": "diagnose"}, label="R07 diagnose")]
>>> results = run_jobs(jobs, jobs_n=2)                                            # doctest: +SKIP
>>> print(RunSummary.from_results(results))                                       # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pipnb.errors import JobError, RunError
from pipnb.io import atomic_write_text
from pipnb.progress import capture_warnings, one_line, progress_bar
from pipnb.record import RunRecord, read_record, write_record
from pipnb.report import IndexEntry

__all__ = ["Job", "JobResult", "JobStatus", "RunSummary", "input_hash", "run_jobs"]

log = logging.getLogger(__name__)

JobStatus = Literal["ok", "failed", "skipped"]

#: Bump when what a run writes changes in a way that should invalidate every up-to-date report.
HASH_SCHEME = "pipnb-run-1"

#: How the worker talks to its kernel: Unix sockets where there are some (no TCP port to race for
#: between parallel kernels, no "running over TCP without encryption" warning), else TCP.
KERNEL_TRANSPORT = "ipc" if os.name == "posix" else "tcp"

#: Where local pool workers and their kernels write stderr (kernel start-up chatter would break the
#: progress bar); cleared when it passes 5 MB.
KERNEL_LOG = Path(tempfile.gettempdir()) / f"pipnb-kernels-{getattr(os, 'getuid', lambda: 0)()}.log"


@dataclass(frozen=True)
class Job:
    """One notebook execution: a rep at a stage.

    Parameters
    ----------
    notebook
        The source notebook (its first code cell tagged ``parameters``).
    output_ipynb
        Where the executed notebook goes (kept even when a cell fails: the audit record).
    output_html
        Where the HTML report goes, or None for no report.
    parameters
        Injected by papermill; plain values (str, int, float, bool, None, lists and dicts of them).
        ``Path``, ``date`` and ``datetime`` values are passed as strings (ISO 8601 for dates).
    header
        The report header, see :func:`pipnb.report.export_html` (``rep_name``, ``stage``, ``as_of``,
        ``plan_period``, …).
    label
        A short name for progress, logs and the summary, e.g. ``"R07 diagnose"``.
    kernel_name
        The Jupyter kernel; None uses :func:`run_jobs`'s ``kernel_name``, then the notebook's own.
    cwd
        The kernel's working directory; None is the current directory when :func:`run_jobs` is called.
    fingerprint
        A fingerprint of the data the notebook reads (e.g. the team panel's hash): a change re-runs it.
    timeout
        Seconds one cell may run before the job fails; None waits forever.
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

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "notebook", Path(self.notebook))
        set_(self, "output_ipynb", Path(self.output_ipynb))
        set_(self, "output_html", None if self.output_html is None else Path(self.output_html))
        set_(self, "cwd", None if self.cwd is None else Path(self.cwd))
        set_(self, "parameters", {str(k): _plain(v) for k, v in dict(self.parameters).items()})
        set_(self, "header", dict(self.header))
        if not self.label:
            set_(self, "label", f"{self.notebook.stem} → {self.output_ipynb.stem}")


@dataclass(frozen=True)
class JobResult:
    """How one :class:`Job` ended.

    Attributes
    ----------
    job
        The job (paths absolute).
    status
        ``"ok"``, ``"failed"`` or ``"skipped"`` (up to date, not executed).
    seconds
        Wall time in the worker (0 when skipped).
    error
        One line naming the error, ``""`` unless failed.
    ipynb
        The executed notebook written or kept, or None when none was written.
    html
        The HTML report, or None when it was not written (a failure) or not asked for.
    attempts
        Executions tried (2 after a kernel death).
    messages
        Warnings raised while running the job (papermill's, e.g. an unknown parameter), one line each.
    """

    job: Job
    status: JobStatus
    seconds: float = 0.0
    error: str = ""
    ipynb: Path | None = None
    html: Path | None = None
    attempts: int = 0
    messages: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.job.label

    def index_entry(self) -> IndexEntry:
        """This result as a row of ``reports/index.html``: the report, or the kept notebook of a
        failure, under the header's ``rep_name`` and ``stage`` (the label when there is no stage)."""
        header = self.job.header
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

    def __str__(self) -> str:
        executed = sum(r.seconds for r in self.results)
        lines = [f"{len(self.ok)} ok, {len(self.skipped)} skipped, {len(self.failed)} failed "
                 f"({len(self.results)} jobs, {executed:.1f} s of execution)"]
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
            raise RunError(f"{len(self.failed)} of {len(self.results)} jobs failed: {names}; their executed "
                           "notebooks are kept beside the reports (see the summary)")


# --------------------------------------------------------------------------- input hash

def input_hash(job: Job) -> str:
    """The hash of everything a job's output depends on.

    The notebook file's content, the parameters, the header, the data fingerprint and
    :data:`HASH_SCHEME`; not the kernel, the paths or the working directory.
    """
    digest = hashlib.sha256(HASH_SCHEME.encode())
    digest.update(Path(job.notebook).read_bytes())
    digest.update(json.dumps([job.parameters, job.header, job.fingerprint], sort_keys=True,
                             default=str).encode())
    return digest.hexdigest()


def _up_to_date(job: Job, wanted: str) -> bool:
    """True when the job's notebook and HTML both exist and were written by a successful run
    with the same input hash."""
    from pipnb.report import read_input_hash

    if job.output_html is not None and read_input_hash(job.output_html) != wanted:
        return False
    record = read_record(job.output_ipynb)
    return record is not None and record.input_hash == wanted and record.ok


# --------------------------------------------------------------------------- the worker side

def _run_job(job: Job, wanted_hash: str) -> JobResult:
    """Execute one job and export its report; never raises (the error goes in the result)."""
    start = time.perf_counter()
    messages: list[str] = []
    attempts, error, nb = 0, "", None
    _remove_stale_temp_files(job)
    with capture_warnings(messages):
        while nb is None and not error:
            attempts += 1
            try:
                nb = _execute(job, wanted_hash)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a result
                if attempts == 1 and _kernel_died(exc):
                    messages.append(f"kernel died ({type(exc).__name__}: {one_line(exc)}); retrying once")
                    continue
                error = _describe(exc)
        html = None
        if nb is not None and job.output_html is not None:
            try:
                from pipnb.report import export_html

                html = export_html(nb, job.output_html, header=job.header)
            except Exception as exc:  # noqa: BLE001
                error = f"HTML export failed: {one_line(exc)}"
    ipynb = job.output_ipynb if job.output_ipynb.exists() and (nb is not None or _kept(job, wanted_hash)) \
        else None
    if error and job.output_html is not None and job.output_html.exists():
        job.output_html.unlink()  # an older report would pass for this run's: the kept notebook is the record
    return JobResult(job=job, status="failed" if error else "ok", seconds=time.perf_counter() - start,
                     error=error, ipynb=ipynb, html=html, attempts=attempts, messages=tuple(messages))


def _execute(job: Job, wanted_hash: str):
    """Run papermill into a temporary file, stamp ``metadata.pipnb``, rename into place."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out = job.output_ipynb
    out.parent.mkdir(parents=True, exist_ok=True)
    # Papermill wants a name ending in .ipynb; the leading dot keeps it out of listings.
    tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:12]}.tmp.ipynb")
    try:
        try:
            nb = papermill.execute_notebook(
                str(job.notebook), str(tmp), parameters=dict(job.parameters), kernel_name=job.kernel_name,
                cwd=str(job.cwd) if job.cwd else None, progress_bar=False, log_output=False,
                request_save_on_cell_execute=False, execution_timeout=job.timeout,
                shutdown_kernel="immediate",  # outputs are all in; do not wait for a graceful exit
                config=_kernel_config(),
            )
        except PapermillExecutionError:
            if tmp.exists():  # papermill saved it with the error cell: keep it as the record
                _write_record(nbformat.read(tmp, as_version=4), job, wanted_hash, "failed")
            raise
        _write_record(nb, job, wanted_hash, "ok")
        return nb
    finally:
        tmp.unlink(missing_ok=True)


def _kernel_config():
    """Kernel-manager settings for one execution: IPC sockets under a path of their own (with the
    default relative ``kernel-ipc`` base, kernels started at once in one directory steal each
    other's sockets)."""
    from traitlets.config import Config

    settings: dict[str, Any] = {"transport": KERNEL_TRANSPORT}
    if KERNEL_TRANSPORT == "ipc":
        settings["ip"] = os.path.join(tempfile.gettempdir(), f"pipnb-{uuid.uuid4().hex[:12]}")
    return Config({"KernelManager": settings})


def _remove_stale_temp_files(job: Job) -> None:
    """Remove what a killed run of this job left: papermill's and pipnb.io's temporary files."""
    for final in (job.output_ipynb, job.output_html):
        if final is not None and final.parent.is_dir():
            for pattern in (f".{final.stem}.{'[0-9a-f]' * 12}.tmp.ipynb", f".{final.name}.{'?' * 8}.tmp"):
                for stale in final.parent.glob(pattern):
                    stale.unlink(missing_ok=True)


def _write_record(nb, job: Job, wanted_hash: str, status: Literal["ok", "failed"]) -> None:
    """Stamp the run's :class:`~pipnb.record.RunRecord` on the notebook and write it to its place."""
    import nbformat

    write_record(nb, RunRecord(input_hash=wanted_hash, status=status, label=job.label,
                               fingerprint=job.fingerprint))
    nb.metadata.get("papermill", {})["output_path"] = str(job.output_ipynb)
    atomic_write_text(job.output_ipynb, nbformat.writes(nb))


def _kept(job: Job, wanted_hash: str) -> bool:
    """True when the notebook on disk is this run's failed record (not an older file)."""
    record = read_record(job.output_ipynb)
    return record is not None and record.input_hash == wanted_hash


def _kernel_died(exc: BaseException) -> bool:
    """A dead kernel or a failed kernel start (e.g. two kernels racing for a ZMQ port)."""
    from nbclient.exceptions import DeadKernelError

    if isinstance(exc, DeadKernelError):
        return True
    try:
        import zmq

        if isinstance(exc, zmq.ZMQError):
            return True
    except ImportError:  # pragma: no cover - zmq comes with jupyter_client
        pass
    text = str(exc)
    return isinstance(exc, (RuntimeError, TimeoutError)) and (
        "Kernel died" in text or "Kernel didn't respond" in text or "kernel_info" in text)


def _describe(exc: BaseException) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"{exc.ename}: {one_line(exc.evalue)} (at In [{exc.exec_count}])"
    if _kernel_died(exc):
        return f"kernel died twice: {one_line(exc)} (kernel stderr in {KERNEL_LOG})"
    return f"{type(exc).__name__}: {one_line(exc)}"


def _init_pool_worker(stderr_log: str) -> None:
    """Send a pool worker's stderr (and so its kernels') to a log file, not the caller's terminal."""
    try:
        if os.path.getsize(stderr_log) > 5_000_000:
            os.truncate(stderr_log, 0)
    except OSError:
        pass
    try:
        fd = os.open(stderr_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 2)
    os.close(fd)
    logging.captureWarnings(True)  # Python warnings become log records, collected per job


# --------------------------------------------------------------------------- orchestration

def run_jobs(jobs: Sequence[Job], *, jobs_n: int | None = None, force: bool = False,
             scheduler: Any = None, progress: bool = True, kernel_name: str | None = None
             ) -> list[JobResult]:
    """Run every job, in parallel, skipping those already up to date.

    Parameters
    ----------
    jobs
        The jobs; two jobs must not write the same output.
    jobs_n
        Notebooks run at once (local process pool size); default ``os.cpu_count()``.
        Ignored with ``scheduler``.
    force
        Run every job, even those up to date.
    scheduler
        A Dask scheduler address (``"tcp://host:8786"``), a ``distributed.Client`` or a cluster object:
        run the jobs there instead of a local pool (paths must be visible to the workers).
    progress
        Show a progress bar on stderr (log records are routed through it).
    kernel_name
        The kernel for jobs whose ``kernel_name`` is None (e.g. ``"pipnb-fast"``); None uses each
        notebook's own kernelspec.

    Returns
    -------
    list[JobResult]
        One result per job, in the order of ``jobs``. Failures are results, never exceptions: see
        :meth:`RunSummary.raise_for_failures`.

    Raises
    ------
    JobError
        When two jobs write the same file.
    """
    jobs = [_resolved(job, kernel_name) for job in jobs]
    _check_distinct_outputs(jobs)
    results: list[JobResult | None] = [None] * len(jobs)
    todo: list[tuple[int, Job, str]] = []
    for i, job in enumerate(jobs):
        wanted = input_hash(job)
        if not force and _up_to_date(job, wanted):
            results[i] = JobResult(job=job, status="skipped", ipynb=job.output_ipynb, html=job.output_html)
        else:
            todo.append((i, job, wanted))

    with contextlib.ExitStack() as stack:
        # Start the workers before the progress bar (and its monitor thread): the pool forks.
        stream: Iterator[tuple[int, JobResult]] = iter(())
        if todo and scheduler is not None:
            stream = _start_dask(todo, scheduler, stack)
        elif todo:
            stream = _start_pool(todo, jobs_n or os.cpu_count() or 1, stack)
        with progress_bar(len(jobs), progress) as bar:
            bar.update(len(jobs) - len(todo))
            for i, result in stream:
                results[i] = result
                for message in result.messages:
                    log.warning("%s: %s", result.label, message)
                if result.status == "failed":
                    log.warning("%s failed: %s", result.label, result.error)
                else:
                    log.info("%s done in %.1f s", result.label, result.seconds)
                bar.update(1)
    return [r for r in results if r is not None]


def _resolved(job: Job, kernel_name: str | None) -> Job:
    """Absolute paths (workers may run elsewhere) and the effective kernel and working directory."""
    return replace(
        job, notebook=job.notebook.resolve(), output_ipynb=job.output_ipynb.resolve(),
        output_html=None if job.output_html is None else job.output_html.resolve(),
        cwd=(job.cwd or Path.cwd()).resolve(), kernel_name=job.kernel_name or kernel_name,
    )


def _check_distinct_outputs(jobs: Sequence[Job]) -> None:
    seen: dict[Path, str] = {}
    for job in jobs:
        for path in (job.output_ipynb, job.output_html):
            if path is None:
                continue
            if path in seen:
                raise JobError(f"jobs {seen[path]!r} and {job.label!r} both write {path}; give each its own output")
            seen[path] = job.label


def _start_pool(todo: list[tuple[int, Job, str]], jobs_n: int, stack: contextlib.ExitStack
                ) -> Iterator[tuple[int, JobResult]]:
    """Submit the jobs to a local process pool; yield (index, result) as they finish.

    The workers are forked from this process (no re-import, no ``__main__`` guard needed), after
    papermill, nbconvert and the report template are loaded here once, so each worker starts warm.
    """
    _preload()
    # fork: workers inherit the loaded modules, environment and directory. macOS cannot fork safely.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=max(1, min(jobs_n, len(todo))), mp_context=multiprocessing.get_context(method),
        initializer=_init_pool_worker, initargs=(str(KERNEL_LOG),))
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    futures = {pool.submit(_run_job, job, wanted): (i, job) for i, job, wanted in todo}

    def drain() -> Iterator[tuple[int, JobResult]]:
        for future in concurrent.futures.as_completed(futures):
            i, job = futures[future]
            yield i, _result_or_crash(future, job)

    return drain()


def _start_dask(todo: list[tuple[int, Job, str]], scheduler: Any, stack: contextlib.ExitStack
                ) -> Iterator[tuple[int, JobResult]]:
    """Submit the jobs to a Dask cluster; yield (index, result) as they finish."""
    from distributed import Client, as_completed

    if isinstance(scheduler, Client):
        client = scheduler
    else:  # an address, or a cluster object (LocalCluster, …)
        client = Client(scheduler)
        stack.callback(client.close)
    batch = uuid.uuid4().hex[:8]
    futures = client.map(_run_job, [job for _, job, _ in todo], [wanted for _, _, wanted in todo],
                         key=[f"pipnb-{batch}-{i}" for i, _, _ in todo], pure=False)
    index = {future.key: (i, job) for future, (i, job, _) in zip(futures, todo, strict=True)}

    def drain() -> Iterator[tuple[int, JobResult]]:
        for future in as_completed(futures):
            i, job = index[future.key]
            yield i, _result_or_crash(future, job)

    return drain()


def _preload() -> None:
    """Import the execution and export stack, and compile the report template, in this process."""
    import nbclient  # noqa: F401
    import papermill  # noqa: F401

    from pipnb.report import _exporter

    _exporter()


def _result_or_crash(future: Any, job: Job) -> JobResult:
    """The job's result, or a failed result when its worker itself died."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a lost worker fails this job only
        return JobResult(job=job, status="failed", error=f"worker lost: {_describe(exc)}")


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
