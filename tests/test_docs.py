"""Docs whose every example runs (issue 26): every ``sh``/``bash``/``shell`` and ``python`` block of README.md and
``docs/**/*.md`` is run, in order, page by page, in a fresh working folder; and the site builds (``mkdocs build
--strict``, what ``make docs`` runs).

A page's shell blocks run with ``bash -euo pipefail`` and this environment's ``bin`` first on PATH; its python
blocks run in one interpreter per page (a small driver that ``exec``s each block in one namespace), so a later
block sees an earlier one's names, and a shell block between two python blocks sees what the first wrote. A
failing block fails the page with the page, the block's line and first line, and its output. Two pages run at
a time (the machine has two cores; each page in its own folder). Blocks marked ``console``, ``text``, ``yaml``,
``toml`` ... are shown, not run; a block with no language or another one fails (say whether it runs).

Why a runner of our own (about 80 lines) rather than ``pytest-examples`` or ``phmdoctest``: both run Python blocks
only (no shell), and neither runs a page's shell and Python blocks interleaved in one folder; the pages' examples
are mostly commands.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_SHELL, RUN_PYTHON = {"sh", "bash", "shell"}, {"python", "py"}
SHOWN = {"console", "text", "yaml", "toml", "json", "csv", "sql", "html", "ini", "jinja"}
BLOCK_SECONDS = 300
FENCE = re.compile(r"^(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+-]*)[^\n]*$")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(text: str) -> list[tuple[int, str, str]]:
    """(line number, language, code) of every fenced block of a Markdown page, in order."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, start, body = match["fence"], i + 1, []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and not lines[i].strip().strip(fence[0])):
            body.append(lines[i])
            i += 1
        found.append((start, match["lang"].lower(), "\n".join(body) + "\n"))
        i += 1
    return found


# One interpreter per page: reads a block (a JSON line) from stdin, runs it in the page's namespace with its
# output (its subprocesses' too) caught at the file descriptors, answers one JSON line on the original stdout.
DRIVER = r"""
import json, os, sys, tempfile, traceback
answer, namespace = os.fdopen(os.dup(1), "w"), {"__name__": "__main__"}
for line in sys.stdin:
    name, code = json.loads(line)
    caught, saved, ok = tempfile.TemporaryFile(), [os.dup(1), os.dup(2)], True
    os.dup2(caught.fileno(), 1), os.dup2(caught.fileno(), 2)
    try:
        exec(compile(code, name, "exec"), namespace)
    except SystemExit as stop:
        ok = stop.code in (None, 0)
    except BaseException:
        traceback.print_exc()
        ok = False
    sys.stdout.flush(), sys.stderr.flush()
    os.dup2(saved[0], 1), os.dup2(saved[1], 2)
    caught.seek(0)
    answer.write(json.dumps([ok, caught.read().decode(errors="replace")]) + "\n")
    answer.flush()
"""


def environment() -> dict[str, str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               MPLBACKEND="Agg", PIPNB_FORKSERVER_IDLE="30", PYTHONUNBUFFERED="1")
    return {k: v for k, v in env.items() if not k.startswith("PYTEST")}


def run_page(page: Path, folder: Path) -> None:
    """Run every shell and python block of ``page`` in order in ``folder``; fail on the first that fails."""
    env, python = environment(), None
    rel = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page
    try:
        for line, lang, code in blocks(page.read_text(encoding="utf-8")):
            if lang in RUN_SHELL:
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=folder, env=env, text=True,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      timeout=BLOCK_SECONDS)
                ok, output = done.returncode == 0, done.stdout + f"\n(exit code {done.returncode})"
            elif lang in RUN_PYTHON:
                if python is None:
                    python = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=folder, env=env, text=True,
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                python.stdin.write(json.dumps([f"{rel}:{line}", code]) + "\n")
                python.stdin.flush()
                if not select.select([python.stdout], [], [], BLOCK_SECONDS)[0]:
                    pytest.fail(f"{rel}, the block at line {line} ({code.splitlines()[0]!r}): over {BLOCK_SECONDS} s")
                answer = python.stdout.readline()
                ok, output = json.loads(answer) if answer else (False, "the interpreter died")
            else:
                continue
            if not ok:
                first = next((c for c in code.splitlines() if c.strip()), "")
                pytest.fail(f"{rel}, the {lang} block at line {line} failed: {first!r}\n{output[-4000:]}",
                            pytrace=False)
    finally:
        if python is not None:
            python.stdin.close()
            python.wait(timeout=60)


@pytest.fixture(scope="module")
def page_runs(request, tmp_path_factory):
    """The pages this session selected, run two at a time (each in its own fresh folder): page -> its failure."""
    selected = [item.callspec.params["page"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_every_example_runs"]

    def run(page: Path, folder: Path) -> str | None:
        try:
            run_page(page, folder)
        except pytest.fail.Exception as failed:
            return str(failed.value)
        except Exception as error:                                     # a time-out, a vanished folder ...
            return f"{page.name}: {error!r}"
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {page: pool.submit(run, page, tmp_path_factory.mktemp("page")) for page in selected}


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_runs(page, page_runs):
    failure = page_runs[page].result()
    if failure:
        pytest.fail(failure, pytrace=False)


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_says_whether_it_runs(page):
    unknown = [(line, lang) for line, lang, _ in blocks(page.read_text(encoding="utf-8"))
               if lang not in RUN_SHELL | RUN_PYTHON | SHOWN]
    assert not unknown, f"{page.name}: blocks with no language or an unknown one (line, language): {unknown}"


def test_the_runner_shares_a_pages_folder_and_names_and_reports_a_failing_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh\necho 1 > one.txt\n```\n\n```python\nx = open('one.txt').read().strip()\n```\n\n"
                    "```console\nexit 1\n```\n\n```python\nprint('x is', x)\n```\n\n"
                    "```sh\ntest -f one.txt\necho about to fail\nfalse\necho never\n```\n")
    folder = tmp_path / "work"
    folder.mkdir()
    with pytest.raises(pytest.fail.Exception) as failed:
        run_page(page, folder)
    message = str(failed.value)
    assert "sh block at line 17 failed: 'test -f one.txt'" in message and "about to fail" in message
    assert "never" not in message and "(exit code 1)" in message
    page.write_text("```python\nimport sys; print('to stderr', file=sys.stderr); 1 / 0\n```\n")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)python block at line 1 failed.*to stderr.*ZeroDivision"):
        run_page(page, folder)


def test_the_blocks_parser_keeps_order_languages_and_nested_fences():
    text = "a\n```python\nprint(1)\n```\n````text\n```sh\nnot a block\n```\n````\n```\nbare\n```\n"
    assert blocks(text) == [(2, "python", "print(1)\n"), (5, "text", "```sh\nnot a block\n```\n"), (10, "", "bare\n")]


def test_the_readme_is_the_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in ("index", "guide", "data", "statistics", "operations", "architecture", "reference"):
        assert f"docs/{page}.md" in readme, page
    assert "make demo" in readme and "make test" in readme


def test_the_site_builds(tmp_path):
    """What ``make docs`` runs: every page, the API reference from the docstrings, no warning (--strict)."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=BLOCK_SECONDS)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    for name in ("pipnb.sources.load", "pipnb.diagnosis.diagnose", "pipnb.drafting.draft_plan",
                 "pipnb.reviews.review", "pipnb.errors.PipnbError"):
        assert f'id="{name}"' in reference, name
    scripts = {src for page in (tmp_path / "site").rglob("*.html")
               for src in re.findall(r'src="([^"]+)"', page.read_text())}
    assert not {src for src in scripts if "//" in src}, "a page loads something from the internet"
