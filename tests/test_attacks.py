"""The record under attack (issue 24, items 1, 2, 5, 7 and 10), each attack as the issue tried it.

* a rep's name never becomes markup or style in the HR PDF (item 1): the PDF's text, read back, is the report's;
* a checkpoint or final review's notebook, HTML and PDF are each frozen (item 2): a missing or damaged file makes
  the next run write a new version beside it, and a failed run replaces nothing;
* a secret never shows in an error, and a file that is not a table is named, never echoed (item 5);
* a crafted YAML (2,000 nested ``[``, an alias bomb) is one line in milliseconds (item 7);
* every command-line value is checked before anything runs (item 10): one line, exit 2, nothing written.

Where the issue's attack is a command, the test runs the real command line (``.venv/bin/pipnb``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cliproc import pipnb

from pipnb.errors import PlanError, SourceError
from pipnb.io import YAML_MAX_DEPTH, read_yaml
from pipnb.job import Job
from pipnb.record import read_record, versions
from pipnb.runner import run_jobs

FIXTURES = Path(__file__).parent / "notebooks_fixture"
SECRET = "S3cretT0ken"


def cli(cwd: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return pipnb(*args, cwd=cwd, timeout=timeout, env={**os.environ, "PIPNB_DB_URL": "", **(env or {})})


def one_line_exit_2(result: subprocess.CompletedProcess, *words: str) -> str:
    """The command failed as a user's mistake should: exit 2, one line on stderr, no traceback, no secret."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pipnb: error: ") and all(w in line for w in words), line
    return line


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- item 1: a rep's name never forges the HR PDF -----------------------------------------------------------
FORGERY = ("Nina</style><style>main,.pipnb-header,p{display:none} body::after{content:'\\46 ORGED'}</style>"
           "<h1 class=x>FINAL WARNING dismissal recommended</h1><style>")

needs_print = pytest.mark.skipif(not Path("/usr/bin/chromium").exists() or not shutil.which("pdftotext"),
                                 reason="Debian's chromium and poppler-utils are not installed (make browser)")


def _review_job(out: Path, notebook: str = "toy_trivial", *, rep_name: str = "Dana Reyes", **changes) -> Job:
    """A checkpoint review of the toy notebook: frozen, as the batch makes every review."""
    folder = out / "R14"
    return Job(FIXTURES / f"{notebook}.ipynb", folder / "checkpoint-1.ipynb", folder / "checkpoint-1.html",
               parameters={"rep_id": "R14", **changes.pop("parameters", {})},
               header={"rep_name": rep_name, "stage": "Checkpoint 1 review"}, label="R14 checkpoint-1",
               fingerprint=changes.pop("fingerprint", "data-v1"), frozen=True, **changes)


@needs_print
def test_a_hostile_rep_name_prints_as_text_in_the_pdf_never_as_style(tmp_path):
    from pipnb.pdf import print_pdf

    result, = run_jobs([_review_job(tmp_path, rep_name=FORGERY)], progress=False)
    assert result.status == "ok", result.error
    css = result.html.read_text()
    pdf = print_pdf(result.html)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    flat = " ".join(text.split())
    pages = [p for p in text.split("\f") if p.strip()]
    assert "Checkpoint 1 review" in flat                                   # the report is there, not hidden
    assert "FORGED" not in flat                                            # no injected style took effect
    assert "Nina</style><style>main,.pipnb-header,p{display:none}" in flat    # the name, shown as the text it is
    for n, page in enumerate(pages, start=1):                              # every page's footer, as text
        assert "Confidential — prepared for Nina</style>" in page and f"Page {n} of {len(pages)}" in page
    assert "</style><style>main" not in css.replace("&lt;/style&gt;&lt;style&gt;main", "")   # escaped in the page


def test_the_print_stylesheet_holds_no_data_and_the_footer_only_escaped_text():
    from pipnb.pdf import footer_template, print_css

    for paper in ("a4", "letter"):
        assert "Confidential" not in print_css(paper) and "<" not in print_css(paper)
    footer = footer_template(f"Confidential — prepared for {FORGERY}")
    assert "<style" not in footer and "<h1" not in footer and "&lt;/style&gt;&lt;style&gt;" in footer


