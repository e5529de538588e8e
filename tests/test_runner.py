"""pipnb.runner: parallel, isolated, resumable papermill batches, locally or on Dask."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipnb.errors import JobError, PipnbError
from pipnb.job import Job, RunSummary
from pipnb.record import read_record
from pipnb.report import read_input_hash
from pipnb.runner import run_jobs
from pipnb.versions import input_hash

pytestmark = pytest.mark.slow(22)       # seconds on a quiet machine: scheduled first (conftest.py)

FIXTURES = Path(__file__).parent / "notebooks_fixture"


def _job(out: Path, rep: str, notebook: str = "toy_trivial", **parameters) -> Job:
    return Job(FIXTURES / f"{notebook}.ipynb", out / rep / "stage.ipynb", out / rep / "stage.html",
               parameters={"rep_id": rep, **parameters}, header={"rep_name": f"Rep {rep}", "stage": "stage"},
               label=f"{rep} stage", fingerprint="data-v1")


def _batch(out: Path, first: str = "toy_report") -> list[Job]:
    return [_job(out, "R01", first, note="fine"), _job(out, "R02"), _job(out, "R99", "toy_fail"),
            _job(out, "R03")]


def _stray_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def _meta(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["metadata"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    jobs = _batch(out)
    return out, jobs, run_jobs(jobs, jobs_n=2, progress=False)


def test_failure_is_isolated(first_run):
    _, jobs, results = first_run
    assert [r.label for r in results] == [j.label for j in jobs]  # results in job order
    assert [r.status for r in results] == ["ok", "ok", "failed", "ok"]
    for r in results:
        if r.status == "ok":
            assert r.html is not None and r.html.exists() and r.ipynb.exists()
            assert read_input_hash(r.html) == _meta(r.ipynb)["pipnb"]["input_hash"]
            assert r.error == "" and r.seconds > 0


def test_failed_notebook_kept_without_html(first_run):
    out, _, results = first_run
    failed = results[2]
    assert failed.error == "ValueError: toy failure for R99 (at In [4])"
    assert failed.html is None and not (out / "R99" / "stage.html").exists()
    assert failed.ipynb == (out / "R99" / "stage.ipynb").resolve()
    kept = json.loads(failed.ipynb.read_text(encoding="utf-8"))
    assert kept["metadata"]["pipnb"]["status"] == "failed"
    record = read_record(failed.ipynb)
    assert (record.status, record.label, record.fingerprint) == ("failed", "R99 stage", "data-v1")
    assert record.input_hash == input_hash(failed.job)
    assert kept["metadata"]["papermill"]["exception"] is True
    outputs = [o for c in kept["cells"] for o in c.get("outputs", [])]
    assert any(o.get("ename") == "ValueError" for o in outputs)  # the error cell is in the record
    assert any("before the failure" in "".join(o.get("text", "")) for o in outputs)


def test_no_temp_files_left(first_run):
    out, _, _ = first_run
    assert _stray_files(out) == []


def test_summary_names_the_failure(first_run):
    _, _, results = first_run
    text = str(RunSummary.from_results(results))
    assert text.splitlines()[0].startswith("3 ok, 0 skipped, 1 failed")
    assert "R99 stage  ValueError: toy failure for R99 (at In [4])" in text
    assert "notebook kept: " in text and "R99/stage.ipynb" in text
    with pytest.raises(Exception, match="1 of 4 jobs failed: R99 stage") as info:
        RunSummary.from_results(results).raise_for_failures()
    assert info.value.exit_code == 1


def test_rerun_skips_up_to_date_and_retries_failures(first_run):
    out, jobs, _ = first_run
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.html")}
    again = run_jobs(jobs, jobs_n=2, progress=False)
    assert [r.status for r in again] == ["skipped", "skipped", "failed", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.html")} == mtimes


def test_changed_parameter_reexecutes_only_that_job(first_run):
    out, jobs, _ = first_run
    changed = [_job(out, "R02", week="2024-W07") if j.label == "R02 stage" else j
               for j in jobs if j.label != "R99 stage"]
    before = _meta(out / "R02" / "stage.ipynb")["pipnb"]["input_hash"]
    results = run_jobs(changed, jobs_n=2, progress=False)
    assert [r.status for r in results] == ["skipped", "ok", "skipped"]
    assert _meta(out / "R02" / "stage.ipynb")["pipnb"]["input_hash"] == input_hash(results[1].job) != before
    assert any("unknown parameter: week" in m for m in results[1].messages)  # papermill's warning surfaced


def test_force_reexecutes(first_run):
    _, jobs, _ = first_run
    results = run_jobs(jobs[1:2], jobs_n=1, force=True, progress=False)
    assert [r.status for r in results] == ["ok"]


def test_missing_html_or_changed_fingerprint_reexecutes(tmp_path):
    job = _job(tmp_path, "R05")
    assert [r.status for r in run_jobs([job], progress=False)] == ["ok"]
    job.output_html.unlink()
    assert [r.status for r in run_jobs([job], progress=False)] == ["ok"]
    moved = Job(job.notebook, job.output_ipynb, job.output_html, job.parameters, job.header, job.label,
                fingerprint="data-v2")
    assert [r.status for r in run_jobs([moved], progress=False)] == ["ok"]
    assert [r.status for r in run_jobs([moved], progress=False)] == ["skipped"]


def test_dead_kernel_is_retried_once_but_a_raising_cell_is_not(tmp_path, first_run):
    dies_once = _job(tmp_path, "R10", "toy_dies", marker=str(tmp_path / "died-once"))
    dies_always = _job(tmp_path, "R11", "toy_dies", marker=str(tmp_path / "died"), always=True)
    once, always = run_jobs([dies_once, dies_always], jobs_n=2, progress=False)
    assert (once.status, once.attempts) == ("ok", 2) and once.html.exists()
    assert any("retrying once" in m for m in once.messages)
    assert (always.status, always.attempts) == ("failed", 2) and always.html is None
    assert always.error.startswith("kernel died twice")
    assert first_run[2][2].attempts == 1  # the ValueError cell was run once


def test_rerun_after_an_interrupted_batch_finishes_the_rest(tmp_path):
    jobs = [_job(tmp_path, rep) for rep in ("R20", "R21")]
    run_jobs(jobs[:1], progress=False)
    # What a batch killed while writing R21 leaves: temporary files, no final file.
    (tmp_path / "R21").mkdir()
    for name in (".stage.0123456789ab.tmp.ipynb", ".stage.html.x1y2_3z4.tmp", ".stage.ipynb.abcd1234.tmp"):
        (tmp_path / "R21" / name).write_text("half")
    results = run_jobs(jobs, jobs_n=2, progress=False)
    assert [r.status for r in results] == ["skipped", "ok"]
    assert _stray_files(tmp_path) == []


def test_the_record_is_read_back_or_none(first_run, tmp_path):
    _, _, results = first_run
    record = read_record(results[0].ipynb)
    assert record.ok and record.input_hash == input_hash(results[0].job)
    assert read_record(json.loads(results[0].ipynb.read_text(encoding="utf-8"))) == record   # a notebook dict
    (tmp_path / "broken.ipynb").write_text("{not json")
    (tmp_path / "plain.ipynb").write_text('{"metadata": {"pipnb": {"status": "ok"}}, "cells": []}')
    for path in (tmp_path / "missing.ipynb", tmp_path / "broken.ipynb", tmp_path / "plain.ipynb"):
        assert read_record(path) is None


def test_two_jobs_may_not_share_an_output(tmp_path):
    with pytest.raises(JobError, match="both write") as info:
        run_jobs([_job(tmp_path, "R01"), _job(tmp_path, "R01")], progress=False)
    assert isinstance(info.value, PipnbError) and info.value.exit_code == 2     # a user mistake, one line


def test_kernel_name_is_passed_to_papermill(tmp_path):
    job = _job(tmp_path, "R06")
    result, = run_jobs([job], kernel_name="no-such-kernel", progress=False)
    assert result.status == "failed" and "no-such-kernel" in result.error
    assert result.html is None


def test_dask_cluster_gives_the_same_statuses(tmp_path):
    distributed = pytest.importorskip("distributed")
    jobs = _batch(tmp_path, first="toy_trivial")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        results = run_jobs(jobs, scheduler=cluster.scheduler_address, progress=False)
        assert [r.status for r in results] == ["ok", "ok", "failed", "ok"]
        assert results[2].error == "ValueError: toy failure for R99 (at In [4])"
        with distributed.Client(cluster) as client:  # a Client is accepted too, and skips work
            again = run_jobs(jobs, scheduler=client, progress=False)
    assert [r.status for r in again] == ["skipped", "skipped", "failed", "skipped"]
    assert _stray_files(tmp_path) == []


# -- append-only records: a good report is never lost, a frozen one never rewritten ------------------------
def _frozen(out: Path, notebook: str = "toy_trivial", **parameters) -> Job:
    return Job(FIXTURES / f"{notebook}.ipynb", out / "R30" / "checkpoint-1.ipynb", out / "R30" / "checkpoint-1.html",
               parameters={"rep_id": "R30", **parameters}, header={"rep_name": "Rep R30", "as_of": "2026-04-26"},
               label="R30 checkpoint-1", fingerprint="data-v1", frozen=True, inputs={"plan": "p1"})


def test_a_frozen_report_gets_a_new_version_beside_it_never_a_rewrite(tmp_path):
    from pipnb.record import read_audit, versions

    first, = run_jobs([_frozen(tmp_path)], progress=False)
    v1 = {p.name: p.read_bytes() for p in (tmp_path / "R30").iterdir() if p.name != "audit.jsonl"}
    assert first.version == 1 and sorted(v1) == ["checkpoint-1.html", "checkpoint-1.ipynb"]
    assert [line["file"] for line in read_audit(tmp_path / "R30")] == sorted(v1)[::-1]    # their hashes, recorded
    changed = replace(_frozen(tmp_path), inputs={"plan": "p2"})
    second, = run_jobs([changed], progress=False)
    assert (second.status, second.version, second.html.name) == ("ok", 2, "checkpoint-1.v2.html")
    assert {p: (tmp_path / "R30" / p).read_bytes() for p in v1} == v1              # version 1 untouched
    forced, = run_jobs([changed], force=True, progress=False)
    assert forced.html.name == "checkpoint-1.v3.html"                             # --force never rewrites
    failing = replace(changed, notebook=FIXTURES / "toy_fail.ipynb")
    failed, = run_jobs([failing], progress=False)
    assert failed.status == "failed" and failed.ipynb.name == "checkpoint-1.v4.ipynb" and failed.html is None
    records = [(v.number, v.record.status, v.good, v.record.changes)
               for v in versions(tmp_path / "R30" / "checkpoint-1")]
    assert records == [(1, "ok", True, ()), (2, "ok", True, ("the plan changed",)),
                       (3, "ok", True, ("rerun with --force",)),
                       (4, "failed", False, ("the notebook changed (a pipnb update)",))]
    assert "Record: version 2" in second.html.read_text() and "what changed since version 1: the plan changed" \
        in second.html.read_text()
    assert [r.status for r in run_jobs([changed], progress=False)] == ["skipped"]   # v3 is up to date
    assert _stray_files(tmp_path) == []


def test_a_failure_never_deletes_or_replaces_a_good_report(tmp_path):
    from pipnb.batch.index import index_entries

    def diagnose(notebook: str, **parameters) -> Job:
        return replace(_job(tmp_path, "R31", notebook, **parameters), output_ipynb=tmp_path / "R31" / "diagnose.ipynb",
                       output_html=tmp_path / "R31" / "diagnose.html")

    good, = run_jobs([diagnose("toy_trivial")], progress=False)
    before = {p.name: p.read_bytes() for p in good.ipynb.parent.iterdir()}
    failed, = run_jobs([diagnose("toy_fail")], progress=False)
    assert failed.status == "failed" and failed.ipynb.name == "diagnose.failed.ipynb"
    assert {p: (good.ipynb.parent / p).read_bytes() for p in before} == before          # the good one, as it was
    assert read_record(failed.ipynb).status == "failed" and "toy failure" in read_record(failed.ipynb).error
    entry = next(e for e in index_entries(tmp_path, tmp_path / "params") if e.stage == "diagnose")
    assert entry.status == "failed" and Path(entry.path).name == "diagnose.failed.ipynb"
    assert entry.earlier[0][0] == "last good report, version 1" and Path(entry.earlier[0][1]).name == "diagnose.html"
    again, = run_jobs([diagnose("toy_trivial", note="new")], progress=False)           # a good run supersedes it
    assert again.status == "ok" and not (good.ipynb.parent / "diagnose.failed.ipynb").exists()
    assert next(e for e in index_entries(tmp_path, tmp_path / "params") if e.stage == "diagnose").status == "ok"


def test_a_failure_in_the_same_second_as_the_good_report_is_still_shown(tmp_path, monkeypatch):
    # records carry whole seconds: a failure written in the second of the good report it follows is newer
    import datetime as dt
    import types

    import pipnb.execute as execute
    from pipnb.batch.index import index_entries

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2026, 12, 1, 9, 0, 0, 250_000, tzinfo=dt.UTC)

    monkeypatch.setattr(execute, "dt", types.SimpleNamespace(UTC=dt.UTC, date=dt.date, datetime=Frozen))

    def diagnose(notebook: str) -> Job:
        return replace(_job(tmp_path, "R32", notebook), output_ipynb=tmp_path / "R32" / "diagnose.ipynb",
                       output_html=tmp_path / "R32" / "diagnose.html")

    good, = run_jobs([diagnose("toy_trivial")], progress=False)
    failed, = run_jobs([diagnose("toy_fail")], progress=False)
    assert read_record(good.ipynb).written_at == read_record(failed.ipynb).written_at == "2026-12-01T09:00:00Z"
    entry = next(e for e in index_entries(tmp_path, tmp_path / "params") if e.stage == "diagnose")
    assert entry.status == "failed" and Path(entry.path).name == "diagnose.failed.ipynb"


def test_a_problem_fails_alone_and_a_skipped_file_is_named(tmp_path):
    from pipnb.job import Problem

    results = run_jobs([Problem("plans/bad.yaml", "plans/bad.yaml: not valid YAML"), _job(tmp_path, "R32"),
                        Problem("plans/R32-copy.yaml", "not a plan file", skipped=True)], progress=False)
    assert [r.status for r in results] == ["failed", "ok", "skipped"]
    text = str(RunSummary.from_results(results))
    assert text.startswith("1 ok, 1 skipped, 1 failed")
    assert "plans/R32-copy.yaml  not a plan file" in text and "plans/bad.yaml  plans/bad.yaml: not valid YAML" in text
    with pytest.raises(Exception, match="1 of 3 jobs failed: plans/bad.yaml"):
        RunSummary.from_results(results).raise_for_failures()


# -- faults -------------------------------------------------------------------------------------------------
_KILLED_BATCH = """
import sys, time
from pathlib import Path
from pipnb.job import Job
from pipnb.runner import run_jobs
out, fixtures = Path(sys.argv[1]), Path(sys.argv[2])
jobs = [Job(fixtures / "toy_sleep.ipynb", out / r / "s.ipynb", out / r / "s.html", parameters={"rep_id": r},
            label=r) for r in ("R40", "R41")]
