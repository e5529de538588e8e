"""Jobs on a Dask cluster that never hang: lost workers are retried elsewhere, a cluster gone is one clear error.

:func:`run_on_dask` submits each job as one task and yields results as they finish.

* A worker that dies under a job (killed, out of memory): the scheduler runs the job again on another worker
  (up to ``distributed.scheduler.allowed-failures`` times, then the job fails as *worker lost*); the result
  says how often, and the summary names it.
* No worker at all for :data:`NO_WORKERS_TIMEOUT` seconds, a scheduler that cannot be reached within
  :data:`CONNECT_TIMEOUT` seconds, or one lost mid-run: :class:`ClusterError`, one line saying what and how to
  fix it. The jobs that finished keep their results (the caller writes the summary and the index for them);
  the others are failed results saying they were not run.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from pipnb.errors import RunError

#: Seconds to wait for the scheduler to answer before giving up.
CONNECT_TIMEOUT = 10.0
#: Seconds the cluster may have no worker while jobs wait before the run stops.
NO_WORKERS_TIMEOUT = 60.0
#: Seconds between checks of the cluster while no job finishes.
POLL = 0.5


class ClusterError(RunError):
    """The Dask cluster could not run the batch (unreachable, no workers, lost). ``results``: every job's
    result, those not run failed with the reason."""

    results: list = []


@contextlib.contextmanager
def results_on_loss(results: list, todo: list, result_type: type) -> Iterator[None]:
    """On a :class:`ClusterError`, the jobs of ``todo`` without a result become failed ones saying why, and the
    error carries every result (the caller writes the summary and the index for what finished)."""
    try:
        yield
    except ClusterError as exc:
        for i, job, _, _ in todo:
            if results[i] is None:
                results[i] = result_type(job=job, status="failed", error=f"not run: {exc}")
        exc.results = list(results)
        raise


def run_on_dask(todo: list, scheduler: Any, stack: contextlib.ExitStack, run: Callable, crashed: Callable
                ) -> Iterator[tuple[int, Any]]:
    """Submit ``run(job, wanted, out)`` for each ``(i, job, wanted, out)`` of ``todo``; yield ``(i, result)``.

    Parameters
    ----------
    scheduler
        An address, a ``distributed.Client`` or a cluster object.
    crashed
        ``crashed(future, job)``: the result of a job whose future raised (its workers kept dying).

    Raises
    ------
    ClusterError
        Unreachable scheduler, no worker for :data:`NO_WORKERS_TIMEOUT` seconds, or the scheduler lost.
    """
    from distributed import Client  # distributed (0.3 s; optional: pipnb[dask])

    where = _address(scheduler)
    if isinstance(scheduler, Client):
        client = scheduler
    else:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"the Dask scheduler at {where} cannot be reached within {CONNECT_TIMEOUT:.0f} s "
                               f"({type(exc).__name__}); start it (`dask scheduler`) or fix --scheduler") from None
        stack.callback(client.close)
    batch = uuid.uuid4().hex[:8]
    futures = client.map(run, [job for _, job, _, _ in todo], [wanted for _, _, wanted, _ in todo],
                         [out for _, _, _, out in todo], key=[f"pipnb-{batch}-{i}" for i, _, _, _ in todo],
                         pure=False)
    index = {future.key: (i, job) for future, (i, job, _, _) in zip(futures, todo, strict=True)}
    return _drain(client, futures, index, where, crashed)


def _drain(client, futures: list, index: dict, where: str, crashed: Callable) -> Iterator[tuple[int, Any]]:
    pending = list(futures)
    idle_since: float | None = None
    checked = time.monotonic()
    while pending:
        done = [f for f in pending if f.done()]         # the client's thread keeps each future's state
        if not done:
            time.sleep(0.05)
        pending = [f for f in pending if f not in done]
        for future in done:
            i, job = index[future.key]
            lost = _lost_workers(client, future.key)
            result = crashed(future, job)
            if lost:
                note = f"its Dask worker died {lost} time{'s' if lost > 1 else ''}; retried on another worker"
                result = replace(result, attempts=result.attempts + lost, lost_workers=lost,
                                 messages=(*result.messages, note))
            future.release()
            yield i, result
        if done:
            idle_since = None
            continue
        if time.monotonic() - checked < POLL:
            continue
        checked = time.monotonic()
        try:
            workers = len(client.nthreads())
        except (OSError, TimeoutError):
            raise ClusterError(f"lost the Dask scheduler at {where}; the jobs not finished were not run: rerun to "
                               "finish them") from None
        if workers:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > NO_WORKERS_TIMEOUT:
            client.cancel(list(pending))
            raise ClusterError(f"the Dask cluster at {where} has had no worker for {NO_WORKERS_TIMEOUT:.0f} s; "
                               f"{len(pending)} jobs were not run: start workers (`dask worker {where}`) and rerun")


def _lost_workers(client, key: str) -> int:
    """How many workers died while running the task (the scheduler's ``suspicious`` count)."""
    try:
        return int(client.run_on_scheduler(_suspicious, key=key) or 0)
    except Exception:  # noqa: BLE001 - a count we cannot read is not a failure of the job
        return 0


def _suspicious(key: str, dask_scheduler=None) -> int:
    task = dask_scheduler.tasks.get(key)
    return task.suspicious if task is not None else 0


def _address(scheduler: Any) -> str:
    if isinstance(scheduler, str):
        return scheduler
    for name in ("scheduler_address", "address"):
        value = getattr(scheduler, name, None)
        if isinstance(value, str):
            return value
    return str(getattr(getattr(scheduler, "scheduler", None), "address", scheduler))