# -- item 2: every frozen file is frozen on its own ---------------------------------------------------------
def test_a_deleted_html_never_lets_a_rerun_replace_the_audit_notebook(tmp_path):
    first, = run_jobs([_review_job(tmp_path)], progress=False)
    folder = first.ipynb.parent
    v1_notebook = first.ipynb.read_bytes()
    first.html.unlink()                                                    # the attack: keep the .ipynb only
    failed, = run_jobs([_review_job(tmp_path, "toy_fail", fingerprint="data-v2")], progress=False)
    assert failed.status == "failed" and failed.ipynb.name == "checkpoint-1.v2.ipynb"   # beside it
    assert (folder / "checkpoint-1.ipynb").read_bytes() == v1_notebook     # a failure replaces nothing
    again, = run_jobs([_review_job(tmp_path, fingerprint="data-v2")], progress=False)
    assert again.status == "ok" and again.html.name == "checkpoint-1.v2.html"   # only a failure's slot is reused
    assert (folder / "checkpoint-1.ipynb").read_bytes() == v1_notebook
    assert read_record(folder / "checkpoint-1.v2.ipynb").ok


def test_the_same_inputs_after_a_lost_html_write_a_new_version_not_the_old_slot(tmp_path):
    first, = run_jobs([_review_job(tmp_path)], progress=False)
    v1 = first.ipynb.read_bytes()
    first.html.unlink()
    again, = run_jobs([_review_job(tmp_path)], progress=False)            # nothing changed but the lost file
    assert again.status == "ok" and again.ipynb.name == "checkpoint-1.v2.ipynb" and first.ipynb.read_bytes() == v1


@pytest.mark.parametrize("damage", ["html cut short", "html of another run", "notebook not JSON", "pdf cut short",
                                    "pdf only"])
def test_a_damaged_file_of_a_version_makes_the_next_run_write_beside_it(tmp_path, damage):
    first, = run_jobs([_review_job(tmp_path)], progress=False)
    pdf = first.html.with_suffix(".pdf")
    if damage == "html cut short":
        first.html.write_bytes(first.html.read_bytes()[:-4000])
    elif damage == "html of another run":
        first.html.write_text(first.html.read_text().replace(read_record(first.ipynb).input_hash, "0" * 64))
    elif damage == "notebook not JSON":
        first.ipynb.write_text("{not json")
    elif damage == "pdf cut short":
        pdf.write_bytes(b"%PDF-1.4\n1 0 obj")
    else:                                                                 # a PDF printed, then the rest lost
        pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
        first.html.unlink()
        first.ipynb.unlink()
    before = tree(tmp_path)
    again, = run_jobs([_review_job(tmp_path)], progress=False)
    assert again.status == "ok" and again.html.name == "checkpoint-1.v2.html", damage
    after = tree(tmp_path)
    log = "R14/audit.jsonl"                  # the rep's audit log only grows: the new version's lines appended
    assert after[log].startswith(before.pop(log)) and b'"version":2' in after[log]
    assert {k: after[k] for k in before} == before                        # every file of version 1 as it was
    assert [v.number for v in versions(first.ipynb.with_suffix(""))][-1] == 2


def test_an_up_to_date_review_is_still_skipped(tmp_path):
    run_jobs([_review_job(tmp_path)], progress=False)
    result, = run_jobs([_review_job(tmp_path)], progress=False)
    assert result.status == "skipped"


