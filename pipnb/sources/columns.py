"""``format: columns`` — any CSV export, mapped onto the canonical tables by a YAML file.

.. code-block:: yaml

    format: columns
    bad_rows: skip                   # stop (default): the first bad row stops the load
    tables:
      reps:
        path: sellers.csv            # relative to the YAML file
        columns: {rep_id: seller_id, rep_name: seller_name, team: team, hire_date: hire_date, active: is_active}
      opportunities:
        path: opportunities.csv
        columns: {opp_id: opportunity_id, rep_id: seller_id, created_at: created_date, closed_at: close_date}
        latest_by: last_modified_ts  # several rows with one opp_id: keep the latest by this column
        values:
          outcome: {from: stage, map: {closed won: won, closed lost: lost, prospecting: open}}
      activities:                    # a table may come from several files
        - path: calls.csv
          columns: {activity_id: call_id, rep_id: owner, occurred_at: call_date, opp_id: deal}
          values: {kind: call}       # a constant for every row of this file
          where: {status: [Held, Completed]}   # keep only these rows (the others are counted)
        - path: emails.csv
          columns: {activity_id: id, rep_id: owner, occurred_at: sent_at, opp_id: deal}
          values: {kind: email}

A table's ``dates:`` gives the strptime format of its date columns (``"%m/%d/%Y"``; ISO 8601 values are
still accepted); a list in ``columns:`` takes the first non-blank value of its columns; a ``values:`` entry may be
a list of rules (:mod:`pipnb.sources.rules`); ``lookup:`` takes columns from another file by a key
(:mod:`pipnb.sources.lookup`).

Map keys and ``where`` values match ignoring case and runs of spaces (``Closed  Won`` is ``closed won``).
A value a map has no entry for stops the load with one error that lists every such value of the file
(give the map a ``default:`` to send the rest somewhere: blank values included). Rows a ``where`` leaves out and
older versions ``latest_by`` replaces are listed in the load's data quality, never silently lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from pipnb.errors import SourceError
from pipnb.ledger import DUPLICATE, FILE, FILTERED, Ledger, file_column
from pipnb.schema import ID_COLUMN, OPTIONAL, REQUIRED, TABLES
from pipnb.sources.files import mapped_file, read_table_file
from pipnb.sources.lookup import Lookup, join
from pipnb.sources.registry import register
from pipnb.sources.rules import (
    ValueMap,
    apply_date_format,
    check_date_format,
    check_rules,
    column_of,
    first_present,
    loose,
    loose_key,
    sort_key,
    translate,
)
from pipnb.validate import ROW, RawTable

__all__ = ["ColumnsSource", "TableMapping", "loose", "read_columns"]

_LATEST = "_latest"
Scalar = str | bool | int | float


class TableMapping(BaseModel):
    """One file mapped onto a canonical table."""

    model_config = ConfigDict(extra="forbid")
    path: str
    dates: str | None = None
    columns: dict[str, str | list[str]] = {}
    values: dict[str, ValueMap | list[ValueMap] | str] = {}
    lookup: list[Lookup] = []
    where: dict[str, list[Scalar] | Scalar] = {}
    latest_by: str | None = None


class ColumnsSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["columns"]
    timezone: str | None = None
    bad_rows: Literal["stop", "skip"] = "stop"
    tables: dict[Literal["reps", "opportunities", "activities"], list[TableMapping]]


@register("columns")
def read_columns(config: dict, base: Path, *, ledger: Ledger | None = None,
                 timezone: str = "UTC") -> dict[str, RawTable]:
    """Read every mapped file, keep the rows ``where`` selects, rename columns (the first non-blank of a list),
    translate values, join looked-up columns, read the table's ``dates:`` format, and keep the latest version of
    each record (``latest_by``); several files of one table are stacked."""
    ledger = ledger or Ledger()
    spec = _spec(config)
    out, read = {}, {}
    for name in TABLES:
        if name in spec.tables:
            mappings, listed = spec.tables[name], _listed(config, name)
            parts = [_read_mapped(name, mapping, base, ledger, f"tables.{name}" + (f".{i}" if listed else ""),
                                  read, timezone)
                     for i, mapping in enumerate(mappings)]
            frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            if _LATEST in frame:
                frame = _keep_latest(frame, name, mappings, ledger)
            hints = {c: f"map it under tables.{name}.columns in the source YAML" for c in REQUIRED[name]}
            label = " + ".join(dict.fromkeys(Path(m.path).name for m in mappings))
            out[name] = RawTable(frame, label, hints)
    return out


def _listed(config: dict, name: str) -> bool:
    tables = config.get("tables") if isinstance(config, dict) else None
    return isinstance(tables, dict) and isinstance(tables.get(name), list)


_BRANCHES = ("ValueMap", "Keys", "str", "bool", "int", "float")


def _spec(config: dict) -> ColumnsSource:
    """The YAML checked; a table given as one mapping is a list of one (errors still name it unindexed)."""
    tables = config.get("tables") if isinstance(config, dict) else None
    single = set()
    if isinstance(tables, dict):
        single = {k for k, v in tables.items() if isinstance(v, dict)}
        config = {**config, "tables": {k: [v] if k in single else v for k, v in tables.items()}}
    try:
        return ColumnsSource.model_validate(config)
    except ValidationError as err:
        # of a union's failures, the deepest names the mistake (`outcome[1].map`, not "should be a string")
        first = max(err.errors(), key=lambda e: len([p for p in e["loc"] if not _branch(p)]))
        loc = [p for p in first["loc"] if not _branch(p)]
        if len(loc) > 2 and loc[0] == "tables" and loc[1] in single and loc[2] == 0:
            del loc[2]
        raise SourceError(f"source YAML key `{_key(loc)}`: {first['msg']}") from None


def _branch(part: object) -> bool:
    """Whether a pydantic location part names a union's branch (``list[ValueMap]``), not a YAML key."""
    return isinstance(part, str) and (part in _BRANCHES or part.startswith(("list[", "dict[")))


