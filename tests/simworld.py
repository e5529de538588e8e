"""An independent world generator and the harness that states pipnb's fairness promise (issue 11).

This module is written from the article and the issue alone: it never imports or imitates
``pipnb/demo/``. It drives pipnb only through its public API (``pn.SalesData``, ``pn.weekly_panel``,
``pn.scorecard``, ``pn.diagnose``, ``pn.draft_plan``, ``pn.review``) and measures how often each decision
is wrong when nothing is wrong, and right when something is. ``tests/test_fairness.py`` (fast, loose bounds)
and ``benchmarks/bench_fairness.py`` (full, Wilson intervals) both use it.

The world
---------
One team of ``n_reps`` = 10 reps over ``n_weeks`` = 52 weeks (week 1 starts Monday ``start``); every rep
was hired years ago, so nobody is ramping (unless ``ramping_share``, below). The plan is diagnosed on the 12
weeks ending with week 40, starts on the Monday of week 41, has checkpoints at plan weeks 3, 6 and 9 and its
final review at plan week 12, the last day of week 52 — pipnb's default policy (``params/policy.yaml``).

Per rep and week, at the peer level (all explicit in :class:`WorldParams`):

==============================  ===========  ================================================================
quantity                        peer level   why it looks like the article's funnel
==============================  ===========  ================================================================
emails per week                 60           "consistent emails between 60-100"; general selling effort,
                                             logged without an opportunity (see *touches*)
opportunities created per week  3            a rep's pipeline intake
first meeting                   2/3 of opps  so about 2 first meetings a week, 1-10 days after creation
follow-up (second) meeting      45%          of opportunities with a first meeting, 1-3 weeks later (the
                                             article's weak rep "only passes 50 percent"; peers ~45-50%)
win                             40% / 5%     40% of opportunities with a second meeting, 5% of the others:
                                             about 15% on all opportunities (the article's problem rep: 6%)
close                           ~5 weeks     after creation without a second meeting, ~3 weeks after it
touches on open opportunities   every ~5 d   calls on the opportunity (gamma gaps, shape 2), plus its meetings
deal size                       $20k median  lognormal, sigma 0.6
==============================  ===========  ================================================================

Touches are logged as calls so that the email driver and the touch-gap driver can be set independently;
``avg_days_between_touches`` comes out at about 4 days (meetings are touches too), well inside the
article's 14-day standard, as for a healthy team. The result at the peer level: ~60 emails, ~3 opportunities,
~2 first meetings and ~0.9 second meetings a week, a follow-up ratio of ~45%, a win rate of ~15% on all
opportunities (~16% on closed ones), ~15 open opportunities per rep.

Noise on top of Poisson/binomial sampling:

* between reps: a gamma multiplier with coefficient of variation ``rep_cv`` = 0.10 on each driver's rate
  (emails, opportunities, first-meeting and follow-up probabilities, touch rate); ``rep_cv=0`` gives the
  *all-equal team* in which no rep differs;
* week to week: a lognormal AR(1) factor per rep on the two count rates (sd 0.10, lag-1 correlation 0.3;
  holidays, workload) and a team-wide weekly factor (sd 0.05; quarter ends, seasons) that peers share.

Scenarios change a rep's *true* rate on one driver with :class:`Change` (a multiplier over a run of weeks,
e.g. 0.6 from week 1, or 1/0.6 from the plan start): ``emails`` and ``opps`` scale the weekly rates,
``first_meetings`` and ``followup`` the probabilities, ``touches`` the touch rate (0.6 means gaps 1/0.6
longer). The focal rep of a scenario sits exactly at the peer level (no between-rep multiplier) apart from
its changes.

Untidy worlds (issue 23)
------------------------
Knobs of :class:`WorldParams` and helpers that make the world less tidy; every default gives the tidy world
above, draw for draw (new randomness comes from its own keyed streams, so a seed's tidy data never moves):

==============================  ==========================================================================
knob                            what it does
==============================  ==========================================================================
``nb_alpha`` (0)                a per rep-week gamma multiplier (mean 1, variance ``nb_alpha``) on each
                                count rate (emails, opportunities), independent of the AR(1) factor: weekly
                                counts are negative binomial, variance ``mu + nb_alpha mu^2``. At 0.5 a
                                week of 60 emails has sd ~43 instead of ~10.
``week_sd``, ``week_rho``       the AR(1) factor above. The "AR(1) rho = 0.5" world uses ``week_rho=0.5``
                                with ``week_sd=0.2``: at sd 0.2 the factor's weekly variance on 60 emails
                                (60^2 x 0.04 = 144) exceeds the Poisson variance (60), so the dependence
                                bites -- a 12-week email total's variance is then ~2.2x what independent
                                weeks would give (at the tidy 0.1 and 0.3 it is ~1.3x).
:func:`team_dip`                every rep's ``drivers`` (emails, opportunities) at ``factor`` (0.6) over
                                plan weeks 7-12: a bad season the whole team shares. Its changes are
                                marked ``team`` so they never choose the focal rep; pass ``focal=``.
``accounts`` (False)            ``account_id`` on every opportunity and activity: each rep has a book of
                                ``accounts_per_rep`` (40) accounts named ``R01-A001``...; opportunities and
                                emails are drawn uniformly from the accounts that are the rep's that week,
                                meetings and calls carry their opportunity's account. False: no column.
:func:`territory_shrink`        the rep's opportunities x0.6 from the diagnosis window's first week (29)
                                on, and their book shrinks to 60% of its accounts from the same week;
                                behaviour (emails, meetings per opportunity, follow-up, win, touches)
                                unchanged. The pseudo-driver ``"book"`` of :class:`Change` carries it.
``ramping_share`` (0)           that share of the team (the last reps; never the focal rep) was hired
                                recently, evenly over ``ramp_hire_weeks`` (weeks 21-40, the 20 weeks ending
                                with the diagnosis), and its count rates ramp from ``ramp_from`` (30%) to
                                100% over ``ramp_weeks`` (26) weeks, with nothing before the hire week.
                                pipnb treats a rep with under 13 weeks' tenure as ramping (policy
                                ``ramp_weeks``: neither judged nor a peer); at the diagnosis about two
                                thirds of them are, the rest are judged while truly still ramping, and
                                during the plan they join the peer group below full speed.
``n_reps``, ``opps_per_week``   small teams (5-8 reps) and very low volume (0.3 opportunities a week) are
                                plain parameters.
==============================  ==========================================================================

Randomness is keyed (``numpy.random.SeedSequence`` spawn keys) by seed, rep, process and *phase* (before
and from the plan start), so two worlds with the same seed share every draw that their changes do not touch:
the pre-plan history is identical between "stays low" and "recovers at the plan start", and the peers are
identical whatever the focal rep does (common random numbers). One world (10 reps x 52 weeks, ~43 000
activities, ~1 600 opportunities) takes under 0.1 s.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

import pipnb as pn

# -- vocabulary --------------------------------------------------------------------------------------
DRIVERS = ("emails", "opps", "first_meetings", "followup", "touches")
DRIVER_METRIC = {
    "emails": "emails_per_week",
    "opps": "opps_created_per_week",
    "first_meetings": "first_meetings_per_week",
    "followup": "followup_meeting_ratio",
    "touches": "avg_days_between_touches",
}
PLAN_METRICS = ("win_rate", "first_meetings_per_week", "followup_meeting_ratio", "emails_per_week",
                "avg_days_between_touches")
RATIO_METRICS = ("win_rate", "followup_meeting_ratio")
COUNT_METRICS = ("first_meetings_per_week", "emails_per_week", "opps_created_per_week")
IMPROVED, WORSE = "improved", "worse"
TOO_EARLY, NO_CLEAR_CHANGE = "too early to tell", "no clear change yet"

DIAGNOSIS_WEEK = 40          # the diagnosis window ends with this week
PLAN_START_WEEK = 41         # the plan starts on this week's Monday
DIAGNOSIS_FIRST_WEEK = DIAGNOSIS_WEEK - 11   # its first week
BOOK = "book"                # the pseudo-driver of a territory change: the share of the rep's accounts
DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class WorldParams:
    """The world's parameters at the peer level (see the module docstring for why these values)."""

    n_reps: int = 10
    n_weeks: int = 52
    start: str = "2024-01-01"               # a Monday: week 1 starts here
    team: str = "Team A"
    emails_per_week: float = 60.0
    opps_per_week: float = 3.0
    first_meeting_prob: float = 2 / 3        # per opportunity
    followup_prob: float = 0.45              # per opportunity with a first meeting
    win_prob_followup: float = 0.40          # opportunities with a second meeting
    win_prob_other: float = 0.05             # the others
    first_meeting_days: float = 4.0          # mean delay creation -> first meeting (at least 1 day)
    followup_days: float = 10.0              # mean delay first -> second meeting (at least 1 day)
    close_after_followup_days: float = 21.0  # mean delay second meeting -> close
    close_without_followup_days: float = 35.0  # mean delay creation -> close without a second meeting
    touch_gap_days: float = 5.0              # mean gap between touches (calls) on an open opportunity
    touch_gap_shape: float = 2.0             # gamma shape of the gaps (1 = exponential)
    rep_cv: float = 0.10                     # between-rep multiplier on every driver (0: all equal)
    week_sd: float = 0.10                    # rep x week lognormal AR(1) factor on count rates
    week_rho: float = 0.3
    team_week_sd: float = 0.05               # team-wide weekly factor
    deal_median: float = 20_000.0
    deal_sigma: float = 0.6
    hired_weeks_before: int = 156
    # -- untidy worlds (issue 23); the defaults give the tidy world above, draw for draw --------------
    nb_alpha: float = 0.0                    # per rep-week gamma multiplier (mean 1, variance nb_alpha) on
    #                                          each count rate: weekly counts negative binomial
    accounts: bool = False                   # account_id on every opportunity and activity
    accounts_per_rep: int = 40               # each rep's book of accounts
    ramping_share: float = 0.0               # share of the team hired recently (never the focal rep)
    ramp_hire_weeks: tuple[int, int] = (21, DIAGNOSIS_WEEK)   # their hire weeks, evenly spread
    ramp_weeks: int = 26                     # a new rep's count rates ramp linearly ...
    ramp_from: float = 0.3                   # ... from this share of the peer level to 100%

    def __post_init__(self):
        if pd.Timestamp(self.start).weekday() != 0:
            raise ValueError(f"start {self.start} must be a Monday")
        if self.nb_alpha < 0:
            raise ValueError("nb_alpha must be >= 0")
        if not 0 <= self.ramping_share < 1:
            raise ValueError("ramping_share must be in [0, 1)")
        if self.accounts_per_rep < 1:
            raise ValueError("accounts_per_rep must be >= 1")


