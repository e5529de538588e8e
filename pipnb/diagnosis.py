"""Diagnosis: which outcome falls short for one rep, and which drivers explain it.

The article's first step. Outcomes first (win rate leads), then the driver drill-down: each driver is a
*shortfall*, a *strength*, or *dismissed* as the issue ("opportunities are not low, dismissing volume as
the issue"), with its business rationale and the supporting numbers against peers. Improvement areas are
the shortfall drivers ranked by how much of the gap in wins they explain.

How much a driver explains: wins per week factor exactly into the funnel
``opportunities × (first meetings ÷ opportunities) × follow-up ratio × (wins ÷ follow-up meetings)``,
so the log of the rep's wins ÷ the peer median's splits into one log ratio per factor; a factor's share
of the gap is its log ratio over the total. Email volume and days between touches sit outside that
product and act through it; their share is estimated from how wins vary with them across every judged
rep (a log-log slope, floored at 0) and capped at the part of the gap the funnel stages leave unexplained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipnb.data import SalesData
from pipnb.metrics import weekly_panel
from pipnb.peers import judged_reps, peer_ids, scorecard
from pipnb.schema import DRIVER_METRICS, METRICS, OUTCOME_METRICS

RATIONALE = {
    "followup_meeting_ratio": "Deals move forward when a second meeting brings in more stakeholders. A low "
                              "ratio means opportunities stall after the first conversation, and that shows "
                              "up directly in the win rate.",
    "first_meetings_per_week": "First meetings are the entry to the funnel: every deal that can be won "
                               "starts with one. Fewer first meetings means fewer deals to win.",
    "opps_created_per_week": "Opportunity volume sets how many deals can be won. If it matches peers, "
                             "volume is not the problem.",
    "avg_days_between_touches": "Touching every open opportunity at least every 14 days keeps control of the "
                                "deal and shows early which ones are dead, so they do not drag the averages.",
    "emails_per_week": "Emails do not close deals, but they are a good proxy for general selling effort: "
                       "following up on meetings and checking in on opportunities.",
}
DISMISSED = {
    "followup_meeting_ratio": "Opportunities progress to a second meeting as often as with peers, so "
                              "progression is not the issue.",
    "first_meetings_per_week": "First meetings match peers, so getting in front of customers is not the issue.",
    "opps_created_per_week": "Opportunities are not low, dismissing volume as the issue.",
    "avg_days_between_touches": "Opportunities are touched as often as peers touch theirs, so deal control "
                                "is not the issue.",
    "emails_per_week": "Email volume matches peers, so selling effort is not the issue.",
}
FUNNEL = ("opps_created_per_week", "first_meetings_per_week", "followup_meeting_ratio")


@dataclass
class Diagnosis:
    """One rep's diagnosis over one window.

    Attributes
    ----------
    outcomes
        Outcome metrics (win rate first) with value, peer benchmarks, flag and reason.
    drivers
        Driver metrics with ``classification`` (shortfall / dismissed / strength), ``rationale``,
        ``evidence`` and ``explains`` (share of the gap in wins, 0-1, NaN when not estimable).
    improvement_areas
        Shortfall drivers, most explanatory first.
    """

    rep_id: str
    rep_name: str
    team: str
    as_of: pd.Timestamp
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    weeks: int
    peer_by: str
    win_rate_basis: str
    n_peers: int
    outcomes: pd.DataFrame
    drivers: pd.DataFrame
    improvement_areas: list[str]
    wins_gap: float                         # log(rep wins per week ÷ peer median)
    data_fingerprint: str
    source: str
    card: pd.DataFrame = field(repr=False)  # the whole team's scorecard (for peer distributions)

    @property
    def history_start(self) -> pd.Timestamp:
        """Where trend charts start: six months before the window ends."""
        return pd.Timestamp(self.window_end) - pd.Timedelta(weeks=26)

    @property
    def needs_plan(self) -> bool:
        """Whether an outcome or a driver falls short of peers."""
        return bool(self.improvement_areas) or bool((self.outcomes["flag"] == "shortfall").any())

    def summary(self) -> str:
        """Two or three sentences a sales manager reads first."""
        short = self.outcomes[self.outcomes["flag"] == "shortfall"]
        lead = ("; ".join(short["reason"]) if len(short) else
                "No outcome falls short of peers over the window")
        if self.improvement_areas:
            labels = [METRICS[m].label.lower() for m in self.improvement_areas]
            areas = f"Improvement areas, most important first: {', '.join(labels)}."
        else:
            areas = "No driver falls short of peers."
        dismissed = self.drivers.loc[self.drivers["classification"] == "dismissed", "metric"]
        rest = f" Dismissed as the issue: {', '.join(METRICS[m].label.lower() for m in dismissed)}." \
            if len(dismissed) else ""
        return f"{lead}. {areas}{rest}"


def diagnose(data: SalesData, rep_id: str, as_of: str | pd.Timestamp | None = None, weeks: int = 12, *,
             peer_by: str = "team", win_rate_basis: str = "all", panel: pd.DataFrame | None = None
             ) -> Diagnosis:
    """Diagnose one rep against their peers.

    Parameters
    ----------
    data
        Validated sales data.
    rep_id
        The rep to diagnose.
    as_of
        Last day of the window (default: last day with data).
    weeks
        Window length in weeks.
    peer_by, win_rate_basis
        As in :func:`pipnb.scorecard`; the diagnosis defaults to the article's "win rate on all opps".
    panel
        A precomputed weekly panel (one per batch).

    Returns
    -------
    Diagnosis

    Raises
    ------
    UnknownRepError
        When ``rep_id`` is not in the data.
    """
    rep = data.rep(rep_id)
    panel = weekly_panel(data) if panel is None else panel
    card = scorecard(data, as_of=as_of, weeks=weeks, peer_by=peer_by, win_rate_basis=win_rate_basis,
                     panel=panel)
    mine = card[card["rep_id"] == rep["rep_id"]].set_index("metric")
    outcomes = mine.loc[[m for m in OUTCOME_METRICS if m in mine.index]].reset_index()
    drivers, gap = _drivers(card, mine, str(rep["rep_id"]))
    areas = drivers[drivers["classification"] == "shortfall"].sort_values(
        "explains", ascending=False, na_position="last", kind="stable")["metric"].tolist()
    attrs = card.attrs
    return Diagnosis(
        rep_id=str(rep["rep_id"]), rep_name=str(rep["rep_name"]), team=str(rep["team"]),
        as_of=pd.Timestamp(attrs["as_of"]), window_start=attrs["window_start"], window_end=attrs["window_end"],
        weeks=weeks, peer_by=peer_by, win_rate_basis=win_rate_basis,
        n_peers=int(mine["n_peers"].max()) if mine["n_peers"].notna().any() else 0,
        outcomes=outcomes, drivers=drivers, improvement_areas=areas, wins_gap=gap,
        data_fingerprint=data.fingerprint(), source=data.source, card=card)


def _drivers(card: pd.DataFrame, mine: pd.DataFrame, rep_id: str) -> tuple[pd.DataFrame, float]:
    explains, gap = _explained_shares(card, rep_id)
    rows = []
    for metric in DRIVER_METRICS:
        if metric not in mine.index:
            continue
        row = mine.loc[metric]
        classification = {"shortfall": "shortfall", "strength": "strength"}.get(row["flag"], "dismissed")
        if row["flag"] in ("unavailable", "no data", "ramping"):
            classification = "not judged"
        rows.append({
            "metric": metric, "label": METRICS[metric].label, "classification": classification,
            "value": row["value"], "numerator": row["numerator"], "denominator": row["denominator"],
            "peer_median": row["peer_median"], "peer_p25": row["peer_p25"], "peer_p75": row["peer_p75"],
            "percentile": row["percentile"], "explains": explains.get(metric, np.nan),
            "rationale": RATIONALE[metric] if classification != "dismissed" else DISMISSED[metric],
            "evidence": row["reason"],
        })
    return pd.DataFrame(rows), gap


def _explained_shares(card: pd.DataFrame, rep_id: str) -> tuple[dict[str, float], float]:
    """Share of the log gap in wins per week that each driver explains (see the module docstring)."""
    wide = card.pivot(index="rep_id", columns="metric", values="value")
    needed = ("opps_created_per_week", "first_meetings_per_week", "followup_meeting_ratio", "win_rate")
    if not all(m in wide for m in needed):
        return {}, np.nan
    counts = card.pivot(index="rep_id", columns="metric", values="numerator")
    weeks = card[card["metric"] == "opps_created_per_week"].set_index("rep_id")["denominator"]
    factors = pd.DataFrame({
        "opps_created_per_week": wide["opps_created_per_week"],
        "first_meetings_per_week": wide["first_meetings_per_week"] / wide["opps_created_per_week"],
        "followup_meeting_ratio": wide["followup_meeting_ratio"],
        "closing": counts["win_rate"] / weeks / (wide["first_meetings_per_week"] * wide["followup_meeting_ratio"]),
    })
    wins = counts["win_rate"] / weeks
    peers = peer_ids(card, rep_id)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.log(wins[rep_id] / wins[peers].median())
        logs = {k: np.log(factors.loc[rep_id, k] / factors.loc[peers, k].median()) for k in FUNNEL}
    if not np.isfinite(total) or total >= 0:
        return {k: 0.0 for k in DRIVER_METRICS}, float(total) if np.isfinite(total) else np.nan
    shares = {k: float(np.clip(v / total, 0, 1)) if np.isfinite(v) and v < 0 else 0.0 for k, v in logs.items()}
    # Emails and touches act through the funnel's stages and closing, so they can only account for what
    # the funnel stages leave unexplained; their slope is estimated across every judged rep (more stable
    # than one team). Their two estimates may overlap.
    remainder = max(0.0, 1.0 - sum(shares.values()))
    judged = judged_reps(card, besides=rep_id)
    for metric in ("emails_per_week", "avg_days_between_touches"):
        if metric in wide:
            share = _elasticity_share(wide[metric], wins, judged, rep_id, total, METRICS[metric].higher_is_better)
            shares[metric] = min(share, remainder) if np.isfinite(share) else np.nan
    return shares, float(total)


def _elasticity_share(driver: pd.Series, wins: pd.Series, peers: pd.Index, rep_id: str, total: float,
                      higher_is_better: bool) -> float:
    """Gap share of a driver outside the funnel, from the peer log-log slope of wins on the driver."""
    sample = pd.DataFrame({"x": driver[peers], "y": wins[peers]}).replace(0, np.nan).dropna()
    if len(sample) < 4 or not np.isfinite(driver[rep_id]) or driver[rep_id] <= 0:
        return np.nan
    slope = np.polyfit(np.log(sample["x"]), np.log(sample["y"]), 1)[0]
    slope = max(slope, 0.0) if higher_is_better else min(slope, 0.0)
    contribution = slope * np.log(driver[rep_id] / sample["x"].median())
    return float(np.clip(contribution / total, 0, 1)) if contribution < 0 else 0.0

