"""The words of the reports: Markdown a sales manager reads, built from results.

Every piece of text that comes from the data (names, teams, notes typed into a plan) is HTML-escaped
here, so a rep named ``<script>alert(1)</script>`` shows as text in every report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipnb.peers import fmt
from pipnb.schema import METRICS


_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                          **{c: f"&#{ord(c)};" for c in "*_`[]|#\\~"}})


def esc(value) -> str:
    """HTML-escape text that came from data, and neutralize Markdown emphasis, links and tables (one pass,
    so entities are never escaped twice)."""
    return str(value).translate(_ESCAPES)


def value(metric: str, number: float) -> str:
    return fmt(number, METRICS[metric])


def show(table: pd.DataFrame):
    """A display table without the index; every cell is HTML-escaped (pandas' ``escape=True``)."""
    from IPython.display import HTML

    return HTML(table.to_html(index=False, escape=True, border=0, classes="pipnb-table", na_rep="—"))


def diagnosis_summary(dx) -> str:
    """The opening of a diagnosis report."""
    lines = [f"**{esc(dx.rep_name)}** ({esc(dx.team)}), {dx.weeks} weeks from {dx.window_start:%d %b %Y} to "
             f"{dx.window_end:%d %b %Y}, compared with {dx.n_peers} peers in the same "
             f"{'team' if dx.peer_by == 'team' else dx.peer_by}.", ""]
    short = dx.outcomes[dx.outcomes["flag"] == "shortfall"]
    if len(short):
        lines.append("**Outcomes that fall short:** " + "; ".join(esc(r) for r in short["reason"]) + ".")
    else:
        lines.append("**No outcome falls short of peers over this window.**")
    if dx.improvement_areas:
        ranked = ", ".join(f"{METRICS[m].label.lower()}" for m in dx.improvement_areas)
        lines.append(f"\n**Improvement areas, most important first:** {ranked}.")
    dismissed = dx.drivers.loc[dx.drivers["classification"] == "dismissed", "label"].str.lower()
    if len(dismissed):
        lines.append(f"\n**Dismissed as the issue:** {', '.join(dismissed)}.")
    lines.append(f"\n**Needs a plan:** {'yes' if dx.needs_plan else 'no'}.")
    return "\n".join(lines)


def outcome_table(dx) -> pd.DataFrame:
    """Outcome metrics as a display table (no peer is named)."""
    rows = dx.outcomes
    return pd.DataFrame({
        "Outcome": rows["label"],
        "This rep": [value(m, v) for m, v in zip(rows["metric"], rows["value"])],
        "Counts": [_counts(m, n, d) for m, n, d in zip(rows["metric"], rows["numerator"], rows["denominator"])],
        "Peer median": [value(m, v) for m, v in zip(rows["metric"], rows["peer_median"])],
        "Peers' middle half": [f"{value(m, a)} – {value(m, b)}" for m, a, b in
                               zip(rows["metric"], rows["peer_p25"], rows["peer_p75"])],
        "Percentile": [_pct(p) for p in rows["percentile"]],
        "Flag": rows["flag"],
    })


def driver_table(dx) -> pd.DataFrame:
    rows = dx.drivers
    return pd.DataFrame({
        "Driver": rows["label"],
        "This rep": [value(m, v) for m, v in zip(rows["metric"], rows["value"])],
        "Peer median": [value(m, v) for m, v in zip(rows["metric"], rows["peer_median"])],
        "Percentile": [_pct(p) for p in rows["percentile"]],
        "Finding": rows["classification"],
        "Share of the win gap it explains": [f"{e:.0%}" if np.isfinite(e) else "—" for e in rows["explains"]],
    })


def driver_notes(dx) -> str:
    """One paragraph per driver: finding, business rationale, the numbers."""
    parts = []
    for row in dx.drivers.itertuples():
        parts.append(f"**{row.label} — {row.classification}.** {row.rationale} "
                     f"*The numbers:* {esc(row.evidence)}.")
    return "\n\n".join(parts)


def plan_overview(plan) -> str:
    dates = plan.checkpoint_dates()
    timeline = "; ".join(f"{stage.replace('-', ' ')}: {when:%d %b %Y}" for stage, when in dates.items())
    lines = [f"**Plan for {esc(plan.rep_name)}** ({esc(plan.team)}) — status **{plan.status}**.",
             f"\n**Timeline:** {plan.weeks} weeks from {plan.start:%d %b %Y} to {plan.end:%d %b %Y}. {timeline}.",
             f"\n**Why:** {esc(plan.summary)}"]
    return "\n".join(lines)


def target_table(plan) -> pd.DataFrame:
    rows = []
    for t in plan.targets:
        spec = METRICS[t.metric]
        rows.append({
            "Measure": t.label + (" (focus)" if t.focus else ""),
            "Baseline": fmt(t.baseline if t.baseline is not None else np.nan, spec),
            **{f"Checkpoint {i + 1}": fmt(g, spec) for i, g in enumerate(t.glide[:-1])},
            "Final target": fmt(t.target, spec) + (f" (range {fmt(t.min, spec)}–{fmt(t.max, spec)})"
                                                   if t.min is not None and t.max is not None else ""),
            "How it was set": t.rule,
        })
    return pd.DataFrame(rows)


def bullet_list(items: list[str], empty: str = "None stated.") -> str:
    return "\n".join(f"- {esc(item)}" for item in items) if items else empty


def review_summary(rv) -> str:
    counts = rv.table["status"].value_counts()
    parts = ", ".join(f"{counts[s]} {s}" for s in ("met", "on track", "behind", "no data") if s in counts)
    title = "Final review" if rv.is_final else rv.stage.replace("-", " ").capitalize()
    lines = [f"**{title}** of the plan for **{esc(rv.plan.rep_name)}**: the window "
             f"{rv.window_start:%d %b} – {rv.window_end:%d %b %Y} (plan week "
             f"{(rv.window_start - rv.plan.start).days // 7 + 1} to {(rv.window_end - rv.plan.start).days // 7 + 1}"
             f"). Targets: {parts}."]
    return "\n".join(lines)


def status_table(rv) -> pd.DataFrame:
    t = rv.table
    return pd.DataFrame({
        "Measure": t["label"] + np.where(t["focus"], " (focus)", ""),
        "Baseline": [value(m, v if v is not None else np.nan) for m, v in zip(t["metric"], t["baseline"])],
        "Target now": [value(m, v) for m, v in zip(t["metric"], t["target"])],
        "This window": [value(m, v) for m, v in zip(t["metric"], t["actual"])],
        "Counts": [_counts(m, n, d) for m, n, d in zip(t["metric"], t["numerator"], t["denominator"])],
        "Since plan start": [value(m, v) for m, v in zip(t["metric"], t["since_start"])],
        "Final target": [value(m, v) for m, v in zip(t["metric"], t["final_target"])],
        "Status": t["status"],
    })


def recommendation(rv) -> str:
    word = {"complete": "Complete the plan", "extend": "Extend the plan",
            "consequences": "Apply the stated consequences"}[rv.recommendation]
    lines = [f"### Recommended course of action: {word}", "",
             f"Overall attainment: **{rv.attainment:.0%}** of the focus targets met.", ""]
    lines += [f"- {esc(reason)}" for reason in rv.reasons]
    if rv.recommendation == "consequences":
        lines += ["", "Consequences stated in the plan:", bullet_list(rv.plan.consequences)]
    return "\n".join(lines)


def _counts(metric: str, numerator: float, denominator: float) -> str:
    if not np.isfinite(denominator):
        return "—"
    kind = METRICS[metric].kind
    if kind == "ratio":
        return f"{numerator:.0f} of {denominator:.0f}"
    if kind == "count":
        return f"{numerator:.0f} in {denominator:.0f} wk"
    return f"{denominator:.0f} obs."


def _pct(p: float) -> str:
    if not np.isfinite(p):
        return "—"
    n = int(round(p))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def scan_summary(card: pd.DataFrame, data) -> str:
    """The opening of the team scan."""
    from pipnb.scan import flagged_reps

    attrs = card.attrs
    flagged = flagged_reps(card)
    ramping = card.loc[card["flag"] == "ramping", "rep_id"].nunique()
    basis = "closed deals" if attrs["win_rate_basis"] == "closed" else "all opportunities"
    lines = [f"**{card['rep_id'].nunique()} reps**, {attrs['weeks']} weeks from {attrs['window_start']:%d %b %Y} "
             f"to {attrs['window_end']:%d %b %Y}; peers by {attrs['peer_by']}; win rate on {basis}.",
             f"\n**{len(flagged)} reps fall short of their peers on at least one metric**; {ramping} ramping "
             "reps are shown but not judged."]
    missing = data.notes.get("open_opps_without_created_at", 0)
    if missing:
        lines.append(f"\n{missing} open opportunities have no created date: they count in the open pipeline, "
                     "not in weekly creation.")
    return "\n".join(lines)


def shortfall_table(card: pd.DataFrame) -> pd.DataFrame:
    """One row per rep and shortfall metric, most flagged reps first (the manager's team view)."""
    from pipnb.scan import flagged_reps

    order = {rep: i for i, rep in enumerate(flagged_reps(card))}
    rows = card[card["flag"] == "shortfall"].copy()
    rows = rows.sort_values(["rep_id"], key=lambda s: s.map(order), kind="stable")
    return pd.DataFrame({
        "Rep": rows["rep_name"], "Team": rows["team"], "Metric": rows["label"],
        "Value": [value(m, v) for m, v in zip(rows["metric"], rows["value"])],
        "Peer median": [value(m, v) for m, v in zip(rows["metric"], rows["peer_median"])],
        "Percentile": [_pct(p) for p in rows["percentile"]],
    }).reset_index(drop=True)


def plan_areas(plan) -> str:
    """Improvement areas of a plan with their rationale and evidence (shortfalls first)."""
    order = {"shortfall": 0, "strength": 1, "dismissed": 2}
    parts = []
    for area in sorted(plan.improvement_areas, key=lambda a: order.get(a.classification, 3)):
        label = METRICS[area.metric].label
        share = f" It accounts for about {area.explains:.0%} of the gap in wins." if area.explains else ""
        parts.append(f"**{label} — {esc(area.classification)}.** {esc(area.rationale)}{share} "
                     f"*The numbers:* {esc(area.evidence)}.")
    return "\n\n".join(parts) or "No improvement area was recorded."


def plan_commitments(plan) -> str:
    return "\n".join([
        "**Consequences if expectations are not met**", "", bullet_list(plan.consequences), "",
        "**Resources available**", "", bullet_list(plan.resources), "",
        "**The manager's coaching commitments**", "", bullet_list(plan.coaching), "",
        "**Acknowledged by** (signatures and dates): rep ______________ manager ______________ "
        "HR ______________",
    ])


def verdict_table(rv) -> pd.DataFrame:
    """The statistics of improvement as a display table: counts first, the verdict last."""
    v = rv.verdicts
    if v.empty:
        return pd.DataFrame({"Measure": [], "Verdict": []})
    return pd.DataFrame({
        "Measure": v["label"],
        "Baseline": [value(m, x) for m, x in zip(v["metric"], v["baseline"])],
        "Plan period": [value(m, x) for m, x in zip(v["metric"], v["actual"])],
        "Change beyond peers (95% range)": [_change(e, x, lo, hi) for e, x, lo, hi in
                                            zip(v["effect"], v["estimate"], v["ci_low"], v["ci_high"])],
        "Smallest detectable": [_change(e, x, np.nan, np.nan) for e, x in zip(v["effect"], v["mde"])],
        "Peers, same weeks": [_change(e, x, np.nan, np.nan) for e, x in zip(v["effect"], v["peer_change"])],
        "Verdict": v["verdict"],
    })


def _change(effect: str, estimate: float, low: float, high: float) -> str:
    if estimate is None or not np.isfinite(estimate):
        return "—"
    if "ratio" in str(effect):
        text = f"{(estimate - 1) * 100:+.0f}%"
        span = f" ({(low - 1) * 100:+.0f}% to {(high - 1) * 100:+.0f}%)" if np.isfinite(low) else ""
    else:
        text = f"{estimate * 100:+.0f} pts"
        span = f" ({low * 100:+.0f} to {high * 100:+.0f} pts)" if np.isfinite(low) else ""
    return text + span


def verdict_notes(rv) -> str:
    """One paragraph per measure in a manager's words, then how regression to the mean is handled."""
    from pipnb.stats import METHOD_NOTE

    if rv.verdicts.empty:
        return "No plan measure could be assessed."
    lines = [f"- **{esc(row.label)} — {row.verdict}.** {esc(row.sentence)}" for row in rv.verdicts.itertuples()]
    return "\n".join([*lines, "", f"*How to read this.* {METHOD_NOTE}"])
