"""pipnb.runner: parallel, isolated, resumable papermill batches, locally or on Dask."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipnb.errors import JobError, PipnbError
from pipnb.record import read_record
from pipnb.report import read_input_hash
from pipnb.runner import Job, RunSummary, input_hash, run_jobs

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
