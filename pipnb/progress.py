"""What a batch run shows and collects while it runs: the progress display, and each job's warnings.

:func:`progress_bar` shows progress on stderr in one of three ways (:func:`progress_mode`):

* ``bar``: a tqdm bar, when stderr is a terminal; log records are routed through it, so a warning printed
  mid-run does not break the bar;
* ``lines``: one plain line per finished job (``pipnb: 3/10 jobs done``), when stderr is a pipe or a CI
  log: no ``\r`` frames;
* ``off``: nothing, with ``--quiet`` / ``--no-progress`` (:func:`configure`) or ``TQDM_DISABLE`` set.
 :func:`capture_warnings` collects, in a worker, the warnings logged by the
thread running one job (papermill logs "Passed unknown parameter" as one), so the job's result can carry
them back to the caller. Both are used by the batch only (:mod:`pipnb.runner`, :mod:`pipnb.execute`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, Literal

__all__ = ["capture_warnings", "configure", "one_line", "progress_bar", "progress_mode", "quiet"]

ProgressMode = Literal["bar", "lines", "off"]
_SETTINGS = {"progress": True, "quiet": False}
_FALSE = {"", "0", "false", "no", "off"}


def configure(*, progress: bool | None = None, quiet: bool | None = None) -> None:
    """Set this process's display: ``progress`` False hides progress; ``quiet`` also hides notes (the CLI's
    ``--no-progress`` and ``--quiet``)."""
    if progress is not None:
        _SETTINGS["progress"] = progress
    if quiet is not None:
        _SETTINGS["quiet"] = quiet


def quiet() -> bool:
    """Whether notes (what was loaded, which kernel) are to be left out (``--quiet``)."""
    return bool(_SETTINGS["quiet"])


def progress_mode(enabled: bool = True, stream: Any = None) -> ProgressMode:
    """How progress is shown: ``off`` when not ``enabled``, with ``--quiet`` / ``--no-progress`` or
    ``TQDM_DISABLE`` set (tqdm's own switch); else ``bar`` on a terminal and ``lines`` anywhere else."""
    stream = stream or sys.stderr
    if not enabled or not _SETTINGS["progress"] or _SETTINGS["quiet"] or \
            os.environ.get("TQDM_DISABLE", "").strip().lower() not in _FALSE:
        return "off"
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


class _Lines:
    """Progress as plain lines on a stream: one per update, ``pipnb: 3/10 jobs done``."""

    def __init__(self, total: int, stream: Any):
        self.total, self.n, self.stream = total, 0, stream

    def update(self, n: int = 1) -> None:
        if n <= 0:
            return
        self.n += n
        print(f"pipnb: {self.n}/{self.total} jobs done", file=self.stream, flush=True)


def one_line(value: object, limit: int = 200) -> str:
    """``value`` as text on one line (whitespace collapsed), cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _ListHandler(logging.Handler):
    """Collects the warnings logged by the thread that created it, one line each."""

    def __init__(self, sink: list[str]):
        super().__init__(logging.WARNING)
        self.sink, self.thread = sink, threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.sink.append(one_line(record.getMessage()))


@contextlib.contextmanager
def capture_warnings(sink: list[str]) -> Iterator[None]:
    """Append to ``sink`` every warning this thread logs (any logger) while the block runs."""
    handler = _ListHandler(sink)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    """Progress over ``total`` jobs on stderr, as :func:`progress_mode` says: a tqdm bar (log records go
    through ``tqdm.write`` while it is shown), plain lines, or nothing (``update`` does nothing visible)."""
    mode = progress_mode(enabled)
    if mode == "lines":
        yield _Lines(total, sys.stderr)
        return
    from tqdm.auto import tqdm  # tqdm (45 ms): only when a bar is shown
    from tqdm.contrib.logging import logging_redirect_tqdm  # tqdm (45 ms): only when a bar is shown

    with tqdm(total=total, desc="pipnb", unit="job", disable=mode == "off", file=sys.stderr,
              dynamic_ncols=True) as bar:
        if mode == "off":
            yield bar
            return
        root = logging.getLogger()
        fallback = None
        if not root.handlers:  # nobody configured logging: stand in for logging.lastResort
            fallback = logging.StreamHandler(sys.stderr)
            fallback.setLevel(logging.WARNING)
            root.addHandler(fallback)
        try:
            with logging_redirect_tqdm(loggers=[root], tqdm_class=tqdm):
                yield bar
        finally:
            if fallback is not None:
                root.removeHandler(fallback)
