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
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from pipnb.errors import PipnbError

__all__ = ["DEFAULT_POLICY", "NOTEBOOK_DIR", "Init", "find_workdir", "init", "notebook", "policy_file"]

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
    from pipnb.io import atomic_path

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
