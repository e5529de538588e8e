"""Shared fixtures (the demo team, generated once per test session) and the order files run in.

Files holding a test marked ``@pytest.mark.slow(seconds)`` (the seconds the file takes on a quiet machine,
mostly its module fixtures) are collected first, the costliest first; the Makefile runs the files on two workers
with ``--dist loadfile --no-loadscope-reorder``, so xdist hands them out in that order and a long file never
starts last and trails the run (longest-first scheduling). Within a file the order is unchanged.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# Files not marked: their seconds (the sum of their tests' wall time on one of `make test`'s two workers, a quiet
# 2-core machine, measured 2026-12-06 after the forked command line of tests/cliproc.py). A file's own ``slow`` mark
# takes precedence.
UNMARKED_SLOW = {"test_docs.py": 54, "test_signoff.py": 26, "test_attacks.py": 22, "test_install.py": 21,
                 "test_locks.py": 21, "test_untidy_worlds.py": 19, "test_limits.py": 14, "test_check.py": 12,
                 "test_stats.py": 11, "test_plots_inline.py": 10, "test_cluster.py": 9, "test_drafting.py": 9,
                 "test_verify.py": 9, "test_claims.py": 8, "test_plots.py": 7, "test_bundle.py": 7,
                 "test_cliproc.py": 6, "test_selection.py": 6, "test_warnings.py": 6, "test_exports.py": 5,
                 "test_untidy.py": 5, "test_demo.py": 5, "test_stages.py": 5, "test_isolation.py": 5}


def _file(item) -> str:
    return item.nodeid.split("::")[0]


def pytest_collection_modifyitems(config, items):
    """The costliest files first (a stable sort: a file's tests keep their order)."""
    cost: dict[str, float] = {}
    for item in items:
        marks = [float(m.args[0]) if m.args else 1.0 for m in item.iter_markers("slow")]
        seconds = max(marks) if marks else UNMARKED_SLOW.get(Path(_file(item)).name, 0.0)
        cost[_file(item)] = max(cost.get(_file(item), 0.0), seconds)
    items.sort(key=lambda item: -cost[_file(item)])


@pytest.fixture(scope="session")
def demo():
    from pipnb.demo import demo_data

    return demo_data()


@pytest.fixture(scope="session")
def demo_panel(demo):
    from pipnb.metrics import weekly_panel

    return weekly_panel(demo)


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory, demo):
    return demo.write(tmp_path_factory.mktemp("demo") / "demo")


@pytest.fixture(scope="session")
def repo_demo_folder(demo):
    """``data/demo`` inside the checkout, where the notebooks' defaults look (git-ignored)."""
    from pipnb.sources import load

    folder = ROOT / "data" / "demo"
    if not (folder / "reps.csv").exists() or load(folder).fingerprint() != demo.fingerprint():
        demo.write(folder)
    return folder