ALL_EQUAL = WorldParams(rep_cv=0.0)


@dataclass(frozen=True)
class Change:
    """Multiply rep ``rep``'s true rate on ``driver`` by ``factor`` over weeks ``first``..``last`` (1-based,
    inclusive; ``last=None``: to the end). ``driver="book"`` scales the share of the rep's accounts that
    are still theirs (a territory change; only visible with ``WorldParams.accounts``). ``team``: part of a
    change every rep shares (:func:`team_dip`), so it never makes its rep the default focal rep."""

    rep: int
    driver: str
    factor: float
    first: int = 1
    last: int | None = None
    team: bool = False

    def __post_init__(self):
        if self.driver not in (*DRIVERS, BOOK):
            raise ValueError(f"driver must be one of {(*DRIVERS, BOOK)}")
        if self.factor <= 0:
            raise ValueError("factor must be positive")


def low_rep(driver: str, *, factor: float = 0.6, after: float | None = None, rep: int = 0,
            plan_start: int = PLAN_START_WEEK) -> list[Change]:
    """A rep at ``factor`` of peers on ``driver``; from the plan start at ``after`` of peers (None: unchanged)."""
    changes = [Change(rep, driver, factor, 1, None if after is None else plan_start - 1)]
    if after is not None:
        changes.append(Change(rep, driver, after, plan_start))
    return changes


def team_dip(factor: float = 0.6, *, first: int = PLAN_START_WEEK + 6, last: int | None = PLAN_START_WEEK + 11,
             drivers: Sequence[str] = ("emails", "opps"), n_reps: int = 10) -> list[Change]:
    """The whole team's ``drivers`` at ``factor`` over weeks ``first``..``last`` (default: plan weeks 7-12,
    a bad season every rep shares). Pass ``focal=`` to :func:`generate` explicitly for a focal rep."""
    return [Change(r, d, factor, first, last, team=True) for r in range(n_reps) for d in drivers]


def territory_shrink(rep: int = 0, *, factor: float = 0.6, first: int = DIAGNOSIS_FIRST_WEEK) -> list[Change]:
    """Rep ``rep``'s territory shrinks from week ``first`` (default: the diagnosis window's first week): their
    book keeps ``factor`` of its accounts and their new opportunities fall to ``factor``; behaviour (emails,
    meetings per opportunity, follow-up, win, touches) is unchanged. The accounts show it when
    ``WorldParams(accounts=True)``: new opportunities and emails come only from the accounts still theirs."""
    return [Change(rep, "opps", factor, first), Change(rep, BOOK, factor, first)]


def ramp_hires(params: WorldParams, focal: int | None = 0) -> dict[int, int]:
    """Rep index -> hire week (1-based) of the recently hired reps: the last ``ramping_share`` of the team
    (the focal rep is never one of them), hired evenly over ``ramp_hire_weeks``."""
    k = int(round(params.ramping_share * params.n_reps))
    candidates = [r for r in range(params.n_reps - 1, -1, -1) if r != focal][:k]
    first, last = params.ramp_hire_weeks
    weeks = np.rint(np.linspace(first, last, k)).astype(int) if k > 1 else np.full(k, last)
    return {r: int(w) for r, w in zip(sorted(candidates), weeks)}


def ramp_multiplier(params: WorldParams, hire_week: int) -> np.ndarray:
    """A new rep's count-rate multiplier per week: 0 before the hire week, then ``ramp_from`` rising linearly
    to 1 over ``ramp_weeks`` weeks."""
    weeks = np.arange(1, params.n_weeks + 1)
    tenure = weeks - hire_week
    share = params.ramp_from + (1 - params.ramp_from) * np.clip(tenure / params.ramp_weeks, 0, 1)
    return np.where(tenure >= 0, share, 0.0)


# -- the world ---------------------------------------------------------------------------------------
@dataclass
class World:
    """One simulated team: the validated-shape tables, the truth behind them and the calendar."""

    seed: int
    params: WorldParams
    changes: tuple[Change, ...]
    focal: int | None
    data: pn.SalesData
    truth: dict[str, np.ndarray]            # driver -> (n_reps, n_weeks) multiplier vs the peer level

    @property
    def rep_ids(self) -> list[str]:
        return rep_ids(self.params.n_reps)

    def rep_id(self, index: int) -> str:
        return self.rep_ids[index]

    def week_start(self, week: int) -> pd.Timestamp:
        """Monday of week ``week`` (1-based)."""
        return pd.Timestamp(self.params.start) + pd.Timedelta(weeks=week - 1)

    def week_end(self, week: int) -> pd.Timestamp:
        """Last day (Sunday) of week ``week``."""
        return self.week_start(week) + pd.Timedelta(days=6)

    @cached_property
    def panel(self) -> pd.DataFrame:
        """pipnb's weekly panel, computed once per world (every weekly row only uses events up to its week)."""
        return pn.weekly_panel(self.data)


def rep_ids(n: int) -> list[str]:
    return [f"R{i + 1:02d}" for i in range(n)]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _gamma_mult(rng: np.random.Generator, cv: float, size) -> np.ndarray:
    if cv <= 0:
        return np.ones(size)
    shape = 1 / cv**2
    return rng.gamma(shape, 1 / shape, size)


def _ar1_lognormal(rng: np.random.Generator, n_reps: int, n_weeks: int, sd: float, rho: float) -> np.ndarray:
    if sd <= 0:
        return np.ones((n_reps, n_weeks))
    eps = rng.standard_normal((n_reps, n_weeks))
    x = np.empty_like(eps)
    x[:, 0] = sd * eps[:, 0]
    scale = sd * math.sqrt(1 - rho**2)
    for w in range(1, n_weeks):
        x[:, w] = rho * x[:, w - 1] + scale * eps[:, w]
    return np.exp(x - sd**2 / 2)


def _to_workday(days: np.ndarray) -> np.ndarray:
    """Move a time on a Saturday or Sunday to the same hour on the next Monday (day 0 is a Monday)."""
    weekday = np.floor(days) % 7
    return days + np.where(weekday >= 5, 7 - weekday, 0)


def _office_time(day: np.ndarray, rng_u: np.ndarray) -> np.ndarray:
    """A working day (day number) plus a time between 08:00 and 18:00."""
    return _to_workday(np.floor(day)) + (8 + 10 * rng_u) / 24


