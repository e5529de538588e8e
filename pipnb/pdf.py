"""A PDF beside each HTML report, for the HR file: printed by headless Chromium.

:func:`print_pdf` prints ``reports/R07/plan.html`` to ``reports/R07/plan.pdf`` (a later version's
``plan.v2.html`` to ``plan.v2.pdf``) on A4 or US Letter. Chromium's own ``--print-to-pdf`` cannot take a
footer template, so the footer is CSS paged media: a print stylesheet added to a temporary copy of the page
puts "page N of M" in every page's bottom-right margin box (``@page { @bottom-right {...} }``, supported by
Chromium since version 131), and the report's confidentiality line, as escaped HTML text in an element fixed
in the bottom margin, on every page. Nothing from the data is ever placed in the stylesheet (a rep's name
there could close the ``<style>`` element and restyle or forge the page); the stylesheet is constant. It keeps charts,
table rows and the sign-off block whole (``break-inside: avoid``), and keeps a heading, with the text
introducing its section, on the page of what follows (``break-after: avoid``: no heading is left at the foot
of a page with its chart on the next). No library is needed: the page has no
script, and Chromium's command line does all of it. The PDF is written through a rename (never half a file),
and is left as it is when it is newer than its HTML and already on the asked paper.

Chromium is looked for as ``$PIPNB_CHROMIUM``, then ``chromium``, ``chromium-browser``, ``google-chrome`` on
the PATH; without it, :class:`~pipnb.errors.PdfError` says so in one line (install Debian's ``chromium``).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pipnb.errors import PipnbError
from pipnb.io import atomic_path
from pipnb.stages import FINAL, checkpoint_number

__all__ = ["PAPERS", "PdfError", "find_chromium", "pdf_path", "print_pdf", "print_pdfs"]

Paper = Literal["a4", "letter"]
#: Paper sizes: the CSS ``size`` and the page's width × height in PDF points (1/72 inch).
PAPERS: dict[str, tuple[str, tuple[float, float]]] = {"a4": ("A4", (595.3, 841.9)),
                                                      "letter": ("letter", (612.0, 792.0))}
#: Seconds one page may take to print.
TIMEOUT = 180

_CONFIDENTIAL_RE = re.compile(r'<p class="pipnb-confidential">(.*?)</p>', re.S)
_MEDIABOX_RE = re.compile(rb"/MediaBox\s*\[\s*0\s+0\s+([0-9.]+)\s+([0-9.]+)\s*\]")


class PdfError(PipnbError):
    """A PDF that cannot be printed: no Chromium, not an HTML report, or Chromium failed (exit code 1)."""

    exit_code = 1


def find_chromium() -> str:
    """The Chromium executable to print with.

    Raises
    ------
    PdfError
        When there is none.
    """
    wanted = os.environ.get("PIPNB_CHROMIUM")
    if wanted:
        if shutil.which(wanted):
            return str(shutil.which(wanted))
        raise PdfError(f"PIPNB_CHROMIUM={wanted} is not an executable; point it at chromium or unset it")
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise PdfError("cannot print PDFs: no chromium found; install Debian's chromium (apt-get install -y chromium, "
                   "or make browser) or set PIPNB_CHROMIUM to a Chromium executable")


def pdf_path(html_path: str | os.PathLike[str]) -> Path:
    """Where the PDF of a report goes: beside it, ``.pdf`` for ``.html``."""
    return Path(html_path).with_suffix(".pdf")


def print_css(paper: Paper) -> str:
    """The print stylesheet: paper, margins, the page numbers and the place of the footer on every page, nothing
    split that should stay whole. Constant text: nothing in it comes from the data."""
    size = PAPERS[paper][0]
    return (
        "@page { size: " + size + "; margin: 14mm 13mm 18mm 13mm;\n"
        '  @bottom-right { content: "Page " counter(page) " of " counter(pages); font: 7.5pt system-ui, sans-serif;'
        " color: #59636e; } }\n"
        "body { font-size: 10pt; }\n"
        # the confidentiality line: fixed, so on every page, in the bottom margin beside the page numbers
        ".pipnb-print-footer { position: fixed; bottom: -10.5mm; left: 0; max-width: 62%; overflow: hidden; "
        "white-space: nowrap; text-overflow: ellipsis; font: 7.5pt system-ui, sans-serif; color: #9a3412; }\n"
        "table { font-size: 7.5pt; width: 100%; } th, td { padding: 2px 4px; }\n"
        "main, .pipnb-header > div { max-width: none; }\n"
        ".pipnb-header { background: none; }\n"
        "img, svg, figure, tr, .jp-OutputArea-output:has(img), .pipnb-signoff { break-inside: avoid; }\n"
        "h1, h2, h3, h4 { break-after: avoid; }\n"
        # a section's heading and its introduction stay on the page of the chart or table they introduce
        ".jp-MarkdownCell:has(h1, h2, h3, h4) { break-inside: avoid; break-after: avoid; }\n"
        # a chart's panels two to a row on paper (one to a row on a phone)
        ".jp-OutputArea-child:has(> .jp-RenderedImage):has(+ .jp-OutputArea-child > .jp-RenderedImage),\n"
        ".jp-OutputArea-child:has(> .jp-RenderedImage) + .jp-OutputArea-child:has(> .jp-RenderedImage) "
        "{ max-width: calc(50% - .5rem); }\n"
        ".jp-OutputArea-output, .jp-RenderedMarkdown, .pipnb-table-wrap { overflow: visible; }\n"
        "img { max-height: 230mm; }\n"
    )


def print_pdf(html_path: str | os.PathLike[str], *, paper: Paper = "a4", chromium: str | None = None,
              force: bool = False) -> Path:
    """Print one HTML report to a PDF beside it.

    Parameters
    ----------
    html_path
        A report written by pipnb (:func:`pipnb.report.export_html`).
    paper
        ``"a4"`` or ``"letter"``.
    chromium
        The executable (default :func:`find_chromium`).
    force
        Print even when the PDF is newer than the HTML and on the same paper (a checkpoint or final review's
        PDF, once printed, is kept whatever is asked: its files are never replaced).

    Returns
    -------
    Path
        The PDF.

    Raises
    ------
    PdfError
        No Chromium, a file that is not an HTML report, a print that failed (nothing is left behind), or a
        review's PDF that is damaged (it is kept; a new run of the review writes a new version).
    """
    source = Path(html_path)
    if paper not in PAPERS:
        raise PdfError(f"paper {paper!r} is not one of {', '.join(PAPERS)}")
    if source.suffix != ".html" or not source.is_file():
        raise PdfError(f"{source}: not an HTML report (give the .html file pipnb wrote)")
    out = pdf_path(source)
    if _frozen(source) and (out.exists() or out.is_symlink()):
        if not _whole_pdf(out):
            raise PdfError(f"{out}: damaged (not a whole PDF); a review's PDF is never replaced: run the review "
                           "again to write a new version beside it")
        return out                                  # a review's PDF, like its notebook and HTML, is frozen
    if not force and _up_to_date(out, source, paper):
        return out
    page = source.read_text(encoding="utf-8")
    match = _CONFIDENTIAL_RE.search(page)
    if "</head>" not in page or match is None:
        raise PdfError(f"{source}: not a pipnb report (no report header); rebuild it with pipnb")
    confidential = html.unescape(re.sub(r"<[^>]+>", "", match.group(1)))
    styled = _with_footer(page.replace("</head>", f"<style>{print_css(paper)}</style>\n</head>", 1), confidential)
    chromium = chromium or find_chromium()
    with tempfile.TemporaryDirectory(prefix="pipnb-pdf-") as tmp, atomic_path(out) as tmp_pdf:
        copy = Path(tmp) / "page.html"
        copy.write_text(styled, encoding="utf-8")
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                   "--disable-extensions", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp}/profile",
                   "--no-pdf-header-footer", f"--print-to-pdf={tmp_pdf}", copy.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"{source}: chromium took more than {TIMEOUT} s to print it") from None
        except OSError as err:
            raise PdfError(f"cannot run {chromium}: {err.strerror or err}") from None
        if not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0 or not tmp_pdf.read_bytes()[:5] == b"%PDF-":
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise PdfError(f"{source}: chromium did not print it (exit {done.returncode}: {last})")
    return out


def print_pdfs(paths: Iterable[str | os.PathLike[str]], *, paper: Paper = "a4", force: bool = False) -> list[Path]:
    """Print several reports (Chromium is looked for once); returns the PDFs in order."""
    paths = list(paths)
    chromium = find_chromium() if paths else None
    return [print_pdf(p, paper=paper, chromium=chromium, force=force) for p in paths]


def _frozen(source: Path) -> bool:
    """Whether the report is a checkpoint or final review (``checkpoint-2.html``, ``final.v3.html``): its files
    are each written once and never replaced."""
    stage = re.sub(r"\.v[1-9][0-9]*\Z", "", source.stem)
    return stage == FINAL or checkpoint_number(stage) is not None


def _whole_pdf(path: Path) -> bool:
    """A file that starts like a PDF and ends like one (a print cut short does not)."""
    try:
        with open(path, "rb") as f:
            start = f.read(5)
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 1024))
            return start == b"%PDF-" and f.read().rstrip().endswith(b"%%EOF")
    except OSError:
        return False


def _up_to_date(out: Path, source: Path, paper: Paper) -> bool:
    """The PDF exists, is newer than its HTML, and its first page has the asked paper size."""
    try:
        if out.stat().st_mtime < source.stat().st_mtime:
            return False
        head = out.read_bytes()
    except OSError:
        return False
    match = _MEDIABOX_RE.search(head)
    if match is None:
        return False
    width, height = float(match.group(1)), float(match.group(2))
    want = PAPERS[paper][1]
    return abs(width - want[0]) < 2 and abs(height - want[1]) < 2


def _with_footer(page: str, confidential: str) -> str:
    """``page`` with the confidentiality line, as escaped text, in the element the print stylesheet fixes in
    every page's bottom margin (placed before the last ``</body>``: data in the page is escaped, so the last one
    is the page's own)."""
    footer = f'<div class="pipnb-print-footer" aria-hidden="true">{html.escape(confidential)}</div>\n'
    head, found, tail = page.rpartition("</body>")
    return f"{head}{footer}{found}{tail}" if found else page + footer
