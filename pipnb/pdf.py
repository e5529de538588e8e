"""A PDF beside each HTML report, for the HR file: printed by headless Chromium.

:func:`print_pdf` prints ``reports/R07/plan.html`` to ``reports/R07/plan.pdf`` (a later version's
``plan.v2.html`` to ``plan.v2.pdf``) on A4 or US Letter. Chromium's own ``--print-to-pdf`` cannot take a
footer template, so the footer is CSS paged media: a print stylesheet added to a temporary copy of the page
puts the report's confidentiality line and "page N of M" in every page's bottom margin boxes (``@page {
@bottom-left {...} @bottom-right {...} }``, supported by Chromium since version 131), keeps charts,
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


def print_css(confidential: str, paper: Paper) -> str:
    """The print stylesheet: paper, margins, the footer on every page, nothing split that should stay whole."""
    size = PAPERS[paper][0]
    return (
        "@page { size: " + size + "; margin: 14mm 13mm 18mm 13mm;\n"
        "  @bottom-left { content: " + _css_string(confidential) + "; font: 7.5pt system-ui, sans-serif; "
        "color: #9a3412; }\n"
        '  @bottom-right { content: "Page " counter(page) " of " counter(pages); font: 7.5pt system-ui, sans-serif;'
        " color: #59636e; } }\n"
        "body { font-size: 10pt; }\n"
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
        Print even when the PDF is newer than the HTML and on the same paper.

    Returns
    -------
    Path
        The PDF.

    Raises
    ------
    PdfError
        No Chromium, a file that is not an HTML report, or a print that failed (nothing is left behind).
    """
    source = Path(html_path)
    if paper not in PAPERS:
        raise PdfError(f"paper {paper!r} is not one of {', '.join(PAPERS)}")
    if source.suffix != ".html" or not source.is_file():
        raise PdfError(f"{source}: not an HTML report (give the .html file pipnb wrote)")
    out = pdf_path(source)
    if not force and _up_to_date(out, source, paper):
        return out
    page = source.read_text(encoding="utf-8")
    match = _CONFIDENTIAL_RE.search(page)
    if "</head>" not in page or match is None:
        raise PdfError(f"{source}: not a pipnb report (no report header); rebuild it with pipnb")
    confidential = html.unescape(re.sub(r"<[^>]+>", "", match.group(1)))
    styled = page.replace("</head>", f"<style>{print_css(confidential, paper)}</style>\n</head>", 1)
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


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal (quotes, backslashes and line breaks escaped)."""
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\{ord(c):x} " for c in text)
    return f'"{escaped}"'
