"""A folder of canonical tables: ``reps``, ``opportunities`` and optionally ``activities``."""

from __future__ import annotations

from pathlib import Path

from pipnb.errors import DataError
from pipnb.schema import TABLES
from pipnb.sources.files import read_table_file
from pipnb.validate import RawTable

SUFFIXES = (".csv", ".parquet")


def read_folder(folder: Path) -> dict[str, RawTable]:
    """Read each canonical table found in ``folder``; ``activities`` may be absent."""
    tables: dict[str, RawTable] = {}
    for name in TABLES:
        found = [folder / f"{name}{suffix}" for suffix in SUFFIXES if (folder / f"{name}{suffix}").is_file()]
        if not found:
            if name == "activities":
                continue
            raise DataError(f"{name}.csv (or {name}.parquet) is missing; export the {name} table there",
                            file=str(folder))
        tables[name] = RawTable(read_table_file(found[0]), found[0].name)
    return tables
