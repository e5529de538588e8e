"""The built-in demo team: realistic, clearly fake CRM data that carries the article's cases.

:func:`demo_data` returns a :class:`~pipnb.data.SalesData` for a sales org of three or more teams, with
the canonical tables ``reps``, ``opportunities`` and ``activities``. Everything is drawn for all reps at
once with numpy from one seeded generator, so the same seed always gives the same frames, and
``demo_data(reps=500, weeks=104)`` (about 3.4 million activities) takes about two seconds.

How the data comes about (a causal funnel)
------------------------------------------
- **Roster.** Teams of eight (a manager and a segment each: SMB, Mid-market, Enterprise in turn; extra
  reps join the third and later teams). The last rep of every team is a new hire, hired 6 to 20 weeks
  before the end, with no activity before the hire date and volumes ramping up linearly over 13 weeks.
- **Opportunities.** Created at about 3 a week per rep. About 78% get a first meeting (about 74% within
  two weeks); about 70% of those get a second; each later meeting follows with probability 1/2. The
  chance of winning grows steeply with the number of meetings (1% with none, 7% with one, 50% with two,
  65%, 75%), times the rep's closing skill and a penalty for slow follow-up, so about 35% of closed deals
  are won. Won deals close a few weeks after the last meeting, lost ones later, unmet ones after months;
  many closes are pushed into the last two weeks of their quarter. Deal sizes are lognormal around a
  segment median ($12k, $40k, $140k); cycles are longer in larger segments. Opportunities created before
  the first week are not part of the data, so the pipeline fills up over its first three months.
- **Activities.** Every opportunity gets an intro email when created, a follow-up email after most
  meetings, and cadence touches (emails, a few calls) about weekly while it is open, so that counting
  meetings an open opportunity is touched every 5 to 6 days. Reps also send prospecting emails and calls
  that name an account but no opportunity (about 45% of the emails, a few of them at weekends). A typical
  rep sends 60 to 80 emails and makes about 5 calls a week.
- **Seasonality.** Activity and new opportunities dip in the Christmas / New Year weeks and in mid-August;
  most meetings and closes due in the Christmas break move to early January.

The cases (:data:`DEMO_CASES`)
------------------------------
Each case is one established rep with five or more established teammates. Its events are drawn by
systematic sampling (counts in any window stay within about one of their expected value), so the case
shows whatever the seed; other reps are Poisson / Bernoulli noisy around rep-specific rates.

- ``article``: win rate on all opportunities about 6%, follow-up meeting ratio about 50%, opportunities
  and first meetings like peers, emails about half of peers (the article's example).
- ``volume``: about 40% of peers' opportunities, so of first meetings; its ratios are normal.
- ``stale``: busy prospecting (emails like peers) but lets opportunities go stale: about 22 days between
  touches, half its open opportunities untouched for more than 14 days, so fewer wins.
- ``responder`` / ``non_responder``: weak (emails about half of peers, follow-up ratio about 45%) from
  30 weeks before :func:`demo_plan_start` (the diagnosis window and the baseline before it); after it
  the responder's emails rise about 1.7 times and the follow-up ratio to about 70%, while the
  non-responder stays as before.

Example
-------
>>> from pipnb.demo import DEMO_CASES, demo_data
>>> data = demo_data()
>>> data.rep(DEMO_CASES["article"])["team"]
'East'
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipnb.data import SalesData
from pipnb.errors import PipnbError
from pipnb.schema import OPTIONAL, REQUIRED

__all__ = ["DEMO_CASES", "DEMO_END", "demo_data", "demo_plan_start"]

DEMO_END = "2026-06-28"
"""Default last day of the demo data (a Sunday)."""

DEMO_CASES: dict[str, str] = {
    "responder": "R03",
    "article": "R07",
    "volume": "R12",
    "non_responder": "R14",
    "stale": "R20",
}
"""Case → rep id of the reps that show the article's situations (the same for every seed and size)."""

PLAN_WEEKS = 12          # the responder's and non-responder's plan covers the last 12 weeks
WEAK_WEEKS = 30  # weak long before the plan: the diagnosis window and the baseline before it
MIN_REPS, MAX_REPS, MIN_WEEKS = 24, 1200, 40
TEAM_SIZE = 8
RAMP_WEEKS = 13
EXTRA_WEEKS = 16         # calendar kept beyond the end, for closes and quarter ends after it
WORK_MINUTES = 600       # activity happens on weekdays, 08:00-18:00
ACCOUNT_BOOK, OPP_ACCOUNTS = 200, 40   # accounts per rep; the first 40 are where opportunities come from

