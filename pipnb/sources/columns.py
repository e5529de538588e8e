"""``format: columns`` — any CSV export, mapped onto the canonical tables by a YAML file.

.. code-block:: yaml

    format: columns
    tables:
      opportunities:
        path: pipeline.csv            # relative to the YAML file
        columns: {opp_id: opportunity_id, rep_id: sales_agent, created_at: engage_date}
        values:
          outcome: {from: deal_stage, map: {Won: won, Lost: lost, Engaging: open}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipnb.errors import DataError, SourceError
from pipnb.schema import OPTIONAL, REQUIRED, TABLES
from pipnb.sources import register
from pipnb.sources.files import read_table_file
from pipnb.validate import ROW, RawTable


class ValueMap(BaseModel):
    """A canonical column computed from a source column through a lookup table."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(alias="from")
    map: dict[str, str]
    default: str | None = None


class TableMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    columns: dict[str, str] = {}
    values: dict[str, ValueMap] = {}


class ColumnsSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["columns"]
    timezone: str | None = None
    tables: dict[Literal["reps", "opportunities", "activities"], TableMapping]


@register("columns")
def read_columns(config: dict, base: Path) -> dict[str, RawTable]:
    """Read every mapped table, rename its columns and translate its values."""
    try:
        spec = ColumnsSource.model_validate(config)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise SourceError(f"source YAML key `{key}`: {first['msg']}") from None
    out = {}
    for name in TABLES:
        if name in spec.tables:
            out[name] = _read_mapped(name, spec.tables[name], base)
    return out


def _read_mapped(name: str, mapping: TableMapping, base: Path) -> RawTable:
    path = (base / mapping.path)
    if not path.is_file():
        raise DataError(f"file not found (tables.{name}.path in the source YAML is relative to the YAML)",
                        file=str(path))
    raw = read_table_file(path)
    known = set(REQUIRED[name]) | set(OPTIONAL[name])
    frame = pd.DataFrame({ROW: raw[ROW]})
    for canonical, column in mapping.columns.items():
        _check_target(canonical, known, name)
        if column not in raw.columns:
            raise DataError(f"column '{column}' (mapped to {canonical}) is missing; "
                            f"columns present: {', '.join(c for c in raw.columns if c != ROW)}",
                            file=path.name, column=column)
        frame[canonical] = raw[column]
    for canonical, value_map in mapping.values.items():
        _check_target(canonical, known, name)
        frame[canonical] = _translate(raw, value_map, path.name, canonical)
    for canonical in REQUIRED[name]:
        if canonical not in frame.columns and canonical in raw.columns:
            frame[canonical] = raw[canonical]
    hints = {c: f"map it under tables.{name}.columns in the source YAML" for c in REQUIRED[name]}
    return RawTable(frame, path.name, hints)


def _check_target(canonical: str, known: set[str], name: str) -> None:
    if canonical not in known:
        raise SourceError(f"source YAML tables.{name}: '{canonical}' is not a column of {name} "
                          f"(use one of {', '.join(sorted(known))})")


def _translate(raw: pd.DataFrame, value_map: ValueMap, file: str, canonical: str) -> pd.Series:
    if value_map.source not in raw.columns:
        raise DataError(f"column '{value_map.source}' (values of {canonical}) is missing", file=file,
                        column=value_map.source)
    text = raw[value_map.source].astype("string").str.strip()
    mapped = text.map(value_map.map)
    unmapped = mapped.isna() & text.notna() & (text != "")
    if value_map.default is not None:
        return mapped.fillna(value_map.default)
    if unmapped.any():
        index = unmapped.idxmax()
        raise DataError(f"{value_map.source} '{text[index]}' has no entry in values.{canonical}.map; "
                        f"add it (known: {', '.join(value_map.map)})", file=file, column=value_map.source,
                        row=int(raw.loc[index, ROW]))
    return mapped
