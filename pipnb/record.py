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

**Signatures and the audit log.** :func:`sign` signs a JSON value with plain SHA-256, or HMAC-SHA256 with the key
in ``PIPNB_SIGNING_KEY`` (never stored, never printed). Each rep's reports folder keeps an append-only audit log
(``audit.jsonl``, :func:`append_audit`): a line per signed plan step and per report file a run wrote (its SHA-256,
:func:`record_written`), each line chained to the one before. An executed notebook is believed (:func:`trusted`)
only while it has the hash recorded for it.

Example
-------
>>> rec = read_record("reports/R07/diagnose.ipynb")        # doctest: +SKIP
>>> rec.status, rec.input_hash[:8], rec.version            # doctest: +SKIP
('ok', '3f2a9c1e', 1)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipnb.io import sha256_file

__all__ = ["AUDIT", "KEY", "KEY_ENV", "RunRecord", "Version", "append_audit", "audit_breaks", "failure_path",
           "read_audit", "read_record", "record_written", "recorded_state", "sign", "trusted", "version_path",
           "versions", "write_record"]

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


# -- signatures: plain SHA-256, or HMAC-SHA256 with the signing key --------------------------------------
#: The environment variable holding the signing key (never stored in a folder, never printed).
KEY_ENV = "PIPNB_SIGNING_KEY"
PLAIN, KEYED = "sha256", "hmac-sha256"


def signing_key() -> bytes | None:
    """The signing key from :data:`KEY_ENV` (UTF-8 bytes), or None when it is unset or empty."""
    text = os.environ.get(KEY_ENV, "")
    return text.encode() if text.strip() else None


def scheme() -> str:
    """How a step signed now is signed: :data:`KEYED` with a signing key, else :data:`PLAIN`."""
    return KEYED if signing_key() is not None else PLAIN


