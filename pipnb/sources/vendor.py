"""What the vendor adapters (Salesforce, HubSpot) share: counting rules, the source-YAML check, and
:class:`Export`, one exported file whose every check names the vendor's file, row and field."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from pipnb.errors import DataError, SourceError
from pipnb.ledger import BLANKED, FILE, FILTERED, SET_ASIDE, Ledger, file_column, row_column
from pipnb.sources.database import database_for
from pipnb.sources.files import read_table_file
from pipnb.validate import DATE_FIX, ROW, to_dates


# -- source YAML -------------------------------------------------------------------------------
class Rule(BaseModel):
    """Which records count: ``field`` equal to one of ``values`` or matching ``pattern`` (any case)."""

    model_config = ConfigDict(extra="forbid")
    field: str
    values: list[str] | None = None
    pattern: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Rule:
        if self.values is None and self.pattern is None:
            raise ValueError("a rule needs `values: [...]` or `pattern: ...`")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as err:
                raise ValueError(f"pattern '{self.pattern}' is not a regular expression ({err})") from None
        return self


def _as_list(value: object) -> object:
    return [value] if isinstance(value, dict) else value


Rules = Annotated[list[Rule], BeforeValidator(_as_list)]
"""One rule or a list of rules; a record counts when any rule matches."""


class VendorSource(BaseModel):
    """What every vendor source YAML may say: where the objects are (a folder, or a database the CRM is
    synced to) and what an invalid row does."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    folder: str = "."
    url: str | None = None
    url_env: str | None = None
    db_schema: str | None = Field(None, alias="schema")
    bad_rows: Literal["stop", "skip"] = "stop"
    # which of the CRM user's fields say the rep's team, segment and hire date, and which users are reps
    team_field: str | None = None
    team: str | None = None                  # one team for every rep (a constant), instead of team_field
    segment_field: str | None = None
    hire_date_field: str | None = None
    reps_when: Rules | None = None

    @model_validator(mode="after")
    def _one_place(self) -> VendorSource:
        if self.url is not None and self.url_env is not None:
            raise ValueError("give either `url:` or `url_env:`")
        if (self.url is not None or self.url_env is not None) and self.folder != ".":
            raise ValueError("give either `folder:` (exported files) or `url:` (a database the CRM is synced to)")
        if self.team is not None and self.team_field is not None:
            raise ValueError("give either `team:` (one team for every rep) or `team_field:` (the column of each "
                             "rep's team), not both")
        if self.team is not None and not self.team.strip():
            raise ValueError("`team:` is empty; name the team (e.g. `team: Sales`) or remove the key")
        return self


def open_shelf(spec: VendorSource, base: Path, objects: Sequence[str]) -> Shelf:
    """The folder of ``spec``, or the tables of its database named like ``objects`` (ignoring case,
    underscores and extensions: a Fivetran, Airbyte or Stitch sync's ``opportunity``, ``user`` ...)."""
    if spec.url is None and spec.url_env is None:
        return Shelf(base / spec.folder)
    database = database_for(spec.url, spec.url_env, base=base, schema=spec.db_schema)
    frames = database.read_whole({_object_key(o) for o in objects}, column_key)
    return Shelf(frames=frames, prefix="sql:")


def _object_key(name: str) -> str:
    return column_key(Path(name).stem if Path(name).suffix.lower() in (".csv", ".parquet") else name)


