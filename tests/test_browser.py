"""Reports as a reader's browser shows them: headless Debian Chromium, offline, on a phone-sized screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipnb.index_page import write_index
from pipnb.job import Job
from pipnb.runner import run_jobs

CHROMIUM = Path("/usr/bin/chromium")
FIXTURES = Path(__file__).parent / "notebooks_fixture"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    """An index with one good report (its data trying to inject script) and one failure."""
    out = tmp_path_factory.mktemp("reports")
    evil = "<script>alert(1)</script>"
    header = {"rep_name": f"Dana {evil}", "stage": "diagnose", "as_of": "2024-06-30",
              "plan_period": "2024-07-01 to 2024-09-30"}
    jobs = [
        Job(FIXTURES / "toy_report.ipynb", out / "R07" / "diagnose.ipynb", out / "R07" / "diagnose.html",
            parameters={"rep_id": "R07", "note": f"{evil}<img src=x onerror=alert(2)>"}, header=header,
            label="R07 diagnose"),
        Job(FIXTURES / "toy_fail.ipynb", out / "R99" / "diagnose.ipynb", out / "R99" / "diagnose.html",
            parameters={"rep_id": "R99"}, header={**header, "rep_name": "Sam"}, label="R99 diagnose"),
    ]
    results = run_jobs(jobs, jobs_n=2, progress=False)
    assert [r.status for r in results] == ["ok", "failed"]
    write_index([r.index_entry() for r in results], out / "index.html")
    return out


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


class _Watch:
    """Console errors, uncaught exceptions, dialogs (an alert() that ran) and non-file requests."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.external: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("request", lambda req: req.url.startswith(("file://", "data:")) or self.external.append(req.url))

    def assert_clean(self):
        assert self.errors == [] and self.dialogs == [] and self.external == []


def _images(page) -> list[list]:
    return page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")


def test_index_and_report_open_offline_on_a_phone(browser, reports, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1,
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    watch = _Watch(page)

    page.goto((reports / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert page.locator("td", has_text="Dana <script>alert(1)</script>").count() == 1  # shown as text
    statuses = page.locator(".pipnb-status").all_inner_texts()
    assert statuses == ["ok", "failed"]
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

    page.get_by_role("link", name="diagnose").first.click()  # the relative link works
    page.wait_for_load_state("load")
    assert page.url.endswith("/R07/diagnose.html")
    assert "Confidential — prepared for Dana <script>alert(1)</script> and their manager" in page.inner_text(
        "header")
    images = _images(page)
    assert images and all(complete and width > 0 for complete, width in images)
    assert page.locator("script").count() == 0
    # Nothing wider than the phone: wide tables scroll inside their own box.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    watch.assert_clean()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    context.close()


def test_failed_entry_links_to_the_kept_notebook(browser, reports):
    page = browser.new_page()
    watch = _Watch(page)
    page.goto((reports / "index.html").as_uri())
    href = page.get_by_role("link", name="diagnose").nth(1).get_attribute("href")
    assert href == "R99/diagnose.ipynb"
    watch.assert_clean()
    page.close()
