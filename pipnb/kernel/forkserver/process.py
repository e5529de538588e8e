"""The fork server's own process: its log and name, a fork-safe environment, preloading, fork checks.

What :mod:`.main` does to the process before serving (:func:`prepare_environment`, :func:`preload`)
and what the server checks before every ``fork`` (:func:`fork_blockers`): a process may be forked
safely only while it runs a single thread, which is why the server keeps every numeric library's
thread pool at one thread and lets each kernel size its own after the fork.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys
import threading
import time

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


def log(message: str) -> None:
    """Write one line to the server's log (its stderr)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} pipnb-forkserver[{os.getpid()}] {message}", file=sys.stderr, flush=True)


def set_process_name(name: str) -> None:
    """Name this process in ``ps -o comm``/``top`` (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name[:15])


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


OWN_PACKAGE = "pipnb"
"""The package whose preloaded modules are watched: the server retires when one of its source files changes."""


def is_own(module: str) -> bool:
    """Whether ``module`` is :data:`OWN_PACKAGE` or one of its modules."""
    return module == OWN_PACKAGE or module.startswith(OWN_PACKAGE + ".")


def source_snapshot(modules: list[str]) -> dict[str, tuple[int, int]] | None:
    """The modification time and size of every ``.py`` file of :data:`OWN_PACKAGE` when ``modules`` preloads
    any of it, else ``{}``; None when it would but no source file can be found (a zipped install): its modules
    must then not be preloaded, since nothing could tell when they change. Taken before preloading, compared at
    every launch: an edited, added or removed source file retires the server, so a notebook always runs the
    current pipnb code."""
    if not any(is_own(m) for m in modules):
        return {}
    return own_sources() or None


def own_sources() -> dict[str, tuple[int, int]]:
    """The modification time and size of every ``.py`` file of :data:`OWN_PACKAGE` (a few hundred µs)."""
    spec = importlib.util.find_spec(OWN_PACKAGE)           # a top-level package: nothing is imported
    roots = list(spec.submodule_search_locations or []) if spec else []
    snapshot = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    with contextlib.suppress(OSError):
                        stat = os.stat(path)
                        snapshot[path] = (stat.st_mtime_ns, stat.st_size)
    return snapshot


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


def warm_charts() -> str:
    """Pay, once in the server, what every report's first chart pays: a figure in the reports' seaborn theme
    with boxes, dots, lines, a band, dates, titles and a legend, laid out and saved as a PNG at the reports'
    DPI. That loads and caches the fonts (regular and bold), the text layout, the date locators, the Agg
    renderer and the PNG encoder, which every forked kernel then shares. matplotlib's settings are restored
    afterwards (a kernel sees the library as imported); nothing is left open.

    Returns
    -------
    str
        ``""`` when done, else a one-line reason (the server serves anyway, only colder).
    """
    try:
        import matplotlib  # matplotlib (0.15 s)
        import matplotlib.pyplot as plt  # matplotlib (0.15 s)
        import pandas as pd  # pandas (0.25 s)
        import seaborn as sns  # seaborn (0.5 s)

        with matplotlib.rc_context(), contextlib.ExitStack() as cleanup:
            sns.set_theme(style="whitegrid", context="notebook")
            fig, axes = plt.subplots(1, 3, figsize=(6.9, 3.4), squeeze=False)
            cleanup.callback(plt.close, fig)
            box, line, bars = axes[0]
            box.boxplot([1.0, 2.0, 3.0, 4.0], positions=[0], widths=0.45, showfliers=False, patch_artist=True)
            box.scatter([0.1, -0.1], [1.5, 2.5], s=22, alpha=0.8)
            box.scatter([0], [2], marker="D", s=90, label="this rep")
            box.set_title("Win rate (%)", fontsize=9, fontweight="bold")
            box.legend(fontsize=7)
            weeks = pd.date_range("2024-01-01", periods=12, freq="W-MON")
            line.plot(weeks, range(12), "--", lw=1.2)
            line.fill_between(weeks, 0, 5, alpha=0.2)
            line.axvline(weeks[3], lw=0.8, ls=":")
            line.annotate("plan start", (weeks[3], 1), xycoords=("data", "axes fraction"), fontsize=8)
            sns.barplot(x=["a", "b"], y=[1.0, 2.0], ax=bars)
            bars.set_xlabel("per week", fontsize=7)
            bars.tick_params(labelsize=7)
            fig.autofmt_xdate()
            fig.tight_layout()
            fig.savefig(io.BytesIO(), format="png", dpi=90, pil_kwargs={"compress_level": 3})
        return ""
    except Exception as exc:  # noqa: BLE001 - a cold start is slower, never broken
        return f"{type(exc).__name__}: {exc}"
