"""Turn raw source tables into validated canonical tables, naming every problem precisely.

Source adapters hand over :class:`RawTable` objects: a DataFrame whose columns already carry canonical
names (values may still be text), the file name to cite in messages, and the spreadsheet row of every
record (header = row 1; a ``_file`` column names each record's file when a table has several).
:func:`validate` parses types, checks each table with a pandera schema, then checks the tables against
each other, applies the rules every source shares, and returns a :class:`~pipnb.data.SalesData`.

Every problem goes to the load's :class:`~pipnb.ledger.Ledger`: with ``bad_rows="stop"`` (the default)
the first one raises :class:`~pipnb.errors.DataError`; with ``"skip"`` a row whose required field is
invalid is set aside whole, an invalid optional value (amount, hire_date, end_date, active) is blanked,
and both are listed on the loaded data (``SalesData.quality``).

Rules of every source
---------------------
- an open deal's ``closed_at`` is a forecast: it is ignored (counted in ``notes``);
- a closed deal whose close precedes its creation is closed when created (listed as ``corrected``);
- two instants compare as days when either has no time of day (a close *date* on the day of a
  timestamped creation is not before it);
- a rep with ``active`` false and no ``end_date`` is taken to have left on the day of their last record.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipnb.data import SalesData
from pipnb.errors import DataError
from pipnb.ledger import (
    BEFORE_DEAL,
    BEFORE_HIRE,
    BLANKED,
    CORRECTED,
    FACT,
    FILE,
    LEFT_UNDATED,
    NO_OWNER,
    ROW,
    SET_ASIDE,
    UNTOUCHED,
    Ledger,
    file_column,
    row_column,
)
from pipnb.schema import BOOL_COLUMNS, DATE_COLUMNS, ID_COLUMN, KINDS, OPTIONAL, OUTCOMES, REQUIRED, TABLES
from pipnb.textcheck import codes_in, has_duplicates, maybe_padded, maybe_upper

__all__ = ["DATE_FIX", "FILE", "ROW", "RawTable", "earlier", "parse_dates", "to_dates", "validate"]

_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
DATE_FIX = "(use YYYY-MM-DD or ISO 8601, e.g. 2024-03-31T14:05:00+02:00)"
_TRUE = ("true", "1", "yes", "y", "t", "active")
_FALSE = ("false", "0", "no", "n", "f", "inactive")


@dataclass
class RawTable:
    """One table as a source adapter read it.

    Attributes
    ----------
    frame
        Canonical column names; an optional ``_row`` column holds each record's spreadsheet row, an
        optional ``_file`` column the file it came from (when a table has several).
    file
        Name used in error messages (``opportunities.csv``, ``Task.csv + Event.csv``, ``sql:deals``).
    hints
        Per canonical column, how the user fixes a missing column in this source (appended to messages).
    """

    frame: pd.DataFrame
    file: str
    hints: dict[str, str] | None = None


def validate(tables: dict[str, RawTable], *, source: str, timezone: str = "UTC",
             ledger: Ledger | None = None) -> SalesData:
    """Parse and check raw tables; return the validated :class:`SalesData`.

    Parameters
    ----------
    tables
        ``reps`` and ``opportunities`` are required; ``activities`` may be absent.
    source
        Shown in report headers and messages.
    timezone
        Zone aware timestamps are converted to; naive timestamps are taken to be in it already.
    ledger
        The load's record (default: a new one that stops at the first bad row).

    Raises
    ------
    DataError
        The first problem found (``bad_rows="stop"``), naming the file, row and column and how to fix it;
        with ``"skip"``, only problems no row can be set aside for (a missing column, an empty table, no
        row left). Such an error carries the partial data as ``err.data`` (its quality says why).
    """
    ledger = ledger or Ledger()
    for name in ("reps", "opportunities"):
        if name not in tables:
            raise DataError(f"the source has no {name} table; provide {name}.csv (or .parquet) "
                            "or map it in the source YAML", file=source)
    files = {name: raw.file for name, raw in tables.items()}
    parsed = {}
    for name in TABLES:
        if name in tables:
            ledger.read_frame(name, tables[name].frame, tables[name].file)
            parsed[name] = _parse(tables[name], name, timezone, ledger)
    for name, frame in parsed.items():
        parsed[name] = _check_schema(frame, name, ledger)
    parsed, links = _check_relations(parsed, files, ledger)
    parsed = _apply_rules(parsed, ledger)
    _note_facts(parsed, ledger, links)
    quality = ledger.quality(parsed, files)
    clean = {name: frame.drop(columns=[ROW, FILE]).reset_index(drop=True) for name, frame in parsed.items()}
    data = SalesData(reps=clean["reps"], opportunities=clean["opportunities"],
                     activities=clean.get("activities"), source=source, timezone=timezone,
                     notes=dict(ledger.notes), quality=quality)
    for name in ("reps", "opportunities"):
        if parsed[name].empty:
            err = DataError(f"no {name} row is left: every one was set aside; `pipnb check --data SRC` lists "
                            "why", file=files[name])
            err.data = data
            raise err
    return data


# -- parsing ------------------------------------------------------------------------------------
def _parse(raw: RawTable, name: str, timezone: str, ledger: Ledger) -> pd.DataFrame:
    frame = raw.frame
    for column in REQUIRED[name]:
        if column not in frame.columns:
            hint = (raw.hints or {}).get(column) or "add it or map it with a column-mapping YAML"
            raise DataError(f"column '{column}' is missing (required: {', '.join(REQUIRED[name])}); {hint}",
                            file=raw.file, column=column)
    if frame.empty:
        raise DataError(f"the table is empty; it needs at least one row of {name}", file=raw.file)
    keep = [c for c in (*REQUIRED[name], *OPTIONAL[name], ROW, FILE) if c in frame.columns]
    frame = frame[keep]
    if ROW not in frame.columns:
        frame[ROW] = row_column(frame.index)
    if FILE not in frame.columns:
        frame[FILE] = file_column(raw.file, frame.index)
    columns = [c for c in keep if c not in (ROW, FILE)]
    # Each column converts on its own (on a long table, two at a time: Arrow and numpy release the GIL); the
    # problems are then recorded column by column in the table's order, as one at a time would.
    converted = _each(lambda column: _convert(name, column, frame[column], timezone), columns, len(frame))
    aside = pd.Series(False, index=frame.index)
    for column, (values, bad, text) in zip(columns, converted):
        frame[column] = values
        if bad is None:                          # text
            continue
        required = column in REQUIRED[name]
        action = SET_ASIDE if required else BLANKED
        reason, fix = _NOT_A[_kind_of(name, column)]
        ledger.flag(name, frame, bad & ~aside, column=column, reason=reason, action=action, values=text,
                    message=f"{column} '{{value}}' {fix}")
        if required:
            aside |= bad
    return _without(frame, aside)


_NOT_A = {"date": ("is not a date", f"is not a date {DATE_FIX}"),
          "number": ("is not a number", "is not a number (use digits and a decimal point)"),
          "flag": ("is not true or false", "is not true or false (use true/false, yes/no, 1/0)")}

#: Rows from which a table's columns are converted, and its ids looked up, two at a time.
THREADED_ROWS = 200_000


def _each(work, items: list, rows: int) -> list:
    """``[work(item) for item in items]``, on two threads when the table has ``THREADED_ROWS`` rows or more
    (the threads end before this returns: nothing is left running when a batch forks its workers)."""
    if rows < THREADED_ROWS or len(items) < 2:
        return [work(item) for item in items]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(work, items))


def _kind_of(name: str, column: str) -> str:
    if column in DATE_COLUMNS[name]:
        return "date"
    if column == "amount":
        return "number"
    return "flag" if column in BOOL_COLUMNS[name] else "text"


def _convert(name: str, column: str, series: pd.Series, timezone: str
             ) -> tuple[pd.Series, pd.Series | None, pd.Series | None]:
    """One column parsed to its type: ``(values, bad, text)``; text columns give ``bad`` None."""
    kind = _kind_of(name, column)
    if kind == "date":
        return to_dates(series, timezone)
    if kind == "number":
        return _numbers(series)
    if kind == "flag":
        return _flags(series)
    text = _as_text(series)
    return (_lower(text) if column in ("outcome", "kind") else text), None, None


def _lower(text: pd.Series) -> pd.Series:
    """``text`` in lower case (``text`` itself when it has no capital to lower)."""
    return text.str.lower() if maybe_upper(text) else text


def _without(frame: pd.DataFrame, aside: pd.Series) -> pd.DataFrame:
    """``frame`` without the rows set aside (``frame`` itself when none is: no copy of millions of rows)."""
    return frame[~aside] if aside.any() else frame


def _as_text(series: pd.Series) -> pd.Series:
    """Text with surrounding blanks removed; empty strings become missing; 7.0 ids become '7'."""
    if pd.api.types.is_float_dtype(series) and (series.dropna() % 1 == 0).all():
        series = series.astype("Int64")
    text = series.astype("str")   # Arrow-backed strings: fast joins and lookups downstream
    if not maybe_padded(text):    # no value starts or ends with white space, none is empty: nothing to do
        return text
    text = text.str.strip()
    return text.mask(text == "")


def to_dates(series: pd.Series, timezone: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parsed naive timestamps in ``timezone`` (NaT where not a date), the rows that were not, and the text.

    A date outside what a nanosecond timestamp holds (before 1678, after 2261) is not a date.
    """
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert(timezone).dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(series):
        out = _nanoseconds(series)
        bad = pd.Series(False, index=series.index) if out is series else series.notna() & out.isna()
        return out, bad, _text_where(series, bad)
    text = _as_text(series)
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    aware = text.notna() & text.fillna("").str.contains(_OFFSET)
    naive = text.notna() & ~aware
    if aware.any():
        stamps = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
        out[aware] = _nanoseconds(stamps.dt.tz_convert(timezone).dt.tz_localize(None))
    if naive.any():
        out[naive] = _nanoseconds(pd.to_datetime(text[naive], format="ISO8601", errors="coerce"))
    return out, text.notna() & out.isna(), text


