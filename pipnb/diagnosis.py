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
from pipnb.metrics import weekly_panel, window_metrics
from pipnb.peers import judged_reps, peer_ids, scorecard
from pipnb.policy import Policy, resolve_policy
from pipnb.schema import DRIVER_METRICS, FUNNEL_METRICS, METRICS, OUTCOME_METRICS

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
    prior: dict[str, float] = field(default_factory=dict)  # the rep's values over the window before

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


def diagnose(data: SalesData, rep_id: str, as_of: str | pd.Timestamp | None = None, weeks: int | None = None, *,
             peer_by: str | None = None, win_rate_basis: str | None = None, policy: Policy | str | None = None,
             panel: pd.DataFrame | None = None) -> Diagnosis:
    """Diagnose one rep against their peers.

    Parameters
    ----------
    data
        Validated sales data.
    rep_id
        The rep to diagnose.
    as_of
        Last day of the window (default: last day with data).
    weeks, peer_by, win_rate_basis
        Override the policy's window length, peer grouping and win-rate basis (as in
        :func:`pipnb.scorecard`, which the diagnosis shares: one number, one answer).
    policy
        The settings (default ``params/policy.yaml``).
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
    policy = resolve_policy(policy).with_overrides(diagnosis_weeks=weeks, peer_by=peer_by,
                                                   win_rate_basis=win_rate_basis)
    card = scorecard(data, as_of=as_of, policy=policy, panel=panel)
    mine = card[card["rep_id"] == rep["rep_id"]].set_index("metric")
    outcomes = mine.loc[[m for m in OUTCOME_METRICS if m in mine.index]].reset_index()
    drivers, gap = _drivers(card, mine, str(rep["rep_id"]))
    areas = drivers[drivers["classification"] == "shortfall"].sort_values(
        "explains", ascending=False, na_position="last", kind="stable")["metric"].tolist()
    attrs = card.attrs
    prior = _prior_values(panel, str(rep["rep_id"]), attrs["window_start"], policy)
    return Diagnosis(
        rep_id=str(rep["rep_id"]), rep_name=str(rep["rep_name"]), team=str(rep["team"]),
        as_of=pd.Timestamp(attrs["as_of"]), window_start=attrs["window_start"], window_end=attrs["window_end"],
        weeks=policy.diagnosis_weeks, peer_by=policy.peer_by, win_rate_basis=policy.win_rate_basis,
        n_peers=int(mine["n_peers"].max()) if mine["n_peers"].notna().any() else 0,
        outcomes=outcomes, drivers=drivers, improvement_areas=areas, wins_gap=gap,
        data_fingerprint=data.fingerprint(), source=data.source, card=card, prior=prior)


def _prior_values(panel: pd.DataFrame, rep_id: str, window_start: pd.Timestamp, policy: Policy) -> dict[str, float]:
    """The rep's values over the equally long window before the diagnosis window (one that did not select
    them): where a plan's glide path starts, so regression to the mean is not counted as progress."""
    end = pd.Timestamp(window_start) - pd.Timedelta(weeks=1)
    start = end - pd.Timedelta(weeks=policy.diagnosis_weeks - 1)
    rows = panel[(panel["rep_id"] == rep_id) & (panel["week"] >= start) & (panel["week"] <= end)]
    if rows.empty:
        return {}
    pooled = window_metrics(rows, start, end, win_rate_basis=policy.win_rate_basis)
    weeks = rows["week"].nunique()
    return {m: float(v) for m, v in zip(pooled["metric"], pooled["value"], strict=True)
            if np.isfinite(v) and weeks >= policy.diagnosis_weeks // 2}


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
            "rationale": METRICS[metric].dismissed if classification == "dismissed" else METRICS[metric].rationale,
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
        logs = {k: np.log(factors.loc[rep_id, k] / factors.loc[peers, k].median()) for k in FUNNEL_METRICS}
    if not np.isfinite(total) or total >= 0:
        return {k: 0.0 for k in DRIVER_METRICS}, float(total) if np.isfinite(total) else np.nan
    shares = {k: float(np.clip(v / total, 0, 1)) if np.isfinite(v) and v < 0 else 0.0 for k, v in logs.items()}
    # Emails and touches act through the funnel's stages and closing, so they can only account for what
    # the funnel stages leave unexplained; their slope is estimated across every judged rep (more stable
    # than one team). Their two estimates may overlap.
    remainder = max(0.0, 1.0 - sum(shares.values()))
    judged = judged_reps(card, besides=rep_id)
    for metric in (m for m in DRIVER_METRICS if METRICS[m].funnel_stage is None):
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

