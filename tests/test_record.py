"""A record an HR partner can trust, through the real command line: paths from the caller's directory, reports
never lost or rewritten (cases 1 and 2 of issue 12), and faults (case 8): a corrupt rep.json, the batch cache,
a full disk.

One work folder per module: the demo data and the responder's plan, activated and locked, as a manager keeps them; the
command line runs in that folder with relative paths, as the README shows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from cliproc import pipnb

import pipnb as pn
from pipnb.demo import DEMO_CASES, demo_plan_start
from pipnb.fingerprint import fingerprint_until
from pipnb.record import read_record, versions

pytestmark = pytest.mark.slow(19)       # seconds on a quiet machine: scheduled first (conftest.py)

RESPONDER = DEMO_CASES["responder"]                          # R17
CHECKPOINT_1 = demo_plan_start() + pd.Timedelta(days=20)     # 26 Apr 2026


def cli(cwd: Path, *args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    def cap():                                               # a file system that fills up past `limit` bytes
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pipnb(*args, cwd=cwd, preexec=cap if limit else None)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory, demo, demo_panel) -> Path:
    root = tmp_path_factory.mktemp("record")
    demo.write(root / "data" / "demo")
    start = demo_plan_start()
    dx = pn.diagnose(demo, RESPONDER, as_of=start - dt.timedelta(days=1), panel=demo_panel)
    plan = pn.draft_plan(dx, start=start)
    plan = plan.model_copy(update={"data_fingerprint": fingerprint_until(demo, plan.diagnosis_window.end)})
    plan = plan.transition("activate", by="Ann Lee", on=start.date(), note="agreed at the plan meeting")
    plan.to_yaml(root / "params" / "plans" / f"{RESPONDER}.yaml")
    return root


@pytest.fixture(scope="module")
def first_review(work) -> subprocess.CompletedProcess:
    """The README's own command, from the folder that holds data/ and params/ (case 1)."""
    return cli(work, "review", "--data", "data/demo", "--plan", f"params/plans/{RESPONDER}.yaml", "--checkpoint", "1")


def with_row(work: Path, name: str, **row) -> str:
    """A copy of the demo data with one more activity (another rep's), as a later CRM export has it."""
    folder = work / "data" / name
    shutil.copytree(work / "data" / "demo", folder)
    acts = pd.read_csv(folder / "activities.csv")
    extra = {"activity_id": f"ACT-{name}", "rep_id": "R05", "kind": "email", "opp_id": None, "account_id": None, **row}
    pd.concat([acts, pd.DataFrame([extra])]).to_csv(folder / "activities.csv", index=False)
    return f"data/{name}"


# -- case 1: paths from the caller; a failed rerun never deletes the last good report -----------------------
def test_the_readmes_review_runs_from_the_repo_root_with_relative_paths(work, first_review):
    assert first_review.returncode == 0, first_review.stdout + first_review.stderr
    assert "1 ok, 0 skipped, 0 failed" in first_review.stdout
    report = work / "reports" / RESPONDER / "checkpoint-1.html"
    assert "Checkpoint 1 review" in report.read_text()
    injected = json.loads(report.with_suffix(".ipynb").read_text())["metadata"]["papermill"]["parameters"]
    assert injected["plan_path"] == str(work / "params" / "plans" / f"{RESPONDER}.yaml")     # absolute
    for key in ("data_source", "panel_path", "policy_path"):
        assert Path(injected[key]).is_absolute() and Path(injected[key]).exists(), key
    assert Path(injected["data_source"]).is_relative_to(work / ".pipnb" / "cache")          # the cache: not reports/
    again = cli(work, "run", "--data", "data/demo", "--stage", "checkpoint-1", "--plans", "params/plans/*.yaml")
    assert again.returncode == 0 and "0 ok, 1 skipped, 0 failed" in again.stdout, again.stdout + again.stderr


