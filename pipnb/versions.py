"""Which version of a report a run writes, and whether a job is up to date.

A job's input hash covers its notebook, parameters and named inputs (data fingerprint up to the report's
date, plan file, policy); :func:`plan_output` picks the file a run writes: the same file for a report that
keeps one version, the next ``.vK`` beside a frozen one (a checkpoint or final review) whose inputs changed,
and nothing when the last good version is up to date. What changed since the last version is recorded.

A frozen report's files (the executed notebook, the HTML, the PDF) are each frozen on their own: a version any
of whose files is missing or damaged (a notebook without its record, an HTML cut short or from another run, a
PDF that is not a whole PDF) is not good, and the next run writes a new version *beside* every version that
has a file on disk, never into its slot; a failed run's notebook goes to that new slot too. Only a slot that
holds nothing but an earlier failure's notebook is reused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipnb.job import Job
from pipnb.pdf import pdf_path, whole_pdf
from pipnb.record import Version, failure_path, trusted, version_path, versions
from pipnb.report import read_input_hash

#: Bump when what a run writes changes in a way that should invalidate every up-to-date report.
HASH_SCHEME = "pipnb-run-2"


def input_hash(job: Job) -> str:
    """The hash of everything a job's output depends on.

    The notebook file's content, the parameters (but those in :attr:`Job.path_parameters`), the header, the
    data fingerprint, the named :attr:`Job.inputs` and :data:`HASH_SCHEME`; not the kernel, the paths or the
    working directory.
    """
    digest = hashlib.sha256(HASH_SCHEME.encode())
    digest.update(Path(job.notebook).read_bytes())
    digest.update(json.dumps([_hashed_parameters(job), job.header, job.fingerprint, job.inputs], sort_keys=True,
                             default=str).encode())
    return digest.hexdigest()


def _hashed_parameters(job: Job) -> dict[str, Any]:
    return {k: v for k, v in job.parameters.items() if k not in job.path_parameters}


def _short_hash(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def recorded_inputs(job: Job) -> dict[str, str]:
    """The named inputs a run records: :attr:`Job.inputs` (``data`` defaulting to the job's fingerprint), and
    hashes of the notebook, the parameters and the header."""
    inputs = {"data": job.fingerprint, **job.inputs} if job.fingerprint or job.inputs else {}
    inputs.update(notebook=_short_hash(Path(job.notebook).read_bytes()),
                  parameters=_short_hash(_hashed_parameters(job)), header=_short_hash(job.header))
    return inputs


@dataclass(frozen=True)
class Output:
    """Where one run of a job writes: the version's notebook and report, where a failure goes, the version
    number, and what changed since the version before."""

    ipynb: Path
    html: Path | None
    failure: Path
    version: int
    changes: tuple[str, ...]
    inputs: Mapping[str, str]


def _good(version: Version, job: Job) -> bool:
    """A successful run whose notebook is as it was written (:func:`pipnb.record.trusted`: an outcome edited by
    hand is never up to date), whose report (when the job has one) exists whole and was written by that run, and
    (a frozen report) whose PDF, when there is one, is a whole PDF."""
    record = version.record
    if record is None or not record.ok or not trusted(version):   # a notebook edited by hand is not believed
        return False
    if job.output_html is None:
        return True
    if not (version.html.exists() and read_input_hash(version.html) == record.input_hash
            and _ends_with(version.html, b"</html>")):
        return False
    pdf = pdf_path(version.html)
    return not job.frozen or not pdf.exists() or whole_pdf(pdf)


def _ends_with(path: Path, tail: bytes) -> bool:
    """Whether the file's last bytes, white space aside, are ``tail`` (a file cut short is not)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 1024))
            return f.read().rstrip().endswith(tail)
    except OSError:
        return False


def _taken(version: Version) -> bool:
    """Whether a version's slot holds a file that must never be replaced: anything but the notebook of a failed
    run alone."""
    if version.html.exists() or pdf_path(version.html).exists():
        return True
    return version.ipynb.exists() and (version.record is None or version.record.ok)


def _taken_numbers(base: Path) -> set[int]:
    """The version numbers whose slot is taken (:func:`_taken`), a slot holding only a PDF included."""
    numbers = {v.number for v in versions(base) if _taken(v)}
    if version_path(base, 1, ".pdf").exists():
        numbers.add(1)
    numbers |= {int(m.group(1)) for p in base.parent.glob(f"{base.name}.v*.pdf")
                if (m := re.fullmatch(re.escape(base.name) + r"\.v([1-9][0-9]*)\.pdf", p.name))}
    return numbers


def latest_good(job: Job) -> Version | None:
    """The newest good version of the job's report on disk, or None."""
    good = [v for v in versions(job.base) if _good(v, job)]
    return good[-1] if good else None


def plan_output(job: Job, wanted: str, *, force: bool = False) -> tuple[Output | None, Version | None]:
    """Where a run of ``job`` would write, or None when its last good version is up to date (and not
    ``force``); and that last good version."""
    last = latest_good(job)
    if last is not None and not force and last.record.input_hash == wanted:
        return None, last
    inputs = recorded_inputs(job)
    changes = _changes(last, job, inputs, force) if last is not None else ()
    if job.frozen:       # beside every version with a file: a missing or damaged file never frees its slot
        number = 1 + max(_taken_numbers(job.base), default=0)
        version = number
    else:
        number, version = 1, (last.record.version + 1 if last is not None else 1)
    ipynb = version_path(job.base, number, ".ipynb")
    html = None if job.output_html is None else version_path(job.base, number, ".html")
    keep_slot = not job.frozen and number in _taken_numbers(job.base)     # a failure never replaces a report
    return Output(ipynb=ipynb, html=html, failure=failure_path(job.base) if keep_slot else ipynb,
                  version=version, changes=changes, inputs=inputs), last


_INPUT_NAMES = {"data": "the data up to {as_of} changed", "plan": "the plan changed",
                "policy": "the policy changed", "notebook": "the notebook changed (a pipnb update)",
                "header": "the report's header changed (e.g. the rep's name or the plan period)"}


def _changes(last: Version, job: Job, inputs: Mapping[str, str], force: bool) -> tuple[str, ...]:
    """What differs between the last good version's inputs and this run's, one phrase each."""
    before = dict(last.record.inputs)
    if not before:
        return ("the inputs changed (the version before has no record of them)",)
    as_of = job.header.get("as_of") or "the report's date"
    out = []
    for key in [*_INPUT_NAMES, *sorted(set(inputs) - set(_INPUT_NAMES))]:
        if key == "parameters" or before.get(key) == inputs.get(key):
            continue
        out.append(_INPUT_NAMES.get(key, "{key} changed").format(as_of=as_of, key=key))
    if before.get("parameters") != inputs.get("parameters"):
        out.append(_parameter_changes(last.ipynb, job))
    if not out:
        out.append("rerun with --force" if force else "pipnb's run record changed")
    return tuple(out)


def _parameter_changes(previous_ipynb: Path, job: Job) -> str:
    """``parameters changed: as_of 2026-04-05 → 2026-04-12`` from the previous notebook's papermill record."""
    try:
        with open(previous_ipynb, encoding="utf-8") as f:
            old = json.load(f)["metadata"]["papermill"]["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        return "the parameters changed"
    new = _hashed_parameters(job)
    keys = sorted(k for k in set(old) | set(new) if k not in job.path_parameters and old.get(k) != new.get(k))
    shown = ", ".join(f"{k} {old.get(k, '—')} → {new.get(k, '—')}" for k in keys[:3])
    return f"the parameters changed: {shown}" if shown else "the parameters changed"
