"""What a mapping YAML does to one file's values: fallback columns, value rules, a table's date format.

.. code-block:: yaml

    columns:
      closed_at: [Actual close date, Expected close date]   # the first non-blank value, in this order
    values:
      outcome:                                              # the first rule whose column value is in its map wins
        - {from: Stage, map: {won: won, lost: lost}}
        - {from: Status, map: {customer: won, disqualified: lost}, default: open}
    dates: "%m/%d/%Y"                                       # ISO 8601 values are still accepted

Map keys match loosely (:func:`loose`: case folded, runs of spaces made one). A rule's ``default:`` takes every
row that reaches it, its value blank or not in the map; so only the last rule may have one. A row no rule maps
(and no default takes) stops the load with one error listing such values; a row whose rule columns are all blank
is left blank (``validate`` then applies the bad-rows rule to it).
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from pipnb.errors import DataError, SourceError
from pipnb.ledger import BLANKED, SET_ASIDE, Ledger
from pipnb.schema import DATE_COLUMNS, KINDS, OUTCOMES, REQUIRED
from pipnb.sources.files import columns_shown
from pipnb.validate import ROW, to_dates

#: the values a mapped column may take, where the schema fixes them (a map to anything else is a YAML mistake)
ALLOWED = {"outcome": OUTCOMES, "kind": KINDS}
_DIRECTIVE = re.compile(r"%[a-zA-Z]")


class ValueMap(BaseModel):
    """A canonical column computed from a source column through a lookup table."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(alias="from")
    map: dict[str, str] = {}
    default: str | None = None


def loose(text: pd.Series) -> pd.Series:
    """Text compared loosely: case folded, blanks trimmed, runs of spaces made one (``Closed  Won``). Each
    distinct value is folded once (a stage column of a million rows holds a handful)."""
    codes, uniques = pd.factorize(text.astype("string"))
    folded = pd.Series(uniques, dtype="string").str.strip().str.casefold().str.replace(r"\s+", " ", regex=True)
    values = np.append(folded.to_numpy(dtype=object, na_value=None), None)     # code -1 (missing) reads None
    return pd.Series(values[codes], index=text.index, dtype="string")


def loose_key(value: object) -> str:
    """One YAML value as :func:`loose` shows a cell (``True`` is ``true``)."""
    if isinstance(value, bool):
        value = str(value).lower()
    return " ".join(str(value).split()).casefold()


def column_of(raw: pd.DataFrame, column: str, role: str, file: str) -> pd.Series:
    """``raw[column]``, or one error naming the file, the column, its role (the YAML key) and the columns there."""
    if column not in raw.columns:
        raise DataError(f"column '{column}' ({role}) is missing; columns present: "
                        f"{columns_shown(c for c in raw.columns if not str(c).startswith('_'))}", file=file,
                        column=column)
    return raw[column]


def blank(values: pd.Series) -> pd.Series:
    """Whether each value is missing or only blanks."""
    return values.isna() | (values.astype("string").str.strip() == "").fillna(True).astype(bool)


def first_present(raw: pd.DataFrame, columns: str | list[str], key: str, file: str, *, role: str | None = None
                  ) -> tuple[pd.Series, pd.Series | str]:
    """The values of ``columns`` (a list: the first non-blank one of each row, in order) and the column each
    came from (for messages: one name, or one per row for a list)."""
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names:
        raise SourceError(f"source YAML {key}: an empty list; name one column or several (the first non-blank "
                          "value is taken)")
    if len(names) == 1:                       # the column itself (no copy of millions of values)
        return column_of(raw, names[0], role or f"mapped to {key.rsplit('.', 1)[-1]}", file), names[0]
    out = column_of(raw, names[0], f"{key}[0]", file).astype(object)
    origin = pd.Series(names[0], index=raw.index, dtype=object)
    for i, name in enumerate(names[1:], start=1):
        later = column_of(raw, name, f"{key}[{i}]", file)
        take = blank(out) & ~blank(later)
        out, origin = out.mask(take, later), origin.mask(take, name)
    return out, origin