def _text_where(series: pd.Series, rows: pd.Series) -> pd.Series:
    """The values of ``rows`` as text (what a message quotes), missing elsewhere: formatting millions of typed
    values that are all fine would cost more than the whole check."""
    if not rows.any():         # all missing: a categorical of no category (one byte a row, not a string column)
        codes = np.full(len(series), -1, dtype=np.int8)
        return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index([], dtype="str")), index=series.index)
    text = pd.Series(pd.NA, index=series.index, dtype="string")
    text[rows] = series[rows].astype("string")
    return text


_EARLIEST, _LATEST = pd.Timestamp("1678-01-01"), pd.Timestamp("2261-12-31")


def _nanoseconds(stamps: pd.Series) -> pd.Series:
    """Naive timestamps as ``datetime64[ns]``; those a nanosecond timestamp cannot hold become NaT."""
    if stamps.dtype == "datetime64[ns]":
        return stamps
    inside = (stamps >= _EARLIEST) & (stamps <= _LATEST)
    return stamps.where(inside).astype("datetime64[ns]")


def parse_dates(series: pd.Series, rows: pd.Series, file: str, column: str, timezone: str) -> pd.Series:
    """Parse dates or date-times (ISO 8601, offsets honoured) to naive timestamps in ``timezone``.

    Raises
    ------
    DataError
        At the first value that is not a date, naming ``file``, its row and ``column``.
    """
    out, bad, text = to_dates(series, timezone)
    if bad.any():
        first = bad.idxmax()
        raise DataError(f"{column} '{text[first]}' is not a date {DATE_FIX}", file=file, column=column,
                        row=int(rows[first]))
    return out


