"""The validated sales data every other module works on."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipnb.display import card_html, sales_data_facts, short_repr
from pipnb.errors import DataError, UnknownRepError
from pipnb.io import atomic_write_table, atomic_write_text, manifest_matches
from pipnb.ledger import DataQuality, LoadWarning
from pipnb.schema import TABLES

SNAPSHOT = "snapshot.json"


def rep_hint(rep_id: str, known: list[str], *, examples: str = "rep ids look like") -> str:
    """"did you mean 'R07'?" for an id in the wrong case or with a typo, else a few ids as examples: the one
    did-you-mean of a rep id (the API, and every command that takes a rep or a plan)."""
    same = [r for r in known if r.casefold() == rep_id.casefold()]
    close = same or difflib.get_close_matches(rep_id, known, n=1, cutoff=0.75)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"{examples}: {', '.join(known[:5])}" + (", …" if len(known) > 5 else "")


def _vouched(folder: Path) -> bool:
    """Whether the manifest written with a snapshot still matches every file it records (the folder's own, or
    its parent's: a batch's cache entry holds the snapshot in ``data/``). Hashing the files costs a fraction of
    hashing every row again, and proves as much."""
    return (manifest_matches(folder, {SNAPSHOT})
            or manifest_matches(folder.parent, {f"{folder.name}/{SNAPSHOT}"}))


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
        Counts of tolerated oddities seen while loading, e.g. ``open_opps_without_created_at``,
        ``open_close_dates_ignored``.
    quality
        What the load kept, set aside, blanked, filtered and corrected, row by row (see
        :mod:`pipnb.quality`; ``pipnb check`` prints it).
    span
        For a slice of a larger data set (one report's rep and peer group, see :mod:`pipnb.batch.bundle`):
        the whole data's first and last timestamps, so that :attr:`period` (and so every window and "the last
        day with data") is the whole data's; None for whole data.
    stamps
        For a slice: the whole data's :func:`pipnb.fingerprint.fingerprint_until` on the days its report
        records (``YYYY-MM-DD``), so that what a report says it stands on is the whole data's.
    """

    reps: pd.DataFrame
    opportunities: pd.DataFrame
    activities: pd.DataFrame | None = None
    source: str = "<memory>"
    timezone: str = "UTC"
    notes: dict[str, int] = field(default_factory=dict)
    quality: DataQuality = field(default_factory=DataQuality, repr=False, compare=False)
    span: tuple[pd.Timestamp, pd.Timestamp] | None = field(default=None, compare=False)
    stamps: dict[str, str] = field(default_factory=dict, compare=False)

    # -- display (Jupyter) -------------------------------------------------------------------
    def __repr__(self) -> str:
        return short_repr("SalesData", sales_data_facts(self))

    def _repr_html_(self) -> str:
        return card_html("SalesData", sales_data_facts(self))

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
            raise UnknownRepError(f"rep '{rep_id}' is not in the data from {self.source}: "
                                  f"{rep_hint(str(rep_id), self.rep_ids)} (`pipnb scan` lists the reps)")
        return hit.iloc[0]

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last timestamp seen in opportunities and activities.

        Raises
        ------
        DataError
            When no opportunity or activity carries a date.
        """
        if self.span is not None:
            return self.span
        stamps = [self.opportunities["created_at"], self.opportunities["closed_at"]]
        if self.activities is not None:
            stamps.append(self.activities["occurred_at"])
        both = pd.concat([s.dropna() for s in stamps])
        if both.empty:
            raise DataError(f"no opportunity or activity in the data from {self.source} has a date")
        return both.min(), both.max()

    def inactive(self, on: str | pd.Timestamp) -> pd.Series:
        """Whether each rep (a boolean Series on ``reps``' index) had left before the day ``on``.

        A rep has left when their ``end_date`` is before ``on``; a rep marked ``active: false`` without
        one was given the day of their last record when loaded. Such a rep is neither judged nor a peer.
        """
        if "end_date" not in self.reps:
            return pd.Series(False, index=self.reps.index)
        day = pd.Timestamp(on).normalize()
        return (self.reps["end_date"] < day).fillna(False).astype(bool)

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
        folder = self.write(folder, format="parquet")
        atomic_write_table(self.quality.files, folder / "quality-files.parquet")
        atomic_write_table(self.quality.issues, folder / "quality-issues.parquet")
        meta = {"fingerprint": self.fingerprint(), "source": self.source, "timezone": self.timezone,
                "notes": self.notes, "tables": [t for t in TABLES if self.has(t)],
                "bad_rows": self.quality.bad_rows, "warnings": [w.as_dict() for w in self.quality.warnings]}
        if self.span is not None:
            meta["span"] = [f"{stamp.isoformat()}" for stamp in self.span]
            meta["stamps"] = dict(self.stamps)
        atomic_write_text(folder / SNAPSHOT, json.dumps(meta, indent=1))
        return folder

    @classmethod
    def read_snapshot(cls, folder: str | Path, *, verified: bool = False) -> SalesData | None:
        """Read a folder written by :meth:`write_snapshot`; None when it is not one or was altered.

        ``verified``: the caller has checked every file against the hashes recorded when the folder was
        written (a batch's bundle, :func:`pipnb.batch.bundle.read_bundle`), so the tables' fingerprint is not
        recomputed (hashing every row costs more than reading the files)."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / SNAPSHOT).read_text())
            tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in meta["tables"]}
            quality = DataQuality(files=pd.read_parquet(folder / "quality-files.parquet"),
                                  issues=pd.read_parquet(folder / "quality-issues.parquet"),
                                  bad_rows=meta.get("bad_rows", "stop"),
                                  warnings=tuple(LoadWarning.from_dict(w) for w in meta.get("warnings", ()))) \
                if (folder / "quality-issues.parquet").is_file() else DataQuality()   # an older snapshot
            span = tuple(pd.Timestamp(stamp) for stamp in meta["span"]) if meta.get("span") else None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        data = cls(reps=tables["reps"], opportunities=tables["opportunities"], activities=tables.get("activities"),
                   source=meta["source"], timezone=meta["timezone"], notes=meta["notes"], quality=quality,
                   span=span, stamps=dict(meta.get("stamps") or {}))
        return data if verified or _vouched(folder) or data.fingerprint() == meta["fingerprint"] else None

    # -- output -----------------------------------------------------------------------------
    def write(self, folder: str | Path, *, format: str = "csv") -> Path:
        """Write the tables as a pipnb folder source (``reps.csv`` ... or ``.parquet``), atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            frame = getattr(self, name)
            if frame is not None:
                atomic_write_table(frame, folder / f"{name}.{format}")
        return folder
