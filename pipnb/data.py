"""The validated sales data every other module works on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipnb.errors import UnknownRepError
from pipnb.schema import TABLES

SNAPSHOT = "snapshot.json"


@dataclass(frozen=True)
class SalesData:
    """The canonical tables of one source, validated.

    Attributes
    ----------
    reps, opportunities
        Always present.
    activities
        ``None`` when the source has no activities; the metrics that need them are unavailable.
    source
        Where the data came from (a path or a redacted URL), for report headers.
    timezone
        The zone every timestamp was normalized to (stored as naive local times).
    notes
        Counts of tolerated oddities seen while loading, e.g. ``open_opps_without_created_at``.
    """

    reps: pd.DataFrame
    opportunities: pd.DataFrame
    activities: pd.DataFrame | None = None
    source: str = "<memory>"
    timezone: str = "UTC"
    notes: dict[str, int] = field(default_factory=dict)

    # -- views ------------------------------------------------------------------------------
    def has(self, table: str) -> bool:
        """Whether the source provides ``table``."""
        return getattr(self, table) is not None

    @property
    def rep_ids(self) -> list[str]:
        return self.reps["rep_id"].tolist()

    def rep(self, rep_id: str) -> pd.Series:
        """The reps row of ``rep_id``; raises :class:`UnknownRepError` naming close matches."""
        hit = self.reps.loc[self.reps["rep_id"] == str(rep_id)]
        if hit.empty:
            sample = ", ".join(self.reps["rep_id"].head(5))
            raise UnknownRepError(f"rep '{rep_id}' is not in the data from {self.source} "
                                  f"(rep ids look like: {sample}; `pipnb scan` lists them)")
        return hit.iloc[0]

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last timestamp seen in opportunities and activities."""
        stamps = [self.opportunities["created_at"], self.opportunities["closed_at"]]
        if self.activities is not None:
            stamps.append(self.activities["occurred_at"])
        both = pd.concat([s.dropna() for s in stamps])
        return both.min(), both.max()

    def fingerprint(self) -> str:
        """A short hash of the table contents; the same data always gives the same value."""
        digest = hashlib.sha256()
        for name in TABLES:
            frame = getattr(self, name)
            digest.update(name.encode())
            if frame is not None:
                digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
                digest.update(",".join(frame.columns).encode())
        return digest.hexdigest()[:16]

    # -- snapshots: validated once per batch, read back by every notebook ---------------------
    def write_snapshot(self, folder: str | Path) -> Path:
        """Write the validated tables as Parquet plus ``snapshot.json`` (fingerprint, source, notes).

        :func:`pipnb.load` reads such a folder back without validating again when the fingerprint
        still matches, so a batch validates its data once, not once per report.
        """
        import json

        from pipnb.io import atomic_write_text

        folder = self.write(folder, format="parquet")
        meta = {"fingerprint": self.fingerprint(), "source": self.source, "timezone": self.timezone,
                "notes": self.notes, "tables": [t for t in TABLES if self.has(t)]}
        atomic_write_text(folder / SNAPSHOT, json.dumps(meta, indent=1))
        return folder

    @classmethod
    def read_snapshot(cls, folder: str | Path) -> SalesData | None:
        """Read a folder written by :meth:`write_snapshot`; None when it is not one or was altered."""
        import json

        folder = Path(folder)
        try:
            meta = json.loads((folder / SNAPSHOT).read_text())
            tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in meta["tables"]}
        except (OSError, ValueError, KeyError):
            return None
        data = cls(reps=tables["reps"], opportunities=tables["opportunities"], activities=tables.get("activities"),
                   source=meta["source"], timezone=meta["timezone"], notes=meta["notes"])
        return data if data.fingerprint() == meta["fingerprint"] else None

    # -- output -----------------------------------------------------------------------------
    def write(self, folder: str | Path, *, format: str = "csv") -> Path:
        """Write the tables as a pipnb folder source (``reps.csv`` ... or ``.parquet``), atomically."""
        from pipnb.io import atomic_write_table

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            frame = getattr(self, name)
            if frame is not None:
                atomic_write_table(frame, folder / f"{name}.{format}")
        return folder