def _numbers(series: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        nothing = pd.Series(False, index=series.index)
        return series.astype(float), nothing, _text_where(series, nothing)
    text = _as_text(series)
    numbers = pd.to_numeric(text.str.replace(r"[,\s$€£]", "", regex=True), errors="coerce").astype(float)
    numbers = numbers.where(np.isfinite(numbers))
    return numbers, text.notna() & numbers.isna(), text


def _flags(series: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(series):
        nothing = pd.Series(False, index=series.index)
        return series.astype("boolean"), nothing, _text_where(series, nothing)
    text = _as_text(series).str.lower()
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).to_numpy(bool)] = True
    out[text.isin(_FALSE).fillna(False).to_numpy(bool)] = False
    return out, text.notna() & out.isna(), text


# -- per-table checks (pandera) -----------------------------------------------------------------
def _schema(name: str) -> pa.DataFrameSchema:
    text = {c: pa.Column(nullable=False) for c in REQUIRED[name] if c not in DATE_COLUMNS[name]}
    columns: dict[str, pa.Column] = dict(text)
    columns[ID_COLUMN[name]] = pa.Column(nullable=False)   # repeats: :func:`_check_schema` (one hash each)
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
_REASONS = {"outcome": f"is not one of {', '.join(OUTCOMES)}", "kind": f"is not one of {', '.join(KINDS)}",
            "amount": "is negative"}


