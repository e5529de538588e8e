"""pyproject.toml and environment.yml name the same dependencies with the same bounds."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalize(spec: str) -> tuple[str, str]:
    name, bound = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", spec).groups()
    return name.lower().replace("_", "-"), bound.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_normalize(s) for s in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_normalize(s) for s in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_normalize(s) for s in env["dependencies"] if isinstance(s, str)}
    conda = {(n, b) for n, b in conda if n not in ("python", "pip")}
    assert conda == wanted


def test_nbconvert_has_the_security_fixes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "nbconvert>=7.17.1" in project["dependencies"]
