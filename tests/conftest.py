"""Shared fixtures: the demo team, generated once per test session."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
