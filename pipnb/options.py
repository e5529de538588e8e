"""The command line's values, checked before anything runs: dates, paths and folders.

Every value a user types is checked here, in the parsing, so that a mistake is one line and exit 2 with nothing
written: a date that is not ISO 8601 (``06/01/2026``, ``2026-6-1``, ``June 1``), empty, ``NaT``, ``nan`` or outside
:data:`YEARS` (read by :func:`pipnb.dates.read_date`, the one reader of a user's date); an empty path; a folder a
reading command would otherwise create. :mod:`pipnb.cli` uses these as click callbacks and helpers.
"""

from __future__ import annotations

from pathlib import Path

import click

from pipnb.dates import YEARS, read_date
from pipnb.errors import PipnbError

__all__ = ["YEARS", "absolute_path", "date_value", "existing_folder", "iso_date", "nonempty_path"]


def absolute_path(ctx: click.Context, param: click.Parameter, value):
    """A path option taken from the caller's working directory, before anything runs (never empty)."""
    if value is not None and not str(value).strip():
        raise click.BadParameter("is empty: give a folder (or leave the option out for its default)")
    return None if value is None else str(Path(value).expanduser().absolute())


def existing_folder(ctx: click.Context, param: click.Parameter, value):
    """:func:`absolute_path`, for a folder that must exist already (a command that reads it creates nothing)."""
    value = absolute_path(ctx, param, value)
    if value is not None and not Path(value).is_dir():
        raise click.BadParameter(f"{value} is not a folder (give the reports folder a run wrote)")
    return value


def nonempty_path(ctx: click.Context, param: click.Parameter, value):
    """A path that is not empty (an empty one would mean the working directory, by accident)."""
    if value is not None and not str(value).strip():
        raise click.BadParameter("is empty: give a file")
    return value


def iso_date(value: str | None, option: str) -> str:
    """A date option as ``YYYY-MM-DD``, or ``""`` when not given (empty is the option's default here)."""
    stamp = date_value(value or None, option)
    return f"{stamp:%Y-%m-%d}" if stamp is not None else ""


def date_value(value: str | None, option: str):
    """A date option as a ``pandas.Timestamp`` (None when not given); anything that is not ISO 8601 (``YYYY-MM-DD``
    or a timestamp) in :data:`YEARS` -- empty, ``NaT``, ``nan``, ``01/02/2024``, ``9999-12-31`` -- is a
    :class:`click.BadParameter` (one line)."""
    try:
        stamp = read_date(value, option)
    except PipnbError as err:
        raise click.BadParameter(str(err).removeprefix(f"{option}: "), param_hint=option) from None
    if stamp is None:
        return None
    import pandas as pd  # pandas (0.25 s): only a command given a date pays it

    return pd.Timestamp(stamp)
