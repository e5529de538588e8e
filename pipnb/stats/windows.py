"""The whole-week windows an assessment compares: baseline, diagnosis (the stretch that put the rep on
the plan) and plan period, with explicit fallbacks when the rep has little earlier data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from pipnb.errors import PlanError, UnknownRepError
from pipnb.metrics import week_start

WEEK = pd.Timedelta(weeks=1)
BASELINE_WEEKS = 12      # the default baseline: the 12 weeks before the diagnosis window


@dataclass(frozen=True)
class Window:
    """A run of whole weeks, named by their Mondays (``first_week`` .. ``last_week`` inclusive)."""

    first_week: pd.Timestamp
    last_week: pd.Timestamp

    @cached_property
    def weeks(self) -> pd.DatetimeIndex:
        """The Mondays of the window (empty when ``last_week < first_week``)."""
        return pd.date_range(self.first_week, self.last_week, freq="W-MON")

    @property
    def n_weeks(self) -> int:
        return len(self.weeks)

    @property
    def start(self) -> pd.Timestamp:
        return self.first_week

    @property
    def end(self) -> pd.Timestamp:
        """The midnight after the window's last day (exclusive end)."""
        return self.last_week + WEEK

    def label(self) -> str:
        """``'1 Jan – 24 Mar 2024'``: the window's first and last day."""
        last_day = self.end - pd.Timedelta(days=1)
        first = f"{self.first_week.day} {self.first_week:%b}"
        if self.first_week.year != last_day.year:
            first += f" {self.first_week.year}"
        return f"{first} – {last_day.day} {last_day:%b %Y}"


@dataclass(frozen=True)
class PlanWindows:
    """The windows one assessment compares.

    Attributes
    ----------
    baseline, diagnosis, plan
        Whole-week windows. ``plan`` holds the complete plan weeks up to ``as_of`` (a week counts
        once its Friday is on or before ``as_of``) and may be empty.
    baseline_source
        ``"given"`` (passed by the caller), ``"before_diagnosis"`` (the default window),
        ``"earlier_data"`` (fewer weeks than wanted existed: whatever came before the diagnosis
        window) or ``"diagnosis_window"`` (no earlier data: the selecting window itself).
    caveat
        A sentence for the reader when the baseline is not the default one, else ``""``.
    """

    baseline: Window
    diagnosis: Window
    plan: Window
    as_of: pd.Timestamp
    baseline_source: str
    caveat: str = ""

    @cached_property
    def weeks(self) -> pd.DatetimeIndex:
        """Baseline and plan weeks together, sorted (the diagnosis window is left out)."""
        return self.baseline.weeks.union(self.plan.weeks)

    def describe_baseline(self) -> str:
        """The baseline in words, for the ``baseline_window`` column."""
        why = {
            "given": "as set in the plan",
            "before_diagnosis": "before the stretch that put the rep on the plan",
            "earlier_data": "all the data before the stretch that put the rep on the plan",
            "diagnosis_window": "the stretch that put the rep on the plan: no earlier data",
        }[self.baseline_source]
        return f"{self.baseline.label()}, {why}"


def plan_windows(
    panel: pd.DataFrame,
    rep_id: str,
    *,
    plan_start: Any,
    as_of: Any,
    diagnosis_start: Any = None,
    diagnosis_end: Any = None,
    baseline_start: Any = None,
    baseline_end: Any = None,
    diagnosis_weeks: int = 12,
    baseline_weeks: int = BASELINE_WEEKS,
    min_baseline_weeks: int = 4,
) -> PlanWindows:
    """Choose the baseline, diagnosis and plan windows of one rep's assessment.

    The plan period starts on the first Monday on or after ``plan_start``. The diagnosis window (the
    stretch that put the rep on the plan) is ``diagnosis_start``..``diagnosis_end`` when given, else
    the ``diagnosis_weeks`` weeks before the plan. The baseline is ``baseline_start``..``baseline_end``
    when given, else the ``baseline_weeks`` weeks before the diagnosis window; when the rep has fewer
    than ``min_baseline_weeks`` weeks there, it falls back to all the rep's weeks before the diagnosis
    window, and when there are none, to the diagnosis window itself, with a caveat.

    Parameters
    ----------
    panel
        The weekly panel; only the rep's weeks (rows of any metric) are looked at.
    rep_id
        The rep on the plan.
    plan_start, as_of
        Plan start date and the assessment date (dates inclusive).
    diagnosis_start, diagnosis_end, baseline_start, baseline_end
        Optional dates (inclusive); each is taken to the Monday of its week.
    diagnosis_weeks, baseline_weeks, min_baseline_weeks
        Default window lengths and the shortest default baseline accepted.

    Returns
    -------
    PlanWindows

    Raises
    ------
    PlanError
        When the dates contradict each other (baseline after the plan start, ``as_of`` before it).
    """
    first_plan = _first_monday(plan_start)
    as_of = pd.Timestamp(as_of).normalize()
    if as_of < pd.Timestamp(plan_start).normalize():
        raise PlanError(f"as_of {as_of:%Y-%m-%d} is before the plan start "
                        f"{pd.Timestamp(plan_start):%Y-%m-%d}", key="as_of")
    plan = Window(first_plan, _last_complete_week(as_of))
    diagnosis = _diagnosis_window(first_plan, diagnosis_start, diagnosis_end, diagnosis_weeks)
    if diagnosis.last_week >= first_plan:
        raise PlanError("the diagnosis window must end before the plan starts", key="diagnosis_end")
    if baseline_start is not None or baseline_end is not None:
        baseline = _given_baseline(baseline_start, baseline_end, diagnosis, baseline_weeks)
        if baseline.last_week >= first_plan:
            last_day = baseline.end - pd.Timedelta(days=1)
            raise PlanError("the baseline must end before the plan starts "
                            f"(baseline ends {last_day:%Y-%m-%d})", key="baseline_end")
        return PlanWindows(baseline, diagnosis, plan, as_of, "given")
    rep_weeks = _rep_weeks(panel, rep_id)
    return _default_baseline(rep_weeks, diagnosis, plan, as_of, baseline_weeks, min_baseline_weeks)


