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

Map keys and ``where`` values match ignoring case and runs of spaces (``Closed  Won`` is ``closed won``).
A value a map has no entry for stops the load with one error that lists every such value of the file
(give the map a ``default:`` to send the rest somewhere). Rows a ``where`` leaves out and older versions
``latest_by`` replaces are listed in the load's data quality, never silently lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipnb.errors import DataError, SourceError
from pipnb.ledger import DUPLICATE, FILE, FILTERED, Ledger, file_column
from pipnb.schema import ID_COLUMN, OPTIONAL, REQUIRED, TABLES
from pipnb.sources.files import columns_shown, read_table_file
from pipnb.sources.registry import register
from pipnb.validate import ROW, RawTable

_LATEST = "_latest"
Scalar = str | bool | int | float


class ValueMap(BaseModel):
    """A canonical column computed from a source column through a lookup table."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(alias="from")
    map: dict[str, str] = {}
    default: str | None = None


class TableMapping(BaseModel):
    """One file mapped onto a canonical table."""

    model_config = ConfigDict(extra="forbid")
    path: str
    columns: dict[str, str] = {}
    values: dict[str, ValueMap | str] = {}
    where: dict[str, list[Scalar] | Scalar] = {}
    latest_by: str | None = None


class ColumnsSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["columns"]
    timezone: str | None = None
    bad_rows: Literal["stop", "skip"] = "stop"
    tables: dict[Literal["reps", "opportunities", "activities"], list[TableMapping]]


@register("columns")
def read_columns(config: dict, base: Path, *, ledger: Ledger | None = None) -> dict[str, RawTable]:
    """Read every mapped file, keep the rows ``where`` selects, rename columns, translate values, and keep
    the latest version of each record (``latest_by``); several files of one table are stacked."""
    ledger = ledger or Ledger()
    spec = _spec(config)
    out = {}
    for name in TABLES:
        if name in spec.tables:
            mappings, listed = spec.tables[name], _listed(config, name)
            parts = [_read_mapped(name, mapping, base, ledger, f"tables.{name}" + (f".{i}" if listed else ""))
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
        first = err.errors()[0]
        loc = [str(p) for p in first["loc"] if str(p) not in ("ValueMap", "str", "list[str]", "bool", "int",
                                                                 "float") and not str(p).startswith("list[")]
        if len(loc) > 2 and loc[0] == "tables" and loc[1] in single and loc[2] == "0":
            del loc[2]
        raise SourceError(f"source YAML key `{'.'.join(loc)}`: {first['msg']}") from None


def _read_mapped(name: str, mapping: TableMapping, base: Path, ledger: Ledger, key: str) -> pd.DataFrame:
    path = (base / mapping.path)
    if not path.is_file():
        raise DataError(f"file not found ({key}.path in the source YAML is relative to the YAML)", file=str(path))
    raw = read_table_file(path)
    raw[FILE] = file_column(path.name, raw.index)
    ledger.read(name, path.name, len(raw))
    known = set(REQUIRED[name]) | set(OPTIONAL[name])
    raw = _where(raw, mapping, name, path.name, ledger, key)
    frame = pd.DataFrame({ROW: raw[ROW], FILE: raw[FILE]})
    for canonical, column in mapping.columns.items():
        _check_target(canonical, known, key)
        frame[canonical] = _column(raw, column, f"mapped to {canonical}", path.name)
    for canonical, value in mapping.values.items():
        _check_target(canonical, known, key)
        if isinstance(value, ValueMap):
            frame[canonical] = _translate(raw, value, path.name, canonical, key)
        else:
            frame[canonical] = pd.Series(value, index=raw.index, dtype=object)
    for canonical in REQUIRED[name]:
        if canonical not in frame.columns and canonical in raw.columns:
            frame[canonical] = raw[canonical]
    if mapping.latest_by is not None:
        frame[_LATEST] = _sort_key(_column(raw, mapping.latest_by, "latest_by", path.name))
    return frame


def _column(raw: pd.DataFrame, column: str, role: str, file: str) -> pd.Series:
    if column not in raw.columns:
        raise DataError(f"column '{column}' ({role}) is missing; columns present: "
                        f"{columns_shown(c for c in raw.columns if c not in (ROW, FILE))}", file=file, column=column)
    return raw[column]


def _check_target(canonical: str, known: set[str], key: str) -> None:
    if canonical not in known:
        raise SourceError(f"source YAML {key}: '{canonical}' is not a column of {key.split('.')[1]} "
                          f"(use one of {', '.join(sorted(known))})")


def loose(text: pd.Series) -> pd.Series:
    """Text compared loosely: case folded, blanks trimmed, runs of spaces made one (``Closed  Won``)."""
    return text.astype("string").str.strip().str.casefold().str.replace(r"\s+", " ", regex=True)


def _loose_key(value: object) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    return " ".join(str(value).split()).casefold()


def _where(raw: pd.DataFrame, mapping: TableMapping, name: str, file: str, ledger: Ledger, key: str) -> pd.DataFrame:
    """Keep the rows whose ``where`` columns hold one of the listed values; list the others as filtered."""
    for column, allowed in mapping.where.items():
        allowed = allowed if isinstance(allowed, list) else [allowed]
        values = _column(raw, column, f"{key}.where", file)
        keep = loose(values).isin([_loose_key(v) for v in allowed]).fillna(False).astype(bool)
        shown = ", ".join(str(v) for v in allowed)
        ledger.flag(name, raw, ~keep, column=column, action=FILTERED, values=values,
                    reason=f"not kept by where: {column} in [{shown}]")
        raw = raw[keep.to_numpy()]
    return raw


def _translate(raw: pd.DataFrame, value_map: ValueMap, file: str, canonical: str, key: str) -> pd.Series:
    text = _column(raw, value_map.source, f"values of {canonical}", file).astype("string").str.strip()
    table = {_loose_key(k): v for k, v in value_map.map.items()}
    mapped = loose(text).map(table).astype(object)
    unmapped = mapped.isna() & text.notna() & (text != "")
    if value_map.default is not None:
        return mapped.where(~unmapped, value_map.default)
    if unmapped.any():
        firsts = pd.DataFrame({"value": text[unmapped], "row": raw.loc[unmapped, ROW]})
        summary = firsts.groupby("value", sort=False)["row"].agg(["first", "count"])
        listed = ", ".join(f"'{value}' (row {first}{f', {count} rows' if count > 1 else ''})"
                           for value, first, count in summary.head(12).itertuples())
        more = f" and {len(summary) - 12} more" if len(summary) > 12 else ""
        index = unmapped.idxmax()
        raise DataError(f"{value_map.source} '{text[index]}' has no entry in {key}.values.{canonical}.map; "
                        f"values of {file} with no entry: {listed}{more}; add them to the map (or give it a "
                        f"`default:`); known: {', '.join(value_map.map) or 'none'}", file=file,
                        column=value_map.source, row=int(raw.loc[index, ROW]))
    return mapped


def _sort_key(values: pd.Series) -> pd.Series:
    """``latest_by`` values as numbers that sort like them: date-times, else numbers, else text."""
    text = values.astype("string").str.strip().replace("", pd.NA)
    stamps = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if stamps.notna().sum() == text.notna().sum() and text.notna().any():
        return pd.Series(stamps.astype("int64").astype(float).where(stamps.notna()), index=values.index)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() == text.notna().sum():
        return numbers.astype(float)
    return pd.Series(pd.Categorical(text, ordered=True).codes, index=values.index).astype(float).replace(-1, np.nan)


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
