"""Business-day time for the demo generator, with its holidays and quarter ends.

Every event of the demo is drawn as a float ``x``, business days since the first Monday (five a week;
the fraction is the time of day within ``WORK_MINUTES``). :class:`Calendar` turns such times into week
numbers, holiday levels and timestamps, so that the generators can draw all reps' events with array
arithmetic and never touch dates. The seasonality of the data (Christmas / New Year, mid-August) and the
quarter ends that pull closes forward come from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EXTRA_WEEKS = 16         # calendar kept beyond the end, for closes and quarter ends after it
WORK_MINUTES = 600       # activity happens on weekdays, 08:00-18:00


@dataclass(frozen=True)
class Calendar:
    """Business-day time: ``x`` = business days since the first Monday (5 per week, fractions = hours).

    Attributes
    ----------
    start
        Midnight of the first Monday.
    weeks
        Weeks in the data; ``x >= 5 * weeks`` is after the end.
    factor
        Activity level of each business day (1 normally, lower on holidays).
    next_open
        First business day at or after each day that is not a holiday.
    quarter_close
        Last non-holiday business day of each day's quarter.
    """

    start: pd.Timestamp
    weeks: int
    factor: np.ndarray
    next_open: np.ndarray
    quarter_close: np.ndarray

    @property
    def end_x(self) -> float:
        return 5.0 * self.weeks

    def day(self, x: np.ndarray) -> np.ndarray:
        """Business-day index of each time, clipped to the calendar."""
        return np.clip(np.floor(x), 0, self.factor.size - 1).astype(np.int64)

    def week(self, x: np.ndarray) -> np.ndarray:
        """Week index of each time, clipped to the calendar."""
        return self.day(x) // 5

    def skip_holidays(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Postpone most times that fall on a holiday to one of the first working days after it."""
        factor = self.factor[self.day(x)]
        moved = (factor < 0.5) & (rng.random(x.size) >= factor)
        later = self.next_open[self.day(x)] + rng.random(x.size) * 4.0
        return np.where(moved, later, x)

    def stamps(self, x: np.ndarray) -> np.ndarray:
        """Times as ``datetime64[ns]`` (whole minutes; order is kept)."""
        minutes = np.floor(x * WORK_MINUTES).astype(np.int64)
        bday, minute = np.divmod(minutes, WORK_MINUTES)
        calendar_day = bday // 5 * 7 + bday % 5
        offset = calendar_day * 1440 + 8 * 60 + minute
        return self.start.to_datetime64().astype("datetime64[m]") + offset.astype("timedelta64[m]")


def make_calendar(end: pd.Timestamp, weeks: int) -> Calendar:
    """The calendar of ``weeks`` whole weeks ending on the Sunday ``end``, plus ``EXTRA_WEEKS`` after it."""
    start = end - pd.Timedelta(days=7 * weeks - 1)
    bday = np.arange(5 * (weeks + EXTRA_WEEKS))
    dates = pd.DatetimeIndex(start + pd.to_timedelta(bday // 5 * 7 + bday % 5, unit="D"))
    factor = _holiday_factor(dates)
    open_day = np.where(factor >= 0.5, bday, bday.size - 1)
    next_open = np.minimum.accumulate(open_day[::-1])[::-1]
    quarter = dates.year * 4 + dates.quarter
    close = pd.Series(np.where(factor >= 0.5, bday, -1)).groupby(quarter).transform("max").to_numpy()
    return Calendar(start, weeks, factor, next_open, close)


def _holiday_factor(dates: pd.DatetimeIndex) -> np.ndarray:
    """Activity level per day: low from Christmas Eve to New Year, lower in mid-August."""
    month, dom = dates.month.to_numpy(), dates.day.to_numpy()
    factor = np.ones(len(dates))
    factor[(month == 8) & (dom >= 10) & (dom <= 21)] = 0.6
    factor[((month == 12) & (dom >= 22)) | ((month == 1) & (dom <= 2))] = 0.6
    factor[((month == 12) & (dom >= 24)) | ((month == 1) & (dom == 1))] = 0.12
    factor[((month == 12) & (dom == 25)) | ((month == 1) & (dom == 1))] = 0.02
    return factor