M = TypeVar("M", bound=BaseModel)
_TRUE = {"true", "1", "yes", "y", "t", "x"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def config_model(model: type[M], config: dict) -> M:
    """Check a source YAML against its pydantic model; a mistake raises one line naming the key."""
    try:
        return model.model_validate(config)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden" and (known := known_keys(model, first["loc"][:-1])):
            message = f"unknown key; the known ones are {', '.join(known)}"
        raise SourceError(f"source YAML key `{key}`: {message}") from None


def known_keys(model: type[BaseModel], path: Sequence) -> list[str]:
    """The keys the YAML may give at ``path`` inside ``model`` (``()``: its top level), as the YAML spells them;
    empty when ``path`` does not lead to a model."""
    for part in path:
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        field = fields.get(part)
        inner = getattr(field, "annotation", None)
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return []
        model = inner
    return [f.alias or name for name, f in model.model_fields.items()]


def clean_text(series: pd.Series) -> pd.Series:
    """Text with blanks stripped; empty strings become missing."""
    text = series.astype("string").str.strip()
    return text.mask(text == "")


def column_key(name: str) -> str:
    """A column name compared loosely: case, underscores, dots and spaces ignored (``CreatedDate``,
    ``created_date`` and ``Created Date`` are one name)."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


#: soft-delete flags of exports and warehouse syncs (Data Loader "Export All", Fivetran, Airbyte, Stitch)
DELETED = ("IsDeleted", "_fivetran_deleted", "_sdc_deleted_at")


class Shelf:
    """Where a vendor's objects come from: the files of a folder, or the tables of a database.

    Object names match ignoring case, underscores and the file's extension (``Opportunity.csv``,
    ``opportunity.parquet``, a warehouse table ``OPPORTUNITY``).
    """

    def __init__(self, folder: Path | None = None, *, frames: dict[str, pd.DataFrame] | None = None,
                 prefix: str = ""):
        self.folder, self.frames, self.prefix = folder, frames, prefix

    def where(self) -> str:
        return str(self.folder) if self.folder is not None else "the database"

    def find(self, names: Sequence[str]) -> str | None:
        """The first of ``names`` the shelf holds, as the shelf names it (a file name or a table name)."""
        for name in names:
            if self.folder is not None:
                if (self.folder / name).is_file():
                    return name
                stem = _object_key(name)
                found = sorted(p.name for p in self.folder.iterdir() if p.is_file()
                               and p.suffix.lower() in (".csv", ".parquet") and column_key(p.stem) == stem) \
                    if self.folder.is_dir() else []
                if found:
                    return found[0]
            elif self.frames is not None:
                stem = _object_key(name)
                found = [t for t in self.frames if column_key(t) == stem]
                if found:
                    return found[0]
        return None

    def read(self, name: str) -> tuple[pd.DataFrame, str]:
        """The object's records (with ``_row``) and the name messages cite."""
        if self.folder is not None:
            return read_table_file(self.folder / name), name
        frame = self.frames[name].reset_index(drop=True)
        frame.columns = [str(c).strip() for c in frame.columns]
        frame[ROW] = row_column(frame.index, first=1)
        return frame, f"{self.prefix}{name}"


