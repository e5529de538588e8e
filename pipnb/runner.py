"""Batch execution: run many parameterized notebooks with papermill, in parallel, resumably, append-only.

One :class:`Job` is one notebook run for one rep and stage. :func:`run_jobs` decides, for each job, whether
it is up to date and otherwise which version of its report the run writes (:mod:`pipnb.record`), then fans
the jobs out over a bounded process pool (or a Dask cluster). Each worker

1. executes the notebook with papermill into a hidden temporary ``.ipynb`` beside the output;
2. stamps its :class:`~pipnb.record.RunRecord` (input hash, version, as-of date, named inputs, what changed
   since the version before, when) and exports the HTML report to a hidden temporary file;
3. renames the notebook (the audit record), then the report, into place.

Which version a run writes lives in :mod:`pipnb.versions`; how pool workers watch their batch in
:mod:`pipnb.workers`. A report is never lost: a job whose cell raises is *failed*; its partially executed notebook (with
papermill's error cell) is kept where the next version would go, or for a report that keeps one version
(:attr:`Job.frozen` False) beside it as ``<stage>.failed.ipynb``; a good report is never deleted or
replaced by a failure. A *frozen* report (a checkpoint or final review) is never replaced at all: a run with
other inputs, or with ``force``, writes the next version beside it. A kernel that dies (or loses a ZMQ port
race on start) is retried once. A job whose inputs are unchanged since its last good version is *skipped*,
unless ``force``. Every file is written through a rename, so an interrupted batch (or a full disk) leaves
whole files only and a rerun finishes the rest. Pool workers watch their parent: if the batch is killed,
they stop their kernels and exit.

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
import functools
import logging
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pipnb.cluster import results_on_loss
from pipnb.errors import JobError
from pipnb.io import atomic_path, atomic_write_text
from pipnb.job import Job, JobResult, Problem
from pipnb.progress import capture_warnings, one_line, progress_bar
from pipnb.record import RunRecord, write_record
from pipnb.versions import Output, input_hash, plan_output
from pipnb.workers import init_pool_worker

__all__ = ["run_jobs"]

log = logging.getLogger(__name__)

#: How the worker talks to its kernel: Unix sockets where there are some (no TCP port to race for
#: between parallel kernels, no "running over TCP without encryption" warning), else TCP.
KERNEL_TRANSPORT = "ipc" if os.name == "posix" else "tcp"

#: Where local pool workers and their kernels write stderr (kernel start-up chatter would break the
#: progress bar); cleared when it passes 5 MB.
KERNEL_LOG = Path(tempfile.gettempdir()) / f"pipnb-kernels-{getattr(os, 'getuid', lambda: 0)()}.log"


# --------------------------------------------------------------------------- the worker side

def _run_job(job: Job, wanted_hash: str, out: Output) -> JobResult:
    """Execute one job and write its version of the report; never raises (the error goes in the result)."""
    start = time.perf_counter()
    messages: list[str] = []
    attempts, error, nb, partial = 0, "", None, None
    _remove_stale_temp_files(job, out)
    with capture_warnings(messages):
        while nb is None and not error:
            attempts += 1
            try:
                nb = _execute(job)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a result
                if attempts == 1 and _kernel_died(exc):
                    messages.append(f"kernel died ({type(exc).__name__}: {one_line(exc)}); retrying once")
                    continue
                error, partial = _describe(exc), getattr(exc, "pipnb_notebook", None)
        html = ipynb = None
        if nb is not None:
            try:
                html = _write_report(nb, job, wanted_hash, out)
                ipynb = out.ipynb
            except Exception as exc:  # noqa: BLE001 - a report that cannot be written is a failure
                what = "HTML export failed" if not isinstance(exc, OSError) else "the report could not be written"
                error, partial = f"{what}: {type(exc).__name__}: {one_line(exc)}", nb
        if error and partial is not None:
            try:
                _write_failure(partial, job, wanted_hash, out, error)
                ipynb = out.failure
            except Exception as exc:  # noqa: BLE001 - e.g. the disk is full
                error += f" (its notebook could not be kept either: {type(exc).__name__}: {one_line(exc)})"
    return JobResult(job=job, status="failed" if error else "ok", seconds=time.perf_counter() - start,
                     error=error, ipynb=ipynb, html=html, attempts=attempts, messages=tuple(messages),
                     version=out.version)


def _execute(job: Job):
    """Run papermill into a temporary file and return the executed notebook (the temporary file is removed).

    A cell that raises raises :class:`~papermill.exceptions.PapermillExecutionError` carrying the partially
    executed notebook as ``pipnb_notebook``.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    job.output_ipynb.parent.mkdir(parents=True, exist_ok=True)
    # Papermill wants a name ending in .ipynb; the leading dot keeps it out of listings.
    tmp = job.output_ipynb.with_name(f".{job.base.name}.{uuid.uuid4().hex[:12]}.tmp.ipynb")
    try:
        try:
            return papermill.execute_notebook(
                str(job.notebook), str(tmp), parameters=dict(job.parameters), kernel_name=job.kernel_name,
                engine_name=_engine(),
                cwd=str(job.cwd) if job.cwd else None, progress_bar=False, log_output=False,
                request_save_on_cell_execute=False, execution_timeout=job.timeout,
                shutdown_kernel="immediate",  # outputs are all in; do not wait for a graceful exit
                config=_kernel_config(),
            )
        except PapermillExecutionError as exc:
            if tmp.exists():  # papermill saved it with the error cell: the record of the failure
                exc.pipnb_notebook = nbformat.read(tmp, as_version=4)
            raise
    finally:
        tmp.unlink(missing_ok=True)