def _check_schema(frame: pd.DataFrame, name: str, ledger: Ledger) -> pd.DataFrame:
    """Check one table with its pandera schema; rows failing a required column are set aside, a negative
    amount is blanked (in the order of their first row: with ``bad_rows="stop"`` the earliest raises)."""
    key = ID_COLUMN[name]

    def schema_cases() -> pd.DataFrame | None:
        try:
            # pandera's default copies every column first (a deep copy of millions of rows); nothing here is
            # coerced, so it checks a shallow copy in place
            _schema(name).validate(frame.copy(deep=False), lazy=True, inplace=True)
        except SchemaErrors as errors:
            cases = errors.failure_cases.dropna(subset=["index"])
            if cases.empty:
                raise DataError(str(errors).splitlines()[0],
                                file=frame[FILE].iloc[0] if len(frame) else None) from None
            return cases
        return None
    # the id's repeats (hashing) and pandera's checks, side by side on a long table
    repeats, cases = _each(lambda check: check(), [lambda: has_duplicates(frame[key]), schema_cases], len(frame))
    if cases is None and not repeats:
        return frame
    groups = []
    for (column, check), case in ([] if cases is None else cases.groupby(["column", "check"], sort=False)):
        mask = pd.Series(frame.index.isin(case["index"]), index=frame.index)
        if mask.any():
            groups.append((int(frame.loc[mask, ROW].min()), column, str(check), mask))
    if repeats:      # after the id column's own checks (it comes first in the schema), as pandera's would be
        mask = frame[key].notna() & frame[key].duplicated(keep="first")
        at = sum(1 for group in groups if group[1] == key)
        groups.insert(at, (int(frame.loc[mask, ROW].min()), key, "field_uniqueness", mask))
    aside = pd.Series(False, index=frame.index)
    frame = frame.copy()
    for _, column, check, mask in sorted(groups, key=lambda g: g[0]):
        if "unique" in check or "duplicate" in check:
            mask = frame[column].notna() & ~aside & frame[column].where(~aside).duplicated(keep="first")
            ledger.flag(name, frame.assign(first=_first_of(frame, column, aside)), mask, column=column,
                        reason="appears more than once (the first is kept)",
                        message=f"{column} '{{value}}' appears more than once (first at {{first}}); ids must be unique")
        elif "not_nullable" in check:
            ledger.flag(name, frame, mask & ~aside, column=column,
                        message=f"{column} is empty; every row needs a {column}",
                        reason=NO_OWNER if (name, column) == ("opportunities", "rep_id") else "is empty")
        elif column == "amount":
            ledger.flag(name, frame, mask, column=column, action=BLANKED, reason=_REASONS[column],
                        message=f"{column} '{{value}}' is not valid: {_FIXES[column]}")
            frame[column] = frame[column].mask(mask)
            continue
        else:
            ledger.flag(name, frame, mask & ~aside, column=column, reason=_REASONS.get(column, f"fails {check}"),
                        message=f"{column} '{{value}}' is not valid: {_FIXES.get(column, check)}")
        aside |= mask
    return _without(frame, aside)