def _key(loc: list) -> str:
    """A YAML key as the docs write it: ``tables.opportunities.values.outcome[1].map`` (a table's files:
    ``tables.activities.0``)."""
    return "".join(f"[{p}]" if isinstance(p, int) and at > 2 else f".{p}" for at, p in enumerate(loc)).lstrip(".")


def _read_mapped(name: str, mapping: TableMapping, base: Path, ledger: Ledger, key: str,
                 read: dict[Path, pd.DataFrame], timezone: str) -> pd.DataFrame:
    """One file's rows as canonical columns, in the order the YAML's keys apply: ``where``, ``columns``,
    ``values``, ``lookup``, ``dates``, ``latest_by`` (``read``: the files this load has read, by path)."""
    if mapping.dates is not None:
        check_date_format(mapping.dates, f"{key}.dates")
    path = mapped_file(base, mapping.path, f"{key}.path")
    if path not in read:
        read[path] = read_table_file(path)
    raw = read[path].copy(deep=False)
    raw[FILE] = file_column(path.name, raw.index)
    ledger.read(name, path.name, len(raw))
    known = set(REQUIRED[name]) | set(OPTIONAL[name])
    raw = _where(raw, mapping, name, path.name, ledger, key)
    frame = pd.DataFrame({ROW: raw[ROW], FILE: raw[FILE]})
    origins: dict[str, object] = {}
    for canonical, column in mapping.columns.items():
        _check_target(canonical, known, f"{key}.columns")
        frame[canonical], origins[canonical] = first_present(raw, column, f"{key}.columns.{canonical}", path.name)
        if isinstance(column, list):          # how often each fallback stood in: a count in the load's notes
            taken = origins[canonical].value_counts()
            for i, later in enumerate(column[1:], start=1):
                blanks = f"{' and '.join(column[:i])} {'is' if i == 1 else 'are'} blank"
                ledger.note(f"{path.name}: {later} used where {blanks}", int(taken.get(later, 0)))
    for canonical, value in mapping.values.items():
        _check_target(canonical, known, f"{key}.values")
        _check_once(canonical, frame, f"{key}.values.{canonical}", key)
        if isinstance(value, str):
            frame[canonical] = pd.Series(value, index=raw.index, dtype=object)
            continue
        rules = value if isinstance(value, list) else [value]
        check_rules(rules, canonical, f"{key}.values.{canonical}", listed=isinstance(value, list))
        frame[canonical] = translate(raw, rules, path.name, canonical, f"{key}.values.{canonical}",
                                     listed=isinstance(value, list))
        origins[canonical] = " / ".join(rule.source for rule in rules)
    for i, lookup in enumerate(mapping.lookup):
        at = f"{key}.lookup[{i}]"
        if not lookup.columns:
            raise SourceError(f"source YAML {at}.columns: empty; name the fields to take from {lookup.path} "
                              "(columns: {rep_id: owner_id})")
        for canonical in lookup.columns:
            _check_target(canonical, known, f"{at}.columns")
            _check_once(canonical, frame, f"{at}.columns.{canonical}", key)
        frame, found = join(frame, _rows(raw, frame), lookup, name=name, key=at, file=path.name, base=base,
                            ledger=ledger, read=read, dates=mapping.dates)
        origins.update(found)
    raw = _rows(raw, frame)
    for canonical in REQUIRED[name]:
        if canonical not in frame.columns and canonical in raw.columns:
            frame[canonical] = raw[canonical]
    if mapping.dates is not None:
        frame = apply_date_format(frame, name, mapping.dates, origins, f"{key}.dates", path.name, ledger, timezone)
    if mapping.latest_by is not None:
        frame[_LATEST] = sort_key(column_of(raw, mapping.latest_by, "latest_by", path.name),
                                  mapping.dates)
    return frame


