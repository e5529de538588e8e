"""Atomic file output: every file pipnb writes appears whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # the runner imports this module: keep pandas off its import path
    import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    Example
    -------
    >>> with atomic_path("reports/a.html") as tmp:   # doctest: +SKIP
    ...     tmp.write_text("<html>")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as CSV or Parquet (by suffix) atomically, dates as ISO 8601."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    return path


# -- a folder's manifest: the SHA-256 of every file, recorded last ------------------------------------------
MANIFEST = "manifest.json"


def write_manifest(folder: Path, key: dict[str, str] | None = None) -> None:
    """Record, last, the SHA-256 of every file in ``folder`` (and ``key``, what the folder was built for)."""
    files = {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    atomic_write_text(folder / MANIFEST, json.dumps({**(key or {}), "files": files}, indent=1))


def manifest_matches(folder: Path, needed: set[str], key: dict[str, str] | None = None) -> bool:
    """Whether ``folder`` is whole and unaltered: its manifest records ``key`` and at least the files
    ``needed``, and every recorded file still has its hash. No manifest (a folder half-written, or from an
    older pipnb): False."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if any(manifest.get(k) != v for k, v in (key or {}).items()):
            return False
        files = manifest["files"]
        return needed <= set(files) and all(sha256_file(folder / name) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: What a spreadsheet reads as the start of a formula (or hides one behind): a cell starting with one of
#: these is written with a leading ``'``, so it opens as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_csv(records: pd.DataFrame) -> str:
    """``records`` as CSV text a spreadsheet opens safely: every text cell that starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a leading ``'`` (numbers are written as numbers)."""
    def cell(value):
        return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    text_columns = [c for c in records.columns if records[c].dtype.kind not in "biufc"]   # numbers as numbers
    safe = records.assign(**{c: records[c].map(cell) for c in text_columns})
    return safe.to_csv(index=False)


# -- YAML read within limits: plans, policies and source mappings -------------------------------------------
#: The most characters a plan, policy or mapping YAML may hold (a plan is a few KB).
YAML_MAX_CHARS = 1_000_000
#: The deepest nesting of lists and mappings a YAML may have.
YAML_MAX_DEPTH = 64
#: The most values a YAML may stand for once every alias is expanded.
YAML_MAX_NODES = 100_000


def read_yaml(path: str | Path, *, aliases: bool = True) -> object:
    """Read a YAML file safely, within limits: size, nesting depth and nodes (aliases expanded).

    The limits are checked on PyYAML's event stream, before anything is built, so that a file of 2,000 nested
    ``[`` or an alias bomb costs milliseconds: no ``RecursionError``, no gigabytes. Only plain data is built
    (PyYAML's safe loader, on libyaml where the wheel has it: no ``!!python`` tag).

    Parameters
    ----------
    path
        The file (UTF-8, with or without BOM).
    aliases
        Whether ``&anchor`` / ``*alias`` are allowed (a plan refuses them: each of its words is its own).

    Raises
    ------
    yaml.YAMLError
        Not valid YAML, not UTF-8, or over a limit; ``problem`` says which, and ``problem_mark`` where.
    OSError
        The file cannot be read.
    """
    import yaml  # PyYAML (20 ms): the runner imports this module and reads no YAML

    with open(path, "rb") as f:
        raw = f.read(4 * YAML_MAX_CHARS + 1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise yaml.YAMLError(f"not UTF-8 text (byte 0x{raw[err.start]:02x} at position {err.start}); save it as "
                             "UTF-8") from None
    if len(text) > YAML_MAX_CHARS:
        raise _yaml_refused(f"longer than {YAML_MAX_CHARS:,} characters (is it the right file?)", None)
    _check_yaml_events(text, aliases=aliases)
    return yaml.load(text, Loader=_safe_loader())     # noqa: S506 - the safe loader (plain data only)


def _safe_loader():
    """PyYAML's safe loader, on libyaml (C, about 15 times faster: a plan is read several times a run) where the
    wheel has it, else the pure-Python one; both build plain data only."""
    import yaml  # PyYAML (20 ms): see read_yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_yaml_events(text: str, *, aliases: bool) -> None:
    """Refuse YAML nested deeper than :data:`YAML_MAX_DEPTH`, standing for more than :data:`YAML_MAX_NODES`
    values once aliases are expanded, or (``aliases=False``) holding an alias."""
    import yaml  # PyYAML (20 ms): see read_yaml

    try:
        _count_yaml_events(yaml.parse(text, Loader=_safe_loader()), aliases=aliases)
    except yaml.MarkedYAMLError as err:
        if "maximum nesting depth" in str(err.problem):    # libyaml's own limit (1,000), met while it scans ahead
            raise _yaml_refused(f"nested deeper than {YAML_MAX_DEPTH} levels", err.problem_mark) from None
        raise


def _count_yaml_events(events, *, aliases: bool) -> None:
    """The limits of :func:`_check_yaml_events`, counted on an event stream."""
    import yaml  # PyYAML (20 ms): see read_yaml

    sizes: dict[str, int] = {}              # anchor -> how many values it stands for
    stack: list[list] = [[0, None]]         # per open collection: values so far, its anchor
    total = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            if not aliases:
                raise _yaml_refused("uses an alias (*name); write each value out in full", event.start_mark)
            count = sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            count = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            if not aliases and event.anchor is not None:
                raise _yaml_refused("uses an anchor (&name); write each value out in full", event.start_mark)
            stack.append([1, event.anchor])
            if len(stack) - 1 > YAML_MAX_DEPTH:
                raise _yaml_refused(f"nested deeper than {YAML_MAX_DEPTH} levels", event.start_mark)
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            count, anchor = stack.pop()
            if anchor is not None:
                sizes[anchor] = count
            stack[-1][0] += count
            continue
        else:
            continue
        if getattr(event, "anchor", None) is not None:
            sizes[event.anchor] = count
        stack[-1][0] += count
        total = sum(level[0] for level in stack)
        if total > YAML_MAX_NODES:
            raise _yaml_refused(f"stands for more than {YAML_MAX_NODES:,} values once its aliases are expanded",
                                event.start_mark)


def _yaml_refused(problem: str, mark: object) -> Exception:
    import yaml  # PyYAML (20 ms): see read_yaml

    return yaml.MarkedYAMLError(problem=problem, problem_mark=mark)
