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
    files = {str(p.relative_to(folder)): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}
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
        return needed <= set(files) and all(_sha256(folder / name) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _sha256(path: Path) -> str:
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
