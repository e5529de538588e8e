"""Find or start the fork server: which server can fork a kernel, and how a client starts it.

The rest of the client side builds on this module: :mod:`pipnb.kernel.forked` asks the server for a
kernel and watches it, :mod:`pipnb.kernel.protocol` sends the server single requests (status, stop).

Which server
------------
One server serves every kernel that would start the same way: same interpreter command, same
server program, same preload list and the same interpreter-level environment (``PYTHON*``,
``LD_LIBRARY_PATH``, ``LD_PRELOAD``, ``MPLCONFIGDIR``, ``LANG``, ``LC_ALL``, ``LC_CTYPE``: what
a process reads once at start-up or import). These are hashed into the socket name
``pipnb-fs-<hash>.sock`` in the Jupyter runtime directory (or ``$TMPDIR/pipnb-<uid>`` when that
path is too long for a Unix socket), so editing the server program or switching virtualenvs starts
a new server instead of reusing a stale one; a server also retires itself when a package is
installed or upgraded after it started.

Starting it
-----------
A client that cannot connect takes ``pipnb-fs-<hash>.lock`` (``flock``), connects again, and only
if there is still no server removes a stale socket and starts one: ``forkserver/__main__.py`` run by path
with the kernel's interpreter, detached (new session, stdio on ``/dev/null`` and the log file
``pipnb-fs-<hash>.log``), then waits until it accepts connections. Concurrent clients in other
processes wait on the lock and then find the new server.

Environment
-----------
``PIPNB_FORKSERVER_IDLE``
    Seconds an idle server lives (default 120), read from the kernel's environment when the
    server is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipnb.errors import PipnbError
from pipnb.kernel.forkserver import DEFAULT_IDLE, DEFAULT_PRELOAD
from pipnb.kernel.kernelspec import KERNEL_NAME

SERVER_PACKAGE = Path(__file__).with_name("forkserver")
SERVER_SCRIPT = SERVER_PACKAGE / "__main__.py"
ENV_IDLE = "PIPNB_FORKSERVER_IDLE"
SOCKET_PATH_MAX = 100
START_TIMEOUT = 60.0
_KEY_ENV = ("LD_LIBRARY_PATH", "LD_PRELOAD", "MPLCONFIGDIR", "LANG", "LC_ALL", "LC_CTYPE")
_KERNEL_MODULES = ("ipykernel_launcher", "ipykernel")
_SPAWNED: list[subprocess.Popen[bytes]] = []   # servers this process started, to reap; under _SPAWNED_LOCK
_SPAWNED_LOCK = threading.Lock()                 # the kernel manager may start kernels from several threads


class ForkServerError(PipnbError):
    """The fork server could not be started or could not launch a kernel; say why in one line."""


@dataclasses.dataclass(frozen=True)
class ServerAddress:
    """Where the fork server for one interpreter setup listens, and how to start it.

    Attributes
    ----------
    socket
        Unix socket path; ``.lock`` and ``.log`` files sit next to it.
    python
        Interpreter command (executable and interpreter options) that runs the server.
    preload
        Modules the server imports once.
    """

    socket: Path
    python: tuple[str, ...]
    preload: tuple[str, ...]

    @property
    def lock(self) -> Path:
        """Lock file serialising server startup."""
        return self.socket.with_suffix(".lock")

    @property
    def log(self) -> Path:
        """Log file of the server (its stderr)."""
        return self.socket.with_suffix(".log")


def default_preload() -> tuple[str, ...]:
    """Return the modules the server preloads by default.

    Returns
    -------
    tuple of str
        Third-party modules only (numpy, pandas, matplotlib, seaborn, scipy, statsmodels,
        ipykernel ...).
    """
    return DEFAULT_PRELOAD


def runtime_dir() -> Path:
    """Return the per-user directory for server sockets and IPC kernel sockets, creating it.

    Returns
    -------
    Path
        ``jupyter_core.paths.jupyter_runtime_dir()``, or ``$TMPDIR/pipnb-<uid>`` when that is
        too long for Unix socket paths (about 100 bytes).
    """
    from jupyter_core.paths import jupyter_runtime_dir  # jupyter_core (10-30 ms, on the `pipnb --help` path)

    path = Path(jupyter_runtime_dir())
    if len(str(path)) + len("/pipnb-fs-0123456789ab.sock") > SOCKET_PATH_MAX:
        path = Path(tempfile.gettempdir()) / f"pipnb-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def split_kernel_cmd(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Split an ipykernel launch command into interpreter command and kernel arguments.

    Parameters
    ----------
    cmd
        The formatted kernelspec ``argv``, e.g. ``[python, "-m", "ipykernel_launcher", "-f", FILE]``.
    env
        The kernel environment, whose ``PATH`` resolves a bare interpreter name.

    Returns
    -------
    python : list of str
        Absolute interpreter path followed by any interpreter options.
    args : list of str
        Arguments for ``IPKernelApp`` (``-f FILE`` and extras).

    Raises
    ------
    ForkServerError
        When ``cmd`` does not run ``python -m ipykernel_launcher`` (or ``-m ipykernel``).
    """
    cmd = [os.path.expanduser(str(part)) for part in cmd]
    for i in range(1, len(cmd) - 1):
        if cmd[i] == "-m" and cmd[i + 1] in _KERNEL_MODULES:
            exe = cmd[0]
            if os.sep not in exe:
                path = (env or os.environ).get("PATH", os.defpath)
                exe = shutil.which(exe, path=path) or exe
            return [os.path.abspath(exe), *cmd[1:i]], cmd[i + 2 :]
    raise ForkServerError(f"kernel command {cmd[:3]} does not run 'python -m ipykernel_launcher'")


