"""One writer at a time: a lock per folder that a command writes (issue 24).

Every command that writes a working folder's files holds the folder's lock while it writes: a run (``pipnb run``,
``diagnose``, ``plan --data``, ``review``, ``demo``: from claiming a report version to the index), a signed step
(``pipnb plan activate|acknowledge|extend|complete|close``, ``pipnb plan event``: the plan file's read, change and
write), an index write (``pipnb index``, and the index a run rebuilds) and ``pipnb render``. The lock is per
*folder*, not per rep: a run writes every rep's reports and the one ``reports/index.html`` of them all, and reads
the plans a signed step changes, so a lock per rep would still need a folder lock for the index.

A command names the folders it writes (:func:`writing`); they are locked in the order of their resolved paths (two
commands never wait for each other in a circle). A folder's lock lives beside it, with the working folder's other
state (the cache): ``<parent>/.pipnb/locks/<folder name>.lock`` (``<work>/.pipnb/locks/reports.lock`` and
``params.lock``), never among the reports that are shared and published, and the ``reports`` or ``params`` of a
refused command are left exactly as they were (when the parent cannot be written: ``<folder>/.pipnb.lock``). The
holder writes who it is beside the lock (``<folder name>.holder``: pid, host, command and start time), so a second
writer that waits longer than :data:`WAIT_SECONDS` (``PIPNB_LOCK_WAIT`` overrides it) stops with one line naming
the holder (a :class:`LockedError`, exit 2), before it has written anything.

The locks are the operating system's (``filelock``: ``flock`` on Unix), so a killed holder's lock is freed with its
process; its holder file stays behind and the next holder writes its own over it. A process takes each lock once:
a nested :func:`writing` of a folder it holds (the index a run rebuilds) goes on at once. The jobs of a run (local
workers forked from it, Dask workers) never take it: the process that claims the versions and writes the index
holds it for them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import filelock

from pipnb.errors import PipnbError
from pipnb.io import atomic_write_text

__all__ = ["WAIT_SECONDS", "LockedError", "holder_file", "lock_file", "writing"]

#: How long a second writer waits for a folder's lock before it stops (seconds).
WAIT_SECONDS = 30.0
#: The environment variable that sets another wait (seconds, e.g. for tests).
WAIT_ENV = "PIPNB_LOCK_WAIT"
LOCKS = Path(".pipnb") / "locks"          # beside the folder: <parent>/.pipnb/locks/<name>.lock
_SHOWN = 120                # characters of each field of a holder file that an error shows

#: The folders held by this process (or, in a job forked from it, by its parent): resolved path -> the holder's pid.
_held: dict[Path, int] = {}


class LockedError(PipnbError):
    """Another pipnb process is writing the folder and did not finish within the bounded wait."""


def wait_seconds() -> float:
    """The bounded wait: ``PIPNB_LOCK_WAIT`` when set (seconds, 0 or more), else :data:`WAIT_SECONDS`."""
    text = os.environ.get(WAIT_ENV, "").strip()
    if not text:
        return WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86400:
        raise PipnbError(f"{WAIT_ENV}={text[:_SHOWN]!r} is not a number of seconds from 0 to 86400; unset it "
                         f"(default {WAIT_SECONDS:g}) or give one")
    return seconds


@contextmanager
def writing(*folders: str | os.PathLike[str] | None, command: str | None = None) -> Iterator[None]:
    """Hold the lock of each folder (None ones are skipped) while the block writes them.

    Parameters
    ----------
    folders
        The folders the block writes (a working folder's ``reports`` and ``params``); one that does not exist is
        created first. A folder that cannot be created or that is read-only gets no lock: nobody writes it.
    command
        What the holder is doing, for a waiting writer's message (default: ``pipnb`` and the command line's
        words before its first option, so that no option value, such as a database URL, is written down).

    Raises
    ------
    LockedError
        When another process holds a folder's lock for longer than :func:`wait_seconds` (nothing is written).
    """
    paths = sorted({Path(f).expanduser().resolve() for f in folders if f is not None})
    with ExitStack() as stack:
        for path in paths:
            stack.enter_context(_holding(path, command))
        yield


@contextmanager
def _holding(folder: Path, command: str | None) -> Iterator[None]:
    held = _held.get(folder)
    if held == os.getpid():       # this process holds it (the index a run rebuilds): the outer block releases it
        yield
        return
    if held is not None:          # a job forked from the holder: it must leave the writing to its parent
        raise PipnbError(f"{folder}: a job of a run tried to take the folder's lock its run holds; "
                         "only the process that writes the index and claims the versions takes it")
    found = _lock_file(folder)
    if found is None:
        yield
        return
    lock, holder = filelock.FileLock(found), holder_file(found)
    wait = wait_seconds()
    try:
        lock.acquire(timeout=wait)
    except filelock.Timeout:
        raise LockedError(f"{folder} is being written by {_holder(holder)}; waited {wait:g} s "
                          f"({WAIT_ENV} sets the wait); run again when it has finished") from None
    _held[folder] = os.getpid()
    try:
        try:
            atomic_write_text(holder, json.dumps(_me(command)) + "\n")
        except OSError:              # the message then names no holder; the lock itself holds
            pass
        yield
    finally:
        _held.pop(folder, None)
        try:
            holder.unlink(missing_ok=True)        # before the release: the next holder's file is its own
        except OSError:
            pass
        lock.release()


def lock_file(folder: str | os.PathLike[str]) -> Path:
    """Where the folder's lock is: ``<parent>/.pipnb/locks/<name>.lock``, or ``<folder>/.pipnb.lock`` when the
    parent cannot be written (the folder and the lock folder are created)."""
    found = _lock_file(Path(folder).expanduser().resolve())
    if found is None:
        raise PipnbError(f"{folder}: cannot be written, so it has no lock")
    return found


def holder_file(lock: Path) -> Path:
    """The file beside a lock that names its holder."""
    return lock.with_suffix(".holder")


def _lock_file(folder: Path) -> Path | None:
    """The folder's lock file, or None when the folder cannot be written (created, or a lock made for it)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    for where, name in ((folder.parent / LOCKS, f"{folder.name or 'root'}.lock"), (folder, ".pipnb.lock")):
        try:
            where.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(where, os.W_OK | os.X_OK):
            return where / name
    return None


def _me(command: str | None) -> dict[str, object]:
    if command is None:
        words = []
        for word in sys.argv[1:]:
            if word.startswith("-"):
                break
            words.append(word)
        command = " ".join(["pipnb", *words])
    start = dt.datetime.now(dt.UTC)
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "started": f"{start:%Y-%m-%d %H:%M:%S} UTC"}


def _holder(holder: Path) -> str:
    """Who holds a lock, from its holder file (each field shortened), for one line."""
    try:
        with open(holder, encoding="utf-8", errors="replace") as f:
            info = json.loads(f.read(4096))
        fields = {k: str(info[k])[:_SHOWN] for k in ("pid", "host", "command", "started")}
    except (OSError, ValueError, TypeError, KeyError):
        return "another pipnb process (it has not said which)"
    return (f"pid {fields['pid']} on {fields['host']} ({fields['command']!r}, "
            f"started {fields['started']})")