def _first_of(frame: pd.DataFrame, column: str, aside: pd.Series) -> pd.Series:
    """For each row, where the first row with its ``column`` value is (``row 2`` or ``calls.csv row 2``)."""
    kept = frame[~aside]
    firsts = kept.loc[~kept[column].duplicated(keep="first"), [column, ROW, FILE]].set_index(column)
    row = frame[column].map(firsts[ROW]).astype("Int64").astype("string")
    file = frame[column].map(firsts[FILE].astype("string")).astype("string")
    return ("row " + row).where(file == frame[FILE].astype("string"), file + " row " + row)


# -- cross-table checks -------------------------------------------------------------------------
def _check_relations(tables: dict[str, pd.DataFrame], files: dict[str, str],
                     ledger: Ledger) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    """Set aside the rows naming a rep or deal that is not there; also return, for the activities kept, the
    position of each one's rep in ``reps`` and deal in ``opportunities`` (``links``: ``"rep"``, ``"deal"``;
    -1 for none), which :func:`_note_facts` reuses rather than hashing millions of ids again."""
    tables, links = dict(tables), {}
    reps, opps = tables["reps"], tables["opportunities"]
    known_reps = reps["rep_id"]
    aside = _missing(ledger, "opportunities", opps, "rep_id", known_reps, files["reps"])

    closed = opps["outcome"].isin(("won", "lost"))
    if "closed_at" not in opps:
        opps = opps.assign(closed_at=pd.Series(pd.NaT, index=opps.index, dtype="datetime64[ns]"))
    no_close = closed & opps["closed_at"].isna() & ~aside
    ledger.flag("opportunities", opps, no_close, column="closed_at", reason="is empty on a closed (won or lost) deal",
                message="outcome '{outcome}' needs a closed_at date (opp {opp_id}); add the close date or mark the "
                        "opportunity open")
    aside |= no_close
    no_created = opps["created_at"].isna()
    ledger.flag("opportunities", opps, no_created & closed & ~aside, column="created_at",
                reason="is empty on a closed (won or lost) deal",
                message="created_at is empty for closed opportunity {opp_id}; add the created date")
    aside |= no_created & closed
    opps = tables["opportunities"] = _without(opps, aside)

    if "activities" in tables:         # the ids of reps and opportunities are unique by now
        acts = tables["activities"]
        lookups = [("rep_id", known_reps), *([("opp_id", opps["opp_id"])] if "opp_id" in acts else [])]
        rep, *deal = _each(lambda lookup: codes_in(acts[lookup[0]], lookup[1], dtype=np.int32), lookups, len(acts))
        aside = _missing(ledger, "activities", acts, "rep_id", rep >= 0, files["reps"])
        kept = None if not aside.any() else ~aside.to_numpy()        # None: every row (no copy of millions)
        acts, links["rep"] = _without(acts, aside), rep if kept is None else rep[kept]
        if "opp_id" in acts:
            links["deal"] = deal = deal[0] if kept is None else deal[0][kept]
            unknown = acts["opp_id"].notna() & (deal < 0)
            ledger.flag("activities", acts, unknown, column="opp_id", action=BLANKED,
                        reason=f"is not in {files['opportunities']} (or was set aside there)",
                        message=f"opp_id '{{value}}' is not in {_literal(files['opportunities'])}; add it there or "
                                "remove this row")
            if unknown.any():
                acts = acts.assign(opp_id=acts["opp_id"].mask(unknown))
        tables["activities"] = acts
    return tables, links


def _missing(ledger: Ledger, name: str, frame: pd.DataFrame, column: str, known: pd.Series | np.ndarray,
             parent: str) -> pd.Series:
    """Set aside the rows whose ``column`` names no record of ``parent`` (``known``: the ids of ``parent``, or
    whether each row's id is among them)."""
    found = known if isinstance(known, np.ndarray) else _within(frame[column], known).to_numpy()
    unknown = frame[column].notna() & ~found
    return ledger.flag(name, frame, unknown, column=column, reason=f"is not in {parent} (or was set aside there)",
                       message=f"{column} '{{value}}' is not in {_literal(parent)}; add it there or remove this row")