@needs_print
def test_a_reviews_pdf_is_never_reprinted_over_and_a_damaged_one_is_named(tmp_path):
    from pipnb.errors import PipnbError
    from pipnb.pdf import print_pdf

    first, = run_jobs([_review_job(tmp_path)], progress=False)
    pdf = print_pdf(first.html)
    printed = pdf.read_bytes()
    os.utime(first.html)                                                   # newer than its PDF: still kept
    assert print_pdf(first.html, paper="letter", force=True, chromium="/nonexistent") == pdf
    assert pdf.read_bytes() == printed
    pdf.write_bytes(printed[: len(printed) // 2])
    with pytest.raises(PipnbError, match="damaged"):
        print_pdf(first.html, force=True, chromium="/nonexistent")
    assert pdf.read_bytes() == printed[: len(printed) // 2]


def test_a_report_that_keeps_one_version_never_has_its_notebook_replaced_by_a_failure(tmp_path):
    def diagnose(notebook: str) -> Job:
        return replace(_review_job(tmp_path, notebook), output_ipynb=tmp_path / "R14" / "diagnose.ipynb",
                       output_html=tmp_path / "R14" / "diagnose.html", frozen=False)

    good, = run_jobs([diagnose("toy_trivial")], progress=False)
    good.html.unlink()
    kept = good.ipynb.read_bytes()
    failed, = run_jobs([diagnose("toy_fail")], progress=False)
    assert failed.status == "failed" and failed.ipynb.name == "diagnose.failed.ipynb"
    assert good.ipynb.read_bytes() == kept


# -- item 5: secrets in error paths ---------------------------------------------------------------------------
def test_an_unparseable_database_url_is_one_redacted_line(tmp_path):
    sqlite3.connect(tmp_path / "crm.db").close()
    work = tmp_path / "work"
    work.mkdir()
    (work / "src.yaml").write_text("format: sql\nurl_env: PIPNB_DB_URL\n")
    url = f"sqlite://u:{SECRET}@/../crm.db?token={SECRET}"
    one_line_exit_2(cli(work, "scan", "--data", "src.yaml", env={"PIPNB_DB_URL": url}), "***")
    one_line_exit_2(cli(work, "scan", "--data", url), "***")


def test_every_database_error_passes_through_the_redactor(tmp_path, monkeypatch):
    from pipnb.sources.database import Database

    sqlite3.connect(tmp_path / "crm.db").close()
    database = Database(f"sqlite:///crm.db?token={SECRET}", base=tmp_path)

    def broken(*args, **kwargs):
        raise TypeError(f"driver exploded near token={SECRET} in {'x' * 5000}")

    monkeypatch.setattr("sqlalchemy.create_engine", broken)
    with pytest.raises(SourceError) as err:
        database.read(None)
    assert SECRET not in str(err.value) and len(str(err.value)) < 600        # redacted, then a bounded prefix


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_a_mapping_to_the_process_environment_is_named_never_echoed(tmp_path):
    (tmp_path / "map.yaml").write_text("format: columns\ntables:\n  reps:\n    path: /proc/self/environ\n"
                                       "    columns: {rep_id: id}\n")
    result = cli(tmp_path, "scan", "--data", "map.yaml", env={"PIPNB_DB_PASSWORD": SECRET})
    line = one_line_exit_2(result, "/proc/self/environ", "not a table")
    assert "PATH=" not in line and "HOME" not in line


def test_a_binary_file_mapped_as_a_table_is_named_never_echoed(tmp_path):
    (tmp_path / "reps.csv").write_bytes(b"rep_id,rep_name\x00" + SECRET.encode() + b"\x00\n")
    (tmp_path / "map.yaml").write_text("format: columns\ntables:\n  reps:\n    path: reps.csv\n"
                                       "    columns: {rep_id: id}\n")
    one_line_exit_2(cli(tmp_path, "scan", "--data", "map.yaml"), "reps.csv", "NUL")


def test_columns_present_shows_a_bounded_prefix_of_a_header():
    from pipnb.sources.files import columns_shown

    shown = columns_shown([f"col{i}_{'x' * 500}" for i in range(1000)])
    assert len(shown) < 1200 and shown.endswith("and 980 more")
    assert columns_shown(["a\x1b[31mred", "b"]) == "a\\x1b[31mred, b"


def test_a_path_named_passwd_is_not_taken_for_a_password():
    from pipnb.redact import redact_text

    assert redact_text("/etc/passwd: is not a mapping") == "/etc/passwd: is not a mapping"
    assert redact_text("password=abc; pwd: xyz") == "password=***; pwd: ***"
    assert redact_text("sqlite://u:p@h/db: no such file") == "sqlite://u:***@h/db: no such file"


# -- item 7: YAML limits ----------------------------------------------------------------------------------------
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize(("text", "aliases", "words"), [
    ("x: " + "[" * 2000 + "]" * 2000 + "\n", True, f"deeper than {YAML_MAX_DEPTH}"),
    (BOMB, True, "more than 100,000 values"),
    ("a: &a [1, 2]\nb: *a\n", False, "anchor"),
    ("a: 1\n" + "b: " + "x" * 1_100_000 + "\n", True, "longer than"),
])
def test_a_crafted_yaml_is_refused_in_milliseconds(tmp_path, text, aliases, words):
    import yaml

    path = tmp_path / "crafted.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(yaml.YAMLError, match=words):
        read_yaml(path, aliases=aliases)
    assert time.perf_counter() - start < 2


def test_yaml_within_the_limits_reads_as_before(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {x: 1}\nmore: [*b, *b]\nnested: " + "[" * 30 + "1" + "]" * 30 + "\n")
    assert read_yaml(path)["more"] == [{"x": 1}, {"x": 1}]
    with pytest.raises(Exception, match="python"):
        path.write_text("x: !!python/object/apply:os.system ['true']\n")
        read_yaml(path)


@pytest.mark.parametrize("text", ["rep_id: R14\nx: " + "[" * 2000 + "]" * 2000 + "\n",
                                  "rep_id: R14\nlock:\n  terms:\n    " + BOMB.replace("\n", "\n    ")])
def test_a_crafted_plan_is_one_line(tmp_path, text):
    from pipnb.plan import Plan

    path = tmp_path / "R14.yaml"
    path.write_text(text)
    start = time.perf_counter()
    with pytest.raises(PlanError, match=r"R14\.yaml: line \d+: not valid YAML \((nested|uses an anchor)"):
        Plan.from_yaml(path)
    assert time.perf_counter() - start < 2


def test_a_crafted_plan_in_the_folder_is_one_line_from_plan_history(tmp_path):
    (tmp_path / "params" / "plans").mkdir(parents=True)
    (tmp_path / "params" / "plans" / "R14.yaml").write_text("rep_id: R14\nlock:\n  terms:\n    "
                                                            + BOMB.replace("\n", "\n    "))
    one_line_exit_2(cli(tmp_path, "plan", "history", "R14", timeout=30), "R14.yaml", "anchor")


def test_a_crafted_mapping_is_one_line(tmp_path):
    (tmp_path / "map.yaml").write_text("format: columns\nx: " + "[" * 2000 + "]" * 2000 + "\n")
    one_line_exit_2(cli(tmp_path, "scan", "--data", "map.yaml", timeout=30), "map.yaml", "nested deeper")


# -- item 10: every command-line value checked -----------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_work(tmp_path_factory, demo) -> Path:
    root = tmp_path_factory.mktemp("attacks")
    demo.write(root / "data")
    (root / "reports").mkdir()
    return root


@pytest.mark.parametrize(("args", "words"), [
    (["scan", "--data", "data", "--as-of", ""], ["--as-of", "empty"]),
    (["scan", "--data", "data", "--as-of", "NaT"], ["--as-of", "not a date"]),
    (["scan", "--data", "data", "--as-of", "nan"], ["--as-of", "not a date"]),
    (["scan", "--data", "data", "--since", "NaT"], ["--since", "not a date"]),
    (["status", "--data-date", "NaT"], ["--data-date", "not a date"]),
    (["status", "--today", "9999-12-31"], ["--today", "out of range"]),
    (["diagnose", "--data", "data", "--rep", "R01", "--as-of", "NaT"], ["--as-of", "not a date"]),
    (["plan", "--data", "data", "--rep", "R01", "--as-of", "NaT"], ["--as-of", "not a date"]),
    (["plan", "--data", "data", "--rep", "R01", "--start", "NaT"], ["--start", "not a date"]),
    (["plan", "--data", "data", "--rep", "R01", "--start", "9999-12-31"], ["--start", "out of range"]),
    (["plan", "--data", "data", "--rep", "R01", "--start", "1677-01-01"], ["--start", "out of range"]),
    (["render", ""], ["NOTEBOOK", "empty"]),
    (["demo-data", "--seed", "-1", "--out", "seeded"], ["--seed"]),
    (["index", "--reports", "nonexistent"], ["--reports", "not a folder"]),
    (["run", "--data", "data", "--stage", "diagnose", "--reps", ",,,"], ["--reps", "no rep"]),
])
def test_a_bad_command_line_value_is_one_line_exit_2_and_writes_nothing(demo_work, args, words):
    before = tree(demo_work)
    one_line_exit_2(cli(demo_work, *args, timeout=120), *words)
    assert tree(demo_work) == before and not (demo_work / "nonexistent").exists()


def test_a_plan_start_before_its_diagnosis_is_one_line(demo_work):
    from pipnb.demo import DEMO_CASES

    rep = DEMO_CASES["non_responder"]
    before = tree(demo_work / "reports")
    one_line_exit_2(cli(demo_work, "plan", "--data", "data", "--rep", rep, "--start", "1970-01-01",
                        "--reason", "the attack"), "start", "diagnosis window")
    assert tree(demo_work / "reports") == before and not (demo_work / "params" / "plans" / f"{rep}.yaml").exists()



@pytest.fixture(scope="module")
def reviewed(demo_work, demo, demo_panel) -> tuple[str, subprocess.CompletedProcess]:
    """The responder's plan, activated, beside a crafted plan of 2,000 nested ``[`` (item 7); ``pipnb run
    --stage checkpoint-1`` over both."""
    import datetime as dt

    import pipnb as pn
    from pipnb.demo import DEMO_CASES, demo_plan_start
    from pipnb.fingerprint import fingerprint_until

    rep = DEMO_CASES["responder"]
    start = demo_plan_start()
    plan = pn.draft_plan(pn.diagnose(demo, rep, as_of=start - dt.timedelta(days=1), panel=demo_panel), start=start)
    plan = plan.model_copy(update={"data_fingerprint": fingerprint_until(demo, plan.diagnosis_window.end)})
    plans = demo_work / "params" / "plans"
    plan.transition("activate", by="Ann Lee", on=start.date(), note="agreed").to_yaml(plans / f"{rep}.yaml")
    (plans / "R99.yaml").write_text("rep_id: R99\nx: " + "[" * 2000 + "]" * 2000 + "\n")
    return rep, cli(demo_work, "run", "--data", "data", "--stage", "checkpoint-1", "--jobs", "1", timeout=600)


def test_one_crafted_plan_fails_alone_and_the_batch_reviews_the_others(demo_work, reviewed):
    rep, result = reviewed
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stdout + result.stderr
    assert "1 ok" in result.stdout and "1 failed" in result.stdout, result.stdout + result.stderr
    assert "R99.yaml" in result.stdout and "nested deeper" in result.stdout
    assert (demo_work / "reports" / rep / "checkpoint-1.html").is_file()


def test_the_issues_attack_on_a_frozen_review_writes_a_new_version_beside_it(demo_work, reviewed):
    """Item 2, as the issue did it: delete checkpoint-1.html, keep the .ipynb, change the data, rerun."""
    rep, _ = reviewed
    folder = demo_work / "reports" / rep
    notebook = (folder / "checkpoint-1.ipynb").read_bytes()
    (folder / "checkpoint-1.html").unlink()
    changed = demo_work / "changed"
    shutil.copytree(demo_work / "data", changed)
    with open(changed / "activities.csv", "a", encoding="utf-8") as f:
        f.write("ACT-attack,R05,email,2026-04-20T10:00:00,,\n")
    result = cli(demo_work, "review", "--data", "changed", "--plan", f"params/plans/{rep}.yaml", "--checkpoint", "1",
                 timeout=600)
    assert result.returncode == 0 and "1 ok" in result.stdout, result.stdout + result.stderr
    assert (folder / "checkpoint-1.ipynb").read_bytes() == notebook                    # version 1, as it was
    assert (folder / "checkpoint-1.v2.html").is_file() and read_record(folder / "checkpoint-1.v2.ipynb").ok
