"""Jobs on a Dask cluster that never hang: lost workers are retried elsewhere, a cluster gone is one clear error.

:func:`run_on_dask` submits each job as one task and yields results as they finish.

* A worker that dies under a job (killed, out of memory): the scheduler runs the job again on another worker
  (up to ``distributed.scheduler.allowed-failures`` times, then the job fails as *worker lost*); the result
  says how often, and the summary names it.
* An address is checked before any connection (:func:`check_address`: a ``tcp://`` or ``tls://`` scheme, a host
  and a port), then probed (:func:`probe_scheduler`): what answers must greet like a Dask scheduler within
  :data:`CONNECT_TIMEOUT` seconds (a dashboard, a web server or any other service is named as not one, never
  waited on). Either is a :class:`SchedulerError`: one line, exit 2, nothing run or written.
* Every worker must run the client's pipnb version (reports rendered with other templates and rules would not be
  the same reports): a mismatch when the run starts is a :class:`SchedulerError`; a worker that joins later fails
  the jobs it is given, saying why.
* No worker at all for :data:`NO_WORKERS_TIMEOUT` seconds, a scheduler that cannot be reached within
  :data:`CONNECT_TIMEOUT` seconds, or one lost mid-run: :class:`ClusterError`, one line saying what and how to
  fix it. The jobs that finished keep their results (the caller writes the summary and the index for them);
  the others are failed results saying they were not run.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from pipnb import _version
from pipnb.errors import JobError, RunError
from pipnb.job import JobResult

#: Seconds to wait for the scheduler to answer before giving up.
CONNECT_TIMEOUT = 10.0
#: Seconds the cluster may have no worker while jobs wait before the run stops.
NO_WORKERS_TIMEOUT = 60.0
#: Seconds between checks of the cluster while no job finishes.
POLL = 0.5
#: Address schemes pipnb sends jobs to (Dask's TCP and TLS transports).
SCHEMES = ("tcp", "tls")
#: The port of an address that names none (Dask's default).
DEFAULT_PORT = 8786
#: The most bytes a Dask scheduler's greeting (its handshake: compression, Python and pickle versions) takes.
GREETING_MAX = 1 << 16


class ClusterError(RunError):
    """The Dask cluster could not run the batch (unreachable, no workers, lost). ``results``: every job's
    result, those not run failed with the reason."""

    results: list = []


class SchedulerError(JobError):
    """``--scheduler`` names no Dask scheduler pipnb can use (a malformed address, another service, a worker with
    another pipnb version): nothing was run."""


def check_address(address: str) -> tuple[str, str, int]:
    """The scheme, host and port of a scheduler address (``tcp://host:8786``, ``tls://…``, ``host:port``).

    Raises
    ------
    SchedulerError
        One line naming the address (a bounded prefix of it) and what a scheduler address looks like.
    """
    shown = _shown(address)
    text = address.strip()
    text = text if "://" in text else f"tcp://{text}"
    fix = "give the scheduler's address as tcp://HOST:PORT (`dask scheduler` prints it; the port is usually 8786)"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise SchedulerError(f"--scheduler {shown!r} is not an address: {fix}") from None
    if parts.scheme not in SCHEMES:
        raise SchedulerError(f"--scheduler {shown!r}: the {parts.scheme}:// transport is not supported; {fix}")
    if (not host or len(host) > 253 or parts.path.strip("/") or parts.query or parts.fragment or parts.username
            or " " in text):
        raise SchedulerError(f"--scheduler {shown!r} is not an address: {fix}")
    return parts.scheme, host, port or DEFAULT_PORT


def probe_scheduler(address: str, *, timeout: float | None = None) -> None:
    """Check that a Dask scheduler answers at ``address``, within ``timeout`` seconds (:data:`CONNECT_TIMEOUT`).

    A Dask scheduler greets each connection first (its handshake, one length-prefixed message); something that
    sends nothing (an HTTP server such as the dashboard), or other bytes, is not one.

    Raises
    ------
    SchedulerError
        A malformed address, or something that is not a Dask scheduler.
    ClusterError
        Nothing answers at the address (refused, unknown host, no answer within the timeout).
    """
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    scheme, host, port = check_address(address)
    shown = _shown(address)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except (OSError, UnicodeError) as exc:
        why = "no such host" if isinstance(exc, (socket.gaierror, UnicodeError)) else type(exc).__name__
        raise ClusterError(f"the Dask scheduler at {shown} cannot be reached within {timeout:.0f} s ({why}); start "
                           "it (`dask scheduler`) or fix --scheduler") from None
    with sock:
        if scheme != "tcp":         # TLS greets inside the encrypted channel: the client's timeout covers it
            return
        not_dask = (f"--scheduler {shown}: what answers there is not a Dask scheduler (%s); give the scheduler's "
                    "address, not its dashboard's (the scheduler's port is usually 8786)")
        try:
            (size,) = struct.unpack("<Q", _receive(sock, 8))     # distributed's frame header: the message's bytes
            if not 0 < size <= GREETING_MAX:
                raise SchedulerError(not_dask % "it sent other bytes")
            if b"pickle-protocol" not in _receive(sock, size):
                raise SchedulerError(not_dask % "it sent other bytes")
        except TimeoutError:
            raise SchedulerError(not_dask % f"it sent nothing within {timeout:.0f} s") from None
        except (OSError, EOFError):
            raise SchedulerError(not_dask % "it closed the connection") from None


def _receive(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 16))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _shown(address: str, limit: int = 80) -> str:
    text = "".join(c if c.isprintable() else "?" for c in str(address)[:limit])
    return text + ("…" if len(str(address)) > limit else "")


def check_worker_versions(client: Any) -> None:
    """Refuse a cluster whose workers run another pipnb version than this client (one line naming one)."""
    try:
        found = client.run(_pipnb_version)
    except Exception:  # noqa: BLE001 - the per-job check still stops a worker of another version
        return
    mine = _version.__version__
    other = {worker: version for worker, version in found.items() if version != mine}
    if other:
        worker, version = sorted(other.items())[0]
        raise SchedulerError(f"the Dask worker at {worker} runs pipnb {version} and this client pipnb {mine} "
                             f"({len(other)} of {len(found)} workers differ): install pipnb {mine} on every worker, "
                             "so that every report is made by one version")


def _pipnb_version() -> str:
    return _version.__version__


def _same_version(run: Callable, expected: str, job: Any, wanted: str, out: Any) -> Any:
    """``run(job, wanted, out)`` on a worker of the client's pipnb version; else a failed result saying why."""
    here = _version.__version__
    if here != expected:
        return JobResult(job=job, status="failed", error=f"not run: its Dask worker runs pipnb {here}, the client "
                                                         f"pipnb {expected}; install pipnb {expected} on every worker")
    return run(job, wanted, out)


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
    SchedulerError
        The address is malformed or is not a Dask scheduler's, or a worker runs another pipnb version.
    """
    from distributed import Client  # distributed (0.3 s; optional: pipnb[dask])

    where = _address(scheduler)
    if isinstance(scheduler, Client):
        client = scheduler
    else:
        if isinstance(scheduler, str):
            probe_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"the Dask scheduler at {_shown(where)} cannot be reached within "
                               f"{CONNECT_TIMEOUT:.0f} s ({type(exc).__name__}); start it (`dask scheduler`) or fix "
                               "--scheduler") from None
        except Exception as exc:  # noqa: BLE001 - distributed raises many types for what is not a scheduler
            raise SchedulerError(f"--scheduler {_shown(where)}: cannot connect to a Dask scheduler there "
                                 f"({type(exc).__name__}); give the scheduler's address, tcp://HOST:8786") from None
        stack.callback(client.close)
    check_worker_versions(client)
    batch = uuid.uuid4().hex[:8]
    task = functools.partial(_same_version, run, _version.__version__)   # a worker of another version runs none
    futures = client.map(task, [job for _, job, _, _ in todo], [wanted for _, _, wanted, _ in todo],
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
