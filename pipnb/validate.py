"""Turn raw source tables into validated canonical tables, naming every problem precisely.

Source adapters hand over :class:`RawTable` objects: a DataFrame whose columns already carry canonical
names (values may still be text), the file name to cite in messages, and the spreadsheet row of every
record (header = row 1). :func:`validate` parses types, checks each table with a pandera schema, then
checks the tables against each other, and returns a :class:`~pipnb.data.SalesData`. The first problem
found raises :class:`~pipnb.errors.DataError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipnb.data import SalesData
from pipnb.errors import DataError
from pipnb.schema import DATE_COLUMNS, ID_COLUMN, KINDS, OPTIONAL, OUTCOMES, REQUIRED

ROW = "_row"  # spreadsheet row of each record, carried by adapters for messages
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


@dataclass
class RawTable:
    """One table as a source adapter read it.

    Attributes
    ----------
    frame
        Canonical column names; an optional ``_row`` column holds each record's spreadsheet row.
    file
        Name used in error messages (``opportunities.csv``, ``Task.csv``, ``sql:deals``).
    hints
        Per canonical column, how the user fixes a missing column in this source (appended to messages).
    """

    frame: pd.DataFrame
    file: str
    hints: dict[str, str] | None = None


def validate(tables: dict[str, RawTable], *, source: str, timezone: str = "UTC") -> SalesData:
    """Parse and check raw tables; return the validated :class:`SalesData`.

    Parameters
    ----------
    tables
        ``reps`` and ``opportunities`` are required; ``activities`` may be absent.
    source
        Shown in report headers and messages.
    timezone
        Zone aware timestamps are converted to; naive timestamps are taken to be in it already.

    Raises
    ------
    DataError
        The first problem found, naming the file, row and column and how to fix it.
    """
    for name in ("reps", "opportunities"):
        if name not in tables:
            raise DataError(f"the source has no {name} table; provide {name}.csv (or .parquet) "
                            "or map it in the source YAML", file=source)
    parsed = {name: _parse(raw, name, timezone) for name, raw in tables.items()}
    for name, frame in parsed.items():
        _check_schema(frame, name, tables[name].file)
    notes = _check_relations(parsed, {name: raw.file for name, raw in tables.items()})
    clean = {name: frame.drop(columns=ROW).reset_index(drop=True) for name, frame in parsed.items()}
    return SalesData(reps=clean["reps"], opportunities=clean["opportunities"],
                     activities=clean.get("activities"), source=source, timezone=timezone, notes=notes)


# -- parsing ------------------------------------------------------------------------------------
def _parse(raw: RawTable, name: str, timezone: str) -> pd.DataFrame:
    frame = raw.frame.copy()
    if ROW not in frame.columns:
        frame[ROW] = np.arange(len(frame)) + 2
    for column in REQUIRED[name]:
        if column not in frame.columns:
            hint = (raw.hints or {}).get(column) or "add it or map it with a column-mapping YAML"
            raise DataError(f"column '{column}' is missing (required: {', '.join(REQUIRED[name])}); {hint}",
                            file=raw.file, column=column)
    if frame.empty:
        raise DataError(f"the table is empty; it needs at least one row of {name}", file=raw.file)
    keep = [c for c in (*REQUIRED[name], *OPTIONAL[name], ROW) if c in frame.columns]
    frame = frame[keep]
    for column in keep:
        if column in DATE_COLUMNS[name]:
            frame[column] = parse_dates(frame[column], frame[ROW], raw.file, column, timezone)
        elif column == "amount":
            frame[column] = _parse_numbers(frame[column], frame[ROW], raw.file, column)
        elif column != ROW:
            frame[column] = _as_text(frame[column])
    for column in ("outcome", "kind"):
        if column in frame.columns:
            frame[column] = frame[column].str.strip().str.lower()
    return frame


def _as_text(series: pd.Series) -> pd.Series:
    """Text with surrounding blanks removed; empty strings become missing; 7.0 ids become '7'."""
    if pd.api.types.is_float_dtype(series) and (series.dropna() % 1 == 0).all():
        series = series.astype("Int64")
    text = series.astype("str").str.strip()   # Arrow-backed strings: fast joins and lookups downstream
    return text.mask(text == "")


def parse_dates(series: pd.Series, rows: pd.Series, file: str, column: str, timezone: str) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[ns]")
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.astype("datetime64[ns]")
    text = _as_text(series)
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    aware = text.notna() & text.fillna("").str.contains(_OFFSET)
    naive = text.notna() & ~aware
    if aware.any():
        stamps = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
        out[aware] = stamps.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[ns]")
    if naive.any():
        out[naive] = pd.to_datetime(text[naive], format="ISO8601", errors="coerce").astype("datetime64[ns]")
    bad = text.notna() & out.isna()
    if bad.any():
        first = bad.idxmax()
        raise DataError(f"{column} '{text[first]}' is not a date (use YYYY-MM-DD or ISO 8601, "
                        "e.g. 2024-03-31T14:05:00+02:00)", file=file, column=column, row=int(rows[first]))
    return out


def _parse_numbers(series: pd.Series, rows: pd.Series, file: str, column: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    text = _as_text(series)
    numbers = pd.to_numeric(text.str.replace(r"[,\s$€£]", "", regex=True), errors="coerce")
    bad = text.notna() & numbers.isna()
    if bad.any():
        first = bad.idxmax()
        raise DataError(f"{column} '{text[first]}' is not a number (use digits and a decimal point)",
                        file=file, column=column, row=int(rows[first]))
    return numbers.astype(float)


# -- per-table checks (pandera) -----------------------------------------------------------------
def _schema(name: str) -> pa.DataFrameSchema:
    text = {c: pa.Column(nullable=False) for c in REQUIRED[name] if c not in DATE_COLUMNS[name]}
    columns: dict[str, pa.Column] = dict(text)
    columns[ID_COLUMN[name]] = pa.Column(nullable=False, unique=True)
    if name == "opportunities":
        columns["outcome"] = pa.Column(checks=pa.Check.isin(OUTCOMES), nullable=False)
        columns["amount"] = pa.Column(float, pa.Check.ge(0), nullable=True, required=False)
    if name == "activities":
        columns["kind"] = pa.Column(checks=pa.Check.isin(KINDS), nullable=False)
        columns["occurred_at"] = pa.Column("datetime64[ns]", nullable=False)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


_FIXES = {
    "outcome": f"use one of {', '.join(OUTCOMES)} (map other stage names with `values:` in a column-mapping YAML)",
    "kind": f"use one of {', '.join(KINDS)}",
    "amount": "amounts must be zero or positive",
}


def _check_schema(frame: pd.DataFrame, name: str, file: str) -> None:
    try:
        _schema(name).validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases.dropna(subset=["index"]).sort_values("index", key=_row_key(frame))
        if cases.empty:
            raise DataError(str(errors).splitlines()[0], file=file) from None
        case = cases.iloc[0]
        column, index = case["column"], case["index"]
        if "unique" in str(case["check"]) or "duplicate" in str(case["check"]):
            index = frame.index[frame[column].duplicated(keep="first")][0]
        raise DataError(_describe(frame, column, index, str(case["check"])), file=file, column=column,
                        row=int(frame.loc[index, ROW])) from None


def _row_key(frame: pd.DataFrame):
    return lambda idx: idx.map(lambda i: frame[ROW].get(i, 0))


def _describe(frame: pd.DataFrame, column: str, index, check: str) -> str:
    value = frame.loc[index, column]
    if "unique" in check or "duplicate" in check:
        first = frame.loc[frame[column] == value, ROW].min()
        return f"{column} '{value}' appears more than once (first at row {first}); ids must be unique"
    if "not_nullable" in check or pd.isna(value):
        return f"{column} is empty; every row needs a {column}"
    return f"{column} '{value}' is not valid: {_FIXES.get(column, check)}"


# -- cross-table checks -------------------------------------------------------------------------
def _check_relations(tables: dict[str, pd.DataFrame], files: dict[str, str]) -> dict[str, int]:
    reps, opps = tables["reps"], tables["opportunities"]
    known_reps = set(reps["rep_id"])
    _first_missing(opps, "rep_id", known_reps, files["opportunities"], files["reps"])

    closed = opps["outcome"].isin(("won", "lost"))
    no_close = closed & opps["closed_at"].isna() if "closed_at" in opps else closed
    if no_close.any():
        row = opps.loc[no_close.idxmax()]
        raise DataError(f"outcome '{row['outcome']}' needs a closed_at date (opp {row['opp_id']}); "
                        "add the close date or mark the opportunity open", file=files["opportunities"],
                        column="closed_at", row=int(row[ROW]))
    no_created = opps["created_at"].isna()
    if (no_created & closed).any():
        row = opps.loc[(no_created & closed).idxmax()]
        raise DataError(f"created_at is empty for closed opportunity {row['opp_id']}; add the created date",
                        file=files["opportunities"], column="created_at", row=int(row[ROW]))
    if "closed_at" in opps:
        backwards = opps["closed_at"] < opps["created_at"]
        if backwards.any():
            row = opps.loc[backwards.idxmax()]
            raise DataError(f"closed_at {row['closed_at']:%Y-%m-%d} is before created_at "
                            f"{row['created_at']:%Y-%m-%d} (opp {row['opp_id']}); fix one of the two dates",
                            file=files["opportunities"], column="closed_at", row=int(row[ROW]))
    else:
        tables["opportunities"] = opps.assign(closed_at=pd.Series(pd.NaT, index=opps.index,
                                                                  dtype="datetime64[ns]"))

    if "activities" in tables:
        acts = tables["activities"]
        _first_missing(acts, "rep_id", known_reps, files["activities"], files["reps"])
        if "opp_id" in acts:
            _first_missing(acts, "opp_id", set(opps["opp_id"]), files["activities"], files["opportunities"])
    return {"open_opps_without_created_at": int(no_created.sum())}


def _first_missing(frame: pd.DataFrame, column: str, known: set, file: str, parent: str) -> None:
    unknown = frame[column].notna() & ~frame[column].isin(known)
    if unknown.any():
        row = frame.loc[unknown.idxmax()]
        raise DataError(f"{column} '{row[column]}' is not in {parent}; add it there or remove this row",
                        file=file, column=column, row=int(row[ROW]))
