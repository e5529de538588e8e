"""The change a peer group shows between two windows, and an expected level moved with it (issue 23).

A team-wide dip (a season, a bad quarter, a product problem) lowers every rep's volumes over the same weeks. A
review's status compares the rep with a level the plan fixed from the diagnosis window; that level must move with
the change the peers show over the same weeks, as the verdicts do, or the status judges the season rather than
the rep. :func:`team_change` measures the peers' change (with its uncertainty), :func:`moved` applies it to an
expected level and :func:`widen` folds its uncertainty into the rep's interval.

The rule: the change is applied **always**, its uncertainty folded into the interval the status reads, rather
than only when it is beyond noise. A threshold would leave a real but noisy dip uncorrected and make the status
jump when the peers' change crosses it; folding costs little, because the peers' pooled change rests on many more
events than the rep's own level (nine peers: about a third of the rep's standard error, so the rep's interval
widens by about 5%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipnb.schema import METRICS
from pipnb.stats.intervals import weekly_dispersion

Z95 = 1.959963984540054


def peer_values(frame: pd.DataFrame, peers: list[str], metric: str, column: str) -> np.ndarray:
    """``column`` of ``metric`` for each of ``peers`` from a pooled ``(rep_id, metric)`` frame, NaN for a peer or
    metric it does not hold: one lookup for the whole group."""
    if column not in frame.columns:
        return np.full(len(peers), np.nan)
    try:
        by_rep = frame[column].xs(metric, level=1)
    except KeyError:                                            # no rep has the metric
        return np.full(len(peers), np.nan)
    return by_rep.reindex(list(peers)).to_numpy(dtype=float, na_value=np.nan)


def peer_columns(frame: pd.DataFrame, peers: list[str], metric: str, columns: list[str]) -> np.ndarray:
    """:func:`peer_values` of several ``columns`` at once: one row per peer, one column per column asked for."""
    out = np.full((len(peers), len(columns)), np.nan)
    have = [i for i, c in enumerate(columns) if c in frame.columns]
    try:
        rows = frame[[columns[i] for i in have]].xs(metric, level=1) if have else None
    except KeyError:
        rows = None
    if rows is not None:
        out[:, have] = rows.reindex(list(peers)).to_numpy(dtype=float, na_value=np.nan)
    return out


@dataclass(frozen=True)
class TeamChange:
    """The peers' change in one metric from the diagnosis window (``before``: the window the targets were set
    from) to a review window (``now``): pooled levels, the change on the metric's scale (a ratio for counts and
    gaps; an odds ratio for ratio metrics) with its 95% interval, its standard error on the log scale and the
    number of peers behind it. No peers (or no data): no change, no uncertainty."""

    before: float = np.nan
    now: float = np.nan
    change: float = 1.0
    low: float = 1.0
    high: float = 1.0
    se: float = 0.0
    peers: int = 0


def team_change(metric: str, before: pd.DataFrame | None, now: pd.DataFrame | None,
                peers: list[str]) -> TeamChange:
    """The change the peer group shows in ``metric`` between two pooled windows (``(rep_id, metric)`` frames).

    The estimate pools the peers' numerators and denominators in each window: the ratio of the pooled levels
    (counts: events per week; gaps: days per gap) or, for a ratio metric, the odds ratio of the pooled
    proportions (odds keep an adjusted rate inside 0-100% and treat a rate near either end as harder to move).
    Its standard error is the larger of the model's (Poisson: ``1/N1 + 1/N0``; binomial: the four-cell
    formula; none for gaps) and the spread of the peers' own changes (their variance over ``k``, ``k >= 2``):
    peers who move differently, or weeks that move together, widen it.
    """
    if before is None or now is None or not peers:
        return TeamChange()
    model = METRICS[metric].model or "count"
    parts = np.column_stack([peer_columns(frame, peers, metric, ["numerator", "denominator"])
                             for frame in (before, now)])
    keep = np.all(np.isfinite(parts), axis=1) & (parts[:, 1] > 0) & (parts[:, 3] > 0)
    totals = parts[keep].sum(axis=0) if keep.any() else np.zeros(4)
    own = [_link(model, n1, d1, half=True) - _link(model, n0, d0, half=True) for n0, d0, n1, d1 in parts[keep]]
    n0, d0, n1, d1 = totals
    if not own or n0 <= 0 or n1 <= 0:
        return TeamChange()
    est = _link(model, n1, d1) - _link(model, n0, d0)
    var = {"count": 1 / n1 + 1 / n0,
           "ratio": sum(1 / max(v, 0.5) for v in (n1, d1 - n1, n0, d0 - n0))}.get(model, 0.0)
    own = np.asarray(own)[np.isfinite(own)]
    if len(own) >= 2:
        var = max(var, float(np.var(own, ddof=1)) / len(own))
    se = float(np.sqrt(var))
    before_level, now_level = n0 / d0, n1 / d1
    return TeamChange(before=float(before_level), now=float(now_level), change=float(np.exp(est)),
                      low=float(np.exp(est - Z95 * se)), high=float(np.exp(est + Z95 * se)), se=se, peers=len(own))


def _link(model: str, numerator: float, denominator: float, *, half: bool = False) -> float:
    """Log of a level (counts, gaps), or log-odds of a proportion (kept inside (0, 1) by half an event)."""
    if model == "ratio":
        p = min(max(numerator, 0.5 if half else 1e-9), denominator - (0.5 if half else 1e-9)) / denominator
        return float(np.log(p / (1 - p))) if 0 < p < 1 else np.nan
    level = (numerator + (0.5 if half else 0.0)) / denominator
    return float(np.log(level)) if level > 0 else np.nan


def moved(model: str, expected: float, change: TeamChange) -> float:
    """An expected level moved by the peers' change: times the ratio (counts, gaps), or its odds times the odds
    ratio (ratio metrics)."""
    if not np.isfinite(expected) or change.change == 1.0:
        return float(expected)
    if model == "ratio":
        if not 0 < expected < 1:
            return float(expected)
        odds = expected / (1 - expected) * change.change
        return float(odds / (1 + odds))
    return float(expected * change.change)


def widen(model: str, level: float, low: float, high: float, change: TeamChange) -> tuple[float, float]:
    """The rep's 95% interval widened by the uncertainty of the peers' change, on the scale the change is
    measured on (log, or log-odds): each half-width becomes ``sqrt(half**2 + (1.96 se)**2)``. An end at the edge
    of the scale (0, or 100%) stays there."""
    if change.se <= 0 or not np.isfinite(level):
        return float(low), float(high)
    if model == "ratio":
        fwd, back = (lambda p: np.log(p / (1 - p))), (lambda x: 1 / (1 + np.exp(-x)))
        inside = 0 < level < 1
    else:
        fwd, back = np.log, np.exp
        inside = level > 0
    if not inside:
        return float(low), float(high)
    centre, extra = fwd(level), (Z95 * change.se) ** 2
    out = []
    for end, sign in ((low, -1), (high, 1)):
        edge = (end <= 0) if sign < 0 else (model == "ratio" and end >= 1)
        if edge or not np.isfinite(end):
            out.append(float(end))
            continue
        half = abs(fwd(end) - centre)
        out.append(float(back(centre + sign * np.sqrt(half ** 2 + extra))))
    return out[0], out[1]


def count_dispersion(weekly: pd.DataFrame, season: pd.DataFrame | None, metric: str) -> float:
    """The week-to-week dispersion of the rep's weekly numerators of ``metric``, read relative to the peers' weeks
    (:func:`deseasoned`): a dip or a busy week every rep shares is the team's, not the rep's noise. The one home of
    that reading, for the plain statuses and the rebaselined ones alike."""
    if metric not in weekly:
        return weekly_dispersion(np.array([]))
    rep = deseasoned(weekly[[metric]], season)
    return weekly_dispersion(rep[metric].fillna(0.0).to_numpy(float))


def deseasoned(weekly: pd.DataFrame, season: pd.DataFrame | None) -> pd.DataFrame:
    """The rep's weekly counts divided by the peers' weekly index (their week's total over their mean week), per
    metric: what is left once the weeks every rep shares are taken out. Weeks where the peers have nothing, and
    metrics without peers, stay as they are."""
    if season is None or season.empty:
        return weekly
    out = weekly.copy()
    for metric in out.columns.intersection(season.columns):
        peers = season[metric].reindex(out.index).astype(float)
        index = peers / peers.mean()
        out[metric] = out[metric] / index.where(index > 0).fillna(1.0)
    return out
