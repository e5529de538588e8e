"""The command line's values, checked before anything runs: dates, paths and folders.

Every value a user types is checked here, in the parsing, so that a mistake is one line and exit 2 with nothing
written: an empty date, ``NaT``, ``nan`` or a day outside :data:`YEARS`; an empty path; a folder a reading command
would otherwise create. :mod:`pipnb.cli` uses these as click callbacks and helpers.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from pipnb.progress import one_line

__all__ = ["YEARS", "absolute_path", "date_value", "existing_folder", "iso_date", "nonempty_path"]

#: The years a date on the command line may fall in (a CRM's history and its plans; not 1677 or 9999).
YEARS = (1900, 2199)
#: A date as the command line takes it: ``YYYY-MM-DD``, optionally with a time.
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.+\-Z]*)?\Z")


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
    """A date option as a ``pandas.Timestamp`` (None when not given); anything that is not a ``YYYY-MM-DD`` day of
    :data:`YEARS` -- empty, ``NaT``, ``nan``, ``01/02/2024``, ``9999-12-31`` -- is a :class:`click.BadParameter`
    (one line)."""
    if value is None:
        return None
    import pandas as pd  # pandas (0.25 s): only a command given a date pays it

    if not value.strip():
        raise click.BadParameter("is empty: give a date as YYYY-MM-DD, or leave the option out", param_hint=option)
    try:                       # ISO only: 01/02/2024 is 2 January to pandas and 1 February to half the world
        stamp = pd.Timestamp(value) if _ISO.match(value.strip()) else pd.NaT
    except (ValueError, TypeError, OverflowError):
        stamp = pd.NaT
    shown = one_line(value, 40)
    if pd.isna(stamp):
        raise click.BadParameter(f"'{shown}' is not a date (use YYYY-MM-DD)", param_hint=option)
    if not YEARS[0] <= stamp.year <= YEARS[1]:
        raise click.BadParameter(f"'{shown}' is out of range (use a date from {YEARS[0]} to {YEARS[1]}, "
                                 "YYYY-MM-DD)", param_hint=option)
    return stamp
