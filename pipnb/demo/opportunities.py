"""The demo's opportunities: created weekly, advanced by meetings, won or lost by a quarter's end.

:func:`draw_opportunities` is the causal core of the demo funnel. Each opportunity gets a first meeting
with chance ``p_first``, a second with ``p_second``, each later one with ``p_more``; its chance of winning
grows steeply with the number of meetings (:data:`WIN_BY_MEETINGS`), times the rep's skill and a penalty
for slow follow-up. Close times follow the last meeting by segment-scaled delays (:data:`DELAYS`) and are
often pushed into the last two weeks of their quarter. Times stay in business days (``x``) here;
:mod:`pipnb.demo.frames` turns them into timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipnb.demo.draws import bernoulli, weekly_events
from pipnb.demo.profiles import TOUCH_GAP_DAYS, Rates
from pipnb.demo.team import ACCOUNT_BOOK, OPP_ACCOUNTS
from pipnb.demo.workdays import Calendar

MAX_MEETINGS = 7
WIN_BY_MEETINGS = np.array([0.01, 0.07, 0.50, 0.65, 0.75])   # 0, 1, 2, 3, 4+ meetings
# (minimum, mean of a gamma(2) part) in business days, before the segment's cycle factor
DELAYS = {"first": (0.3, 4.0), "next": (1.0, 13.0), "won": (1.0, 18.0), "lost": (2.0, 30.0),
          "unmet": (10.0, 70.0)}


@dataclass(frozen=True)
class Opps:
    """One row per opportunity; ``meetings[i, k]`` is the time of meeting k+1 (NaN when none)."""

    rep: np.ndarray
    created: np.ndarray
    meetings: np.ndarray
    won: np.ndarray
    closed: np.ndarray
    amount: np.ndarray
    account: np.ndarray


def draw_opportunities(rates: Rates, cal: Calendar, rng: np.random.Generator) -> Opps:
    """Draw every rep's opportunities with their meetings, outcome, close time, amount and account."""
    rep, created = weekly_events(rates.opps, rates.smooth, cal, rng)
    meetings = _meetings(rep, created, rates, cal, rng)
    depth = np.isfinite(meetings).sum(axis=1)
    won, closed = _closes(rep, created, meetings, depth, rates, cal, rng)
    amount = np.round(np.exp(rates.deal_mu[rep] + rng.normal(0.0, 0.55, rep.size)), -2)
    account = rep * ACCOUNT_BOOK + rng.integers(0, OPP_ACCOUNTS, rep.size)
    return Opps(rep, created, meetings, won, closed, amount, account)


def _meetings(rep: np.ndarray, created: np.ndarray, rates: Rates, cal: Calendar,
              rng: np.random.Generator) -> np.ndarray:
    """Meeting times per opportunity: first, second (a follow-up), and later ones.

    Each meeting's time is drawn before whether it happens, so that the case reps' systematic draws run
    in the order of the meetings themselves.
    """
    scale = rates.cycle[rep]
    meetings = np.full((rep.size, MAX_MEETINGS), np.nan)
    at = cal.skip_holidays(created + _delay("first", scale, rng), rng)
    going = bernoulli(rates.p_first[rep], rep, at, rates.smooth, rng)
    for level in range(MAX_MEETINGS):
        meetings[going, level] = at[going]
        if level + 1 == MAX_MEETINGS:
            break
        chance = (rates.p_second if level == 0 else rates.p_more)[rep, cal.week(at)]
        at = cal.skip_holidays(at + _delay("next", scale, rng), rng)
        going &= bernoulli(np.where(going, chance, 0.0), rep, at, rates.smooth, rng)
    return meetings


def _closes(rep: np.ndarray, created: np.ndarray, meetings: np.ndarray, depth: np.ndarray,
            rates: Rates, cal: Calendar, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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
    won = bernoulli(p_win, rep, if_won, rates.smooth, rng)
    return won, np.where(won, if_won, if_lost)


def _quarter_push(closed: np.ndarray, share: float, cal: Calendar, rng: np.random.Generator) -> np.ndarray:
    """Push ``share`` of the closes due within six weeks of their quarter's end into its last two weeks."""
    quarter_close = cal.quarter_close[cal.day(closed)]
    ahead = quarter_close - closed
    push = (ahead >= 0) & (ahead <= 30) & (rng.random(closed.size) < share)
    target = quarter_close + 1.0 - rng.random(closed.size) * 10.0
    return cal.skip_holidays(np.where(push, np.maximum(closed, target), closed), rng)


def _delay(kind: str, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, mean = DELAYS[kind]
    return (low + _gamma(mean, scale.size, rng)) * scale


def _gamma(mean: float, size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.gamma(2.0, mean / 2.0, size)
