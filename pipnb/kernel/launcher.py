"""Client side of the fork server: find or start it, ask it for a kernel, and watch that kernel.

Which server
------------
One server serves every kernel that would start the same way: same interpreter command, same
server program, same preload list and the same interpreter-level environment (``PYTHON*``,
``LD_LIBRARY_PATH``, ``LD_PRELOAD``, ``MPLCONFIGDIR``, ``LANG``, ``LC_ALL``, ``LC_CTYPE``: what
a process reads once at start-up or import). These are hashed into the socket name
``pipnb-fs-<hash>.sock`` in the Jupyter runtime directory (or ``$TMPDIR/pipnb-<uid>`` when that
path is too long for a Unix socket), so editing ``forkserver.py`` or switching virtualenvs starts
a new server instead of reusing a stale one; a server also retires itself when a package is
installed or upgraded after it started.

Starting it
-----------
A client that cannot connect takes ``pipnb-fs-<hash>.lock`` (``flock``), connects again, and only
if there is still no server removes a stale socket and starts one: ``forkserver.py`` run by path
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
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from pipnb.errors import PipnbError

SERVER_SCRIPT = Path(__file__).with_name("forkserver.py")
ENV_IDLE = "PIPNB_FORKSERVER_IDLE"
SOCKET_PATH_MAX = 100
START_TIMEOUT = 60.0
REPLY_TIMEOUT = 30.0
_KEY_ENV = ("LD_LIBRARY_PATH", "LD_PRELOAD", "MPLCONFIGDIR", "LANG", "LC_ALL", "LC_CTYPE")
_KERNEL_MODULES = ("ipykernel_launcher", "ipykernel")
_SPAWNED: list[subprocess.Popen[bytes]] = []


class ForkServerError(PipnbError):
    """The fork server could not be started or could not launch a kernel; say why in one line."""


class _ServerGone(ConnectionError):
    """The server closed the connection before answering (it is exiting); try again."""


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
    from pipnb.kernel.forkserver import DEFAULT_PRELOAD

    return DEFAULT_PRELOAD


def runtime_dir() -> Path:
    """Return the per-user directory for server sockets and IPC kernel sockets, creating it.

    Returns
    -------
    Path
        ``jupyter_core.paths.jupyter_runtime_dir()``, or ``$TMPDIR/pipnb-<uid>`` when that is
        too long for Unix socket paths (about 100 bytes).
    """
    from jupyter_core.paths import jupyter_runtime_dir

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
        [list(python), list(preload), key_env, hashlib.sha256(SERVER_SCRIPT.read_bytes()).hexdigest()]
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:12]
    return ServerAddress(runtime_dir() / f"pipnb-fs-{digest}.sock", tuple(python), tuple(preload))


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
    from pipnb.kernel.forkserver import DEFAULT_IDLE

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


# --------------------------------------------------------------------------------- requests
async def _request(
    path: Path, message: dict[str, Any], fds: Sequence[int] = (), *, timeout: float = REPLY_TIMEOUT
) -> tuple[socket.socket, dict[str, Any], bytes]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, str(path))
        data = json.dumps(message).encode() + b"\n"
        sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
        if sent < len(data):
            await loop.sock_sendall(sock, data[sent:])
        buffer = bytearray()
        async with asyncio.timeout(timeout):
            while b"\n" not in buffer:
                try:
                    chunk = await loop.sock_recv(sock, 1 << 16)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    raise _ServerGone(f"fork server at {path} closed the connection")
                buffer += chunk
    except BaseException:
        sock.close()
        raise
    line, rest = bytes(buffer).split(b"\n", 1)
    return sock, json.loads(line), rest


def request_sync(path: Path, message: dict[str, Any], *, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
    """Send one request without file descriptors and return the server's reply (blocking).

    Parameters
    ----------
    path
        Server socket.
    message
        Request, e.g. ``{"op": "status"}``.
    timeout
        Seconds to wait for the reply.

    Returns
    -------
    dict
        The reply.

    Raises
    ------
    OSError
        When no server listens at ``path``.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode() + b"\n")
        buffer = bytearray()
        while b"\n" not in buffer:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise _ServerGone(f"fork server at {path} closed the connection")
            buffer += chunk
    return json.loads(bytes(buffer).split(b"\n", 1)[0])