@functools.cache
def _engine() -> str:
    """The name of papermill's nbclient engine minus its saves of the whole output notebook at every cell's start
    and end (two writes a cell, ~50 a report, each serializing every output so far). Papermill still writes it
    once at the end, and on a failure with the error marked, which is what :func:`_execute` reads."""
    from papermill.engines import NBClientEngine, papermill_engines

    class OneSaveEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, **kwargs):
            return super().execute_notebook(nb, kernel_name, output_path=None, **kwargs)

    papermill_engines.register("pipnb", OneSaveEngine)        # once a process
    return "pipnb"


def _record(job: Job, wanted_hash: str, out: Output, status: Literal["ok", "failed"], error: str = "",
            nb: Any = None) -> RunRecord:
    from pipnb.outcome import read_outcome

    outcome = (read_outcome(nb) or {}) if status == "ok" and nb is not None else {}
    return RunRecord(input_hash=wanted_hash, status=status, label=job.label, fingerprint=job.fingerprint,
                     outcome=outcome, version=out.version, as_of=str(job.header.get("as_of", "") or ""),
                     inputs=out.inputs, changes=out.changes, error=error,
                     written_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"))


def _write_report(nb, job: Job, wanted_hash: str, out: Output) -> Path | None:
    """Stamp the record, export the HTML to a hidden file, write the notebook, then rename the HTML into place;
    a failure file this run supersedes is removed. Returns the HTML path (None when the job has none)."""
    import nbformat

    write_record(nb, _record(job, wanted_hash, out, "ok", nb=nb))
    nb.metadata.setdefault("papermill", {})["output_path"] = str(out.ipynb)
    if out.html is None:
        atomic_write_text(out.ipynb, nbformat.writes(nb))
    else:
        from pipnb.report import export_html

        with atomic_path(out.html) as tmp_html:
            export_html(nb, tmp_html, header=job.header)
            atomic_write_text(out.ipynb, nbformat.writes(nb))
    if out.failure != out.ipynb:
        out.failure.unlink(missing_ok=True)           # a failure this good run supersedes
    return out.html


def _write_failure(nb, job: Job, wanted_hash: str, out: Output, error: str) -> None:
    """Keep a failed run's notebook, with its error and record, where :class:`Output` says (never over a good
    report)."""
    import nbformat

    write_record(nb, _record(job, wanted_hash, out, "failed", error))
    nb.metadata.setdefault("papermill", {})["output_path"] = str(out.failure)
    atomic_write_text(out.failure, nbformat.writes(nb))


def _kernel_config():
    """Kernel-manager settings for one execution: IPC sockets under a path of their own (with the
    default relative ``kernel-ipc`` base, kernels started at once in one directory steal each
    other's sockets)."""
    from traitlets.config import Config

    settings: dict[str, Any] = {"transport": KERNEL_TRANSPORT}
    if KERNEL_TRANSPORT == "ipc":
        settings["ip"] = os.path.join(tempfile.gettempdir(), f"pipnb-{uuid.uuid4().hex[:12]}")
    return Config({"KernelManager": settings,
                   "AsyncKernelManager": {"client_class": "pipnb.runner.PromptKernelClient"}})


@functools.cache
def _prompt_kernel_client():
    """:class:`PromptKernelClient`, defined on first use (jupyter_client is imported only to run notebooks)."""
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient

    class PromptKernelClient(AsyncKernelClient):
        """The client nbclient talks to a report's kernel through: ready as soon as the kernel answers
        ``kernel_info`` and IOPub delivers a message (so it is connected), as jupyter_client's own check. That
        check then also waits until IOPub has been silent for 0.2 s, at every kernel start; nbclient reads only
        the IOPub messages answering its own requests, so the wait buys a report nothing."""

        async def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            while True:
                self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    try:
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        pass                    # IOPub not connected yet: ask again
                    else:
                        self._handle_kernel_info_reply(reply)
                        return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    return PromptKernelClient


def __getattr__(name: str):
    if name == "PromptKernelClient":      # named by the kernel-manager settings of :func:`_kernel_config`
        return _prompt_kernel_client()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _remove_stale_temp_files(job: Job, out: Output) -> None:
    """Remove what a killed run of this job left: papermill's and pipnb.io's temporary files."""
    folder = job.output_ipynb.parent
    if not folder.is_dir():
        return
    patterns = [f".{job.base.name}.{'[0-9a-f]' * 12}.tmp.ipynb"]
    patterns += [f".{final.name}.{'?' * 8}.tmp" for final in (out.ipynb, out.html, out.failure) if final is not None]
    for pattern in patterns:
        for stale in folder.glob(pattern):
            stale.unlink(missing_ok=True)


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


# --------------------------------------------------------------------------- orchestration

def run_jobs(jobs: Sequence[Job | Problem], *, jobs_n: int | None = None, force: bool = False,
             scheduler: Any = None, progress: bool = True, kernel_name: str | None = None
             ) -> list[JobResult]:
    """Run every job, in parallel, skipping those already up to date.

    Parameters
    ----------
    jobs
        The jobs; two jobs must not write the same output. A :class:`Problem` (a job that could not be
        built) becomes a failed (or, for a file that is not a plan, skipped) result without running.
    jobs_n
        Notebooks run at once (local process pool size); default ``os.cpu_count()``.
        Ignored with ``scheduler``.
    force
        Run every job, even those up to date (a frozen report gets a new version, never a rewrite).
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
    pipnb.cluster.ClusterError
        When the Dask cluster cannot be reached, has no worker for a while, or is lost; its ``results`` hold
        every job's result (those not run failed, saying why).
    """
    items = [item if isinstance(item, Problem) else _resolved(item, kernel_name) for item in jobs]
    _check_distinct_outputs([j for j in items if isinstance(j, Job)])
    results: list[JobResult | None] = [None] * len(items)
    todo: list[tuple[int, Job, str, Output]] = []
    for i, item in enumerate(items):
        if isinstance(item, Problem):
            results[i] = JobResult(job=None, status="skipped" if item.skipped else "failed", error=item.error,
                                   problem=item)
            continue
        wanted = input_hash(item)
        out, last = plan_output(item, wanted, force=force)
        if out is None:
            results[i] = JobResult(job=item, status="skipped", ipynb=last.ipynb,
                                   html=last.html if item.output_html is not None else None,
                                   version=last.record.version)
        else:
            todo.append((i, item, wanted, out))

    with results_on_loss(results, todo, JobResult), contextlib.ExitStack() as stack:
        # Start the workers before the progress bar (and its monitor thread): the pool forks.
        stream: Iterator[tuple[int, JobResult]] = iter(())
        if todo and scheduler is not None:
            stream = _start_dask(todo, scheduler, stack)
        elif todo:
            stream = _start_pool(todo, local_workers(jobs_n), stack)
        with progress_bar(len(items), progress) as bar:
            bar.update(len(items) - len(todo))
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
            key = Path(str(path).casefold())       # one file where names ignore case (macOS, Windows)
            if key in seen:
                raise JobError(f"jobs {seen[key]!r} and {job.label!r} both write {path}; give each its own output")
            seen[key] = job.label


def _start_pool(todo: list[tuple[int, Job, str, Output]], jobs_n: int, stack: contextlib.ExitStack
                ) -> Iterator[tuple[int, JobResult]]:
    """Submit the jobs to a local process pool; yield (index, result) as they finish.

    The workers are forked from this process (no re-import, no ``__main__`` guard needed), after
    papermill, nbconvert and the report template are loaded here once, so each worker starts warm. Each
    worker watches this process and exits when it is gone.
    """
    pool = _early_pool(jobs_n)
    if pool is None:
        _preload()
        pool = _new_pool(min(jobs_n, len(todo)), init_pool_worker)
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    futures = {pool.submit(_run_job, job, wanted, out): (i, job) for i, job, wanted, out in todo}

    def drain() -> Iterator[tuple[int, JobResult]]:
        for future in concurrent.futures.as_completed(futures):
            i, job = futures[future]
            yield i, _result_or_crash(future, job)

    return drain()


def local_workers(jobs_n: int | None) -> int:
    """The local pool's size for ``--jobs`` (``None`` or 0: one worker per core)."""
    return jobs_n or os.cpu_count() or 1


def _new_pool(workers: int, initializer) -> concurrent.futures.ProcessPoolExecutor:
    """A local pool of ``workers`` processes, each started by ``initializer(stderr log, this process's pid)``.

    Forked on Linux: workers inherit the loaded modules, environment and directory (macOS cannot fork safely).
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=max(1, workers), mp_context=multiprocessing.get_context(method),
        initializer=initializer, initargs=(str(KERNEL_LOG), os.getpid()))


_EARLY: list[tuple[concurrent.futures.ProcessPoolExecutor, int]] = []   # see start_pool


def start_pool(jobs_n: int) -> None:
    """Fork the local pool's ``jobs_n`` workers now, each loading and warming the execution and export stack
    itself (:func:`_preload`), so that this work runs on the other cores while this process goes on preparing
    the batch; the next :func:`run_jobs` on a local pool of at least ``jobs_n`` workers uses them.

    For the command line, which knows early that it will run jobs. Linux only (the workers are forked); a pool
    that no run took is shut down by :func:`stop_pool`.
    """
    if _EARLY or not sys.platform.startswith("linux"):
        return
    pool = _new_pool(jobs_n, _init_warm_worker)
    pool.submit(os.getpid)       # a fork pool starts all its workers at its first task: now
    _EARLY.append((pool, max(1, jobs_n)))


def stop_pool() -> None:
    """Shut down the pool :func:`start_pool` forked, when no run took it."""
    while _EARLY:
        _EARLY.pop()[0].shutdown(wait=True, cancel_futures=True)


def _early_pool(jobs_n: int) -> concurrent.futures.ProcessPoolExecutor | None:
    """The pool :func:`start_pool` forked, when it has no more workers than ``jobs_n`` (else it is stopped)."""
    if not _EARLY:
        return None
    pool, size = _EARLY.pop()
    if size <= jobs_n:
        return pool
    pool.shutdown(wait=False, cancel_futures=True)
    return None


def _init_warm_worker(stderr_log: str, parent: int) -> None:
    init_pool_worker(stderr_log, parent)
    _preload()


def _start_dask(todo: list[tuple[int, Job, str, Output]], scheduler: Any, stack: contextlib.ExitStack
                ) -> Iterator[tuple[int, JobResult]]:
    """Submit the jobs to a Dask cluster; yield (index, result) as they finish (see :mod:`pipnb.cluster`)."""
    try:
        import distributed  # noqa: F401
    except ImportError:        # an optional extra: pip install 'pipnb[dask]'
        raise JobError("sending jobs to a Dask cluster needs dask and distributed: pip install 'pipnb[dask]' "
                       "(or run without --scheduler)") from None
    from pipnb.cluster import run_on_dask

    return run_on_dask(todo, scheduler, stack, _run_job, _result_or_crash)


def _preload() -> None:
    """Import the execution and export stack, and compile the report template, in this process.

    The exporter also converts one tiny notebook, so that what nbconvert builds on its first use (the Jinja
    templates compiled, BeautifulSoup's CSS selectors, about 0.4 s) is built once here and inherited by every
    worker, rather than paid by each worker on its first report.
    """
    import nbclient  # noqa: F401
    import nbformat
    import papermill  # noqa: F401

    from pipnb.report import _exporter

    exporter = _exporter()
    cell = nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/markdown": "warm-up", "text/plain": "warm-up"})])
    exporter.from_notebook_node(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("warm-up"), cell]))


def _result_or_crash(future: Any, job: Job) -> JobResult:
    """The job's result, or a failed result when its worker itself died."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a lost worker fails this job only
        return JobResult(job=job, status="failed", error=f"worker lost: {_describe(exc)}")