def generate(seed: int, params: WorldParams = WorldParams(), changes: Sequence[Change] = (), *,
             focal: int | None = None, phase_week: int = PLAN_START_WEEK) -> World:
    """Simulate one team.

    Parameters
    ----------
    seed
        Everything is a deterministic function of the seed (and the arguments).
    params
        The peer-level world (:data:`ALL_EQUAL` for a team in which no rep differs).
    changes
        True-rate changes, e.g. :func:`low_rep`.
    focal
        The rep (index) that sits exactly at the peer level apart from ``changes``; default: the first rep
        any change names.
    phase_week
        Draws for events that start before and from this week come from separate streams, so worlds that
        differ only from this week on share their history.
    """
    p = params
    n_reps, n_weeks = p.n_reps, p.n_weeks
    changes = tuple(changes)
    if focal is None:
        focal = next((c.rep for c in changes if not c.team), None)
    het_rng = _rng(seed, 0)
    truth = {}
    for d in DRIVERS:
        mult = _gamma_mult(het_rng, p.rep_cv, n_reps)
        if focal is not None:
            mult[focal] = 1.0
        truth[d] = np.repeat(mult[:, None], n_weeks, axis=1)
    truth[BOOK] = np.ones((n_reps, n_weeks))
    hires = ramp_hires(p, focal)
    for r, week in hires.items():
        for d in ("emails", "opps"):
            truth[d][r] *= ramp_multiplier(p, week)
    for c in changes:
        last = n_weeks if c.last is None else c.last
        truth[c.driver][c.rep, c.first - 1:last] *= c.factor
    noise_rng = _rng(seed, 1)
    week_noise = {k: _ar1_lognormal(noise_rng, n_reps, n_weeks, p.week_sd, p.week_rho) for k in ("emails", "opps")}
    team_week = np.exp(_rng(seed, 2).normal(0, p.team_week_sd, n_weeks) - p.team_week_sd**2 / 2) \
        if p.team_week_sd > 0 else np.ones(n_weeks)
    if p.nb_alpha > 0:         # its own stream: the tidy world's draws are untouched
        nb_rng = _rng(seed, 3)
        for k in ("emails", "opps"):
            week_noise[k] = week_noise[k] * nb_rng.gamma(1 / p.nb_alpha, p.nb_alpha, (n_reps, n_weeks))

    split = min(max(phase_week - 1, 0), n_weeks)
    phases = [(0, split), (split, n_weeks)] if 0 < split < n_weeks else [(0, n_weeks)]
    emails, opps, meetings, touches = [], [], [], []
    for r in range(n_reps):
        touch_clock = _TouchClock(truth["touches"][r])
        for ph, (w0, w1) in enumerate(phases):
            weeks = np.arange(w0, w1)
            lam = p.emails_per_week * truth["emails"][r, w0:w1] * week_noise["emails"][r, w0:w1] * team_week[w0:w1]
            emails.append(_weekly_events(_rng(seed, 10, r, ph), weeks, lam, r))
            lam = p.opps_per_week * truth["opps"][r, w0:w1] * week_noise["opps"][r, w0:w1] * team_week[w0:w1]
            o, m, t = _opportunities(_rng(seed, 11, r, ph), weeks, lam, r, p, truth, touch_clock)
            if p.accounts:     # its own stream, drawn after the rest: counts and times do not move
                _draw_accounts(_rng(seed, 12, r, ph), p, truth[BOOK][r], emails[-1], o)
            opps.append(o)
            meetings.append(m)
            touches.append(t)
    data = _tables(p, emails, opps, meetings, touches, hires)
    return World(seed=seed, params=p, changes=changes, focal=focal, data=data, truth=truth)


def _draw_accounts(rng: np.random.Generator, p: WorldParams, book: np.ndarray, emails: dict, opps: dict) -> None:
    """An account (index into the rep's book) for each email and opportunity, uniform over the accounts that
    are the rep's in its week (the first ``round(share x accounts_per_rep)``)."""
    for events, t in ((emails, emails["t"]), (opps, opps["created"])):
        week = np.clip(np.floor(t / 7).astype(np.int64), 0, p.n_weeks - 1)
        size = np.maximum(1, np.rint(p.accounts_per_rep * book[week])).astype(np.int64)
        events["account"] = np.minimum(np.floor(rng.random(len(t)) * size).astype(np.int64), size - 1)


def _weekly_events(rng: np.random.Generator, weeks: np.ndarray, lam: np.ndarray, rep: int) -> dict:
    n = rng.poisson(lam)
    week = np.repeat(weeks, n)
    size = len(week)
    day = week * 7 + rng.integers(0, 5, size)
    return {"rep": np.full(size, rep), "t": day + (8 + 10 * rng.random(size)) / 24}


class _TouchClock:
    """Operational time for a rep's touch process: tau(t) = integral of the weekly touch-rate multiplier."""

    def __init__(self, weekly: np.ndarray):
        n = len(weekly)
        self.edges = np.r_[7.0 * np.arange(n + 1), 7.0 * n + 10_000.0]
        self.cum = np.r_[0.0, np.cumsum(7.0 * weekly), 7.0 * weekly.sum() + 10_000.0 * weekly[-1]]

    def tau(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self.edges, self.cum)

    def inverse(self, tau: np.ndarray) -> np.ndarray:
        return np.interp(tau, self.cum, self.edges)


TOUCH_DRAWS = 64   # gaps drawn per opportunity (a fixed number keeps the streams aligned across scenarios)


def _opportunities(rng: np.random.Generator, weeks: np.ndarray, lam: np.ndarray, rep: int, p: WorldParams,
                   truth: dict[str, np.ndarray], clock: _TouchClock) -> tuple[dict, dict, dict]:
    n_weeks = p.n_weeks
    n = rng.poisson(lam)
    week = np.repeat(weeks, n)
    k = len(week)
    # a fixed set of draws per opportunity, in a fixed order (common random numbers across scenarios)
    u = rng.random((k, 8))
    g = rng.standard_gamma(2.0, (k, 3))
    g_close = rng.standard_gamma(3.0, k)
    z = rng.standard_normal(k)
    gaps = rng.standard_gamma(p.touch_gap_shape, (k, TOUCH_DRAWS)) * (p.touch_gap_days / p.touch_gap_shape)

    created = week * 7 + np.floor(u[:, 0] * 5) + (8 + 10 * u[:, 1]) / 24

    def week_of(t):
        return np.clip(np.floor(t / 7).astype(np.int64), 0, n_weeks - 1)

    p_first = np.clip(p.first_meeting_prob * truth["first_meetings"][rep, week_of(created)], 0, 0.98)
    has_first = u[:, 2] < p_first
    t1 = _office_time(created + 1 + g[:, 0] * (p.first_meeting_days - 1) / 2, u[:, 3])
    p_follow = np.clip(p.followup_prob * truth["followup"][rep, week_of(t1)], 0, 0.98)
    has_second = has_first & (u[:, 4] < p_follow)
    t2 = _office_time(t1 + 1 + g[:, 1] * (p.followup_days - 1) / 2, u[:, 5])
    won = u[:, 6] < np.where(has_second, p.win_prob_followup, p.win_prob_other)
    close = np.where(has_second, t2 + 1 + g[:, 2] * (p.close_after_followup_days - 1) / 2,
                     created + g_close * p.close_without_followup_days / 3)
    close = np.where(has_first & ~has_second, np.maximum(close, t1 + 1), close)
    close = _office_time(np.maximum(close, created + 1), u[:, 7])
    amount = p.deal_median * np.exp(p.deal_sigma * z)

    opp = {"rep": np.full(k, rep), "created": created, "close": close, "won": won, "amount": amount}
    m_idx = np.r_[np.flatnonzero(has_first), np.flatnonzero(has_second)]
    meetings = {"opp": m_idx, "t": np.r_[t1[has_first], t2[has_second]], "rep": np.full(len(m_idx), rep)}
    # touches: a renewal process in operational time, mapped back to calendar days, while the opp is open
    times = clock.inverse(clock.tau(created)[:, None] + np.cumsum(gaps, axis=1))
    times = _to_workday(times)
    keep = times < close[:, None]
    t_idx = np.nonzero(keep)[0]
    touches = {"opp": t_idx, "t": times[keep], "rep": np.full(len(t_idx), rep)}
    return opp, meetings, touches


def _stamp(start_ns: int, days: np.ndarray) -> np.ndarray:
    return (start_ns + np.round(days * DAY_NS).astype(np.int64)).astype("datetime64[ns]")


def _ids(prefix: str, n: int, width: int) -> pd.Series:
    return pd.Series(np.char.mod(f"{prefix}%0{width}d", np.arange(1, n + 1)), dtype="str")