def _within(values: pd.Series, universe: pd.Series) -> pd.Series:
    """Whether each of ``values`` is among ``universe`` (Arrow's hash lookup: fast on millions of ids)."""
    found = codes_in(values, universe.dropna().drop_duplicates().astype("str")) >= 0
    return pd.Series(found, index=values.index)


def _literal(text: str) -> str:
    """``text`` for a message template (braces doubled)."""
    return str(text).replace("{", "{{").replace("}", "}}")


# -- rules of every source ------------------------------------------------------------------------
def earlier(a: pd.Series, b: pd.Series | np.ndarray) -> pd.Series:
    """Whether ``a`` is before ``b``; as days when either has no time of day (a date, or midnight).

    ``a`` and ``b`` are naive timestamps (``b`` may be a ``datetime64`` array aligned with ``a``); missing on
    either side is not before. Computed on the nanosecond integers (a day is a floor division), the same as
    comparing ``Series.dt.normalize()`` values, without building four timestamp columns of millions of rows.
    """
    if isinstance(getattr(a, "dtype", None), pd.DatetimeTZDtype) or \
            isinstance(getattr(b, "dtype", None), pd.DatetimeTZDtype):
        b = pd.Series(b, index=a.index)
        day_a, day_b = a.dt.normalize(), b.dt.normalize()
        as_days = (a == day_a) | (b == day_b)
        before = np.where(as_days.to_numpy(bool), (day_a < day_b).to_numpy(bool), (a < b).to_numpy(bool))
        return pd.Series(before, index=a.index) & a.notna() & b.notna()
    return pd.Series(_before(_Instants(a), _nanoseconds_of(b)), index=a.index)


def _nanoseconds_of(stamps: pd.Series | np.ndarray) -> np.ndarray:
    """Naive timestamps as int64 nanoseconds (NaT: ``_NAT``)."""
    return np.asarray(stamps).astype("datetime64[ns]", copy=False).view(np.int64)


class _Instants:
    """The left side of :func:`earlier`, prepared once for a column compared several times: nanoseconds,
    present, at midnight, and the instant a day later."""

    def __init__(self, stamps: pd.Series | np.ndarray):
        self.at = _nanoseconds_of(stamps)
        self.present = self.at != _NAT
        self.midnight = self.at % _DAY_NS == 0                    # Python's modulo: days before 1970 too
        self.day_later = self.at + _DAY_NS


def _before(a: _Instants, b: np.ndarray) -> np.ndarray:
    """:func:`earlier` with ``b`` as nanoseconds. ``a < b`` is the answer except when ``a`` is a midnight and
    ``b`` later that same day (as days, not before); ``b`` at midnight needs no test: on ``a``'s day it cannot
    follow ``a``, on a later day it follows it either way."""
    return (a.at < b) & ~(a.midnight & (b < a.day_later)) & a.present & (b != _NAT)


_DAY_NS = 86_400 * 10**9
_NAT = np.iinfo(np.int64).min      # NaT's integer


