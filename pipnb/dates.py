"""The one reader of a date a user gives: ISO 8601 only (``YYYY-MM-DD``, or a timestamp ``YYYY-MM-DDTHH:MM``).

A date typed on the command line, passed as a notebook parameter (papermill passes YAML dates as text) or given to
the API (``pn.diagnose(data, "R07", as_of=...)``, ``pn.draft_plan(dx, start=...)``, ``pn.scorecard(...,
since=...)``) is read here, so ``06/01/2026`` is never June 1 to one reader and January 6 to another:
``06/01/2026``, ``01/06/2026``, ``2026-6-1``, ``June 1`` and ``20260601`` are refused with one line naming the value
and the format. A ``datetime.date``, ``datetime.datetime``, ``pandas.Timestamp`` or ``numpy.datetime64`` is taken as
it is. Data files keep their mapping's ``dates:`` formats (:mod:`pipnb.sources`), not this.

No pandas here: :mod:`pipnb.options` reads the command line's dates with it before anything heavy loads.
"""

from __future__ import annotations

import datetime as dt
import re

from pipnb.errors import PipnbError

__all__ = ["FORMAT", "YEARS", "DateError", "date_error", "read_date", "read_day"]

#: The years a date a user gives may fall in (a CRM's history and its plans; not 1677 or 9999).
YEARS = (1900, 2199)
#: The format every message names.
FORMAT = "YYYY-MM-DD"
#: A day ``YYYY-MM-DD``, optionally with a time ``THH:MM[:SS[.f]]`` (or a space) and a UTC offset or ``Z``.
_ISO = re.compile(r"(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})"
                  r"(?P<time>[T ][0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?")


class DateError(PipnbError):
    """A date a user gave that is not ISO 8601: ``name`` (what it is), ``problem`` (what is wrong with it, without
    the advice), and the message: both and the format to use."""

    def __init__(self, name: str, problem: str):
        self.name, self.problem = name, problem
        super().__init__(f"{name}: {problem}: use {FORMAT} (e.g. 2026-06-01) or a timestamp {FORMAT}THH:MM")


def date_error(value: object, name: str, why: str = "is not a date") -> DateError:
    """The one-line error for a date ``name`` given as ``value``: what is wrong, and the format to use."""
    shown = " ".join(str(value).split())
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return DateError(name, f"'{shown}' {why}")


def read_date(value: object, name: str) -> dt.datetime | None:
    """``value`` as a naive ``datetime`` (None stays None): ISO 8601 text, or a date/datetime/Timestamp.

    Parameters
    ----------
    value
        ``"2026-06-01"``, ``"2026-06-01T09:00"``, a ``datetime.date``, ``datetime.datetime``, ``pandas.Timestamp``
        or ``numpy.datetime64``. A timestamp with a UTC offset keeps its wall-clock time (the day the user wrote).
    name
        What the value is, as the user gave it (``--as-of``, ``as_of``, ``start``): the error names it.

    Raises
    ------
    DateError
        (a :class:`~pipnb.errors.PipnbError`) for anything else -- ``06/01/2026``, ``2026-6-1``, ``June 1``,
        ``""``, ``NaT``, a number -- or a year outside :data:`YEARS`: one line naming ``name``, the value and the
        format.
    """
    if value is None:
        return None
    stamp = _as_datetime(value, name)
    if stamp is None:
        text = value.strip() if isinstance(value, str) else None
        if text == "":
            raise DateError(name, "the date is empty (leave it out for the default)")
        match = _ISO.fullmatch(text) if text is not None else None
        if match is None:
            raise date_error(value, name)
        try:
            stamp = dt.datetime.fromisoformat(_micro(text.replace("Z", "+00:00")))
        except ValueError:
            raise date_error(value, name, "is not a real day") from None
    if not YEARS[0] <= stamp.year <= YEARS[1]:
        raise date_error(value, name, f"is out of range (a date from {YEARS[0]} to {YEARS[1]})")
    return stamp.replace(tzinfo=None)


def read_day(value: object, name: str) -> dt.date | None:
    """:func:`read_date`'s day (a ``datetime.date``; None stays None)."""
    stamp = read_date(value, name)
    return None if stamp is None else stamp.date()


def _as_datetime(value: object, name: str) -> dt.datetime | None:
    """A date-like object as a datetime; None for text (read by the caller). NaT, NaN, numbers: refused."""
    if isinstance(value, str):
        return None
    if value != value:                                    # NaT and NaN are unequal to themselves
        raise date_error(value, name)
    if isinstance(value, dt.datetime):                    # pandas.Timestamp too
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if type(value).__name__ == "datetime64" and str(value) != "NaT":      # numpy, without importing it
        return _as_datetime(value.astype("datetime64[us]").item(), name)
    raise date_error(value, name, f"({type(value).__name__}) is not a date")


def _micro(text: str) -> str:
    """Fractional seconds cut to microseconds (``datetime.fromisoformat`` reads at most six digits)."""
    return re.sub(r"(\.[0-9]{6})[0-9]+", r"\1", text)
