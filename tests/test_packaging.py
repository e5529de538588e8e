"""pyproject.toml and the conda files name the same dependencies with the same bounds, by parsed names.

``environment.yml`` holds the runtime dependencies only, ``environment-test.yml`` the test extras, each under its
conda-forge name (:data:`CONDA_NAMES`); neither installs the test tools by default nor anything pip-only.
pyproject.toml lists pipnb's packages, the top-level ``notebooks/`` among them (shipped as ``pipnb/notebooks``).
"""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"playwright": "playwright-python"}


def _normalize(spec: str) -> tuple[str, str]:
    name, bound = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", spec).groups()
    name = name.lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), bound.replace(" ", "")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _conda(name: str) -> set[tuple[str, str]]:
    env = yaml.safe_load((ROOT / name).read_text())
    assert env["channels"] == ["conda-forge"]
    assert all(isinstance(s, str) for s in env["dependencies"]), "no pip section: it would need a checkout"
    return {_normalize(s) for s in env["dependencies"] if not s.startswith("python")}


def test_environment_yml_is_the_runtime_dependencies():
    assert _conda("environment.yml") == {_normalize(s) for s in _project()["dependencies"]}


def test_environment_test_yml_is_the_test_extras():
    assert _conda("environment-test.yml") == {_normalize(s) for s in _project()["optional-dependencies"]["test"]}


def test_playwright_has_its_conda_forge_name():
    names = {n for n, _ in _conda("environment-test.yml")}
    assert "playwright-python" in names and "playwright" not in names


@pytest.mark.parametrize("tool", ["jupyterlab", "pytest", "nbval", "playwright", "dask", "distributed"])
def test_the_runtime_installs_no_test_lab_or_cluster_tools(tool):
    assert tool not in {n for n, _ in (_normalize(s) for s in _project()["dependencies"])}


def test_the_extras_are_there():
    extras = _project()["optional-dependencies"]
    assert {_normalize(s)[0] for s in extras["lab"]} == {"jupyterlab"}
    assert {_normalize(s)[0] for s in extras["dask"]} == {"dask", "distributed"}
    assert set(extras["dask"]) <= set(extras["test"])          # the tests run a local Dask cluster
    assert {_normalize(s)[0] for s in extras["docs"]} == {"mkdocs", "mkdocstrings", "mkdocstrings-python"}
    assert set(extras["docs"]) <= set(extras["test"])          # tests/test_docs.py builds the site


def test_nbconvert_has_the_security_fixes():
    assert "nbconvert>=7.17.1" in _project()["dependencies"]


def test_the_runtime_dependencies_are_imported_by_pipnb():
    """Every runtime dependency is imported somewhere in the package (else it belongs in an extra)."""
    imported = {"pyyaml": "yaml", "ipykernel": "ipykernel"}
    source = "\n".join(p.read_text() for p in (ROOT / "pipnb").rglob("*.py"))
    for spec in _project()["dependencies"]:
        name = _normalize(spec)[0]
        module = imported.get(name, name.replace("-", "_"))
        assert re.search(rf"^\s*(import|from) {module}\b", source, re.M) or name == "ipykernel" and \
            "ipykernel" in source, name


def test_every_folder_of_pipnb_is_a_listed_package_and_the_notebooks_ship_inside_it():
    """The packages are listed, not discovered (one lives outside pipnb/): a new folder of pipnb/ must be added,
    else the wheel would leave it out; ``pipnb.notebooks`` is the checkout's top-level ``notebooks/``."""
    from setuptools import find_namespace_packages

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {p for p in find_namespace_packages(str(ROOT), include=["pipnb", "pipnb.*"]) if "__pycache__" not in p}
    assert set(setuptools["packages"]) == folders | {"pipnb.notebooks"}
    assert setuptools["package-dir"] == {"pipnb.notebooks": "notebooks"}
    assert setuptools["package-data"]["pipnb.notebooks"] == ["*.ipynb"]
    assert not (ROOT / "pipnb" / "notebooks").exists()              # one copy: the top-level folder
    assert len(list((ROOT / "notebooks").glob("*.ipynb"))) == 5


def test_the_license_is_an_spdx_string_with_its_file_and_installing_warns_nothing_about_it():
    """PEP 639: ``license = "MIT"`` and ``license-files`` (setuptools 77 on), not the deprecated table that made
    every install print setuptools' ``project.license`` warning twice."""
    import subprocess
    import sys

    project = _project()
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert not any("License ::" in c for c in project.get("classifiers", []))       # deprecated beside it
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    [setuptools] = [r for r in requires if r.startswith("setuptools")]
    assert tuple(int(n) for n in setuptools.split(">=")[1].split(".")) >= (77,)
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                             "--dry-run", "--no-input", "-e", str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    said = (result.stdout + result.stderr).lower()
    assert "project.license" not in said and "license classifiers" not in said and "deprecat" not in said, said
