"""The fork server: import the heavy libraries once, then fork one fresh IPython kernel per request.

This package is a program, run by path (``python .../forkserver/__main__.py --socket PATH``) by
:mod:`pipnb.kernel.launcher`. In the server process it is imported as the stand-alone package
``_pipnb_forkserver`` (see ``__main__``), never as part of :mod:`pipnb`: the server's own code never
depends on the pipnb it preloads. Hence its modules use the standard library only and import each other
relatively. The pipnb modules a report uses are preloaded last, after a snapshot of pipnb's source files
(names, sizes, modification times); a launch that finds them changed retires the server, so a notebook always
sees the current pipnb code. A client imports just this ``__init__``, as
:mod:`pipnb.kernel.forkserver`, for the defaults below.

Modules
-------
``__main__``  the entry point: load this folder as ``_pipnb_forkserver`` and run ``main``
``main``      parse arguments, prepare the process, preload, serve; in a forked child, run the kernel
``process``   the server process: its log and name, fork-safe environment, preloading, fork checks
``server``    :class:`~.server.ForkServer`: the socket, the protocol and the kernels' lifecycle
``child``     what a forked child does to become the kernel

Life of the server
------------------
1. Make forking safe: one thread per numeric library pool (``OPENBLAS_NUM_THREADS=1`` and
   friends), no jemalloc background thread in pyarrow, matplotlib on the ``Agg`` backend.
2. Preload the third-party modules named by ``--preload`` (numpy, pandas, matplotlib,
   seaborn, scipy.stats, statsmodels, the ipykernel machinery ..., then pipnb's report modules), then
   ``gc.freeze()`` them.
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
``"retry": true`` when the server has retired because a package was installed or upgraded,
or a pipnb source file changed, since it started -- its socket is gone, so the client starts a fresh server), keeps the
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

DEFAULT_PRELOAD: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow.parquet",      # every report reads its bundle (Parquet) first
    "pydantic",             # pipnb's policy and plan models
    "yaml",
    "matplotlib",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "seaborn",
    "scipy.stats",
    "scipy.optimize",
    "scipy.signal",         # pipnb's statistics import scipy lazily (pipnb._lazy.LazyModule): loaded here once
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
    # pipnb's own modules that the report notebooks use, last: the server retires when a pipnb source file
    # changes (see ``process.source_snapshot``), so a kernel never runs older pipnb code than the files hold
    "pipnb",
    "pipnb.parameters",
    "pipnb.batch.bundle",
    "pipnb.scan",
    "pipnb.diagnosis",
    "pipnb.plan",
    "pipnb.drafting",
    "pipnb.reviews",
    "pipnb.stats.assessment",
    "pipnb.plots",
    "pipnb.sentences",
    "pipnb.text",
    "pipnb.quality",
    "pipnb.outcome",
)
"""Modules the server imports once: the libraries, then the pipnb modules a report uses."""

DEFAULT_IDLE = 120.0
"""Seconds without kernels or requests after which the server exits."""
