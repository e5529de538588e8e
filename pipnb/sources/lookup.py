"""``lookup:`` — columns of a mapped file taken from another file, by a key (a left join).

.. code-block:: yaml

    lookup:
      - {path: leads.csv, on: lead_id, columns: {rep_id: owner_rep_id, account_id: account_id}}
      - {path: deals.csv, on: {this: lead_id, that: lead}, columns: {opp_id: deal_id}, latest_by: created}

``on:`` names the key column in both files, or ``{this: COLUMN, that: COLUMN}``. ``columns:`` maps canonical
fields to columns of the looked-up file (a list: the first non-blank value). Keys compare as text without
surrounding blanks. A key found more than once in the looked-up file stops the load, naming the file and the
key, unless the entry has ``latest_by:`` (then the latest row by that column is used; ties: the later row). A row
whose key is blank or has no match gets the looked-up fields blank and is listed in the load's data quality
("no match in leads.csv"): set aside when a looked-up field is required (``bad_rows`` decides whether that
stops the load), blanked otherwise. A looked-up file may be one another table also reads; it is read once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from pipnb.errors import DataError
from pipnb.ledger import BLANKED, SET_ASIDE, Ledger
from pipnb.schema import REQUIRED
from pipnb.sources.files import mapped_file, read_table_file
from pipnb.sources.rules import column_of, first_present, sort_key
from pipnb.validate import ROW


class Keys(BaseModel):
    """``on: {this: COLUMN, that: COLUMN}``: the key's column in the mapped file and in the looked-up one."""

    model_config = ConfigDict(extra="forbid")
    this: str
    that: str


class Lookup(BaseModel):
    """One ``lookup:`` entry."""

    model_config = ConfigDict(extra="forbid")
    path: str
    on: str | Keys
    columns: dict[str, str | list[str]]
    latest_by: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _on_key(cls, entry: object) -> object:
        """YAML 1.1 reads a bare ``on:`` key as the boolean true: it is the ``on`` key."""
        if isinstance(entry, dict) and True in entry and "on" not in entry:
            entry = {("on" if k is True else k): v for k, v in entry.items()}
        return entry


def keys_of(values: pd.Series) -> pd.Series:
    """Key values as text without surrounding blanks (``7.0`` from a Parquet float column is ``7``); blank is
    missing."""
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def join(frame: pd.DataFrame, raw: pd.DataFrame, lookup: Lookup, *, name: str, key: str, file: str, base: Path,
         ledger: Ledger, read: dict[Path, pd.DataFrame], dates: str | None = None
         ) -> tuple[pd.DataFrame, dict[str, str]]:
    """``frame`` (the canonical columns so far, on ``raw``'s index) with the looked-up columns added; rows whose
    key finds no match are listed (and set aside when a looked-up field is required). Also returns, for each
    looked-up field, the looked-up file's column (messages cite it)."""
    this, that = (lookup.on, lookup.on) if isinstance(lookup.on, str) else (lookup.on.this, lookup.on.that)
    on_key = f"{key}.on" if isinstance(lookup.on, str) else f"{key}.on.this"
    mine = keys_of(column_of(raw, this, on_key, file))
    path = mapped_file(base, lookup.path, f"{key}.path")
    if path not in read:
        read[path] = read_table_file(path)
    other, other_file = read[path], path.name
    theirs = keys_of(column_of(other, that, f"{key}.on" if isinstance(lookup.on, str) else f"{key}.on.that",
                               other_file))
    rows = _one_per_key(other, theirs, lookup, key, other_file, that, dates)
    found = pd.Series(pd.Index(theirs.iloc[rows]).get_indexer(mine), index=frame.index)
    unmatched = found < 0
    added, origins = {}, {}
    for canonical, columns in lookup.columns.items():
        values, _ = first_present(other, columns, f"{key}.columns.{canonical}", other_file,
                                  role=f"{key}.columns.{canonical}")
        picked = values.iloc[rows].to_numpy(dtype=object)
        added[canonical] = pd.Series(np.where(unmatched, None, picked[np.maximum(found.to_numpy(), 0)]),
                                     index=frame.index, dtype=object)
        origins[canonical] = f"{other_file} {columns if isinstance(columns, str) else ' / '.join(columns)}"
    frame = frame.assign(**added)
    required = [c for c in lookup.columns if c in REQUIRED[name]]
    fields = ", ".join(lookup.columns)
    shown = pd.Series(mine, dtype=object).fillna("")
    if required:
        aside = ledger.flag(name, frame, unmatched, column=this, values=shown, action=SET_ASIDE,
                            reason=f"no match in {other_file}",
                            message=f"{this} '{{value}}' has no match in {_literal(other_file)} ({that}; {key}), so "
                                    f"{', '.join(required)} is blank; add the row to {_literal(other_file)}, fix the "
                                    f"key, or load with --bad-rows skip to set such rows aside")
        frame = frame[~aside.to_numpy()] if aside.any() else frame
    else:
        ledger.flag(name, frame, unmatched, column=this, values=shown, action=BLANKED, stops=False,
                    reason=f"no match in {other_file}: {fields} left blank")
    return frame, origins


def _one_per_key(other: pd.DataFrame, keys: pd.Series, lookup: Lookup, key: str, file: str, that: str,
                 dates: str | None) -> np.ndarray:
    """The positions of the looked-up rows to use: one per non-blank key (the latest by ``latest_by``), or one
    error naming the file and the first repeated key."""
    present = keys.notna().to_numpy()
    if lookup.latest_by is None:
        repeated = keys.duplicated(keep=False) & keys.notna()
        if repeated.any():
            first = keys[repeated].iloc[0]
            at = other.loc[(keys == first).fillna(False).astype(bool), ROW].astype(int).tolist()
            shown = ", ".join(str(r) for r in at[:5]) + (f" and {len(at) - 5} more" if len(at) > 5 else "")
            others = int(keys[repeated].nunique()) - 1
            also = f" ({others:,} other key{'s repeat' if others != 1 else ' repeats'} too)" if others else ""
            raise DataError(f"{that} '{first}' appears {len(at)} times (rows {shown}){also}; {key} "
                            f"needs one row per {that}: remove the repeats, or give {key} a `latest_by: COLUMN` "
                            f"to use the latest row of each", file=file, column=that, row=at[1])
        return np.flatnonzero(present)
    order = pd.DataFrame({"id": keys, "key": sort_key(column_of(other, lookup.latest_by, f"{key}.latest_by", file),
                                                     dates).fillna(-np.inf),
                          "pos": np.arange(len(other))})[present]
    order = order.sort_values(["id", "key", "pos"], kind="stable")
    return np.sort(order.loc[~order["id"].duplicated(keep="last"), "pos"].to_numpy())


def _literal(text: str) -> str:
    """``text`` for a message template (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")
