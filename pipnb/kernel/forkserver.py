"""The fork server: import the heavy libraries once, then fork one fresh IPython kernel per request.

This file is a program, run by path (``python .../forkserver.py --socket PATH``) by
:mod:`pipnb.kernel.launcher`; it is never imported as part of :mod:`pipnb` in the server process,
so none of pipnb's own modules are preloaded and a notebook always sees the current pipnb code.
Its module level uses the standard library only.

Life of the server
------------------
1. Make forking safe: one thread per numeric library pool (``OPENBLAS_NUM_THREADS=1`` and
   friends), no jemalloc background thread in pyarrow, matplotlib on the ``Agg`` backend.
2. Preload the third-party modules named by ``--preload`` (numpy, pandas, matplotlib,
   seaborn, scipy.stats, statsmodels, the ipykernel machinery ...), then ``gc.freeze()`` them.
   Their import-time warnings go to the server's log, not to a notebook.
3. Listen on a Unix socket (created under a temporary name, then renamed into place, so a
   client that can connect can also be served), accepting connections from the same user only.
4. Serve until idle: no kernel alive and no request for ``--idle`` seconds. It then removes
   its socket under the startup lock file, so a client never connects to a server on its way out.

Protocol
--------
One Unix stream connection per request; each message is one line of JSON.

``{"op": "launch", "args": [...], "cwd": "...", "env": {...}, "umask": 18}`` with three file
descriptors attached (``SCM_RIGHTS``: the kernel's stdin, stdout and stderr). The server checks
that forking is safe (``threading.active_count() == 1``, one OS thread, no ZMQ context) and forks.
It answers ``{"ok": true, "pid": PID}`` (or ``{"ok": false, "error": "..."}``; with
``"retry": true`` when the server has retired because a package was installed or upgraded
since it started -- its socket is gone, so the client starts a fresh server), keeps the
connection open, and when the kernel has exited and been reaped sends ``{"exit": CODE}`` (the
``subprocess`` convention: ``-N`` for a kernel killed by signal N) and closes it. When the
client closes the connection while its kernel runs, the server terminates the kernel (SIGTERM to
its process group, SIGKILL 5 s later): a kernel never outlives its client.

``{"op": "status"}`` answers the server's pid, uptime, live kernels, thread count and preloaded
modules; ``{"op": "stop", "force": false}`` stops an idle server (``force`` terminates its kernels).

The kernel child
----------------
The child starts a new session (its pid is its process group, which the provisioner signals),
takes the client's stdin/stdout/stderr, working directory, environment and umask, closes the
server's sockets, resets signal handlers, reseeds numpy's global random state, sets the BLAS
thread pools to the size the client's environment asks for, and runs
``IPKernelApp.launch_instance`` on the kernel arguments -- exactly what ``python -m
ipykernel_launcher`` does, minus the imports. The kernel polls the server as its parent, so it
exits if the server is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import errno
import fcntl
import gc
import importlib
import importlib.util
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

DEFAULT_PRELOAD: tuple[str, ...] = (
    "numpy",
    "pandas",
    "matplotlib",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "seaborn",
    "scipy.stats",
    "statsmodels.api",
    "statsmodels.formula.api",
    "IPython",
    "IPython.core.pylabtools",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.comm",
    "ipykernel.debugger",
    "ipykernel.inprocess.ipkernel",
    "jupyter_client.session",
)
"""Modules the server imports once. Third-party only: never a pipnb module."""

DEFAULT_IDLE = 120.0
"""Seconds without kernels or requests after which the server exits."""

FORK_SAFE_ENV: dict[str, str] = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
    "MPLBACKEND": "Agg",
}
"""Environment of the server process: no thread pool and no GUI before ``fork``."""

KILL_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when the server ends a kernel whose client went away."""

REQUEST_TIMEOUT = 5.0
MAX_FDS = 3

_BLAS_THREAD_ENV: dict[str, tuple[str, ...]] = {
    "openblas": ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"),
    "mkl": ("MKL_NUM_THREADS", "OMP_NUM_THREADS"),
    "blis": ("BLIS_NUM_THREADS", "OMP_NUM_THREADS"),
    "gomp": ("OMP_NUM_THREADS",),
    "iomp": ("OMP_NUM_THREADS",),
}
_BLAS_SETTERS: dict[str, tuple[str, ...]] = {
    "openblas": (
        "openblas_set_num_threads",
        "openblas_set_num_threads64_",
        "scipy_openblas_set_num_threads64_",
        "scipy_openblas_set_num_threads",
    ),
    "mkl": ("MKL_Set_Num_Threads",),
    "blis": ("bli_thread_set_num_threads",),
    "gomp": ("omp_set_num_threads",),
    "iomp": ("omp_set_num_threads",),
}


