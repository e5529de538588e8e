"""The record an executed notebook carries (``metadata.pipnb``), and where a report's versions live.

:mod:`pipnb.execute` stamps every notebook it executes with a :class:`RunRecord`: the hash of the job's inputs,
how the run ended, the job's label, the data fingerprint, the report's as-of date, its named inputs (the data as
of that date, the plan, the policy, the notebook ...), its version and what changed since the version before,
and when it was written. The record is how a rerun knows a report is up to date, how a kept failure is told
from an older file, and how the index says what changed between versions.

**Versions.** A report is a *base* path without suffix, e.g. ``reports/R17/checkpoint-1``. Version 1 is
``checkpoint-1.ipynb`` + ``checkpoint-1.html``; version *n* > 1 is ``checkpoint-1.v<n>.ipynb`` + ``.html``
(:func:`version_path`). A *frozen* report (a checkpoint or final review) never loses a version: a later run with
other inputs writes the next one beside it. A failed run writes its executed notebook, with its error, where
the next version would go (or, for a report that keeps one version, to ``<base>.failed.ipynb``), and never
touches a good report.

Example
-------
>>> rec = read_record("reports/R07/diagnose.ipynb")        # doctest: +SKIP
>>> rec.status, rec.input_hash[:8], rec.version            # doctest: +SKIP
('ok', '3f2a9c1e', 1)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["KEY", "RunRecord", "Version", "failure_path", "read_record", "version_path", "versions", "write_record"]

#: The key under the notebook's metadata.
KEY = "pipnb"

RecordStatus = Literal["ok", "failed"]

_VERSION = re.compile(r"\.v([1-9][0-9]*)\Z")


@dataclass(frozen=True)
class RunRecord:
    """What one run of a job left in its executed notebook.

    Attributes
    ----------
    input_hash
        :func:`pipnb.versions.input_hash` of the job that wrote the notebook.
    status
        ``"ok"``, or ``"failed"`` for a notebook kept with its error cell.
    label
        The job's label, e.g. ``"R07 diagnose"``.
    fingerprint
        The fingerprint of the data the notebook read.
    version
        The report's version this run wrote (1, 2, ...).
    as_of
        The report's as-of date (``YYYY-MM-DD``), when it has one.
    inputs
        Named hashes of what the report depends on (``data`` as of its date, ``plan``, ``policy``,
        ``notebook``, ``parameters``, ``header``).
    changes
        What changed since the version before, one phrase each (empty for a first version).
    written_at
        When the run ended (UTC, ISO 8601).
    error
        The failure, one line (failed runs).
    outcome
        What the report concluded, as its notebook recorded it (:mod:`pipnb.outcome`): for a review, the status
        per measure with its weekly values, the recommendation and the next review; for the team scan, the
        reps it flags. Empty when the notebook records none. The dashboard reads it; it never recomputes.
    pipnb_version
        The version of pipnb that ran the notebook and rendered the report (on a Dask cluster, the worker's);
        empty for a record written before pipnb stamped it.
    """

    input_hash: str
    status: RecordStatus
    label: str = ""
    fingerprint: str = ""
    version: int = 1
    as_of: str = ""
    inputs: Mapping[str, str] = field(default_factory=dict)
    changes: tuple[str, ...] = ()
    written_at: str = ""
    error: str = ""
    outcome: Mapping[str, Any] = field(default_factory=dict)
    pipnb_version: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def write_record(nb: Any, record: RunRecord) -> None:
    """Stamp ``record`` on a notebook (a ``NotebookNode``) as ``nb.metadata["pipnb"]``, in place."""
    raw = asdict(record)
    raw["inputs"], raw["changes"] = dict(record.inputs), list(record.changes)
    raw["outcome"] = dict(record.outcome)
    if not raw["outcome"]:
        del raw["outcome"]
    nb.metadata[KEY] = raw


def read_record(nb_or_path: Any) -> RunRecord | None:
    """The :class:`RunRecord` of an executed notebook, or None when there is none.

    Parameters
    ----------
    nb_or_path
        A notebook (``NotebookNode`` or plain dict) or the path of an ``.ipynb`` file.

    Returns
    -------
    RunRecord or None
        None when the file cannot be read, is not JSON, or carries no well-formed record.
    """
    if isinstance(nb_or_path, (str, os.PathLike)):
        try:
            with open(nb_or_path, encoding="utf-8") as f:
                nb_or_path = json.load(f)
        except (OSError, ValueError):
            return None
    metadata = nb_or_path.get("metadata") if isinstance(nb_or_path, Mapping) else None
    raw = metadata.get(KEY) if isinstance(metadata, Mapping) else None
    if not isinstance(raw, Mapping):
        return None
    input_hash, status = raw.get("input_hash"), raw.get("status")
    if not isinstance(input_hash, str) or status not in ("ok", "failed"):
        return None
    inputs = raw.get("inputs") if isinstance(raw.get("inputs"), Mapping) else {}
    changes = raw.get("changes") if isinstance(raw.get("changes"), list) else []
    version = raw.get("version")
    return RunRecord(input_hash=input_hash, status=status, label=str(raw.get("label", "")),
                     fingerprint=str(raw.get("fingerprint", "")),
                     version=version if isinstance(version, int) and version >= 1 else 1,
                     as_of=str(raw.get("as_of", "")), inputs={str(k): str(v) for k, v in inputs.items()},
                     changes=tuple(str(c) for c in changes), written_at=str(raw.get("written_at", "")),
                     error=str(raw.get("error", "")),
                     outcome=dict(raw["outcome"]) if isinstance(raw.get("outcome"), Mapping) else {},
                     pipnb_version=str(raw.get("pipnb_version", "")))


# --------------------------------------------------------------------------- versions

def version_path(base: Path, version: int, suffix: str) -> Path:
    """The file of a report's ``version`` (1, 2, ...) with ``suffix`` (``.ipynb`` or ``.html``)."""
    base = Path(base)
    stem = base.name if version == 1 else f"{base.name}.v{version}"
    return base.with_name(stem + suffix)


def failure_path(base: Path) -> Path:
    """Where a failed run of a report that keeps one version leaves its notebook: ``<base>.failed.ipynb``."""
    base = Path(base)
    return base.with_name(f"{base.name}.failed.ipynb")


@dataclass(frozen=True)
class Version:
    """One version of a report on disk: its number, files and record (None when the notebook has none)."""

    number: int
    ipynb: Path
    html: Path
    record: RunRecord | None

    @property
    def good(self) -> bool:
        """A successful run whose HTML report exists."""
        return self.record is not None and self.record.ok and self.html.exists()


class _Reading(threading.local):
    """The versions read in this thread's open :func:`reading_once` block (None outside one). Per thread, as the
    block is: a block in one thread neither caches nor clears what another thread reads."""

    cache: dict[Path, list[Version]] | None = None


_READING = _Reading()


@contextlib.contextmanager
def reading_once() -> Iterator[None]:
    """Within this block, :func:`versions` reads each report's versions once (an executed notebook holds its
    charts: the index and the dashboard built together would otherwise read every one twice). The cache is
    this thread's: :func:`versions` called from another thread reads from disk."""
    if _READING.cache is not None:          # nested: the outer block already caches
        yield
        return
    _READING.cache = {}
    try:
        yield
    finally:
        _READING.cache = None


def versions(base: Path) -> list[Version]:
    """Every version of the report at ``base`` found on disk, oldest first (a version is there when its
    notebook or its HTML is); read once per :func:`reading_once` block."""
    base = Path(base)
    cache = _READING.cache
    if cache is None:
        return _versions(base)
    if base not in cache:
        cache[base] = _versions(base)
    return cache[base]


def _versions(base: Path) -> list[Version]:
    numbers = set()
    if version_path(base, 1, ".ipynb").exists() or version_path(base, 1, ".html").exists():
        numbers.add(1)
    if base.parent.is_dir():
        for path in base.parent.glob(f"{base.name}.v*.*"):
            if path.suffix in (".ipynb", ".html"):
                match = _VERSION.search(path.name[: -len(path.suffix)])
                if match and path.name[: -len(path.suffix)] == f"{base.name}.v{match.group(1)}":
                    numbers.add(int(match.group(1)))
    out = []
    for n in sorted(numbers):
        ipynb = version_path(base, n, ".ipynb")
        out.append(Version(n, ipynb, version_path(base, n, ".html"), read_record(ipynb)))
    return out


# -- the index's rows ---------------------------------------------------------------------------
Status = Literal["ok", "failed", "skipped", "missing", "not due"]


@dataclass(frozen=True)
class IndexEntry:
    """One row of ``reports/index.html``.

    Parameters
    ----------
    rep
        Who the report is about, as shown (e.g. ``"Dana Reyes (R07)"``); ``""`` for a team report.
    stage
        ``"scan"``, ``"diagnose"``, ``"plan"``, ``"checkpoint-1"``, …
    status
        ``"ok"``, ``"failed"``, ``"skipped"`` (up to date, not re-run), ``"missing"`` (not produced) or
        ``"not due"`` (a review the data does not reach yet).
    path
        The file to link (the HTML report; for a failure, the kept ``.ipynb``), or None for no link.
    note
        One line shown beside the status, e.g. a failure's error.
    earlier
        Other files of the same report, linked under the note: ``(label, path, note)``, e.g. the versions a
        later one replaced (``("version 1", "R07/checkpoint-1.html", "as of 2026-04-26")``) or the last good
        report a failure left in place.
    """

    rep: str
    stage: str
    status: Status
    path: Path | str | None = None
    note: str = ""
    earlier: tuple[tuple[str, Path | str, str], ...] = ()


# -- the outcome a notebook recorded --------------------------------------------------------------
#: The media type of the bundle a notebook displays to record its outcome.
MIME = "application/vnd.pipnb.outcome+json"


def read_outcome(nb: Any) -> dict[str, Any] | None:
    """The outcome a notebook (``NotebookNode`` or dict) displayed, or None (the last one wins)."""
    found = None
    for cell in nb.get("cells", []) if isinstance(nb, Mapping) else []:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data") if isinstance(output, Mapping) else None
            if isinstance(data, Mapping) and isinstance(data.get(MIME), Mapping):
                found = dict(data[MIME])
    return found
