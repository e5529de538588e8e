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

__all__ = ["data_as_of", "fingerprint_until"]


def data_as_of(data: SalesData, day: str | dt.date | pd.Timestamp) -> SalesData:
    """``data`` as it stood at the end of ``day``: what a CRM export made that evening would have held.

    Open opportunities without a created date are kept (they count in the open pipeline).
    """
    end = pd.Timestamp(day).normalize() + pd.Timedelta(days=1)
    opps = data.opportunities
    opps = opps[opps["created_at"].isna() | (opps["created_at"] < end)]
    later = opps["closed_at"].notna() & (opps["closed_at"] >= end)
    if later.any():
        opps = opps.assign(outcome=opps["outcome"].where(~later, "open"), closed_at=opps["closed_at"].where(~later))
    acts = data.activities
    if acts is not None:
        acts = acts[acts["occurred_at"] < end]
    return dataclasses.replace(data, opportunities=opps, activities=acts, span=None, stamps={})  # its own rows only


def fingerprint_until(data: SalesData, day: str | dt.date | pd.Timestamp) -> str:
    """The fingerprint of :func:`data_as_of` ``(data, day)``; for a report's slice of a larger data set, the
    whole data's (recorded in the slice, :attr:`pipnb.data.SalesData.stamps`)."""
    recorded = data.stamps.get(f"{pd.Timestamp(day):%Y-%m-%d}")
    if recorded is not None:
        return recorded
    return data_as_of(data, day).fingerprint()
