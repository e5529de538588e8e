"""What one batch shares, prepared once: the loaded data, its Parquet snapshot, the weekly panel, the policy.

:func:`prepare` loads and validates the data once, computes the team's weekly panel once and keeps both in a
cache **outside** ``reports/`` (the folder shared with managers): ``.pipnb/cache/<key>/`` beside ``params/``.
The key is the data's fingerprint, pipnb's version and the hash of the metric code, so data, an upgrade or a
metric change each give a fresh entry; an entry is checked before use (every file against the SHA-256 its
``manifest.json`` recorded) and rebuilt when it was altered or left half-written. An entry is built in a
hidden folder and renamed into place, so a full disk or a kill leaves no partial entry. Every notebook of the
batch is handed the entry's paths, not a recomputation.

The safe paths of a rep's reports and plan are :mod:`pipnb.workdir`'s (:func:`~pipnb.workdir.rep_dir`,
:func:`~pipnb.workdir.plan_path`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipnb import _version
from pipnb.data import SalesData
from pipnb.fingerprint import fingerprint_until
from pipnb.io import atomic_path, manifest_matches, write_manifest
from pipnb.metrics import weekly_panel
from pipnb.policy import Policy
from pipnb.sources import load
from pipnb.workdir import policy_file

#: The files whose code makes the panel: a change to any of them is a new cache entry.
METRIC_CODE = ("metrics.py", "schema.py", "data.py")
PACKAGE = Path(__file__).resolve().parents[1]     # the pipnb package folder


def absolute_source(source: str | Path) -> str:
    """A data source with a relative path made absolute against the working directory (URLs are kept)."""
    text = str(source)
    if "://" in text:
        return text
    return str(Path(text).expanduser().absolute())


@dataclass(frozen=True)
class Batch:
    """What every job of one batch shares.

    Attributes
    ----------
    data
        The loaded data (validated once per batch).
    source
        What the notebooks load: a validated Parquet snapshot of the data in the cache (written once per
        data, pipnb version and metric code; read back without validating again).
    panel, panel_path
        The weekly panel computed once, and the Parquet file handed to every notebook.
    reports, params
        The reports folder and the folder holding ``policy.yaml`` and ``plans/``.
    policy_path, policy
        The policy file the batch uses and its rules.
    cache
        The cache entry (``.pipnb/cache/<key>``).
    fingerprint
        The data's fingerprint (:meth:`~pipnb.data.SalesData.fingerprint`, computed once for the cache key).
    """

    data: SalesData
    source: str
    panel: pd.DataFrame
    panel_path: Path
    reports: Path
    params: Path
    policy_path: Path
    policy: Policy
    cache: Path | None = None
    fingerprint: str = ""
    _until: dict = field(default_factory=dict, repr=False, compare=False)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)   # see pipnb.batch.bundle

    @property
    def policy_hash(self) -> str:
        return hashlib.sha256(self.policy_path.read_bytes()).hexdigest()[:12]

    def fingerprint_until(self, day) -> str:
        """The fingerprint of the data as it stood at the end of ``day`` (see :mod:`pipnb.fingerprint`)."""
        key = f"{pd.Timestamp(day):%Y-%m-%d}"
        if key not in self._until:
            self._until[key] = fingerprint_until(self.data, key, whole=self.fingerprint or None)
        return self._until[key]


def prepare(source: str, *, reports: str | Path = "reports", params: str | Path = "params",
            policy: str | Path | None = None, cache: str | Path | None = None, bad_rows: str | None = None) -> Batch:
    """Load and validate the data, compute the weekly panel once and keep it for the notebooks.

    Parameters
    ----------
    source
        A data source as :func:`pipnb.sources.load` takes it (a relative path is taken from the working
        directory).
    reports, params
        The reports folder and the params folder.
    policy
        The policy YAML; default ``params/policy.yaml``, else the one shipped with pipnb.
    cache
        The cache folder; default ``.pipnb/cache`` beside ``params`` (never inside ``reports``).
    bad_rows
        What an invalid row does to the load (see :func:`pipnb.sources.load`; the command line's ``--bad-rows``).

    Returns
    -------
    Batch
    """
    data = load(absolute_source(source), bad_rows=bad_rows)
    reports, params = Path(reports).resolve(), Path(params).resolve()
    policy_path = policy_file(policy, params=params)
    rules = Policy.from_yaml(policy_path)
    root = Path(cache).resolve() if cache else params.parent / ".pipnb" / "cache"
    key = cache_key(data)
    entry, panel = cached_entry(data, root, key)
    return Batch(data=data, source=str(entry / "data"), panel=panel, panel_path=entry / "panel.parquet",
                 reports=reports, params=params, policy_path=policy_path, policy=rules, cache=entry,
                 fingerprint=key["data"])


# -- the cache ---------------------------------------------------------------------------------------------
def cache_key(data: SalesData) -> dict[str, str]:
    """What a cache entry is keyed on: the data's fingerprint, pipnb's version and the metric code's hash."""
    code = hashlib.sha256()
    for name in METRIC_CODE:
        code.update((PACKAGE / name).read_bytes())
    parts = {"data": data.fingerprint(), "pipnb": _version.__version__, "metric_code": code.hexdigest()[:16]}
    parts["key"] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    return parts


def cached_entry(data: SalesData, root: Path, key: dict[str, str] | None = None) -> tuple[Path, pd.DataFrame]:
    """The cache entry for ``data`` under ``root`` (checked, else built) and its weekly panel; ``key``: its
    :func:`cache_key`, when the caller has it."""
    key = key or cache_key(data)
    entry = root / key["key"]
    if _valid(entry, key):
        return entry, pd.read_parquet(entry / "panel.parquet")
    panel = weekly_panel(data)
    root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(root)
    building = root / f".{key['key']}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        building.mkdir()
        write_panel(panel, building / "panel.parquet")
        data.write_snapshot(building / "data")
        write_manifest(building, key)
        if entry.exists():                        # altered or half-written: replaced whole
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.replace(building, entry)
        except OSError:
            if not _valid(entry, key):            # another batch built it at the same moment
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return entry, panel


def _remove_abandoned(root: Path, age: float = 3600.0) -> None:
    """Remove entries a killed batch left half-built (hidden ``.*.tmp`` folders older than ``age`` seconds)."""
    for stale in root.glob(".*.tmp"):
        try:
            if time.time() - stale.stat().st_mtime > age:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass


def _valid(entry: Path, key: dict[str, str]) -> bool:
    """Whether a cache entry is whole, for this key, and unaltered (every file matches its recorded hash)."""
    return manifest_matches(entry, {"panel.parquet", "data/snapshot.json"}, key)


def write_panel(panel: pd.DataFrame, path: Path) -> Path:
    """Save a weekly panel as Parquet, atomically."""
    with atomic_path(path) as tmp:
        panel.to_parquet(tmp, index=False)
    return path


def read_panel(path: str | Path) -> pd.DataFrame:
    """Read a weekly panel saved by a batch run."""
    return pd.read_parquet(path)