def _stdio_fds(stdin: Any, stdout: Any, stderr: Any) -> tuple[list[int], list[int]]:
    """Translate Popen-style stdio arguments into three descriptors to pass to the server."""
    opened: list[int] = []

    def devnull() -> int:
        """Open /dev/null for this launch only."""
        fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        opened.append(fd)
        return fd

    def resolve(stream: Any, default: int) -> int:
        """Descriptor for one Popen-style stream argument (None: this process's ``default``)."""
        if stream is None:
            try:
                os.fstat(default)
            except OSError:
                return devnull()
            return default
        if stream == subprocess.DEVNULL:
            return devnull()
        if stream == subprocess.PIPE:
            raise ForkServerError("stdio=PIPE cannot be passed to a forked kernel")
        if isinstance(stream, int):
            return stream
        return stream.fileno()

    try:
        in_fd = devnull() if stdin is None else resolve(stdin, 0)
        out_fd = resolve(stdout, 1)
        err_fd = out_fd if stderr == subprocess.STDOUT else resolve(stderr, 2)
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    return [in_fd, out_fd, err_fd], opened


def _umask() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


async def launch_kernel(
    cmd: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    preload: Sequence[str] | None = None,
    start_timeout: float = START_TIMEOUT,
) -> ForkedKernel:
    """Have the fork server fork a kernel for ``cmd``, starting the server if needed.

    Parameters
    ----------
    cmd
        Formatted kernelspec argv (``python -m ipykernel_launcher -f CONNECTION_FILE ...``);
        the connection file must already be written.
    cwd
        Working directory of the kernel (default: this process's).
    env
        Complete environment of the kernel.
    stdin, stdout, stderr
        As for :class:`subprocess.Popen`: None inherits this process's descriptor (stdin is
        ``/dev/null``), an int or file object is passed on, ``DEVNULL`` is honoured.
    preload
        Modules the server imports once (default :func:`default_preload`).
    start_timeout
        Seconds allowed for starting a server.

    Returns
    -------
    ForkedKernel
        Handle on the running kernel.

    Raises
    ------
    ForkServerError
        When the server cannot start or refuses to fork; the caller may launch normally instead.
    """
    python, args = split_kernel_cmd(cmd, env)
    address = server_address(python, env, preload if preload is not None else default_preload())
    message = {
        "op": "launch",
        "args": args,
        "cwd": os.path.abspath(cwd) if cwd else os.getcwd(),
        "env": dict(env),
        "umask": _umask(),
    }
    fds, opened = _stdio_fds(stdin, stdout, stderr)
    try:
        for _ in range(4):
            try:
                sock, reply, rest = await _request(address.socket, message, fds)
            except (FileNotFoundError, ConnectionRefusedError):
                await ensure_server(address, env, timeout=start_timeout)
                continue
            except _ServerGone:
                await asyncio.sleep(0.05)  # the server was exiting; the next attempt starts one
                continue
            if not reply.get("ok"):
                sock.close()
                if reply.get("retry"):
                    continue  # the server retired (packages changed); the next attempt starts one
                raise ForkServerError(f"fork server refused to launch a kernel: {reply.get('error')}")
            return ForkedKernel(int(reply["pid"]), sock, rest)
    except OSError as exc:
        raise ForkServerError(f"fork server at {address.socket} failed: {exc}") from exc
    finally:
        for fd in opened:
            os.close(fd)
    raise ForkServerError(f"could not reach a fork server at {address.socket}")


