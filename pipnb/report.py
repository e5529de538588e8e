"""Shareable HTML reports: an executed notebook in, one self-contained page out.

A report is read by a sales manager, often on a phone, so the page

* shows prose, tables and charts only: no code, no prompts, no ``parameters`` or papermill
  ``injected-parameters`` cell, no stderr or warnings;
* opens offline: no script at all, no stylesheet, font or image fetched from anywhere (plots are
  inline ``data:`` PNGs, the CSS is inline);
* fits a small screen (viewport meta, tables scroll sideways, images shrink to the width);
* cannot be made to run script by the data: header text is HTML-escaped, and every HTML or Markdown
  cell and output is passed through an allow-list sanitizer (bleach), so a rep named
  ``<script>alert(1)</script>`` shows as that text.

The conversion is nbconvert's ``HTMLExporter`` in-process (one exporter per process and thread,
built on first use) with the ``pipnb_report`` template in ``pipnb/templates/``. The template is also
installed where nbconvert looks (``share/jupyter/nbconvert/templates``), so plain
``jupyter nbconvert --to html --template pipnb_report executed.ipynb`` writes the same kind of page: its
``conf.json`` registers :class:`ReportPreprocessor`, which keeps what a reader sees, sanitizes every HTML and
Markdown cell and output, and wraps the body in the page (header from the notebook, see
:func:`notebook_header`). :func:`render` (``pipnb render``) does the same in-process.

Example
-------
>>> export_html("reports/R07/diagnose.ipynb", "reports/R07/diagnose.html",      # doctest: +SKIP
...             header={"rep_name": "Dana Reyes", "stage": "diagnose", "as_of": "2024-06-30",
...                     "plan_period": "2024-07-01 to 2024-09-30"})
"""

from __future__ import annotations

import copy
import html
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipnb.errors import PipnbError
from pipnb.io import atomic_write_text
from pipnb.progress import one_line
from pipnb.record import RunRecord, read_record
from pipnb.stages import stage_title

if TYPE_CHECKING:
    import nbformat

__all__ = ["align_columns", "confidentiality_line", "export_html", "install_template", "markdown_html",
           "notebook_header", "read_input_hash", "render", "sanitize_html"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "pipnb_report"

#: Cells carrying one of these tags are dropped from the report entirely.
REMOVED_CELL_TAGS = frozenset({"parameters", "injected-parameters", "remove-cell", "papermill-error-cell-tag"})

#: Header keys, in the order they are shown, and their labels.
HEADER_FIELDS = {"rep_name": "Rep", "team": "Team", "stage": "Stage", "as_of": "As of",
                 "plan_period": "Plan period", "plan_status": "Plan status"}

_INPUT_HASH_META = "pipnb-input-hash"
_INPUT_HASH_RE = re.compile(rb'<meta name="pipnb-input-hash" content="([0-9a-f]*)"')
# A repr such as "<Axes: title={'center': 'x'}>" or "<Figure size 400x250 with 1 Axes>": left by a
# plotting call that ended a cell, it means nothing to a reader.
_OBJECT_REPR_RE = re.compile(r"^<[\w.]+(:| object at | size ).*>$", re.DOTALL)
_STYLE_ELEMENT_RE = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.IGNORECASE | re.DOTALL)
_IMG_WITHOUT_SRC_RE = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)


# --------------------------------------------------------------------------- sanitizing

_ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub",
    "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
_UNSAFE_HREF = ("javascript:", "vbscript:", "data:", "file:")


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    """Attribute allow-list for :func:`sanitize_html` (bleach calls it once per attribute)."""
    if name in ("class", "id", "title", "style", "lang", "dir"):
        return True
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan", "align", "scope")
    if tag == "img":
        if name == "src":  # inline images only: nothing is fetched when the page opens
            return value.startswith("data:image/")
        return name in ("alt", "width", "height")
    if tag == "a":
        if name == "href":
            return not value.strip().lower().startswith(_UNSAFE_HREF)
        return name == "rel"
    if tag == "ol":
        return name in ("start", "type")
    if tag in ("col", "colgroup"):
        return name == "span"
    return tag == "details" and name == "open"


