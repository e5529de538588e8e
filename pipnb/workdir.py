"""Where pipnb's files are: what ships inside the package, and a user's working folder.

The package carries everything a run needs (an installed wheel works in any folder):

* the lifecycle notebooks (``pipnb/notebooks/`` in the wheel, from the checkout's top-level ``notebooks/``),
* the default policy (``pipnb/resources/policy.yaml``),
* the nbconvert report template (``pipnb/templates/pipnb_report``, also installed where nbconvert looks).

A *working folder* is where a team's files live; ``pipnb init`` creates one::

    params/policy.yaml     the settings, a copy of the default policy to edit
    params/plans/          the plan YAMLs (one per rep)
    reports/               the HTML reports and executed notebooks
    notebooks/             optional (``pipnb init --notebooks``): copies of the notebooks to customise;
                           when present they take precedence over the packaged ones

A folder is a working folder when it holds ``params/policy.yaml`` or ``params/plans/``.

A rep's files there are named by the helpers here, the only way a rep id becomes a file name:
:func:`safe_name` maps ids to folder names one to one even on case-insensitive file systems (macOS, Windows),
and :func:`rep_dir` and :func:`plan_path` can never point outside ``reports/`` or ``params/plans/``. A rep's
reports folder holds ``rep.json`` (their display name, team and manager, written by :func:`remember_rep` when
a job is built, read by :func:`rep_info`) beside their reports.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipnb.errors import PipnbError
from pipnb.io import atomic_path, atomic_write_text

__all__ = ["DEFAULT_POLICY", "NOTEBOOK_DIR", "Init", "find_workdir", "init", "notebook", "plan_path", "policy_file",
           "remember_rep", "rep_dir", "rep_info", "safe_name"]

PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped_notebooks() -> Path:
    """The folder of the lifecycle notebooks pipnb ships.

    The source is the checkout's top-level ``notebooks/``; the wheel carries it as the package data of
    ``pipnb.notebooks`` (``pipnb/notebooks/``, see pyproject.toml). An editable install or a checkout on the path
    has no ``pipnb/notebooks/``: its notebooks are the checkout's own, beside ``pipnb/``.
    """
    packaged = PACKAGE_DIR / "notebooks"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "notebooks"


#: The lifecycle notebooks shipped with pipnb (see :func:`_shipped_notebooks`).
NOTEBOOK_DIR = _shipped_notebooks()
DEFAULT_POLICY = PACKAGE_DIR / "resources" / "policy.yaml"

#: Ids kept as they are: upper-case letters, digits, ``_`` and ``-`` (one spelling per name, whatever the
#: file system's case rules); any other id becomes ``<slug>~<hash>``, and ``~`` never occurs in a kept id.
_PLAIN = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,63}")
_DEVICES = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])", re.IGNORECASE)   # reserved names on Windows


def is_workdir(folder: Path) -> bool:
    """Whether ``folder`` is a pipnb working folder (it holds ``params/policy.yaml`` or ``params/plans/``)."""
    return (folder / "params" / "policy.yaml").is_file() or (folder / "params" / "plans").is_dir()


def find_workdir(start: str | Path | None = None) -> Path | None:
    """The nearest working folder at or above ``start`` (default: the current directory), or None.

    A notebook opened in JupyterLab runs in its own folder (``<work>/notebooks``); this finds ``<work>``.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_workdir(folder):
            return folder
    return None


def notebook(name: str, workdir: str | Path | None = None) -> Path:
    """The notebook ``name`` (``10-diagnose.ipynb``): the working folder's copy when it has one, else pipnb's."""
    if workdir is not None:
        local = Path(workdir) / "notebooks" / name
        if local.is_file():
            return local.resolve()
    return NOTEBOOK_DIR / name


def policy_file(path: str | Path | None = None, *, params: str | Path | None = None) -> Path:
    """The policy YAML to use: ``path`` when given, else ``<params>/policy.yaml`` when it exists (``params``
    defaults to the nearest working folder's), else the policy shipped with pipnb."""
    if path:
        return Path(path).expanduser().resolve()
    if params is None:
        work = find_workdir()
        params = work / "params" if work is not None else None
    if params is not None and (Path(params) / "policy.yaml").is_file():
        return (Path(params) / "policy.yaml").resolve()
    return DEFAULT_POLICY