# -- the typical rep (peers vary around these) ------------------------------------------------------
OPPS_PER_WEEK = 3.0
PROSPECT_EMAILS_PER_WEEK = 31.0
PROSPECT_CALLS_PER_WEEK = 2.5
TOUCH_GAP_DAYS = 7.5     # calendar days between cadence touches on an open opportunity
CALL_SHARE = 0.08        # share of cadence touches that are calls
FOLLOWUP_EMAIL = 0.85    # chance of an email right after a meeting (times effort)
WEEKEND_SHARE = 0.15     # share of Friday prospecting emails sent on Saturday or Sunday instead
PEER_SPREAD = 0.08       # sd of the log of each rep's effort, opportunity, prospecting and touch rates
P_FIRST, P_SECOND, P_MORE = 0.78, 0.70, 0.50
MAX_MEETINGS = 7
WIN_BY_MEETINGS = np.array([0.01, 0.07, 0.50, 0.65, 0.75])   # 0, 1, 2, 3, 4+ meetings
# (minimum, mean of a gamma(2) part) in business days, before the segment's cycle factor
DELAYS = {"first": (0.3, 4.0), "next": (1.0, 13.0), "won": (1.0, 18.0), "lost": (2.0, 30.0),
          "unmet": (10.0, 70.0)}

# the cases: trait multipliers (effort, opps, prospect, touch, follow_up, skill, linger) or chances
_CASE_TRAITS = {
    "article": {"effort": 0.5, "p_second": 0.5, "p_more": 0.3, "skill": 0.33},
    "volume": {"opps": 0.4, "prospect": 0.6},
    "stale": {"touch": 0.15, "follow_up": 0.3, "prospect": 2.0, "linger": 1.6},
}
_WEAK = {"effort": 0.5, "p_second": 0.45, "p_more": 0.35}       # responder and non-responder
_IMPROVED = {"effort": 0.85, "p_second": 0.75, "p_more": 0.5}   # the responder, once the plan runs

_TEAMS = ("East", "West", "Central", "North", "South", "Northeast", "Southeast", "Northwest",
          "Southwest", "Midwest", "Mountain", "Pacific")
_SEGMENTS = ("SMB", "Mid-market", "Enterprise")
_DEAL_MEDIAN = np.array([12_000.0, 40_000.0, 140_000.0])   # by segment
_CYCLE = np.array([0.8, 1.0, 1.3])                          # by segment
_FIRST_NAMES = (
    "Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Skyler",
    "Priya", "Mateo", "Aisha", "Kenji", "Sofia", "Liam", "Noor", "Diego", "Mei", "Omar",
    "Hannah", "Lucas", "Zara", "Ethan", "Amara", "Felix", "Ines", "Raj", "Chloe", "Tariq",
    "Nina", "Samuel", "Yuki", "Elena", "Kofi", "Maya", "Oscar", "Leila", "Ben", "Freya",
)
_LAST_NAMES = (
    "Ashvale", "Bramblecot", "Copperly", "Dawnridge", "Elderwick", "Fenwright", "Glimmerton", "Hollowell",
    "Inkwell", "Juniperly", "Kestrelton", "Larkspur", "Mossgrove", "Nettleby", "Oakhollow", "Pebbleford",
    "Quillon", "Rookwood", "Sablethorn", "Thistlewaite", "Umberfield", "Vantrell", "Willowby",
    "Yarrowdale", "Zephyrine", "Brightmere", "Cinderby", "Duskwater", "Emberly", "Foxworth", "Greyling",
    "Hazelcombe", "Ivyridge", "Jasperfield", "Kettleby", "Lanternby", "Marrowick", "Northwhistle",
    "Ottersley", "Puddlecott",
)


