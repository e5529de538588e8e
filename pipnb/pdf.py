"""A PDF beside each HTML report, for the HR file: printed by headless Chromium.

:func:`print_pdf` prints ``reports/R07/plan.html`` to ``reports/R07/plan.pdf`` (a later version's
``plan.v2.html`` to ``plan.v2.pdf``) on A4 or US Letter. Chromium is driven over its DevTools protocol on a
pipe (``--remote-debugging-pipe``: no port, no library), so that the footer of every page -- the report's
confidentiality line and "Page N of M" -- is Chromium's own footer template: HTML built from escaped text
(:func:`footer_template`). Nothing from the data is ever placed in a stylesheet: a rep's name there could close
the ``<style>`` element and restyle or forge the page (issue 24). The print stylesheet added to a temporary copy
of the page is constant (:func:`print_css`): the paper and margins, charts, table rows and the sign-off block
kept whole (``break-inside: avoid``), and a heading, with the text introducing its section, kept on the page of
what follows (``break-after: avoid``: no heading is left at the foot of a page with its chart on the next). The
PDF is written through a rename (never half a file), and is left as it is when it is newer than its HTML and
already on the asked paper; a checkpoint or final review's PDF, once printed, is never replaced.

Chromium is looked for as ``$PIPNB_CHROMIUM``, then ``chromium``, ``chromium-browser``, ``google-chrome`` on
the PATH; without it, :class:`~pipnb.errors.PdfError` says so in one line (install Debian's ``chromium``).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pipnb.errors import PipnbError
from pipnb.io import atomic_path
from pipnb.locks import writing
from pipnb.progress import one_line
from pipnb.stages import FINAL, checkpoint_number

__all__ = ["PAPERS", "PdfError", "find_chromium", "footer_template", "pdf_path", "print_pdf", "print_pdfs", "whole_pdf"]

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
    """The print stylesheet: paper, margins, nothing split that should stay whole. Constant text: nothing in it
    comes from the data (the footer is :func:`footer_template`)."""
    size = PAPERS[paper][0]
    return (
        "@page { size: " + size + "; margin: 14mm 13mm 18mm 13mm; }\n"
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
        if not whole_pdf(out):
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
    styled = page.replace("</head>", f"<style>{print_css(paper)}</style>\n</head>", 1)
    chromium = chromium or find_chromium()
    with tempfile.TemporaryDirectory(prefix="pipnb-pdf-") as tmp, atomic_path(out) as tmp_pdf:
        copy = Path(tmp) / "page.html"
        copy.write_text(styled, encoding="utf-8")
        data = _print_to_pdf(chromium, copy.as_uri(), Path(tmp) / "profile", footer_template(confidential), source)
        if data[:5] != b"%PDF-":
            raise PdfError(f"{source}: chromium did not print it (it answered with no PDF)")
        tmp_pdf.write_bytes(data)
    return out


def footer_template(confidential: str) -> str:
    """Every page's footer, as Chromium's footer template: the confidentiality line (escaped text, cut with an
    ellipsis when long) on the left, "Page N of M" on the right. HTML built from escaped text only."""
    return ('<div style="font: 7.5pt system-ui, sans-serif; box-sizing: border-box; width: 100%; '
            'padding: 0 13mm 2mm; display: flex; justify-content: space-between; gap: 2em">'
            '<span style="color: #9a3412; flex: 1 1 auto; min-width: 0; white-space: nowrap; overflow: hidden; '
            f'text-overflow: ellipsis">{html.escape(confidential)}</span>'
            '<span style="color: #59636e; flex: none; white-space: nowrap">Page <span class="pageNumber"></span> of '
            '<span class="totalPages"></span></span></div>')


#: Run a command with two file descriptors as its fds 3 and 4 (where ``--remote-debugging-pipe`` talks).
_ON_FDS_3_AND_4 = ("import fcntl, os, sys; a, b = (fcntl.fcntl(int(f), fcntl.F_DUPFD, 10) for f in sys.argv[1:3]); "
                   "os.dup2(a, 3); os.dup2(b, 4); os.execvp(sys.argv[3], sys.argv[3:])")


def _print_to_pdf(chromium: str, url: str, profile: Path, footer: str, source: Path) -> bytes:
    """Print ``url`` with Chromium's DevTools protocol over a pipe (fd 3 in, fd 4 out): open it, wait for it to
    load, ``Page.printToPDF`` with the page's own paper size and ``footer``; the PDF's bytes."""
    theirs_in, to_chromium = os.pipe()
    ours_out, from_chromium = os.pipe()
    command = [sys.executable, "-c", _ON_FDS_3_AND_4, str(theirs_in), str(from_chromium), chromium,
               "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-extensions", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
               "--remote-debugging-pipe", "about:blank"]
    log = profile.with_name("chromium.log")
    try:
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                    pass_fds=(theirs_in, from_chromium))
    except OSError as err:
        os.close(to_chromium)
        os.close(ours_out)
        raise PdfError(f"cannot run {chromium}: {err.strerror or err}") from None
    finally:
        os.close(theirs_in)
        os.close(from_chromium)
    session = _DevTools(to_chromium, ours_out, time.monotonic() + TIMEOUT)
    try:
        target = session.call("Target.createTarget", url="about:blank")["targetId"]
        session.id = session.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        session.call("Page.enable")
        session.call("Page.navigate", url=url)
        session.wait_for("Page.loadEventFired")
        printed = session.call("Page.printToPDF", printBackground=True, preferCSSPageSize=True,
                               displayHeaderFooter=True, headerTemplate="<span></span>", footerTemplate=footer)
        return base64.b64decode(printed["data"])
    except TimeoutError:
        failure = f"chromium took more than {TIMEOUT} s to print it"
    except (OSError, EOFError, KeyError, ValueError) as err:
        failure = f"chromium did not print it ({type(err).__name__}: {one_line(err)}; {_last_line(log)})"
    finally:
        _close(session, proc)
    raise PdfError(f"{source}: {failure}")


def _close(session: _DevTools, proc: subprocess.Popen) -> None:
    """Ask Chromium to quit, then make sure it has; close the pipe."""
    try:
        session.id, session.deadline = None, time.monotonic() + 5
        session.call("Browser.close")
    except (OSError, EOFError, TimeoutError, ValueError):
        pass
    os.close(session.write_fd)
    os.close(session.read_fd)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return one_line(lines[-1]) if lines else "no output"


class _DevTools:
    """One DevTools session over Chromium's pipe: messages are JSON, each ended by a NUL byte."""

    def __init__(self, write_fd: int, read_fd: int, deadline: float):
        self.write_fd, self.read_fd, self.deadline = write_fd, read_fd, deadline
        self.id: str | None = None
        self._next, self._buffer = 0, b""

    def call(self, method: str, **params) -> dict:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self._next += 1
        message = {"id": self._next, "method": method, "params": params}
        if self.id is not None:
            message["sessionId"] = self.id
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._receive()
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise ValueError(f"{method}: {answer['error'].get('message', answer['error'])}")
                return answer["result"]

    def wait_for(self, event: str) -> None:
        while not (self._receive().get("method") == event):
            pass

    def _receive(self) -> dict:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)


