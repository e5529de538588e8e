"""The weekly panel: every metric for every rep and week, computed for all reps at once.

The panel is long: ``rep_id, week, metric, numerator, denominator, value`` with ``week`` the Monday
that starts it. Numerators and denominators are counts (or day sums), so any window pools them;
a zero denominator leaves ``value`` undefined (NaN), never 0. Every weekly row depends only on events
up to that week's end, so one panel serves reviews at any earlier date.

Definitions (window = a run of whole weeks)
-----------------------------------------
- ``emails_per_week``, ``calls_per_week``, ``meetings_per_week``: activities of that kind per week employed.
- ``first_meetings_per_week``: opportunities whose first meeting falls in the week.
- ``followup_meeting_ratio``: a cohort ratio. Each opportunity's first meeting is judged in the week its
  follow-up window (``cohort_days``, 21 by default) closes; it counts as followed up when the second meeting
  came within those days. A window's ratio is followed-up ÷ judged first meetings, a proper proportion.
- ``opps_created_per_week``: opportunities created (those without a created date are not counted).
- ``win_rate``: won ÷ (won + lost) closed in the window; ``win_rate_all`` (basis "all"): won closed ÷
  opportunities created in the window, the article's "win rate on all opps".
- ``avg_days_between_touches``: mean of the gaps between consecutive touches (any activity on the
  opportunity) that close in the window, plus, for each opportunity still open at the window end, the gap
  from its last touch (or its creation) to the window end. Its two parts are kept as
  ``touch_gap_closed`` and ``touch_gap_open`` (a snapshot at each week's end).
- ``stale_opp_share``: open opportunities untouched for more than 14 whole days (15+ calendar days from the day
  of the last touch, :func:`untouched_days`) ÷ open opportunities, at the
  window end (a snapshot).
- ``avg_deal_size``, ``sales_cycle_days``: over won deals closed in the window.
- ``pipeline_velocity`` (window only): opportunities created per week × win rate × deal size ÷ cycle days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipnb.data import SalesData
from pipnb.dates import read_date
from pipnb.errors import DataError
from pipnb.limits import PANEL_CELL_BYTES, check_fits
from pipnb.schema import METRICS, SNAPSHOT_ROWS, STALE_DAYS, WIN_RATE_BASES
from pipnb.sources import accepts_path
from pipnb.textcheck import codes_in

DAY_NS = 86_400 * 10**9


def to_days(stamps: pd.Series | pd.Index) -> np.ndarray:
    """Timestamps as float days since 1970-01-01 (NaT becomes NaN)."""
    values = pd.Series(stamps).to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
    values[pd.isna(stamps)] = np.nan
    return values / DAY_NS


def untouched_days(last: np.ndarray, until: np.ndarray) -> np.ndarray:
    """Whole calendar days an open opportunity has gone untouched: from the day of its last touch (or creation)
    to the last day of the evaluation, ``until`` being the instant that ends it (float days, :func:`to_days`).

    The stale rule is ``untouched_days > STALE_DAYS`` ("more than 14 days"): touched on the 1st, a deal is not
    stale on the 15th (14 days untouched) and is stale from the 16th (15 days).
    """
    return np.ceil(np.asarray(until, dtype=float) - 1e-9) - 1 - np.floor(np.asarray(last, dtype=float))


def week_start(stamps: pd.Series | pd.Timestamp | str) -> pd.Series | pd.Timestamp:
    """The Monday 00:00 starting the week of each timestamp (a Series, or one date of any spelling)."""
    if not isinstance(stamps, pd.Series):
        day = pd.Timestamp(stamps).normalize()
        return day - pd.Timedelta(days=day.weekday())
    days = pd.to_datetime(stamps).to_numpy().astype("datetime64[D]")
    monday = days - (days.astype("int64") + 3) % 7                 # 1970-01-01 was a Thursday
    return pd.Series(monday.astype("datetime64[ns]"), index=stamps.index, name=stamps.name)


class _Grid:
    """Rep × week integer coordinates shared by every metric of one panel."""

    def __init__(self, data: SalesData, as_of: pd.Timestamp | None):
        start, end = data.period
        self.as_of = _as_of_instant(as_of if as_of is not None else end)
        self.first_monday = week_start(start)
        self.first_day = to_days(pd.Series([self.first_monday]))[0]
        self.n_weeks = int((to_days(pd.Series([self.as_of]))[0] - 1e-9 - self.first_day) // 7) + 1
        self.rep_ids = data.reps["rep_id"].to_numpy(dtype=object)
        self.n_reps = len(self.rep_ids)
        check_fits(self.n_reps * self.n_weeks * PANEL_CELL_BYTES,
                   what=f"the weekly panel of {self.n_reps:,} reps over {self.n_weeks:,} weeks",
                   cut="load one team or segment at a time (a folder or a source YAML each), or a shorter period")
        self.mondays = self.first_monday + pd.to_timedelta(np.arange(self.n_weeks) * 7, unit="D")
        week_end_days = self.first_day + 7 * (np.arange(self.n_weeks) + 1)
        self.week_end_days = np.minimum(week_end_days, to_days(pd.Series([self.as_of]))[0])
        hire = to_days(data.reps["hire_date"]) if "hire_date" in data.reps else np.full(self.n_reps, np.nan)
        self.employed = ~(week_end_days[None, :] <= np.nan_to_num(hire, nan=-np.inf)[:, None])
        if "end_date" in data.reps:          # a rep who left: no week after the one they left in
            left = to_days(data.reps["end_date"])
            self.employed &= ~(week_end_days[None, :] - 7 > np.nan_to_num(left, nan=np.inf)[:, None])
        # a week the data ends in counts for the working days it covers (data ending on a Monday: 1/5)
        covered = self.week_end_days - (week_end_days - 7)
        self.exposure = self.employed * (np.clip(np.ceil(covered - 1e-9), 0, 5) / 5)[None, :]

    def codes(self, rep_ids: pd.Series) -> np.ndarray:
        return codes_in(rep_ids, self.rep_ids)

    def week_index(self, days: np.ndarray) -> np.ndarray:
        """Week number of each day value; -1 outside the grid or missing."""
        idx = np.floor((days - self.first_day) / 7)
        ok = np.isfinite(idx) & (idx >= 0) & (idx < self.n_weeks)
        return np.where(ok, idx, -1).astype(np.int64)

    def count(self, reps: np.ndarray, weeks: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of ``weights`` (default 1) per rep × week, as a dense matrix."""
        ok = (reps >= 0) & (weeks >= 0)
        if weights is not None:
            ok &= np.isfinite(weights)
            weights = weights[ok]
        flat = reps[ok] * self.n_weeks + weeks[ok]
        return np.bincount(flat, weights=weights, minlength=self.n_reps * self.n_weeks
                           ).reshape(self.n_reps, self.n_weeks).astype(float)