# -- public API ---------------------------------------------------------------------------------------
def demo_data(seed: int = 0, reps: int = 24, weeks: int = 56,
              end: str | pd.Timestamp = DEMO_END) -> SalesData:
    """Generate the demo team's CRM data.

    Parameters
    ----------
    seed
        Seed of the random generator; the same seed always gives identical frames.
    reps
        Number of reps, 24 (three teams of eight) to 1200.
    weeks
        Number of whole Monday-to-Sunday weeks covered, at least 40 (the pipeline fills up over the
        first 16, then come the 12 weeks before the plan and the 12 of the plan).
    end
        Last day of the data, a Sunday (``YYYY-MM-DD``).

    Returns
    -------
    SalesData
        ``reps`` (rep_id, rep_name, team, manager, segment, hire_date), ``opportunities`` (opp_id,
        rep_id, created_at, outcome, closed_at, amount, account_id) and ``activities`` (activity_id,
        rep_id, kind, occurred_at, opp_id, account_id), columns in the order and with the types that
        loading them back from ``data.write(folder)`` gives (so the fingerprint is the same): ids and
        text are pandas ``str`` columns (``opp_id`` is NaN on prospecting), timestamps
        ``datetime64[ns]`` naive UTC (``closed_at`` NaT while open), ``amount`` float dollars.

    Raises
    ------
    PipnbError
        ``end`` is not a Sunday, or ``reps`` / ``weeks`` are out of range.

    Example
    -------
    >>> data = demo_data(seed=1, reps=30)
    >>> len(data.reps), sorted(data.reps["team"].unique())
    (30, ['Central', 'East', 'West'])
    """
    _check_size(reps, weeks)
    rng = np.random.default_rng(seed)
    cal = _calendar(_sunday(end), weeks)
    roster = _roster(reps, weeks, rng)
    rates = _rates(roster, weeks, rng)
    opps = _opportunities(rates, cal, rng)
    acts = _activities(opps, rates, cal, rng)
    return _sales_data(roster, opps, acts, cal, seed)


def demo_plan_start(end: str | pd.Timestamp = DEMO_END) -> pd.Timestamp:
    """The Monday that starts the last 12 weeks: when the responder's and non-responder's plan began.

    Parameters
    ----------
    end
        Last day of the demo data, a Sunday.

    Returns
    -------
    pandas.Timestamp
        Midnight of that Monday.

    Example
    -------
    >>> demo_plan_start("2026-06-28")
    Timestamp('2026-04-06 00:00:00')
    """
    return _sunday(end) + pd.Timedelta(days=1) - pd.Timedelta(weeks=PLAN_WEEKS)


# -- arguments -----------------------------------------------------------------------------------------
def _sunday(end: str | pd.Timestamp) -> pd.Timestamp:
    """``end`` as midnight of a Sunday, or a clear error."""
    try:
        day = pd.Timestamp(end).normalize()
    except (TypeError, ValueError):
        raise PipnbError(f"end '{end}' is not a date; use YYYY-MM-DD, e.g. {DEMO_END}") from None
    if day.weekday() != 6:
        raise PipnbError(f"end '{end}' is a {day:%A}; the demo's weeks run Monday to Sunday, so use a "
                         f"Sunday such as {day + pd.Timedelta(days=6 - day.weekday()):%Y-%m-%d}")
    return day


def _check_size(reps: int, weeks: int) -> None:
    if not MIN_REPS <= reps <= MAX_REPS:
        raise PipnbError(f"reps={reps} is out of range; the demo needs {MIN_REPS} to {MAX_REPS} reps "
                         "(three teams of eight carry its cases)")
    if weeks < MIN_WEEKS:
        raise PipnbError(f"weeks={weeks} is too short; the demo needs at least {MIN_WEEKS} weeks "
                         f"(a baseline and a {PLAN_WEEKS}-week plan)")


# -- calendar ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Calendar:
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