# -- values --------------------------------------------------------------------------------------
def check_rules(rules: list[ValueMap], canonical: str, key: str, *, listed: bool = True) -> None:
    """A mistake in the rules of ``canonical`` is one :class:`SourceError` naming its YAML key."""
    if not rules:
        raise SourceError(f"source YAML {key}: an empty list of rules; give at least one "
                          "{from: COLUMN, map: {VALUE: ...}}")
    for i, rule in enumerate(rules):
        at = f"{key}[{i}]" if listed else key
        if rule.default is not None and i < len(rules) - 1:
            raise SourceError(f"source YAML {at}.default: only the last rule may have a default (it takes every "
                              f"row that reaches it, so the rules after it would never apply); move it to "
                              f"{key}[{len(rules) - 1}]")
        if not rule.map and rule.default is None:
            raise SourceError(f"source YAML {at}.map: empty; list the values of {rule.source} to map "
                              "(or give a `default:`)")
        allowed = ALLOWED.get(canonical)
        if allowed is None:
            continue
        for source, target in [*rule.map.items(), *([("default", rule.default)] if rule.default else [])]:
            if target.strip().lower() not in allowed:
                where = f"{at}.default" if source == "default" and rule.default == target else f"{at}.map"
                raise SourceError(f"source YAML {where}: '{source}: {target}' maps to '{target}', which is not "
                                  f"a {canonical} (use one of {', '.join(allowed)})")


def translate(raw: pd.DataFrame, rules: list[ValueMap], file: str, canonical: str, key: str,
              listed: bool) -> pd.Series:
    """``canonical`` from the rules: each row takes the first rule whose column value is in its map, else the
    last rule's default; a row with a value no rule maps stops the load (one error listing such values)."""
    out = pd.Series(pd.NA, index=raw.index, dtype=object)
    todo = pd.Series(True, index=raw.index)
    texts, folded = [], {}
    for i, rule in enumerate(rules):
        at = f"{key}[{i}]" if listed else key
        text = column_of(raw, rule.source, f"{at}.from", file).astype("string").str.strip()
        texts.append((rule.source, text))
        if rule.source not in folded:             # two rules on one column fold it once
            folded[rule.source] = loose(text)
        mapped = folded[rule.source].map({loose_key(k): v for k, v in rule.map.items()}).astype(object)
        hit = todo & mapped.notna()
        out[hit] = mapped[hit]
        todo &= ~hit
        if rule.default is not None:                  # blank and unmapped values alike (the last rule)
            out[todo] = rule.default
            return out
    unmapped = todo & pd.concat([~blank(text) for _, text in texts], axis=1).any(axis=1)
    if unmapped.any():
        raise _unmapped(raw, texts, unmapped, rules, file, canonical, key)
    return out


def _unmapped(raw: pd.DataFrame, texts: list[tuple[str, pd.Series]], unmapped: pd.Series, rules: list[ValueMap],
              file: str, canonical: str, key: str) -> DataError:
    """One error naming the first row no rule maps and listing the values (or combinations) of such rows."""
    one = len(texts) == 1
    shown = pd.Series("", index=raw.index, dtype=object)
    for i, (source, text) in enumerate(texts):
        part = ("'" + text.fillna("") + "'").astype(object) if one else \
            (f"{source} '" + text.fillna("") + "'").astype(object)
        shown = part if i == 0 else shown + ", " + part
    firsts = pd.DataFrame({"value": shown[unmapped], "row": raw.loc[unmapped, ROW]})
    summary = firsts.groupby("value", sort=False)["row"].agg(["first", "count"])
    listed = ("," if one else ";").join(f" {value} (row {first}{f', {count} rows' if count > 1 else ''})"
                                        for value, first, count in summary.head(12).itertuples()).strip()
    more = f" and {len(summary) - 12} more" if len(summary) > 12 else ""
    index = unmapped.idxmax()
    known = ", ".join(dict.fromkeys(k for rule in rules for k in rule.map)) or "none"
    first = f"{texts[0][0]} {shown[index]}" if one else shown[index]
    where, fix = ((f"{key}.map", "add them to the map (or give it a `default:`)") if one else
                  (f"any rule of {key}", "add them to a rule's map (or give the last rule a `default:`)"))
    return DataError(f"{first} has no entry in {where}; values of {file} with no entry: {listed}{more}; {fix}; "
                     f"known: {known}", file=file, column=texts[0][0], row=int(raw.loc[index, ROW]))


