"""pipnb.cluster: a Dask run never hangs. A real LocalCluster on loopback, small worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from pipnb import cluster as clusters
from pipnb.cluster import ClusterError
from pipnb.job import Job, RunSummary
from pipnb.runner import run_jobs

distributed = pytest.importorskip("distributed")

FIXTURES = Path(__file__).parent / "notebooks_fixture"


def _job(out: Path, rep: str, notebook: str = "toy_trivial", **parameters) -> Job:
    return Job(FIXTURES / f"{notebook}.ipynb", out / rep / "stage.ipynb", out / rep / "stage.html",
               parameters={"rep_id": rep, **parameters}, header={"rep_name": f"Rep {rep}", "stage": "stage"},
               label=f"{rep} stage")


def _cluster(workers: int):
    return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None, silence_logs=50, memory_limit="1GiB")


def _kill_the_worker_running(address: str, label_key: str, killed: list) -> None:
    """Kill (SIGKILL) the worker process that runs the task whose key ends with ``label_key``, once it runs."""
    with distributed.Client(address, set_as_default=False) as client:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for worker, keys in client.processing().items():
                if any(str(k).endswith(label_key) for k in keys):
                    time.sleep(1.0)                              # papermill has started the kernel
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.1)


def test_a_job_whose_worker_dies_is_retried_on_another_and_the_summary_says_so(tmp_path):
    jobs = [_job(tmp_path, "R01", "toy_sleep", seconds=3.0), _job(tmp_path, "R02")]
    killed: list[str] = []
    with _cluster(2) as cluster:
        killer = threading.Thread(target=_kill_the_worker_running, args=(cluster.scheduler_address, "-0", killed))
        killer.start()
        results = run_jobs(jobs, scheduler=cluster.scheduler_address, progress=False)
        killer.join()
    assert killed, "the test could not catch the job running"
    first, second = results
    assert (first.status, first.lost_workers, first.attempts) == ("ok", 1, 2)
    assert "its Dask worker died 1 time; retried on another worker" in first.messages
    assert first.html.is_file() and "awake" in first.ipynb.read_text()
    assert (second.status, second.lost_workers) == ("ok", 0)
    text = str(RunSummary.from_results(results))
    assert "retried after a lost Dask worker:\n  R01 stage  (1 lost, ok)" in text and "R02 stage  (" not in text


def test_no_worker_for_a_while_stops_the_run_in_one_line_with_results_for_what_finished(tmp_path, monkeypatch):
    monkeypatch.setattr(clusters, "NO_WORKERS_TIMEOUT", 1.5)
    done = _job(tmp_path, "R01")
    assert run_jobs([done], jobs_n=1, progress=False)[0].status == "ok"       # up to date: skipped below
    with _cluster(0) as cluster, pytest.raises(ClusterError) as caught:
        run_jobs([done, _job(tmp_path, "R02")], scheduler=cluster.scheduler_address, progress=False)
    err = caught.value
    assert str(err) == (f"the Dask cluster at {cluster.scheduler_address} has had no worker for 2 s; 1 jobs were "
                        f"not run: start workers (`dask worker {cluster.scheduler_address}`) and rerun")
    assert err.exit_code == 1 and "\n" not in str(err)
    assert [r.status for r in err.results] == ["skipped", "failed"]
    assert err.results[1].error == f"not run: {err}" and not (tmp_path / "R02").exists()


def test_an_unreachable_scheduler_is_one_line_and_the_index_is_still_written(tmp_path, monkeypatch, demo_folder):
    from click.testing import CliRunner

    from pipnb.cli import main

    monkeypatch.setattr(clusters, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    result = CliRunner().invoke(main, ["run", "--data", str(demo_folder), "--stage", "diagnose", "--reps", "R01",
                                       "--scheduler", "tcp://127.0.0.1:9", "--kernel", "python3"])
    assert time.monotonic() - start < 30
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last == ("pipnb: error: the Dask scheduler at tcp://127.0.0.1:9 cannot be reached within 1 s "
                    "(ConnectionRefusedError); start it (`dask scheduler`) or fix --scheduler"), result.output
    assert "0 ok, 0 skipped, 1 failed" in result.output and "Traceback" not in result.output
    assert (tmp_path / "reports" / "index.html").is_file()
    assert not (tmp_path / "reports" / "R01" / "diagnose.html").exists()
