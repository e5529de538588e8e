"""The record an executed notebook carries: ``metadata.pipnb``, written and read here only.

:mod:`pipnb.runner` stamps every notebook it executes with a :class:`RunRecord` (the hash of the job's
inputs, how the run ended, the job's label and the data fingerprint) before renaming it into place. The
record is how a rerun knows a report is up to date, how a kept failure is told from an older file, and
how the index marks a notebook that never produced its HTML.

Example
-------
>>> rec = read_record("reports/R07/diagnose.ipynb")        # doctest: +SKIP
>>> rec.status, rec.input_hash[:8]                         # doctest: +SKIP
('ok', '3f2a9c1e')
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["KEY", "RunRecord", "read_record", "write_record"]

#: The key under the notebook's metadata.
KEY = "pipnb"

RecordStatus = Literal["ok", "failed"]


@dataclass(frozen=True)
class RunRecord:
    """What one run of a job left in its executed notebook.

    Attributes
    ----------
    input_hash
        :func:`pipnb.runner.input_hash` of the job that wrote the notebook.
    status
        ``"ok"``, or ``"failed"`` for a notebook kept with its error cell.
    label
        The job's label, e.g. ``"R07 diagnose"``.
    fingerprint
        The fingerprint of the data the notebook read.
    """

    input_hash: str
    status: RecordStatus
    label: str = ""
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def write_record(nb: Any, record: RunRecord) -> None:
    """Stamp ``record`` on a notebook (a ``NotebookNode``) as ``nb.metadata["pipnb"]``, in place."""
    nb.metadata[KEY] = asdict(record)


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
    return RunRecord(input_hash=input_hash, status=status, label=str(raw.get("label", "")),
                     fingerprint=str(raw.get("fingerprint", "")))
