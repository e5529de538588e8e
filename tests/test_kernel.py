"""The ``pipnb-fast`` kernel: forked from a server, isolated, as capable as a normal kernel, and fast.

The module installs the kernelspec into a temporary prefix and gives the fork server its own
runtime directory, so it neither needs ``make`` nor touches a server of the developer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from jupyter_client.manager import KernelManager
from nbclient.exceptions import DeadKernelError

import pipnb.kernel as fast
from pipnb.kernel import launcher

pytestmark = pytest.mark.skipif(not fast.fork_supported()[0], reason=fast.fork_supported()[1])

FAST = fast.KERNEL_NAME


# ------------------------------------------------------------------------------------ helpers
def notebook(path: Path, *cells: str) -> Path:
    """Write a notebook of code ``cells`` to ``path``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)
    return path


def run(path: Path, kernel: str = FAST, **kwargs) -> nbformat.NotebookNode:
    """Execute ``path`` with papermill in its own directory and return the executed notebook."""
    out = path.with_name(f"{path.stem}-{kernel}-out.ipynb")
    return pm.execute_notebook(
        str(path), str(out), kernel_name=kernel, cwd=str(path.parent), progress_bar=False, **kwargs
    )


def printed(nb: nbformat.NotebookNode, cell: int = -1) -> dict:
    """The JSON object a cell printed."""
    return json.loads("".join(o["text"] for o in nb.cells[cell].outputs if o["output_type"] == "stream"))


@contextlib.contextmanager
def ready_kernel(*, now: bool = False):
    """A fast kernel started, its client's channels open and the kernel ready: ``(manager, client)``; the
    channels closed and the kernel shut down (``now``: without asking it first) on leaving."""
    km = KernelManager(kernel_name=FAST)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=now)


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


PROBE = (
    "import json, os, sys\n"
    "print(json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'cwd': os.getcwd(),\n"
    "    'mark': os.environ.get('PIPNB_TEST_MARK'), 'pipnb_preloaded': 'pipnb' in sys.modules}))"
)


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def fast_env():
    """Install the kernelspec in a temporary prefix; the module's fork server lives in its own runtime dir."""
    with tempfile.TemporaryDirectory(prefix="pk-") as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        spec_dir = fast.install(prefix=root / "prefix")
        mp.setenv("JUPYTER_PATH", str(root / "prefix" / "share" / "jupyter"))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(root / "rt"))
        mp.setenv("PIPNB_FORKSERVER_IDLE", "60")
        mp.delenv("PIPNB_FAST_KERNEL", raising=False)
        (root / "lib").mkdir()
        mp.setenv("PYTHONPATH", str(root / "lib"))  # a site directory the tests may "install" into
        yield spec_dir
        fast.stop_server(force=True)
        launcher.reap_spawned()


@pytest.fixture(scope="module")
def server(fast_env) -> dict:
    """The module's fork server, started and reported on."""
    fast.start_server()
    return fast.server_status()