class ForkedKernel:
    """A kernel process forked by the server: not our child, so watched through the server.

    The server reports the exit status on the launch connection; a pidfd (Linux) tells whether
    the process is still alive should the server itself disappear.

    Parameters
    ----------
    pid
        Kernel pid; also its process group (the kernel starts a new session).
    conn
        The launch connection, or None for a kernel re-attached by pid only.
    buffered
        Bytes already read from ``conn`` after the launch reply.
    """

    UNKNOWN_EXIT = 1
    """Exit code reported when the kernel is gone but its real status could not be learned."""

    def __init__(self, pid: int, conn: socket.socket | None, buffered: bytes = b""):
        self.pid = pid
        self.returncode: int | None = None
        self._conn = conn
        self._buffer = bytearray(buffered)
        self._server_gone = conn is None
        self._pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(pid)
        self._parse()

    def _parse(self) -> None:
        while b"\n" in self._buffer:
            line, _, rest = bytes(self._buffer).partition(b"\n")
            self._buffer = bytearray(rest)
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and "exit" in message and self.returncode is None:
                    self.returncode = int(message["exit"])

    def _read(self) -> None:
        while self._conn is not None and not self._server_gone:
            try:
                chunk = self._conn.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._server_gone = True
            self._buffer += chunk
            self._parse()

    def _alive(self) -> bool:
        if self._pidfd is not None:
            readable, _, _ = select.select([self._pidfd], [], [], 0)
            return not readable
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True

    def poll(self) -> int | None:
        """Return the exit code if the kernel has exited, else None (never blocks).

        Returns
        -------
        int or None
            ``subprocess`` convention: ``-N`` when killed by signal N.
        """
        if self.returncode is None:
            self._read()
        if self.returncode is None and self._server_gone and not self._alive():
            self.returncode = self.UNKNOWN_EXIT
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group (falling back to the kernel); no-op once it exited.

        Parameters
        ----------
        signum
            Signal number, e.g. ``signal.SIGINT``.
        """
        if self.poll() is not None:
            return
        try:
            os.killpg(self.pid, signum)
            return
        except OSError:
            pass
        with contextlib.suppress(ProcessLookupError):
            if self._pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(self._pidfd, signum)
            else:
                os.kill(self.pid, signum)

    def close(self) -> None:
        """Release the connection and pidfd; the server terminates the kernel if it still runs."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._server_gone = True


# ------------------------------------------------------------------------- status and stop
def server_status(address: ServerAddress) -> dict[str, Any] | None:
    """Return the status of the server at ``address``, or None when none is running.

    Parameters
    ----------
    address
        Server address.

    Returns
    -------
    dict or None
        ``pid``, ``uptime``, ``idle``, ``kernels`` (pids), ``threads``, ``os_threads``,
        ``preloaded``, ``failed``.
    """
    try:
        return request_sync(address.socket, {"op": "status"})
    except OSError:
        return None


def stop_server(address: ServerAddress, *, force: bool = False, wait: float = 10.0) -> bool:
    """Ask the server at ``address`` to exit and wait until it has.

    Parameters
    ----------
    address
        Server address.
    force
        Terminate running kernels too; otherwise a server with kernels refuses.
    wait
        Seconds to wait for the server to exit.

    Returns
    -------
    bool
        True when a server was running and has exited.

    Raises
    ------
    ForkServerError
        When the server refuses (kernels running and not ``force``) or does not exit in time.
    """
    try:
        reply = request_sync(address.socket, {"op": "stop", "force": force})
    except OSError:
        return False
    if not reply.get("ok"):
        raise ForkServerError(f"fork server {reply.get('pid', '')} refused to stop: {reply.get('error')}")
    pid = int(reply["pid"])
    deadline = time.monotonic() + wait
    while _pid_running(pid):
        reap_spawned()
        if time.monotonic() > deadline:
            raise ForkServerError(f"fork server {pid} did not exit within {wait:g} s")
        time.sleep(0.02)
    return True


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


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
            from jupyter_client.kernelspec import KernelSpecManager

            from pipnb.kernel.kernelspec import KERNEL_NAME

            argv = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv
            python = split_kernel_cmd(argv, env)[0]
    return server_address(python, env, default_preload())