def test_a_failed_rerun_keeps_the_last_good_diagnosis(work):
    good = cli(work, "diagnose", "--data", "data/demo", "--rep", RESPONDER)
    assert good.returncode == 0, good.stdout + good.stderr
    folder = work / "reports" / RESPONDER
    before = {p: (folder / p).read_bytes() for p in ("diagnose.html", "diagnose.ipynb")}
    bad = cli(work, "diagnose", "--data", "data/demo", "--rep", RESPONDER, "--as-of", "2030-01-01")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stdout + bad.stderr
    assert f"{RESPONDER} diagnose" in bad.stdout and "0 ok, 0 skipped, 1 failed" in bad.stdout
    assert {p: (folder / p).read_bytes() for p in before} == before               # the good one, as it was
    kept = read_record(folder / "diagnose.failed.ipynb")                          # the failure, beside it
    assert kept.status == "failed" and kept.as_of == "2030-01-01" and kept.error
    index = (work / "reports" / "index.html").read_text()
    assert f'href="{RESPONDER}/diagnose.failed.ipynb"' in index and f'href="{RESPONDER}/diagnose.html"' in index


# -- case 2: a checkpoint report, once written for its date, is frozen ---------------------------------------
def test_a_checkpoint_report_never_changes_after_the_fact(work, first_review):
    folder = work / "reports" / RESPONDER
    v1 = files(folder)
    later = with_row(work, "later", occurred_at="2026-06-10T10:00:00")        # after the checkpoint: changes nothing
    skipped = cli(work, "review", "--data", later, "--plan", f"params/plans/{RESPONDER}.yaml", "--checkpoint", "1")
    assert skipped.returncode == 0 and "0 ok, 1 skipped, 0 failed" in skipped.stdout, skipped.stdout + skipped.stderr
    assert {k: v for k, v in files(folder).items() if k.startswith("checkpoint-1")} == \
        {k: v for k, v in v1.items() if k.startswith("checkpoint-1")}

    before = with_row(work, "before", occurred_at="2026-04-20T10:00:00")      # before it: the data behind it changed
    cp2 = cli(work, "review", "--data", before, "--plan", f"params/plans/{RESPONDER}.yaml", "--checkpoint", "2")
    assert cp2.returncode == 0, cp2.stdout + cp2.stderr
    header = (folder / "checkpoint-2.html").read_text().split("<main>")[0]
    assert "The data behind the checkpoint 1 review report (up to 26 Apr 2026) has changed" in header
    redo = cli(work, "review", "--data", before, "--plan", f"params/plans/{RESPONDER}.yaml", "--checkpoint", "1")
    assert redo.returncode == 0 and "1 ok" in redo.stdout, redo.stdout + redo.stderr
    forced = cli(work, "review", "--data", before, "--plan", f"params/plans/{RESPONDER}.yaml", "--checkpoint", "1",
                 "--force")
    assert forced.returncode == 0 and "1 ok" in forced.stdout
    now = files(folder)
    for name, content in v1.items():
        if name.startswith("checkpoint-1"):
            assert now[name] == content, f"{name} was rewritten"
    assert {"checkpoint-1.v2.html", "checkpoint-1.v2.ipynb", "checkpoint-1.v3.html"} <= set(now)
    v2 = read_record(folder / "checkpoint-1.v2.ipynb")
    assert (v2.version, v2.as_of, v2.changes) == (2, f"{CHECKPOINT_1:%Y-%m-%d}",
                                                  (f"the data up to {CHECKPOINT_1:%Y-%m-%d} changed",))
    assert read_record(folder / "checkpoint-1.v3.ipynb").changes == ("rerun with --force",)
    index = (work / "reports" / "index.html").read_text()
    row = next(r for r in re.findall(r"<tr>.*?</tr>", index, re.S) if ">checkpoint-1<" in r)
    assert f'href="{RESPONDER}/checkpoint-1.v3.html"' in row.split("</a>")[0]     # the latest first
    assert f'href="{RESPONDER}/checkpoint-1.v2.html"' in row and f'href="{RESPONDER}/checkpoint-1.html"' in row
    assert "the data up to 2026-04-26 changed" in row


