"""What drives each demo rep: the typical rep's rates, peers' variation around them, and the cases.

:func:`draw_rates` gives every rep its traits (effort, opportunity and prospecting volume, touch cadence,
meeting chances, closing skill, deal size, sales cycle), ramps new hires up over ``RAMP_WEEKS``, and
then overwrites the five case reps of :data:`DEMO_CASES` with the typical rep's traits and their case.
The result, :class:`Rates`, is all the opportunity and activity generators know about a rep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipnb.demo.team import Roster
from pipnb.demo.workdays import EXTRA_WEEKS

DEMO_CASES: dict[str, str] = {
    "responder": "R17",
    "article": "R07",
    "volume": "R12",
    "non_responder": "R14",
    "stale": "R20",
}
"""Case → rep id of the reps that show the article's situations (the same for every seed and size).

The responder is in Central, not in East with the article's rep (R07), who is weak in the same ways: as one of
only six peers, a rep that weak widens the spread the noise-aware rule expects between reps so much that a
second one in the team is no shortfall beyond noise, and gets no plan (R03, the responder until issue 22, never
was one for seeds 0-5). In Central, beside the stale rep (who sends more emails, not fewer), the responder's
emails are short of peers beyond noise for every seed tried (z from -2.9 to -6.8 for seeds 0-5; -4.7 for the
default), and R17 keeps the other cases as they were (the article's rep short on the win rate and the follow-up
ratio, the stale rep on touches)."""

PLAN_WEEKS = 12          # the responder's and non-responder's plan covers the last 12 weeks
WEAK_WEEKS = 30  # weak long before the plan: the diagnosis window and the baseline before it
RAMP_WEEKS = 13

# -- the typical rep (peers vary around these) ------------------------------------------------------
OPPS_PER_WEEK = 3.0
PROSPECT_EMAILS_PER_WEEK = 31.0
PROSPECT_CALLS_PER_WEEK = 2.5
TOUCH_GAP_DAYS = 7.5     # calendar days between cadence touches on an open opportunity
PEER_SPREAD = 0.08       # sd of the log of each rep's effort, opportunity, prospecting and touch rates
P_FIRST, P_SECOND, P_MORE = 0.78, 0.70, 0.50
_DEAL_MEDIAN = np.array([12_000.0, 40_000.0, 140_000.0])   # by segment (team.SEGMENTS)
_CYCLE = np.array([0.8, 1.0, 1.3])                          # by segment

# the cases: trait multipliers (effort, opps, prospect, touch, follow_up, skill, linger) or chances
_CASE_TRAITS = {
    "article": {"effort": 0.5, "p_second": 0.5, "p_more": 0.3, "skill": 0.33},
    "volume": {"opps": 0.4, "prospect": 0.6},
    "stale": {"touch": 0.15, "follow_up": 0.3, "prospect": 2.0, "linger": 1.6},
}
_WEAK = {"effort": 0.5, "p_second": 0.45, "p_more": 0.35}       # responder and non-responder
_IMPROVED = {"effort": 0.85, "p_second": 0.75, "p_more": 0.5}   # the responder, once the plan runs


@dataclass(frozen=True)
class Rates:
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


def draw_rates(roster: Roster, weeks: int, rng: np.random.Generator) -> Rates:
    """Draw every rep's traits, set the case reps' and turn them into weekly rates."""
    traits = _peer_traits(roster, weeks, rng)
    _set_cases(traits, roster, weeks)
    week = np.arange(weeks + EXTRA_WEEKS)
    ramp = np.clip((week[None, :] - roster.hire_week[:, None] + 0.5) / RAMP_WEEKS, 0.0, 1.0)
    effort, prospect = traits["effort"], traits["prospect"][:, None]
    return Rates(
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


def _peer_traits(roster: Roster, weeks: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
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


def _set_cases(traits: dict[str, np.ndarray], roster: Roster, weeks: int) -> None:
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