def _as_of_instant(as_of) -> pd.Timestamp:
    """The instant that ends the day ``as_of`` (dates include their whole day)."""
    return pd.Timestamp(read_date(as_of, "as_of")).normalize() + pd.Timedelta(days=1)


@accepts_path
def weekly_panel(data: SalesData, *, as_of: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Compute every metric for every rep and week at once.

    Parameters
    ----------
    data
        Validated sales data.
    as_of
        Last day to include (default: the last day with data); events after it are ignored.

    Returns
    -------
    pandas.DataFrame
        Long panel ``rep_id, week, metric, numerator, denominator, value``; only weeks in which the rep
        was employed. Metrics whose tables are missing from the source are absent.

    Example
    -------
    >>> panel = weekly_panel(pn.demo_data())            # doctest: +SKIP
    >>> panel.query("metric == 'emails_per_week'").head()  # doctest: +SKIP
    """
    grid = _Grid(data, as_of)
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    parts.update(_opportunity_metrics(data, grid))
    if data.activities is not None:
        parts.update(_activity_metrics(data, grid))
    return _to_long(parts, grid)


def _opportunity_metrics(data: SalesData, grid: _Grid) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    opps = data.opportunities
    ones = grid.exposure
    rep = grid.codes(opps["rep_id"])
    created, closed = to_days(opps["created_at"]), to_days(opps["closed_at"])
    created_week, closed_week = grid.week_index(created), grid.week_index(closed)
    cutoff = to_days(pd.Series([grid.as_of]))[0]
    closed_week = np.where(closed < cutoff, closed_week, -1)
    won, lost = (opps["outcome"] == "won").to_numpy(), (opps["outcome"] == "lost").to_numpy()
    won_week = np.where(won, closed_week, -1)
    n_created = grid.count(rep, created_week)
    n_won = grid.count(rep, won_week)
    amount = opps["amount"].to_numpy(float) if "amount" in opps else np.full(len(opps), np.nan)
    has_amount = np.where(np.isfinite(amount), won_week, -1)
    cycle = closed - created
    out = {
        "opps_created_per_week": (n_created, ones),
        "win_rate": (n_won, grid.count(rep, np.where(won | lost, closed_week, -1))),
        "win_rate_all": (n_won, n_created),
        "avg_deal_size": (grid.count(rep, has_amount, amount), grid.count(rep, has_amount)),
        "sales_cycle_days": (grid.count(rep, won_week, cycle), n_won),
    }
    for metric, values in (("avg_deal_size", amount), ("sales_cycle_days", cycle)):
        out.update(_log_moments(grid, rep, won_week, metric, values))
    return out


def _log_moments(grid: _Grid, rep: np.ndarray, week: np.ndarray, metric: str, values: np.ndarray
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The sums of ``log(1 + x)`` and of its square over the deals of a per-deal mean (``<metric>_log``,
    ``<metric>_log2``, each over the deals counted): the scan judges such a mean on the log scale, where a
    skewed amount's noise is near normal (:func:`window_moments`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log1p(np.maximum(values, 0.0))
    week = np.where(np.isfinite(logs), week, -1)
    n = grid.count(rep, week)
    return {f"{metric}_log": (grid.count(rep, week, logs), n), f"{metric}_log2": (grid.count(rep, week, logs ** 2), n)}


def _activity_metrics(data: SalesData, grid: _Grid) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    acts, opps = data.activities, data.opportunities
    ones = grid.exposure
    days = to_days(acts["occurred_at"])
    cutoff = to_days(pd.Series([grid.as_of]))[0]
    week = np.where(days < cutoff, grid.week_index(days), -1)
    rep = grid.codes(acts["rep_id"])
    kind = codes_in(acts["kind"], ("email", "call", "meeting"))
    out = {f"{k}s_per_week": (grid.count(rep, np.where(kind == i, week, -1)), ones)
           for i, k in enumerate(("email", "call", "meeting"))}

    # touches on opportunities, ordered by opportunity then time; credited to the opportunity's owner
    opp_code = codes_in(acts["opp_id"], opps["opp_id"]) if "opp_id" in acts else np.full(len(acts), -1)
    on_opp = (opp_code >= 0) & (days < cutoff)
    t_opp, t_day, t_kind = opp_code[on_opp], days[on_opp], kind[on_opp]
    order = np.argsort(t_opp * 4_000_000.0 + (t_day - grid.first_day) * 86_400 / 1_000)
    t_opp, t_day, t_kind = t_opp[order], t_day[order], t_kind[order]
    owner = grid.codes(opps["rep_id"])
    t_rep, t_week = owner[t_opp], grid.week_index(t_day)

    meet = t_kind == 2
    m_opp = t_opp[meet]
    rank = _rank_within(m_opp)
    m_rep, m_week = t_rep[meet], t_week[meet]
    first = grid.count(m_rep, np.where(rank == 0, m_week, -1))
    out["first_meetings_per_week"] = (first, ones)
    out["followup_meeting_ratio"] = _followup_cohorts(grid, m_opp, t_day[meet], m_rep, rank, cutoff)

    same = np.r_[False, t_opp[1:] == t_opp[:-1]]
    gap = np.where(same, t_day - np.r_[np.nan, t_day[:-1]], np.nan)
    gap_week = np.where(same, t_week, -1)
    out["touch_gap_closed"] = (grid.count(t_rep, gap_week, gap), grid.count(t_rep, gap_week))
    out.update(_open_snapshots(opps, grid, owner, t_opp, t_day))
    closed_sum = out["touch_gap_closed"][0] + out["touch_gap_open"][0]
    closed_n = out["touch_gap_closed"][1] + out["touch_gap_open"][1]
    out["avg_days_between_touches"] = (closed_sum, closed_n)
    return out


def _followup_cohorts(grid: _Grid, m_opp: np.ndarray, m_day: np.ndarray, m_rep: np.ndarray, rank: np.ndarray,
                      cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """First meetings whose follow-up window closed in the week, and those followed up within it.

    A cohort: each opportunity's first meeting is judged once its ``cohort_days`` have passed, in the week
    the window closes (so a week's row depends only on events up to that week's end); it counts as
    followed up when the opportunity's second meeting came within those days. A proper proportion: the
    numerator is a subset of the denominator.
    """
    days = METRICS["followup_meeting_ratio"].cohort_days
    first = rank == 0
    f_opp, f_day, f_rep = m_opp[first], m_day[first], m_rep[first]
    second_day = np.full(f_opp.shape, np.inf)
    if f_opp.size:
        seconds = rank == 1
        where = np.searchsorted(f_opp, m_opp[seconds])           # meetings are sorted by opportunity
        second_day[where] = m_day[seconds]
    due = f_day + days
    judged_week = np.where(due < cutoff, grid.week_index(due), -1)
    followed = np.where(second_day - f_day <= days, judged_week, -1)
    return grid.count(f_rep, followed), grid.count(f_rep, judged_week)


def _rank_within(sorted_keys: np.ndarray) -> np.ndarray:
    """0, 1, 2 ... within runs of equal keys of a sorted array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(sorted_keys)), 0))
    return np.arange(len(sorted_keys)) - run_start


