"""One report's inputs, prepared once by the batch: its rep's and its peer group's slice of the data and panel.

A diagnosis or a review compares one rep with their peer group and nobody else, so the batch hands each
notebook a *bundle* holding exactly that: the validated tables and the weekly panel restricted to the rep and
every member of the group the rep is judged in (the one peer rule, :func:`pipnb.peers.peer_table`, at every
date the report looks at: a diagnosis's window and the window before it, a plan's diagnosis window under the
batch's and the default policy). A report's load, memory and work then depend on its peer group's size, not on
the team's.

A bundle is a :meth:`pipnb.data.SalesData.write_snapshot` folder (the slice's tables, checked against their
fingerprint when read back) plus ``panel.parquet``, under the batch's cache entry
(``.pipnb/cache/<key>/slices/<hash of the rep ids>``): never in ``reports/``. It is built in a hidden folder and
renamed into place, so a kill leaves no partial bundle. The slice keeps the whole data's period
(:attr:`pipnb.data.SalesData.span`), so every window is the one the whole data gives; it carries the load's
per-file counts, not its row-by-row issue list (the team scan shows that, and it may name other reps).

Before a bundle is used, the rep's peers computed from the slice are checked against those from the whole
data at each of those dates; a slice that would change them is not used (the notebook gets the whole data).

:func:`report_data` is what a notebook calls: the bundle when it was given one, else the whole data (loaded,
with the panel read or computed), so a notebook run by hand with plain papermill still works.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from pipnb.data import SNAPSHOT, SalesData
from pipnb.errors import PipnbError
from pipnb.io import manifest_matches, write_manifest
from pipnb.ledger import DataQuality
from pipnb.metrics import data_window, weekly_panel
from pipnb.peers import PeerGroups, level_keys, peer_table, peers_in, scorecard
from pipnb.policy import Policy
from pipnb.sources import load

__all__ = ["Look", "diagnosis_bundle", "diagnosis_looks", "plan_looks", "prepared_for", "report_data", "slice_data",
           "slice_reps", "team_card", "write_bundle"]

PANEL = "panel.parquet"
CARD, CARD_META = "card.parquet", "card.json"

#: A date a report judges peers on: ``(on, until, policy)`` as :func:`pipnb.peers.peer_table` takes them.
Look = tuple[pd.Timestamp, pd.Timestamp, Policy]


def report_data(data_source: str, *, panel_path: str = "", prepared: str = "") -> tuple[SalesData, pd.DataFrame]:
    """A report's data and weekly panel: the batch's bundle when given (and whole), else the whole data.

    Parameters
    ----------
    data_source
        The data source (:func:`pipnb.load`); read only when there is no usable bundle.
    panel_path
        The batch's weekly panel (Parquet); empty computes it from the data.
    prepared
        A bundle folder written by :func:`write_bundle`; empty (a notebook run by hand) loads the whole data.

    Returns
    -------
    tuple[SalesData, pandas.DataFrame]
    """
    if prepared:
        bundle = read_bundle(prepared)
        if bundle is not None:
            return bundle

    data = load(data_source)
    return data, pd.read_parquet(panel_path) if panel_path else weekly_panel(data)


def read_bundle(folder: str | Path) -> tuple[SalesData, pd.DataFrame] | None:
    """The slice and panel in a bundle folder; None when it is missing, altered or half-written (every file
    must hash as its manifest recorded; the slice's fingerprint then needs no recomputing)."""
    folder = Path(folder)
    if not _whole(folder, card=False):
        return None
    data = SalesData.read_snapshot(folder, verified=True)
    if data is None or data.span is None:
        return None
    try:
        panel = pd.read_parquet(folder / PANEL)
    except (OSError, ValueError):
        return None
    return data, panel


def prepared_for(batch, rep_id: str, looks: list[Look], *, stamp: str | pd.Timestamp,
                 diagnosis_as_of: str | None = None) -> str:
    """The bundle folder for one report of ``rep_id`` in ``batch`` (written once, shared by the reports of the
    same reps), or ``""`` when the report needs the whole data (a peer group of everyone) or the batch has no
    cache. The slice records the whole data's fingerprint up to ``stamp`` (what the report says it stands on:
    a diagnosis's last day, a plan's diagnosis end). For a diagnosis (``diagnosis_as_of``) the bundle also
    holds the team's scorecard of its window, computed once per batch."""
    if batch.cache is None:
        return ""
    memo = batch._memo
    reps = slice_reps(batch.data, rep_id, looks, tables=memo.setdefault("peer_tables", {}))
    if reps is None or len(reps) == len(batch.data.reps):
        return ""
    if "rows" not in memo:
        memo["rows"] = row_index(batch.data)
    card = None if diagnosis_as_of is None else batch_scorecard(batch, diagnosis_as_of)
    day = f"{pd.Timestamp(stamp):%Y-%m-%d}"
    return str(write_bundle(batch.data, batch.panel, reps, batch.cache / "slices", rows=memo["rows"], card=card,
                            stamps={day: batch.fingerprint_until(day)}))


def batch_scorecard(batch, as_of: str) -> pd.DataFrame:
    """The whole team's :func:`~pipnb.peers.scorecard` of the diagnosis window ending ``as_of`` (``""``: the
    data's last day), computed once per batch and shared by every diagnosis and drafted plan of that window."""
    cards = batch._memo.setdefault("cards", {})
    if as_of not in cards:
        cards[as_of] = scorecard(batch.data, as_of=as_of or None, policy=batch.policy, panel=batch.panel)
    return cards[as_of]


def diagnosis_bundle(batch, rep_id: str, as_of: str) -> str:
    """:func:`prepared_for` a diagnosis as of ``as_of``; ``""`` when its window is not in the data (the notebook,
    given the whole data, then fails alone and says why, as any failed report does)."""
    try:
        looks = diagnosis_looks(batch.data, as_of, batch.policy)
    except PipnbError:
        return ""
    return prepared_for(batch, rep_id, looks, stamp=looks[0][1], diagnosis_as_of=as_of)


def team_card(prepared: str) -> pd.DataFrame | None:
    """The team's scorecard a batch prepared for a diagnosis (see :func:`pipnb.diagnose`'s ``card``), or None
    when there is none (a notebook run by hand: the diagnosis computes it)."""
    if not prepared:
        return None
    return read_card(Path(prepared))


def write_card(card: pd.DataFrame, folder: Path) -> None:
    """A scorecard as Parquet plus its ``attrs`` (window, settings, peer groups) as JSON."""
    attrs = dict(card.attrs)
    meta = {k: (f"{v.isoformat()}" if isinstance(v, pd.Timestamp) else v) for k, v in attrs.items() if k != "policy"}
    meta["policy"] = attrs["policy"].model_dump(mode="json")
    meta["timestamps"] = [k for k, v in attrs.items() if isinstance(v, pd.Timestamp)]
    plain = card.copy()
    plain.attrs = {}
    plain.to_parquet(folder / CARD, index=False)
    (folder / CARD_META).write_text(json.dumps(meta), encoding="utf-8")


def read_card(folder: Path) -> pd.DataFrame | None:
    """A scorecard written by :func:`write_card`; None when there is none or it cannot be read."""
    try:
        meta = json.loads((folder / CARD_META).read_text(encoding="utf-8"))
        card = pd.read_parquet(folder / CARD)
        policy = Policy.model_validate(meta.pop("policy"))
        for key in meta.pop("timestamps"):
            meta[key] = pd.Timestamp(meta[key])
    except (OSError, ValueError, KeyError, TypeError):
        return None

    card.attrs.update(meta, policy=policy, peers=PeerGroups(meta["peers"]))
    return card


# -- which reps a report needs ------------------------------------------------------------------------
def diagnosis_looks(data: SalesData, as_of: str | pd.Timestamp | None, policy: Policy,
                    weeks: int | None = None) -> list[Look]:
    """The dates a diagnosis judges peers on: its window's, and with the policy's confirmation rule the
    window before's (as :func:`pipnb.peers.scorecard` computes them)."""
    weeks = weeks or policy.diagnosis_weeks
    window = data_window(data, as_of or None, weeks)
    looks = [(window.start, window.last_day, policy)]
    if policy.confirm_previous_window:
        before = data_window(data, window.start - pd.Timedelta(days=1), window.weeks)
        looks.append((before.start, before.last_day, policy))
    return looks


def plan_looks(plan, policy: Policy) -> list[Look]:
    """The dates a plan document or a review judges peers on: the start of the plan's diagnosis window, under
    the batch's policy and the default one (:func:`pipnb.peers.plan_peers` is called with either)."""
    on = pd.Timestamp(plan.diagnosis_window.start)
    return [(on, on, rules.with_overrides(peer_by=plan.peer_by)) for rules in (policy, Policy.default())]


def slice_reps(data: SalesData, rep_id: str, looks: list[Look], *, tables: dict | None = None) -> list[str] | None:
    """The rep and every member of each peer group the rep is judged in at ``looks``, in the data's order.

    Returns None when the slice would change the rep's peers at one of the looks (it never should: the whole
    group at the chosen level is kept, ramping and departed members included); the caller then uses the
    whole data. ``tables`` memoizes the whole data's peer tables per look.
    """
    tables = {} if tables is None else tables
    ids = data.reps["rep_id"].astype(str).to_numpy()
    where = np.flatnonzero(ids == str(rep_id))
    if where.size == 0:
        return None
    i = int(where[0])
    keep = np.zeros(len(ids), dtype=bool)
    keep[i] = True
    for look in looks:
        table = _peer_table(data, look, tables)
        level = table["peer_level"].iloc[i]
        key = level_keys(table)[level]
        keep |= key == key[i]
    chosen = ids[keep].tolist()
    if len(chosen) == len(ids):
        return chosen
    part = data.reps[keep]
    sliced = SalesData(reps=part, opportunities=data.opportunities.iloc[:0], span=data.period)
    for look in looks:
        on, until, policy = look
        whole = peers_in(_peer_table(data, look, tables), str(rep_id))
        if peers_in(peer_table(sliced, on=on, policy=policy, until=until), str(rep_id)) != whole:
            return None
    return chosen


def _peer_table(data: SalesData, look: Look, tables: dict) -> pd.DataFrame:
    on, until, policy = look
    key = (pd.Timestamp(on), pd.Timestamp(until), policy.model_dump_json())
    if key not in tables:
        tables[key] = peer_table(data, on=on, policy=policy, until=until)
    return tables[key]


def slice_data(data: SalesData, rep_ids: list[str], *, rows: dict[str, dict] | None = None,
               stamps: dict[str, str] | None = None) -> SalesData:
    """``data`` restricted to ``rep_ids`` (their reps rows, opportunities and activities, in the data's order),
    keeping the whole data's period (and ``stamps``: the whole data's fingerprints on days a report records).

    ``rows`` may hold, per table, each rep's row positions (``DataFrame.groupby("rep_id").indices``) so that
    many slices of one large table cost no full scan each.
    """
    wanted = set(map(str, rep_ids))

    def part(name: str, frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None:
            return None
        index = (rows or {}).get(name)
        if index is None:
            return frame[frame["rep_id"].astype(str).isin(wanted)]
        hits = [index[r] for r in wanted if r in index]
        positions = np.sort(np.concatenate(hits)) if hits else np.empty(0, dtype=np.intp)
        return frame.iloc[positions]

    quality = DataQuality(files=data.quality.files, bad_rows=data.quality.bad_rows, warnings=data.quality.warnings)
    return SalesData(reps=part("reps", data.reps), opportunities=part("opportunities", data.opportunities),
                     activities=part("activities", data.activities), source=data.source, timezone=data.timezone,
                     notes=dict(data.notes), quality=quality, span=data.period, stamps=dict(stamps or {}))


def row_index(data: SalesData) -> dict[str, dict]:
    """Each rep's row positions in each table, computed once for many slices."""
    out = {}
    for name in ("reps", "opportunities", "activities"):
        frame = getattr(data, name)
        if frame is not None:
            out[name] = frame.groupby(frame["rep_id"].astype(str), sort=False, observed=True).indices
    return out


def write_bundle(data: SalesData, panel: pd.DataFrame, rep_ids: list[str], root: Path, *,
                 rows: dict[str, dict] | None = None, card: pd.DataFrame | None = None,
                 stamps: dict[str, str] | None = None) -> Path:
    """Write (or reuse) the bundle of ``rep_ids`` under ``root`` and return its folder.

    ``root`` belongs to one data set (the batch's cache entry is keyed by the data's fingerprint); the folder is
    named by the hash of the data's period and the rep ids: one bundle serves every report of the same reps (a
    rep's plan and reviews share one). A bundle already there and whole is reused. ``card``: the team's
    scorecard of a diagnosis (:func:`team_card` reads it back); its window is part of the name.
    """
    window = [] if card is None else ["card", *(str(card.attrs[k]) for k in ("as_of", "window_start", "weeks"))]
    stamps = dict(stamps or {})
    days = [f"{day}={value}" for day, value in sorted(stamps.items())]
    digest = hashlib.sha256("\n".join([*map(str, data.period), *window, *days, *map(str, rep_ids)]).encode())
    entry = Path(root) / digest.hexdigest()[:20]
    if _whole(entry, card=card is not None):
        return entry
    Path(root).mkdir(parents=True, exist_ok=True)
    building = Path(root) / f".{entry.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        sliced = slice_data(data, rep_ids, rows=rows, stamps=stamps)
        sliced.write_snapshot(building)
        part = panel[panel["rep_id"].astype(str).isin(set(map(str, rep_ids)))]
        part.to_parquet(building / PANEL, index=False)
        if card is not None:
            write_card(card, building)
        write_manifest(building)
        if entry.exists():                            # altered or half-written: replaced whole
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.replace(building, entry)
        except OSError:
            if not _whole(entry, card=card is not None):     # another batch wrote it at the same moment
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return entry


def _whole(entry: Path, *, card: bool) -> bool:
    """Whether a bundle folder is whole (its snapshot, panel and, when asked, card) and unaltered: every file
    hashes as recorded when it was built. Cheaper than reading it back; a bundle without a manifest (an older
    pipnb) is rebuilt, and a notebook does not use it."""
    return manifest_matches(entry, {SNAPSHOT, PANEL, *((CARD, CARD_META) if card else ())})