def test_a_review_the_data_does_not_reach_is_not_due_and_touches_nothing(work, first_review):
    folder = work / "reports" / RESPONDER
    good = {k: v for k, v in files(folder).items() if k.startswith("checkpoint-1")}
    short = work / "data" / "short"                                             # the export stops before the checkpoint
    shutil.copytree(work / "data" / "demo", short)
    acts = pd.read_csv(short / "activities.csv")
    acts[acts["occurred_at"] < "2026-04-20"].to_csv(short / "activities.csv", index=False)
    opps = pd.read_csv(short / "opportunities.csv")
    opps = opps[opps["created_at"] < "2026-04-20"].assign(
        closed_at=lambda o: o["closed_at"].where(o["closed_at"] < "2026-04-20"),
        outcome=lambda o: o["outcome"].where(o["closed_at"].notna(), "open"))
    opps.to_csv(short / "opportunities.csv", index=False)
    result = cli(work, "review", "--data", "data/short", "--plan", f"params/plans/{RESPONDER}.yaml",
                 "--checkpoint", "1")
    assert result.returncode == 0 and "0 ok, 0 skipped, 0 failed, 1 not due" in result.stdout, \
        result.stdout + result.stderr
    assert f"{RESPONDER} checkpoint-1  due {CHECKPOINT_1:%Y-%m-%d}; the data ends 2026-04-1" in result.stdout
    assert {k: v for k, v in files(folder).items() if k.startswith("checkpoint-1")} == good    # nothing written
    assert all(v.record is not None and v.record.ok for v in versions(folder / "checkpoint-1"))


# -- case 8: faults -----------------------------------------------------------------------------------------
def test_a_corrupt_rep_json_is_named_not_a_traceback(work, first_review):
    (work / "reports" / RESPONDER / "rep.json").write_text("{not json")
    result = cli(work, "index")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert f"{RESPONDER} (its rep.json cannot be read)" in (work / "reports" / "index.html").read_text()


def test_the_batch_cache_lives_outside_reports_and_is_checked_before_use(tmp_path, demo_folder, monkeypatch):
    from pipnb.batch import prepare
    from pipnb.metrics import weekly_panel

    batch = prepare(str(demo_folder), reports=tmp_path / "reports", params=tmp_path / "params")
    assert batch.cache.parent == tmp_path / ".pipnb" / "cache" and not (tmp_path / "reports").exists()
    expected = weekly_panel(batch.data)
    tampered = expected.assign(value=expected["value"] * 10, numerator=expected["numerator"] * 10)
    tampered.to_parquet(batch.panel_path, index=False)                          # 335 emails a week, not 33.5
    again = prepare(str(demo_folder), reports=tmp_path / "reports", params=tmp_path / "params")
    pd.testing.assert_frame_equal(pd.read_parquet(again.panel_path), expected, check_dtype=False)  # rebuilt
    (again.cache / "manifest.json").unlink()                                   # half-written: rebuilt
    assert prepare(str(demo_folder), reports=tmp_path / "reports", params=tmp_path / "params").cache == again.cache
    assert (again.cache / "manifest.json").exists()
    monkeypatch.setattr("pipnb._version.__version__", "0.0.0-older")                      # another pipnb: another entry
    other = prepare(str(demo_folder), reports=tmp_path / "reports", params=tmp_path / "params")
    assert other.cache != again.cache and other.cache.parent == again.cache.parent


def test_a_full_disk_while_preparing_the_batch_is_one_line_and_leaves_no_partial_file(work):
    result = cli(work, "run", "--data", "data/demo", "--stage", "scan", "--params", "full/params",
                 "--reports", "full/reports", limit=60_000)                    # the panel needs ~120 kB
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pipnb: error: cannot write") and "File too large" in line and "free some space" in line
    left = [p for p in (work / "full").rglob("*") if p.is_file()] if (work / "full").exists() else []
    assert left == []


def test_reading_once_caches_for_its_own_thread_only(tmp_path):
    import threading

    from pipnb.record import reading_once

    base = tmp_path / "R01" / "diagnose"
    base.parent.mkdir()
    seen: dict[str, int] = {}

    def other_thread() -> None:                  # outside any block of its own: reads the disk as it is now
        seen["other"] = len(versions(base))

    with reading_once():
        assert versions(base) == []              # cached for this block ...
        base.with_suffix(".html").write_text("<html></html>")
        assert versions(base) == []              # ... so the file written since is not read again here
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen["other"] == 1 and len(versions(base)) == 1
