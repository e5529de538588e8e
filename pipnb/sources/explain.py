"""Why a load stopped: an error that ends a load still carries what the load read and left out.

:func:`explained` turns a :class:`~pipnb.errors.DataError` into one that carries the partial data (``err.data``:
its ``quality`` is the ledger so far, which ``pipnb check`` prints before the error) and, when a table ended
empty, says in its own line why: the rows read per file and the reasons they were left out (``pipnb scan`` and
every other command print that line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from pipnb.data import SalesData
from pipnb.errors import DataError
from pipnb.ledger import FILE, REMOVED, Ledger

if TYPE_CHECKING:   # pandera (behind pipnb.validate) is imported only when data is validated
    from pipnb.validate import RawTable

REASONS_SHOWN = 3       # per file, in an error line


def empty_tables(tables: dict[str, RawTable]) -> list[str]:
    """The required tables an adapter handed over without a row."""
    return [name for name in ("reps", "opportunities") if name in tables and tables[name].frame.empty]


def why_empty(ledger: Ledger) -> str:
    """Rows read per file and, for each file that lost rows, the reasons (most rows first): ``User.csv: 5 rows
    read, 3 not a rep: owns no opportunity, task or event, 2 deleted in the CRM (IsDeleted is set)``."""
    issues = pd.concat(ledger.parts, ignore_index=True) if ledger.parts else pd.DataFrame(
        columns=["table", "file", "row", "action", "reason"])
    removed = issues[issues["action"].isin(REMOVED)].drop_duplicates(["table", "file", "row"])
    parts = []
    for (table, file), read in ledger.reads.items():
        mine = removed[(removed["table"] == table) & (removed["file"] == file)]
        counts = mine.groupby("reason", sort=False).size().sort_values(ascending=False, kind="stable")
        shown = [f"{n:,} {reason}" for reason, n in counts.head(REASONS_SHOWN).items()]
        if len(counts) > REASONS_SHOWN:
            others = int(counts.iloc[REASONS_SHOWN:].sum())
            shown.append(f"{others:,} for {len(counts) - REASONS_SHOWN} other reasons")
        rows = f"{file}: {read:,} row{'s' if read != 1 else ''} read"
        parts.append(rows + (f", {', '.join(shown)}" if shown else ""))
    return "; ".join(parts)


def partial_data(ledger: Ledger, tables: dict[str, RawTable] | None, *, source: str, timezone: str) -> SalesData:
    """What a load that stopped holds: no rows, and the quality of the load so far (the rows an adapter handed
    over count as kept; a file it never handed over counts its rows read less those left out)."""
    tables = tables or {}
    kept = {name: raw.frame for name, raw in tables.items()}
    quality = ledger.quality(kept, {name: raw.file for name, raw in tables.items()})
    files = quality.files
    if len(files):
        handed = {(name, raw.file) for name, raw in tables.items() if FILE not in raw.frame}
        handed |= {(name, f) for name, raw in tables.items() if FILE in raw.frame for f in raw.frame[FILE].unique()}
        left = [(t, f) not in handed for t, f in zip(files["table"], files["file"], strict=True)]
        lost = files["set_aside"] + files["filtered"] + files["duplicates"]
        files.loc[left, "rows_kept"] = (files["rows_read"] - lost).clip(lower=0)[left]
    empty = pd.DataFrame()
    return SalesData(reps=empty, opportunities=empty, source=source, timezone=timezone, notes=dict(ledger.notes),
                     quality=quality)


def explained(err: DataError, ledger: Ledger, tables: dict[str, RawTable] | None, *, source: str,
              timezone: str) -> DataError:
    """``err`` with the partial data (``err.data``) and, when a table ended empty, the reasons in its message."""
    data = getattr(err, "data", None)
    ended_empty = getattr(err, "empty", False) or data is not None     # validation's "no row is left" has data
    if data is None:
        data = partial_data(ledger, tables, source=source, timezone=timezone)
    if ended_empty and (why := why_empty(ledger)):
        out = DataError(f"{err} — why: {why}")
        out.file, out.column, out.row = err.file, err.column, err.row
    else:
        out = err
    out.data = data
    return out


def stop_if_empty(tables: dict[str, RawTable]) -> None:
    """Raise (as validation would) when a required table ended without a row, marking the error as such."""
    for name in empty_tables(tables):
        err = DataError(f"the table is empty; it needs at least one row of {name}", file=tables[name].file)
        err.empty = True
        raise err
