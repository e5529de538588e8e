"""What one batch shares, prepared once: the loaded data, its Parquet snapshot, the weekly panel, the policy.

:func:`prepare` loads and validates the data once, computes the team's weekly panel once and writes both
under ``reports/.batch/`` (named by the data's fingerprint, so a rerun on the same data reuses them); every
notebook of the batch is handed their paths, not a recomputation. The path helpers here are the only way
a rep id becomes a file name: :func:`rep_dir` and :func:`plan_path` can never point outside ``reports/`` or
``params/plans/``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipnb.data import SalesData
from pipnb.errors import PipnbError
from pipnb.io import atomic_path
from pipnb.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def safe_name(rep_id: str) -> str:
    """A file-system name for a rep id: the id itself when it is plain, else a readable slug plus a hash.

    The result never contains a path separator or ``..``, so it cannot leave its folder.
    """
    text = str(rep_id)
    if _SAFE.match(text) and ".." not in text:
        return text
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "rep"
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def rep_dir(root: Path, rep_id: str) -> Path:
    """``root/<safe rep name>``, checked to be inside ``root``."""
    root = Path(root).resolve()
    path = (root / safe_name(rep_id)).resolve()
    if path.parent != root:
        raise PipnbError(f"rep id {rep_id!r} cannot be used as a folder name")
    return path


def plan_path(params: Path, rep_id: str) -> Path:
    """Where a rep's plan YAML lives: ``params/plans/<rep>.yaml``."""
    plans = (Path(params) / "plans").resolve()
    return plans / f"{safe_name(rep_id)}.yaml"


@dataclass(frozen=True)
class Batch:
    """What every job of one batch shares.

    Attributes
    ----------
    data
        The loaded data (validated once per batch).
    source
        What the notebooks load: a validated Parquet snapshot of the data (written once per batch, read
        back without validating again).
    panel, panel_path
        The weekly panel computed once per batch, and the Parquet file handed to every notebook.
    reports, params
        The reports folder and the folder holding ``policy.yaml`` and ``plans/``.
    policy_path, policy
        The policy file the batch uses and its rules.
    """

    data: SalesData
    source: str
    panel: pd.DataFrame
    panel_path: Path
    reports: Path
    params: Path
    policy_path: Path
    policy: Policy

    @property
    def fingerprint(self) -> str:
        """The data's fingerprint and the policy file's hash: a change to either re-runs every report."""
        policy_hash = hashlib.sha256(self.policy_path.read_bytes()).hexdigest()[:12]
        return f"{self.data.fingerprint()}-{policy_hash}"


def prepare(source: str, *, reports: str | Path = "reports", params: str | Path = "params",
            policy: str | Path | None = None) -> Batch:
    """Load and validate the data, compute the weekly panel once and save it for the notebooks.

    Parameters
    ----------
    source
        A data source as :func:`pipnb.sources.load` takes it.
    reports, params
        The reports folder (its ``.batch/`` subfolder is the cache) and the params folder.
    policy
        The policy YAML; default ``params/policy.yaml``, else the one shipped with pipnb.

    Returns
    -------
    Batch
    """
    from pipnb.metrics import weekly_panel
    from pipnb.sources import load

    data = load(source)
    reports, params = Path(reports).resolve(), Path(params).resolve()
    policy_path = Path(policy).resolve() if policy else params / "policy.yaml"
    if not policy_path.is_file():
        policy_path = ROOT / "params" / "policy.yaml"
    rules = Policy.from_yaml(policy_path)
    panel = weekly_panel(data)
    cache = reports / ".batch"
    panel_path = cache / f"panel-{data.fingerprint()}.parquet"
    if not panel_path.exists():
        write_panel(panel, panel_path)
    snapshot = cache / f"data-{data.fingerprint()}"
    if not (snapshot / "snapshot.json").exists():
        data.write_snapshot(snapshot)
    return Batch(data=data, source=str(snapshot), panel=panel, panel_path=panel_path, reports=reports,
                 params=params, policy_path=policy_path, policy=rules)


def write_panel(panel: pd.DataFrame, path: Path) -> Path:
    """Save a weekly panel as Parquet, atomically."""
    with atomic_path(path) as tmp:
        panel.to_parquet(tmp, index=False)
    return path


def read_panel(path: str | Path) -> pd.DataFrame:
    """Read a weekly panel saved by a batch run."""
    return pd.read_parquet(path)