# -------------------------------------------------------------------------------------- tests
def test_install_command_writes_kernelspec_naming_the_provisioner(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipnb.kernel", "install", "--prefix", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    spec = json.loads((tmp_path / "share/jupyter/kernels/pipnb-fast/kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (pipnb fast)"
    assert spec["metadata"]["kernel_provisioner"] == {"provisioner_name": "pipnb-fork-provisioner"}
    assert spec["argv"][:5] == [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def test_available_when_installed_and_not_when_disabled_or_without_fork(fast_env, monkeypatch):
    assert fast.available()[0] is True
    monkeypatch.setenv("PIPNB_FAST_KERNEL", "0")
    assert fast.available() == (False, "the fast kernel is disabled by PIPNB_FAST_KERNEL=0")
    monkeypatch.delenv("PIPNB_FAST_KERNEL")
    monkeypatch.delattr(os, "fork")
    ok, reason = fast.available()
    assert not ok and "no fork()" in reason


def test_disabled_fast_kernel_still_runs_the_notebook_as_a_normal_child(fast_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPNB_FAST_KERNEL", "0")
    info = printed(run(notebook(tmp_path / "nb.ipynb", PROBE)))
    assert info["ppid"] == os.getpid()  # launched by this process, not forked by the server


def test_server_forks_safely_and_preloads_the_libraries_then_pipnbs_report_modules(server):
    assert server["threads"] == 1 and server["os_threads"] == 1
    assert server["failed"] == {}
    assert {"pandas", "seaborn", "statsmodels.api", "ipykernel.kernelapp"} <= set(server["preloaded"])
    assert {"pipnb", "pipnb.diagnosis", "pipnb.plots", "pipnb.reviews"} <= set(server["preloaded"])
    own = [i for i, m in enumerate(server["preloaded"]) if m.startswith("pipnb")]
    assert own == list(range(len(server["preloaded"]) - len(own), len(server["preloaded"])))   # last


def test_kernels_are_forked_children_of_the_server_with_papermill_cwd_and_env(server, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPNB_TEST_MARK", "rep-R07")
    info = printed(run(notebook(tmp_path / "nb.ipynb", PROBE)))
    assert info["ppid"] == server["pid"]
    assert info["cwd"] == str(tmp_path)
    assert info["mark"] == "rep-R07"
    assert info["pipnb_preloaded"] is True


def test_nothing_one_report_sets_is_visible_to_the_next(server, tmp_path):
    first = run(notebook(
        tmp_path / "first.ipynb",
        "import os, sys, numpy as np, pandas as pd\n"
        "SECRET = 'salary of R07'\n"
        "np.pipnb_leak = 1\n"
        "pd.set_option('display.max_rows', 3)\n"
        "os.environ['PIPNB_LEAK'] = '1'\n"
        "sys.modules['leaked_module'] = sys\n"
        "print(os.getpid(), np.random.randint(2**62))",
    ))
    second = run(notebook(
        tmp_path / "second.ipynb",
        "import json, os, sys, numpy as np, pandas as pd\n"
        "print(json.dumps({'pid': os.getpid(), 'secret': 'SECRET' in globals(),\n"
        "    'np': hasattr(np, 'pipnb_leak'), 'max_rows': pd.get_option('display.max_rows'),\n"
        "    'env': 'PIPNB_LEAK' in os.environ, 'module': 'leaked_module' in sys.modules,\n"
        "    'random': np.random.randint(2**62)}))",
    ))
    after = printed(second)
    assert {k: v for k, v in after.items() if k not in ("pid", "random")} == {
        "secret": False, "np": False, "max_rows": 60, "env": False, "module": False
    }
    first_pid, first_random = map(int, first.cells[0].outputs[0]["text"].split())
    assert after["pid"] != first_pid
    assert after["random"] != first_random  # numpy's global random state is reseeded in each kernel


BLAS_THREADS = (
    "import ctypes, scipy.linalg\n"
    "libs = {line.split()[-1] for line in open('/proc/self/maps') if 'openblas' in line}\n"
    "getters = ('scipy_openblas_get_num_threads64_', 'scipy_openblas_get_num_threads', 'openblas_get_num_threads')\n"
    "print(sorted({getattr(ctypes.CDLL(lib), g)() for lib in libs for g in getters\n"
    "              if hasattr(ctypes.CDLL(lib), g)}))"
)


def test_blas_thread_pools_are_sized_after_the_fork_from_the_kernel_environment(server, tmp_path, monkeypatch):
    nb = notebook(tmp_path / "nb.ipynb", BLAS_THREADS)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)        # a kernel of a user who set none (other tests may have)
    cores = len(os.sched_getaffinity(0))
    assert run(nb).cells[0].outputs[0]["text"] == f"[{cores}]\n"  # the server itself runs with 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert run(nb).cells[0].outputs[0]["text"] == "[1]\n"


def test_a_changed_module_is_seen_by_the_next_report(server, tmp_path):
    module = tmp_path / "rep_rules.py"
    nb = notebook(tmp_path / "nb.ipynb", "import rep_rules\nprint(rep_rules.THRESHOLD)")
    module.write_text("THRESHOLD = 1\n")
    assert run(nb).cells[0].outputs[0]["text"] == "1\n"
    module.write_text("THRESHOLD = 2  # edited between two reports\n")
    assert run(nb).cells[0].outputs[0]["text"] == "2\n"


def test_same_outputs_as_the_python3_kernel_from_a_forked_process(server, tmp_path):
    """The fast kernel gives the python3 kernel's outputs, and is a process the fork server forked (not a kernel
    started afresh). How much sooner it answers is measured, not asserted: ``benchmarks/bench_batch.py`` prints
    its start and this notebook's run beside the python3 kernel's."""
    cells = (
        "import numpy as np, pandas as pd, seaborn as sns\n"
        "import statsmodels.api as sm, statsmodels.formula.api as smf",
        "df = pd.DataFrame({'week': range(12), 'calls': [3, 5, 4, 6, 8, 7, 9, 12, 10, 13, 15, 14]})\n"
        "fit = smf.glm('calls ~ week', data=df, family=sm.families.Poisson()).fit()\n"
        "print(fit.summary().tables[1])\n"
        "df.describe()",
        "ax = sns.lineplot(data=df, x='week', y='calls')",
        "np.linalg.inv(np.array([[2.0, 1.0], [1.0, 3.0]]))",
    )
    nb = notebook(tmp_path / "glm.ipynb", *cells, "import os, json; print(json.dumps({'parent': os.getppid()}))")
    normal, forked = run(nb, kernel="python3"), run(nb)
    assert [c.outputs for c in forked.cells[:-1]] == [c.outputs for c in normal.cells[:-1]]
    assert any("image/png" in o.get("data", {}) for o in forked.cells[2].outputs)
    assert printed(forked)["parent"] == server["pid"] != printed(normal)["parent"]


def test_a_kernel_started_twice_answers_from_a_fresh_fork_each_time(server):
    """Start-up: each kernel is its own fork (a new pid under the server), answers kernel_info and is gone after
    shutdown. Its start-up time is a benchmark figure (``benchmarks/bench_batch.py``), not an assertion."""
    pids = []
    for _ in range(2):
        with ready_kernel(now=True) as (km, _):
            assert km.provisioner.forked
            pids.append(km.provisioner.pid)
    assert len(set(pids)) == 2 and server["pid"] not in pids
    assert wait_until(lambda: not any(running(pid) for pid in pids))


def test_interrupt_restart_and_shutdown_behave_as_with_a_normal_kernel(server):
    with ready_kernel() as (km, kc):
        assert km.provisioner.forked and km.transport == "ipc"
        msg_id = kc.execute(  # stop_on_error=False: the request after the interrupt is not aborted
            "import time\nx = 41\nprint('sleeping', flush=True)\ntime.sleep(30)", stop_on_error=False
        )
        while kc.get_iopub_msg(timeout=10)["content"].get("text") != "sleeping\n":
            pass
        # The output can arrive while the kernel is still finishing the print; a SIGINT there lands in ipykernel's
        # own code (once in a fresh clone it closed the shell socket), not in the cell: let it reach the sleep.
        time.sleep(0.5)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=10)
        while reply["parent_header"].get("msg_id") != msg_id:  # skip wait_for_ready's extra replies
            reply = kc.get_shell_msg(timeout=10)
        assert (reply["content"]["status"], reply["content"]["ename"]) == ("error", "KeyboardInterrupt")
        assert kc.execute_interactive("x += 1", timeout=10)["content"]["status"] == "ok"

        first = km.provisioner.pid
        km.restart_kernel()
        kc.wait_for_ready(timeout=30)
        assert km.provisioner.pid != first and not os.path.exists(f"/proc/{first}")  # exited and reaped
        reply = kc.execute_interactive("x", timeout=10)
        assert reply["content"]["ename"] == "NameError"
        second = km.provisioner.pid
    assert not km.is_alive()
    assert wait_until(lambda: not os.path.exists(f"/proc/{second}"), 5)  # reaped by the server: no zombie


def test_a_killed_kernel_fails_its_notebook_but_not_the_server(server, tmp_path):
    crash = notebook(
        tmp_path / "crash.ipynb", "print('working')", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    with pytest.raises(DeadKernelError):
        run(crash)
    assert fast.server_status()["pid"] == server["pid"]
    assert printed(run(notebook(tmp_path / "next.ipynb", PROBE)))["ppid"] == server["pid"]

    km = KernelManager(kernel_name=FAST)
    km.start_kernel()
    try:
        os.kill(km.provisioner.pid, signal.SIGKILL)
        assert wait_until(lambda: not km.is_alive(), 5)
        assert asyncio.run(km.provisioner.poll()) == -signal.SIGKILL
    finally:
        km.shutdown_kernel(now=True)


CLIENT = """
import time
from jupyter_client.manager import KernelManager
km = KernelManager(kernel_name='pipnb-fast')
km.start_kernel()
print(km.provisioner.pid, flush=True)
time.sleep(60)
"""


def test_a_kernel_whose_client_dies_is_terminated_by_the_server(server):
    client = subprocess.Popen([sys.executable, "-c", CLIENT], stdout=subprocess.PIPE, text=True)
    kernel = int(client.stdout.readline())
    assert running(kernel)
    client.kill()
    client.wait()
    client.stdout.close()
    assert wait_until(lambda: not running(kernel), 10)
    assert fast.server_status()["pid"] == server["pid"]


def test_installing_a_package_retires_the_server_and_the_next_report_gets_a_fresh_one(server, tmp_path):
    nb = notebook(tmp_path / "nb.ipynb", PROBE)
    before = printed(run(nb))["ppid"]
    site = Path(os.environ["PYTHONPATH"])
    (site / "new_dependency.py").write_text("VERSION = 2\n")
    after = printed(run(nb))["ppid"]
    assert after != before and after == fast.server_status()["pid"]
    assert wait_until(lambda: not running(before), 10)
    launcher.reap_spawned()


def test_a_changed_pipnb_source_file_retires_the_server_and_the_next_report_gets_a_fresh_one(server, tmp_path):
    """The server preloads pipnb; a report must never run older pipnb code than the files hold."""
    import pipnb.quality

    nb = notebook(tmp_path / "nb.ipynb", PROBE)
    before = printed(run(nb))["ppid"]
    source = Path(pipnb.quality.__file__)
    stat = source.stat()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))   # as an edit leaves it
        after = printed(run(nb))["ppid"]
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert after != before and after == fast.server_status()["pid"]
    assert wait_until(lambda: not running(before), 10)
    again = printed(run(nb))["ppid"]        # the restored file differs from the new server's snapshot too
    assert again != after and again == fast.server_status()["pid"]
    launcher.reap_spawned()


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _subreaper(enable: bool) -> None:
    """Adopt orphaned descendants (the fork server outlives the workers that started it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, int(enable), 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) is not available")


WORKER = """
import sys
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name='pipnb-fast')
kc.execute_interactive(sys.argv[1], timeout=30)
kc.stop_channels()
km.shutdown_kernel()
"""


def test_parallel_workers_share_one_cold_started_server_that_exits_when_idle(fast_env):
    runtime = Path(tempfile.mkdtemp(prefix="pk-cold-"))
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "PIPNB_FORKSERVER_IDLE": "1"}
    _subreaper(True)
    try:
        workers = [
            subprocess.Popen([sys.executable, "-c", WORKER, PROBE],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        results = [w.communicate(timeout=90) for w in workers]
        assert [w.returncode for w in workers] == [0, 0, 0], [err[-500:] for _, err in results]
        infos = [json.loads(out) for out, _ in results]
        servers = {info["ppid"] for info in infos}
        assert len(servers) == 1  # the startup race produced one server
        (server_pid,) = servers
        assert wait_until(lambda: not running(server_pid), 15)  # idle exit after 1 s
        with contextlib.suppress(ChildProcessError):  # else its starter reaped it on the way out
            os.waitpid(server_pid, 0)  # adopted by us as subreaper once its starter exited
        assert not os.path.exists(f"/proc/{server_pid}")
        assert not [i["pid"] for i in infos if os.path.exists(f"/proc/{i['pid']}")]
        assert not list(runtime.glob("*.sock"))
        assert not [p for p in Path("/proc").glob("[0-9]*") if str(runtime) in _cmdline(p)]
    finally:
        _subreaper(False)
        shutil.rmtree(runtime, ignore_errors=True)


def test_the_source_snapshot_covers_pipnbs_files_and_refuses_what_it_cannot_watch(monkeypatch):
    import pipnb
    from pipnb.kernel.forkserver import process

    assert process.source_snapshot(["pandas", "seaborn"]) == {}             # nothing of pipnb preloaded
    snapshot = process.source_snapshot(["pandas", "pipnb.plots"])
    package = Path(pipnb.__file__).parent
    assert set(snapshot) == {str(p) for p in package.rglob("*.py")}
    stat = (package / "quality.py").stat()
    assert snapshot[str(package / "quality.py")] == (stat.st_mtime_ns, stat.st_size)
    monkeypatch.setattr(process.importlib.util, "find_spec", lambda name: None)   # e.g. a zipped install
    assert process.source_snapshot(["pipnb.plots"]) is None                 # so pipnb is not preloaded
