"""The demo's activities: the emails, calls and meetings that the opportunities and prospecting imply.

:func:`draw_activities` gives every opportunity an intro email, its meetings and the emails that follow
most of them, and cadence touches about weekly while it is open; reps also prospect (emails and calls to
accounts without an opportunity, a few emails at weekends). How much of it happens depends on each
rep's effort and touch rate (:class:`~pipnb.demo.profiles.Rates`) and on the holidays; activities after
the end of the data are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pipnb.demo.draws import weekly_events
from pipnb.demo.opportunities import Opps
from pipnb.demo.profiles import Rates
from pipnb.demo.team import ACCOUNT_BOOK, OPP_ACCOUNTS
from pipnb.demo.workdays import Calendar

EMAIL, CALL, MEETING = 0, 1, 2
CALL_SHARE = 0.08        # share of cadence touches that are calls
FOLLOWUP_EMAIL = 0.85    # chance of an email right after a meeting (times effort)
WEEKEND_SHARE = 0.15     # share of Friday prospecting emails sent on Saturday or Sunday instead


@dataclass(frozen=True)
class Acts:
    """One row per activity: rep, time, kind code, opportunity row (-1 for none), account number, and
    calendar days to add to the time (a few prospecting emails are sent from Friday into the weekend)."""

    rep: np.ndarray
    x: np.ndarray
    kind: np.ndarray
    opp: np.ndarray
    account: np.ndarray
    weekend: np.ndarray


def draw_activities(opps: Opps, rates: Rates, cal: Calendar, rng: np.random.Generator) -> Acts:
    """Draw all activities up to the end of the data, unsorted."""
    parts = [_intro_emails(opps, rng), _meeting_activities(opps, rates, cal, rng),
             _cadence_touches(opps, rates, cal, rng), _prospecting(rates, cal, rng)]
    columns = [np.concatenate([getattr(part, f.name) for part in parts]) for f in fields(Acts)]
    keep = columns[1] < cal.end_x
    return Acts(*(column[keep] for column in columns))


def _on_opps(opps: Opps, row: np.ndarray, x: np.ndarray, kind: np.ndarray) -> Acts:
    return Acts(opps.rep[row], x, kind, row, opps.account[row], np.zeros(row.size, dtype=np.int64))


def _intro_emails(opps: Opps, rng: np.random.Generator) -> Acts:
    """The email that opens each opportunity (it books the first meeting)."""
    row = np.arange(opps.rep.size)
    x = opps.created + rng.random(row.size) * 0.15
    return _on_opps(opps, row, x, np.full(row.size, EMAIL))


def _meeting_activities(opps: Opps, rates: Rates, cal: Calendar, rng: np.random.Generator) -> Acts:
    """Every meeting, and the email that usually follows it within hours."""
    row, level = np.nonzero(np.isfinite(opps.meetings))
    at = opps.meetings[row, level]
    rep = opps.rep[row]
    chance = FOLLOWUP_EMAIL * rates.effort[rep, cal.week(at)] * rates.follow_up[rep]
    followed = rng.random(row.size) < np.minimum(1.0, chance)
    after = at + 0.02 + rng.random(row.size) * 0.45
    return _on_opps(opps, np.concatenate([row, row[followed]]), np.concatenate([at, after[followed]]),
                    np.repeat([MEETING, EMAIL], [row.size, int(followed.sum())]))


def _cadence_touches(opps: Opps, rates: Rates, cal: Calendar, rng: np.random.Generator) -> Acts:
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


def _prospecting(rates: Rates, cal: Calendar, rng: np.random.Generator) -> Acts:
    """Emails and calls to accounts without an opportunity."""
    rep_e, x_e = weekly_events(rates.prospect_emails, rates.smooth, cal, rng)
    rep_c, x_c = weekly_events(rates.prospect_calls, rates.smooth, cal, rng)
    rep = np.concatenate([rep_e, rep_c])
    account = rep * ACCOUNT_BOOK + rng.integers(OPP_ACCOUNTS, ACCOUNT_BOOK, rep.size)
    kind = np.repeat([EMAIL, CALL], [rep_e.size, rep_c.size])
    x = np.concatenate([x_e, x_c])
    friday = (np.floor(x) % 5 == 4) & (kind == EMAIL)
    weekend = np.where(friday & (rng.random(x.size) < WEEKEND_SHARE), rng.integers(1, 3, x.size), 0)
    return Acts(rep, x, kind, np.full(rep.size, -1), account, weekend)
