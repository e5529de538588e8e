"""The team scan as text and records: which reps fall short of peers, on what, and why."""

from __future__ import annotations

import json

import pandas as pd

from pipnb.alerts import card_warnings, warning_line
from pipnb.data import SalesData
from pipnb.errors import PipnbError
from pipnb.findings import INACTIVE, NO_RECORDS, NOT_JUDGED, RAMPING, SHORTFALL, UNAVAILABLE, plural
from pipnb.peers import missing_sources, scorecard
from pipnb.schema import DRIVER_METRICS, METRICS, PLAN_METRICS

RECORD_COLUMNS = ["rep_id", "rep_name", "team", "metric", "value", "numerator", "denominator",
                  "peer_median", "peer_p25", "peer_p75", "n_peers", "percentile", "z", "flag_limit", "flag",
                  "why_unavailable", "reason"]


def scan_records(card: pd.DataFrame) -> pd.DataFrame:
    """The scorecard rows a CSV or JSON scan prints."""
    return card[RECORD_COLUMNS]


def scan_json(card: pd.DataFrame) -> str:
    """The scan for scripts: one JSON object with its ``window`` (start, end, weeks), ``as_of``, ``basis`` (the
    win-rate basis, the peer grouping, the false-flag rate and margin used) and the ``rows``."""
    attrs = card.attrs
    policy = attrs.get("policy")

    def day(value):
        return f"{pd.Timestamp(value):%Y-%m-%d}" if value is not None else None

    payload = {
        "window": {"start": day(attrs.get("window_start")), "end": day(attrs.get("window_end")),
                   "weeks": attrs.get("weeks")},
        "as_of": day(attrs.get("as_of")),
        "basis": {"win_rate_basis": attrs.get("win_rate_basis"), "peer_by": attrs.get("peer_by"),
                  "false_flag_rate": getattr(policy, "false_flag_rate", None),
                  "margin": getattr(policy, "margin", None)},
        "rows": json.loads(scan_records(card).to_json(orient="records")),
    }
    return json.dumps(payload, indent=1)


def flagged_reps(card: pd.DataFrame, *, plan_metrics_only: bool = False) -> list[str]:
    """Reps with at least one shortfall, most shortfalls first.

    With ``plan_metrics_only``, only shortfalls on the win rate and its drivers count (the reps a batch
    run diagnoses with ``--flagged``).
    """
    if not isinstance(card, pd.DataFrame) or not {"rep_id", "metric", "flag"} <= set(card.columns):
        what = ("a table without the scorecard's rep_id, metric and flag columns" if isinstance(card, pd.DataFrame)
                else f"a {type(card).__name__}")
        raise PipnbError(f"flagged_reps takes a scan's scorecard, not {what}: "
                         "pn.flagged_reps(pn.scorecard(data, as_of='YYYY-MM-DD'))")
    short = card[card["flag"] == SHORTFALL]
    if plan_metrics_only:
        short = short[short["metric"].isin(("win_rate", *DRIVER_METRICS))]
    counts = short.groupby("rep_id").size().sort_values(ascending=False, kind="stable")
    return counts.index.tolist()


def not_judged(card: pd.DataFrame) -> dict[str, list[str]]:
    """The reps a scan shows but does not judge, by why: ``ramping``, ``inactive``, ``no records in the window``
    (rep ids in the card's order)."""
    rows = card.drop_duplicates("rep_id", keep="first").set_index("rep_id")
    why = card["why_unavailable"] if "why_unavailable" in card else pd.Series("", index=card.index)
    silent = set(card.loc[why.eq(NO_RECORDS), "rep_id"])
    return {RAMPING: [r for r in rows.index if (card.loc[card["rep_id"] == r, "flag"] == RAMPING).any()],
            INACTIVE: [r for r in rows.index if (card.loc[card["rep_id"] == r, "flag"] == INACTIVE).any()],
            NO_RECORDS: [r for r in rows.index if r in silent]}


def headline(card: pd.DataFrame) -> str:
    """The scan's count of reps: judged, not judged (by why, named), and those who fall short beyond noise — the
    flags the policy's false-flag budget covers, the only flags there are."""
    reps = card["rep_id"].nunique()
    aside = not_judged(card)
    flagged = flagged_reps(card)
    core = flagged_reps(card, plan_metrics_only=True)
    judged = reps - sum(len(v) for v in aside.values())
    names = card.drop_duplicates("rep_id").set_index("rep_id")["rep_name"].astype(str)
    shown = "; ".join(f"{len(ids)} {why} ({', '.join(f'{names[r]} ({r})' for r in ids)})" for why, ids in
                      ((RAMPING, aside[RAMPING]), (INACTIVE, aside[INACTIVE]),
                       (f"with {NO_RECORDS}", aside[NO_RECORDS])) if ids)
    fall = "falls" if len(flagged) == 1 else "fall"
    return (f"{plural(reps, 'rep')}, {judged} judged" + (f" (shown but not judged: {shown})" if shown else "")
            + f"; {len(flagged)} of the {judged} judged {fall} short of their peers beyond noise on at least one "
            f"metric, {len(core)} on the win rate or one of its drivers ({', '.join(core) or 'none'}).")


