"""A notebook's parameters, checked: what plain papermill (or a hand edit) passed in is what the notebook takes.

Papermill injects ``-p`` values as a cell of assignments headed ``# Parameters`` right after the cell tagged
``parameters``, and only *warns* about a name the notebook does not declare, so ``-p rep_idd R07`` would run
the default rep. Each lifecycle notebook therefore calls :func:`check_parameters` in the cell after its
parameters: an injected name the notebook does not declare, a value of the wrong type, or a required
parameter left empty is a :class:`~pipnb.errors.PipnbError` that says how to fix it.

Relative paths are the caller's: papermill runs the kernel in the caller's working directory (unless
``--cwd``), so ``-p data_source data/demo`` means ``./data/demo`` there. An *empty* ``data_source`` or
``policy_path`` means the working folder's (:func:`data_path`, :meth:`pipnb.Policy.find`), never a path
relative to the notebook's own folder.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

from pipnb.errors import PipnbError
from pipnb.workdir import find_workdir

__all__ = ["check_parameters", "data_path", "injected_names"]

#: The header of the cell papermill injects (its Python translator's comment line).
_INJECTED_HEADER = "# Parameters"


def injected_names(history: Sequence[str]) -> list[str]:
    """The names assigned by the last cell papermill injected, from the kernel's input history (``In``)."""
    for source in reversed(history):
        if str(source).lstrip().startswith(_INJECTED_HEADER):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                return []
            return [t.id for node in tree.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)]
    return []


def check_parameters(namespace: MutableMapping[str, object], declared: Mapping[str, type], *,
                     required: Sequence[str] = ()) -> None:
    """Check a notebook's parameters in its namespace (``globals()``); raise on the first mistake.

    Parameters
    ----------
    namespace
        The notebook's global namespace. A value papermill's ``-p`` read as a number for a text parameter
        (``-p rep_id 7``) is turned back into text there.
    declared
        Every parameter of the notebook and its type, as in its ``parameters`` cell.
    required
        Parameters that must not be left empty (the rep: it has no default).

    Raises
    ------
    PipnbError
        An unknown parameter (with the closest declared name), a value of the wrong type, or a required
        parameter left empty.
    """
    history = namespace.get("In")
    names = injected_names(history) if isinstance(history, list) else []
    for name in names:
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6) or \
                [d for d in declared if d.lower() == name.lower()]
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PipnbError(f"unknown parameter {name!r}: {hint}this notebook takes "
                             f"{', '.join(declared)}")
    for name, kind in declared.items():
        if name not in namespace:
            raise PipnbError(f"parameter {name!r} is not set: run the notebook's parameters cell first")
        value = namespace[name]
        if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            namespace[name] = value = str(value)          # papermill -p reads "7" as a number
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = namespace[name] = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PipnbError(f"parameter {name!r} is {value!r}, not a {kind.__name__} (pass e.g. -p {name} "
                             f"{_example(kind)})")
    for name in required:
        if namespace.get(name) in ("", None):
            raise PipnbError(f"parameter {name!r} is not set: pass it (papermill -p {name} VALUE) or set it in "
                             "the notebook's parameters cell")


def _example(kind: type) -> str:
    return {int: "4", float: "0.5", bool: "True"}.get(kind, "TEXT")


def data_path(source: str, default: str = "data/demo") -> str:
    """The data source a notebook loads: ``source`` when given (relative to the working directory, or a
    database URL), else ``default`` in the nearest working folder (see :mod:`pipnb.workdir`).

    Raises
    ------
    PipnbError
        When ``source`` is empty and there is no ``default`` folder to use.
    """
    if source:
        return source

    work = find_workdir()
    candidates = [p for p in ((work / default) if work else None, Path.cwd() / default) if p is not None]
    for folder in candidates:
        if folder.is_dir():
            return str(folder.resolve())
    raise PipnbError(f"no data_source given and no {default} folder in the working folder: pass -p data_source "
                     f"PATH (papermill) or write the demo team there with pipnb demo-data --out {default}")
