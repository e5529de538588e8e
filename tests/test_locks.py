"""One writer at a time (issue 24, item 3), through the real command line: two signed steps at once keep both
records (or one stops with one line), two runs of one review at once on different data write two versions, a held
lock stops a second writer with one line naming the holder within the bounded wait, and a killed holder's lock
frees itself.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pipnb as pn
from pipnb.demo import DEMO_CASES, demo_plan_start
from pipnb.errors import PipnbError
from pipnb.fingerprint import fingerprint_until
from pipnb.locks import LockedError, holder_file, lock_file, writing
from pipnb.plan import Plan
from pipnb.record import read_audit

REP = DEMO_CASES["non_responder"]        # R14


def popen(cwd: Path, *args: str, wait: float = 60) -> subprocess.Popen:
    env = {**os.environ, "PIPNB_LOCK_WAIT": str(wait)}
    return subprocess.Popen([sys.executable, "-m", "pipnb", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def cli(cwd: Path, *args: str, wait: float = 60) -> subprocess.CompletedProcess:
    proc = popen(cwd, *args, wait=wait)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pipnb: error: ")
    return line


@pytest.fixture(scope="module")
def work(tmp_path_factory, demo, demo_panel) -> Path:
    """The demo data and R14's plan, activated through the command line."""
    root = tmp_path_factory.mktemp("locks")
    demo.write(root / "data" / "demo")
    start = demo_plan_start()
    plan = pn.draft_plan(pn.diagnose(demo, REP, as_of=start - dt.timedelta(days=1), panel=demo_panel), start=start)
    plan = plan.model_copy(update={"data_fingerprint": fingerprint_until(demo, plan.diagnosis_window.end)})
    plan.to_yaml(root / "params" / "plans" / f"{REP}.yaml")
    signed = cli(root, "plan", "activate", REP, "--by", "Ann Lee", "--note", "agreed at the plan meeting")
    assert signed.returncode == 0, signed.stderr
    return root


def test_two_signed_steps_at_once_never_lose_a_record(work, tmp_path):
    path = work / "params" / "plans" / f"{REP}.yaml"
    log = work / "reports" / REP / "audit.jsonl"          # the rep's audit log: restored with the plan each round
    active, active_log = tmp_path / "active.yaml", tmp_path / "audit.jsonl"
    shutil.copy(path, active)
    shutil.copy(log, active_log)
    for _ in range(4):
        shutil.copy(active, path)
        shutil.copy(active_log, log)
        steps = {"acknowledged": popen(work, "plan", "acknowledge", REP, "--by", "Sam Rep"),
                 "extended": popen(work, "plan", "extend", REP, "--by", "Ann Lee", "--note", "a second look")}
        done = {status: proc.communicate(timeout=120) + (proc.returncode,) for status, proc in steps.items()}
        history = [h.status for h in Plan.from_yaml(path).history]
        for status, (out, err, code) in done.items():
            if code == 0:                  # a step said it was signed: it is in the history
                assert status in history, (status, history, out)
            else:                          # refused (extended first, then acknowledge is not allowed): one line
                one_error_line(subprocess.CompletedProcess([], code, out, err))
        assert history[-1] in {s for s, (_, _, code) in done.items() if code == 0}
        assert len(history) == 2 + sum(code == 0 for _, _, code in done.values())   # drafted, active, the steps
        steps_logged = [line["status"] for line in read_audit(log.parent) if line["kind"] == "step"]
        assert steps_logged == history[1:]                  # the audit log lost no step either
    shutil.copy(active, path)
    shutil.copy(active_log, log)


def test_a_held_lock_stops_a_second_writer_with_one_line_naming_the_holder(work):
    path = work / "params" / "plans" / f"{REP}.yaml"
    before = path.read_bytes()
    with writing(work / "params", command="pipnb plan extend R14"):
        held = time.monotonic()
        result = cli(work, "plan", "acknowledge", REP, "--by", "Sam Rep", wait=1)
        took = time.monotonic() - held
    line = one_error_line(result)
    assert f"{(work / 'params').resolve()} is being written by pid {os.getpid()} on " in line
    assert "'pipnb plan extend R14', started " in line and "waited 1 s" in line
    assert took < 20                     # the bounded wait, plus the command's start
    assert path.read_bytes() == before  # nothing written
    assert not holder_file(lock_file(work / "params")).exists()     # released: the holder file goes with it
    assert cli(work, "plan", "history", REP).returncode == 0