def _apply_rules(tables: dict[str, pd.DataFrame], ledger: Ledger) -> dict[str, pd.DataFrame]:
    """The rules every source shares: forecast close dates ignored, closes before creation moved to it."""
    tables = dict(tables)
    opps = tables["opportunities"]
    open_ = opps["outcome"] == "open"
    forecast = open_ & opps["closed_at"].notna()
    ledger.note("open_close_dates_ignored", int(forecast.sum()))
    closed_at = opps["closed_at"].mask(open_)
    backwards = ~open_ & earlier(closed_at, opps["created_at"])
    ledger.flag("opportunities", opps, backwards, column="closed_at", action=CORRECTED,
                reason="is before created_at: closed when created")
    closed_at = closed_at.mask(closed_at < opps["created_at"], opps["created_at"])   # a same-day close date too
    tables["opportunities"] = opps.assign(closed_at=closed_at)
    ledger.note("open_opps_without_created_at", int((open_ & opps["created_at"].isna()).sum()))
    reps = tables["reps"]
    if "active" in reps:
        undated = (reps["active"] == False).fillna(False).astype(bool)  # noqa: E712 (a nullable boolean)
        if "end_date" in reps:
            undated &= reps["end_date"].isna()
        if undated.any():
            last = _last_record(tables).reindex(reps["rep_id"]).to_numpy()
            end = reps["end_date"] if "end_date" in reps else pd.Series(pd.NaT, index=reps.index,
                                                                          dtype="datetime64[ns]")
            end = end.mask(undated, pd.Series(last, index=reps.index))
            ledger.flag("reps", reps, undated, column="end_date", action=FACT, reason=LEFT_UNDATED, values=end)
            tables["reps"] = reps.assign(end_date=end)
    return tables


def _last_record(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Each rep's last day with a record (a deal created or closed, an activity)."""
    opps = tables["opportunities"]
    parts = [pd.DataFrame({"rep_id": opps["rep_id"], "at": opps[c]}) for c in ("created_at", "closed_at")]
    if "activities" in tables:
        parts.append(pd.DataFrame({"rep_id": tables["activities"]["rep_id"],
                                   "at": tables["activities"]["occurred_at"]}))
    stamps = pd.concat(parts, ignore_index=True).dropna()
    return stamps.groupby("rep_id")["at"].max().dt.normalize()


#: Rows compared at a time by :func:`_before_at`: its temporaries stay in the processor's cache and in memory
#: the allocator reuses, instead of a fresh column of millions of values (zeroed by the kernel) for each step.
FACT_ROWS = 1 << 16


def _before_at(occurred: pd.Series, positions: np.ndarray, stamps: pd.Series) -> np.ndarray:
    """Whether each of ``occurred`` is :func:`earlier` than ``stamps`` at its position (from
    :func:`~pipnb.textcheck.codes_in`; -1: NaT), ``FACT_ROWS`` rows at a time."""
    values = np.append(_nanoseconds_of(stamps), _NAT)      # position -1 reads the NaT put last
    at = _nanoseconds_of(occurred)
    out = np.empty(len(at), dtype=bool)
    for start in range(0, len(at), FACT_ROWS):
        rows = slice(start, start + FACT_ROWS)
        out[rows] = _before(_Instants(at[rows]), values[positions[rows]])
    return out


def _note_facts(tables: dict[str, pd.DataFrame], ledger: Ledger, links: dict[str, np.ndarray]) -> None:
    """List the facts a load would otherwise keep silent (the rows stay); ``links`` as from
    :func:`_check_relations`."""
    if "activities" not in tables:
        return
    reps, opps, acts = tables["reps"], tables["opportunities"], tables["activities"]
    occurred = acts["occurred_at"]
    deal = links.get("deal")

    def touched() -> np.ndarray:
        marks = np.zeros(len(opps), dtype=bool)
        if deal is not None:
            marks[deal[deal >= 0]] = True
        return marks
    # on a long table, two facts at a time
    work = {"untouched": touched}
    if "hire_date" in reps:
        work[BEFORE_HIRE] = lambda: _before_at(occurred, links["rep"], reps["hire_date"])
    if deal is not None:
        work[BEFORE_DEAL] = lambda: _before_at(occurred, deal, opps["created_at"])
    found = dict(zip(work, _each(lambda fact: work[fact](), list(work), len(acts))))
    for reason in (BEFORE_HIRE, BEFORE_DEAL):
        if reason in found:
            ledger.flag("activities", acts, found[reason], column="occurred_at", action=FACT, reason=reason)
    if deal is None:             # activities not linked to deals: whether a deal was touched cannot be known
        return
    untouched = (opps["outcome"] == "open").to_numpy(dtype=bool, na_value=False) & ~found["untouched"]
    ledger.flag("opportunities", opps, untouched, column="opp_id", action=FACT, reason=UNTOUCHED)
