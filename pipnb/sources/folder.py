"""A folder of canonical tables: ``reps``, ``opportunities`` and optionally ``activities``.

A folder without them that looks like a CRM's export (file names or columns of Salesforce or HubSpot objects
that did not match the standard names) is told which ``format:`` to write in a source YAML.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipnb.errors import DataError
from pipnb.schema import TABLES
from pipnb.sources.files import read_table_file
from pipnb.validate import RawTable

SUFFIXES = (".csv", ".parquet")
#: per vendor format: the objects (``files:`` keys) and the name each file's stem contains, and the columns only
#: that vendor's exports have (compared ignoring case and underscores)
VENDORS = {
    "salesforce": ({"Opportunity": "opportunit", "User": "user", "Task": "task", "Event": "event"},
                   {"stagename", "iswon", "isclosed", "whatid", "ownerid"}),
    "hubspot": ({"deals": "deal", "owners": "owner", "engagement": "engagement", "meetings": "meeting",
                 "emails": "email", "calls": "call", "owner_team": "ownerteam"},
                {"dealstage", "hsobjectid", "hubspotownerid", "hsisclosedwon", "dealpipelinestageid"}),
}


def read_folder(folder: Path) -> dict[str, RawTable]:
    """Read each canonical table found in ``folder``; ``activities`` may be absent."""
    tables: dict[str, RawTable] = {}
    for name in TABLES:
        found = [folder / f"{name}{suffix}" for suffix in SUFFIXES if (folder / f"{name}{suffix}").is_file()]
        if not found:
            if name == "activities":
                continue
            raise DataError(f"{name}.csv (or {name}.parquet) is missing; {vendor_hint(folder) or ''}"
                            f"export the {name} table there", file=str(folder))
        tables[name] = RawTable(read_table_file(found[0]), found[0].name)
    return tables


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _header(path: Path) -> set[str]:
    """A CSV file's column names (compared loosely); empty for another file or one that cannot be read."""
    if path.suffix.lower() != ".csv":
        return set()
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            return {_key(c) for c in handle.readline(65_536).split(",")}
    except OSError:
        return set()


def vendor_hint(folder: Path) -> str | None:
    """Which ``format:`` a folder of a CRM's files needs, with the ``files:`` it would name (one clause ending
    in ``; or ``), or None when the folder does not look like Salesforce or HubSpot."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES) \
        if folder.is_dir() else []
    best, score, named = None, 0, {}
    for vendor, (objects, columns) in VENDORS.items():
        chosen = {}
        for key, part in objects.items():
            matches = sorted((p for p in files if part in _key(p.stem)), key=lambda p: len(p.name))
            if matches and matches[0].name not in chosen.values():
                chosen[key] = matches[0].name
        hits = len(chosen) + sum(len(_header(p) & columns) for p in files)
        if hits > score and chosen:
            best, score, named = vendor, hits, chosen
    if best is None or score < 2:
        return None
    mapping = ", ".join(f"{k}: {v}" for k, v in named.items())
    label = {"salesforce": "Salesforce", "hubspot": "HubSpot"}[best]
    return (f"these files look like a {label} export: write a source YAML with `format: {best}` and "
            f"`files: {{{mapping}}}` (then pass the YAML as the data); or ")
