"""Diagnosis: which outcome falls short for one rep, and which drivers explain it.

The article's first step. Outcomes first (win rate leads), then the driver drill-down: each driver carries
the scan's finding for it (:mod:`pipnb.findings`: a *shortfall*, a *strength*, *in line* with peers, *below
peers but within noise* (not a proven shortfall), *unavailable* with the reason ...), its business rationale
and a sentence rendered from its numbers against peers. Improvement areas are the shortfall drivers ranked by
how much of the gap in wins they explain.

**Who needs a plan.** A rep needs a plan only with a noise-aware shortfall (the scan's one rule, at the
policy's false-flag budget) on the win rate or on a driver. A shortfall on deal size or sales cycle is
reported, never a reason for a plan on its own; pipeline velocity is context and never flagged.

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
from pipnb.display import card_html, diagnosis_facts, short_repr
from pipnb.errors import DataError
from pipnb.findings import (
    BELOW_MARGIN,
    BELOW_NOISE,
    IN_LINE,
    NO_RECORDS,
    SHORTFALL,
    STRENGTH,
    UNAVAILABLE,
    finding_sentence,
)
from pipnb.fingerprint import fingerprint_until
from pipnb.metrics import data_window, to_days, touch_gaps, untouched_days, weekly_panel, window_metrics
from pipnb.peers import judged_reps, peer_ids, scorecard
from pipnb.policy import Policy, resolve_policy
from pipnb.schema import DRIVER_METRICS, FUNNEL_METRICS, METRICS, OUTCOME_METRICS, STALE_DAYS
from pipnb.sources import accepts_path


@dataclass
class Diagnosis:
    """One rep's diagnosis over one window.

    Attributes
    ----------
    outcomes
        Outcome metrics (win rate first): the scorecard's finding rows (value, counts, peer benchmarks,
        percentile, z, flag limit, ``flag``, ``why_unavailable``, ``reason``) and ``finding``, the sentence
        rendered from them.
    drivers
        Driver metrics with ``classification`` (the scorecard's flag: shortfall, strength, in line, below peers
        within noise, unavailable ...; see :mod:`pipnb.findings`), ``rationale`` (why the metric matters),
        ``finding`` (the sentence rendered from its numbers), ``evidence`` (the finding's full reason),
        ``why_unavailable``, ``n_peers``, ``z``, ``flag_limit`` and ``explains`` (share of the gap in wins, 0-1,
        NaN when not estimable).
    improvement_areas
        Shortfall drivers, most explanatory first.
    prior
        The rep's values over the equally long window before (where a plan's glide path starts).
    cost
        The shortfall in wins per quarter and in money, with an interval (:func:`gap_cost`).
    dead, touch_days
        The rep's open opportunities untouched for more than 14 days (:func:`dead_opportunities`), and the
        average days between touches over the window with and without them.
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
    cost: dict[str, float] = field(default_factory=dict)   # the shortfall in wins per quarter and in money
    dead: pd.DataFrame | None = field(default=None, repr=False)  # open deals untouched more than 14 days
    touch_days: tuple[float, float] = (np.nan, np.nan)      # days between touches with / without them

    def __repr__(self) -> str:
        return short_repr("Diagnosis", diagnosis_facts(self))

    def _repr_html_(self) -> str:
        tables = [("outcomes", self.outcomes.drop(columns=["reason"], errors="ignore")),
                  ("drivers", self.drivers[["metric", "classification", "rationale"]])]
        return card_html("Diagnosis", diagnosis_facts(self), tables)

    @property
    def history_start(self) -> pd.Timestamp:
        """Where trend charts start: six months before the window ends."""
        return pd.Timestamp(self.window_end) - pd.Timedelta(weeks=26)

    @property
    def needs_plan(self) -> bool:
        """Whether the rep needs a plan: a noise-aware shortfall on the win rate or on a driver (never on deal
        size, sales cycle or pipeline velocity alone)."""
        win = self.outcomes[self.outcomes["metric"] == "win_rate"]
        return bool(self.improvement_areas) or bool((win["flag"] == SHORTFALL).any())

    def summary(self) -> str:
        """Two or three sentences a sales manager reads first, each rendered from a finding."""
        short = self.outcomes[self.outcomes["flag"] == SHORTFALL]
        lead = ("; ".join(short["finding"]) if len(short) else
                "No outcome falls short of peers beyond noise over the window")
        if self.improvement_areas:
            labels = [METRICS[m].label.lower() for m in self.improvement_areas]
            areas = f"Improvement areas, most important first: {', '.join(labels)}."
        else:
            areas = "No driver falls short of peers beyond noise."
        rest = "".join(f" {words}: {', '.join(labels)}." for words, labels in driver_groups(self.drivers))
        return f"{lead}. {areas}{rest}"


