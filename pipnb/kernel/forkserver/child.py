"""What a child forked by the fork server does to become the IPython kernel its client asked for.

A forked child starts as a copy of the server: its sockets, signal handlers, working directory,
environment, random state and single-threaded BLAS pools. :func:`run_kernel` turns it into the process
that ``python -m ipykernel_launcher`` would have made from the client's :class:`LaunchJob` (stdio,
cwd, environment, umask, thread pools, matplotlibrc and backend), minus the imports, and runs the kernel.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import importlib.util
import os
import sys
import time
import traceback

from .process import set_process_name

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

_SERVER_MATPLOTLIBRC: str | None = None


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
        from ipykernel.kernelapp import IPKernelApp  # ipykernel (0.1 s)

        app = IPKernelApp.instance(parent_handle=job.server_pid)
        app.initialize(job.args)
        _select_matplotlib_backend()
    except BaseException:  # noqa: BLE001 - report on the client's stderr, like a failed launch
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    app.start()
    return 0


def remember_server_matplotlibrc() -> None:
    """Note the matplotlibrc the server's import of matplotlib read (kernels re-read only another one)."""
    global _SERVER_MATPLOTLIBRC
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        with contextlib.suppress(Exception):
            _SERVER_MATPLOTLIBRC = mpl.matplotlib_fname()


def _become_kernel_process(job: LaunchJob) -> None:
    """Turn a freshly forked child into the process a normal kernel launch would have made."""
    os.setsid()
    set_process_name("pipnb-kernel")
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
    for name in [m for m in sys.modules if m == __package__ or m.startswith(f"{__package__}.")]:
        del sys.modules[name]  # the server's own modules are no module of the kernel's
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # the legacy global RandomState was seeded once, in the server
    _size_thread_pools(job.env)
    _reload_matplotlibrc()


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