def _open_snapshots(opps: pd.DataFrame, grid: _Grid, owner: np.ndarray, t_opp: np.ndarray,
                    t_day: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Days since the last touch of every opportunity open at each week's end."""
    created = to_days(opps["created_at"])
    created = np.where(np.isnan(created), grid.first_day, created)  # open without a created date
    closed = to_days(opps["closed_at"])
    first = np.maximum(grid.week_index(created), 0)
    first = np.where(created < grid.first_day + 7 * grid.n_weeks, first, grid.n_weeks)
    last_open = np.where(np.isnan(closed), grid.n_weeks - 1,
                         np.floor((closed - grid.first_day) / 7) - 1)  # open at the end of weeks before close
    last_open = np.minimum(last_open, grid.n_weeks - 1).astype(np.int64)
    span = np.clip(last_open - first + 1, 0, None)
    opp_rows = np.repeat(np.arange(len(opps)), span)
    weeks = np.repeat(first, span) + _rank_within(opp_rows)
    at = grid.week_end_days[weeks]
    still_open = (at > created[opp_rows]) & ~(closed[opp_rows] <= at)
    opp_rows, weeks, at = opp_rows[still_open], weeks[still_open], at[still_open]

    # last touch strictly before the snapshot instant, per opportunity, by a search on (opp, day)
    key_touch = t_opp * 1e6 + t_day
    position = np.searchsorted(key_touch, opp_rows * 1e6 + at, side="left") - 1
    valid = position >= 0
    hit = np.zeros(len(opp_rows), dtype=bool)
    hit[valid] = t_opp[position[valid]] == opp_rows[valid]
    touched = t_day[np.clip(position, 0, None)] if len(t_day) else np.full(len(opp_rows), np.nan)
    last = np.where(hit, touched, created[opp_rows])   # no touch on any opportunity: since creation
    gap = at - last
    rep = owner[opp_rows]
    n_open = grid.count(rep, weeks)
    return {
        "touch_gap_open": (grid.count(rep, weeks, gap), n_open),
        "stale_opp_share": (grid.count(rep, np.where(untouched_days(last, at) > STALE_DAYS, weeks, -1)), n_open),
    }


def _to_long(parts: dict[str, tuple[np.ndarray, np.ndarray]], grid: _Grid) -> pd.DataFrame:
    rep_idx, week_idx = np.nonzero(grid.employed)
    frames = []
    for metric, (num, den) in parts.items():
        n, d = num[rep_idx, week_idx], den[rep_idx, week_idx]
        frames.append(pd.DataFrame({
            "rep_id": grid.rep_ids[rep_idx], "week": grid.mondays[week_idx], "metric": metric,
            "numerator": n, "denominator": d,
        }))
    panel = pd.concat(frames, ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        panel["value"] = np.where(panel["denominator"] > 0, panel["numerator"] / panel["denominator"], np.nan)
    panel["rep_id"] = panel["rep_id"].astype(object)
    panel["metric"] = panel["metric"].astype(object)
    return panel


# -- windows ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataWindow:
    """A window of whole weeks inside the data.

    Attributes
    ----------
    as_of
        The window's as-of day: the one asked for, or the last day with data when that comes first.
    start, end
        First and last Monday.
    last_day
        The last day the window holds: its last Sunday, or the last day with data when that comes first.
    weeks
        The weeks it spans, once clipped to the data (what the rates are per).
    """

    as_of: pd.Timestamp
    start: pd.Timestamp
    end: pd.Timestamp
    last_day: pd.Timestamp
    weeks: int


def data_window(data: SalesData, as_of: str | pd.Timestamp | None = None, weeks: int = 12, *,
                since: str | pd.Timestamp | None = None) -> DataWindow:
    """The ``weeks`` weeks ending with the week of ``as_of`` (or starting with the week of ``since``),
    clipped to the data: a window never runs past the last day with data, nor before the first.

    Parameters
    ----------
    data
        Validated sales data.
    as_of
        The last day (default: the last day with data; a later day is moved back to it).
    weeks
        Window length in whole weeks (at least 1); ignored when ``since`` is given.
    since
        The window starts with the week containing this day instead.

    Raises
    ------
    DataError
        ``weeks`` below 1, or a window with no data in it (one line giving the data's first and last day).
    """
    if weeks is None or int(weeks) < 1:
        raise DataError(f"the window needs at least 1 week (weeks = {weeks}); use --weeks 1 or more")
    first, last = (stamp.normalize() for stamp in data.period)
    span = f"the data runs from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    day = pd.Timestamp(read_date(as_of, "as_of")).normalize() if as_of is not None else last    # ISO only
    back = pd.Timedelta(weeks=int(weeks) - 1)
    start = week_start(pd.Timestamp(read_date(since, "since"))) if since is not None else week_start(day) - back
    if day < first:
        raise DataError(f"no data in the window ending {day:%Y-%m-%d}: {span}; choose an as-of date in between")
    if start > last:
        window = (f"from the week of {start:%Y-%m-%d} on" if since is not None else
                  f"in the window {start:%Y-%m-%d} to {day:%Y-%m-%d}")
        raise DataError(f"no data {window}: {span}; choose {'a since' if since is not None else 'an as-of'} date "
                        "in between")
    day = min(day, last)
    end = week_start(day)
    if since is None:
        start = end - back
    if start > end:
        raise DataError(f"the window starts {start:%Y-%m-%d}, after its last day {day:%Y-%m-%d}; choose a "
                        "--since date before the as-of date")
    start = max(start, week_start(first))
    return DataWindow(as_of=day, start=start, end=end, last_day=min(end + pd.Timedelta(days=6), last),
                      weeks=int((end - start).days // 7 + 1))


def window_metrics(panel: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, *,
                   win_rate_basis: str = "closed") -> pd.DataFrame:
    """Pool each rep's weekly numerators and denominators over the weeks ``start``..``end`` (Mondays).

    Parameters
    ----------
    panel
        From :func:`weekly_panel`.
    start, end
        First and last week (their Mondays; other dates are moved to their week's Monday).
    win_rate_basis
        ``"closed"`` (won ÷ won+lost) or ``"all"`` (won ÷ opportunities created).

    Returns
    -------
    pandas.DataFrame
        ``rep_id, metric, numerator, denominator, value, weeks`` — one row per rep and metric.
        Snapshot metrics take the window's last week; ``pipeline_velocity`` is derived.
    """
    if win_rate_basis not in WIN_RATE_BASES:
        raise DataError(f"win_rate_basis '{win_rate_basis}' is not known (use {' or '.join(WIN_RATE_BASES)})")
    start, end = (week_start(pd.Timestamp(read_date(day, name))) for day, name in ((start, "start"), (end, "end")))
    columns, reps, weeks = _pooled(panel, start, end)
    if "touch_gap_closed" in columns:
        (closed_n, closed_d), (open_n, open_d) = columns["touch_gap_closed"], columns["touch_gap_open"]
        columns["avg_days_between_touches"] = (closed_n + open_n, closed_d + open_d)
    if win_rate_basis == "all" and "win_rate_all" in columns:     # a panel cut to other metrics has none
        columns["win_rate"] = columns["win_rate_all"]
    values = {}
    for name in (m for m in METRICS if m in columns):
        n, d = columns[name]
        with np.errstate(divide="ignore", invalid="ignore"):
            values[name] = (n, d, np.where(d > 0, n / d, np.nan))
    needed = ("opps_created_per_week", "win_rate", "avg_deal_size", "sales_cycle_days")
    if len(reps) and all(m in values for m in needed):
        opps, rate, deal, cycle = (values[m][2] for m in needed)
        with np.errstate(divide="ignore", invalid="ignore"):
            velocity = opps * rate * deal / np.where(cycle > 0, cycle, np.nan)
        values["pipeline_velocity"] = (np.full(len(reps), np.nan), np.full(len(reps), np.nan), velocity)
    order = sorted(values)                                 # rows by rep, then metric name

    def column(part: int) -> np.ndarray:
        return np.stack([values[m][part] for m in order], axis=1).ravel() if order else np.zeros(0)
    names = np.array(order, dtype=object)
    return pd.DataFrame({"rep_id": np.repeat(reps, len(order)), "metric": np.tile(names, len(reps)),
                         "numerator": column(0), "denominator": column(1), "value": column(2),
                         "weeks": np.repeat(weeks, len(order))})


def _pooled(panel: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
            ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Each metric's pooled numerators and denominators over the weeks ``start``..``end`` (``{metric: (num,
    den)}``, one value per rep, NaN where a rep has no row of it), the reps (sorted) and each rep's weeks.

    Flows are summed over the weeks; a snapshot takes the rep's last week in the window. On integer rep × metric
    codes: about 3x faster than pandas' group/unstack/stack (``tests/test_metrics.py`` keeps that version as the
    reference this must equal), and a review pools several windows.
    """
    week = panel["week"].to_numpy(dtype="datetime64[ns]")
    inside = (week >= start.to_datetime64()) & (week <= end.to_datetime64())
    rep, reps = pd.factorize(panel["rep_id"].to_numpy(dtype=object)[inside], sort=True)
    metric, names = pd.factorize(panel["metric"].to_numpy(dtype=object)[inside], sort=True)
    week = week[inside].astype("int64")
    numerator = panel["numerator"].to_numpy(dtype=float)[inside]
    denominator = panel["denominator"].to_numpy(dtype=float)[inside]
    n_reps, size = len(reps), len(reps) * len(names)
    weeks = np.bincount(np.unique(np.stack([rep, week]), axis=1)[0], minlength=n_reps).astype(np.int64)
    last = np.full(n_reps, np.iinfo(np.int64).min)
    np.maximum.at(last, rep, week)
    snapshot = np.isin(np.asarray(names, dtype=object), SNAPSHOT_ROWS)[metric]
    cell, flow = rep * len(names) + metric, ~snapshot
    present = np.bincount(cell[flow], minlength=size) > 0
    sums = [np.bincount(cell[flow], weights=np.nan_to_num(x[flow]), minlength=size).astype(float)
            for x in (numerator, denominator)]
    snap = snapshot & (week == last[rep])
    present[cell[snap]] = True
    for total, x in zip(sums, (numerator, denominator)):
        total[cell[snap]] = x[snap]
        total[~present] = np.nan
    wide_n, wide_d = (total.reshape(n_reps, len(names)).T for total in sums)
    return dict(zip(names, zip(wide_n, wide_d))), np.asarray(reps, dtype=object), weeks


def window_moments(panel: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Each rep's per-deal log moments over the weeks ``start``..``end`` for the per-deal means (deal size,
    sales cycle): ``rep_id, metric, n, mean_log, ss_log`` (the sum of squared deviations from the rep's mean).

    The scan's noise model for such a mean (:mod:`pipnb.stats.funnel`, kind ``"logmean"``) compares the rep's
    mean ``log(1 + x)`` with the peers', the noise of ``n`` deals being the peers' within-rep variance over ``n``.
    """
    start, end = week_start(pd.Timestamp(start)), week_start(pd.Timestamp(end))
    names = [m for m, spec in METRICS.items() if spec.noise_model == "logmean"]
    parts = [f"{m}_log" for m in names] + [f"{m}_log2" for m in names]
    rows = panel[(panel["week"] >= start) & (panel["week"] <= end) & panel["metric"].isin(parts)]
    wide = rows.pivot_table(index="rep_id", columns="metric", values=["numerator", "denominator"], aggfunc="sum")
    frames = []
    for metric in names:
        if ("numerator", f"{metric}_log") not in wide:
            continue
        n = wide[("denominator", f"{metric}_log")].to_numpy(float)
        s1 = wide[("numerator", f"{metric}_log")].to_numpy(float)
        s2 = wide[("numerator", f"{metric}_log2")].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s1 / n, np.nan)
            ss = np.where(n > 0, np.maximum(s2 - s1 * mean, 0.0), np.nan)
        frames.append(pd.DataFrame({"rep_id": wide.index.to_numpy(object), "metric": metric, "n": n,
                                    "mean_log": mean, "ss_log": ss}))
    columns = ["rep_id", "metric", "n", "mean_log", "ss_log"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


@accepts_path
def touch_gaps(data: SalesData, as_of: str | pd.Timestamp, *, rep_ids: list[str] | None = None) -> pd.DataFrame:
    """Every gap between consecutive touches on an opportunity up to ``as_of``, and each open gap.

    Parameters
    ----------
    data
        Validated sales data (needs activities).
    as_of
        Evaluation day (included); later touches are ignored.
    rep_ids
        Limit to these opportunity owners.

    Returns
    -------
    pandas.DataFrame
        ``rep_id, opp_id, ended_at, days, censored``: a closed gap ends with a touch (``censored`` False);
        an opportunity still open at the end of ``as_of`` contributes the running gap since its last
        touch (or its creation), right-censored (``censored`` True, ``ended_at`` = the evaluation instant).
    """
    columns = ["rep_id", "opp_id", "ended_at", "days", "censored"]
    if data.activities is None or "opp_id" not in data.activities:
        return pd.DataFrame(columns=columns)
    end = _as_of_instant(as_of)
    opps = data.opportunities
    if rep_ids is not None:
        opps = opps[opps["rep_id"].isin(rep_ids)]
    acts = data.activities
    touches = acts.loc[acts["opp_id"].isin(opps["opp_id"]) & (acts["occurred_at"] < end), ["opp_id", "occurred_at"]]
    touches = touches.sort_values(["opp_id", "occurred_at"], kind="stable")
    previous = touches.groupby("opp_id")["occurred_at"].shift()
    closed = touches.assign(days=(touches["occurred_at"] - previous).dt.total_seconds() / 86_400)
    closed = closed.dropna(subset=["days"]).rename(columns={"occurred_at": "ended_at"}).assign(censored=False)
    open_now = opps[(opps["created_at"].isna() | (opps["created_at"] < end))
                    & (opps["closed_at"].isna() | (opps["closed_at"] >= end))]
    last = touches.groupby("opp_id")["occurred_at"].max()
    since = open_now["opp_id"].map(last).fillna(open_now["created_at"])
    running = pd.DataFrame({"opp_id": open_now["opp_id"], "ended_at": end,
                            "days": (end - since).dt.total_seconds() / 86_400, "censored": True}).dropna(
        subset=["days"])
    gaps = pd.concat([closed[["opp_id", "ended_at", "days", "censored"]], running], ignore_index=True)
    gaps["rep_id"] = gaps["opp_id"].map(opps.set_index("opp_id")["rep_id"])
    return gaps[columns].reset_index(drop=True)
