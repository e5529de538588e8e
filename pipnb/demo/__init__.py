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

Modules
-------
``workdays``       business-day time, holidays and quarter ends
``team``           the roster: teams, segments, fake names, hire weeks
``profiles``       each rep's rates: the typical rep, peers around it, and the cases
``draws``          Poisson / Bernoulli draws for peers, systematic ones for the case reps
``opportunities``  opportunities, their meetings, outcomes and close times
``activities``     emails, calls and meetings on opportunities, and prospecting
``frames``         the drawn arrays as the canonical tables of a ``SalesData``

Example
-------
>>> from pipnb.demo import DEMO_CASES, demo_data
>>> data = demo_data()
>>> data.rep(DEMO_CASES["article"])["team"]
'East'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipnb.data import SalesData
from pipnb.demo.activities import draw_activities
from pipnb.demo.frames import to_sales_data
from pipnb.demo.opportunities import draw_opportunities
from pipnb.demo.profiles import DEMO_CASES, PLAN_WEEKS, draw_rates
from pipnb.demo.team import draw_roster
from pipnb.demo.workdays import make_calendar
from pipnb.errors import PipnbError

__all__ = ["DEMO_CASES", "DEMO_END", "demo_data", "demo_plan_start"]

DEMO_END = "2026-06-28"
"""Default last day of the demo data (a Sunday)."""

MIN_REPS, MAX_REPS, MIN_WEEKS = 24, 1200, 40


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
    cal = make_calendar(_sunday(end), weeks)
    roster = draw_roster(reps, weeks, rng)
    rates = draw_rates(roster, weeks, rng)
    opps = draw_opportunities(rates, cal, rng)
    acts = draw_activities(opps, rates, cal, rng)
    return to_sales_data(roster, opps, acts, cal, seed)


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
