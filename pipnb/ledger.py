"""The data-quality ledger: what a load kept, set aside, blanked, filtered and corrected.

One :class:`Ledger` follows each load. Source adapters and :func:`pipnb.validate.validate` report every
row they do not keep, and every value they change, to it; with ``bad_rows="stop"`` (the default) the first
invalid row raises :class:`~pipnb.errors.DataError` instead. The loaded :class:`~pipnb.data.SalesData`
carries the result as :class:`DataQuality`: rows read and kept per file, and the list of rows (table, file,
row, column, value, action, reason). Every row read is either kept or listed with an action that removes it
(``set aside``, ``filtered``, ``duplicate``).

Actions
-------
``set aside``   a required field is invalid: the whole row is left out
``blanked``     an optional value (amount, account_id, hire_date, segment ...) is invalid and emptied
``filtered``    the row is not counted by a rule: ``where:``, soft-deleted, a canceled meeting, no owner ...
``duplicate``   an older version of a record, replaced by the latest (``latest_by``)
``corrected``   a value changed by a rule of every source (a deal closed before it was created)
``fact``        a kept row worth knowing about (an activity before the rep's hire date ...)

Warnings
--------
A :class:`LoadWarning` is what the rows cannot show one at a time: a pattern the load made that would mislead a
number. ``one outcome left`` (:data:`ONE_OUTCOME`): with ``bad_rows="skip"``, the rows set aside left a rep with
only won (or only lost) deals while deals of the rep with the other outcome were set aside, so the rep's win
rate (won / closed) sees none of them. ``DataQuality.warnings`` holds them; ``LoadWarning.text`` is the line to print.

The reports made from it (``pipnb check``, the scan's line and section) are in :mod:`pipnb.quality`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipnb.errors import DataError, SourceError

ROW = "_row"     # spreadsheet row of each record (header = row 1), carried by adapters for messages
FILE = "_file"   # the file (or table) each record came from, when a table has several


def row_column(index: pd.Index, first: int = 2) -> pd.Series:
    """A ``_row`` column numbering the rows of ``index`` from ``first`` (a spreadsheet's header is row 1). A
    Series: a DataFrame shares it when it is set as a column, where it would copy an array; 32-bit below two
    billion rows (half the memory of a column of millions)."""
    last = first + len(index)
    dtype = np.int32 if last < np.iinfo(np.int32).max else np.int64
    return pd.Series(np.arange(first, last, dtype=dtype), index=index)


def file_column(name: str, index: pd.Index) -> pd.Series:
    """A ``_file`` column naming ``name`` on every row of ``index``: a categorical of one file name (a
    million rows cost a million one-byte codes, not a million strings to build and compare)."""
    codes = np.zeros(len(index), dtype=np.int8)
    return pd.Series(pd.Categorical.from_codes(codes, categories=[str(name)]), index=index)

SET_ASIDE, BLANKED, FILTERED, DUPLICATE, CORRECTED, FACT = (
    "set aside", "blanked", "filtered", "duplicate", "corrected", "fact")
ACTIONS = (SET_ASIDE, BLANKED, FILTERED, DUPLICATE, CORRECTED, FACT)
REMOVED = (SET_ASIDE, FILTERED, DUPLICATE)
ISSUE_COLUMNS = ["table", "file", "row", "column", "value", "action", "reason"]
FILE_COLUMNS = ["table", "file", "rows_read", "rows_kept", "set_aside", "filtered", "duplicates", "blanked",
                "corrected"]
BAD_ROWS = ("stop", "skip")

#: the reasons of the silent facts, named once: the check report and the scan line look them up
BEFORE_HIRE = "occurred before the rep's hire date"
BEFORE_DEAL = "occurred before its deal was created"
UNTOUCHED = "open deal without a touch: no activity is linked to it"
NO_OWNER = "no owner: the deal belongs to no rep"
LEFT_UNDATED = "inactive without an end_date: taken to have left on the day of their last record"
FACTS = {BEFORE_HIRE: "activities before the rep's hire date", BEFORE_DEAL: "activities before their deal was created",
         UNTOUCHED: "open deals without a touch", NO_OWNER: "deals without an owner",
         LEFT_UNDATED: "inactive reps without an end date"}
#: each fact's label for one row (``FACTS`` holds the plural): "1 open deal without a touch"
FACT_ONE = {"activities before the rep's hire date": "activity before the rep's hire date",
            "activities before their deal was created": "activity before its deal was created",
            "open deals without a touch": "open deal without a touch",
            "deals without an owner": "deal without an owner",
            "inactive reps without an end date": "inactive rep without an end date"}
NOTES = {"open_close_dates_ignored": "close dates of open deals ignored (forecasts)",
         "open_opps_without_created_at": "open deals without a created date (in the open pipeline, not in "
                                         "weekly creation)"}
FIRST = 5        # rows shown per reason
ONE_OUTCOME = "one outcome left"
SHOWN_REPS = 8   # reps a warning line names (then "and N more")


def check_bad_rows(value: str | None, *, key: str = "bad_rows") -> str | None:
    """``value`` when it is ``stop``, ``skip`` or None; else a :class:`SourceError` naming ``key``."""
    if value is not None and value not in BAD_ROWS:
        raise SourceError(f"{key} must be stop or skip, not {value!r}")
    return value


@dataclass(frozen=True)
class LoadWarning:
    """A pattern a load made that would mislead a number, as facts; :attr:`text` words it.

    Attributes
    ----------
    kind
        :data:`ONE_OUTCOME`.
    table, file
        The table and the file(s) it came from.
    reps
        The reps it concerns.
    left
        The outcome the reps were left with (``won`` or ``lost``).
    count
        The rows set aside behind it (of the other outcome).
    reasons
        Why those rows were set aside (the ledger's reasons, the most frequent first).
    """

    kind: str
    table: str
    file: str
    reps: tuple[str, ...]
    left: str
    count: int
    reasons: tuple[str, ...]

    @property
    def text(self) -> str:
        """The one line ``check``, the scan and the report print."""
        other = "lost" if self.left == "won" else "won"
        shown = ", ".join(self.reps[:SHOWN_REPS]) + (f" and {len(self.reps) - SHOWN_REPS} more"
                                                       if len(self.reps) > SHOWN_REPS else "")
        why = "; ".join(self.reasons[:3]) + (" ..." if len(self.reasons) > 3 else "")
        return (f"{self.file}: skipping bad rows left {len(self.reps)} rep{'s' * (len(self.reps) != 1)} ({shown}) "
                f"with only {self.left} deals: {self.count:,} {other} deal{'s' * (self.count != 1)} set aside "
                f"({why}), so their win rates (won / closed) see no {other} deal; fix those rows or map them "
                f"(`pipnb check --data SRC` lists them)")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "table": self.table, "file": self.file, "reps": list(self.reps),
                "left": self.left, "count": self.count, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, fields: dict) -> LoadWarning:
        """The warning :meth:`as_dict` wrote (a batch's snapshot)."""
        return cls(**{**fields, "reps": tuple(fields["reps"]), "reasons": tuple(fields["reasons"])})


@dataclass(frozen=True)
class DataQuality:
    """What one load kept and did not keep.

    Attributes
    ----------
    files
        One row per file (or database table) read: ``table, file, rows_read, rows_kept, set_aside,
        filtered, duplicates, blanked, corrected``.
    issues
        One row per listed row or value: ``table, file, row, column, value, action, reason``.
    bad_rows
        ``"stop"`` or ``"skip"``, as the data was loaded.
    warnings
        What the rows cannot show one at a time (:class:`LoadWarning`), each with the line to print.
    """

    files: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FILE_COLUMNS))
    issues: pd.DataFrame = field(default_factory=lambda: _empty_issues())
    bad_rows: str = "stop"
    warnings: tuple[LoadWarning, ...] = ()

    @property
    def removed(self) -> pd.DataFrame:
        """The listed rows that were left out (set aside, filtered, older duplicates), one line per row."""
        rows = self.issues[self.issues["action"].isin(REMOVED)]
        return rows.drop_duplicates(["table", "file", "row"])

    def counts(self, *, values: bool = True) -> pd.DataFrame:
        """``action, table, column, reason, count`` with the first rows of each (``first``: "file row 'value',
        ..."; without the values when ``values`` is false)."""
        columns = ["action", "table", "column", "reason", "count", "first"]
        issues = self.issues
        if issues.empty:
            return pd.DataFrame(columns=columns)
        order = {a: i for i, a in enumerate(ACTIONS)}
        groups = issues.groupby(["action", "table", "column", "reason"], sort=False, dropna=False)
        out = groups.size().rename("count").reset_index()
        out["first"] = groups.apply(lambda g: _first_rows(g, values), include_groups=False).to_numpy()
        out = out.sort_values(["action", "count"], key=lambda s: s.map(order) if s.name == "action" else -s,
                              kind="stable")
        return out[columns].reset_index(drop=True)


def _empty_issues() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "str") for c in ISSUE_COLUMNS})


