"""The lifecycle notebooks executed by papermill on the demo team, and their HTML reports.

One batch (scan, a diagnosis, a plan, two checkpoints and two final reviews) runs once per session through
the real runner; the tests read what came out. The shipped notebooks (the checkout's ``notebooks/``) are also
compared with what ``tools/build_notebooks.py`` builds, without running anything.
"""

import copy
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from cliproc import pipnb

from pipnb import batch as batches
from pipnb.demo import DEMO_CASES
from pipnb.runner import run_jobs

pytestmark = pytest.mark.slow(64)       # seconds on a quiet machine: scheduled first (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTICLE, RESPONDER, NON_RESPONDER = DEMO_CASES["article"], DEMO_CASES["responder"], DEMO_CASES["non_responder"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory, demo_folder):
    work = tmp_path_factory.mktemp("lifecycle")
    return batches.prepare(str(demo_folder), reports=work / "reports", params=work / "params")


@pytest.fixture(scope="module")
def results(batch, demo):
    from pipnb.batch import demo_plan, plan_path

    for case in ("responder", "non_responder"):
        demo_plan(demo, case).to_yaml(plan_path(batch.params, DEMO_CASES[case]))
    article_plan = batches.draft_plans(batch, [ARTICLE])
    active = [plan_path(batch.params, RESPONDER), plan_path(batch.params, NON_RESPONDER)]
    jobs = [batches.scan_job(batch), *batches.diagnose_jobs(batch, [ARTICLE]), *batches.plan_jobs(batch, article_plan),
            *batches.review_jobs(batch, active[:1], "checkpoint-1"), *batches.review_jobs(batch, active, "final")]
    out = run_jobs(jobs, jobs_n=2, progress=False)
    batches.write_index(batch.reports, batch.params, out)
    return {r.job.label: r for r in out}


def builder():
    """``tools/build_notebooks.py`` imported afresh (it is not a package: by its path)."""
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executed(result) -> nbformat.NotebookNode:
    return nbformat.read(result.ipynb, as_version=4)


def checked_output(result) -> str:
    nb = executed(result)
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# NBVAL_CHECK_OUTPUT"))
    return "".join(o.get("text", "") for o in cell.outputs)


def test_every_notebook_ran(results):
    failed = {label: r.error for label, r in results.items() if r.status != "ok"}
    assert not failed
    assert len(results) == 6


def test_scan_lists_the_case_reps(results):
    flagged = checked_output(results["team scan"])
    for case in ("article", "stale", "non_responder"):       # the volume case's team spreads too widely to
        assert DEMO_CASES[case] in flagged                     # flag it (see test_lifecycle)


def test_diagnosis_names_the_improvement_area_and_words_the_others_from_their_numbers(results):
    # at the demo's last day the article rep's touch gap falls short beyond noise; volume is in line with peers
    assert "avg_days_between_touches" in checked_output(results[f"{ARTICLE} diagnose"])
    html = Path(results[f"{ARTICLE} diagnose"].html).read_text()
    assert "dismissing volume as the issue" not in html and "in line with peers" in html
    assert "beyond the spread expected between reps and beyond the 20% margin" in html     # a shortfall, worded
    assert "Improvement areas, most important first" in html


def test_plan_report_has_targets_timeline_and_commitments(results, batch):
    html = Path(results[f"{ARTICLE} plan"].html).read_text()
    for words in ("Targets and the glide path", "Checkpoint 1", "Final target", "coaching commitments",
                  "Consequences if expectations are not met", "60.0/wk"):
        assert words in html


def test_final_reviews_recommend_by_the_verdicts(results):
    assert checked_output(results[f"{RESPONDER} final"]).strip() in ("recommendation: complete",
                                                                     "recommendation: extend")
    assert checked_output(results[f"{NON_RESPONDER} final"]).strip() == "recommendation: consequences"
    html = Path(results[f"{RESPONDER} final"].html).read_text()
    assert "Recommended course of action" in html and "regression to the mean" in html


def reports(results):
    return [(label, Path(r.html).read_text()) for label, r in results.items()]


def text_of(html: str) -> str:
    """The page without its inline images (base64 can spell anything)."""
    return re.sub(r'src="data:[^"]*"', 'src=""', html)