def _rows(raw: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``raw`` still in ``frame`` (``raw`` itself when a lookup or a date set none aside)."""
    return raw if len(raw) == len(frame) else raw.loc[frame.index]


def _check_target(canonical: str, known: set[str], key: str) -> None:
    if canonical not in known:
        raise SourceError(f"source YAML {key}: '{canonical}' is not a column of {key.split('.')[1].split('[')[0]} "
                          f"(use one of {', '.join(sorted(known))})")


def _check_once(canonical: str, frame: pd.DataFrame, key: str, table_key: str) -> None:
    if canonical in frame.columns:
        raise SourceError(f"source YAML {key}: {canonical} is already mapped (under {table_key}.columns, values or "
                          f"an earlier lookup); give each field one source (a list in columns: for a fallback)")


def _where(raw: pd.DataFrame, mapping: TableMapping, name: str, file: str, ledger: Ledger, key: str) -> pd.DataFrame:
    """Keep the rows whose ``where`` columns hold one of the listed values; list the others as filtered."""
    for column, allowed in mapping.where.items():
        allowed = allowed if isinstance(allowed, list) else [allowed]
        values = column_of(raw, column, f"{key}.where", file)
        keep = loose(values).isin([loose_key(v) for v in allowed]).fillna(False).astype(bool)
        shown = ", ".join(str(v) for v in allowed)
        ledger.flag(name, raw, ~keep, column=column, action=FILTERED, values=values,
                    reason=f"not kept by where: {column} in [{shown}]")
        raw = raw[keep.to_numpy()]
    return raw


def _keep_latest(frame: pd.DataFrame, name: str, mappings: list[TableMapping], ledger: Ledger) -> pd.DataFrame:
    """One row per id: the latest by ``latest_by`` (ties: the later row); the older versions are listed."""
    id_column = ID_COLUMN[name]
    by = ", ".join(dict.fromkeys(m.latest_by for m in mappings if m.latest_by))
    ids = frame[id_column].astype("string").str.strip() if id_column in frame else None
    if ids is None:
        return frame.drop(columns=_LATEST)
    order = pd.DataFrame({"id": ids, "key": frame[_LATEST].fillna(-np.inf), "pos": np.arange(len(frame))})
    order = order.sort_values(["id", "key", "pos"], kind="stable")
    older = order["id"].notna() & order["id"].duplicated(keep="last")
    stale = pd.Series(False, index=frame.index)
    stale[order.index[older.to_numpy()]] = True
    ledger.flag(name, frame, stale, column=id_column, action=DUPLICATE,
                reason=f"an older version of the record (the latest by {by} is kept)")
    return frame[~stale].drop(columns=_LATEST)
