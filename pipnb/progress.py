"""What a batch run shows and collects while it runs: the progress bar, and each job's warnings.

:func:`progress_bar` draws one tqdm bar on stderr and routes log records through it, so a warning printed
mid-run does not break the bar. :func:`capture_warnings` collects, in a worker, the warnings logged by the
thread running one job (papermill logs "Passed unknown parameter" as one), so the job's result can carry
them back to the caller. Both are used by :mod:`pipnb.runner` only.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["capture_warnings", "one_line", "progress_bar"]


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
    """A tqdm bar on stderr counting ``total`` jobs; while it is shown, log records go through ``tqdm.write``.

    With ``enabled`` False the bar is a silent stand-in (``update`` does nothing visible).
    """
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with tqdm(total=total, desc="pipnb", unit="job", disable=not enabled, file=sys.stderr,
              dynamic_ncols=True) as bar:
        if not enabled:
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