def test_html_has_no_code_no_parameters_and_a_header(results, batch):
    for label, html in reports(results):
        assert "import pipnb" not in html and "pn.load(" not in html, label
        assert "data_source" not in html and "panel_path" not in html, label      # no (injected) parameters
        assert "Confidential" in html, label
        assert "In&nbsp;[" not in html and "In [" not in html, label
    final = dict(reports(results))[f"{RESPONDER} final"]
    assert "Plan period" in final and "As of" in final


def test_html_is_self_contained(results):
    for label, html in reports(results):
        assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', html, re.I), label
        assert "<script" not in html.lower(), label
        images = re.findall(r'<img[^>]+src="([^"]+)"', html)
        assert all(src.startswith("data:image/png;base64,") for src in images), label
    assert len(re.findall(r"<img", dict(reports(results))[f"{ARTICLE} diagnose"])) >= 3


def test_a_reps_report_names_no_other_rep(results, demo):
    names = dict(zip(demo.reps["rep_id"], demo.reps["rep_name"]))
    for label, html in reports(results):
        if label == "team scan":
            continue
        html = text_of(html)
        own = label.split()[0]
        others = [n for rid, n in names.items() if rid != own and n in html]
        assert not others, (label, others)
        ids = [rid for rid in names if rid != own and re.search(rf"\b{rid}\b", html)]
        assert not ids, (label, ids)


def test_the_executed_notebook_is_kept_as_the_audit_record(results):
    for label, r in results.items():
        nb = executed(r)
        assert nb.metadata["pipnb"]["status"] == "ok"
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells), label


def test_index_lists_every_rep_and_stage(batch, results):
    html = (batch.reports / "index.html").read_text()
    for rep, stage in ((ARTICLE, "diagnose"), (ARTICLE, "plan"), (RESPONDER, "checkpoint-1"),
                       (RESPONDER, "final"), (NON_RESPONDER, "final")):
        assert f"({rep})" in html
        assert f'href="{rep}/{stage}.html"' in html
    assert 'href="team-scan.html"' in html
    assert "recommendation: consequences" in html          # the final review's outcome beside its link
    assert "decision due: consequences recommended" in html and ">extended<" not in html
    assert "missing" in html          # the active plans' other checkpoints have not been run here


def test_escaped_rep_name(tmp_path, demo):
    evil = demo.reps.copy()
    evil.loc[evil["rep_id"] == ARTICLE, "rep_name"] = "<script>alert(1)</script>"
    folder = type(demo)(evil, demo.opportunities, demo.activities).write(tmp_path / "evil")
    batch = batches.prepare(str(folder), reports=tmp_path / "reports", params=tmp_path / "params")
    [result] = run_jobs(batches.diagnose_jobs(batch, [ARTICLE]), jobs_n=1, progress=False)
    assert result.status == "ok", result.error
    html = Path(result.html).read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_cli_run_lists_a_review_not_due_and_exits_0(tmp_path, demo_folder, demo):
    """A plan whose checkpoint the data does not reach yet is *not due*: listed, no kernel, exit code 0."""
    from pipnb.batch import demo_plan

    params = tmp_path / "params"
    good = demo_plan(demo, "responder").to_yaml(params / "plans" / f"{RESPONDER}.yaml")
    later = demo_plan(demo, "non_responder")
    later = later.model_copy(update={"start": later.start.replace(year=later.start.year + 1)})
    later.to_yaml(params / "plans" / f"{NON_RESPONDER}.yaml")
    command = ["run", "--data", demo_folder, "--stage", "checkpoint-1", "--plans", params / "plans" / "*.yaml",
               "--jobs", "2", "--reports", tmp_path / "reports", "--params", params]
    result = pipnb(*command)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 ok, 0 skipped, 0 failed, 1 not due" in result.stdout
    assert re.search(rf"not due:\n  {NON_RESPONDER} checkpoint-1  due {later.checkpoint_dates()['checkpoint-1']}; "
                     r"the data ends \d{4}-\d\d-\d\d", result.stdout)
    assert (tmp_path / "reports" / RESPONDER / "checkpoint-1.html").exists()
    assert not list((tmp_path / "reports" / NON_RESPONDER).glob("checkpoint-1*"))      # no kernel was started
    assert good.exists()
    assert not list((tmp_path / "reports").rglob("*.tmp*"))
    again = pipnb(*command)                                             # the good one is up to date
    assert again.returncode == 0 and "0 ok, 1 skipped, 0 failed, 1 not due" in again.stdout
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "not due" in index and "pipnb-status-failed\"" not in index