def _cleaner():
    import bleach  # bleach (40 ms, on the `pipnb --help` path)
    from bleach.css_sanitizer import CSSSanitizer  # bleach (40 ms, on the `pipnb --help` path)

    return bleach.Cleaner(tags=_ALLOWED_TAGS, attributes=_allow_attribute,
                          protocols={"http", "https", "mailto", "data"}, strip=False,
                          strip_comments=True, css_sanitizer=CSSSanitizer())


def sanitize_html(fragment: str | bytes) -> str:
    """Return ``fragment`` with only inert HTML left.

    ``<style>`` elements (pandas adds one to every table) are dropped; any other tag outside the
    allow-list, ``<script>`` included, is escaped so it shows as text; event-handler attributes are
    dropped; an ``<img>`` is kept only when its ``src`` is a ``data:image/`` URI.
    """
    fragment = fragment.decode() if isinstance(fragment, bytes) else str(fragment)
    cleaned = _local_state().cleaner.clean(_STYLE_ELEMENT_RE.sub("", fragment))
    return _IMG_WITHOUT_SRC_RE.sub("", cleaned)  # an image whose source was refused would show broken


# --------------------------------------------------------------------------- table columns

_TABLE_RE = re.compile(r"<table\b[^>]*>.*?</table\s*>", re.IGNORECASE | re.DOTALL)
_ROW_RE = re.compile(r"<tr\b[^>]*>.*?</tr\s*>", re.IGNORECASE | re.DOTALL)
_CELL_RE = re.compile(r"<(td|th)\b([^>]*)>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_COLSPAN_RE = re.compile(r"""\bcolspan\s*=\s*["']?(\d+)""", re.IGNORECASE)
_CLASS_RE = re.compile(r"""\bclass\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")
# A number, maybe signed, in a currency or after "~", "<" or "(": "18%", "$1,631/day", "−17% (−51% to +42%)".
_NUMBER_START_RE = re.compile(r"^[(+\-−–~≈<>≤≥$€£\s]*\d")
_WORD_RE = re.compile(r"[A-Za-z]{2,}")
_NO_VALUE = frozenset({"", "—", "–", "-", "n/a", "na", "nan", "none", "…"})   # cells that do not decide
_MAX_WORDS_IN_A_NUMBER = 3          # distinct words beside the numbers: "6 of 34", "60.0/wk (range 60.0/wk–100.0/wk)"
NUMERIC_CLASS = "pipnb-num"


def _cell_is_number(inner: str) -> bool | None:
    """True for a number (with its unit), False for text, None for a cell without a value."""
    text = html.unescape(_TAG_RE.sub("", inner)).strip()
    if text.lower() in _NO_VALUE:
        return None
    return bool(_NUMBER_START_RE.match(text)) and len(set(_WORD_RE.findall(text))) <= _MAX_WORDS_IN_A_NUMBER


def _columns(row: str) -> list[tuple[int, re.Match[str]]]:
    """The cells of a row with the column each starts in (a ``colspan`` moves the next ones along)."""
    cells, column = [], 0
    for cell in _CELL_RE.finditer(row):
        cells.append((column, cell))
        span = _COLSPAN_RE.search(cell.group(2))
        column += int(span.group(1)) if span else 1
    return cells


def _align_table(match: re.Match[str]) -> str:
    table = match.group(0)
    verdicts: dict[int, set[bool]] = {}
    for row in _ROW_RE.findall(table):
        for column, cell in _columns(row):
            if cell.group(1).lower() == "td":
                verdict = _cell_is_number(cell.group(3))
                if verdict is not None:
                    verdicts.setdefault(column, set()).add(verdict)
    numeric = {column for column, seen in verdicts.items() if seen == {True}}
    if not numeric:
        return table

    def mark_row(row: re.Match[str]) -> str:
        text, out, last = row.group(0), [], 0
        for column, cell in _columns(text):
            if column in numeric:
                attrs = cell.group(2)
                cls = _CLASS_RE.search(attrs)
                attrs = (attrs[:cls.start(2)] + f"{cls.group(2)} {NUMERIC_CLASS}".strip() + attrs[cls.end(2):]
                         if cls else f'{attrs} class="{NUMERIC_CLASS}"')
                out += [text[last:cell.start()], f"<{cell.group(1)}{attrs}>{cell.group(3)}</{cell.group(1)}>"]
                last = cell.end()
        return "".join([*out, text[last:]])

    return _ROW_RE.sub(mark_row, table)


def align_columns(fragment: str) -> str:
    """Mark the numeric columns of every table in ``fragment`` (class ``pipnb-num``: right-aligned).

    A column is numeric when every cell of its body that holds a value is a number with its unit ("18%",
    "$1,631/day", "6 of 34", "22% (11%–39%)"); any other column (names, findings, the rule a target was set by)
    stays left-aligned, so prose is never pushed against the right edge of a cell.
    """
    return _TABLE_RE.sub(_align_table, fragment)


# --------------------------------------------------------------------------- Markdown

def markdown_html(source: str, *, path: str = "", attachments: Mapping[str, Any] | None = None) -> str:
    """Markdown to HTML for a report: nbconvert's renderer with CommonMark, tables and strikethrough, and no math.

    A report runs no script, so nothing would typeset ``$...$`` as math; parsing it as math would only keep the
    Markdown between two dollar amounts from rendering ("about **$78,808** a quarter at ... $13,226" showed its
    asterisks). Every ``$`` is text here, so emphasis, links and tables render wherever they are.
    """
    import mistune  # mistune (loaded with nbconvert)
    from nbconvert.filters.markdown_mistune import IPythonRenderer  # nbconvert (0.33 s)

    renderer = IPythonRenderer(escape=False, attachments=dict(attachments or {}), path=path,
                               exclude_anchor_links=True)
    parse = mistune.create_markdown(renderer=renderer, plugins=["strikethrough", "table", "url", "task_lists",
                                                                "def_list"])
    return str(parse(source))


# --------------------------------------------------------------------------- exporter

class _State(threading.local):
    """Per-thread exporter and cleaner, built on first use (a template compiles once per worker)."""

    exporter: Any = None
    cleaner: Any = None


_STATE = _State()


def _local_state() -> _State:
    if _STATE.cleaner is None:
        _STATE.cleaner = _cleaner()
    return _STATE


def exporter():
    """This thread's report exporter (nbconvert's ``HTMLExporter`` with the report template), built on first use."""
    state = _local_state()
    if state.exporter is None:
        from nbconvert import HTMLExporter  # nbconvert (0.33 s)

        class _ReportExporter(HTMLExporter):
            def default_filters(self):
                yield from super().default_filters()
                yield ("clean_html", sanitize_html)  # replaces nbconvert's, which drops <p>, <h1>, <th>

        quiet = logging.getLogger("pipnb.report.nbconvert")
        quiet.setLevel(logging.ERROR)  # nbconvert warns about every plot lacking alt text
        state.exporter = _ReportExporter(
            log=quiet, template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATE_DIR)],
            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
            sanitize_html=True, exclude_anchor_links=True,
        )
    return state.exporter


def _report_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` holding only what a reader sees (see the module docstring)."""
    from nbconvert.preprocessors import TagRemovePreprocessor  # nbconvert (0.33 s)

    nb = copy.deepcopy(nb)
    nb, _ = TagRemovePreprocessor(remove_cell_tags=set(REMOVED_CELL_TAGS)).preprocess(nb, {})
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.get("outputs", []) if _shown(out)]
            if not cell.outputs:
                continue
        cells.append(cell)
    nb.cells = cells
    return nb