def test_a_killed_holders_lock_frees_itself(work, monkeypatch):
    monkeypatch.setenv("PIPNB_LOCK_WAIT", "1")       # the refusal while it lives, without the default 30 s wait
    folder = work / "params"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pipnb.locks import writing\n"
         f"with writing({str(folder)!r}, command='pipnb run'):\n    print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"pid {holder.pid} on .*'pipnb run'"), writing(folder):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    holder_path = holder_file(lock_file(folder))
    assert holder_path.exists()          # left behind by the killed holder, overwritten by the next
    with writing(folder, command="pipnb test"):
        assert "pipnb test" in holder_path.read_text()


def test_a_process_takes_its_lock_once_and_a_forked_job_never(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPNB_LOCK_WAIT", "0")
    with writing(tmp_path / "reports", tmp_path / "params"), writing(tmp_path / "reports"):   # nested: at once
        pid = os.fork()
        if pid == 0:                       # a job forked from the holder leaves the writing to it
            try:
                with writing(tmp_path / "reports"):
                    os._exit(1)
            except LockedError:
                os._exit(1)
            except PipnbError:
                os._exit(0)
            os._exit(1)
        assert os.waitpid(pid, 0)[1] == 0
    with writing(tmp_path / "reports"):    # released
        pass


def test_a_folders_lock_lives_beside_it_never_among_its_files(tmp_path):
    with writing(tmp_path / "reports", tmp_path / "params"):
        assert lock_file(tmp_path / "reports") == tmp_path / ".pipnb" / "locks" / "reports.lock"
        assert holder_file(lock_file(tmp_path / "params")).is_file()
    assert [p for p in (tmp_path / "reports").rglob("*")] == [] == [p for p in (tmp_path / "params").rglob("*")]


def test_a_bad_wait_setting_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPNB_LOCK_WAIT", "soon")
    with pytest.raises(PipnbError, match="PIPNB_LOCK_WAIT='soon' is not a number of seconds"), writing(tmp_path):
        pass


def test_two_runs_of_one_review_at_once_on_other_data_write_two_versions(work):
    other = work / "data" / "other"
    shutil.copytree(work / "data" / "demo", other)
    plan = Plan.from_yaml(work / "params" / "plans" / f"{REP}.yaml")
    first, last = f"{plan.start}", f"{plan.checkpoint_dates()['checkpoint-1']}"
    header, *rows = (other / "activities.csv").read_text().splitlines(keepends=True)
    [gone] = [i for i, row in enumerate(rows) if first < row.split(",")[3] < last][:1]
    (other / "activities.csv").write_text(header + "".join(rows[:gone] + rows[gone + 1:]))  # one activity fewer
    runs = [popen(work, "run", "--data", f"data/{name}", "--stage", "checkpoint-1", "--reps", REP, "--jobs", "1",
                  wait=240)
            for name in ("demo", "other")]
    done = [proc.communicate(timeout=300) + (proc.returncode,) for proc in runs]
    written = []
    for out, err, code in done:
        assert code == 0, out + err
        written += [Path(line.strip()) for line in out.splitlines() if line.strip().endswith(".html")
                    and "checkpoint-1" in line and line.startswith("  ")]
    assert len(written) == 2 and len(set(written)) == 2, written       # never two runs on one version
    assert {p.name for p in written} == {"checkpoint-1.html", "checkpoint-1.v2.html"}
    assert all(p.is_file() for p in written)
    hashes = {p.read_text().split('name="pipnb-input-hash" content="')[1].split('"')[0] for p in written}
    assert len(hashes) == 2                                             # each file holds its own run


def test_a_run_on_dask_workers_holds_the_lock_once_and_never_waits_for_itself(work):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        result = cli(work, "run", "--data", "data/demo", "--stage", "checkpoint-1", "--reps", REP, "--force",
                     "--scheduler", c.scheduler_address, wait=2)
    assert result.returncode == 0, result.stdout + result.stderr      # a worker taking the lock would stop at 2 s
    assert "1 ok, 0 skipped, 0 failed" in result.stdout