def _log(message: str) -> None:
    """Write one line to the server's log (its stderr)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} pipnb-forkserver[{os.getpid()}] {message}", file=sys.stderr, flush=True)


def os_thread_count() -> int:
    """Return the number of OS threads of this process (Python and native), or -1 if unknown.

    Returns
    -------
    int
        Entries of ``/proc/self/task``; -1 where ``/proc`` is not available.
    """
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def fork_blockers() -> list[str]:
    """Say why forking this process now would be unsafe.

    Returns
    -------
    list of str
        Empty when it is safe: a single Python thread, a single OS thread and no ZMQ context.
    """
    blockers = []
    if threading.active_count() != 1:
        names = ", ".join(t.name for t in threading.enumerate())
        blockers.append(f"{threading.active_count()} Python threads are running ({names})")
    native = os_thread_count()
    if native > 1:
        blockers.append(f"{native} OS threads are running (a native library started a thread pool)")
    zmq = sys.modules.get("zmq")
    if zmq is not None and getattr(zmq.Context, "_instance", None) is not None:
        blockers.append("a ZMQ context exists")
    return blockers


def prepare_environment() -> None:
    """Make the server fork-safe before anything is imported (thread pools, malloc, matplotlib)."""
    os.environ.update(FORK_SAFE_ENV)
    for name in [n for n in os.environ if n.startswith("JPY_")]:
        del os.environ[name]  # ipykernel reads JPY_PARENT_PID at import; each kernel gets its own


def preload(modules: list[str]) -> tuple[list[str], dict[str, str]]:
    """Import ``modules``; a module that fails to import is reported, not fatal.

    Parameters
    ----------
    modules
        Dotted module names.

    Returns
    -------
    loaded : list of str
        The modules that imported.
    failed : dict
        Module name to a one-line reason.
    """
    loaded: list[str] = []
    failed: dict[str, str] = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure only means "not preloaded"
            failed[name] = f"{type(exc).__name__}: {exc}"
        else:
            loaded.append(name)
    return loaded, failed


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
class LaunchJob:
    """What a forked child needs to become a kernel.

    Attributes
    ----------
    args
        ``IPKernelApp`` command-line arguments (``-f CONNECTION_FILE ...``).
    cwd
        Working directory of the kernel.
    env
        Complete environment of the kernel.
    umask
        File-creation mask of the client, or None to keep the server's.
    fds
        Received descriptors for the kernel's stdin, stdout and stderr.
    server_pid
        The server's pid: the kernel exits when this parent goes away.
    """

    args: list[str]
    cwd: str
    env: dict[str, str]
    umask: int | None
    fds: list[int]
    server_pid: int


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
    """

    def __init__(self, path: Path, *, idle: float, preloaded: list[str], failed: dict[str, str]):
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
        _log(f"serving on {self.path} (idle exit after {self.idle:g} s)")
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
                _log(f"exiting ({reason})")
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
                _log(f"retiring: {exc}")
                self._reply(conn, {"ok": False, "retry": True, "error": str(exc)})
                conn.close()
                return None
            except Exception as exc:  # noqa: BLE001 - a bad request must not take the server down
                _log(f"request failed: {type(exc).__name__}: {exc}")
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
        _log(f"forked kernel {pid} (cwd {job.cwd})")
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
        _log(f"client of kernel {pid} went away; terminating it")
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
            _log(f"kernel {pid} exited with {code}")
            if kernel is not None and kernel.conn is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(kernel.conn)
                self._reply(kernel.conn, {"exit": code})
                kernel.conn.close()

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for kernel in self.kernels.values():
            if kernel.kill_at is not None and now >= kernel.kill_at:
                _log(f"kernel {kernel.pid} ignored SIGTERM; killing it")
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