def server_address(python: Sequence[str], env: Mapping[str, str], preload: Sequence[str]) -> ServerAddress:
    """Return the address of the server that can fork kernels for this interpreter setup.

    Parameters
    ----------
    python
        Interpreter command from :func:`split_kernel_cmd`.
    env
        Kernel environment; its interpreter-level variables are part of the server's identity.
    preload
        Modules to preload.

    Returns
    -------
    ServerAddress
    """
    key_env = sorted(
        (name, value) for name, value in env.items() if name.startswith("PYTHON") or name in _KEY_ENV
    )
    material = json.dumps(
        [list(python), list(preload), key_env, _server_digest()]
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:12]
    return ServerAddress(runtime_dir() / f"pipnb-fs-{digest}.sock", tuple(python), tuple(preload))


def _server_digest() -> str:
    """Hash of the server program's source files: editing any of them starts a new server."""
    digest = hashlib.sha256()
    for path in sorted(SERVER_PACKAGE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def idle_seconds(env: Mapping[str, str]) -> float:
    """Read the server idle time from ``PIPNB_FORKSERVER_IDLE``.

    Parameters
    ----------
    env
        Environment to read.

    Returns
    -------
    float
        Seconds; the default (120) when unset.

    Raises
    ------
    ForkServerError
        When the value is not a non-negative number.
    """
    raw = env.get(ENV_IDLE, "").strip()
    if not raw:
        return DEFAULT_IDLE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ForkServerError(f"{ENV_IDLE}={raw!r} is not a number of seconds (use e.g. 120)")
    return value


def current_address(env: Mapping[str, str] | None = None, python: Sequence[str] | None = None) -> ServerAddress:
    """Return the address of the server this process's kernels would use.

    Parameters
    ----------
    env
        Kernel environment (default ``os.environ``).
    python
        Interpreter command (default: the ``pipnb-fast`` kernelspec's, else ``sys.executable``).

    Returns
    -------
    ServerAddress
    """
    env = dict(os.environ if env is None else env)
    if python is None:
        python = [sys.executable]
        with contextlib.suppress(Exception):
            from jupyter_client.kernelspec import KernelSpecManager  # jupyter_client (90 ms)


            argv = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv
            python = split_kernel_cmd(argv, env)[0]
    return server_address(python, env, default_preload())


# ---------------------------------------------------------------------------------- startup
def _connectable(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _log_tail(address: ServerAddress, lines: int = 5) -> str:
    try:
        text = address.log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "empty log"


def reap_spawned() -> None:
    """Collect the exit status of servers this process started and that have since exited."""
    with _SPAWNED_LOCK:
        for proc in list(_SPAWNED):
            if proc.poll() is not None:
                _SPAWNED.remove(proc)


def _spawn(address: ServerAddress, env: Mapping[str, str], idle: float) -> subprocess.Popen[bytes]:
    server_env = {k: v for k, v in env.items() if not k.startswith("JPY_")}
    cmd = [
        *address.python,
        str(SERVER_SCRIPT),
        "--socket",
        str(address.socket),
        "--idle",
        repr(idle),
        "--preload",
        ",".join(address.preload),
    ]
    with open(address.log, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",
            env=server_env,
            start_new_session=True,
            close_fds=True,
        )
    with _SPAWNED_LOCK:
        _SPAWNED.append(proc)
    return proc


async def ensure_server(
    address: ServerAddress, env: Mapping[str, str], *, timeout: float = START_TIMEOUT
) -> int | None:
    """Make sure a server listens at ``address``, starting one if needed (race-free across processes).

    Parameters
    ----------
    address
        Where the server should listen.
    env
        Kernel environment: the server's environment, and ``PIPNB_FORKSERVER_IDLE``.
    timeout
        Seconds to wait for the lock and for a new server to accept connections.

    Returns
    -------
    int or None
        Pid of the server this call started, or None when one was already running.

    Raises
    ------
    ForkServerError
        When the server cannot be started in time; the message ends with its log.
    """
    import fcntl  # POSIX only; imported here so that the provisioner loads (and falls back) anywhere

    reap_spawned()
    idle = idle_seconds(env)
    deadline = time.monotonic() + timeout
    lock_fd = os.open(address.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ForkServerError(f"timed out waiting for {address.lock}") from None
                await asyncio.sleep(0.02)
        if _connectable(address.socket):
            return None
        with contextlib.suppress(FileNotFoundError):
            address.socket.unlink()  # left behind by a server that was killed
        proc = _spawn(address, env, idle)
        while not _connectable(address.socket):
            if proc.poll() is not None:
                raise ForkServerError(
                    f"fork server exited with {proc.returncode} while starting: {_log_tail(address)}"
                )
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise ForkServerError(
                    f"fork server did not start within {timeout:g} s: {_log_tail(address)}"
                )
            await asyncio.sleep(0.02)
        return proc.pid
    finally:
        os.close(lock_fd)