@dataclass(frozen=True)
class Init:
    """What :func:`init` did: the files and folders it created, and those it found and kept."""

    folder: Path
    created: tuple[Path, ...]
    kept: tuple[Path, ...]


def init(folder: str | Path = ".", *, notebooks: bool = False) -> Init:
    """Create a working folder (see the module docstring); nothing that exists is overwritten.

    Parameters
    ----------
    folder
        The folder (created when missing).
    notebooks
        Also copy the lifecycle notebooks to ``notebooks/`` (they then take precedence over pipnb's).

    Raises
    ------
    PipnbError
        When ``folder`` (or a path it needs) exists as a file.
    """
    folder = Path(folder).expanduser().resolve()
    created: list[Path] = []
    kept: list[Path] = []
    dirs = [folder, folder / "params", folder / "params" / "plans", folder / "reports"]
    files = [(DEFAULT_POLICY, folder / "params" / "policy.yaml")]
    if notebooks:
        dirs.append(folder / "notebooks")
        files += [(nb, folder / "notebooks" / nb.name) for nb in sorted(NOTEBOOK_DIR.glob("*.ipynb"))]
    for d in dirs:
        if d.exists() and not d.is_dir():
            raise PipnbError(f"{d} exists and is not a folder: move it away or choose another folder")
        if not d.exists():
            d.mkdir(parents=True)
            created.append(d)
    for source, target in files:
        if target.exists():
            kept.append(target)
            continue
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        created.append(target)
    return Init(folder=folder, created=tuple(created), kept=tuple(kept))


# -- a rep's files ---------------------------------------------------------------------------------------
def safe_name(rep_id: str) -> str:
    """A file-system name for a rep id, one to one even where file names ignore case.

    A plain id (upper-case letters, digits, ``_``, ``-``; not a Windows device name) is kept: ``R07`` stays
    ``R07``. Any other id becomes a readable slug, ``~`` and 12 hex digits of the SHA-256 of the exact id:
    ``r07`` becomes ``r07~c1e4...``, ``../../etc/x`` becomes ``etc-x~...``. Kept names never hold ``~`` and
    hashed ones always do, and two ids that differ in case differ in hash, so no two ids share a folder. The
    result never contains a path separator or ``..``, so it cannot leave its folder.
    """
    text = str(rep_id)
    if _PLAIN.fullmatch(text) and not _DEVICES.fullmatch(text):
        return text
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "rep"
    return f"{slug}~{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def rep_dir(root: Path, rep_id: str) -> Path:
    """``root/<safe rep name>``, checked to be inside ``root``."""
    root = Path(root).resolve()
    path = (root / safe_name(rep_id)).resolve()
    if path.parent != root:
        raise PipnbError(f"rep id {rep_id!r} cannot be used as a folder name")
    return path


def plan_path(params: Path, rep_id: str) -> Path:
    """Where a rep's plan YAML lives: ``params/plans/<safe rep name>.yaml`` (the mapping of :func:`safe_name`)."""
    plans = (Path(params) / "plans").resolve()
    return plans / f"{safe_name(rep_id)}.yaml"


def remember_rep(reports: Path, rep_id: str, rep: Mapping[str, Any]) -> None:
    """Record the rep's display name and team beside their reports (``reports/<rep>/rep.json``), for the index.

    Raises
    ------
    PipnbError
        When the folder already holds another rep's reports (its ``rep.json`` names another id).
    """
    folder = rep_dir(reports, rep_id)
    info = rep_info(folder)
    if info is not None and info.get("rep_id") not in (None, str(rep_id)):
        raise PipnbError(f"{folder} holds the reports of rep {info['rep_id']!r}, not {rep_id!r}; move that folder "
                         "away (it was made by an older pipnb whose folder names could collide)")
    manager = rep.get("manager") if hasattr(rep, "get") else None
    atomic_write_text(folder / "rep.json", json.dumps({"rep_id": str(rep_id), "rep_name": str(rep["rep_name"]),
                                                       "team": str(rep["team"]),
                                                       "manager": manager if isinstance(manager, str) else ""}))


def rep_info(folder: Path) -> dict | None:
    """The folder's ``rep.json``, or None when there is none or it cannot be read."""
    try:
        info = json.loads((folder / "rep.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: str(v) for k, v in info.items()} if isinstance(info, dict) else None
