"""The fork server program: prepare a fork-safe process, preload the libraries, serve until idle.

:func:`main` runs in the server process, started by ``__main__``; it returns in the server once the
server has stopped, and in every forked child, where it goes on to run the kernel (so a child's exit
status is its kernel's). Exit statuses of the server: 0 after an idle exit or a stop request, 3 when
preloading left the process unsafe to fork (a thread is running), 4 when its socket path is taken.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import os
import time
from pathlib import Path

from . import DEFAULT_IDLE, DEFAULT_PRELOAD
from .child import remember_server_matplotlibrc, run_kernel
from .process import (
    fork_blockers,
    is_own,
    log,
    preload,
    prepare_environment,
    set_process_name,
    source_snapshot,
    warm_charts,
)
from .server import ForkServer


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="pipnb fork server for fast, isolated IPython kernels")
    parser.add_argument("--socket", required=True, type=Path, help="Unix socket path to listen on")
    parser.add_argument("--idle", type=float, default=DEFAULT_IDLE, help="idle seconds before exiting")
    parser.add_argument(
        "--preload", default=",".join(DEFAULT_PRELOAD), help="comma-separated modules to import once"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the fork server; in a forked child, run the kernel instead.

    Parameters
    ----------
    argv
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status of the server, or of the kernel in a forked child.
    """
    args = _parse_args(argv)
    prepare_environment()
    set_process_name("pipnb-forksrv")
    started = time.monotonic()
    modules = [m.strip() for m in args.preload.split(",") if m.strip()]
    sources = source_snapshot(modules)            # before importing: an edit from now on retires the server
    if sources is None:
        log("pipnb's source files cannot be watched: its modules are not preloaded")
        modules, sources = [m for m in modules if not is_own(m)], {}
    loaded, failed = preload(modules)
    for name, reason in failed.items():
        log(f"not preloaded: {name} ({reason})")
    remember_server_matplotlibrc()
    if "matplotlib.pyplot" in loaded and "seaborn" in loaded:
        cold = warm_charts()
        if cold:
            log(f"charts not warmed: {cold}")
    gc.collect()
    gc.freeze()  # keep the preloaded objects' pages shared with the children
    log(f"preloaded {len(loaded)} modules in {time.monotonic() - started:.2f} s")
    blockers = fork_blockers()
    if blockers:
        log("refusing to serve: " + "; ".join(blockers))
        return 3
    try:
        server = ForkServer(args.socket, idle=args.idle, preloaded=loaded, failed=failed, sources=sources)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EEXIST):
            log(f"socket {args.socket} is taken: {exc}")
            return 4
        raise
    server_pid = os.getpid()
    try:
        job = server.serve()
    except BaseException:
        if os.getpid() == server_pid:
            with contextlib.suppress(OSError):
                if os.stat(args.socket).st_ino == server.inode:
                    os.unlink(args.socket)
        raise
    if job is None:
        return 0
    return run_kernel(job)
