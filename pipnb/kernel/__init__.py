"""Fast, isolated kernels: the ``pipnb-fast`` kernel, forked from a server with the libraries imported.

A normal kernel spends about 3 s of one core importing pandas, matplotlib, seaborn and
statsmodels before a report does any work. The fork server imports them once; every kernel is a
fresh ``fork`` of it that starts an ipykernel on its own connection file, so a report pays only
for the kernel start (well under a second) and still shares nothing with the previous report.

Use it like any kernel::

    python -m pipnb.kernel install --sys-prefix      # once per environment (the Makefile does it)
    papermill -k pipnb-fast in.ipynb out.ipynb

    papermill.execute_notebook(src, dst, kernel_name=pipnb.kernel.KERNEL_NAME, cwd=...)

Modules
-------
``forkserver``   the server program, a package run by path (preloading, forking, reaping, idle exit)
``launcher``     client side: which server serves a kernel, and starting it
``forked``       client side: ask the server for a kernel and watch that kernel
``protocol``     client side: single requests to the server (status, stop)
``provisioner``  the jupyter_client provisioner (entry point ``pipnb-fork-provisioner``)
``kernelspec``   the ``pipnb-fast`` kernelspec and its installation
``bench``        start-up and papermill timings, fast vs. normal kernel

Environment
-----------
``PIPNB_FAST_KERNEL=0``
    Disable forking: :func:`available` is false and the ``pipnb-fast`` kernel starts normally.
``PIPNB_FORKSERVER_IDLE``
    Seconds an idle server lives (default 120).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from pipnb.kernel.kernelspec import DISPLAY_NAME, KERNEL_NAME, PROVISIONER_NAME, install

ENV_SWITCH = "PIPNB_FAST_KERNEL"
_OFF = {"0", "false", "no", "off"}

__all__ = [
    "DISPLAY_NAME",
    "KERNEL_NAME",
    "PROVISIONER_NAME",
    "available",
    "fork_supported",
    "install",
    "server_status",
    "start_server",
    "stop_server",
]


def fork_supported() -> tuple[bool, str]:
    """Say whether kernels can be forked from a server on this platform and in this environment.

    Returns
    -------
    ok : bool
        True when forking is possible and not disabled by ``PIPNB_FAST_KERNEL=0``.
    reason : str
        One line saying why not (or what is used).
    """
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF:
        return False, f"the fast kernel is disabled by {ENV_SWITCH}={os.environ[ENV_SWITCH]}"
    if not hasattr(os, "fork"):
        return False, f"this platform ({sys.platform}) has no fork()"
    if not sys.platform.startswith("linux"):
        return False, f"the fork server supports Linux only, not {sys.platform}"
    if not hasattr(socket, "AF_UNIX") or not hasattr(socket, "send_fds"):
        return False, "this Python has no Unix sockets with descriptor passing"
    return True, "kernels are forked from the pipnb fork server"


def available() -> tuple[bool, str]:
    """Say whether the runner can use the ``pipnb-fast`` kernel here, and if not, why.

    Returns
    -------
    ok : bool
        True when forking is supported and the ``pipnb-fast`` kernelspec with its provisioner
        is installed where jupyter_client finds it.
    reason : str
        One line; when false it says how to fix it.

    Example
    -------
    >>> ok, why = available()
    >>> kernel_name = KERNEL_NAME if ok else "python3"
    """
    ok, reason = fork_supported()
    if not ok:
        return False, reason
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # jupyter_client (90 ms)

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return False, (
            f"kernel {KERNEL_NAME!r} is not installed, or its provisioner entry point is missing "
            f"(run: python -m pipnb.kernel install --sys-prefix)"
        )
    provisioner = spec.metadata.get("kernel_provisioner", {}).get("provisioner_name")
    if provisioner != PROVISIONER_NAME:
        return False, f"kernel {KERNEL_NAME!r} in {spec.resource_dir} does not use {PROVISIONER_NAME!r}"
    try:
        # pipnb.kernel's launcher and protocol (40 ms each, jupyter_core): `pipnb --help` imports this package
        from pipnb.kernel.launcher import runtime_dir

        runtime_dir()
    except OSError as exc:
        return False, f"no usable runtime directory for the fork server: {exc}"
    return True, f"kernel {KERNEL_NAME!r} forks from the pipnb fork server ({spec.resource_dir})"


def start_server() -> int | None:
    """Start the fork server this process's kernels will use, if it is not running.

    Starting it early (e.g. when a batch begins) overlaps its ~3 s of imports with other work;
    the server started here is a child of this process.

    Returns
    -------
    int or None
        Pid of the server started, or None when one was already running.

    Raises
    ------
    pipnb.kernel.launcher.ForkServerError
        When it cannot start.
    """
    from jupyter_core.utils import run_sync  # jupyter_core (10-30 ms, on the `pipnb --help` path)

    # pipnb.kernel's launcher and protocol (40 ms each, jupyter_core): `pipnb --help` imports this package
    from pipnb.kernel.launcher import current_address, ensure_server

    env = dict(os.environ)
    return run_sync(ensure_server)(current_address(env), env)


def server_status() -> dict[str, Any] | None:
    """Return the status of the fork server this process's kernels would use, or None.

    Returns
    -------
    dict or None
        ``pid``, ``uptime``, ``idle``, ``kernels`` (pids), ``threads``, ``os_threads``,
        ``preloaded``, ``failed``; None when no server is running.
    """
    # pipnb.kernel's launcher and protocol (40 ms each, jupyter_core): `pipnb --help` imports this package
    from pipnb.kernel.launcher import current_address

    # pipnb.kernel's launcher and protocol (40 ms each, jupyter_core): `pipnb --help` imports this package
    from pipnb.kernel.protocol import server_status as status

    return status(current_address())


def stop_server(*, force: bool = False) -> bool:
    """Stop the fork server this process's kernels would use.

    Parameters
    ----------
    force
        Also terminate its running kernels; otherwise a busy server refuses.

    Returns
    -------
    bool
        True when a server was running and has exited.
    """
    # pipnb.kernel's launcher and protocol (40 ms each, jupyter_core): `pipnb --help` imports this package
    from pipnb.kernel.launcher import current_address

    # pipnb.kernel's launcher and protocol (40 ms each, jupyter_core): `pipnb --help` imports this package
    from pipnb.kernel.protocol import stop_server as stop

    return stop(current_address(), force=force)
