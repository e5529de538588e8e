"""Batch execution: run many parameterized notebooks with papermill, in parallel, resumably, append-only.

:func:`run_jobs` takes jobs (:class:`~pipnb.job.Job`: one notebook run for one rep and stage), decides for each
whether it is up to date and otherwise which version of its report the run writes (:mod:`pipnb.versions`), then
fans the jobs out over a bounded local process pool (or a Dask cluster, :mod:`pipnb.cluster`); each worker runs
:func:`pipnb.execute.run_job` (one execution, and how a failure is kept). A *frozen* report (a checkpoint or
final review) is never replaced: a run with other inputs, or with ``force``, writes the next version beside it.
A job whose inputs are unchanged since its last good version is *skipped*, unless ``force``. An interrupted
batch leaves whole files only, and a rerun finishes the rest.

The local pool's workers are forked from this process (:func:`start_pool` forks them early, while the command
line prepares the batch) and watch it (:mod:`pipnb.workers`): if the batch is killed, they stop their kernels
and exit.

Example
-------
>>> from pipnb.job import Job, RunSummary
>>> jobs = [Job("notebooks/10-diagnose.ipynb", "reports/R07/diagnose.ipynb",      # doctest: +SKIP
...             "reports/R07/diagnose.html", parameters={"rep_id": "R07"},
...             header={"rep_name": "Dana Reyes", "stage": "diagnose"}, label="R07 diagnose")]
>>> results = run_jobs(jobs, jobs_n=2)                                            # doctest: +SKIP
>>> print(RunSummary.from_results(results))                                       # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipnb.cluster import results_on_loss, run_on_dask
from pipnb.errors import JobError
from pipnb.execute import describe_error, preload, run_job
from pipnb.job import Job, JobResult, Problem
from pipnb.progress import progress_bar
from pipnb.record import record_written
from pipnb.versions import Output, input_hash, plan_output
from pipnb.workers import KERNEL_LOG, init_pool_worker

__all__ = ["WarmPool", "local_workers", "run_jobs", "start_pool"]

log = logging.getLogger(__name__)


def run_jobs(jobs: Sequence[Job | Problem], *, jobs_n: int | None = None, force: bool = False,
             scheduler: Any = None, progress: bool = True, kernel_name: str | None = None,
             pool: WarmPool | None = None) -> list[JobResult]:
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
    pool
        Workers forked early by :func:`start_pool`: a run on a local pool of at least their number takes them
        (else they are shut down and the run forks its own). None: the run forks its pool when it needs one.

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
            stream = _start_pool(todo, local_workers(jobs_n), stack, pool)
        with progress_bar(len(items), progress) as bar:
            bar.update(len(items) - len(todo))
            for i, result in stream:
                results[i] = result
                if result.status == "ok":       # the hashes of what it wrote, in its folder's audit log
                    try:
                        record_written(result.ipynb, result.html, version=result.version)
                    except OSError as err:
                        log.warning("%s: its hashes were not recorded in the audit log: %s", result.label, err)
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


def _start_pool(todo: list[tuple[int, Job, str, Output]], jobs_n: int, stack: contextlib.ExitStack,
                warm: WarmPool | None) -> Iterator[tuple[int, JobResult]]:
    """Submit the jobs to a local process pool (``warm``'s when it fits); yield (index, result) as they finish.

    The workers are forked from this process (no re-import, no ``__main__`` guard needed), after
    papermill, nbconvert and the report template are loaded here once, so each worker starts warm. Each
    worker watches this process and exits when it is gone.
    """
    pool = warm.take(jobs_n) if warm is not None else None
    if pool is None:
        preload()
        pool = _new_pool(min(jobs_n, len(todo)), init_pool_worker)
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    futures = {pool.submit(run_job, job, wanted, out): (i, job) for i, job, wanted, out in todo}

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


class WarmPool:
    """A local pool forked before the batch is ready (:func:`start_pool`), handed to one :func:`run_jobs`.

    Its owner keeps it and closes it (``with start_pool(n) as pool: run_jobs(..., pool=pool)``): a run that takes
    the workers shuts them down when it ends; closing shuts down those no run took (nothing to do, or an error
    before the run).
    """

    def __init__(self, executor: concurrent.futures.ProcessPoolExecutor | None = None, size: int = 0) -> None:
        self._executor, self.size = executor, size

    def take(self, jobs_n: int) -> concurrent.futures.ProcessPoolExecutor | None:
        """The forked workers, once, when they are no more than ``jobs_n`` (else they are shut down): the
        taker shuts them down."""
        executor, self._executor = self._executor, None
        if executor is None or self.size <= jobs_n:
            return executor
        executor.shutdown(wait=False, cancel_futures=True)
        return None

    def close(self) -> None:
        """Shut down the workers when no run took them."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_pool(jobs_n: int) -> WarmPool:
    """Fork the local pool's ``jobs_n`` workers now, each loading and warming the execution and export stack
    itself (:func:`pipnb.execute.preload`), so that this work runs on the other cores while this process goes on
    preparing the batch; a :func:`run_jobs` given the returned pool, on a local pool of at least ``jobs_n``
    workers, uses them.

    For the command line, which knows early that it will run jobs. Linux only (the workers are forked;
    elsewhere the pool holds none and each run forks its own). Close the pool (a context manager) when done.
    """
    if not sys.platform.startswith("linux"):
        return WarmPool()
    executor = _new_pool(jobs_n, _init_warm_worker)
    executor.submit(os.getpid)       # a fork pool starts all its workers at its first task: now
    return WarmPool(executor, max(1, jobs_n))


def _init_warm_worker(stderr_log: str, parent: int) -> None:
    init_pool_worker(stderr_log, parent)
    preload()


def _start_dask(todo: list[tuple[int, Job, str, Output]], scheduler: Any, stack: contextlib.ExitStack
                ) -> Iterator[tuple[int, JobResult]]:
    """Submit the jobs to a Dask cluster; yield (index, result) as they finish (see :mod:`pipnb.cluster`)."""
    try:
        import distributed  # noqa: F401
    except ImportError:        # an optional extra: pip install 'pipnb[dask]'
        raise JobError("sending jobs to a Dask cluster needs dask and distributed: pip install 'pipnb[dask]' "
                       "(or run without --scheduler)") from None
    return run_on_dask(todo, scheduler, stack, run_job, _result_or_crash)


def _result_or_crash(future: Any, job: Job) -> JobResult:
    """The job's result, or a failed result when its worker itself died."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a lost worker fails this job only
        return JobResult(job=job, status="failed", error=f"worker lost: {describe_error(exc)}")