def test_importing_the_builder_builds_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("importing tools/build_notebooks.py built or wrote a notebook")

    for name in ("new_notebook", "new_code_cell", "new_markdown_cell"):
        monkeypatch.setattr(nbformat.v4, name, refuse)
    monkeypatch.setattr(nbformat, "write", refuse)
    assert builder().OUT == NOTEBOOKS


def test_the_shipped_notebooks_are_what_the_builder_builds():
    """Each notebook in ``notebooks/`` is what ``build_notebooks.build()`` returns, and there is no other one.

    Compared: the notebook's metadata (kernelspec, language_info, title) and nbformat version, then every cell in
    order: its type, id, source (the parameters cell and the parameter check included), metadata (tags) and, for
    code cells, outputs and execution count. Left out: the outputs and execution count of the
    ``# NBVAL_CHECK_OUTPUT`` cells, which the builder fills only by running the notebook on the demo data
    (``store_checked_outputs``); every other code cell must have none.
    """
    built = builder().build()
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(built)
    rebuild = "differs from tools/build_notebooks.py: run `.venv/bin/python tools/build_notebooks.py`"
    for name, nb in built.items():
        want = nbformat.reads(nbformat.writes(nb), as_version=4)         # as written to a file
        got = copy.deepcopy(nbformat.read(NOTEBOOKS / name, as_version=4))
        for cell in got.cells:
            if cell.cell_type == "code" and cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
                cell.outputs, cell.execution_count = [], None
        assert (got.nbformat, got.nbformat_minor, got.metadata) == (want.nbformat, want.nbformat_minor,
                                                                     want.metadata), f"{name}: metadata {rebuild}"
        assert [c.get("id") for c in got.cells] == [c.id for c in want.cells], f"{name}: the cells {rebuild}"
        for mine, theirs in zip(got.cells, want.cells):
            assert mine.source == theirs.source, f"{name} {theirs.id}: the source {rebuild}"
            assert mine == theirs, f"{name} {theirs.id}: {rebuild}"


def test_nbval_on_the_notebooks_with_the_documented_parameters(repo_demo_folder, tmp_path):
    """Each notebook, given what its stored outputs were made with (the rep has no default), reproduces them."""
    import papermill

    example_parameters = builder().example_parameters
    for source in sorted(NOTEBOOKS.glob("*.ipynb")):
        papermill.execute_notebook(str(source), str(tmp_path / source.name), prepare_only=True,
                                   parameters=example_parameters(source), progress_bar=False)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                             str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\b\d+ passed", result.stdout)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
def test_real_index_and_checkpoint_report_in_headless_chromium(batch, results, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    errors, external = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda req: req.url.startswith(("file://", "data:")) or external.append(req.url))
        page.goto((batch.reports / "index.html").as_uri())
        page.locator(f'a[href="{RESPONDER}/checkpoint-1.html"]').first.click()     # the dashboard and the list
        page.wait_for_load_state("load")
        assert page.url.endswith(f"/{RESPONDER}/checkpoint-1.html")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        assert len(images) >= 2 and all(done and width > 0 for done, width in images)
        assert "Did the rep really change?" in page.inner_text("main")
        page.screenshot(path=str(tmp_path / "checkpoint-1.png"), full_page=True)
        browser.close()
    assert errors == [] and external == []
    assert (tmp_path / "checkpoint-1.png").stat().st_size > 20_000


