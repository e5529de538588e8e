"""Timings of the fast kernel against a normal one: kernel start-up and a whole papermill run.

``python -m pipnb.kernel bench`` prints them; the functions here return them for tests and
notebooks. Each figure is the median of ``runs`` measurements; the fork server is started (and
measured separately) before the fast kernel's runs.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from pipnb.kernel import start_server

GLM_CELLS: tuple[str, ...] = (
    "import pandas as pd\nimport seaborn as sns\nimport statsmodels.api as sm\nimport statsmodels.formula.api as smf",
    (
        "df = pd.DataFrame({'week': range(12), 'calls': [3, 5, 4, 6, 8, 7, 9, 12, 10, 13, 15, 14]})\n"
        "fit = smf.glm('calls ~ week', data=df, family=sm.families.Poisson()).fit()\n"
        "print(fit.params.round(6).to_dict())"
    ),
)
"""A report-like notebook: the heavy imports, then a Poisson GLM."""


@dataclasses.dataclass(frozen=True)
class KernelTiming:
    """Start-up and papermill timings of one kernel, in seconds (medians).

    Attributes
    ----------
    kernel_name
        Kernelspec measured.
    kernel_info
        From ``start_kernel`` to the kernel's first ``kernel_info`` reply.
    ready
        From ``start_kernel`` to ``wait_for_ready`` returning (it adds a 0.2 s IOPub flush).
    papermill
        Wall time of ``papermill.execute_notebook`` on :data:`GLM_CELLS`.
    cells
        Of that, the time spent executing the cells (papermill's per-cell durations).
    runs
        Measurements per median.
    """

    kernel_name: str
    kernel_info: float
    ready: float
    papermill: float
    cells: float
    runs: int


def glm_notebook(path: Path) -> Path:
    """Write the benchmark notebook (:data:`GLM_CELLS`) to ``path``.

    Parameters
    ----------
    path
        Destination ``.ipynb``.

    Returns
    -------
    Path
        ``path``.
    """
    import nbformat  # nbformat (90 ms)

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in GLM_CELLS]
    nbformat.write(nb, path)
    return path


def time_start(kernel_name: str) -> tuple[float, float]:
    """Start one kernel, time it, and shut it down.

    Parameters
    ----------
    kernel_name
        Kernelspec name.

    Returns
    -------
    kernel_info : float
        Seconds from ``start_kernel`` to the first ``kernel_info`` reply.
    ready : float
        Seconds from ``start_kernel`` to ``wait_for_ready`` returning.
    """
    from jupyter_client.manager import KernelManager  # jupyter_client (90 ms)

    km = KernelManager(kernel_name=kernel_name)
    start = time.perf_counter()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        while True:
            kc.kernel_info()
            try:
                kc.get_shell_msg(timeout=0.5)
                break
            except Exception:  # noqa: BLE001 - queue.Empty: not up yet
                if not km.is_alive():
                    raise RuntimeError(f"kernel {kernel_name} died while starting") from None
        kernel_info = time.perf_counter() - start
        kc.wait_for_ready(timeout=60)
        ready = time.perf_counter() - start
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return kernel_info, ready


def time_papermill(kernel_name: str, notebook: Path, workdir: Path) -> tuple[float, float]:
    """Run ``notebook`` once with papermill and time it.

    Parameters
    ----------
    kernel_name
        Kernelspec name.
    notebook
        Input notebook.
    workdir
        Working directory of the kernel; the output notebook is written there.

    Returns
    -------
    wall : float
        Seconds for the whole ``execute_notebook`` call.
    cells : float
        Seconds spent executing the cells.
    """
    import papermill  # papermill (0.35 s)

    start = time.perf_counter()
    nb = papermill.execute_notebook(
        str(notebook), str(workdir / f"out-{kernel_name}.ipynb"), kernel_name=kernel_name,
        cwd=str(workdir), progress_bar=False,
    )
    wall = time.perf_counter() - start
    return wall, sum(cell.metadata.papermill.duration or 0.0 for cell in nb.cells)


def measure(kernel_name: str, *, runs: int = 3, workdir: Path | None = None) -> KernelTiming:
    """Median start-up and papermill timings of ``kernel_name``.

    Parameters
    ----------
    kernel_name
        Kernelspec name, e.g. ``"pipnb-fast"`` or ``"python3"``.
    runs
        Measurements per median.
    workdir
        Directory for the notebook and outputs (default: a temporary directory).

    Returns
    -------
    KernelTiming
    """
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        notebook = glm_notebook(work / "bench-glm.ipynb")
        starts = [time_start(kernel_name) for _ in range(runs)]
        papermill_times = [time_papermill(kernel_name, notebook, work) for _ in range(runs)]
    return KernelTiming(
        kernel_name=kernel_name,
        kernel_info=statistics.median(s[0] for s in starts),
        ready=statistics.median(s[1] for s in starts),
        papermill=statistics.median(p[0] for p in papermill_times),
        cells=statistics.median(p[1] for p in papermill_times),
        runs=runs,
    )


def warm_up() -> float:
    """Start the fork server if needed and return the seconds it took (0 when it was running).

    Returns
    -------
    float
    """
    start = time.perf_counter()
    started = start_server()
    return time.perf_counter() - start if started else 0.0