def print_pdfs(paths: Iterable[str | os.PathLike[str]], *, paper: Paper = "a4", force: bool = False) -> list[Path]:
    """Print several reports (Chromium is looked for once); returns the PDFs in order. The reports folders they
    are in are locked while they are printed (one writer at a time, :mod:`pipnb.locks`; a run that prints its
    reports already holds the lock)."""
    paths = list(paths)
    chromium = find_chromium() if paths else None
    with writing(*{_reports_folder(Path(p)) for p in paths}):
        return [print_pdf(p, paper=paper, chromium=chromium, force=force) for p in paths]


def _reports_folder(source: Path) -> Path:
    """The folder whose lock a PDF of ``source`` is written under: the reports folder of a rep's (or the team's)
    report (``reports/<rep>/x.html``: the folder holding ``rep.json``, or one whose parent holds the index), else
    the report's own folder."""
    folder = source.expanduser().resolve().parent
    if (folder / "rep.json").is_file() or (folder.parent / "index.html").is_file():
        return folder.parent
    return folder


def _frozen(source: Path) -> bool:
    """Whether the report is a checkpoint or final review (``checkpoint-2.html``, ``final.v3.html``): its files
    are each written once and never replaced."""
    stage = re.sub(r"\.v[1-9][0-9]*\Z", "", source.stem)
    return stage == FINAL or checkpoint_number(stage) is not None


def whole_pdf(path: str | os.PathLike[str]) -> bool:
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