# --------------------------------------------------------------------------- the kernel child
def _become_kernel_process(job: LaunchJob) -> None:
    """Turn a freshly forked child into the process a normal kernel launch would have made."""
    os.setsid()
    _set_process_name("pipnb-kernel")
    for target, fd in enumerate(job.fds):
        if fd != target:
            os.dup2(fd, target, inheritable=True)
    for fd in set(job.fds) - {0, 1, 2}:
        os.close(fd)
    os.chdir(job.cwd)
    if job.umask is not None:
        os.umask(int(job.umask))
    os.environ.clear()
    os.environ.update(job.env)
    time.tzset()  # the C library caches TZ; a fresh process would read the client's
    spec = importlib.util.find_spec("ipykernel_launcher")
    sys.argv = [(spec and spec.origin) or "ipykernel_launcher", *job.args]
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # the legacy global RandomState was seeded once, in the server
    _size_thread_pools(job.env)
    _reload_matplotlibrc()


def _set_process_name(name: str) -> None:
    """Name this process in ``ps -o comm``/``top`` (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name[:15])


def _size_thread_pools(env: dict[str, str]) -> None:
    """Give each loaded BLAS/OpenMP library the thread count a fresh process would pick."""
    try:
        default = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        default = os.cpu_count() or 1
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line and ".so" in line}
    except OSError:
        return
    for path in sorted(paths):
        name = os.path.basename(path).lower()
        family = next((f for f in _BLAS_SETTERS if f in name), None)
        if family is None or (family == "gomp" and "libgomp" not in name):
            continue
        wanted = default
        for var in _BLAS_THREAD_ENV[family]:
            value = env.get(var, "").split(",")[0].strip()
            if value.isdigit() and int(value) > 0:
                wanted = int(value)
                break
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in _BLAS_SETTERS[family]:
            setter = getattr(lib, symbol, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter(wanted)
                break


def _reload_matplotlibrc() -> None:
    """Apply the matplotlibrc a fresh import would find from the kernel's cwd and environment."""
    mpl = sys.modules.get("matplotlib")
    if mpl is None:
        return
    with contextlib.suppress(Exception):
        fname = mpl.matplotlib_fname()
        if fname != _SERVER_MATPLOTLIBRC:
            mpl.rc_file(fname)


def _select_matplotlib_backend() -> None:
    """Use the backend a fresh kernel would (ipykernel sets MPLBACKEND to the inline backend)."""
    mpl = sys.modules.get("matplotlib")
    backend = os.environ.get("MPLBACKEND")
    if mpl is None or not backend:
        return
    mpl.rcParams["backend"] = backend
    mpl.rcParamsOrig["backend"] = backend
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and getattr(pyplot, "_backend_mod", None) is not None:
        pyplot.switch_backend(backend)
    else:
        # The inline backend hooks itself into IPython when first imported; an import done in
        # the server (where there was no IPython) must be redone now that there is one.
        sys.modules.pop("matplotlib_inline.backend_inline", None)


def run_kernel(job: LaunchJob) -> int:
    """Become the kernel described by ``job`` and run it until it shuts down.

    Parameters
    ----------
    job
        What the server received.

    Returns
    -------
    int
        Exit status (0 after a normal shutdown), as ``python -m ipykernel_launcher`` would end.
    """
    try:
        _become_kernel_process(job)
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance(parent_handle=job.server_pid)
        app.initialize(job.args)
        _select_matplotlib_backend()
    except BaseException:  # noqa: BLE001 - report on the client's stderr, like a failed launch
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    app.start()
    return 0


_SERVER_MATPLOTLIBRC: str | None = None


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
    global _SERVER_MATPLOTLIBRC
    args = _parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]  # run by path: do not let pipnb/kernel/ shadow top-level modules
    prepare_environment()
    _set_process_name("pipnb-forksrv")
    started = time.monotonic()
    modules = [m.strip() for m in args.preload.split(",") if m.strip()]
    loaded, failed = preload(modules)
    for name, reason in failed.items():
        _log(f"not preloaded: {name} ({reason})")
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        with contextlib.suppress(Exception):
            _SERVER_MATPLOTLIBRC = mpl.matplotlib_fname()
    gc.collect()
    gc.freeze()  # keep the preloaded objects' pages shared with the children
    _log(f"preloaded {len(loaded)} modules in {time.monotonic() - started:.2f} s")
    blockers = fork_blockers()
    if blockers:
        _log("refusing to serve: " + "; ".join(blockers))
        return 3
    try:
        server = ForkServer(args.socket, idle=args.idle, preloaded=loaded, failed=failed)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EEXIST):
            _log(f"socket {args.socket} is taken: {exc}")
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


if __name__ == "__main__":
    sys.exit(main())