def _first_monday(when: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(when).normalize()
    return stamp + pd.Timedelta(days=(7 - stamp.weekday()) % 7)


def _last_complete_week(as_of: pd.Timestamp) -> pd.Timestamp:
    """Monday of the last week whose Friday is on or before ``as_of``."""
    monday = week_start(as_of)
    return monday if as_of >= monday + pd.Timedelta(days=4) else monday - WEEK


def _diagnosis_window(first_plan: pd.Timestamp, start: Any, end: Any, n_weeks: int) -> Window:
    last = week_start(end) if end is not None else first_plan - WEEK
    first = week_start(start) if start is not None else last - (n_weeks - 1) * WEEK
    if last < first:
        raise PlanError("the diagnosis window ends before it starts", key="diagnosis_end")
    return Window(first, last)


def _given_baseline(start: Any, end: Any, diagnosis: Window, n_weeks: int) -> Window:
    last = week_start(end) if end is not None else diagnosis.first_week - WEEK
    first = week_start(start) if start is not None else last - (n_weeks - 1) * WEEK
    if last < first:
        raise PlanError("the baseline ends before it starts", key="baseline_end")
    return Window(first, last)


def _rep_weeks(panel: pd.DataFrame, rep_id: str) -> pd.DatetimeIndex:
    weeks = panel.loc[panel["rep_id"] == rep_id, "week"]
    if weeks.empty:
        raise UnknownRepError(f"rep '{rep_id}' has no rows in the weekly panel (check the rep id)")
    return pd.DatetimeIndex(week_start(weeks).unique()).sort_values()


def _default_baseline(rep_weeks: pd.DatetimeIndex, diagnosis: Window, plan: Window, as_of: pd.Timestamp,
                      n_weeks: int, min_weeks: int) -> PlanWindows:
    wanted = Window(diagnosis.first_week - n_weeks * WEEK, diagnosis.first_week - WEEK)
    available = rep_weeks[(rep_weeks >= wanted.first_week) & (rep_weeks <= wanted.last_week)]
    if len(available) >= min_weeks:
        return PlanWindows(wanted, diagnosis, plan, as_of, "before_diagnosis")
    earlier = rep_weeks[rep_weeks < diagnosis.first_week][-n_weeks:]
    if len(earlier) > 0:
        window = Window(earlier.min(), earlier.max())
        caveat = (f"The baseline is the rep's last {len(earlier)} week{'s' * (len(earlier) != 1)} of data "
                  "before the stretch that triggered the plan"
                  + (", so it is imprecise." if len(earlier) < min_weeks else
                     ", not the weeks just before it (no data then)."))
        return PlanWindows(window, diagnosis, plan, as_of, "earlier_data", caveat)
    caveat = ("Caution: there is no data before the stretch that put the rep on the plan, so the baseline is "
              "that stretch itself; part of any rise is regression to the mean, not improvement.")
    return PlanWindows(diagnosis, diagnosis, plan, as_of, "diagnosis_window", caveat)


def working_days(weeks: pd.DatetimeIndex, holidays: Iterable[Any] | None = None) -> np.ndarray:
    """Working days (Monday-Friday, minus ``holidays``) in each week starting on ``weeks``."""
    start = weeks.values.astype("datetime64[D]")
    hol = np.array([np.datetime64(pd.Timestamp(h).date()) for h in (holidays or ())], dtype="datetime64[D]")
    return np.busday_count(start, start + np.timedelta64(7, "D"), holidays=hol).astype(float)