@accepts_path
def diagnose(data: SalesData, rep_id: str, as_of: str | pd.Timestamp | None = None, weeks: int | None = None, *,
             peer_by: str | None = None, win_rate_basis: str | None = None, policy: Policy | str | None = None,
             panel: pd.DataFrame | None = None, card: pd.DataFrame | None = None) -> Diagnosis:
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
    card
        The whole team's :func:`pipnb.scorecard` for this window and policy, precomputed (a batch computes it
        once and hands it to each diagnosis with the rep's and peers' slice of the data, see
        :mod:`pipnb.batch.bundle`); used only when its window and policy are this diagnosis's, else computed
        here. The drivers' slopes are estimated across the whole team, so a slice needs it.

    Returns
    -------
    Diagnosis

    Raises
    ------
    UnknownRepError
        When ``rep_id`` is not in the data.
    DataError
        When the rep has no record in the window (nothing to diagnose; see :func:`check_judged`).
    """
    rep = data.rep(rep_id)
    panel = weekly_panel(data) if panel is None else panel
    policy = resolve_policy(policy).with_overrides(diagnosis_weeks=weeks, peer_by=peer_by,
                                                   win_rate_basis=win_rate_basis)
    if not _same_window(card, data, as_of, policy, str(rep["rep_id"])):
        card = scorecard(data, as_of=as_of, policy=policy, panel=panel)
    check_judged(card, str(rep["rep_id"]))
    mine = card[card["rep_id"] == rep["rep_id"]].set_index("metric")
    outcomes = mine.loc[[m for m in OUTCOME_METRICS if m in mine.index]].reset_index()
    outcomes["finding"] = [finding_sentence(r, margin=policy.margin) for r in outcomes.to_dict("records")]
    drivers, gap = _drivers(card, mine, str(rep["rep_id"]), policy.margin)
    areas = drivers[drivers["classification"] == "shortfall"].sort_values(
        "explains", ascending=False, na_position="last", kind="stable")["metric"].tolist()
    attrs = card.attrs
    prior = _prior_values(panel, str(rep["rep_id"]), attrs["window_start"], policy)
    end = min(pd.Timestamp(attrs["window_end"]), data.period[1].normalize())
    dead, touch_days = _dead_and_touch_days(data, str(rep["rep_id"]), attrs["window_start"], end)
    return Diagnosis(
        rep_id=str(rep["rep_id"]), rep_name=str(rep["rep_name"]), team=str(rep["team"]),
        as_of=pd.Timestamp(attrs["as_of"]), window_start=attrs["window_start"], window_end=attrs["window_end"],
        weeks=policy.diagnosis_weeks, peer_by=policy.peer_by, win_rate_basis=policy.win_rate_basis,
        n_peers=int(mine["n_peers"].max()) if mine["n_peers"].notna().any() else 0,
        outcomes=outcomes, drivers=drivers, improvement_areas=areas, wins_gap=gap,
        data_fingerprint=fingerprint_until(data, attrs["window_end"]), source=data.source, card=card, prior=prior,
        cost=gap_cost(card, str(rep["rep_id"])), dead=dead, touch_days=touch_days)


def check_judged(card: pd.DataFrame, rep_id: str) -> None:
    """Raise a one-line :class:`DataError` when the scorecard has no record of ``rep_id`` in its window (a rep
    listed in the reps file who logged nothing): there is nothing to diagnose, and zeros would be a false
    finding."""
    rows = card[card["rep_id"] == rep_id]
    if "why_unavailable" in rows and (rows["why_unavailable"] == NO_RECORDS).any():
        attrs = card.attrs
        raise DataError(f"rep '{rep_id}' has {NO_RECORDS} {attrs['window_start']:%Y-%m-%d} to "
                        f"{attrs['window_end']:%Y-%m-%d} (no opportunity created or closed, no activity): not judged, "
                        "nothing to diagnose; check the export, or diagnose an earlier window with --as-of")


def driver_groups(drivers: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """The drivers that are not shortfalls, grouped by what their numbers show, as (words, labels): in line
    with peers; lower than peers but within noise; better than peers; unavailable. Words come from the
    classification, so a driver below peers is never called in line."""
    groups = [(IN_LINE, "In line with peers"),
              (BELOW_NOISE, "Below peers, but within the spread expected between reps (not a proven shortfall)"),
              (BELOW_MARGIN, "Below peers beyond noise, but within the policy's margin"),
              (STRENGTH, "Better than peers"), (UNAVAILABLE, "Unavailable")]
    out = []
    for flag, words in groups:
        labels = drivers.loc[drivers["classification"] == flag, "label"].str.lower().tolist() if len(drivers) else []
        if labels:
            out.append((words, labels))
    return out


def _same_window(card: pd.DataFrame | None, data: SalesData, as_of, policy: Policy, rep_id: str) -> bool:
    """Whether a precomputed scorecard is the one :func:`pipnb.scorecard` would give here."""
    if card is None or card.attrs.get("policy") != policy or rep_id not in card.attrs.get("peers", {}):
        return False
    window = data_window(data, as_of, policy.diagnosis_weeks)
    return (pd.Timestamp(card.attrs["as_of"]), pd.Timestamp(card.attrs["window_start"])) == (window.as_of, window.start)


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


DRIVER_COLUMNS = ["metric", "label", "classification", "value", "numerator", "denominator", "peer_median",
                  "peer_p25", "peer_p75", "n_peers", "percentile", "z", "flag_limit", "why_unavailable", "explains",
                  "rationale", "finding", "evidence"]


def _drivers(card: pd.DataFrame, mine: pd.DataFrame, rep_id: str, margin: float) -> tuple[pd.DataFrame, float]:
    """Each driver's finding (the scorecard row: its classification is the row's flag), with its business
    rationale, the sentence rendered from its numbers, and the share of the win gap it explains."""
    explains, gap = _explained_shares(card, rep_id)
    rows = []
    for metric in DRIVER_METRICS:
        if metric not in mine.index:
            continue
        row = mine.loc[metric].to_dict() | {"metric": metric}
        rows.append({
            **{k: row.get(k, np.nan) for k in DRIVER_COLUMNS if k in row},
            "label": METRICS[metric].label, "classification": row["flag"],
            "why_unavailable": row.get("why_unavailable") or "", "explains": explains.get(metric, np.nan),
            "rationale": METRICS[metric].rationale, "finding": finding_sentence(row, margin=margin),
            "evidence": row["reason"],
        })
    return pd.DataFrame(rows, columns=DRIVER_COLUMNS), gap


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
        unknown = {k for k, v in logs.items() if not np.isfinite(v)}          # a stage the window cannot measure
        return ({k: np.nan if k in unknown else 0.0 for k in DRIVER_METRICS},
                float(total) if np.isfinite(total) else np.nan)
    # a stage the window cannot measure (nobody created an opportunity in it ...) explains an unknown share, not 0
    shares = {k: (float(np.clip(v / total, 0, 1)) if v < 0 else 0.0) if np.isfinite(v) else np.nan
              for k, v in logs.items()}
    # Emails and touches act through the funnel's stages and closing, so they can only account for what
    # the funnel stages leave unexplained; their slope is estimated across every judged rep (more stable
    # than one team). Their two estimates may overlap.
    remainder = max(0.0, 1.0 - float(np.nansum(list(shares.values()))))
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



# -- what the shortfall costs, and the dead opportunities ----------------------------------------------
QUARTER_WEEKS = 13


def gap_cost(card: pd.DataFrame, rep_id: str, *, level: float = 0.95) -> dict[str, float]:
    """The shortfall in wins per quarter and in money, against the peers' median wins per week.

    Wins per week are the win rate's numerator (won deals closed in the window) over the window's weeks.
    The gap is the peers' median minus the rep's, times 13 weeks; its interval comes from the rep's own count
    (an exact Poisson interval). Money multiplies by the peers' pooled average won deal size (the article's
    "a poor performer costs nearly $15,000"); with no amounts in the data the money is unknown (NaN).

    Returns
    -------
    dict
        ``wins_per_quarter``, ``wins_low``, ``wins_high``, ``deal_size``, ``money``, ``money_low``,
        ``money_high``, ``rep_wins``, ``weeks``, ``peer_wins_per_week``.
    """
    from scipy import stats as sps  # scipy (~1 s): only the cost-of-gap interval needs it

    rows = card[card["metric"] == "win_rate"].set_index("rep_id")
    weeks = card[card["metric"] == "opps_created_per_week"].set_index("rep_id")["denominator"]
    nan = {k: np.nan for k in ("wins_per_quarter", "wins_low", "wins_high", "deal_size", "money", "money_low",
                               "money_high", "rep_wins", "weeks", "peer_wins_per_week")}
    peers = card.attrs.get("peers", {}).get(rep_id, [])
    if rep_id not in rows.index or not peers or rep_id not in weeks.index or not weeks[rep_id] > 0:
        return nan
    per_week = rows["numerator"] / weeks.reindex(rows.index)
    peer_rate = float(np.nanmedian(per_week.reindex(peers).to_numpy(float))) if peers else np.nan
    wins, n_weeks = float(rows.loc[rep_id, "numerator"]), float(weeks[rep_id])
    tail = (1 - level) / 2
    low = sps.chi2.ppf(tail, 2 * wins) / 2 if wins > 0 else 0.0
    high = sps.chi2.ppf(1 - tail, 2 * wins + 2) / 2
    gap = (peer_rate - np.array([wins, high, low]) / n_weeks) * QUARTER_WEEKS
    sizes = card[(card["metric"] == "avg_deal_size") & card["rep_id"].isin(peers)]
    size = float(sizes["numerator"].sum() / sizes["denominator"].sum()) if sizes["denominator"].sum() > 0 \
        else np.nan
    return {"wins_per_quarter": float(gap[0]), "wins_low": float(gap[1]), "wins_high": float(gap[2]),
            "deal_size": size, "money": float(gap[0] * size), "money_low": float(gap[1] * size),
            "money_high": float(gap[2] * size), "rep_wins": wins, "weeks": n_weeks,
            "peer_wins_per_week": peer_rate}


def dead_opportunities(data: SalesData, gaps: pd.DataFrame, *, days: int | None = None) -> pd.DataFrame:
    """The open opportunities in ``gaps`` (from :func:`pipnb.touch_gaps`) untouched for more than ``days``
    whole days (the article's 14: touched on the 1st, a deal is dead from the 16th, see
    :func:`pipnb.metrics.untouched_days`).

    The article asks to close these out or re-engage them "so it doesn't affect their average". One row per
    opportunity: opp_id, account_id, amount, days_since_touch (whole calendar days), oldest first.
    """
    days = STALE_DAYS if days is None else days
    running = gaps[gaps["censored"]]
    until = to_days(running["ended_at"])
    whole = untouched_days(until - running["days"].to_numpy(dtype=float), until)
    running, whole = running[whole > days], whole[whole > days]
    opps = data.opportunities.set_index("opp_id")
    out = pd.DataFrame({"opp_id": running["opp_id"].to_numpy(),
                        "account_id": running["opp_id"].map(opps["account_id"]).to_numpy()
                        if "account_id" in opps else None,
                        "amount": running["opp_id"].map(opps["amount"]).to_numpy() if "amount" in opps else np.nan,
                        "days_since_touch": whole.astype(float)})
    return out.sort_values("days_since_touch", ascending=False, kind="stable").reset_index(drop=True)


def _dead_and_touch_days(data: SalesData, rep_id: str, start: pd.Timestamp, end: pd.Timestamp
                         ) -> tuple[pd.DataFrame, tuple[float, float]]:
    """The rep's dead opportunities at ``end``, and the average days between touches over the window with
    and without them (one pass over the rep's touches)."""
    if not data.has("activities"):
        return pd.DataFrame(columns=["opp_id", "account_id", "amount", "days_since_touch"]), (np.nan, np.nan)
    gaps = touch_gaps(data, end, rep_ids=[rep_id])
    dead = dead_opportunities(data, gaps)
    window = gaps[gaps["ended_at"] >= pd.Timestamp(start)]
    alive = window[~window["opp_id"].isin(dead["opp_id"])]
    return dead, tuple(float(g["days"].mean()) if len(g) else np.nan for g in (window, alive))


def remaining_dead(data: SalesData, plan, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """The plan's dead opportunities (:attr:`pipnb.Plan.dead_opportunities`) still open on ``as_of`` and
    untouched since the plan started: the ones the rep has neither closed out nor re-engaged.

    Returns
    -------
    pandas.DataFrame
        One row per such opportunity: opp_id, account, amount, days_since_touch (at the diagnosis), in the
        plan's order.
    """
    listed = pd.DataFrame([d.model_dump() for d in plan.dead_opportunities],
                          columns=["opp_id", "account", "amount", "days_since_touch"])
    if listed.empty:
        return listed
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    opps = data.opportunities[data.opportunities["opp_id"].astype(str).isin(listed["opp_id"])]
    closed_by = opps["outcome"].isin(("won", "lost")) & (pd.to_datetime(opps.get("closed_at")) < end)
    closed = set(opps.loc[closed_by, "opp_id"].astype(str))
    touched: set[str] = set()
    if data.has("activities") and "opp_id" in data.activities:
        acts = data.activities
        when = pd.to_datetime(acts["occurred_at"])
        touched = set(acts.loc[(when >= pd.Timestamp(plan.start)) & (when < end), "opp_id"].dropna().astype(str))
    keep = ~listed["opp_id"].isin(closed | touched)
    return listed[keep].reset_index(drop=True)