def _calendar(end: pd.Timestamp, weeks: int) -> _Calendar:
    start = end - pd.Timedelta(days=7 * weeks - 1)
    bday = np.arange(5 * (weeks + EXTRA_WEEKS))
    dates = pd.DatetimeIndex(start + pd.to_timedelta(bday // 5 * 7 + bday % 5, unit="D"))
    factor = _holiday_factor(dates)
    open_day = np.where(factor >= 0.5, bday, bday.size - 1)
    next_open = np.minimum.accumulate(open_day[::-1])[::-1]
    quarter = dates.year * 4 + dates.quarter
    close = pd.Series(np.where(factor >= 0.5, bday, -1)).groupby(quarter).transform("max").to_numpy()
    return _Calendar(start, weeks, factor, next_open, close)


def _holiday_factor(dates: pd.DatetimeIndex) -> np.ndarray:
    """Activity level per day: low from Christmas Eve to New Year, lower in mid-August."""
    month, dom = dates.month.to_numpy(), dates.day.to_numpy()
    factor = np.ones(len(dates))
    factor[(month == 8) & (dom >= 10) & (dom <= 21)] = 0.6
    factor[((month == 12) & (dom >= 22)) | ((month == 1) & (dom <= 2))] = 0.6
    factor[((month == 12) & (dom >= 24)) | ((month == 1) & (dom == 1))] = 0.12
    factor[((month == 12) & (dom == 25)) | ((month == 1) & (dom == 1))] = 0.02
    return factor


# -- roster --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Roster:
    """The reps table (without ``hire_date``) and, per rep, team and segment index, hire week (weeks
    since the first Monday, negative before it) and whether the rep is a ramping new hire."""

    frame: pd.DataFrame
    team: np.ndarray
    segment: np.ndarray
    hire_week: np.ndarray
    ramping: np.ndarray


def _team_sizes(n_reps: int) -> np.ndarray:
    """Eight per team; extra reps join the third and later teams, so R01-R24 keep their teams."""
    n_teams = max(3, n_reps // TEAM_SIZE)
    sizes = np.full(n_teams, TEAM_SIZE)
    receivers = np.arange(2, n_teams)
    np.add.at(sizes, receivers[np.arange(n_reps - sizes.sum()) % receivers.size], 1)
    return sizes


def _team_names(n_teams: int) -> list[str]:
    return [_TEAMS[k % len(_TEAMS)] + (f" {k // len(_TEAMS) + 1}" if k >= len(_TEAMS) else "")
            for k in range(n_teams)]


def _roster(n_reps: int, weeks: int, rng: np.random.Generator) -> _Roster:
    sizes = _team_sizes(n_reps)
    team = np.repeat(np.arange(sizes.size), sizes)
    position = np.arange(n_reps) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ramping = position == sizes[team] - 1
    hire_week = np.where(ramping, rng.integers(weeks - 20, weeks - 5, n_reps),
                         -rng.integers(26, 8 * 52, n_reps))
    pick = rng.choice(len(_FIRST_NAMES) * len(_LAST_NAMES), sizes.size + n_reps, replace=False)
    names = np.array([f"{_FIRST_NAMES[i // len(_LAST_NAMES)]} {_LAST_NAMES[i % len(_LAST_NAMES)]}"
                      for i in pick], dtype=object)
    segment = team % len(_SEGMENTS)
    frame = pd.DataFrame({
        "rep_id": _text([f"R{i + 1:02d}" for i in range(n_reps)]),
        "rep_name": _text(names[sizes.size:]),
        "team": _text(np.array(_team_names(sizes.size), dtype=object)[team]),
        "manager": _text(names[:sizes.size][team]),
        "segment": _text(np.array(_SEGMENTS, dtype=object)[segment]),
    })
    return _Roster(frame, team, segment, hire_week, ramping)


# -- what drives each rep ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rates:
    """Per rep ``(n,)`` or per rep and week ``(n, weeks + EXTRA_WEEKS)``.

    Attributes
    ----------
    opps, prospect_emails, prospect_calls
        Expected counts per week (ramp included).
    touch
        Cadence touches per business day on each open opportunity.
    effort
        Multiplier of emails (prospecting, cadence and after meetings).
    follow_up
        Multiplier of the chance of an email right after a meeting.
    p_first, p_second, p_more
        Chance of a first meeting; of a second (by the week of the first); of each later one.
    skill, cycle, linger
        Win multiplier; delay multiplier (segment); extra delay before a lost opportunity is closed.
    deal_mu
        Log of the median deal size.
    smooth
        Case reps, drawn by systematic sampling.
    """

    opps: np.ndarray
    prospect_emails: np.ndarray
    prospect_calls: np.ndarray
    touch: np.ndarray
    effort: np.ndarray
    follow_up: np.ndarray
    p_first: np.ndarray
    p_second: np.ndarray
    p_more: np.ndarray
    skill: np.ndarray
    cycle: np.ndarray
    linger: np.ndarray
    deal_mu: np.ndarray
    smooth: np.ndarray


def _rates(roster: _Roster, weeks: int, rng: np.random.Generator) -> _Rates:
    traits = _peer_traits(roster, weeks, rng)
    _set_cases(traits, roster, weeks)
    week = np.arange(weeks + EXTRA_WEEKS)
    ramp = np.clip((week[None, :] - roster.hire_week[:, None] + 0.5) / RAMP_WEEKS, 0.0, 1.0)
    effort, prospect = traits["effort"], traits["prospect"][:, None]
    return _Rates(
        opps=OPPS_PER_WEEK * traits["opps"][:, None] * ramp,
        prospect_emails=PROSPECT_EMAILS_PER_WEEK * prospect * effort * ramp,
        prospect_calls=PROSPECT_CALLS_PER_WEEK * prospect * traits["calls"][:, None] * effort * ramp,
        touch=7.0 / 5.0 / TOUCH_GAP_DAYS * traits["touch"][:, None] * effort,
        effort=effort,
        follow_up=traits["follow_up"],
        p_first=traits["p_first"],
        p_second=traits["p_second"] * (0.8 + 0.2 * ramp),
        p_more=traits["p_more"],
        skill=traits["skill"],
        cycle=traits["cycle"],
        linger=traits["linger"],
        deal_mu=traits["deal_mu"],
        smooth=traits["smooth"],
    )


def _peer_traits(roster: _Roster, weeks: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rep-to-rep variation around the typical rep; busier reps also open more opportunities."""
    n, shape = roster.team.size, (roster.team.size, weeks + EXTRA_WEEKS)
    effort = np.exp(rng.normal(0.0, PEER_SPREAD, n))
    return {
        "effort": np.broadcast_to(effort[:, None], shape).copy(),
        "opps": effort ** 0.7 * np.exp(rng.normal(0.0, PEER_SPREAD, n)),
        "prospect": np.exp(rng.normal(0.0, PEER_SPREAD, n)),
        "calls": np.exp(rng.normal(0.0, 0.25, n)),
        "touch": np.exp(rng.normal(0.0, PEER_SPREAD, n)),
        "follow_up": np.ones(n),
        "p_first": np.clip(rng.normal(P_FIRST, 0.04, n), 0.6, 0.92),
        "p_second": np.broadcast_to(np.clip(rng.normal(P_SECOND, 0.05, n), 0.55, 0.85)[:, None],
                                    shape).copy(),
        "p_more": np.broadcast_to(np.clip(rng.normal(P_MORE, 0.06, n), 0.3, 0.7)[:, None], shape).copy(),
        "skill": np.exp(rng.normal(0.0, 0.12, n)),
        "cycle": _CYCLE[roster.segment] * np.exp(rng.normal(0.0, 0.08, n)),
        "linger": np.ones(n),
        "deal_mu": np.log(_DEAL_MEDIAN[roster.segment]) + rng.normal(0.0, 0.15, n),
        "smooth": np.zeros(n, dtype=bool),
    }


def _set_cases(traits: dict[str, np.ndarray], roster: _Roster, weeks: int) -> None:
    """Give the case reps the typical rep's traits, then their case (in place; five rows)."""
    for case, rep_id in DEMO_CASES.items():
        i = int(rep_id[1:]) - 1
        _make_typical(traits, i, roster.segment[i])
        for key, value in _CASE_TRAITS.get(case, {}).items():
            traits[key][i] = value
        if case in ("responder", "non_responder"):
            _plan_story(traits, i, weeks, improves=case == "responder")


def _make_typical(traits: dict[str, np.ndarray], i: int, segment: int) -> None:
    for key in ("effort", "opps", "prospect", "calls", "touch", "follow_up", "skill", "linger"):
        traits[key][i] = 1.0
    traits["p_first"][i], traits["p_second"][i], traits["p_more"][i] = P_FIRST, P_SECOND, P_MORE
    traits["cycle"][i], traits["deal_mu"][i] = _CYCLE[segment], np.log(_DEAL_MEDIAN[segment])
    traits["smooth"][i] = True


def _plan_story(traits: dict[str, np.ndarray], i: int, weeks: int, *, improves: bool) -> None:
    """Weak from ``WEAK_WEEKS`` before the plan; if ``improves``, better within two weeks of its start."""
    plan = weeks - PLAN_WEEKS
    week = np.arange(traits["effort"].shape[1])
    lift = np.clip((week - plan + 1) / 2, 0.0, 1.0) if improves else np.zeros(week.size)
    weak = week >= plan - WEAK_WEEKS
    for key, low in _WEAK.items():
        traits[key][i, weak] = (low + (_IMPROVED[key] - low) * lift)[weak]


# -- random draws --------------------------------------------------------------------------------------
def _systematic(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts per slot whose running total stays within one of the running expected total."""
    level = np.floor(rng.random() + np.concatenate(([0.0], np.cumsum(p))))
    return np.diff(level).astype(np.int64)


def _counts(rate: np.ndarray, smooth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts per rep × week; systematic for the case reps."""
    out = rng.poisson(rate)
    for r in np.flatnonzero(smooth):
        out[r] = _systematic(rate[r], rng)
    return out


def _bernoulli(p: np.ndarray, rep: np.ndarray, order: np.ndarray, smooth: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """Independent draws; for the case reps, systematic in the time ``order`` of their events."""
    hit = rng.random(p.size) < p
    for r in np.flatnonzero(smooth):
        rows = np.flatnonzero(rep == r)
        rows = rows[np.argsort(order[rows], kind="stable")]
        hit[rows] = _systematic(p[rows], rng) > 0
    return hit


def _gamma(mean: float, size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.gamma(2.0, mean / 2.0, size)


def _delay(kind: str, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, mean = DELAYS[kind]
    return (low + _gamma(mean, scale.size, rng)) * scale


def _weekly_events(rate: np.ndarray, smooth: np.ndarray, cal: _Calendar,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Events at ``rate`` per rep-week over the data's weeks, thinned on holidays: (rep, time)."""
    counts = _counts(rate[:, :cal.weeks], smooth, rng)
    slot = np.repeat(np.arange(counts.size), counts.ravel())
    rep, week = np.divmod(slot, cal.weeks)
    x = week * 5.0 + rng.random(slot.size) * 5.0
    keep = rng.random(slot.size) < cal.factor[cal.day(x)]
    return rep[keep], x[keep]


# -- opportunities -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Opps:
    """One row per opportunity; ``meetings[i, k]`` is the time of meeting k+1 (NaN when none)."""

    rep: np.ndarray
    created: np.ndarray
    meetings: np.ndarray
    depth: np.ndarray
    won: np.ndarray
    closed: np.ndarray
    amount: np.ndarray
    account: np.ndarray


def _opportunities(rates: _Rates, cal: _Calendar, rng: np.random.Generator) -> _Opps:
    rep, created = _weekly_events(rates.opps, rates.smooth, cal, rng)
    meetings = _meetings(rep, created, rates, cal, rng)
    depth = np.isfinite(meetings).sum(axis=1)
    won, closed = _closes(rep, created, meetings, depth, rates, cal, rng)
    amount = np.round(np.exp(rates.deal_mu[rep] + rng.normal(0.0, 0.55, rep.size)), -2)
    account = rep * ACCOUNT_BOOK + rng.integers(0, OPP_ACCOUNTS, rep.size)
    return _Opps(rep, created, meetings, depth, won, closed, amount, account)


def _meetings(rep: np.ndarray, created: np.ndarray, rates: _Rates, cal: _Calendar,
              rng: np.random.Generator) -> np.ndarray:
    """Meeting times per opportunity: first, second (a follow-up), and later ones.

    Each meeting's time is drawn before whether it happens, so that the case reps' systematic draws run
    in the order of the meetings themselves.
    """
    scale = rates.cycle[rep]
    meetings = np.full((rep.size, MAX_MEETINGS), np.nan)
    at = cal.skip_holidays(created + _delay("first", scale, rng), rng)
    going = _bernoulli(rates.p_first[rep], rep, at, rates.smooth, rng)
    for level in range(MAX_MEETINGS):
        meetings[going, level] = at[going]
        if level + 1 == MAX_MEETINGS:
            break
        chance = (rates.p_second if level == 0 else rates.p_more)[rep, cal.week(at)]
        at = cal.skip_holidays(at + _delay("next", scale, rng), rng)
        going &= _bernoulli(np.where(going, chance, 0.0), rep, at, rates.smooth, rng)
    return meetings


def _closes(rep: np.ndarray, created: np.ndarray, meetings: np.ndarray, depth: np.ndarray,
            rates: _Rates, cal: _Calendar, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Outcome (won or not) and close time; ``closed >= cal.end_x`` means still open at the end.

    Both possible close times are drawn first; the case reps' systematic draws run in the order of the
    winning close times.
    """
    last = np.where(depth > 0, meetings[np.arange(rep.size), np.maximum(depth - 1, 0)], created)
    gap_days = 7.0 / 5.0 / rates.touch[rep, cal.week(created)]
    slow = np.clip(np.exp(-(gap_days - TOUCH_GAP_DAYS) / 30.0), 0.3, 1.1)
    p_win = np.clip(WIN_BY_MEETINGS[np.minimum(depth, 4)] * rates.skill[rep] * slow, 0.0, 0.95)
    scale, linger = rates.cycle[rep], rates.linger[rep]
    lost_delay = np.where(depth > 0, _delay("lost", scale, rng), _delay("unmet", scale, rng)) * linger
    if_won = _quarter_push(cal.skip_holidays(last + _delay("won", scale, rng), rng), 0.7, cal, rng)
    if_lost = _quarter_push(cal.skip_holidays(last + lost_delay, rng), 0.5, cal, rng)
    won = _bernoulli(p_win, rep, if_won, rates.smooth, rng)
    return won, np.where(won, if_won, if_lost)


def _quarter_push(closed: np.ndarray, share: float, cal: _Calendar, rng: np.random.Generator) -> np.ndarray:
    """Push ``share`` of the closes due within six weeks of their quarter's end into its last two weeks."""
    quarter_close = cal.quarter_close[cal.day(closed)]
    ahead = quarter_close - closed
    push = (ahead >= 0) & (ahead <= 30) & (rng.random(closed.size) < share)
    target = quarter_close + 1.0 - rng.random(closed.size) * 10.0
    return cal.skip_holidays(np.where(push, np.maximum(closed, target), closed), rng)


# -- activities ----------------------------------------------------------------------------------------
EMAIL, CALL, MEETING = 0, 1, 2
_KINDS = pa.array(["email", "call", "meeting"])
_OUTCOMES = pa.array(["open", "won", "lost"])


@dataclass(frozen=True)
class _Acts:
    """One row per activity: rep, time, kind code, opportunity row (-1 for none), account number, and
    calendar days to add to the time (a few prospecting emails are sent from Friday into the weekend)."""

    rep: np.ndarray
    x: np.ndarray
    kind: np.ndarray
    opp: np.ndarray
    account: np.ndarray
    weekend: np.ndarray


def _activities(opps: _Opps, rates: _Rates, cal: _Calendar, rng: np.random.Generator) -> _Acts:
    parts = [_intro_emails(opps, rng), _meeting_activities(opps, rates, cal, rng),
             _cadence_touches(opps, rates, cal, rng), _prospecting(rates, cal, rng)]
    columns = [np.concatenate([getattr(part, f.name) for part in parts]) for f in fields(_Acts)]
    keep = columns[1] < cal.end_x
    return _Acts(*(column[keep] for column in columns))


def _on_opps(opps: _Opps, row: np.ndarray, x: np.ndarray, kind: np.ndarray) -> _Acts:
    return _Acts(opps.rep[row], x, kind, row, opps.account[row], np.zeros(row.size, dtype=np.int64))


def _intro_emails(opps: _Opps, rng: np.random.Generator) -> _Acts:
    """The email that opens each opportunity (it books the first meeting)."""
    row = np.arange(opps.rep.size)
    x = opps.created + rng.random(row.size) * 0.15
    return _on_opps(opps, row, x, np.full(row.size, EMAIL))


def _meeting_activities(opps: _Opps, rates: _Rates, cal: _Calendar, rng: np.random.Generator) -> _Acts:
    """Every meeting, and the email that usually follows it within hours."""
    row, level = np.nonzero(np.isfinite(opps.meetings))
    at = opps.meetings[row, level]
    rep = opps.rep[row]
    chance = FOLLOWUP_EMAIL * rates.effort[rep, cal.week(at)] * rates.follow_up[rep]
    followed = rng.random(row.size) < np.minimum(1.0, chance)
    after = at + 0.02 + rng.random(row.size) * 0.45
    return _on_opps(opps, np.concatenate([row, row[followed]]), np.concatenate([at, after[followed]]),
                    np.repeat([MEETING, EMAIL], [row.size, int(followed.sum())]))


def _cadence_touches(opps: _Opps, rates: _Rates, cal: _Calendar, rng: np.random.Generator) -> _Acts:
    """Emails and calls on each opportunity while it is open: a Poisson process at the rep's top rate,
    thinned by effort and holidays (for the case reps, evenly spread: a stratified sample)."""
    top = rates.touch.max(axis=1)[opps.rep]
    life = np.maximum(np.minimum(opps.closed, cal.end_x) - opps.created, 0.0)
    smooth = rates.smooth[opps.rep]
    n = rng.poisson(top * life)
    n[smooth] = np.floor(top[smooth] * life[smooth] + rng.random(int(smooth.sum()))).astype(n.dtype)
    row = np.repeat(np.arange(opps.rep.size), n)
    rank = np.arange(row.size) - np.repeat(np.cumsum(n) - n, n)
    u = rng.random(row.size)
    x = opps.created[row] + np.where(smooth[row], (rank + u) / np.maximum(n[row], 1), u) * life[row]
    rep = opps.rep[row]
    keep = rng.random(row.size) * top[row] < rates.touch[rep, cal.week(x)] * cal.factor[cal.day(x)]
    kind = np.where(rng.random(row.size) < CALL_SHARE, CALL, EMAIL)
    return _on_opps(opps, row[keep], x[keep], kind[keep])


def _prospecting(rates: _Rates, cal: _Calendar, rng: np.random.Generator) -> _Acts:
    """Emails and calls to accounts without an opportunity."""
    rep_e, x_e = _weekly_events(rates.prospect_emails, rates.smooth, cal, rng)
    rep_c, x_c = _weekly_events(rates.prospect_calls, rates.smooth, cal, rng)
    rep = np.concatenate([rep_e, rep_c])
    account = rep * ACCOUNT_BOOK + rng.integers(OPP_ACCOUNTS, ACCOUNT_BOOK, rep.size)
    kind = np.repeat([EMAIL, CALL], [rep_e.size, rep_c.size])
    x = np.concatenate([x_e, x_c])
    friday = (np.floor(x) % 5 == 4) & (kind == EMAIL)
    weekend = np.where(friday & (rng.random(x.size) < WEEKEND_SHARE), rng.integers(1, 3, x.size), 0)
    return _Acts(rep, x, kind, np.full(rep.size, -1), account, weekend)


# -- frames --------------------------------------------------------------------------------------------
def _text(values: list[str] | np.ndarray) -> pd.Series:
    """A pandas ``str`` column (Arrow-backed, NaN for missing), like the validated tables."""
    return pd.Series(values, dtype="str")


def _pick(table: pa.Array, index: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
    """``table[index]`` as a ``str`` column, with NaN where ``missing``; gathered by Arrow, fast."""
    return table.take(pa.array(index, mask=missing)).to_pandas()


def _ids(prefix: str, count: int, least: int) -> pa.Array:
    """``prefix`` + 1..count zero-padded to at least ``least`` digits."""
    digits = pc.cast(pa.array(np.arange(1, count + 1)), pa.string())
    padded = pc.utf8_lpad(digits, width=max(least, len(str(count))), padding="0")
    return pc.binary_join_element_wise(prefix, padded, "")


def _sales_data(roster: _Roster, opps: _Opps, acts: _Acts, cal: _Calendar, seed: int) -> SalesData:
    hired = cal.start.to_datetime64().astype("datetime64[D]") + (7 * roster.hire_week).astype("m8[D]")
    reps = roster.frame.assign(hire_date=hired.astype("datetime64[ns]"))
    rep_ids = pa.array(reps["rep_id"].tolist())
    order = np.argsort(opps.created, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    opp_ids = _ids("OPP", order.size, 6)
    accounts = _ids("ACC", len(rep_ids) * ACCOUNT_BOOK, 5)
    tables = {"reps": reps,
              "opportunities": _opportunity_frame(opps, order, opp_ids, rep_ids, accounts, cal),
              "activities": _activity_frame(acts, rank, opp_ids, rep_ids, accounts, cal)}
    return SalesData(**{name: frame[list(REQUIRED[name] + OPTIONAL[name])] for name, frame in tables.items()},
                     source=f"pipnb demo (seed={seed}, reps={len(reps)}, weeks={cal.weeks})")


def _opportunity_frame(opps: _Opps, order: np.ndarray, opp_ids: pa.Array, rep_ids: pa.Array,
                       accounts: pa.Array, cal: _Calendar) -> pd.DataFrame:
    is_open = opps.closed[order] >= cal.end_x
    closed_at = cal.stamps(opps.closed[order]).astype("datetime64[ns]")
    closed_at[is_open] = np.datetime64("NaT")
    outcome = np.where(is_open, 0, np.where(opps.won[order], 1, 2))
    return pd.DataFrame({
        "opp_id": opp_ids.to_pandas(),
        "rep_id": _pick(rep_ids, opps.rep[order]),
        "account_id": _pick(accounts, opps.account[order]),
        "created_at": cal.stamps(opps.created[order]).astype("datetime64[ns]"),
        "closed_at": closed_at,
        "outcome": _pick(_OUTCOMES, outcome),
        "amount": opps.amount[order],
    })


def _activity_frame(acts: _Acts, rank: np.ndarray, opp_ids: pa.Array, rep_ids: pa.Array,
                    accounts: pa.Array, cal: _Calendar) -> pd.DataFrame:
    stamps = cal.stamps(acts.x) + acts.weekend.astype("timedelta64[D]")
    order = np.argsort(stamps, kind="stable")
    opp = acts.opp[order]
    return pd.DataFrame({
        "activity_id": _ids("ACT", order.size, 7).to_pandas(),
        "rep_id": _pick(rep_ids, acts.rep[order]),
        "kind": _pick(_KINDS, acts.kind[order]),
        "occurred_at": stamps[order].astype("datetime64[ns]"),
        "opp_id": _pick(opp_ids, rank[np.maximum(opp, 0)], missing=opp < 0),
        "account_id": _pick(accounts, acts.account[order]),
    })