def canonical(value: Any) -> str:
    """The one text of a JSON value that a signature covers (keys sorted, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sign(value: Any, how: str | None = None) -> str:
    """The signature of a JSON value: HMAC-SHA256 with the signing key (``how`` :data:`KEYED`, the default when
    a key is set) or plain SHA-256 (:data:`PLAIN`), hex. Raises LookupError for :data:`KEYED` without a key."""
    how = how or scheme()
    data = canonical(value).encode()
    if how == KEYED:
        key = signing_key()
        if key is None:
            raise LookupError(f"{KEY_ENV} is not set")
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def check_signature(value: Any, signature: str, how: str) -> str:
    """``"ok"``, ``"bad"`` (the value or its signature was changed, or another key signed it) or ``"no key"`` (a
    keyed signature and no :data:`KEY_ENV` to check it with)."""
    if how not in (PLAIN, KEYED):
        return "bad"                      # a scheme pipnb never writes: the record was edited
    if how == KEYED and signing_key() is None:
        return "no key"
    try:
        return "ok" if hmac.compare_digest(sign(value, how), str(signature)) else "bad"
    except (LookupError, TypeError, ValueError):
        return "bad"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex); a file read before and unchanged since (same size and modification
    time) is not read again (the dashboard checks every report's notebook)."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        if len(_HASHED) > 4096:
            _HASHED.clear()
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


_HASHED: dict[tuple[str, int, int], str] = {}


# -- the audit log beside a rep's reports: what pipnb signed and wrote, each line chained to the one before ----
#: A rep's audit log, in their reports folder: one JSON line per signed plan step and per report file pipnb
#: wrote, each carrying the signature of the line before (``prev``) and its own (``mac``). Append-only: pipnb never
#: rewrites a line; a line removed or edited breaks the chain, and with :data:`KEY_ENV` nobody without the key can
#: write a line that checks.
AUDIT = "audit.jsonl"
_AUDIT_MAX = 8 * 1024 * 1024            # an audit log is a few KB: a larger one is not read


def read_audit(folder: Path) -> list[dict[str, Any]]:
    """The lines of a folder's audit log (``[]`` when it has none); a line that is not a JSON object is kept as
    ``{"broken": text}`` (:func:`audit_breaks` names it)."""
    path = Path(folder) / AUDIT
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(_AUDIT_MAX + 1)
    except OSError:
        return []
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        lines.append(line if isinstance(line, dict) else {"broken": raw[:80]})
    return lines


def append_audit(folder: Path, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Append one signed line to a folder's audit log (the caller holds the folder's lock: :mod:`pipnb.locks`)
    and return it. The line records ``entry``, when (``at``, UTC), the line before's ``mac`` (``prev``), how it
    is signed (``scheme``) and its signature (``mac``)."""
    folder = Path(folder)
    before = read_audit(folder)
    line: dict[str, Any] = {**entry, "n": len(before) + 1,
                            "at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                            "prev": str(before[-1].get("mac", "")) if before else "", "scheme": scheme()}
    line["mac"] = sign(line, line["scheme"])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / AUDIT, "a", encoding="utf-8") as f:
        f.write(canonical(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return line


def audit_breaks(lines: list[Mapping[str, Any]]) -> list[str]:
    """What is wrong with an audit log's chain, one phrase each (``[]`` when every line checks; a keyed line
    without the key is named too: it cannot be checked)."""
    out: list[str] = []
    prev = ""
    for i, line in enumerate(lines, 1):
        if "broken" in line or not isinstance(line.get("mac"), str):
            out.append(f"line {i} is not a signed audit line")
            prev = ""
            continue
        body = {k: v for k, v in line.items() if k != "mac"}
        state = check_signature(body, line["mac"], str(line.get("scheme", PLAIN)))
        if state == "no key":
            out.append(f"line {i} is signed with a key: cannot verify signature ({KEY_ENV} is not set)")
        elif state == "bad" and line.get("scheme") == KEYED:
            out.append(f"line {i}: its signature does not match (hmac-sha256: another key, or edited)")
        elif state == "bad":
            out.append(f"line {i} was edited (its hash does not match)")
        if line.get("scheme") != KEYED and any(ln.get("scheme") == KEYED for ln in lines[:i - 1]):
            out.append(f"line {i} is not signed with the key, after lines that are (written without {KEY_ENV}, "
                       "or forged)")
        if line.get("n") != i or line.get("prev", "") != prev:
            out.append(f"line {i} does not follow line {i - 1} (a line was removed, added or reordered)"
                       if i > 1 else "line 1 is not the first line written (the log was cut at its start)")
        prev = line["mac"]
    return out


def record_written(ipynb: Path | None, html: Path | None = None, *, version: int = 1) -> None:
    """Record the SHA-256 of a report's executed notebook and HTML, as written, in their folder's audit log (the
    process that claims versions calls it, holding the reports folder's lock)."""
    for path in (ipynb, html):
        if path is not None and Path(path).is_file():
            append_audit(Path(path).parent, {"kind": "report", "file": Path(path).name, "version": version,
                                             "sha256": file_sha256(Path(path))})


def recorded_state(path: Path, written_at: str = "") -> str:
    """Whether a report file is as pipnb wrote it, from its folder's audit log: ``"ok"`` (its hash is the one last
    recorded for it), ``"edited"`` (it differs, or the log itself was edited), ``"unrecorded"`` (the log has lines
    written before it was, so it should be there: a line was removed) or ``"legacy"`` (no line for it, written
    before pipnb recorded reports)."""
    path = Path(path)
    log = read_audit(path.parent)
    if any("cannot verify" not in b for b in audit_breaks(log)):
        return "edited"                   # the log itself was edited: nothing it records is believed
    lines = [ln for ln in log if ln.get("kind") == "report"]
    mine = [ln for ln in lines if ln.get("file") == path.name]
    if mine:
        try:
            return "ok" if file_sha256(path) == mine[-1].get("sha256") else "edited"
        except OSError:
            return "edited"
    first = min((str(ln.get("at", "")) for ln in lines), default="")
    return "unrecorded" if first and written_at and first <= written_at else "legacy"


def trusted(version: Version) -> bool:
    """Whether a version's notebook can be believed: it is as pipnb wrote it (or was written before pipnb
    recorded report hashes). An executed notebook edited by hand (e.g. its ``metadata.pipnb.outcome``) is not."""
    written = version.record.written_at if version.record is not None else ""
    return recorded_state(version.ipynb, written) in ("ok", "legacy")
