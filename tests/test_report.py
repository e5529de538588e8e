"""pipnb.report: an executed notebook becomes one offline, escaped, code-free HTML page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import papermill
import pytest

from pipnb.index_page import write_index
from pipnb.record import IndexEntry
from pipnb.report import export_html, read_input_hash, sanitize_html

FIXTURES = Path(__file__).parent / "notebooks_fixture"
EVIL = "<script>alert(1)</script>"
HEADER = {"rep_name": EVIL, "stage": "diagnose", "as_of": "2024-06-30",
          "plan_period": "2024-07-01 to 2024-09-30"}


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of every <script> element."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def named(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> nbformat.NotebookNode:
    """toy_report.ipynb run by papermill with data text that tries to inject script."""
    out = tmp_path_factory.mktemp("executed") / "toy.ipynb"
    return papermill.execute_notebook(
        str(FIXTURES / "toy_report.ipynb"), str(out), progress_bar=False,
        parameters={"rep_id": "R07", "note": f"{EVIL} <img src=x onerror=alert(2)>",
                    "secret_marker": "INJECTED-VALUE-42"},
    )


@pytest.fixture(scope="module")
def page(executed, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("html") / "diagnose.html"
    assert export_html(executed, path, header=HEADER) == path
    return path.read_text(encoding="utf-8")


def test_no_code_prompts_or_parameter_cells(page):
    assert "import seaborn" not in page and "plt.subplots" not in page  # code cell sources
    assert "In&nbsp;[" not in page and "Out[" not in page
    # neither the defaults of the parameters cell nor papermill's injected values
    assert "PARAM-DEFAULT" not in page
    assert "INJECTED-VALUE-42" not in page and "secret_marker" not in page


def test_parameter_cells_removed_even_with_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    for tag in ("parameters", "injected-parameters", None):
        cell = nbformat.v4.new_code_cell("x = 1", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=f"output of {tag} cell")])
        cell.metadata["tags"] = [tag] if tag else []
        nb.cells.append(cell)
    page = export_html(nb, tmp_path / "p.html", header=HEADER).read_text(encoding="utf-8")
    assert "output of None cell" in page
    assert "output of parameters cell" not in page and "output of injected-parameters cell" not in page


def test_no_stderr_or_warnings_but_stdout_and_prose_kept(page):
    assert "stderr noise" not in page
    assert "must not reach the report" not in page
    assert "stdout line kept" in page
    assert "<h1>Toy report</h1>" in page and "<strong>bold</strong>" in page


def test_header_present_and_escaped(page):
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"Confidential — prepared for {escaped} and their manager; do not forward" in page
    assert "2024-06-30" in page and "2024-07-01 to 2024-09-30" in page and "diagnose" in page
    assert f"<title>diagnose — {escaped}</title>" in page


def test_no_script_and_nothing_external(page):
    tags = _Tags(page)
    assert tags.named("script") == [] and tags.named("iframe") == [] and tags.named("link") == []
    for tag, attrs in tags.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not value.startswith(("http://", "https://", "//")), (tag, name, value)
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert "require.js" not in page and "mathjax" not in page.lower()


def test_plots_inline_and_phone_ready(page):
    images = _Tags(page).named("img")
    assert images, "the seaborn plot is missing"
    assert all((img.get("src") or "").startswith("data:image/png;base64,") for img in images)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "max-width: 100%" in page and "overflow-x: auto" in page


def test_markdown_output_from_data_cannot_run_script(page):
    note = re.search(r"<strong>Note for R07:</strong>(.*?)</p>", page, re.DOTALL)
    assert note, "the Markdown output from data is missing"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in note.group(1)  # shown as text
    assert "onerror" not in page


def test_dataframe_text_stays_escaped(page):
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped</b>" not in page
    assert re.search(r"<th( class=\"pipnb-num\")?>calls</th>", page)  # the table keeps its structure


def test_sanitizer_keeps_prose_and_drops_active_content():
    html = sanitize_html(
        '<h2 id="a">Title</h2><p>text <a href="https://example.org">link</a></p>'
        '<a href="javascript:alert(1)">x</a><div onclick="alert(1)" style="color: red">d</div>'
        '<img src="http://example.org/p.png"><img src="data:image/png;base64,AAAA">'
        '<style>body{background:url(http://x)}</style><iframe src="http://x"></iframe>'
    )
    assert '<h2 id="a">Title</h2>' in html and '<a href="https://example.org">link</a>' in html
    assert "javascript:" not in html and "onclick" not in html and 'style="color: red;"' in html
    assert "http://example.org/p.png" not in html and '<img src="data:image/png;base64,AAAA">' in html
    assert "<style" not in html and "<iframe" not in html and "&lt;iframe" in html


def test_input_hash_recorded_and_read_back(executed, tmp_path):
    nb = nbformat.from_dict(executed)
    nb.metadata["pipnb"] = {"input_hash": "ab12", "status": "ok"}
    path = export_html(nb, tmp_path / "r.html", header={"stage": "scan"})
    assert read_input_hash(path) == "ab12"
    assert read_input_hash(tmp_path / "absent.html") is None
    assert "Confidential — prepared for the sales manager; do not forward" in path.read_text()


def test_export_from_path_writes_atomically(executed, tmp_path):
    src = tmp_path / "nb.ipynb"
    nbformat.write(executed, src)
    path = export_html(src, tmp_path / "out" / "r.html", header=HEADER)
    assert path.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.html"]  # no temp file left


def test_index_lists_entries_with_relative_links_and_statuses(tmp_path):
    reports = tmp_path / "reports"
    (reports / "R07").mkdir(parents=True)
    entries = [
        IndexEntry("", "scan", "ok", reports / "team-scan.html"),
        IndexEntry("Dana Reyes (R07)", "diagnose", "ok", reports / "R07" / "diagnose.html"),
        IndexEntry("Dana Reyes (R07)", "plan", "failed", reports / "R07" / "plan.ipynb",
                   note="ValueError: no targets"),
        IndexEntry("Dana Reyes (R07)", "checkpoint-1", "skipped", reports / "R07" / "checkpoint 1.html"),
        IndexEntry(EVIL, "final", "missing"),
    ]
    page = write_index(entries, reports / "index.html").read_text(encoding="utf-8")
    links = [attrs["href"] for attrs in _Tags(page).named("a")]
    assert links == ["team-scan.html", "R07/diagnose.html", "R07/plan.ipynb", "R07/checkpoint%201.html"]
    for status in ("ok", "failed", "skipped", "missing"):
        assert f'pipnb-status-{status}">{status}</span>' in page
    assert "ValueError: no targets" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and _Tags(page).named("script") == []
    assert "2 ok" in page and '<meta name="viewport"' in page


# -- presentation: Markdown with dollar amounts, column alignment, alt text -----------------------------------

_PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def _presentation_page(tmp_path) -> str:
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    table = ("<table><thead><tr style=\"text-align: right;\"><th>Measure</th><th>Final target</th>"
             "<th>How it was set</th></tr></thead><tbody>"
             "<tr><td>Win rate</td><td>27%</td><td>Win rate: 50% of the way from the baseline 18% to the peers' "
             "median 37%.</td></tr><tr><td>Emails per week</td><td>60.0/wk (range 60.0/wk–100.0/wk)</td>"
             "<td>the policy's standard</td></tr><tr><td>Calls</td><td>—</td><td>n/a</td></tr></tbody></table>")
    cell = new_code_cell("x", execution_count=1, outputs=[
        new_output("display_data", data={"text/markdown": "about **$78,808** a quarter at the peers' average won "
                                                           "deal of $13,226 (plausibly $0 to $133,230); __done__"}),
        new_output("display_data", data={"image/png": _PNG},
                   metadata={"image/png": {"alt": 'Win rate: this rep 18% against 6 peers "median" 37%'}}),
        new_output("execute_result", data={"text/html": table}, execution_count=1),
    ])
    nb = new_notebook(cells=[new_markdown_cell("## Cost\n\nA **$5** and a $6 *tip*."), cell])
    path = export_html(nb, tmp_path / "p.html", header={"rep_name": "R", "stage": "diagnose"})
    return path.read_text(encoding="utf-8")


def test_markdown_between_dollar_amounts_renders_and_no_literal_markdown_reaches_the_page(tmp_path):
    page = _presentation_page(tmp_path)
    assert "<strong>$78,808</strong> a quarter" in page and "<strong>done</strong>" in page
    assert "A <strong>$5</strong> and a $6 <em>tip</em>." in page
    text = re.sub(r"<[^>]+>", " ", page.split("<main>", 1)[1])
    assert "**" not in text and "__" not in text


def test_every_image_keeps_the_alt_text_of_its_output(tmp_path):
    images = _Tags(_presentation_page(tmp_path)).named("img")
    assert [img["alt"] for img in images] == ['Win rate: this rep 18% against 6 peers "median" 37%']


def test_prose_columns_are_left_aligned_and_number_columns_right_aligned(tmp_path):
    page = _presentation_page(tmp_path)
    cells = re.findall(r"<(t[dh])([^>]*)>([^<]*)</t[dh]>", page)
    numeric = {text for _, attrs, text in cells if "pipnb-num" in attrs}
    assert numeric == {"Final target", "27%", "60.0/wk (range 60.0/wk–100.0/wk)", "—"}
    assert "th.pipnb-num, td.pipnb-num { text-align: right; }" in page
    assert re.search(r"th, td \{[^}]*text-align: left", page)              # everything else reads from the left


def test_align_columns_reads_numbers_with_units_and_leaves_text_alone():
    from pipnb.report import align_columns

    def marked(*cells: str) -> bool:
        rows = "".join(f"<tr><td>{c}</td></tr>" for c in cells)
        return 'class="pipnb-num"' in align_columns(f"<table><tbody>{rows}</tbody></table>")

    assert marked("18%", "$1,631/day", "6 of 34", "−17% (−51% to +42%)", "-0 pts (-34 to +33 pts)", "n/a")
    assert not marked("18%", "in line")                                    # one text cell: a text column
    assert not marked("50% of the way from the baseline 18% to the peers' median 37%")
    assert not marked("East", "West") and not marked("—", "n/a")           # no number at all
