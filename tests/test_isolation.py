"""One bad plan stops nothing (case 7 of issue 12): through the real command line, every plan that cannot be read,
is for no rep, starts in the year 9999, has no target or is not UTF-8 fails alone, named in one line of the
summary (exit code 1); a backup copy is named and skipped; the good plans are reviewed.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from cliproc import pipnb

import pipnb as pn
from pipnb.demo import DEMO_CASES, demo_plan_start

RESPONDER, NON_RESPONDER = DEMO_CASES["responder"], DEMO_CASES["non_responder"]
BAD = {                                      # file: what the summary must say about it
    "broken.yaml": "not valid YAML",
    "R99.yaml": "rep 'R99' is not in the data",
    "R05.yaml": "start 9999-12-31 leaves no room for a 12-week plan",
    "R07.yaml": "targets: a plan needs at least one target",
    "R12.yaml": "not UTF-8 text (byte 0xe9",
}


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return pipnb(*args, cwd=cwd)


@pytest.fixture(scope="module")
def work(tmp_path_factory, demo, demo_panel) -> Path:
    root = tmp_path_factory.mktemp("isolation")
    demo.write(root / "data" / "demo")
    plans = root / "params" / "plans"
    start = demo_plan_start()
    good = {}
    for rep_id in (RESPONDER, NON_RESPONDER):
        dx = pn.diagnose(demo, rep_id, as_of=start - dt.timedelta(days=1), panel=demo_panel)
        plan = pn.draft_plan(dx, start=start).transition("activate", by="Ann Lee", on=start.date())
        good[rep_id] = plan.to_yaml(plans / f"{rep_id}.yaml")
    raw = yaml.safe_load(good[RESPONDER].read_text())
    (plans / f"{NON_RESPONDER}-copy.yaml").write_bytes(good[NON_RESPONDER].read_bytes())   # a backup copy
    (plans / "broken.yaml").write_text("rep_id: R40\ntargets: [unclosed\n")
    for name, change in (("R99.yaml", {"rep_id": "R99"}), ("R05.yaml", {"rep_id": "R05", "start": "9999-12-31"}),
                         ("R07.yaml", {"rep_id": "R07", "targets": []})):
        raw_copy = {**raw, **change}
        raw_copy.pop("lock")
        (plans / name).write_text(yaml.safe_dump(raw_copy, sort_keys=False))
    latin = yaml.safe_dump({**raw, "rep_id": "R12", "rep_name": "Zoé"}, allow_unicode=True, sort_keys=False)
    (plans / "R12.yaml").write_bytes(latin.encode("latin-1", errors="replace"))
    return root


@pytest.fixture(scope="module")
def batch(work) -> subprocess.CompletedProcess:
    return cli(work, "run", "--data", "data/demo", "--stage", "checkpoint-1", "--plans", "params/plans/*.yaml",
               "--jobs", "2")


def test_each_bad_plan_fails_alone_in_one_line_and_the_good_ones_run(work, batch):
    assert batch.returncode == 1 and "Traceback" not in batch.stderr, batch.stdout + batch.stderr
    assert batch.stdout.startswith("2 ok, 1 skipped, 5 failed"), batch.stdout
    for rep_id in (RESPONDER, NON_RESPONDER):
        assert (work / "reports" / rep_id / "checkpoint-1.html").exists()
    failed = batch.stdout.split("failed:\n")[1].split("index:")[0]
    lines = [line.strip() for line in failed.splitlines() if line.strip()]
    assert len(lines) == len(BAD), lines                   # one line each, and nothing else
    for name, words in BAD.items():
        [line] = [line for line in lines if name in line]
        assert words in line, line
    assert "error: 5 of 8 jobs failed" in batch.stderr


def test_a_backup_copy_is_named_and_skipped(work, batch):
    skipped = batch.stdout.split("not run:\n")[1].split("failed:")[0]
    assert f"params/plans/{NON_RESPONDER}-copy.yaml  not a plan file: it holds {NON_RESPONDER}'s plan, whose file " \
           f"is {NON_RESPONDER}.yaml (a copy is left alone)" in skipped
    assert not list((work / "reports").glob(f"*{NON_RESPONDER}*copy*"))


@pytest.mark.parametrize("name", ["R05.yaml", "R07.yaml", "R12.yaml", "broken.yaml"])
def test_one_bad_plan_reviewed_alone_is_one_line_and_exit_code_2(work, name):
    result = cli(work, "review", "--data", "data/demo", "--plan", f"params/plans/{name}", "--checkpoint", "final")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pipnb: error: ") and BAD[name] in line


def test_the_index_is_built_around_the_bad_files(work, batch):
    result = cli(work, "index")
    assert result.returncode == 0, result.stderr
    page = (work / "reports" / "index.html").read_text()
    assert f'href="{RESPONDER}/checkpoint-1.html"' in page and f'href="{NON_RESPONDER}/checkpoint-1.html"' in page
    assert not re.search(r"R99|copy", page)