def _first_rows(group: pd.DataFrame, values: bool = True) -> str:
    head = group.head(FIRST)
    text = ", ".join(f"{f} row {r}" + (f" '{v}'" if values and v != "" else "")
                     for f, r, v in zip(head["file"], head["row"], head["value"]))
    return text + (f" (+{len(group) - FIRST:,} more)" if len(group) > FIRST else "")


class Ledger:
    """The record of one load: rows read per file, and every row or value not kept as read.

    Parameters
    ----------
    bad_rows
        ``"stop"``: the first invalid row raises :class:`DataError` (naming file, row and column);
        ``"skip"``: invalid rows are set aside (invalid optional values blanked) and listed.
    """

    def __init__(self, bad_rows: str | None = "stop"):
        self.bad_rows = check_bad_rows(bad_rows) or "stop"
        self.skip = self.bad_rows == "skip"
        self.reads: dict[tuple[str, str], int] = {}
        self.parts: list[pd.DataFrame] = []
        self.notes: dict[str, int] = {}
        self.closed_aside: list[pd.DataFrame] = []     # rep, outcome and why of closed deals set aside (skip)

    def read(self, table: str, file: str, rows: int) -> None:
        """Count ``rows`` read from ``file`` for ``table``."""
        self.reads[(table, file)] = self.reads.get((table, file), 0) + int(rows)

    def read_frame(self, table: str, frame: pd.DataFrame, file: str) -> None:
        """Count the rows of ``frame`` per file, for files no adapter counted yet."""
        if FILE not in frame:                  # one file: no column of millions of copies of its name to count
            if (table, file) not in self.reads:
                self.read(table, file, len(frame))
            return
        for name, rows in frame[FILE].value_counts(sort=False).items():
            if (table, name) not in self.reads:
                self.read(table, name, rows)

    def note(self, key: str, count: int) -> None:
        """Add ``count`` to the tolerated oddity ``key`` (carried in ``SalesData.notes``)."""
        self.notes[key] = self.notes.get(key, 0) + int(count)

    def flag(self, table: str, frame: pd.DataFrame, mask, *, column: str, reason: str,
             action: str = SET_ASIDE, message: str | None = None, values: pd.Series | None = None,
             file: str | None = None, stops: bool | None = None) -> pd.Series:
        """List the rows of ``frame`` where ``mask`` holds; with ``bad_rows="stop"`` raise at the first.

        Parameters
        ----------
        frame
            Rows with ``_row`` (and ``_file`` when they come from several files).
        mask
            Boolean, aligned with ``frame``.
        column, reason
            The column at fault and why (no value in it: the same reason groups many rows).
        action
            One of :data:`ACTIONS`.
        message
            The one-line error of ``bad_rows="stop"``: a format string that may use ``{value}`` and the
            row's columns (default: ``"{column} '{value}' {reason}"``).
        values
            The values to list (default: ``frame[column]``).
        file
            The file name when ``frame`` has no ``_file`` column.
        stops
            Whether ``bad_rows="stop"`` raises here (default: for ``set aside`` and ``blanked``).

        Returns
        -------
        pandas.Series
            ``mask`` as a boolean Series on ``frame``'s index.
        """
        mask = pd.Series(mask.to_numpy(dtype=bool, na_value=False) if isinstance(mask, pd.Series)
                         else np.asarray(mask, dtype=bool), index=frame.index)
        if not mask.any():
            return mask
        if values is None:
            values = frame[column] if column in frame else pd.Series("", index=frame.index)
        stops = action in (SET_ASIDE, BLANKED) if stops is None else stops
        rows = frame[ROW] if ROW in frame else row_column(frame.index)
        files = frame[FILE] if FILE in frame else pd.Series(file or "", index=frame.index)
        if stops and not self.skip:
            at = int(np.argmax(mask.to_numpy()))
            fields = {str(k): v for k, v in frame.iloc[at].items() if str(k).isidentifier()}
            fields["value"] = _shown(values.iloc[at])
            text = (message or f"{column} '{{value}}' {reason}").format(**fields)
            raise DataError(text, file=str(files.iloc[at]) or None, column=column, row=int(rows.iloc[at]))
        if self.skip and action == SET_ASIDE and table == "opportunities" and {"rep_id", "outcome"} <= set(frame):
            aside = frame.loc[mask.to_numpy(), ["rep_id", "outcome"]]
            self.closed_aside.append(aside.assign(reason=f"{column} {reason}"))
        self.parts.append(pd.DataFrame({
            "table": table, "file": files[mask].astype(str).to_numpy(), "row": rows[mask].astype("int64").to_numpy(),
            "column": column, "value": _shown_all(values[mask]), "action": action, "reason": reason}))
        return mask

    def quality(self, kept: dict[str, pd.DataFrame], files: dict[str, str]) -> DataQuality:
        """The :class:`DataQuality` of this load, given the validated tables (with ``_file``)."""
        issues = pd.concat([_empty_issues(), *self.parts], ignore_index=True) if self.parts else _empty_issues()
        issues = issues.astype({c: "int64" if c == "row" else "str" for c in ISSUE_COLUMNS})
        rows = []
        for (table, file), read in self.reads.items():
            frame = kept.get(table)
            if frame is None:
                n_kept = 0
            elif FILE in frame:
                n_kept = int((frame[FILE] == file).sum())
            else:
                n_kept = len(frame) if files.get(table) == file else 0
            mine = issues[(issues["table"] == table) & (issues["file"] == file)]
            distinct = mine.drop_duplicates(["row", "action"])
            count = distinct["action"].value_counts()
            rows.append({"table": table, "file": file, "rows_read": read, "rows_kept": n_kept,
                         "set_aside": int(count.get(SET_ASIDE, 0)), "filtered": int(count.get(FILTERED, 0)),
                         "duplicates": int(count.get(DUPLICATE, 0)), "blanked": int(count.get(BLANKED, 0)),
                         "corrected": int(count.get(CORRECTED, 0))})
        table = pd.DataFrame(rows, columns=FILE_COLUMNS).astype({"table": "str", "file": "str"})
        warnings = self._one_outcome(kept.get("opportunities"), files.get("opportunities", ""))
        return DataQuality(files=table, issues=issues, bad_rows=self.bad_rows, warnings=warnings)

    def _one_outcome(self, kept: pd.DataFrame | None, file: str) -> tuple[LoadWarning, ...]:
        """The reps whose kept closed deals are all won (all lost) while deals of theirs with the other outcome
        were set aside: one :data:`ONE_OUTCOME` warning per outcome left."""
        if kept is None or not self.closed_aside:
            return ()
        aside = pd.concat(self.closed_aside, ignore_index=True)
        aside = aside.assign(rep_id=aside["rep_id"].astype("string").str.strip(),
                             outcome=aside["outcome"].astype("string").str.strip().str.lower())
        aside = aside[aside["outcome"].isin(("won", "lost")).fillna(False).astype(bool)]
        closed = kept.loc[kept["outcome"].isin(("won", "lost")).to_numpy(bool), ["rep_id", "outcome"]]
        counts = pd.crosstab(closed["rep_id"].astype(str), closed["outcome"].astype(str))
        counts = counts.reindex(columns=["won", "lost"], fill_value=0)
        warnings = []
        for left in ("won", "lost"):
            other = "lost" if left == "won" else "won"
            only = counts.index[(counts[left] > 0) & (counts[other] == 0)]
            lost = aside[(aside["outcome"] == other).fillna(False).astype(bool)
                         & aside["rep_id"].isin(list(only)).fillna(False).astype(bool)]
            if lost.empty:
                continue
            reasons = tuple(lost["reason"].value_counts(sort=True).index)
            warnings.append(LoadWarning(kind=ONE_OUTCOME, table="opportunities", file=file,
                                        reps=tuple(sorted(lost["rep_id"].unique())), left=left, count=len(lost),
                                        reasons=reasons))
        return tuple(warnings)


def _shown(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ") if value != value.normalize() else f"{value:%Y-%m-%d}"
    return str(value)


def _shown_all(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        day = values.dt.strftime("%Y-%m-%d")
        full = values.dt.strftime("%Y-%m-%d %H:%M:%S")
        text = full.where(values != values.dt.normalize(), day)
        return text.fillna("").to_numpy(dtype=object)
    return values.astype("string").fillna("").to_numpy(dtype=object)