class Export:
    """One exported vendor file: its columns, the name used in messages and each record's row.

    Columns are found by name ignoring case and underscores (API names and warehouse syncs' snake_case
    alike). Every check names the vendor's file, row and field: with ``bad_rows="stop"`` it raises
    :class:`~pipnb.errors.DataError`; with ``"skip"`` the row is set aside (``aside``) and listed on the
    load's :class:`~pipnb.ledger.Ledger`. Rows left out by a rule (:meth:`keep`) are listed as filtered.
    """

    def __init__(self, frame: pd.DataFrame, name: str, *, table: str = "", ledger: Ledger | None = None,
                 aside: pd.Series | None = None):
        self.frame, self.name, self.table = frame, name, table
        self.ledger = ledger or Ledger()
        self.aside = aside if aside is not None else pd.Series(False, index=frame.index)
        if FILE not in frame.columns:
            self.frame = frame.assign(**{FILE: file_column(name, frame.index)})
        self._columns: dict[str, str] = {}
        for column in frame.columns:
            if column not in (ROW, FILE):
                self._columns.setdefault(self.key(column), column)

    @staticmethod
    def key(name: str) -> str:
        """How a column name is matched (see :func:`column_key`)."""
        return column_key(name)

    @classmethod
    def read(cls, folder: Path | Shelf, file: str | Sequence[str], *, required: bool = False, table: str = "",
             ledger: Ledger | None = None) -> Export | None:
        """Read the object ``file`` (or the first of several names) from a folder or a :class:`Shelf`;
        ``None`` when an optional object is absent. Its rows are counted as read for ``table``."""
        shelf = folder if isinstance(folder, Shelf) else Shelf(folder)
        names = [file] if isinstance(file, str) else list(file)
        found = shelf.find(names)
        if found is None:
            if required:
                raise DataError(f"{names[0]} is missing; export that object there (or name its file in the "
                                "source YAML under `files:`)", file=shelf.where())
            return None
        frame, name = shelf.read(found)
        export = cls(frame, name, table=table, ledger=ledger)
        if table:
            export.ledger.read(table, name, len(frame))
        return export

    @property
    def rows(self) -> pd.Series:
        return self.frame[ROW]

    @property
    def good(self) -> pd.Series:
        """Rows not set aside."""
        return ~self.aside

    def subset(self, mask: pd.Series) -> Export:
        mask = np.asarray(mask, dtype=bool)
        return type(self)(self.frame[mask], self.name, table=self.table, ledger=self.ledger,
                          aside=self.aside[mask])

    def keep(self, mask: pd.Series, reason: str, *, column: str = "", values: pd.Series | None = None) -> Export:
        """The rows where ``mask`` holds; the others (not already set aside) are listed as filtered."""
        mask = pd.Series(np.asarray(mask, dtype=bool), index=self.frame.index)
        drop = ~mask & ~self.aside
        column = (self.column(column) or column) if column else column
        if column and values is None and self.has(column):
            values = self.frame[column]
        self.ledger.flag(self.table, self.frame, drop, column=column, reason=reason, action=FILTERED,
                         values=values)
        return self.subset(mask)

    def column(self, field: str) -> str | None:
        """The export's own name of ``field`` (matched ignoring case and underscores), or None."""
        if field in self.frame.columns:
            return field
        return self._columns.get(self.key(field))

    def has(self, field: str) -> bool:
        return self.column(field) is not None

    def field(self, names: tuple[str, ...], *, fix: str | None = None) -> str | None:
        """The first of ``names`` (a property name and its labels) that the export has, as it names it."""
        found = self.first_of(names)
        if found is None and fix is not None:
            raise DataError(f"column {names[0]} is missing; {fix}", file=self.name, column=names[0])
        return found

    def first_of(self, fields: Sequence[str]) -> str | None:
        """The first of ``fields`` that the export has, as the export names it."""
        return next((self.column(f) for f in fields if self.has(f)), None)

    def drop_deleted(self, flags: Sequence[str] = DELETED) -> Export:
        """Without the rows a soft-delete flag marks (``IsDeleted``, ``_fivetran_deleted`` ...); they are listed
        as filtered. A flag holding a date (Stitch's ``_sdc_deleted_at``) marks the rows where it is set."""
        export = self
        for flag in flags:
            if export.has(flag):
                column = export.column(flag)
                deleted = export.text(column).notna() if flag.endswith("_at") else export.flags(column)
                export = export.keep(~deleted.to_numpy(bool), f"deleted in the CRM ({column} is set)", column=column)
        return export

    def text(self, field: str | None, *, fix: str | None = None) -> pd.Series:
        """The stripped text of ``field``; when it is absent, raise with ``fix`` (or give all-missing)."""
        column = self.column(field) if field is not None else None
        if column is None:
            if fix is None or field is None:
                return pd.Series(pd.NA, index=self.frame.index, dtype="string")
            raise DataError(f"column {field} is missing; {fix}", file=self.name, column=field)
        return clean_text(self.frame[column])

    def flags(self, field: str, *, fix: str | None = None) -> pd.Series:
        """``field`` read as true/false (``true``, ``1``, ``yes`` ... in any case; empty is false); a row
        with another value is set aside."""
        text = self.text(field, fix=fix).fillna("").str.lower()
        bad = ~text.isin(_TRUE | _FALSE)
        column = self.column(field) or field
        self.set_aside(bad, column, "is not true or false", f"{_literal(column)} '{{value}}' is not true or false",
                       values=text)
        return text.isin(_TRUE).astype(bool)

    def stamps(self, fields: Sequence[str], timezone: str, *, fix: str,
               required_rows: pd.Series | None = None, optional: bool = False) -> pd.Series:
        """The first non-empty of ``fields`` per row, as naive timestamps in ``timezone``.

        ``required_rows`` marks the rows that must have one; a row without is set aside. A value that is
        not a date sets its row aside, or is blanked when ``optional``.
        """
        present = list(dict.fromkeys(self.column(f) for f in fields if self.has(f)))
        if not present:
            raise DataError(f"column {fields[0] if len(fields) == 1 else ' or '.join(fields)} is missing; "
                            f"{fix}", file=self.name, column=fields[0])
        out = pd.Series(pd.NaT, index=self.frame.index, dtype="datetime64[ns]")
        for field in present:
            out = out.fillna(self.parse_times(field, timezone, optional=optional))
        if required_rows is not None:
            names = " and ".join(present)
            self.require_filled(out.where(required_rows, pd.Timestamp(0)), names,
                                fix=f"every {'record' if len(present) == 1 else 'activity'} here needs one",
                                verb="are" if len(present) > 1 else "is")
        return out

    def parse_times(self, field: str, timezone: str, *, optional: bool = False) -> pd.Series:
        """Parse one date or date-time field (ISO 8601, offsets such as ``+0000`` honoured)."""
        column = self.column(field)
        out, bad, text = to_dates(self.text(column), timezone)
        self.set_aside(bad, column, "is not a date", f"{_literal(column)} '{{value}}' is not a date {DATE_FIX}",
                       values=text, action=BLANKED if optional else SET_ASIDE)
        return out

    def require_filled(self, values: pd.Series, field: str, *, fix: str | None = None,
                       verb: str = "is", reason: str | None = None) -> None:
        """Set aside (or, stopping, raise at) the rows where ``values`` is missing."""
        self.set_aside(values.isna(), field, reason or f"{verb} empty",
                       f"{_literal(field)} {verb} empty; {_literal(fix or 'every record needs one')}")

    def check_unique(self, ids: pd.Series, field: str) -> None:
        """Set aside every repeat of an id (after normalization) but the first."""
        kept = ids.where(~self.aside)
        again = kept.notna() & kept.duplicated(keep="first")
        if again.any():
            firsts = self.rows[kept.notna() & ~again].groupby(kept[kept.notna() & ~again]).first()
            frame = self.frame.assign(first=ids.map(firsts).astype("Int64").astype("string"))
            self._flag(frame, again, field, "appears more than once (the first is kept)",
                       f"{_literal(field)} '{{value}}' appears more than once (first at row {{first}}); ids must "
                       "be unique", values=ids)

    def check_refs(self, ids: pd.Series, field: str, known: set, parent: str, *,
                   optional: bool = False) -> pd.Series:
        """Ids among ``known`` (the records of ``parent``); a row naming another is set aside, or the id
        is blanked when ``optional``. Returns the ids, blanked where unknown."""
        unknown = ids.notna() & ~ids.isin(known)
        message = (f"{_literal(field)} '{{value}}' is not in {_literal(parent)}; export it there too or "
                   "remove this row")
        reason = f"is not in {parent}" + (" (or was set aside there)" if self.ledger.skip else "")
        self.set_aside(unknown, field, reason, message, values=ids, action=BLANKED if optional else SET_ASIDE)
        return ids.mask(unknown) if optional else ids

    def set_aside(self, mask: pd.Series, field: str, reason: str, message: str, *,
                  values: pd.Series | None = None, action: str = SET_ASIDE) -> None:
        """List the rows of ``mask`` (not already set aside) with ``reason``; set them aside unless the
        action is ``blanked``. Stopping, the first raises ``message`` (``{value}``: the row's value)."""
        mask = pd.Series(np.asarray(mask, dtype=bool), index=self.frame.index) & ~self.aside
        self._flag(self.frame, mask, field, reason, message, values=values, action=action)

    def _flag(self, frame: pd.DataFrame, mask: pd.Series, field: str, reason: str, message: str, *,
              values: pd.Series | None = None, action: str = SET_ASIDE) -> None:
        if values is None:
            column = self.column(field)
            values = self.frame[column] if column is not None else None
        self.ledger.flag(self.table, frame, mask, column=field, reason=reason, action=action, message=message,
                         values=values, file=self.name)
        if action == SET_ASIDE:
            self.aside = self.aside | mask


def _literal(text: str) -> str:
    """``text`` for a message template (braces doubled)."""
    return str(text).replace("{", "{{").replace("}", "}}")


def rule_mask(export: Export, rules: list[Rule], key: str) -> pd.Series:
    """Rows of ``export`` matched by any of ``rules`` (values compared in any case)."""
    hit = pd.Series(False, index=export.frame.index)
    for rule in rules:
        text = export.text(rule.field, fix=f"export it or set `{key}` in the source YAML")
        if rule.values is not None:
            hit |= text.str.lower().isin([v.lower() for v in rule.values]).fillna(False).astype(bool)
        if rule.pattern is not None:
            hit |= text.str.contains(rule.pattern, case=False, regex=True).fillna(False).astype(bool)
    return hit