@pytest.mark.parametrize("name", ["00-team-scan", "10-diagnose", "20-plan", "30-checkpoint", "40-final-review"])
def test_notebooks_are_thin_with_a_typed_parameters_cell(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    for line in code[0].source.splitlines():
        assert re.match(r"^\w+: (str|int|float|bool) = .+  # \S", line), line     # typed, with a comment
    for cell in code:
        assert not re.search(r"^\s*(def|class) ", cell.source, re.M), cell.source
        assert "for rep" not in cell.source
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4      # the story is told in words


def test_cli_plan_drafts_the_yaml_then_the_report_and_keeps_an_edited_plan(tmp_path, demo_folder):
    base = ["plan", "--data", str(demo_folder), "--rep", ARTICLE,
            "--reports", str(tmp_path / "reports"), "--params", str(tmp_path / "params")]
    first = pipnb(*base)
    assert first.returncode == 0, first.stdout + first.stderr
    yaml_path = tmp_path / "params" / "plans" / f"{ARTICLE}.yaml"
    assert f"plan: {yaml_path}" in first.stdout
    assert (tmp_path / "reports" / ARTICLE / "plan.html").exists()
    edited = yaml_path.read_text().replace("status: draft", "status: active", 1)
    yaml_path.write_text(edited)
    again = pipnb(*base, "--force")
    assert again.returncode == 0, again.stderr
    assert yaml_path.read_text() == edited                  # an active plan is never redrafted
    assert "status <strong>active</strong>" in (tmp_path / "reports" / ARTICLE / "plan.html").read_text()


def test_cli_diagnose_unknown_rep_is_one_line(tmp_path, demo_folder):
    result = pipnb("diagnose", "--data", demo_folder, "--rep", "R99", "--reports", tmp_path / "reports")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("pipnb: error: rep 'R99' is not in the data")
    assert not (tmp_path / "reports" / "R99").exists()


def test_rep_ids_never_escape_reports(tmp_path):
    for evil in ("../../etc", "..", "a/b", "/abs", "R07\\..\\x"):
        folder = batches.rep_dir(tmp_path, evil)
        assert folder.parent == tmp_path.resolve() and ".." not in folder.name and "/" not in folder.name
    assert batches.rep_dir(tmp_path, "R07").name == "R07"


# -- the dashboard and the PDFs of the HR file ----------------------------------------------------------
needs_print = pytest.mark.skipif(not Path("/usr/bin/chromium").exists() or not shutil.which("pdftotext"),
                                 reason="Debian's chromium and poppler-utils are not installed (make browser)")


def test_dashboard_reads_the_recorded_outcomes(batch, results):
    import json

    from pipnb.dashboard import dashboard, to_json

    board = json.loads(to_json(dashboard(batch.reports, batch.params)))
    rows = {r["rep_id"]: r for r in board["plans"]}
    assert set(rows) == {RESPONDER, NON_RESPONDER, ARTICLE}
    final = nbformat.read(results[f"{RESPONDER} final"].ipynb, as_version=4).metadata["pipnb"]["outcome"]
    assert final["kind"] == "review" and final["stage"] == "final"
    # a recommendation nobody signed is a decision due, never a state: the plans are as their files say
    assert rows[RESPONDER]["plan_status"] == rows[NON_RESPONDER]["plan_status"] == "active"
    words = {"extend": "extension recommended", "complete": "completion recommended"}[final["recommendation"]]
    assert rows[RESPONDER]["next_state"] == "decision due" and rows[RESPONDER]["decision"].startswith(words)
    assert (rows[NON_RESPONDER]["next_state"], rows[NON_RESPONDER]["decision"]) == ("decision due",
                                                                                   "consequences recommended")
    assert rows[NON_RESPONDER]["latest"] == "recommendation: consequences"
    assert rows[NON_RESPONDER]["stage_reached"] == "Final review"
    assert rows[ARTICLE]["plan_status"] == "draft" and rows[ARTICLE]["next_state"] == "draft"
    measures = rows[NON_RESPONDER]["measures"]
    assert measures and all(m["status"] in ("met", "not met", "not yet clear", "no data") for m in measures)
    assert all(len(m["weekly"]) >= 12 for m in measures)          # the diagnosis window and the plan weeks
    assert board["data_date"] == final["data_end"]
    import ast

    scan_flags = ast.literal_eval(checked_output(results["team scan"]).strip())
    assert [f["rep_id"] for f in board["flagged"]] == [r for r in scan_flags if r not in rows]
    index = (batch.reports / "index.html").read_text()
    assert "plan</a></td><td><span class=\"pipnb-status pipnb-status-missing\"" not in index


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
@pytest.mark.parametrize("width", [1280, 390])
def test_dashboard_in_headless_chromium_at_desk_and_phone_width(batch, results, width, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    errors, external = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda req: req.url.startswith(("file://", "data:")) or external.append(req.url))
        page.goto((batch.reports / "index.html").as_uri())
        page.wait_for_load_state("load")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        assert all(done and width > 0 for done, width in images)
        assert page.locator("svg.pipnb-spark").count() >= 3           # a sparkline per reviewed measure
        assert page.locator("script").count() == 0
        text = page.inner_text("main")
        assert "Reps on a plan" in text and "As of" in text and "data up to" in text
        page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
        browser.close()
    assert errors == [] and external == []


@needs_print
@pytest.mark.parametrize(("stage", "rep", "paper", "pages"), [("checkpoint-1", RESPONDER, "a4", (3, 9)),
                                                              ("plan", ARTICLE, "letter", (2, 7))])
def test_pdf_for_the_hr_file(batch, results, demo, stage, rep, paper, pages):
    html = batch.reports / rep / f"{stage}.html"
    result = pipnb("pdf", html, "--paper", paper)
    assert result.returncode == 0, result.stderr
    pdf = html.with_suffix(".pdf")
    assert result.stdout.strip() == f"pdf: {pdf}" and pdf.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    count = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages[0] <= count <= pages[1]
    assert ("(A4)" if paper == "a4" else "(letter)") in info
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    name = demo.rep(rep)["rep_name"]
    assert name in text
    pages_text = [p for p in text.split("\f") if p.strip()]
    assert len(pages_text) == count
    for n, page in enumerate(pages_text, start=1):                                # every page's footer
        assert f"Confidential — prepared for {name} and their manager" in page and f"Page {n} of {count}" in page
    assert "Sign-off" in text and all(who in text for who in ("Rep", "Manager", "HR partner", "Signature", "Date"))
    from pipnb.batch import plan_path
    from pipnb.plan import Plan
    from pipnb.schema import METRICS

    plan = Plan.from_yaml(plan_path(batch.params, rep))
    for target in plan.targets:                                                   # the targets, by their numbers
        assert target.label.split()[0] in text and METRICS[target.metric].fmt(target.target) in text
    others = [n for i, n in zip(demo.reps["rep_id"], demo.reps["rep_name"], strict=True) if i != rep]
    assert not [n for n in others if n in text]
    from pipnb.pdf import print_pdf

    written = pdf.stat().st_mtime_ns
    assert print_pdf(html, paper=paper, chromium="/nonexistent") == pdf and pdf.stat().st_mtime_ns == written  # kept


def test_pdf_without_chromium_is_one_line(batch, results, tmp_path):
    import os

    html = batch.reports / RESPONDER / "checkpoint-1.html"
    env = {**os.environ, "PATH": str(tmp_path)}
    result = pipnb("pdf", html, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no chromium found" in result.stderr
    assert not list(html.parent.glob(".*.tmp"))


def test_sign_off_block_and_dead_opportunity_action_in_the_reports(batch, results):
    from pipnb.batch import plan_path
    from pipnb.plan import Plan

    for label in (f"{ARTICLE} plan", f"{RESPONDER} checkpoint-1", f"{RESPONDER} final", f"{NON_RESPONDER} final"):
        page = Path(results[label].html).read_text()
        assert '<section class="pipnb-signoff">' in page and page.count('<td class="pipnb-line">') == 9, label
    assert '<section class="pipnb-signoff">' not in Path(results[f"{ARTICLE} diagnose"].html).read_text()
    plan = Plan.from_yaml(plan_path(batch.params, ARTICLE))
    page = Path(results[f"{ARTICLE} plan"].html).read_text()
    if plan.dead_opportunities:
        n = len(plan.dead_opportunities)
        what = "this opportunity" if n == 1 else f"these {n} opportunities"
        assert f"close out or re-engage {what} by checkpoint 1" in page
        assert all(d.opp_id in page for d in plan.dead_opportunities)
    else:
        assert "No open opportunity had gone more than 14 days without a touch" in page
    summary = Path(results[f"{RESPONDER} checkpoint-1"].html).read_text().split("Actual against target")[0]
    assert re.search(r"Checkpoint 1 review: (On track|Behind plan|Not yet clear) — \d focus measures?", summary)
    final = Path(results[f"{NON_RESPONDER} final"].html).read_text()
    assert final.index("Recommendation: apply the stated consequences") < final.index("<img")   # conclusion first


# -- presentation of every report: alt text, no literal Markdown, a phone's width, headings kept in print ---------

def _report_pages(batch) -> list[Path]:
    return sorted(p for p in batch.reports.rglob("*.html") if p.name != "index.html")


def test_every_report_image_has_alt_text_and_no_literal_markdown(batch, results):
    pages = _report_pages(batch)
    assert len(pages) == 6
    for page in pages:
        text = page.read_text(encoding="utf-8")
        images = re.findall(r"<img\b[^>]*>", text)
        alts = [re.search(r'\balt="([^"]*)"', img) for img in images]
        assert all(a and len(a.group(1)) > 30 and "No description" not in a.group(1) for a in alts), page
        body = re.sub(r"<(style|img)\b.*?(</style>|>)", " ", text.split("<main>", 1)[1], flags=re.S)
        words = re.sub(r"<[^>]+>", " ", body)
        assert "**" not in words and "__" not in words, page
    scan = (batch.reports / "team-scan.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<img\b", scan)) >= 7                        # six funnel panels and the heatmap
    assert len(re.findall(r"<h[1-4][^>]*>Data quality</h[1-4]>", scan)) == 1


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
def test_reports_at_desk_and_phone_width(batch, results):
    """At 390 px nothing is wider than the screen but inside a box that scrolls; the funnel panels sit one to a
    row there at their own size, and several to a row at 1280 px."""
    sync_api = pytest.importorskip("playwright.sync_api")
    overflow = """() => [...document.querySelectorAll('main *')].filter(e => {
        const r = e.getBoundingClientRect();
        if (r.right <= window.innerWidth + 1) return false;
        for (let a = e.parentElement; a; a = a.parentElement) {
            const s = getComputedStyle(a);
            if (['auto', 'scroll'].includes(s.overflowX) && a.getBoundingClientRect().right <= window.innerWidth + 1)
                return false;
        }
        return true; }).map(e => e.tagName + '.' + e.className)"""
    rows = """() => { const imgs = [...document.querySelectorAll('img')];
        return imgs.map(i => [Math.round(i.getBoundingClientRect().top), i.width, i.naturalWidth]); }"""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for width in (390, 1280):
            page = browser.new_page(viewport={"width": width, "height": 900})
            for report in _report_pages(batch):
                page.goto(report.as_uri())
                page.wait_for_load_state("load")
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), report
                assert page.evaluate(overflow) == [], report
            page.goto((batch.reports / "team-scan.html").as_uri())
            funnels = page.evaluate(rows)[:6]                             # the six funnel panels come first
            tops = [top for top, _, _ in funnels]
            if width == 390:
                assert len(set(tops)) == 6 and all(shown == natural for _, shown, natural in funnels)
            else:
                assert len(set(tops)) <= 3                                # two or three to a row
            page.close()
        browser.close()


