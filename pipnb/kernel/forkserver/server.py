"""The fork server's loop: listen on the socket, answer requests, fork kernels, reap them, exit when idle.

:class:`ForkServer` is single-threaded (a selector over the listening socket, the clients'
connections and a signal wake-up pipe), because only a single-threaded process can be forked safely.
It implements the protocol described in :mod:`pipnb.kernel.forkserver`; in a freshly forked child,
:meth:`ForkServer.serve` returns the :class:`~.child.LaunchJob` that the child then runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .child import LaunchJob
from .process import fork_blockers, log, os_thread_count, own_sources

KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when the server ends a kernel whose client went away."""

REQUEST_TIMEOUT = 5.0
MAX_FDS = 3


class _Retired(RuntimeError):
    """The server's preloaded libraries are out of date; the client should start a new server."""


def _path_snapshot() -> dict[str, int]:
    """Modification times of the import path's directories: a package install changes them."""
    snapshot = {}
    for entry in sys.path:
        with contextlib.suppress(OSError):
            if entry and os.path.isdir(entry):
                snapshot[entry] = os.stat(entry).st_mtime_ns
    return snapshot


@dataclasses.dataclass
class _Kernel:
    pid: int
    conn: socket.socket | None
    kill_at: float | None = None


class ForkServer:
    """Accept launch requests on a Unix socket and fork kernels; single-threaded.

    Parameters
    ----------
    path
        Socket path (at most about 100 bytes).
    idle
        Seconds without kernels or requests after which :meth:`serve` returns.
    preloaded, failed
        What :func:`preload` reported, for ``status``.
    sources
        :func:`~.process.source_snapshot` before preloading: when pipnb's source files no longer match it, the
        server retires (as when packages are installed) and the client starts a fresh one.
    """

    def __init__(self, path: Path, *, idle: float, preloaded: list[str], failed: dict[str, str],
                 sources: dict[str, tuple[int, int]] | None = None):
        self.path = path
        self.lock_path = path.with_suffix(".lock")
        self.idle = idle
        self.preloaded = preloaded
        self.failed = failed
        self.pid = os.getpid()
        self.started = time.monotonic()
        self.last_activity = self.started
        self.kernels: dict[int, _Kernel] = {}
        self.libraries = _path_snapshot()
        self.sources = sources or {}
        self.stop_requested = False
        self.force_stop = False
        self.selector = selectors.DefaultSelector()
        self.listener = self._bind(path)
        self.listener_closed = False
        self.inode = os.stat(path).st_ino
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(self.listener, selectors.EVENT_READ, "listener")
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, "wakeup")
        signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)

    @staticmethod
    def _bind(path: Path) -> socket.socket:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(tmp))
        finally:
            os.umask(old_umask)
        listener.listen(64)
        listener.setblocking(False)
        os.rename(tmp, path)  # atomic: whoever can connect finds a listening server
        return listener

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self.stop_requested = True
        self.force_stop = True

    # ----------------------------------------------------------------------------- main loop
    def serve(self) -> LaunchJob | None:
        """Serve requests until idle or stopped.

        Returns
        -------
        LaunchJob or None
            None in the server once it has stopped (its socket removed); a :class:`LaunchJob`
            in a freshly forked child, which must then become the kernel.
        """
        log(f"serving on {self.path} (idle exit after {self.idle:g} s)")
        while True:
            for key, _ in self.selector.select(timeout=0.5):
                if key.data == "listener":
                    job = self._accept()
                    if job is not None:
                        return job
                elif key.data == "wakeup":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wakeup_r, 512):
                            pass
                else:
                    self._client_readable(key.fileobj)  # type: ignore[arg-type]
            self._reap()
            self._enforce_deadlines()
            if self.stop_requested:
                self._remove_socket()  # let the next client start a fresh server right away
                if self.force_stop:
                    self._terminate_all()
            if self._may_exit() and self._remove_socket():
                reason = "stop requested" if self.stop_requested else f"idle for {self.idle:g} s"
                log(f"exiting ({reason})")
                return None

    def _may_exit(self) -> bool:
        if self.kernels:
            return False
        if self.stop_requested:
            return True
        return time.monotonic() - self.last_activity >= self.idle

    def _remove_socket(self) -> bool:
        """Under the startup lock, unlink our socket so no new client can reach us."""
        if self.listener_closed:
            return True
        with open(self.lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a client is starting a server right now; try again shortly
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self.inode:
                    os.unlink(self.path)
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener_closed = True
        return True

    # ------------------------------------------------------------------------------ requests
    def _accept(self) -> LaunchJob | None:
        while not self.listener_closed:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return None
            self.last_activity = time.monotonic()
            if not self._same_user(conn):
                conn.close()
                continue
            try:
                job = self._handle(conn)
            except _Retired as exc:
                log(f"retiring: {exc}")
                self._reply(conn, {"ok": False, "retry": True, "error": str(exc)})
                conn.close()
                return None
            except Exception as exc:  # noqa: BLE001 - a bad request must not take the server down
                log(f"request failed: {type(exc).__name__}: {exc}")
                self._reply(conn, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                conn.close()
                continue
            if job is not None:
                return job
        return None

    @staticmethod
    def _same_user(conn: socket.socket) -> bool:
        if not hasattr(socket, "SO_PEERCRED"):
            return True  # the socket's directory and mode (0600) already restrict access
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        return uid == os.getuid()

    @staticmethod
    def _read_request(conn: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
        """Read one request line and the descriptors sent with it; None for a bare connect probe."""
        conn.setblocking(True)
        conn.settimeout(REQUEST_TIMEOUT)
        data, fds, _, _ = socket.recv_fds(conn, 1 << 16, MAX_FDS)
        if not data and not fds:
            return None, []  # a client checking that the server is up
        buffer = bytearray(data)
        try:
            while b"\n" not in buffer:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("client closed the connection before finishing its request")
                buffer += chunk
            request = json.loads(bytes(buffer).split(b"\n", 1)[0])
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return request, fds

    @staticmethod
    def _reply(conn: socket.socket, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.setblocking(True)
            conn.settimeout(REQUEST_TIMEOUT)
            conn.sendall(json.dumps(message).encode() + b"\n")

    def _retire(self) -> None:
        """Stop taking requests now (the next client starts a fresh server); exit once kernels end."""
        self.stop_requested = True
        self._remove_socket()

    def _handle(self, conn: socket.socket) -> LaunchJob | None:
        request, fds = self._read_request(conn)
        if request is None:
            conn.close()
            return None
        op = request.get("op")
        if op == "launch":
            return self._launch(conn, request, fds)
        for fd in fds:
            os.close(fd)
        if op == "status":
            self._reply(conn, self._status())
        elif op == "stop":
            if self.kernels and not request.get("force"):
                self._reply(conn, {"ok": False, "error": f"{len(self.kernels)} kernels are running"})
            else:
                self.stop_requested = True
                self.force_stop = bool(request.get("force"))
                self._reply(conn, {"ok": True, "pid": self.pid})
        else:
            self._reply(conn, {"ok": False, "error": f"unknown op {op!r}"})
        conn.close()
        return None

    def _status(self) -> dict[str, Any]:
        return {
            "ok": True,
            "pid": self.pid,
            "uptime": round(time.monotonic() - self.started, 3),
            "idle": self.idle,
            "kernels": sorted(self.kernels),
            "threads": threading.active_count(),
            "os_threads": os_thread_count(),
            "preloaded": self.preloaded,
            "failed": self.failed,
            "python": sys.executable,
        }

    def _launch(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> LaunchJob | None:
        try:
            if len(fds) != 3:
                raise ValueError(f"expected 3 file descriptors (stdin, stdout, stderr), got {len(fds)}")
            if self.stop_requested:
                raise _Retired("the fork server is stopping")
            if _path_snapshot() != self.libraries:
                self._retire()
                raise _Retired("installed packages changed since the server started")
            if self.sources and own_sources() != self.sources:
                self._retire()
                raise _Retired("pipnb's source files changed since the server started")
            cwd = str(request.get("cwd") or "/")
            if not os.path.isdir(cwd):
                raise FileNotFoundError(f"working directory {cwd!r} does not exist")
            blockers = fork_blockers()
            if blockers:
                raise RuntimeError("unsafe to fork: " + "; ".join(blockers))
            job = LaunchJob(
                args=[str(a) for a in request.get("args", [])],
                cwd=cwd,
                env={str(k): str(v) for k, v in dict(request.get("env") or os.environ).items()},
                umask=request.get("umask"),
                fds=fds,
                server_pid=self.pid,
            )
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        if pid == 0:
            try:
                conn.close()  # the server's end of this client's connection stays with the server
                self._close_in_child()
            except BaseException:  # noqa: BLE001 - a child must never go on serving
                traceback.print_exc()
                os._exit(1)
            return job
        for fd in fds:
            os.close(fd)
        self.kernels[pid] = _Kernel(pid, conn)
        self._reply(conn, {"ok": True, "pid": pid})
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, pid)
        log(f"forked kernel {pid} (cwd {job.cwd})")
        return None

    def _close_in_child(self) -> None:
        """Drop everything of the server in a freshly forked child."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for key in list(self.selector.get_map().values()):
            if isinstance(key.fileobj, socket.socket):
                key.fileobj.close()
        self.selector.close()
        if not self.listener_closed:
            self.listener.close()
        os.close(self.wakeup_r)
        os.close(self.wakeup_w)
        self.kernels.clear()

    # --------------------------------------------------------------------- kernel lifecycle
    def _client_readable(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            return  # nothing is expected from a client after launch; ignore
        pid = self.selector.get_key(conn).data
        self.selector.unregister(conn)
        conn.close()
        kernel = self.kernels.get(pid)
        if kernel is None:
            return
        kernel.conn = None
        log(f"client of kernel {pid} went away; terminating it")
        self._signal(pid, signal.SIGTERM)
        kernel.kill_at = time.monotonic() + KILL_GRACE

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            kernel = self.kernels.pop(pid, None)
            self.last_activity = time.monotonic()
            log(f"kernel {pid} exited with {code}")
            if kernel is not None and kernel.conn is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(kernel.conn)
                self._reply(kernel.conn, {"exit": code})
                kernel.conn.close()

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for kernel in self.kernels.values():
            if kernel.kill_at is not None and now >= kernel.kill_at:
                log(f"kernel {kernel.pid} ignored SIGTERM; killing it")
                self._signal(kernel.pid, signal.SIGKILL)
                kernel.kill_at = None

    def _terminate_all(self) -> None:
        for kernel in self.kernels.values():
            if kernel.kill_at is None:
                self._signal(kernel.pid, signal.SIGTERM)
                kernel.kill_at = time.monotonic() + KILL_GRACE

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        try:
            os.killpg(pid, signum)
        except OSError:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)
