"""Pool workers that never outlive their batch: each watches the process that started it.

If the batch is killed (the out-of-memory killer, a closed terminal), the worker stops its kernels and
exits instead of holding memory forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

#: How often (seconds) a pool worker checks that the batch that started it is still alive.
PARENT_POLL = 0.5

#: Where local pool workers and their kernels write stderr (kernel start-up chatter would break the
#: progress bar); cleared when it passes 5 MB.
KERNEL_LOG = Path(tempfile.gettempdir()) / f"pipnb-kernels-{getattr(os, 'getuid', lambda: 0)()}.log"


def init_pool_worker(stderr_log: str, parent: int) -> None:
    """Send a pool worker's stderr (and so its kernels') to a log file, not the caller's terminal, and
    start watching the batch process that started the worker."""
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
    threading.Thread(target=_watch_parent, args=(parent,), name="pipnb-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    """Exit when the batch process is gone (killed, e.g. by the out-of-memory killer): a worker left behind
    would hold its memory and its kernel forever. Its kernels are stopped first."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    _stop_children()
    os._exit(1)


def _stop_children() -> None:
    """Terminate this process's children (its kernels), then kill those that remain after a second."""
    children = _children()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 1.0
        while children and time.monotonic() < deadline:
            children = [pid for pid in children if _alive(pid)]
            time.sleep(0.05)
        if not children:
            return


def _children() -> list[int]:
    """This process's child pids (Linux: ``/proc``; elsewhere none are known)."""
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in task.read_text().split()]
    return pids


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return False