def sort_key(values: pd.Series, fmt: str | None = None) -> pd.Series:
    """``latest_by`` values as numbers that sort like them: date-times (in ``fmt``, else ISO 8601), else
    numbers, else text."""
    text = values.astype("string").str.strip().replace("", pd.NA)
    stamps = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if fmt is not None:
        stamps = stamps.fillna(pd.to_datetime(text, format=fmt, errors="coerce", utc=True))
    if stamps.notna().sum() == text.notna().sum() and text.notna().any():
        return pd.Series(stamps.astype("int64").astype(float).where(stamps.notna()), index=values.index)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() == text.notna().sum():
        return numbers.astype(float)
    return pd.Series(pd.Categorical(text, ordered=True).codes, index=values.index).astype(float).replace(-1, np.nan)


# -- dates ---------------------------------------------------------------------------------------
def check_date_format(fmt: str, key: str) -> None:
    """A ``dates:`` value that is not a strptime format is one :class:`SourceError` naming ``key``."""
    if not _DIRECTIVE.search(fmt):
        raise SourceError(f"source YAML {key}: '{fmt}' is not a strptime date format (it has no % directive); "
                          "write it like \"%m/%d/%Y\" or \"%d.%m.%Y %H:%M\"")
    sample = datetime(2024, 4, 20, 13, 5, 6)
    try:
        datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as err:
        raise SourceError(f"source YAML {key}: '{fmt}' is not a strptime date format ({err}); write it like "
                          "\"%m/%d/%Y\" or \"%d.%m.%Y %H:%M\"") from None


def apply_date_format(frame: pd.DataFrame, name: str, fmt: str, origins: dict[str, object], key: str, file: str,
                      ledger: Ledger, timezone: str) -> pd.DataFrame:
    """The date columns of ``frame`` with values in ``fmt`` rewritten as ISO 8601 (ISO values stay as they are);
    a value in neither is a bad row: set aside (a required column) or blanked, naming the format."""
    aside = pd.Series(False, index=frame.index)
    for column in [c for c in DATE_COLUMNS[name] if c in frame.columns]:
        text = frame[column].astype("string").str.strip()
        present = text.notna() & (text != "")
        parsed = pd.to_datetime(text.where(present), format=fmt, errors="coerce", utc="%z" in fmt)
        if "%z" in fmt:
            parsed = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
        formatted = present & parsed.notna()
        _, not_iso, _ = to_dates(text.where(present & ~formatted), timezone)
        bad = present & ~formatted & not_iso
        required = column in REQUIRED[name]
        origin = origins.get(column, column)
        named = frame.assign(_source=origin.astype(str) if isinstance(origin, pd.Series) else str(origin)) \
            if bad.any() else frame
        ledger.flag(name, named, bad & ~aside, column=column, values=text, action=SET_ASIDE if required else BLANKED,
                    reason=f"is not a date in {fmt} (the format of {key}) or ISO 8601",
                    message=f"{{_source}} '{{value}}' ({column}) is not a date in the format "
                            f"{_literal(fmt)} (set by {key}) nor ISO 8601 (e.g. 2024-03-31)")
        if formatted.sum() == present.sum():      # every value in the format: the parsed times themselves
            values = parsed
        else:                                     # some in ISO 8601: those stay text for validate to read
            iso = parsed[formatted].dt.strftime("%Y-%m-%dT%H:%M:%S").str.replace("T00:00:00", "", regex=False)
            values = frame[column].astype(object).mask(bad, None)
            values[formatted] = iso
        frame = frame.assign(**{column: values})
        if required:
            aside |= bad
    return frame[~aside.to_numpy()] if aside.any() else frame


def _literal(text: str) -> str:
    """``text`` for a message template (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")
