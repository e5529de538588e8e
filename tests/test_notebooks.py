"""The lifecycle notebooks executed by papermill on the demo team, and their HTML reports.

One batch (scan, a diagnosis, a plan, two checkpoints and two final reviews) runs once per session through
the real runner; the tests read what came out.
"""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from pipnb import batch as batches
from pipnb.demo import DEMO_CASES
from pipnb.runner import run_jobs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "pipnb" / "notebooks"
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


def test_diagnosis_names_followup_as_an_improvement_area(results):
    assert "followup_meeting_ratio" in checked_output(results[f"{ARTICLE} diagnose"])
    html = Path(results[f"{ARTICLE} diagnose"].html).read_text()
    assert "dismissing volume as the issue" in html
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


def test_cli_run_isolates_a_broken_rep(tmp_path, demo_folder, demo):
    from pipnb.batch import demo_plan

    params = tmp_path / "params"
    good = demo_plan(demo, "responder").to_yaml(params / "plans" / f"{RESPONDER}.yaml")
    broken = demo_plan(demo, "non_responder")
    broken = broken.model_copy(update={"start": broken.start.replace(year=broken.start.year + 1)})
    broken.to_yaml(params / "plans" / f"{NON_RESPONDER}.yaml")
    command = [sys.executable, "-m", "pipnb", "run", "--data", str(demo_folder), "--stage", "checkpoint-1",
               "--plans", str(params / "plans" / "*.yaml"), "--jobs", "2", "--reports", str(tmp_path / "reports"),
               "--params", str(params)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 ok, 0 skipped, 1 failed" in result.stdout
    assert f"{NON_RESPONDER} checkpoint-1" in result.stdout and "but the data ends" in result.stdout
    assert (tmp_path / "reports" / RESPONDER / "checkpoint-1.html").exists()
    assert (tmp_path / "reports" / NON_RESPONDER / "checkpoint-1.ipynb").exists()       # kept for inspection
    assert not (tmp_path / "reports" / NON_RESPONDER / "checkpoint-1.html").exists()
    assert good.exists()
    assert not list((tmp_path / "reports").rglob("*.tmp*"))
    again = subprocess.run(command, capture_output=True, text=True)        # the good one is up to date
    assert "0 ok, 1 skipped, 1 failed" in again.stdout
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "failed" in index and "but the data ends" in index


def test_nbval_on_the_notebooks_with_the_documented_parameters(repo_demo_folder, tmp_path):
    """Each notebook, given what its stored outputs were made with (the rep has no default), reproduces them."""
    import papermill

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from build_notebooks import example_parameters
    finally:
        sys.path.pop(0)
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
        page.locator(f'a[href="{RESPONDER}/checkpoint-1.html"]').click()
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
    base = [sys.executable, "-m", "pipnb", "plan", "--data", str(demo_folder), "--rep", ARTICLE,
            "--reports", str(tmp_path / "reports"), "--params", str(tmp_path / "params")]
    first = subprocess.run(base, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    yaml_path = tmp_path / "params" / "plans" / f"{ARTICLE}.yaml"
    assert f"plan: {yaml_path}" in first.stdout
    assert (tmp_path / "reports" / ARTICLE / "plan.html").exists()
    edited = yaml_path.read_text().replace("status: draft", "status: active", 1)
    yaml_path.write_text(edited)
    again = subprocess.run([*base, "--force"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert yaml_path.read_text() == edited                  # an active plan is never redrafted
    assert "status <strong>active</strong>" in (tmp_path / "reports" / ARTICLE / "plan.html").read_text()


def test_cli_diagnose_unknown_rep_is_one_line(tmp_path, demo_folder):
    result = subprocess.run([sys.executable, "-m", "pipnb", "diagnose", "--data", str(demo_folder), "--rep", "R99",
                             "--reports", str(tmp_path / "reports")], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("pipnb: error: rep 'R99' is not in the data")
    assert not (tmp_path / "reports" / "R99").exists()


def test_rep_ids_never_escape_reports(tmp_path):
    for evil in ("../../etc", "..", "a/b", "/abs", "R07\\..\\x"):
        folder = batches.rep_dir(tmp_path, evil)
        assert folder.parent == tmp_path.resolve() and ".." not in folder.name and "/" not in folder.name
    assert batches.rep_dir(tmp_path, "R07").name == "R07"