run_jobs(jobs, jobs_n=2, progress=False)
"""


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                children = {int(p) for p in task.read_text().split()}
            except OSError:
                continue
            todo += list(children - found)
            found |= children
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_pool_workers_and_their_kernels_exit_when_the_batch_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    batch = subprocess.Popen([sys.executable, "-c", _KILLED_BATCH, str(tmp_path), str(FIXTURES)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_descendants(batch.pid)) < 4:   # 2 workers, 2 kernels
        time.sleep(0.2)
    left = _descendants(batch.pid)
    assert len(left) >= 4, "the workers and kernels did not start"
    time.sleep(1.0)
    batch.send_signal(signal.SIGKILL)                                           # as the out-of-memory killer does
    batch.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and
                                              "zombie" not in _state(p) for p in left):
        time.sleep(0.2)
    alive = [p for p in left if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)]
    assert alive == [], f"left behind: {alive}"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


_FULL_DISK = """
import resource, sys
from pathlib import Path
from pipnb.job import Job
from pipnb.runner import run_jobs
out, fixtures, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
job = Job(fixtures / "toy_report.ipynb", out / "R50" / "s.ipynb", out / "R50" / "s.html", parameters={"rep_id": "R50"},
          label="R50 s")
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))   # every file past this size fails: a full disk
[result] = run_jobs([job], jobs_n=1, progress=False)
print(result.status, "|", result.error)
"""


def test_a_full_disk_fails_the_job_in_one_line_and_leaves_no_partial_file(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path), str(FIXTURES), "20000"],
                         capture_output=True, text=True)
    status, _, error = run.stdout.strip().partition(" | ")
    assert status == "failed", run.stdout + run.stderr
    assert "File too large" in error and "\n" not in error
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []                # nothing half-written
