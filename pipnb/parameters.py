"""A notebook's parameters, checked: what plain papermill (or a hand edit) passed in is what the notebook takes.

Papermill injects ``-p`` values as a cell of assignments headed ``# Parameters`` right after the cell tagged
``parameters``, and only *warns* about a name the notebook does not declare, so ``-p rep_idd R07`` would run
the default rep. Each lifecycle notebook therefore calls :func:`check_parameters` in the cell after its
parameters: an injected name the notebook does not declare, a value of the wrong type, or a required
parameter left empty is a :class:`~pipnb.errors.PipnbError` that says how to fix it. A date parameter
(:data:`DATE_PARAMETERS`) is ISO 8601 text (``-p as_of 2026-06-01``; read by :func:`pipnb.dates.read_date`):
``06/01/2026`` is refused; a date YAML gave as a date (``-y "as_of: 2026-06-01"``) becomes that text.

Relative paths are the caller's: papermill runs the kernel in the caller's working directory (unless
``--cwd``), so ``-p data_source data/demo`` means ``./data/demo`` there. An *empty* ``data_source`` or
``policy_path`` means the working folder's (:func:`data_path`, :meth:`pipnb.Policy.find`), never a path
relative to the notebook's own folder.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

from pipnb.dates import DateError, read_date
from pipnb.errors import PipnbError
from pipnb.workdir import find_workdir

__all__ = ["DATE_PARAMETERS", "check_parameters", "data_path", "injected_names"]

#: The header of the cell papermill injects (its Python translator's comment line).
_INJECTED_HEADER = "# Parameters"
#: The notebooks' date parameters (text, ``YYYY-MM-DD``; empty for the default).
DATE_PARAMETERS = ("as_of", "start", "since", "today", "data_date")


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
                     required: Sequence[str] = (), dates: Sequence[str] | None = None) -> None:
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
    dates
        Date parameters: ISO 8601 text or empty (default: the declared ones named in :data:`DATE_PARAMETERS`). A
        ``datetime.date`` there (a YAML date) is turned into its ``YYYY-MM-DD`` text.

    Raises
    ------
    PipnbError
        An unknown parameter (with the closest declared name), a value of the wrong type, a date that is not
        ``YYYY-MM-DD`` (``06/01/2026``), or a required parameter left empty.
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
        if kind is str and isinstance(value, dt.date) and name in _dates(declared, dates):
            value = namespace[name] = value.isoformat() if not isinstance(value, dt.datetime) else \
                value.isoformat(timespec="minutes")                           # a YAML date: its ISO text
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PipnbError(f"parameter {name!r} is {value!r}, not a {kind.__name__} (pass e.g. -p {name} "
                             f"{_example(kind)})")
    for name in _dates(declared, dates):
        value = namespace[name]
        if value not in ("", None):
            try:
                read_date(value, name)
            except DateError as err:
                raise PipnbError(f"parameter {name!r}: {err.problem}: use YYYY-MM-DD (pass e.g. -p {name} "
                                 f"2026-06-01), or leave it empty for the default") from None
    for name in required:
        if namespace.get(name) in ("", None):
            raise PipnbError(f"parameter {name!r} is not set: pass it (papermill -p {name} VALUE) or set it in "
                             "the notebook's parameters cell")


def _dates(declared: Mapping[str, type], dates: Sequence[str] | None) -> list[str]:
    return [n for n in declared if n in DATE_PARAMETERS] if dates is None else [n for n in dates if n in declared]


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
