"""Random draws shared by the demo's generators: noisy for peers, systematic for the case reps.

Peers get Poisson counts and independent Bernoulli draws around their rates. The case reps (``smooth``
in :class:`~pipnb.demo.profiles.Rates`) get systematic sampling instead, whose running total stays within
one of its expectation, so that every seed shows their case in any window the tests and notebooks read.
"""

from __future__ import annotations

import numpy as np

from pipnb.demo.workdays import Calendar


def bernoulli(p: np.ndarray, rep: np.ndarray, order: np.ndarray, smooth: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Independent draws; for the case reps, systematic in the time ``order`` of their events."""
    hit = rng.random(p.size) < p
    for r in np.flatnonzero(smooth):
        rows = np.flatnonzero(rep == r)
        rows = rows[np.argsort(order[rows], kind="stable")]
        hit[rows] = _systematic(p[rows], rng) > 0
    return hit


def weekly_events(rate: np.ndarray, smooth: np.ndarray, cal: Calendar,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Events at ``rate`` per rep-week over the data's weeks, thinned on holidays: (rep, time)."""
    counts = _counts(rate[:, :cal.weeks], smooth, rng)
    slot = np.repeat(np.arange(counts.size), counts.ravel())
    rep, week = np.divmod(slot, cal.weeks)
    x = week * 5.0 + rng.random(slot.size) * 5.0
    keep = rng.random(slot.size) < cal.factor[cal.day(x)]
    return rep[keep], x[keep]


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
