"""The data a record stands on: a fingerprint of the data as it stood at the end of a day.

A checkpoint review of 26 April reads the CRM up to 26 April. Rows dated later (next month's activities,
a deal closed in June) do not change what it says, so they must not change its fingerprint; a row dated
before it, added or edited later, must. :func:`fingerprint_until` gives that fingerprint: the one
:meth:`pipnb.data.SalesData.fingerprint` gives for the data cut at the end of the day (activities after it
dropped, opportunities created after it dropped, deals closed after it still open), so data exported on
that day and the same data exported later, with more rows, give the same value.

Example
-------
>>> fingerprint_until(data, "2026-04-26") == fingerprint_until(data_with_may, "2026-04-26")   # doctest: +SKIP
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from pipnb.data import SalesData
from pipnb.schema import TABLES

__all__ = ["data_as_of", "fingerprint_until", "is_whole"]


def data_as_of(data: SalesData, day: str | dt.date | pd.Timestamp) -> SalesData:
    """``data`` as it stood at the end of ``day``: what a CRM export made that evening would have held.

    Open opportunities without a created date are kept (they count in the open pipeline). A table nothing
    is cut from is ``data``'s own (the same object: :func:`is_whole` tells).
    """
    end = pd.Timestamp(day).normalize() + pd.Timedelta(days=1)
    opps = data.opportunities
    created = opps["created_at"].isna() | (opps["created_at"] < end)
    if not created.all():
        opps = opps[created]
    later = opps["closed_at"].notna() & (opps["closed_at"] >= end)
    if later.any():
        opps = opps.assign(outcome=opps["outcome"].where(~later, "open"), closed_at=opps["closed_at"].where(~later))
    acts = data.activities
    if acts is not None:
        before = acts["occurred_at"] < end
        if not before.all():
            acts = acts[before]
    return dataclasses.replace(data, opportunities=opps, activities=acts, span=None, stamps={})  # its own rows only


def is_whole(cut: SalesData, data: SalesData) -> bool:
    """Whether :func:`data_as_of` cut nothing from ``data`` (its fingerprint is then ``data``'s)."""
    return all(getattr(cut, name) is getattr(data, name) for name in TABLES)


def fingerprint_until(data: SalesData, day: str | dt.date | pd.Timestamp, *, whole: str | None = None) -> str:
    """The fingerprint of :func:`data_as_of` ``(data, day)``; for a report's slice of a larger data set, the
    whole data's (recorded in the slice, :attr:`pipnb.data.SalesData.stamps`). ``whole``: ``data``'s own
    fingerprint when the caller knows it, returned when the day cuts nothing (no hashing every row again)."""
    recorded = data.stamps.get(f"{pd.Timestamp(day):%Y-%m-%d}")
    if recorded is not None:
        return recorded
    cut = data_as_of(data, day)
    return whole if whole is not None and is_whole(cut, data) else cut.fingerprint()
