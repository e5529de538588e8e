"""The house: no import cycle, no module over 600 lines, one visible public API.

The layers themselves are import-linter's contract in ``pyproject.toml`` (``make test`` runs ``lint-imports``);
these tests pin what a layers contract cannot say. The import graph is grimp's (import-linter's engine), which
reads every import statement, those inside functions and under ``TYPE_CHECKING`` included.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import pipnb

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipnb"
MAX_LINES = 600


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("pipnb", cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_finds_a_cycle():
    """The check below can fail: a graph with a three-module loop (one import inside a function) has one."""
    g = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c", "p.d"):
        g.add_module(name)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.c")
    g.add_import(importer="p.c", imported="p.a", line_number=12, line_contents="    from p.a import x")
    g.add_import(importer="p.d", imported="p.a")
    assert _cycles(g) == [["p.a", "p.b", "p.c"]]


def test_no_import_cycle_counting_imports_inside_functions(graph):
    assert _cycles(graph) == []


def test_no_module_over_600_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}


def _function_level_imports(tree: ast.AST):
    """Import statements inside a function body (at any depth)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield inner


def test_an_import_inside_a_function_says_why():
    """Only an optional or heavy dependency is imported inside a function, with a comment on the import or the
    line above it naming which (never to dodge a cycle: that is what the cycle test is for)."""
    silent = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        seen = set()
        for node in _function_level_imports(ast.parse("\n".join(lines))):
            if node.lineno in seen:
                continue
            seen.add(node.lineno)
            here = " ".join(lines[node.lineno - 1:node.end_lineno])
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            if "#" not in here and not above.startswith("#"):
                silent.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert silent == []


def test_the_public_api_is_what_editors_see():
    """Every name of ``pipnb.__all__`` resolves, and the ``TYPE_CHECKING`` imports name the same homes as the
    lazy table (an editor and the running package agree)."""
    for name in pipnb.__all__:
        assert getattr(pipnb, name) is not None, name
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    checked = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                for alias in imp.names:
                    home = imp.module if imp.module != "pipnb" else f"pipnb.{alias.name}"
                    checked[alias.name] = home
    lazy = {name: module for module, names in pipnb._HOMES.items() for name in names}
    lazy |= {name: f"pipnb.{name}" for name in pipnb._MODULES}
    assert checked == lazy
    assert sorted(pipnb.__all__) == sorted([*lazy, "__version__"])
    for name, module in lazy.items():
        owner = importlib.import_module(module)
        assert owner is getattr(pipnb, name) or getattr(owner, name) is getattr(pipnb, name)


def test_the_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_importing_pipnb_loads_no_submodule_but_its_version():
    """``import pipnb`` stays cheap: the names load on first use."""
    code = "import sys, pipnb; print(sorted(m for m in sys.modules if m.startswith('pipnb')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['pipnb', 'pipnb._lazy', 'pipnb._version']"