def format_scan(card: pd.DataFrame, data: SalesData) -> str:
    """A plain-text team scan: the window, then each rep that falls short with one line per metric."""
    attrs = card.attrs
    basis = "closed deals" if attrs.get("win_rate_basis") == "closed" else "all opportunities"
    lines = [f"Team scan — {attrs['weeks']} weeks {attrs['window_start']:%Y-%m-%d} to "
             f"{attrs['window_end']:%Y-%m-%d}; peers by {attrs['peer_by']}; win rate on {basis}"]
    flagged = flagged_reps(card)
    lines.append(headline(card))
    for note in _notes(card, data):
        lines.append(f"note: {note}")
    lines += [f"warning: {warning_line(w)}" for w in card_warnings(card, data)]
    for finding in team_findings(card, data):
        lines.append(f"team finding: {finding}")
    for rep_id in flagged:
        rows = card[(card["rep_id"] == rep_id) & (card["flag"] == SHORTFALL)]
        first = rows.iloc[0]
        lines += ["", f"{rep_id}  {first['rep_name']} ({first['team']}) — {len(rows)} shortfall"
                      + ("s" if len(rows) > 1 else "")]
        lines += [f"  - {reason}" for reason in rows["reason"]]
    strengths = card[card["flag"] == "strength"].groupby("rep_id").size()
    if len(strengths):
        lines += ["", f"{len(strengths)} reps lead their peers on at least one metric "
                      "(see --format csv for every rep and metric)."]
    return "\n".join(lines)


def team_findings(card: pd.DataFrame, data: SalesData, *, panel: pd.DataFrame | None = None,
                  share: float = 0.25) -> list[str]:
    """Teams in which ``share`` or more of the judged reps fall short of the whole company on a plan metric.

    A shortfall that a quarter of a team shares is a team finding (territory, leads, the manager's
    coaching) before it is an individual one: individual plans would miss the cause.
    """
    policy = card.attrs.get("policy")
    if policy is None or policy.peer_by == "all":
        return []
    company = scorecard(data, as_of=card.attrs["as_of"], policy=policy.with_overrides(peer_by="all"), panel=panel)
    judged = company[~company["flag"].isin(NOT_JUDGED)]
    judged = judged[judged["metric"].isin(PLAN_METRICS)]
    findings = []
    for (team, metric), rows in judged.groupby(["team", "metric"], sort=True):
        n = rows["rep_id"].nunique()
        short = rows.loc[rows["flag"] == SHORTFALL, "rep_id"].nunique()
        if n >= 4 and short / n >= share:
            findings.append(f"team {team}: {short} of {n} reps fall short of the whole company on "
                            f"{METRICS[metric].label.lower()}: a team finding to look into before individual "
                            "plans")
    return findings


def unavailable_notes(card: pd.DataFrame, data: SalesData) -> list[str]:
    """The metrics the source cannot give, grouped by why (``first meetings per week, follow-up meeting ratio:
    unavailable, the source has no meetings``): unavailable for every rep, never 0."""
    missing = {m: why for m, why in missing_sources(data).items() if m in set(card["metric"])}
    groups: dict[str, list[str]] = {}
    for metric, why in missing.items():
        groups.setdefault(why, []).append(METRICS[metric].label.lower())
    return [f"{', '.join(labels)}: {UNAVAILABLE}, {why}" for why, labels in groups.items()]


def scan_notes(card: pd.DataFrame, data: SalesData) -> list[tuple[str, str]]:
    """The scan's notes by kind, for its report: what the source cannot give (``Unavailable``, see
    :func:`unavailable_notes`) and the warnings that matter (``Warning``, :mod:`pipnb.alerts`), one line each."""
    return [("Unavailable", note) for note in unavailable_notes(card, data)] + [
        ("Warning", warning_line(w)) for w in card_warnings(card, data)]


def _notes(card: pd.DataFrame, data: SalesData) -> list[str]:
    notes = []
    missing = data.notes.get("open_opps_without_created_at", 0)
    if missing:
        notes.append(f"{missing} open opportunities have no created date: counted in the open pipeline, "
                     "not in weekly creation")
    notes += unavailable_notes(card, data)
    left = data.inactive(card.attrs["window_end"]) if "window_end" in card.attrs else []
    if len(left) and left.any():
        notes.append(f"inactive (left before the window ended; neither judged nor a peer): "
                     f"{', '.join(data.reps.loc[left, 'rep_id'].astype(str))}")
    return notes
