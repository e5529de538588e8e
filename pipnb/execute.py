"""One job's execution, in a pool worker: run the notebook, then write its version of the report.

:func:`run_job` is what :func:`pipnb.runner.run_jobs` sends to each worker (a local process or a Dask worker). It

1. executes the notebook with papermill into a hidden temporary ``.ipynb`` beside the output;
2. stamps its :class:`~pipnb.record.RunRecord` (input hash, version, as-of date, named inputs, what changed
   since the version before, when) and exports the HTML report to a hidden temporary file;
3. renames the notebook (the audit record), then the report, into place.

A report is never lost: a job whose cell raises is *failed*; its partially executed notebook (with papermill's
error cell) is kept where :class:`~pipnb.versions.Output` says (where the next version would go, or for a report
that keeps one version beside it as ``<stage>.failed.ipynb``); a good report is never deleted or replaced by a
failure. A kernel that dies (or loses a ZMQ port race on start) is retried once. Every file is written through
a rename, so an interrupted batch (or a full disk) leaves whole files only.

The execution stack (papermill, nbclient, nbformat, jupyter_client, nbconvert) is imported where it is used,
not with this module: the batch process imports it to hand :func:`run_job` to its workers, and forks them
before it would need that stack (:func:`preload` is what each worker, or the batch for a pool it forks late,
loads once).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pipnb._version import __version__
from pipnb.io import atomic_path, atomic_write_text
from pipnb.job import Job, JobResult
from pipnb.progress import capture_warnings, one_line
from pipnb.record import RunRecord, read_outcome, write_record
from pipnb.report import export_html, exporter
from pipnb.versions import Output
from pipnb.workers import KERNEL_LOG

__all__ = ["KERNEL_TRANSPORT", "describe_error", "preload", "run_job"]

#: How the worker talks to its kernel: Unix sockets where there are some (no TCP port to race for
#: between parallel kernels, no "running over TCP without encryption" warning), else TCP.
KERNEL_TRANSPORT = "ipc" if os.name == "posix" else "tcp"


def run_job(job: Job, wanted_hash: str, out: Output) -> JobResult:
    """Execute one job and write its version of the report; never raises (the error goes in the result).

    Parameters
    ----------
    job
        The job, its paths absolute (:func:`pipnb.runner.run_jobs` resolves them).
    wanted_hash
        Its :func:`~pipnb.versions.input_hash`, stamped in the run record.
    out
        Where this run writes (:func:`~pipnb.versions.plan_output`).

    Returns
    -------
    JobResult
        ``ok``, or ``failed`` with the error in one line and the notebook kept when there is one.
    """
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
                error, partial = _timed_out(job, exc) or describe_error(exc), getattr(exc, "pipnb_notebook", None)
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
    import nbformat  # the execution stack (~0.3 s): only where a notebook runs
    import papermill  # papermill (0.35 s)
    from papermill.exceptions import PapermillExecutionError  # papermill (0.35 s)

    job.output_ipynb.parent.mkdir(parents=True, exist_ok=True)
    deadline = None if job.timeout is None else time.monotonic() + job.timeout
    # Papermill wants a name ending in .ipynb; the leading dot keeps it out of listings.
    tmp = job.output_ipynb.with_name(f".{job.base.name}.{uuid.uuid4().hex[:12]}.tmp.ipynb")
    try:
        try:
            return papermill.execute_notebook(
                str(job.notebook), str(tmp), parameters=dict(job.parameters), kernel_name=job.kernel_name,
                engine_name=_engine(),
                cwd=str(job.cwd) if job.cwd else None, progress_bar=False, log_output=False,
                request_save_on_cell_execute=False, execution_timeout=job.timeout,
                timeout_func=None if deadline is None else functools.partial(_time_left, deadline),
                shutdown_kernel="immediate",  # outputs are all in; do not wait for a graceful exit
                config=_kernel_config(),
            )
        except PapermillExecutionError as exc:
            if tmp.exists():  # papermill saved it with the error cell: the record of the failure
                exc.pipnb_notebook = nbformat.read(tmp, as_version=4)
            raise
    finally:
        tmp.unlink(missing_ok=True)


def _time_left(deadline: float, cell: Any = None) -> float:
    """The seconds a cell may run: what is left of the whole notebook's :attr:`Job.timeout` (never 0, which
    nbclient reads as no limit)."""
    return max(deadline - time.monotonic(), 0.01)


def _timed_out(job: Job, exc: BaseException) -> str:
    """The job's error when its notebook ran past :attr:`Job.timeout` (its kernel is stopped), else ``""``."""
    if job.timeout is None or not isinstance(exc, TimeoutError) or "timed out" not in str(exc):
        return ""
    limit = f"{job.timeout / 60:g} minutes" if job.timeout >= 60 else f"{job.timeout:g} seconds"
    return (f"stopped: the notebook was still running after {limit}, the policy's limit "
            "(notebook_timeout_minutes in params/policy.yaml); find the cell that does not end, or raise the limit")


@functools.cache
def _engine() -> str:
    """The name of papermill's nbclient engine minus its saves of the whole output notebook at every cell's start
    and end (two writes a cell, ~50 a report, each serializing every output so far). Papermill still writes it
    once at the end, and on a failure with the error marked, which is what :func:`_execute` reads."""
    from papermill.engines import NBClientEngine, papermill_engines  # papermill: heavy, see _execute

    class OneSaveEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, **kwargs):
            return super().execute_notebook(nb, kernel_name, output_path=None, **kwargs)

    papermill_engines.register("pipnb", OneSaveEngine)        # once a process
    return "pipnb"