def _account_ids(names: list[str], rep: np.ndarray, account: np.ndarray) -> pd.Series:
    """``R01-A007``: account 7 of rep R01's book (books are per rep, so no account is shared)."""
    prefix = np.asarray([f"{n}-A" for n in names])[rep]
    return pd.Series(np.char.add(prefix, np.char.zfill((account + 1).astype(str), 3)), dtype="str")


def _tables(p: WorldParams, emails: list[dict], opps: list[dict], meetings: list[dict],
            touches: list[dict], hires: dict[int, int]) -> pn.SalesData:
    horizon = 7.0 * p.n_weeks
    start = pd.Timestamp(p.start)
    start_ns = start.value
    names = rep_ids(p.n_reps)
    reps = pd.DataFrame({
        "rep_id": pd.Series(names, dtype="str"),
        "rep_name": pd.Series([f"Rep {i + 1:02d}" for i in range(p.n_reps)], dtype="str"),
        "team": pd.Series([p.team] * p.n_reps, dtype="str"),
        "hire_date": pd.Series([start + pd.Timedelta(weeks=hires[r] - 1) if r in hires
                                else start - pd.Timedelta(weeks=p.hired_weeks_before) for r in range(p.n_reps)],
                               dtype="datetime64[ns]"),
    })

    # opportunities: global index = offset of its block + index inside the block
    offsets = np.cumsum([0, *[len(o["created"]) for o in opps]])
    cat = {key: np.concatenate([o[key] for o in opps]) for key in opps[0]}
    n_opps = len(cat["created"])
    opp_ids = _ids("O", n_opps, 6)
    closed = cat["close"] < horizon
    outcome = np.where(closed, np.where(cat["won"], "won", "lost"), "open")
    closed_at = _stamp(start_ns, cat["close"])
    closed_at[~closed] = np.datetime64("NaT")
    opportunities = pd.DataFrame({
        "opp_id": opp_ids,
        "rep_id": pd.Series(np.asarray(names)[cat["rep"]], dtype="str"),
        "created_at": _stamp(start_ns, cat["created"]),
        "outcome": pd.Series(outcome, dtype="str"),
        "closed_at": closed_at,
        "amount": cat["amount"].astype(float),
    })
    if p.accounts:
        opportunities["account_id"] = _account_ids(names, cat["rep"], cat["account"])

    # activities: emails (no opportunity), meetings and touches (calls) on opportunities
    def on_opps(blocks: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = np.concatenate([b["opp"] + offsets[i] for i, b in enumerate(blocks)]).astype(np.int64)
        return idx, np.concatenate([b["t"] for b in blocks]), np.concatenate([b["rep"] for b in blocks])

    m_opp, m_t, m_rep = on_opps(meetings)
    c_opp, c_t, c_rep = on_opps(touches)
    e_t = np.concatenate([e["t"] for e in emails])
    e_rep = np.concatenate([e["rep"] for e in emails])
    t = np.r_[e_t, m_t, c_t]
    rep = np.r_[e_rep, m_rep, c_rep].astype(np.int64)
    kind = np.r_[np.full(len(e_t), "email"), np.full(len(m_t), "meeting"), np.full(len(c_t), "call")]
    opp = np.r_[np.full(len(e_t), -1), m_opp, c_opp]
    keep = t < horizon
    t, rep, kind, opp = t[keep], rep[keep], kind[keep], opp[keep]
    order = np.argsort(t, kind="stable")
    t, rep, kind, opp = t[order], rep[order], kind[order], opp[order]
    opp_col = pd.Series(opp_ids.to_numpy()[np.clip(opp, 0, None)], dtype="str").mask(opp < 0)
    activities = pd.DataFrame({
        "activity_id": _ids("A", len(t), 7),
        "rep_id": pd.Series(np.asarray(names)[rep], dtype="str"),
        "kind": pd.Series(kind, dtype="str"),
        "occurred_at": _stamp(start_ns, t),
        "opp_id": opp_col,
    })
    if p.accounts:             # emails: their own account; meetings and calls: their opportunity's
        e_acc = np.concatenate([e["account"] for e in emails])
        acc = np.r_[e_acc, cat["account"][m_opp], cat["account"][c_opp]][keep][order]
        activities["account_id"] = _account_ids(names, rep, acc)
    return pn.SalesData(reps=reps, opportunities=opportunities, activities=activities, source="simworld")


# -- the harness: pipnb's public API only -------------------------------------------------------------
def scan(world: World, *, weeks: int = 12, as_of_week: int = DIAGNOSIS_WEEK,
         win_rate_basis: str | None = "all", confirm: bool = False) -> pd.DataFrame:
    """``pn.scorecard`` over the ``weeks`` weeks ending with ``as_of_week`` (``confirm``: the policy option
    that keeps a shortfall only when the window before showed it too)."""
    kwargs = {} if win_rate_basis is None else {"win_rate_basis": win_rate_basis}
    if confirm:
        kwargs["policy"] = pn.Policy.default().with_overrides(confirm_previous_window=True)
    return pn.scorecard(world.data, as_of=world.week_end(as_of_week), weeks=weeks, panel=world.panel, **kwargs)


def shortfalls(card: pd.DataFrame, metrics: Iterable[str] = PLAN_METRICS) -> pd.DataFrame:
    """Rep x metric table of ``flag == "shortfall"`` (every rep, every metric asked for)."""
    metrics = list(dict.fromkeys(metrics))
    flags = (card.assign(short=card["flag"].eq("shortfall"))
             .pivot_table(index="rep_id", columns="metric", values="short", aggfunc="any"))
    return flags.reindex(columns=metrics).fillna(False).astype(bool)


def select_worst(card: pd.DataFrame) -> str:
    """The rep a manager would put on a plan: most shortfalls on the plan metrics, then the lowest win rate."""
    flags = shortfalls(card).sum(axis=1)
    win = card[card["metric"] == "win_rate"].set_index("rep_id")["value"].reindex(flags.index)
    order = pd.DataFrame({"flags": flags, "win": win.fillna(np.inf)}).sort_values(
        ["flags", "win"], ascending=[False, True], kind="stable")
    return str(order.index[0])


@dataclass
class PlanRun:
    """What one forced plan produced: focus, every look's verdicts and the final review."""

    rep_id: str
    focus: list[str]
    areas: list[str]
    verdicts: pd.DataFrame          # stage, metric, verdict, mde, ... (every look)
    final_table: pd.DataFrame
    recommendation: str | None
    reasons: list[str] = field(default_factory=list)
    every_look: bool = True
    plan: object = field(default=None, repr=False)      # the pn.Plan that was reviewed

    def verdict(self, metric: str, stage: str = "final") -> str | None:
        rows = self.verdicts[(self.verdicts["stage"] == stage) & (self.verdicts["metric"] == metric)]
        return None if rows.empty else str(rows["verdict"].iloc[0])

    def stated_mde(self, metric: str, stage: str = "final") -> float:
        rows = self.verdicts[(self.verdicts["stage"] == stage) & (self.verdicts["metric"] == metric)]
        if rows.empty or "mde" not in rows:
            return float("nan")
        return float(rows["mde"].iloc[0])

    def any_verdict(self, word: str) -> bool:
        return bool(self.verdicts["verdict"].eq(word).any()) if len(self.verdicts) else False


def run_plan(world: World, rep_id: str, *, diagnosis_week: int = DIAGNOSIS_WEEK, every_look: bool = True,
             focus: Sequence[str] | None = None, amend: Callable[[World, object], object] | None = None
             ) -> PlanRun:
    """Diagnose ``rep_id`` on the 12 weeks ending with ``diagnosis_week``, force a plan from the next Monday,
    and review it at every checkpoint and the final review (``every_look=False``: the final review only;
    ``pn.review`` is stateless, so the final does not depend on the checkpoints having run). ``focus``: the
    manager edits the draft so that exactly these metrics are its focus (the plan YAML's ``focus`` flags).
    ``amend(world, plan)``: the plan the reviews read instead (e.g. with a recorded plan event)."""
    data, panel = world.data, world.panel
    dx = pn.diagnose(data, rep_id, as_of=world.week_end(diagnosis_week), panel=panel)
    plan = pn.draft_plan(dx, start=world.week_start(diagnosis_week + 1).date(),      # forced: a reason is needed
                         reason="simulation: the rep is put on a plan whatever the diagnosis finds")
    if focus is not None:
        plan = plan.model_copy(update={"targets": [t.model_copy(update={"focus": t.metric in focus})
                                                   for t in plan.targets]})
    if amend is not None:
        plan = amend(world, plan)
    looks = [*range(1, len(plan.checkpoints) + 1), "final"] if every_look else ["final"]
    frames, final = [], None
    for look in looks:
        rv = pn.review(data, plan, look, panel=panel)
        v = rv.verdicts.copy()
        v.insert(0, "stage", "final" if look == "final" else f"checkpoint-{look}")
        frames.append(v)
        final = rv
    verdicts = pd.concat(frames, ignore_index=True)
    return PlanRun(rep_id=rep_id, focus=[t.metric for t in plan.targets if t.focus],
                   areas=list(dx.improvement_areas), verdicts=verdicts, final_table=final.table.copy(),
                   recommendation=final.recommendation, reasons=list(final.reasons), every_look=every_look,
                   plan=plan)


# -- tallies ------------------------------------------------------------------------------------------
class Tally:
    """Successes and trials per key, plus sampled values (e.g. stated MDEs)."""

    def __init__(self):
        self.counts: dict[str, list[int]] = {}
        self.values: dict[str, list[float]] = {}

    def add(self, key: str, success, trials: int = 1) -> None:
        k, n = self.counts.setdefault(key, [0, 0])
        self.counts[key] = [k + int(success), n + trials]

    def value(self, key: str, x: float) -> None:
        self.values.setdefault(key, []).append(float(x))

    def merge(self, other: Tally) -> Tally:
        for key, (k, n) in other.counts.items():
            self.add(key, k, n)
        for key, xs in other.values.items():
            self.values.setdefault(key, []).extend(xs)
        return self

    def rate(self, key: str) -> float:
        k, n = self.counts.get(key, (0, 0))
        return k / n if n else float("nan")

    def n(self, key: str) -> int:
        return self.counts.get(key, (0, 0))[1]

    def interval(self, key: str) -> tuple[float, float]:
        k, n = self.counts.get(key, (0, 0))
        return wilson(k, n)


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95% interval for k successes in n trials."""
    if n == 0:
        return float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"wilson: {k} successes in {n} trials")
    phat = k / n
    den = 1 + z**2 / n
    centre = (phat + z**2 / (2 * n)) / den
    half = z * math.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _poisson_interval(k: float) -> tuple[float, float]:
    """Exact (Garwood) 95% interval for a Poisson count."""
    from scipy.stats import chi2

    lo = 0.0 if k <= 0 else chi2.ppf(0.025, 2 * k) / 2
    return lo, chi2.ppf(0.975, 2 * k + 2) / 2


def tally_plan(t: Tally, prefix: str, run: PlanRun, *, metric: str | None = None) -> None:
    """Record a plan's decisions: recommendation, verdicts at any look, the final on ``metric``, 'met' quality."""
    rec = run.recommendation
    t.add(f"{prefix}.consequences", rec == "consequences")
    t.add(f"{prefix}.complete", rec == "complete")
    t.add(f"{prefix}.extend", rec == "extend")
    t.add(f"{prefix}.complete_or_extend", rec in ("complete", "extend"))
    if run.every_look:
        t.add(f"{prefix}.improved_any_look", run.any_verdict(IMPROVED))
        t.add(f"{prefix}.worse_any_look", run.any_verdict(WORSE))
    if metric is not None:
        verdict = run.verdict(metric)
        if verdict is not None:             # a plan metric (opportunities created is not one)
            t.add(f"{prefix}.improved_final", verdict == IMPROVED)
        t.add(f"{prefix}.focus", metric in run.areas or metric in run.focus)
    tally_met(t, run)


def tally_met(t: Tally, run: PlanRun) -> None:
    """'met' at the final review: ratios resting on < 10 trials; counts and ratios whose own 95% interval
    (Wilson / exact Poisson on the pooled plan-period counts the status rests on) reaches beyond the target."""
    table = run.final_table
    if not {"metric", "status"} <= set(table.columns):
        return
    met = table[table["status"] == "met"]
    for row in met.itertuples(index=False):
        trials = getattr(row, "since_denominator", getattr(row, "denominator", np.nan))
        if row.metric in RATIO_METRICS:
            t.add("met.ratio_under_10_trials", bool(np.isfinite(trials) and trials < 10))
        lo_hi = _met_interval(row)
        if lo_hi is not None:
            lo, hi = lo_hi
            target = getattr(row, "target", np.nan)
            if np.isfinite(target):
                t.add("met.interval_beyond_target", bool(lo < target))


def _met_interval(row) -> tuple[float, float] | None:
    k = getattr(row, "since_numerator", getattr(row, "numerator", np.nan))
    n = getattr(row, "since_denominator", getattr(row, "denominator", np.nan))
    if not (np.isfinite(k) and np.isfinite(n)) or n <= 0:
        return None
    if row.metric in RATIO_METRICS:     # won ÷ created in a window can exceed 1: not a proportion; cap it
        return wilson(min(int(round(k)), int(round(n))), int(round(n)))
    if row.metric in COUNT_METRICS:
        lo, hi = _poisson_interval(k)
        return lo / n, hi / n
    return None


# -- scenarios: one replication each, returning a Tally ---------------------------------------------
def scenario_all_equal(seed: int, *, plan: bool = True, params: WorldParams = ALL_EQUAL,
                       prefix: str = "s1", bases: Sequence[str] = ("all",)) -> Tally:
    """(1) an all-equal team: reps flagged short on a plan metric; (2) the noise-selected rep's plan."""
    t = Tally()
    world = generate(seed, params)
    cards = {basis: scan(world, win_rate_basis=basis) for basis in dict.fromkeys(["all", *bases])}
    for basis in bases:
        key = prefix if basis == "all" else f"{prefix}.{basis}"
        flags = shortfalls(cards[basis], [*PLAN_METRICS, "opps_created_per_week"])
        n = len(flags)
        t.add(f"{key}.any", int(flags[list(PLAN_METRICS)].any(axis=1).sum()), n)
        t.add(f"{key}.any_driver", int(flags.any(axis=1).sum()), n)     # the "win rate or a driver"
        for metric in flags.columns:
            t.add(f"{key}.{metric}", int(flags[metric].sum()), n)
    if plan:
        tally_plan(t, "s2", run_plan(world, select_worst(cards["all"])))
    return t


def scenario_planted(seed: int, driver: str, *, windows: Sequence[int] = (12, 26), plans: bool = True,
                     mde: bool = True, params: WorldParams = WorldParams()) -> Tally:
    """One team with rep R01 truly at 60% of peers on ``driver`` (the other reps at the peer level).

    * (4) whether the scan flags R01 on that driver, per window length in ``windows``;
    * (5) ``plans``: R01, unchanged, forced onto a plan: the final review's recommendation;
    * (3) ``plans``: the same history, but R01 truly back at the peer level from the plan's first day;
    * (7) ``mde``: the same history, with a true change from the plan start equal to the smallest change
      the no-change plan's final review stated it could detect (:func:`true_factor_for_mde`): 'improved'?
    """
    t = Tally()
    metric = DRIVER_METRIC[driver]
    low = generate(seed, params, low_rep(driver))
    rep = low.rep_id(0)
    for weeks in windows:
        flags = shortfalls(scan(low, weeks=weeks), metrics=[*PLAN_METRICS, metric])
        t.add(f"s4.{driver}.w{weeks}", bool(flags.loc[rep, metric]))
        others = flags.drop(index=rep)[list(PLAN_METRICS)]
        t.add(f"s4.others_any.w{weeks}", int(others.any(axis=1).sum()), len(others))
    confirmed = shortfalls(scan(low, confirm=True), metrics=[*PLAN_METRICS, metric])
    t.add(f"s4.{driver}.confirmed", bool(confirmed.loc[rep, metric]))
    if not plans:
        return t
    run = run_plan(low, rep, every_look=False)
    tally_plan(t, f"s5.{driver}", run, metric=metric)
    tally_plan(t, "s5.all", run, metric=metric)
    seen = "found" if metric in run.areas or metric in run.focus else "unseen"   # did the plan hold the rep to it?
    for key in (f"s5.{driver}", "s5.all"):
        t.add(f"{key}.complete_{seen}", run.recommendation == "complete")
    back = generate(seed, params, low_rep(driver, after=1.0))
    recovered = run_plan(back, rep, every_look=False)
    tally_plan(t, f"s3.{driver}", recovered, metric=metric)
    tally_plan(t, "s3.all", recovered, metric=metric)
    if mde:
        _tally_mde(t, seed, driver, params, low, run)
    return t


def scenario_mde(seed: int, driver: str, *, params: WorldParams = WorldParams()) -> Tally:
    """(7) alone: a rep truly at 60% on ``driver`` forced onto a plan, then the same history with a true
    change from the plan start equal to the smallest change that plan's final review stated it could detect."""
    t = Tally()
    low = generate(seed, params, low_rep(driver))
    _tally_mde(t, seed, driver, params, low, run_plan(low, low.rep_id(0), every_look=False))
    return t


def _tally_mde(t: Tally, seed: int, driver: str, params: WorldParams, low: World, run: PlanRun) -> None:
    """The stated change is a promise about the rule that judges a focus metric: when the diagnosis did not
    make ``driver``'s metric a focus, the manager adds it (the plan YAML's ``focus`` flag), in both runs."""
    metric = DRIVER_METRIC[driver]
    t.add(f"s7.{driver}.focus", metric in run.focus)
    if metric not in run.focus:
        run = run_plan(low, run.rep_id, every_look=False, focus=[*run.focus, metric])
    stated = run.stated_mde(metric)
    t.value(f"s7.{driver}.stated_mde", stated)
    factor = true_factor_for_mde(driver, stated, params)
    t.add(f"s7.{driver}.mde_stated", factor is not None)
    if factor is not None:
        moved = generate(seed, params, mde_changes(driver, factor, params))
        t.value(f"s7.{driver}.true_factor", factor)
        t.add(f"s7.{driver}.improved_final",
              run_plan(moved, run.rep_id, every_look=False, focus=run.focus).verdict(metric) == IMPROVED)


def scenario_emails_up(seed: int, *, factor: float = 1.5, params: WorldParams = WorldParams()) -> Tally:
    """(6a) a rep at 60% of peers on emails who sends ``factor`` times as many from the plan start."""
    t = Tally()
    world = generate(seed, params, low_rep("emails", after=0.6 * factor))
    run = run_plan(world, world.rep_id(0), every_look=False)
    tally_plan(t, f"s6.emails_x{factor:g}", run, metric="emails_per_week")
    return t


def scenario_followup_up(seed: int, *, before: float = 0.45, after: float = 0.70,
                         params: WorldParams = WorldParams()) -> Tally:
    """(6b) a rep whose follow-up probability truly rises from ``before`` to ``after`` at the plan start
    (peers at ``params.followup_prob``, 45% by default: an average rep who gets better than peers)."""
    t = Tally()
    base = params.followup_prob
    world = generate(seed, params, low_rep("followup", factor=before / base, after=after / base))
    metric = "followup_meeting_ratio"
    key = f"s6.followup_{round(100 * before)}_{round(100 * after)}"
    run = run_plan(world, world.rep_id(0), every_look=False)
    t.add(f"{key}.focus", metric in run.areas or metric in run.focus)
    # an average rep is rarely diagnosed short on it, so the manager makes it the plan's one focus: the
    # power of the review's rule itself, and what it says when it cannot find the change
    run = run_plan(world, world.rep_id(0), every_look=False, focus=[metric])
    verdict = run.verdict(metric)
    t.add(f"{key}.improved_final", verdict == IMPROVED)
    t.add(f"{key}.too_early_final", verdict == TOO_EARLY)
    t.add(f"{key}.no_clear_change_final", verdict == NO_CLEAR_CHANGE)
    return t


def true_factor_for_mde(driver: str, mde: float, params: WorldParams, level: float = 0.6) -> float | None:
    """The multiplier on the rep's true rate whose effect on the metric equals a stated detectable change.

    The stated change is on the metric's own scale over the weeks the final review judges (a rate ratio for
    counts, a gap ratio for touch gaps, points for the follow-up ratio); a multiplier on the generator's
    rate reaches the metric diluted (meetings are touches too; first meetings and follow-ups lag the
    opportunities they come from). :func:`effect_curve` measures that on large worlds, and the multiplier
    is solved from it. None when no finite change is stated (or the follow-up probability would pass 98%)."""
    if mde is None or not np.isfinite(mde) or mde == 0:
        return None
    if driver in ("emails", "opps"):
        return mde if mde > 1 else None
    wanted = {"first_meetings": math.log(mde) if mde > 0 else math.nan,
              "touches": -math.log(mde) if mde > 0 else math.nan, "followup": abs(mde)}[driver]
    if not wanted > 0:
        return None
    b1, b2 = effect_curve(driver, params, level)
    x = _solve_curve(b1, b2, wanted)
    factor = math.exp(x) if driver != "followup" else 1 + x
    if driver == "followup" and params.followup_prob * level * factor >= 0.98:
        return None
    return factor


def _solve_curve(b1: float, b2: float, y: float) -> float:
    """The smallest x > 0 with b1 x + b2 x^2 = y (the curve is increasing where it is used)."""
    from scipy.optimize import brentq

    high = 0.5
    while b1 * high + b2 * high ** 2 < y and high < 50:
        high *= 2
    return float(brentq(lambda x: b1 * x + b2 * x ** 2 - y, 0.0, high))


def mde_changes(driver: str, factor: float, params: WorldParams, level: float = 0.6, rep: int = 0
                ) -> list[Change]:
    """A rep at ``level`` of peers on ``driver`` whose rate is ``factor`` times that from the plan start.

    First meetings: the first-meeting probability carries the factor up to 95%; the rest goes to the
    opportunities they come from (first meetings a week = opportunities x probability), so a large stated
    change is not silently capped by the probability."""
    if driver != "first_meetings":
        return low_rep(driver, factor=level, after=level * factor, rep=rep)
    prob = min(factor, 0.95 / (params.first_meeting_prob * level))
    changes = low_rep(driver, factor=level, after=level * prob, rep=rep)
    if factor / prob > 1 + 1e-9:
        changes.append(Change(rep, "opps", factor / prob, PLAN_START_WEEK))
    return changes


CALIBRATION_FACTORS = (1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0)


@functools.cache
def effect_curve(driver: str, params: WorldParams = WorldParams(), level: float = 0.6, *, n_reps: int = 300,
                 seed: int = 7) -> tuple[float, float]:
    """How a multiplier ``f`` on the generator's rate shows in the metric the final review judges.

    A large all-equal team (``n_reps``), every rep at ``level`` of the peer level, is generated once as it is
    (``f = 1``) and once for each ``f`` in :data:`CALIBRATION_FACTORS`, moving to ``level * f`` from the plan
    start (:func:`mde_changes`). The effect of ``f`` is the team's pooled metric over the judged plan weeks
    (after the metric's carry-over weeks) at ``f`` against the same at ``f = 1``: a log ratio (first meetings;
    touch gaps with the sign turned) or points (follow-up ratio). ``y = b1 x + b2 x^2`` is fitted by least
    squares through the origin, with ``x = log f`` (``f - 1`` for points). It is computed from the generated
    events and pipnb's weekly panel and touch gaps (the metric definitions), not from any test or estimate of
    pipnb's, once per process.

    Against the difference in differences with a control third this replaced, the comparison is the review's
    own (a rep's plan weeks against its baseline, beyond peers) in expectation, since with no change the
    two periods and the peers differ by nothing a world at ``f = 1`` does not share; and it is about three times
    as precise for the same cost: the worlds share every draw the change does not touch (common random
    numbers), so neither the baseline's nor the controls' noise enters, and every rep is treated. The old
    curve's error was systematic for every plan of a run: for first meetings at ``f = 2.8`` it gave 1.029
    where six seeds average 0.977 (sd 0.032); this one gives 0.995 (six seeds average 0.986, sd 0.009)."""
    from pipnb.schema import METRICS

    big = replace(params, n_reps=n_reps, rep_cv=0.0)
    metric = DRIVER_METRIC[driver]
    carry = METRICS[metric].carryover_weeks if metric in METRICS else 0
    weeks = {"P": (PLAN_START_WEEK + carry, params.n_weeks)}
    group = np.full(n_reps, "T")

    def plan_level(f: float) -> float:
        world = generate(seed, big, [c for i in range(n_reps) for c in mde_changes(driver, f, big, level, i)])
        numerator, denominator = _window_sums(world, metric, group, weeks)["T", "P"]
        return numerator / denominator

    unchanged = plan_level(1.0)
    xs, ys = [], []
    for f in CALIBRATION_FACTORS:
        moved = plan_level(f)
        if driver == "followup":
            xs.append(f - 1)
            ys.append(moved - unchanged)
        else:
            effect = math.log(moved / unchanged)
            xs.append(math.log(f))
            ys.append(-effect if driver == "touches" else effect)
    x = np.asarray(xs)
    b, *_ = np.linalg.lstsq(np.column_stack([x, x ** 2]), np.asarray(ys), rcond=None)
    return float(b[0]), float(b[1])


def _window_sums(world: World, metric: str, group: np.ndarray, weeks: dict) -> dict:
    """(numerator, denominator) per (group, window): counts and ratios from the weekly panel; touch gaps
    as days at risk inside the window over the gaps closed in it (gaps split at the window edges)."""
    out = {}
    lookup = dict(zip(world.rep_ids, group))
    if metric == "avg_days_between_touches":
        gaps = pn.touch_gaps(world.data, world.week_end(world.params.n_weeks))
        end = pd.to_datetime(gaps["ended_at"])
        start = end - pd.to_timedelta(gaps["days"], unit="D")
        g = gaps["rep_id"].map(lookup).to_numpy()
        for w, (first, last) in weeks.items():
            a, b = world.week_start(first), world.week_end(last) + pd.Timedelta(days=1)
            overlap = (end.clip(upper=b) - start.clip(lower=a)).dt.total_seconds().clip(lower=0) / 86_400
            closed = (end >= a) & (end < b) & ~gaps["censored"].astype(bool)
            for k in ("T", "C"):
                out[k, w] = (float(overlap[g == k].sum()), float(closed[g == k].sum()))
        return out
    panel = world.panel
    rows = panel[panel["metric"] == metric]
    g = rows["rep_id"].map(lookup).to_numpy()
    week = pd.to_datetime(rows["week"])
    for w, (first, last) in weeks.items():
        inside = ((week >= world.week_start(first)) & (week <= world.week_start(last))).to_numpy()
        for k in ("T", "C"):
            sel = inside & (g == k)
            denominator = float(rows["denominator"].to_numpy()[sel].sum())
            if metric in COUNT_METRICS:           # a count: events per rep-week
                denominator = float(sel.sum())
            out[k, w] = (float(rows["numerator"].to_numpy()[sel].sum()), denominator)
    return out


def ideal_detection(params: WorldParams = WorldParams(), *, factor: float = 0.6, weeks: Sequence[int] = (12, 26),
                    alphas: Sequence[float] = (0.05, 0.01)) -> pd.DataFrame:
    """The ceiling for scenario 4: power of an exact one-sided test of a rep at ``factor`` of the peer level
    against a *known* peer rate (no peer noise, no week-to-week noise, no practical margin). Counts: Poisson
    over the window (``spread`` "none"), and negative binomial when the test also knows the peers' natural
    spread (``spread`` "known": a peer's own rate varies with the world's between-rep CV, which the null
    must allow for, as pipnb's limits do); the follow-up ratio: binomial on the first meetings of the
    window. ``alpha`` is per metric (1% is about what keeps an all-equal team's any-of-six-metrics flag rate
    near 5%)."""
    from scipy.stats import binom, nbinom, poisson

    def lower_critical(null, alpha: float) -> int:
        """The largest count whose lower tail under ``null`` (a frozen scipy distribution) is <= alpha."""
        c = int(null.ppf(alpha))
        while c >= 0 and null.cdf(c) > alpha:
            c -= 1
        return c

    rows = []
    counts = {"emails": params.emails_per_week, "opps": params.opps_per_week,
              "first_meetings": params.opps_per_week * params.first_meeting_prob}
    for w in weeks:
        for a in alphas:
            for driver, rate in counts.items():
                m0 = rate * w
                nulls = {"none": poisson(m0)}
                if params.rep_cv > 0:
                    size = 1 / params.rep_cv ** 2
                    nulls["known"] = nbinom(size, size / (size + m0))
                for spread, null in nulls.items():
                    c = lower_critical(null, a)
                    rows.append({"driver": driver, "weeks": w, "alpha": a, "spread": spread,
                                 "power": float(poisson.cdf(c, factor * m0)) if c >= 0 else 0.0})
            n = int(round(counts["first_meetings"] * w))
            p0 = params.followup_prob
            c = lower_critical(binom(n, p0), a)
            rows.append({"driver": "followup", "weeks": w, "alpha": a, "spread": "none",
                         "power": float(binom.cdf(c, n, factor * p0)) if c >= 0 else 0.0})
    return pd.DataFrame(rows)


def ideal_density(power: float = 0.9, params: WorldParams = WorldParams(), *, factor: float = 0.6,
                  weeks: int = 12, alpha: float = 0.01) -> dict[str, float]:
    """The weekly event rate at which the ideal test of :func:`ideal_detection` finds a rep at ``factor`` of
    the peer level with ``power``: how dense a count driver must be for a 90% detection target to be within
    reach of any fair test. ``"none"``: a known rate, Poisson only; ``"known"``: also the peers' natural
    spread (``inf`` when the spread alone keeps the power below ``power``, however many events)."""
    def reached(rate: float, spread: str) -> float:
        frame = ideal_detection(replace(params, opps_per_week=rate, rep_cv=params.rep_cv if spread == "known"
                                        else 0.0), factor=factor, weeks=(weeks,), alphas=(alpha,))
        row = frame[(frame["driver"] == "opps") & (frame["spread"] == spread)]
        return float(row["power"].iloc[0]) - power

    out = {}
    for spread in ("none", "known"):
        if reached(1000.0, spread) < 0:
            out[spread] = math.inf
            continue
        lo, hi = 0.1, 1000.0       # the exact test's power is a step function: bisect to the first rate past it
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            lo, hi = (lo, mid) if reached(mid, spread) >= 0 else (mid, hi)
        out[spread] = hi
    return out


# -- the targets ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    key: str
    text: str
    op: str = ""          # "<=", ">=", "~" (80% +- 5%) or "" (report only)
    bound: float = float("nan")

    def holds(self, rate: float) -> bool | None:
        if not self.op or not np.isfinite(rate):
            return None
        if self.op == "<=":
            return rate <= self.bound
        if self.op == ">=":
            return rate >= self.bound
        return abs(rate - self.bound) <= 0.05


def targets(drivers: Sequence[str] = DRIVERS) -> list[Target]:
    """Every line of issue 11's "Targets", in order, plus the report-only lines."""
    out = [
        Target("s1.any", "1 all-equal team: reps flagged short on any plan metric (12 wk, win rate on all)",
               "<=", 0.05),
        *[Target(f"s1.{m}", f"  ... on {m}") for m in (*PLAN_METRICS, "opps_created_per_week")],
        Target("s1.any_driver", "  ... on the win rate or any driver (plan metrics + opportunities created)"),
        Target("s1.closed.any", "  same, win rate on closed deals"),
        Target("s1h.any", "  natural spread (between-rep CV 0.1 on every driver): flagged on any plan metric"),
        Target("s2.consequences", "2 noise-selected average rep: consequences", "<=", 0.02),
        Target("s2.improved_any_look", "  'improved' on some metric at any of the four looks", "<=", 0.05),
        Target("s2.worse_any_look", "  'worse' on some metric at any of the four looks", "<=", 0.05),
        Target("s2.complete", "  complete"),
        Target("s2.extend", "  extend"),
        Target("s3.all.consequences", "3 truly back at the peer level from the plan start: consequences",
               "<=", 0.02),
        Target("s3.all.complete_or_extend", "  complete or extend", ">=", 0.98),
    ]
    for d in drivers:
        out += [Target(f"s3.{d}.consequences", f"  {d}: consequences", "<=", 0.02),
                Target(f"s3.{d}.improved_final", f"  {d}: 'improved' on it at the final (true x1.67)")]
    for d in drivers:
        dense = d in ("emails", "opps")
        out += [Target(f"s4.{d}.w12", f"4 planted 60% {d}: flagged on it, 12-week window",
                       ">=" if dense else "", 0.90),
                Target(f"s4.{d}.w26", f"  {d}: 26-week window"),
                Target(f"s4.{d}.confirmed", f"  {d}: 12 weeks, the shortfall also required in the 12 before")]
    out += [Target("s4.others_any.w12", "  the other reps of those teams flagged on any plan metric (12 wk)"),
            Target("s5.all.complete", "5 truly low, unchanged through the plan: complete", "<=", 0.05),
            Target("s5.all.complete_found", "  ... when the diagnosis named the driver (the plan holds the rep to it)",
                   "<=", 0.05),
            Target("s5.all.complete_unseen", "  ... when it did not (a shortfall the scan could not see)")]
    for d in drivers:
        out += [Target(f"s5.{d}.complete", f"  {d}: complete", "<=", 0.05),
                Target(f"s5.{d}.complete_found", f"  {d}: complete when the diagnosis named it", "<=", 0.05),
                Target(f"s5.{d}.consequences", f"  {d}: consequences", ">=" if d == "emails" else "", 0.80),
                Target(f"s5.{d}.focus", f"  {d}: the diagnosis names it an improvement area")]
    out += [
        Target("s6.emails_x1.5.improved_final", "6 emails x1.5 from the plan start: 'improved' at the final",
               ">=", 0.90),
        Target("s6.followup_45_70.focus", "  follow-up ratio 45% -> 70% (peers 45%): the diagnosis names it an area"),
        Target("s6.followup_45_70.improved_final", "  ... the manager makes it the plan's focus: 'improved' at the "
               "final"),
        Target("s6.followup_45_70.too_early_final", "  ... 'too early to tell' at the final"),
        Target("s6.followup_45_70.no_clear_change_final", "  ... 'no clear change yet' at the final"),
    ]
    for d in drivers:
        out += [Target(f"s7.{d}.improved_final", f"7 true change = stated MDE ({d}): 'improved' at the final",
                       "~", 0.80),
                Target(f"s7.{d}.focus", f"  {d}: a focus of the drafted plan (else the manager adds it)")]
    out += [Target("met.ratio_under_10_trials", "'met' statuses on a ratio resting on < 10 trials"),
            Target("met.interval_beyond_target", "'met' (counts, ratios) whose 95% interval reaches below target")]
    return out


def truncate(world: World, week: int) -> pn.SalesData:
    """The data as it stood at the end of week ``week``: later events dropped, later closes still open."""
    cut = world.week_start(week + 1)
    d = world.data
    opps = d.opportunities[d.opportunities["created_at"] < cut].copy()
    later = opps["closed_at"] >= cut
    opps.loc[later, "outcome"] = "open"
    opps.loc[later, "closed_at"] = pd.NaT
    acts = d.activities[d.activities["occurred_at"] < cut]
    return pn.SalesData(reps=d.reps, opportunities=opps.reset_index(drop=True),
                        activities=acts.reset_index(drop=True), source=d.source)


# -- untidy worlds (issue 23): the worlds and their scenarios -----------------------------------------
NOT_MET = ("not met", "behind plan")


@dataclass(frozen=True)
class UntidyWorld:
    """One world of issue 23's stress benchmark: its parameters and which untidiness it carries."""

    name: str
    text: str
    params: WorldParams = WorldParams()
    dip: bool = False               # the whole team's emails and opportunities x0.6 in plan weeks 7-12
    territory: bool = False         # the focal rep's territory shrinks (only the territory scenario runs)
    event: bool = False             # ... and the manager records it as a plan event (``pn.Plan.record_event``)
    small: bool = False             # teams of 5-8 reps (by replication: 5, 6, 7, 8, 5, ...)
    mde_drivers: tuple[str, ...] = ()

    def world_params(self, index: int) -> WorldParams:
        return replace(self.params, n_reps=5 + index % 4) if self.small else self.params


WORLDS = {w.name: w for w in (
    UntidyWorld("tidy", "today's world (10 reps, Poisson weeks with AR(1) 0.3)", mde_drivers=DRIVERS),
    UntidyWorld("dip", "the whole team's emails and opportunities x0.6 in plan weeks 7-12", dip=True),
    UntidyWorld("territory", "the rep's territory shrinks (opportunities and book x0.6 from week 29), "
                "account ids", WorldParams(accounts=True), territory=True),
    UntidyWorld("territory_noacc", "  ... without account ids", territory=True),
    UntidyWorld("territory_event", "  ... account ids, the shrink recorded as a plan event",
                WorldParams(accounts=True), territory=True, event=True),
    UntidyWorld("territory_event_noacc", "  ... no account ids, recorded as a plan event", territory=True,
                event=True),
    UntidyWorld("ar1", "week-to-week AR(1) rho 0.5 (sd 0.2)", WorldParams(week_sd=0.2, week_rho=0.5),
                mde_drivers=("emails", "opps")),
    UntidyWorld("nb", "negative-binomial weeks, alpha 0.5", WorldParams(nb_alpha=0.5),
                mde_drivers=("emails", "opps")),
    UntidyWorld("small", "teams of 5-8 reps", small=True),
    UntidyWorld("ramping", "half the team hired in weeks 21-40, ramping 30% -> 100% over 26 weeks",
                WorldParams(ramping_share=0.5)),
    UntidyWorld("lowvol", "very low volume: 0.3 opportunities a week", WorldParams(opps_per_week=0.3)),
)}


def not_met(table: pd.DataFrame) -> bool:
    """Does any status of a review's table (``status``, and ``glide_status`` / ``final_status`` where
    present) read "not met" or "behind plan"?"""
    columns = [c for c in table.columns if "status" in c]
    return bool(table[columns].isin(NOT_MET).to_numpy().any()) if columns else False


def _dip(spec: UntidyWorld, params: WorldParams) -> list[Change]:
    return team_dip(n_reps=params.n_reps) if spec.dip else []


def scenario_world_equal(seed: int, spec: UntidyWorld, index: int = 0) -> Tally:
    """An all-equal team in the world (``rep_cv`` 0): established reps (not recently hired) flagged short
    on any plan metric (``s1.any``); recently hired reps flagged (``s1.ramping_any``, report only); the
    established rep the scan makes look worst forced onto a plan, reviewed at every look (``s2.*``), and
    whether its final table reads "not met" / "behind plan" (``s2.not_met_final``). In a dip world, the
    same plan in the same world without the dip too (``s2.nodip.*``: the history before the plan is shared)."""
    t = Tally()
    params = replace(spec.world_params(index), rep_cv=0.0)
    world = generate(seed, params, _dip(spec, params))
    card = scan(world)
    recent = {world.rep_id(r) for r in ramp_hires(params, None)}
    flags = shortfalls(card)
    established = flags[~flags.index.isin(recent)]
    t.add("s1.any", int(established.any(axis=1).sum()), len(established))
    if recent:
        hired = flags[flags.index.isin(recent)]
        t.add("s1.ramping_any", int(hired.any(axis=1).sum()), len(hired))
    rep = select_worst(card[~card["rep_id"].isin(recent)])
    run = run_plan(world, rep)
    tally_plan(t, "s2", run)
    t.add("s2.not_met_final", not_met(run.final_table))
    if spec.dip:
        calm = run_plan(generate(seed, params), rep, every_look=False)
        tally_plan(t, "s2.nodip", calm)
        t.add("s2.nodip.not_met_final", not_met(calm.final_table))
    return t


def scenario_world_recovered(seed: int, spec: UntidyWorld, driver: str, index: int = 0) -> Tally:
    """A rep truly at 60% of peers on ``driver`` who is truly back at the peer level from the plan's first
    day, forced onto a plan (final review): consequences, complete (``s3.*``). In a dip world, the same rep
    in the same world without the dip too (``s3.nodip.*``)."""
    t = Tally()
    params = spec.world_params(index)
    back = low_rep(driver, after=1.0)
    world = generate(seed, params, [*back, *_dip(spec, params)], focal=0)
    run = run_plan(world, world.rep_id(0), every_look=False)
    tally_plan(t, "s3", run)
    t.add("s3.not_met_final", not_met(run.final_table))
    if spec.dip:
        calm = run_plan(generate(seed, params, back, focal=0), world.rep_id(0), every_look=False)
        tally_plan(t, "s3.nodip", calm)
    return t


def record_territory_event(world: World, plan):
    """The manager records the territory change as a signed plan event from the diagnosis window's first
    week: ``plan.transition("activate", ...)`` then ``plan.record_event("territory", on=..., note=...,
    by=..., signed_on=...)`` (the event API of issue 23). Raises ``NotImplementedError`` where
    ``pn.Plan`` has no ``record_event`` yet."""
    if not hasattr(plan, "record_event"):
        raise NotImplementedError("pn.Plan has no record_event: plan events are not built yet")
    start = plan.start
    active = plan.transition("activate", by="simulation", on=start)
    return active.record_event("territory", on=world.week_start(DIAGNOSIS_FIRST_WEEK).date(),
                               note="accounts reassigned: the book keeps 60% of its accounts", by="simulation",
                               signed_on=start)


def scenario_world_territory(seed: int, spec: UntidyWorld, index: int = 0) -> Tally:
    """The focal rep's territory shrinks from the diagnosis window on (behaviour unchanged), and the rep
    is forced onto a plan, reviewed at every look: consequences, "improved" / "worse" at any look."""
    t = Tally()
    params = spec.world_params(index)
    world = generate(seed, params, territory_shrink(0), focal=0)
    run = run_plan(world, world.rep_id(0), amend=record_territory_event if spec.event else None)
    tally_plan(t, "terr", run)
    t.add("terr.not_met_final", not_met(run.final_table))
    return t


def scenario_world_detection(seed: int, spec: UntidyWorld, index: int = 0) -> Tally:
    """Detection where the world is tidy: a rep at 60% on emails flagged in 12 weeks (``s4.emails.w12``);
    a rep at 60% who sends 1.5 times as many from the plan start 'improved' at the final (``s6...``)."""
    params = spec.world_params(index)
    t = scenario_planted(seed, "emails", windows=(12,), plans=False, params=params)
    return t.merge(scenario_emails_up(seed, factor=1.5, params=params))
