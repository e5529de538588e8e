"""What the vendor adapters (Salesforce, HubSpot) share: counting rules, the source-YAML check, and
:class:`Export`, one exported file whose every check names the vendor's file, row and field."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from pipnb.errors import DataError, SourceError
from pipnb.sources.files import read_table_file
from pipnb.validate import ROW, parse_dates


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
        raise SourceError(f"source YAML key `{key}`: {message}") from None


def clean_text(series: pd.Series) -> pd.Series:
    """Text with blanks stripped; empty strings become missing."""
    text = series.astype("string").str.strip()
    return text.mask(text == "")


class Export:
    """One exported vendor file: its columns, the name used in messages and each record's row.

    Every check raises :class:`~pipnb.errors.DataError` naming the vendor's file, row and field.
    """

    def __init__(self, frame: pd.DataFrame, name: str):
        self.frame, self.name = frame, name

    @classmethod
    def read(cls, folder: Path, file: str, *, required: bool = False) -> Export | None:
        """Read ``folder/file``; ``None`` when an optional file is absent."""
        path = folder / file
        if not path.is_file():
            if required:
                raise DataError(f"{file} is missing; export that object there (or name its file in the "
                                "source YAML under `files:`)", file=str(folder))
            return None
        return cls(read_table_file(path), path.name)

    @property
    def rows(self) -> pd.Series:
        return self.frame[ROW]

    def subset(self, mask: pd.Series) -> Export:
        return type(self)(self.frame[mask.to_numpy(dtype=bool)], self.name)

    def has(self, field: str) -> bool:
        return field in self.frame.columns

    def field(self, names: tuple[str, ...], *, fix: str | None = None) -> str | None:
        """The first of ``names`` (a property name and its labels) that the export has."""
        found = self.first_of(names)
        if found is None and fix is not None:
            raise DataError(f"column {names[0]} is missing; {fix}", file=self.name, column=names[0])
        return found

    def first_of(self, fields: Sequence[str]) -> str | None:
        """The first of ``fields`` that the export has."""
        return next((f for f in fields if self.has(f)), None)

    def drop_deleted(self) -> Export:
        """Without the rows a Data Loader "Export All" marks ``IsDeleted``."""
        return self.subset(~self.flags("IsDeleted")) if self.has("IsDeleted") else self

    def text(self, field: str | None, *, fix: str | None = None) -> pd.Series:
        """The stripped text of ``field``; when it is absent, raise with ``fix`` (or give all-missing)."""
        if field is None or not self.has(field):
            if fix is None or field is None:
                return pd.Series(pd.NA, index=self.frame.index, dtype="string")
            raise DataError(f"column {field} is missing; {fix}", file=self.name, column=field)
        return clean_text(self.frame[field])

    def flags(self, field: str, *, fix: str | None = None) -> pd.Series:
        """``field`` read as true/false (``true``, ``1``, ``yes`` ... in any case; empty is false)."""
        text = self.text(field, fix=fix).fillna("").str.lower()
        bad = ~text.isin(_TRUE | _FALSE)
        if bad.any():
            self._fail(bad, f"{field} '{{value}}' is not true or false", field, text)
        return text.isin(_TRUE).astype(bool)

    def stamps(self, fields: Sequence[str], timezone: str, *, fix: str,
               required_rows: pd.Series | None = None) -> pd.Series:
        """The first non-empty of ``fields`` per row, as naive timestamps in ``timezone``.

        ``required_rows`` marks the rows that must have one; an empty one there raises.
        """
        present = [f for f in fields if self.has(f)]
        if not present:
            raise DataError(f"column {fields[0] if len(fields) == 1 else ' or '.join(fields)} is missing; "
                            f"{fix}", file=self.name, column=fields[0])
        out = pd.Series(pd.NaT, index=self.frame.index, dtype="datetime64[ns]")
        for field in present:
            out = out.fillna(self.parse_times(field, timezone))
        if required_rows is not None:
            self.require_filled(out.where(required_rows, pd.Timestamp(0)), " and ".join(present),
                                fix=f"every {'record' if len(present) == 1 else 'activity'} here needs one",
                                verb="are" if len(present) > 1 else "is")
        return out

    def parse_times(self, field: str, timezone: str) -> pd.Series:
        """Parse one date or date-time field (ISO 8601, offsets such as ``+0000`` honoured)."""
        return parse_dates(self.text(field), self.rows, self.name, field, timezone)

    def require_filled(self, values: pd.Series, field: str, *, fix: str | None = None,
                       verb: str = "is") -> None:
        """Raise at the first row where ``values`` is missing."""
        empty = values.isna()
        if empty.any():
            self._fail(empty, f"{field} {verb} empty; {fix or 'every record needs one'}", field)

    def check_unique(self, ids: pd.Series, field: str) -> None:
        """Raise at the first repeated id (after normalization)."""
        again = ids.notna() & ids.duplicated(keep="first")
        if again.any():
            value = ids[again.idxmax()]
            first = self.rows[ids == value].min()
            self._fail(again, f"{field} '{value}' appears more than once (first at row {first}); "
                       "ids must be unique", field)

    def check_refs(self, ids: pd.Series, field: str, known: set, parent: str) -> None:
        """Raise at the first id that is not among ``known`` (the records of ``parent``)."""
        unknown = ids.notna() & ~ids.isin(known)
        if unknown.any():
            self._fail(unknown, f"{field} '{{value}}' is not in {parent}; export it there too or remove "
                       "this row", field, ids)

    def _fail(self, mask: pd.Series, message: str, field: str, values: pd.Series | None = None) -> None:
        index = mask.idxmax()
        if values is not None:
            message = message.replace("{value}", str(values[index]))
        raise DataError(message, file=self.name, column=field, row=int(self.rows[index]))


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