def _record(job: Job, wanted_hash: str, out: Output, status: Literal["ok", "failed"], error: str = "",
            nb: Any = None) -> RunRecord:

    outcome = (read_outcome(nb) or {}) if status == "ok" and nb is not None else {}
    return RunRecord(input_hash=wanted_hash, status=status, label=job.label, fingerprint=job.fingerprint,
                     outcome=outcome, version=out.version, as_of=str(job.header.get("as_of", "") or ""),
                     inputs=out.inputs, changes=out.changes, error=error, pipnb_version=__version__,
                     written_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"))


def _write_report(nb, job: Job, wanted_hash: str, out: Output) -> Path | None:
    """Stamp the record, export the HTML to a hidden file, write the notebook, then rename the HTML into place;
    a failure file this run supersedes is removed. Returns the HTML path (None when the job has none)."""
    import nbformat  # heavy, see _execute

    write_record(nb, _record(job, wanted_hash, out, "ok", nb=nb))
    nb.metadata.setdefault("papermill", {})["output_path"] = str(out.ipynb)
    if out.html is None:
        atomic_write_text(out.ipynb, nbformat.writes(nb))
    else:
        with atomic_path(out.html) as tmp_html:
            export_html(nb, tmp_html, header=job.header)
            atomic_write_text(out.ipynb, nbformat.writes(nb))
    if out.failure != out.ipynb:
        out.failure.unlink(missing_ok=True)           # a failure this good run supersedes
    return out.html


def _write_failure(nb, job: Job, wanted_hash: str, out: Output, error: str) -> None:
    """Keep a failed run's notebook, with its error and record, where :class:`Output` says (never over a good
    report)."""
    import nbformat  # heavy, see _execute

    write_record(nb, _record(job, wanted_hash, out, "failed", error))
    nb.metadata.setdefault("papermill", {})["output_path"] = str(out.failure)
    atomic_write_text(out.failure, nbformat.writes(nb))


def _kernel_config():
    """Kernel-manager settings for one execution: IPC sockets under a path of their own (with the
    default relative ``kernel-ipc`` base, kernels started at once in one directory steal each
    other's sockets)."""
    from traitlets.config import Config  # jupyter's configuration: loaded with the execution stack only

    settings: dict[str, Any] = {"transport": KERNEL_TRANSPORT}
    if KERNEL_TRANSPORT == "ipc":
        settings["ip"] = os.path.join(tempfile.gettempdir(), f"pipnb-{uuid.uuid4().hex[:12]}")
    return Config({"KernelManager": settings,
                   "AsyncKernelManager": {"client_class": "pipnb.kernel_client.PromptKernelClient"}})


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
    from nbclient.exceptions import DeadKernelError  # nbclient: heavy, see _execute

    if isinstance(exc, DeadKernelError):
        return True
    try:
        import zmq  # pyzmq, jupyter_client's: loaded with the execution stack only

        if isinstance(exc, zmq.ZMQError):
            return True
    except ImportError:  # pragma: no cover - zmq comes with jupyter_client
        pass
    text = str(exc)
    return isinstance(exc, (RuntimeError, TimeoutError)) and (
        "Kernel died" in text or "Kernel didn't respond" in text or "kernel_info" in text)


def describe_error(exc: BaseException) -> str:
    """One line naming a job's error: the cell's exception and where, a kernel that died twice, or any other."""
    from papermill.exceptions import PapermillExecutionError  # papermill: heavy, see _execute

    if isinstance(exc, PapermillExecutionError):
        return f"{exc.ename}: {one_line(exc.evalue)} (at In [{exc.exec_count}])"
    if _kernel_died(exc):
        return f"kernel died twice: {one_line(exc)} (kernel stderr in {KERNEL_LOG})"
    return f"{type(exc).__name__}: {one_line(exc)}"


def preload() -> None:
    """Import the execution and export stack, and compile the report template, in this process.

    The exporter also converts one tiny notebook, so that what nbconvert builds on its first use (the Jinja
    templates compiled, BeautifulSoup's CSS selectors, about 0.4 s) is built once here and inherited by every
    worker, rather than paid by each worker on its first report.

    jsonschema (imported by nbformat, under papermill and nbconvert) builds an IRI grammar for about 2 s at
    import when the optional rfc3987_syntax is installed, and no schema a notebook is checked against has an
    "iri" format (measured in benchmarks/bench_scale.py, "whole command"): while the stack loads,
    rfc3987_syntax is hidden, so jsonschema leaves that format unchecked; any library may still import it later.
    """
    hidden = "rfc3987_syntax" not in sys.modules
    if hidden:
        sys.modules["rfc3987_syntax"] = None       # an import of it raises ImportError, which jsonschema allows
    try:
        import nbclient  # noqa: F401     # the execution stack (~0.3 s): what this function is for
        import nbformat  # nbformat (90 ms)
        import papermill  # noqa: F401
    finally:
        if hidden:
            del sys.modules["rfc3987_syntax"]

    cell = nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/markdown": "warm-up", "text/plain": "warm-up"})])
    exporter().from_notebook_node(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("warm-up"), cell]))