def _shown(output: Mapping[str, Any]) -> bool:
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("name") == "stdout"
    if kind == "execute_result":
        data = output.get("data", {})
        if set(data) <= {"text/plain"} and _OBJECT_REPR_RE.match(str(data.get("text/plain", "")).strip()):
            return False
    return True


# --------------------------------------------------------------------------- page

_CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --band: #f6f8fa; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main, .pipnb-header > div { max-width: 60rem; margin: 0 auto; padding: 0 1rem; }
main { padding-bottom: 2rem; }
.pipnb-header { background: var(--band); border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
.pipnb-header h1 { font-size: 1.5rem; margin: .25rem 0 .5rem; }
.pipnb-confidential { margin: 0; padding-top: .75rem; font-size: .85rem; font-weight: 600; color: #9a3412; }
.pipnb-facts { display: flex; flex-wrap: wrap; gap: .25rem 1.5rem; margin: 0; padding-bottom: .75rem; }
.pipnb-facts div { display: flex; gap: .4rem; }
.pipnb-facts dt { color: var(--muted); }
.pipnb-facts dd { margin: 0; font-weight: 600; }
h1, h2, h3, h4 { line-height: 1.25; }
img, svg { max-width: 100%; height: auto; }
pre { white-space: pre-wrap; word-break: break-word; font-size: .875rem; margin: .5rem 0; }
.jp-OutputArea-output, .jp-RenderedMarkdown, .pipnb-table-wrap { overflow-x: auto; }
.jp-InputArea-prompt, .jp-OutputArea-prompt, .jp-Collapser, a.anchor-link { display: none; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: var(--band); }
th.pipnb-num, td.pipnb-num { text-align: right; }
/* Outputs of one cell side by side as far as they fit: a chart's panels two or three to a row on a laptop,
   one to a row on a phone; text and tables take a whole row. */
.jp-OutputArea { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: flex-start; }
.jp-OutputArea-child { flex: 1 1 100%; min-width: 0; }
.jp-OutputArea-child:has(> .jp-RenderedImage) { flex: 0 1 auto; }
.pipnb-status { display: inline-block; padding: 0 .5rem; border-radius: .75rem; font-size: .85rem; }
.pipnb-status-ok { background: #dafbe1; color: #116329; }
.pipnb-status-failed { background: #ffebe9; color: #a40e26; }
.pipnb-status-skipped { background: #ddf4ff; color: #0a3069; }
.pipnb-status-missing, .pipnb-status-not-due { background: #eaeef2; color: #59636e; }
.pipnb-record { margin: 0; padding-bottom: .75rem; font-size: .85rem; color: var(--muted); }
.pipnb-notes { margin: 0 0 .75rem; padding: .5rem 1rem .5rem 1.75rem; background: #fff8c5;
               border: 1px solid #d4a72c; border-radius: .375rem; font-size: .9rem; }
.pipnb-signoff table { width: 100%; table-layout: fixed; }
.pipnb-signoff td, .pipnb-signoff th { height: 2.6rem; vertical-align: bottom; text-align: left; }
.pipnb-signoff th:first-child { width: 6.5rem; }
.pipnb-signoff td.pipnb-line { border-bottom: 1px solid var(--ink); overflow-wrap: anywhere; }
@media print { .pipnb-header { background: none; }
  img, svg, figure, tr, .pipnb-signoff { break-inside: avoid; } h1, h2, h3, h4 { break-after: avoid; }
  .jp-MarkdownCell:has(h1, h2, h3, h4) { break-inside: avoid; break-after: avoid; } }
"""


_PAGE_TAIL = "\n</main>\n</body>\n</html>\n"


def page(title: str, header_html: str, body_html: str, *, input_hash: str | None = None) -> str:
    """A whole HTML document: inline CSS only, no script, no external resource."""
    return f"{_page_head(title, header_html, input_hash=input_hash)}{body_html}{_PAGE_TAIL}"


def _page_head(title: str, header_html: str, *, input_hash: str | None = None) -> str:
    """The page up to the opening of ``<main>`` (see :func:`page`)."""
    hash_meta = f'<meta name="{_INPUT_HASH_META}" content="{input_hash}">\n' if input_hash else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        + hash_meta
        + '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        # Belt and braces: even if something slipped through, the browser may load nothing external
        # and run no script.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{header_html}<main>\n"
    )


def confidentiality_line(header: Mapping[str, Any]) -> str:
    """The confidentiality sentence for a report (plain text, not escaped)."""
    if header.get("confidential"):
        return str(header["confidential"])
    audience = (f"{header['rep_name']} and their manager" if header.get("rep_name")
                else str(header.get("audience") or "the sales manager"))
    return f"Confidential — prepared for {audience}; do not forward"


def header_html(header: Mapping[str, Any], record: RunRecord | None = None) -> tuple[str, str]:
    """Return (page title, escaped header block) for ``header``, with the run ``record``'s version line and the
    header's ``notes`` (e.g. the data behind an earlier stage changed) when there are any."""
    esc = html.escape
    stage, rep = header.get("stage"), header.get("rep_name")
    title = str(header.get("title") or " — ".join(str(p) for p in (stage, rep) if p) or "pipnb report")
    facts = "".join(
        f"<div><dt>{label}</dt><dd>{esc(str(header[key]))}</dd></div>"
        for key, label in HEADER_FIELDS.items() if header.get(key) not in (None, "")
    )
    block = (
        '<header class="pipnb-header"><div>\n'
        f'<p class="pipnb-confidential">{esc(confidentiality_line(header))}</p>\n'
        f"<h1>{esc(title)}</h1>\n"
        f'<dl class="pipnb-facts">{facts}</dl>\n'
        + _notes_html(header.get("notes"))
        + _record_html(record)
        + "</div></header>\n"
    )
    return title, block


def _notes_html(notes: Any) -> str:
    if not notes:
        return ""
    items = [notes] if isinstance(notes, str) else list(notes)
    return '<ul class="pipnb-notes">' + "".join(f"<li>{html.escape(str(n))}</li>" for n in items) + "</ul>\n"


def _record_html(record: RunRecord | None) -> str:
    """A run record as one line: "Record: version 2, written 2026-07-01 10:22 UTC; what changed since version 1:
    ..." (empty without a record)."""
    if record is None or not record.written_at:
        return ""
    when = record.written_at.replace("T", " ").replace("Z", " UTC")
    text = f"Record: version {record.version}, written {when}"
    if record.changes:
        text += f"; what changed since version {record.version - 1}: " + "; ".join(record.changes)
    return f'<p class="pipnb-record">{html.escape(text)}.</p>\n'


#: The people who sign a plan, a checkpoint and the final review, and the header key holding their names.
SIGNERS = (("rep", "Rep"), ("manager", "Manager"), ("hr", "HR partner"))


def signoff_html(signoff: Mapping[str, Any]) -> str:
    """The sign-off block: per signer (rep, manager, HR partner) a name (pre-filled when known), a signature and
    a date line. ``signoff`` maps ``rep``/``manager``/``hr`` to names ("" leaves a blank to fill in)."""
    esc = html.escape
    rows = "".join(f'<tr><th scope="row">{label}</th><td class="pipnb-line">{esc(str(signoff.get(key) or ""))}</td>'
                   '<td class="pipnb-line"></td><td class="pipnb-line"></td></tr>' for key, label in SIGNERS)
    return ('<section class="pipnb-signoff">\n<h2>Sign-off</h2>\n<p>Signed to record that this report was read and '
            "discussed; the rep's signature acknowledges receipt, not agreement.</p>\n"
            '<table><thead><tr><th></th><th>Name</th><th>Signature</th><th>Date</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>\n</section>\n")


# --------------------------------------------------------------------------- public API

def export_html(notebook: nbformat.NotebookNode | str | os.PathLike[str], html_path: str | os.PathLike[str],
                *, header: Mapping[str, Any]) -> Path:
    """Write an executed notebook as a self-contained, offline, phone-readable HTML report.

    Parameters
    ----------
    notebook
        The executed notebook, as a ``NotebookNode`` or the path of an ``.ipynb`` file.
    html_path
        Where to write the report; written atomically (a reader never sees half a file).
    header
        What the header block shows, every value HTML-escaped. Keys: ``rep_name``, ``stage``,
        ``as_of``, ``plan_period`` (shown when present), optional ``team``, ``title`` (default
        ``"<stage> — <rep_name>"``), ``audience`` (who it is for when there is no ``rep_name``, e.g. a
        team scan) and ``confidential`` (replaces the confidentiality line). The line defaults to
        "Confidential — prepared for <rep_name> and their manager; do not forward". ``signoff`` (a mapping
        of ``rep``, ``manager``, ``hr`` to names) adds the sign-off block at the end (:func:`signoff_html`).

    Returns
    -------
    Path
        ``html_path``.

    Notes
    -----
    When the notebook carries a :class:`~pipnb.record.RunRecord` (set by :mod:`pipnb.execute`), the page
    records its input hash in a ``<meta name="pipnb-input-hash">`` tag, so a rerun can tell it is up to date.
    """
    import nbformat  # imported here: `import pipnb.report` stays cheap for the command line

    if not isinstance(notebook, (str, os.PathLike)):
        nb, source_dir = notebook, None
    else:
        nb, source_dir = nbformat.read(notebook, as_version=4), str(Path(notebook).resolve().parent)
    cells = _report_cells(nb)
    resources = {"metadata": {"name": Path(html_path).stem, "path": source_dir or ""}, "pipnb_fragment": True}
    body, _ = exporter().from_notebook_node(cells, resources=resources)
    body = align_columns(body)
    record = read_record(nb)
    title, header_block = header_html(header, record)
    if header.get("signoff"):
        body += "\n" + signoff_html(header["signoff"] if isinstance(header["signoff"], Mapping) else {})
    input_hash = record.input_hash if record is not None and re.fullmatch(r"[0-9a-f]+", record.input_hash) else None
    return atomic_write_text(html_path, page(title, header_block, body, input_hash=input_hash))


def install_template(*, user: bool = False, prefix: str | os.PathLike[str] | None = None) -> Path:
    """Register the ``pipnb_report`` template with nbconvert: copy it to ``<prefix>/share/jupyter/nbconvert/
    templates/pipnb_report`` (default this environment's; ``user`` for the user's Jupyter data folder).

    A wheel installs it there already; this serves editable installs (``pip install -e``, which skip data
    files) and is what ``pipnb kernel install`` runs beside the kernelspec. Returns the folder.
    """
    if user:
        from jupyter_core.paths import jupyter_data_dir  # jupyter_core (10-30 ms, on the `pipnb --help` path)

        root = Path(jupyter_data_dir())
    else:
        root = Path(prefix or sys.prefix) / "share" / "jupyter"
    target = root / "nbconvert" / "templates" / TEMPLATE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{TEMPLATE_NAME}.", dir=target.parent))
    try:
        for source in (TEMPLATE_DIR / TEMPLATE_NAME).iterdir():
            shutil.copyfile(source, staging / source.name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)             # the template appears whole
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def notebook_header(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The report header an executed notebook tells by itself: its title, and the rep, stage and as-of date of
    the parameters papermill recorded (what :func:`render` and plain nbconvert show)."""
    params = dict(nb.metadata.get("papermill", {}).get("parameters", {}) or {})
    title = str(nb.metadata.get("title") or "")
    rep = str(params.get("rep_id") or "")
    if not rep and params.get("plan_path"):
        rep = Path(str(params["plan_path"])).stem
    stage = str(params.get("checkpoint") or "")
    header: dict[str, Any] = {"title": " — ".join(p for p in (title, rep) if p) or "pipnb report",
                              "rep_name": rep, "as_of": str(params.get("as_of") or "")}
    if stage:
        try:
            header["stage"] = stage_title("final" if stage == "final" else f"checkpoint-{int(stage)}")
        except (ValueError, PipnbError):
            header["stage"] = stage
    if not rep:
        header["audience"] = "sales managers and sales operations"
    return header


def render(notebook: str | os.PathLike[str], html_path: str | os.PathLike[str] | None = None) -> Path:
    """Export one executed notebook as a report (``pipnb render``): :func:`export_html` with the header of
    :func:`notebook_header`.

    Parameters
    ----------
    notebook
        The executed ``.ipynb`` (e.g. written by papermill).
    html_path
        Where to write the page; default the notebook's path with ``.html``. An existing file is never
        replaced: choose another path.

    Raises
    ------
    PipnbError
        When the notebook cannot be read, was not executed, or ``html_path`` exists.
    """
    import nbformat  # nbformat (90 ms)

    source = Path(notebook)
    target = Path(html_path) if html_path is not None else source.with_suffix(".html")
    if source.suffix != ".ipynb" or not source.is_file():
        raise PipnbError(f"{source}: not an .ipynb file (give the executed notebook, e.g. papermill's output)")
    if target.resolve() == source.resolve():
        raise PipnbError(f"{target}: the report would replace the notebook; give --out NAME.html")
    try:
        nb = nbformat.read(source, as_version=4)
    except (OSError, ValueError, json.JSONDecodeError, nbformat.ValidationError) as err:
        raise PipnbError(f"{source}: not a readable notebook ({one_line(err)})") from None
    if not any(c.get("execution_count") for c in nb.cells if c.cell_type == "code"):
        raise PipnbError(f"{source}: no cell was executed; run it first (papermill {source} OUT.ipynb -p ...)")
    from pipnb.locks import writing  # filelock (50 ms): only a render pays it, not `pipnb --help`

    with writing(target.parent):     # the check and the write: one writer at a time
        if target.exists():
            raise PipnbError(f"{target} exists and is kept (a written report is never replaced): give --out "
                             "another path or move it away")
        return export_html(source, target, header=notebook_header(nb))


class ReportPreprocessor:
    """nbconvert preprocessor of the ``pipnb_report`` template (registered in its ``conf.json``).

    Keeps what a reader sees (see :func:`_report_cells`), lets the template sanitize HTML and Markdown
    with :func:`sanitize_html`, and (unless pipnb's own exporter wraps the page) gives the template the
    page's head and header, from :func:`notebook_header`.

    A plain callable, which nbconvert builds with the ``conf.json`` settings and calls as its own preprocessors:
    a ``Preprocessor`` subclass would load nbconvert (~0.2 s) with this module, which the index imports.
    """

    def __init__(self, enabled: bool = True, **config: Any) -> None:
        self.enabled = enabled

    def __call__(self, nb, resources):
        return self.preprocess(nb, resources) if self.enabled else (nb, resources)

    def preprocess(self, nb, resources):
        nb = _report_cells(nb)
        resources["pipnb_clean"] = sanitize_html
        resources["pipnb_markdown"] = markdown_html
        if not resources.get("pipnb_fragment"):
            title, header_block = header_html(notebook_header(nb), read_record(nb))
            resources["pipnb_page_head"] = _page_head(title, header_block)
            resources["pipnb_page_tail"] = _PAGE_TAIL
        return nb, resources


def read_input_hash(html_path: str | os.PathLike[str]) -> str | None:
    """Return the input hash recorded in a report by :func:`export_html`, or None (no file, no hash)."""
    try:
        with open(html_path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    match = _INPUT_HASH_RE.search(head)
    return match.group(1).decode() if match else None
