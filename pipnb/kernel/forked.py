"""Ask the fork server for a kernel, and watch the forked kernel from the client.

:func:`launch_kernel` is what the provisioner calls instead of ``subprocess.Popen``: it passes the
kernel's command, working directory, environment, umask and stdio descriptors to the server (starting
one if needed) and returns a :class:`ForkedKernel`. The kernel is the server's child, not ours, so
:class:`ForkedKernel` learns its exit status from the server and signals it by process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any

from pipnb.kernel.launcher import (
    START_TIMEOUT,
    ForkServerError,
    default_preload,
    ensure_server,
    server_address,
    split_kernel_cmd,
)
from pipnb.kernel.protocol import ServerGone, pid_running, request


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
                sock, reply, rest = await request(address.socket, message, fds)
            except (FileNotFoundError, ConnectionRefusedError):
                await ensure_server(address, env, timeout=start_timeout)
                continue
            except ServerGone:
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
        return pid_running(self.pid)

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