@needs_print
def test_pdf_keeps_each_heading_with_what_follows(batch, results):
    """In every report's PDF no page ends with a heading, and a section's heading is on the page of its chart."""
    for html in _report_pages(batch):
        _headings_kept(html, print_and_read(html))


def _headings_kept(html: Path, pdf: Path) -> None:
    source = html.read_text(encoding="utf-8")
    headings = {re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<h[1-4][^>]*>(.*?)</h[1-4]>", source, re.S)}
    count = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                             text=True).stdout).group(1))
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True).stdout.splitlines()[2:]
    image_pages = {int(row[0]) for row in map(str.split, listing) if len(row) > 2 and row[2] == "image"}
    heading_page: dict[str, int] = {}
    for n in range(1, count + 1):
        text = subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(pdf), "-"], capture_output=True,
                              text=True).stdout
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "Confidential —" not in ln
                 and not re.fullmatch(r"Page \d+ of \d+", ln.strip())]
        if not lines:                                               # a page of charts only
            assert n in image_pages, f"{pdf.name}: page {n} is empty"
            continue
        assert lines[-1] not in headings, f"{pdf.name}: page {n} ends with the heading {lines[-1]!r}"
        for line in lines:
            if line in headings:
                heading_page.setdefault(line, n)
    for section in re.split(r"<h2[^>]*>", source)[1:]:              # a section whose first output is a chart
        title = re.sub(r"<[^>]+>", "", section.split("</h2>", 1)[0]).strip()
        after = section.split("</h2>", 1)[1]
        first_output = after.find('class="jp-OutputArea-child')
        chart_first = first_output >= 0 and "<img" in after[first_output:first_output + 300]
        if chart_first and title in heading_page:
            assert heading_page[title] in image_pages, f"{pdf.name}: {title!r} is on a page without its chart"


def print_and_read(html: Path) -> Path:
    result = pipnb("pdf", html, "--force")
    assert result.returncode == 0, result.stderr
    return html.with_suffix(".pdf")
