"""``pipnb ARGS`` as its own process, forked from this test process instead of started from a bare interpreter.

A command-line test wants what a user gets: a process of its own with its working folder, environment, exit code,
stdout and stderr, and nothing the test did in memory. ``subprocess.run([python, "-m", "pipnb", ...])`` gives that
and pays about a second each time to start Python and import pandas, the statistics, papermill and nbconvert: two
thirds of the command-line tests' time (issue 26). :func:`pipnb` gives the same process from a fork of the test
worker, where those imports are already done (:data:`PRELOADED`):

* the child gets its own stdin (``/dev/null``), stdout and stderr (pipes, read back as ``subprocess`` reads them:
  the locale's encoding, universal newlines), working folder and environment (``env`` replaces it, as in
  ``subprocess``), and pyplot's, warnings' and logging's state as a fresh interpreter has them;
* it runs :func:`pipnb.cli.main` under the name ``pipnb``, then the exit functions the command registered, and ends
  with the command's own exit code (an uncaught exception: its traceback on stderr and exit 1, as Python does);
* a ``timeout`` kills it and raises ``subprocess.TimeoutExpired``.

What a fork cannot show stays with real interpreters: the installed entry points (``test_install``,
``test_packaging``), memory limits (``test_limits``), concurrent runs and signals (``test_locks``,
``test_security``'s interrupted run) and the documented commands (``test_docs``). ``test_cliproc`` checks that both
ways give the same output for the same commands.
"""

from __future__ import annotations

import atexit
import io
import locale
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipnb.cli import main as pipnb_main

PRELOADED = ("pipnb.commands", "papermill", "nbconvert", "nbclient")
for _name in PRELOADED:
    __import__(_name)

PROGRAM = str(Path(sys.executable).with_name("pipnb"))
# Python's own warning filters at start-up (pytest's are not what a user's process has)
_DEFAULT_WARNINGS = (("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, None),
                     ("ignore", PendingDeprecationWarning, None), ("ignore", ImportWarning, None),
                     ("ignore", ResourceWarning, None))


def pipnb(*args: str | os.PathLike, cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
          timeout: float | None = 300, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """Run ``pipnb ARGS`` in a forked process; the result as ``subprocess.run(..., capture_output=True,
    text=True)`` gives it. ``env`` replaces the environment (None: this process's); ``preexec`` runs in the child
    before the command (e.g. a resource limit)."""
    argv = [str(a) for a in args]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                                    # the child: never returns
        os.close(out_r)
        os.close(err_r)
        _child(argv, cwd, env, preexec, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    out, err, code = _collect(pid, out_r, err_r, timeout, [PROGRAM, *argv])
    encoding = locale.getpreferredencoding(False)
    return subprocess.CompletedProcess([PROGRAM, *argv], code, _text(out, encoding), _text(err, encoding))


def _text(data: bytes, encoding: str) -> str:
    """As ``subprocess`` decodes a captured stream with ``text=True``."""
    return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")


def _collect(pid: int, out_fd: int, err_fd: int, timeout: float | None, cmd: list[str]) -> tuple[bytes, bytes, int]:
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    deadline = None if timeout is None else time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                for fd in chunks:
                    os.close(fd)
                raise subprocess.TimeoutExpired(cmd, timeout, b"".join(chunks[out_fd]), b"".join(chunks[err_fd]))
            for key, _ in sel.select(left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
                    os.close(key.fd)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd]), os.waitstatus_to_exitcode(status)


def _child(argv: Sequence[str], cwd, env, preexec, out_fd: int, err_fd: int) -> None:
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (out_fd, 1), (err_fd, 2)):
            os.dup2(fd, target)
            os.close(fd)
        _fresh_process_state()
        if cwd is not None:
            os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if preexec is not None:
            preexec()
        sys.argv = [PROGRAM, *argv]
        try:
            pipnb_main(args=list(argv), prog_name="pipnb")
            code = 0
        except SystemExit as done:
            if done.code is None or isinstance(done.code, int):
                code = done.code or 0
            else:
                print(done.code, file=sys.stderr)
                code = 1
    except BaseException:                                           # noqa: BLE001 (as Python reports one)
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
        finally:
            os._exit(code)


def _fresh_process_state() -> None:
    """What the test process changed and a new interpreter would not have: streams, signals, warning filters,
    logging handlers, exit functions, pyplot's figures."""
    encoding = locale.getpreferredencoding(False)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=encoding)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                                   encoding=encoding, errors="strict")
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                                   encoding=encoding, errors="backslashreplace", line_buffering=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    warnings.resetwarnings()
    for action, category, module in reversed(_DEFAULT_WARNINGS):
        warnings.filterwarnings(action, category=category, module=module or "")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    atexit._clear()                                  # the test process's; then those any process has
    atexit.register(logging.shutdown)
    atexit.register(weakref.finalize._exitfunc)
    if "multiprocessing.util" in sys.modules:
        atexit.register(sys.modules["multiprocessing.util"]._exit_function)
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
