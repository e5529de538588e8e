"""Where sales data comes from: one ``load(source)`` for every kind of source.

A source is a folder of canonical tables (CSV or Parquet), a Salesforce or HubSpot export folder, a
database URL, or a source YAML whose ``format`` names an adapter (``columns`` for any CSV export,
``salesforce``, ``hubspot``, ``sql``). Each adapter returns raw tables that
:func:`pipnb.validate.validate` checks the same way, and reports the rows it does not keep to the load's
:class:`~pipnb.ledger.Ledger`.

``bad_rows`` chooses what an invalid row does: ``"stop"`` (the default) stops the load at the first one;
``"skip"`` sets it aside (an invalid optional value is blanked) and lists it on the loaded data. It comes
from the ``load`` argument (the command line's ``--bad-rows``), else from the source YAML's ``bad_rows:`` key.
"""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from pipnb.data import SNAPSHOT, SalesData
from pipnb.errors import DataError, PipnbError, SourceError
from pipnb.io import read_yaml
from pipnb.ledger import BAD_ROWS, Ledger, check_bad_rows
from pipnb.sources.registry import FORMATS, Reader

if TYPE_CHECKING:   # pandera (behind pipnb.validate) is imported only when data is validated
    from pipnb.validate import RawTable


def load(source: str | Path | SalesData, *, timezone: str = "UTC", bad_rows: str | None = None) -> SalesData:
    """Load and validate sales data from a folder or a source YAML.

    Parameters
    ----------
    source
        A folder holding ``reps``, ``opportunities`` and optionally ``activities`` as ``.csv`` or
        ``.parquet``; a Salesforce export folder (``Opportunity.csv`` + ``User.csv``); a HubSpot export
        folder (``deals.csv`` + ``owners.csv``); a database URL (``sqlite:///crm.db``, tables under their
        canonical names); or a ``.yaml``/``.yml`` source file (``format: columns`` ...).
    timezone
        Zone every timestamp is normalized to.
    bad_rows
        ``"stop"``: the first invalid row stops the load; ``"skip"``: invalid rows are set aside (invalid
        optional values blanked), counted and listed in ``SalesData.quality``. Default (None): the source
        YAML's ``bad_rows:``, else ``"stop"``.

    Returns
    -------
    SalesData

    Raises
    ------
    SourceError, DataError
        With one line naming the file, row and column at fault.

    Example
    -------
    >>> import pipnb as pn
    >>> data = pn.load("data/demo")        # doctest: +SKIP
    """
    if isinstance(source, SalesData):
        return source
    if Path(source, SNAPSHOT).is_file():           # a batch's validated snapshot: trusted if unaltered
        snapshot = SalesData.read_snapshot(source)
        if snapshot is not None:
            return snapshot
    # Here, not at the top: the adapters and the validation import pandera (0.25 s), which a loaded snapshot or a
    # module that only names load (pipnb.metrics, for accepts_path) does not need. Importing them registers the formats.
    from pipnb.sources import columns, folder, hubspot, salesforce, sql  # noqa: F401

    choice = check_bad_rows(bad_rows)
    if isinstance(source, str) and "://" in source:
        ledger = Ledger(choice)
        return _validated(lambda: sql.read_url(source), "the database", timezone, ledger)
    path = Path(source)
    if path.is_dir():
        ledger = Ledger(choice)
        for is_export, read in ((salesforce.is_salesforce_folder, salesforce.read_salesforce_folder),
                                (hubspot.is_hubspot_folder, hubspot.read_hubspot_folder)):
            if is_export(path):
                return _validated(lambda read=read: (read(path, timezone=timezone, ledger=ledger), str(path)),
                                  str(path), timezone, ledger)
        return _validated(lambda: (folder.read_folder(path), str(path)), str(path), timezone, ledger)
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        config = read_source_yaml(path)
        written = config.get("bad_rows")      # a wrong value is named by the format's own check of the YAML
        ledger = Ledger(choice or (written if written in BAD_ROWS else None))
        return _validated(lambda: (_read(FORMATS[config["format"]], config, path.parent, timezone, ledger),
                                   str(path)), str(path), timezone, ledger)
    if not path.exists():
        raise SourceError(f"{path}: no such folder or file; pass a folder of reps/opportunities/activities "
                          "tables, a CRM export folder, a database URL or a source YAML "
                          "(try `pipnb demo-data --out data/demo`)")
    raise SourceError(f"{path}: not a folder or a .yaml source file")


def _validated(read, source: str, timezone: str, ledger: Ledger) -> SalesData:
    """Validate the tables ``read()`` returns (with the name reports show). A load that stops still explains
    itself: the error carries the partial data and, when a table ended empty, why (:mod:`pipnb.sources.explain`)."""
    # pandera (0.25 s), behind pipnb.validate: imported with the adapters, as in load
    from pipnb.sources.explain import explained, stop_if_empty
    from pipnb.validate import validate  # pandera (0.25 s), as above

    tables, shown = None, source
    try:
        tables, shown = read()
        stop_if_empty(tables)
        return validate(tables, source=shown, timezone=timezone, ledger=ledger)
    except DataError as err:
        raise explained(err, ledger, tables, source=shown, timezone=timezone) from None


def _read(reader: Reader, config: dict, base: Path, timezone: str, ledger: Ledger) -> dict[str, RawTable]:
    """Call a format adapter; adapters with a ``timezone`` (``ledger``) keyword get the zone to convert to
    (the load's ledger)."""
    accepts = inspect.signature(reader).parameters
    options = {"timezone": timezone, "ledger": ledger}
    return reader(config, base, **{k: v for k, v in options.items() if k in accepts})


def read_source_yaml(path: Path) -> dict:
    """Read a source YAML safely and check its ``format``."""
    try:
        config = read_yaml(path)                       # size, depth and alias limits: pipnb.io
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SourceError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(config, dict) or "format" not in config:
        raise SourceError(f"{path}: a source YAML needs a top-level `format:` "
                          f"(one of {', '.join(sorted(FORMATS))})")
    if config["format"] not in FORMATS:
        raise SourceError(f"{path}: format '{config['format']}' is unknown "
                          f"(use one of {', '.join(sorted(FORMATS))})")
    return config


def as_sales_data(data: SalesData | str | os.PathLike[str]) -> SalesData:
    """``data`` itself, or the data loaded from a path or a source (:func:`pipnb.load`)."""
    if isinstance(data, SalesData):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load(data)
    raise PipnbError(f"expected the data as a SalesData (data = pn.load(PATH)) or a path to load, not a "
                     f"{type(data).__name__}")


def accepts_path(func):
    """Let ``func``'s first argument, a :class:`SalesData`, be given as a path too (loaded on each call: for
    several calls, load it once with :func:`pipnb.load`)."""

    @functools.wraps(func)
    def wrapper(data, *args, **kwargs):
        return func(as_sales_data(data), *args, **kwargs)

    return wrapper
