"""The demo's sales org: teams of eight with a manager and a segment each, fake names, hire dates.

:func:`draw_roster` makes the ``reps`` table (without ``hire_date``, which :mod:`pipnb.demo.frames`
adds from the hire week) and the per-rep arrays the other generators index by rep number. Team sizes are
fixed so that R01-R24 keep their teams whatever the org's size: the case reps of
:data:`pipnb.demo.DEMO_CASES` always have five or more established teammates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TEAM_SIZE = 8
ACCOUNT_BOOK, OPP_ACCOUNTS = 200, 40   # accounts per rep; the first 40 are where opportunities come from

_TEAMS = ("East", "West", "Central", "North", "South", "Northeast", "Southeast", "Northwest",
          "Southwest", "Midwest", "Mountain", "Pacific")
SEGMENTS = ("SMB", "Mid-market", "Enterprise")
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


@dataclass(frozen=True)
class Roster:
    """The reps table (without ``hire_date``) and, per rep, team and segment index (into
    :data:`SEGMENTS`) and hire week (weeks since the first Monday, negative before it)."""

    frame: pd.DataFrame
    team: np.ndarray
    segment: np.ndarray
    hire_week: np.ndarray


def draw_roster(n_reps: int, weeks: int, rng: np.random.Generator) -> Roster:
    """Draw the org; the last rep of each team was hired 6 to 20 weeks before the end, the others
    half a year to eight years before the start."""
    sizes = _team_sizes(n_reps)
    team = np.repeat(np.arange(sizes.size), sizes)
    position = np.arange(n_reps) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ramping = position == sizes[team] - 1
    hire_week = np.where(ramping, rng.integers(weeks - 20, weeks - 5, n_reps),
                         -rng.integers(26, 8 * 52, n_reps))
    pick = rng.choice(len(_FIRST_NAMES) * len(_LAST_NAMES), sizes.size + n_reps, replace=False)
    names = np.array([f"{_FIRST_NAMES[i // len(_LAST_NAMES)]} {_LAST_NAMES[i % len(_LAST_NAMES)]}"
                      for i in pick], dtype=object)
    segment = team % len(SEGMENTS)
    frame = pd.DataFrame({
        "rep_id": _text([f"R{i + 1:02d}" for i in range(n_reps)]),
        "rep_name": _text(names[sizes.size:]),
        "team": _text(np.array(_team_names(sizes.size), dtype=object)[team]),
        "manager": _text(names[:sizes.size][team]),
        "segment": _text(np.array(SEGMENTS, dtype=object)[segment]),
    })
    return Roster(frame, team, segment, hire_week)


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


def _text(values: list[str] | np.ndarray) -> pd.Series:
    """A pandas ``str`` column (Arrow-backed, NaN for missing), like the validated tables."""
    return pd.Series(values, dtype="str")
