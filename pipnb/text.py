"""The words of the reports: Markdown a sales manager reads, built from results.

Every piece of text that comes from the data (names, teams, notes typed into a plan) is HTML-escaped
here, so a rep named ``<script>alert(1)</script>`` shows as text in every report.

The sentence that puts one metric's verdict into words is in :mod:`pipnb.sentences`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipnb.diagnosis import driver_groups, remaining_dead
from pipnb.events import leave_weeks_between
from pipnb.findings import plural
from pipnb.scan import flagged_reps, headline, scan_notes, team_findings
from pipnb.schema import FLAG_METRICS, METRICS
from pipnb.sentences import METHOD_NOTE, describe_event, verdict_sentences
from pipnb.stages import stage_title

if TYPE_CHECKING:   # annotations only: pipnb.stats and the report models import heavier modules
    from IPython.display import HTML

    from pipnb.data import SalesData
    from pipnb.diagnosis import Diagnosis
    from pipnb.plan import Plan
    from pipnb.reviews import Review

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                          **{c: f"&#{ord(c)};" for c in "*_`[]|#\\~$:"}})


def esc(value: object) -> str:
    """HTML-escape text that came from data, and neutralize Markdown emphasis, links, tables, math (``$``) and
    bare URLs (``:``, so ``https://...`` is never turned into a link), in one pass, so entities are never
    escaped twice."""
    return str(value).translate(_ESCAPES)


def value(metric: str, number: float) -> str:
    return METRICS[metric].fmt(number)


def show(table: pd.DataFrame) -> HTML:
    """A display table without the index; every cell is HTML-escaped (pandas' ``escape=True``)."""
    from IPython.display import HTML  # IPython (70 ms): only a notebook shows tables; `pipnb scan` imports this module

    return HTML(table.to_html(index=False, escape=True, border=0, classes="pipnb-table", na_rep="—"))


def diagnosis_summary(dx: Diagnosis) -> str:
    """The opening of a diagnosis report, every sentence rendered from a finding."""
    peers = _peer_words(dx)
    lines = [f"**{esc(dx.rep_name)}** ({esc(dx.team)}), {dx.weeks} weeks from {dx.window_start:%d %b %Y} to "
             f"{dx.window_end:%d %b %Y}, {peers}.", ""]
    short = dx.outcomes[dx.outcomes["flag"] == "shortfall"]
    if len(short):
        lines.append("**Outcomes that fall short of peers beyond noise:** "
                     + "; ".join(esc(r) for r in short["finding"]) + ".")
    else:
        lines.append("**No outcome falls short of peers beyond noise over this window.**")
    if dx.improvement_areas:
        ranked = ", ".join(f"{METRICS[m].label.lower()}" for m in dx.improvement_areas)
        lines.append(f"\n**Improvement areas, most important first** (drivers short of peers beyond noise): {ranked}.")
    for words, labels in driver_groups(dx.drivers):
        lines.append(f"\n**{words}:** {', '.join(labels)}.")
    why = ("a shortfall beyond noise on the win rate or a driver" if dx.needs_plan else
           "no shortfall beyond noise on the win rate or a driver")
    lines.append(f"\n**Needs a plan:** {'yes' if dx.needs_plan else 'no'} ({why}; the policy's rule).")
    return "\n".join(lines)


def _peer_words(dx: Diagnosis) -> str:
    """How many peers the rep is compared with, as the rows count them (a row counts the peers with a value)."""
    counts = pd.concat([dx.outcomes.get("n_peers", pd.Series(dtype=float)),
                        dx.drivers.get("n_peers", pd.Series(dtype=float))]).dropna()
    counts = counts[counts > 0].astype(int)
    group = "team" if dx.peer_by == "team" else dx.peer_by
    if counts.empty:
        return "with no peers to compare with"
    low, high = counts.min(), counts.max()
    many = plural(high, "peer") if low == high else f"{low} to {high} peers (a peer without a value is not counted)"
    return f"compared with {many} in the same {group}"


def outcome_table(dx: Diagnosis) -> pd.DataFrame:
    """Outcome metrics as a display table (no peer is named); the finding is the row's classification."""
    rows = dx.outcomes
    return pd.DataFrame({
        "Outcome": rows["label"],
        "This rep": [value(m, v) for m, v in zip(rows["metric"], rows["value"])],
        "Counts": [_counts(m, n, d) for m, n, d in zip(rows["metric"], rows["numerator"], rows["denominator"])],
        "Peer median": [value(m, v) for m, v in zip(rows["metric"], rows["peer_median"])],
        "Peers' middle half": [f"{value(m, a)} – {value(m, b)}" if np.isfinite(a) else "—" for m, a, b in
                               zip(rows["metric"], rows["peer_p25"], rows["peer_p75"])],
        "Peers": [_count(n) for n in rows["n_peers"]],
        "Percentile": [_pct(p) for p in rows["percentile"]],
        "Finding": [_finding_word(f, w) for f, w in zip(rows["flag"], rows["why_unavailable"])],
    })


def driver_table(dx: Diagnosis) -> pd.DataFrame:
    rows = dx.drivers
    return pd.DataFrame({
        "Driver": rows["label"],
        "This rep": [value(m, v) for m, v in zip(rows["metric"], rows["value"])],
        "Peer median": [value(m, v) for m, v in zip(rows["metric"], rows["peer_median"])],
        "Peers": [_count(n) for n in rows["n_peers"]],
        "Percentile": [_pct(p) for p in rows["percentile"]],
        "Finding": [_finding_word(f, w) for f, w in zip(rows["classification"], rows["why_unavailable"])],
        "Share of the win gap it explains": [f"{e:.0%}" if np.isfinite(e) else "—" for e in rows["explains"]],
    })


def _finding_word(flag: str, why: object) -> str:
    return f"unavailable: {why}" if flag == "unavailable" and isinstance(why, str) and why else str(flag)


def _count(n: float) -> str:
    return f"{int(n)}" if isinstance(n, int | float) and np.isfinite(n) else "—"


def cost_of_gap(dx: Diagnosis) -> str:
    """The shortfall in wins per quarter and in money, with its range (the article's cost of a poor performer)."""
    c = dx.cost
    if not c or not np.isfinite(c.get("wins_per_quarter", np.nan)):
        return "The cost of the gap cannot be estimated: the data has no closed deals for the rep or peers."
    if c["wins_per_quarter"] <= 0:
        return (f"The rep won {plural(c['rep_wins'], 'deal')} in {c['weeks']:.0f} weeks, as many as the peers' median "
                "or more: no shortfall in wins to cost.")
    money = (f", about ${c['money']:,.0f} a quarter at the peers' average won deal of ${c['deal_size']:,.0f} "
             f"(plausibly ${max(c['money_low'], 0):,.0f} to ${c['money_high']:,.0f})"
             if np.isfinite(c["money"]) else " (the data has no deal amounts to put a price on it)")
    return (f"**The cost of the gap.** The rep won {plural(c['rep_wins'], 'deal')} in {c['weeks']:.0f} weeks against "
            f"the peers' median of {c['peer_wins_per_week'] * c['weeks']:.1f}: about {c['wins_per_quarter']:.1f} wins "
            f"a quarter fewer (plausibly {max(c['wins_low'], 0):.1f} to {c['wins_high']:.1f}){money}.")


def dead_opportunity_table(dx: Diagnosis) -> pd.DataFrame:
    """The rep's open opportunities untouched for more than 14 days (their own deals only)."""
    dead = dx.dead if dx.dead is not None else pd.DataFrame(columns=["opp_id", "account_id", "amount",
                                                                     "days_since_touch"])
    return pd.DataFrame({
        "Opportunity": [esc(v) for v in dead["opp_id"]],
        "Account": [esc(v) if isinstance(v, str) else "—" for v in dead["account_id"]],
        "Amount": [f"${v:,.0f}" if np.isfinite(v) else "—" for v in dead["amount"].astype(float)],
        "Days since last touch": [f"{v:.0f}" for v in dead["days_since_touch"]],
    })


def dead_opportunity_notes(dx: Diagnosis) -> str:
    """How many deals are dead, their share, and the touch metric with and without them; without activities
    linked to deals, that it cannot be known."""
    mine = dx.card[(dx.card["rep_id"] == dx.rep_id) & (dx.card["metric"] == "stale_opp_share")]
    why = mine["why_unavailable"].iloc[0] if len(mine) and "why_unavailable" in mine else ""
    if not len(mine) or (isinstance(why, str) and why):
        reason = why if isinstance(why, str) and why else "the source has no activities table"
        return f"Whether open opportunities have gone more than 14 days without a touch cannot be known: {esc(reason)}."
    dead = dx.dead if dx.dead is not None else pd.DataFrame()
    if dead.empty:
        return "No open opportunity has gone more than 14 days without a touch."
    share = f" ({mine['value'].iloc[0]:.0%} of the open pipeline)" if np.isfinite(mine["value"].iloc[0]) else ""
    with_dead, without = dx.touch_days
    return (f"**{plural(len(dead), 'open opportunity', 'open opportunities')}**{share} "
            f"{'has' if len(dead) == 1 else 'have'} had no touch for more than 14 days. The policy's advice: close "
            f"them out or re-engage them, so they do not drag the averages. With them, touches come every "
            f"{with_dead:.1f} days on average; without them, every {without:.1f} days.")


def driver_notes(dx: Diagnosis) -> str:
    """One paragraph per driver: the finding rendered from its numbers, why the metric matters, the evidence."""
    parts = []
    for row in dx.drivers.itertuples():
        parts.append(f"**{row.label} — {_finding_word(row.classification, row.why_unavailable)}.** "
                     f"{esc(row.finding)}. *Why it matters:* {esc(row.rationale)} *The numbers:* {esc(row.evidence)}.")
    return "\n\n".join(parts)


def plan_overview(plan: Plan) -> str:
    dates = plan.checkpoint_dates()
    timeline = "; ".join(f"{stage.replace('-', ' ')}: {when:%d %b %Y}" for stage, when in dates.items())
    lines = [f"**Plan for {esc(plan.rep_name)}** ({esc(plan.team)}) — status **{plan.status}**.",
             *([f"\n{plan_reason(plan)}"] if plan.reason else []),
             f"\n**Timeline:** {plan.weeks} weeks from {plan.start:%d %b %Y} to {plan.end:%d %b %Y}. {timeline}.",
             f"\n**Why:** {esc(plan.summary)}"]
    return "\n".join(lines)


def plan_reason(plan: Plan) -> str:
    """Why a plan was drafted though its diagnosis found no shortfall (``pipnb plan --reason``), as every report of
    the plan shows it near the top; "" for a plan its diagnosis warranted."""
    if not plan.reason:
        return ""
    return (f"**Drafted without a shortfall.** The diagnosis found no shortfall on the win rate or a driver beyond "
            f"noise; the plan was drafted anyway, because: *{esc(plan.reason)}*")


def target_table(plan: Plan) -> pd.DataFrame:
    """The targets: the level at the diagnosis, where the glide path starts, each checkpoint's target and the
    final one, and the rule in words (whose numbers are these)."""
    rows = []
    for t in plan.targets:
        spec = METRICS[t.metric]
        rows.append({
            "Measure": t.label + (" (focus)" if t.focus else ""),
            "At the diagnosis": spec.fmt(t.basis.get("baseline")),
            "Glide path starts": spec.fmt(t.baseline if t.baseline is not None else np.nan),
            **{f"Checkpoint {i + 1}": spec.fmt(g) for i, g in enumerate(t.glide[:-1])},
            "Final target": spec.fmt(t.target) + (f" (range {spec.fmt(t.min)}–{spec.fmt(t.max)})"
                                                   if t.min is not None and t.max is not None else ""),
            "How it was set": t.rule,
        })
    return pd.DataFrame(rows)


def bullet_list(items: list[str], empty: str = "None stated.") -> str:
    return "\n".join(f"- {esc(item)}" for item in items) if items else empty


def review_summary(rv: Review) -> str:
    """The conclusion first: status line, a sentence per focus measure, the window (a leave's weeks not counted)."""
    weeks, first = (rv.window_end - rv.plan.start).days // 7 + 1, (rv.window_start - rv.plan.start).days // 7 + 1
    focus = rv.table[rv.table["focus"]] if rv.table["focus"].any() else rv.table
    away, inside = (leave_weeks_between(rv.plan, day, rv.window_end) for day in (rv.plan.start, rv.window_start))
    judged = (f"each final target is judged on the last {plural(weeks - first + 1 - inside, 'plan week')}, with "
              f"a 95% interval; the glide path on all {plural(weeks - away, 'plan week')}" if rv.is_final else
              f"every target is judged on all {plural(weeks - away, 'plan week')} so far, with a 95% interval")
    judged += f" ({plural(away, 'week')} of leave set aside{f', {inside} of them in this window' * rv.is_final})" * (
        away > 0)
    where = f"plan week {first} to {weeks}" if not away else f"calendar weeks {first} to {weeks} of the plan"
    return "\n".join([f"**{esc(status_line(rv))}**", "", *[f"- {esc(measure_reason(r))}" for r in focus.itertuples()],
                      "", f"{stage_title(rv.stage)} of the plan for **{esc(rv.plan.rep_name)}**: the window "
                      f"{rv.window_start:%d %b} – {rv.window_end:%d %b %Y} ({where}); {judged}."])


def status_line(rv: Review) -> str:
    """One line: where the rep stands on the focus measures (and, at the final review, what to do)."""
    from pipnb.statuses import MET, NOT_MET, STATUSES  # pipnb.statuses loads scipy: heavy

    focus = rv.table[rv.table["focus"]] if rv.table["focus"].any() else rv.table
    counts = focus["status"].value_counts()
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
    if rv.is_final and rv.recommendation:
        word = {"complete": "complete the plan", "extend": "extend the plan",
                "consequences": "apply the stated consequences"}[rv.recommendation]
        head = f"Recommendation: {word}"
        if rv.extended_end is not None:
            head += f" (new end {rv.extended_end:%d %b %Y})"
    elif len(focus) and counts.get(MET, 0) == len(focus):
        head = "On track"
    elif counts.get(NOT_MET, 0):
        head = "Behind plan"
    else:
        head = "Not yet clear"
    what = "final targets" if rv.is_final else "focus measures"
    return f"{stage_title(rv.stage)}: {head} — {plural(len(focus), 'focus measure')}, {what}: {parts}."


def measure_reason(row) -> str:
    """One sentence on one measure of a review's table: its status and the numbers behind it (the same clause as
    the final review's reasons, :func:`pipnb.reviews.target_reason`)."""
    from pipnb.reviews import target_reason  # pipnb.reviews loads scipy: heavy

    return f"{row.label}: {target_reason(row)}."


def event_notes(rv: Review) -> str:
    """Every signed plan event that applies to the review, one bullet each (:func:`pipnb.sentences.describe_event`,
    escaped); ``""`` when the plan has none."""
    if not rv.events:
        return ""
    return "\n".join(["**Plan events** (changes the rep does not control, signed in the plan's history):", "",
                      *(f"- {esc(describe_event(fact))}" for fact in rv.events)])


def plan_history(plan: Plan) -> pd.DataFrame:
    """The plan's signed history: date, status, who signed, and why (an extension names its new end date)."""
    return pd.DataFrame({"Date": [f"{h.date:%d %b %Y}" for h in plan.history],
                         "Status": [f"event: {h.event.kind}" if h.event else h.status for h in plan.history],
                         "Signed by": [esc(h.by) if h.by else "(unsigned)" for h in plan.history],
                         "Note": [esc(h.note) for h in plan.history]})


def dead_action(plan: Plan) -> str:
    """The plan's action on the dead opportunities of the diagnosis: close out or re-engage them by checkpoint 1."""
    dead = plan.dead_opportunities
    if not dead and not any(t.metric == "avg_days_between_touches" for t in plan.targets):
        return ("Whether an open opportunity had gone more than 14 days without a touch is unknown: the plan has no "
                "touches to go by (unavailable at the diagnosis). No action is set.")
    if not dead:
        return "No open opportunity had gone more than 14 days without a touch at the diagnosis: no action needed."
    first = plan.checkpoint_dates().get("checkpoint-1") or plan.end
    what = "this opportunity" if len(dead) == 1 else f"these {len(dead)} opportunities"
    return (f"**Action: close out or re-engage {what} by checkpoint 1 ({first:%d %B %Y}).** "
            f"{'It was' if len(dead) == 1 else 'Each was'} open and untouched for more than 14 days at the diagnosis "
            "(the policy's rule: touch every open opportunity at least every 14 days); closing "
            "dead deals out, or bringing them back to life, keeps them from dragging the averages. Checkpoint 1 "
            "reports how many remain open and untouched.")


def dead_action_table(plan: Plan) -> pd.DataFrame:
    """The plan's dead opportunities: id, account, amount, days since the last touch (the rep's own deals)."""
    return _dead_frame(pd.DataFrame([d.model_dump() for d in plan.dead_opportunities],
                                    columns=["opp_id", "account", "amount", "days_since_touch"]))


def _dead_frame(dead: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "Opportunity": [esc(v) for v in dead["opp_id"]],
        "Account": [esc(v) if isinstance(v, str) and v else "—" for v in dead["account"]],
        "Amount": [f"${v:,.0f}" if v is not None and np.isfinite(v) else "—" for v in dead["amount"]],
        "Days since last touch (at the diagnosis)": [f"{v:.0f}" for v in dead["days_since_touch"]],
    })


def dead_followup(rv: Review, data: SalesData) -> str:
    """How many of the plan's dead opportunities (due by checkpoint 1) remain open and untouched since the plan
    start, at this review."""
    dead = rv.plan.dead_opportunities
    if not dead:
        return "The plan listed no dead opportunity to close out or re-engage."
    left = remaining_dead(data, rv.plan, rv.as_of)
    if left.empty:
        return f"All {len(dead)} dead opportunities the plan listed were closed out or re-engaged."
    return (f"**{len(left)} of the {len(dead)} dead opportunities** the plan listed remain open and untouched since "
            f"the plan start ({', '.join(esc(v) for v in left['opp_id'])}); "
            f"{len(dead) - len(left)} were closed out or re-engaged.")


def status_table(rv: Review) -> pd.DataFrame:
    """The status of every plan measure. At the final review the status judges the final target on the last
    window; the glide path over the plan is its own column."""
    t = rv.table
    weeks = int(t["window_weeks"].max()) if len(t) else 0
    window = f"Last {weeks} weeks (95% interval)" if rv.is_final else "This window (95% interval)"
    frame = {
        "Measure": t["label"] + np.where(t["focus"], " (focus)", ""),
        "Glide starts at": [value(m, v if v is not None else np.nan) for m, v in zip(t["metric"], t["baseline"])],
        window: [_level(m, v, lo, hi, n) for m, v, lo, hi, n in
                 zip(t["metric"], t["actual"], t["actual_low"], t["actual_high"], t["numerator"])],
        "Counts": [_counts(m, n, d) for m, n, d in zip(t["metric"], t["numerator"], t["denominator"])],
        "Since plan start (95% interval)": [_level(m, v, lo, hi, n) for m, v, lo, hi, n in
                                            zip(t["metric"], t["since_start"], t["since_low"], t["since_high"],
                                                t["since_numerator"])],
        "Expected on average by now": [value(m, v) for m, v in zip(t["metric"], t["target"])],
        "Peers, same weeks": [value(m, v) for m, v in zip(t["metric"], t["peer_level"])],
        "Final target": [value(m, v) for m, v in zip(t["metric"], t["final_target"])],
        "Peers' change from the diagnosis window": [_team(m, c, lo, hi, k) for m, c, lo, hi, k in zip(
            t["metric"], t["team_change"], t["team_change_low"], t["team_change_high"], t["team_peers"])],
        "Target with the team's change": [value(m, v) for m, v in zip(
            t["metric"], t["adjusted_final_target"] if rv.is_final else t["adjusted_target"])],
    }
    if rv.is_final:
        frame["Glide path"] = t["glide_status"]
        frame["Final target status"] = t["status"]
    else:
        frame["Status"] = t["status"]
    return pd.DataFrame(frame)


def _team(metric: str, change: float, low: float, high: float, peers: int) -> str:
    """The peers' change with its 95% interval: a percent for counts and gaps, an odds ratio for ratios."""
    if not peers:
        return "no peers"
    if METRICS[metric].kind == "ratio":
        return f"odds x{change:.2f} ({low:.2f}–{high:.2f})"
    return f"{(change - 1) * 100:+.0f}% ({(low - 1) * 100:+.0f}% to {(high - 1) * 100:+.0f}%)"


def book_summary(rv: Review) -> str:
    """What the data shows about the rep's book of accounts: one sentence per measure, from
    :func:`pipnb.reviews.book_sentence` (the same row as :func:`book_table`); nothing without account ids."""
    from pipnb.reviews import book_sentence  # pipnb.reviews loads scipy: heavy

    if rv.book is None or rv.book.empty:
        return ("The data carries no account ids (or too few weeks before the diagnosis window): nothing is "
                "claimed about the rep's territory.")
    return "\n".join(f"- {esc(book_sentence(row))}." for row in rv.book.itertuples())


def book_table(rv: Review) -> pd.DataFrame:
    """The rep's book: distinct accounts before and during the plan, the peers' change and the test."""
    b = rv.book if rv.book is not None else pd.DataFrame()
    if b.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "Measure": list(b["label"]),
        "Before (weeks)": [f"{a:.0f} ({w:.0f})" for a, w in zip(b["rep_before"], b["weeks_before"])],
        "Plan so far (weeks)": [f"{a:.0f} ({w:.0f})" for a, w in zip(b["rep_during"], b["weeks_during"])],
        "Rep's change a week": [f"{(v - 1) * 100:+.0f}%" for v in b["rep_change"]],
        "Peers' change": [f"{(v - 1) * 100:+.0f}% ({k} peers)" for v, k in zip(b["peer_change"], b["n_peers"])],
        "Beyond the peers (one-sided bound)": [f"{(v - 1) * 100:+.0f}% (up to {(h - 1) * 100:+.0f}%)"
                                               for v, h in zip(b["relative"], b["high"])],
        "Shrank beyond noise": ["yes" if v else "no" for v in b["shrank"]],
    })


def _level(metric: str, level: float, low: float, high: float, events: float) -> str:
    """A level with its 95% interval; a count window without any event says so."""
    if level is None or not np.isfinite(level):
        return "no data"
    if METRICS[metric].kind == "count" and events == 0:
        return f"none (up to {value(metric, high)})"
    return f"{value(metric, level)} ({value(metric, low)}–{value(metric, high)})"


def recommendation(rv: Review) -> str:
    word = {"complete": "Complete the plan", "extend": "Extend the plan",
            "consequences": "Apply the stated consequences"}[rv.recommendation]
    weeks = int(rv.table["window_weeks"].max()) if len(rv.table) else 0
    lines = [f"### Recommended course of action: {word}", "",
             f"Overall attainment: **{rv.attainment:.0%}** of the focus measures reached their final target (the "
             f"whole 95% interval of the last {weeks} weeks at or beyond it).", ""]
    if rv.extended_end is not None:
        lines += [f"New plan end: **{rv.extended_end:%d %B %Y}**.", ""]
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


def scan_summary(card: pd.DataFrame, data: SalesData, *, panel: pd.DataFrame | None = None) -> str:
    """The opening of the team scan: the window and settings, who falls short beyond noise (the flags the
    false-flag budget covers), who is shown but not judged (named), how often chance alone would flag a rep,
    what the source cannot tell, and team findings."""
    attrs = card.attrs
    basis = "closed deals" if attrs["win_rate_basis"] == "closed" else "all opportunities"
    lines = [f"{attrs['weeks']} weeks from {attrs['window_start']:%d %b %Y} to {attrs['window_end']:%d %b %Y}; "
             f"peers by {attrs['peer_by']}; win rate on {basis}.",
             f"\n**{esc(headline(card))}**",
             f"\n{_false_flag_sentence(card)}"]
    lines += [f"\n**{kind}**: {esc(note)}." for kind, note in scan_notes(card, data)]    # unavailable, warnings
    lines += [f"\n**Team finding**: {esc(finding)}." for finding in team_findings(card, data, panel=panel)]
    missing = data.notes.get("open_opps_without_created_at", 0)
    if missing:
        lines.append(f"\n{plural(missing, 'open opportunity', 'open opportunities')} "
                     f"{'has' if missing == 1 else 'have'} no created date: counted in the open pipeline, not in "
                     "weekly creation.")
    return "\n".join(lines)


def _false_flag_sentence(card: pd.DataFrame) -> str:
    policy = card.attrs.get("policy")
    if policy is None:
        return ""
    judged = ", ".join(METRICS[m].label.lower() for m in FLAG_METRICS)
    return (f"One rule flags every metric: a shortfall only beyond the rep's own sampling noise and the real "
            f"spread between reps (funnel limits at z = {card.attrs['z_crit']:.2f}) and at least {policy.margin:.0%} "
            f"from the peer median, so a rep whose true rates equal their peers' is flagged on some metric at most "
            f"{policy.false_flag_rate:.0%} of the time (the policy's budget, shared by the {len(FLAG_METRICS)} "
            f"metrics it judges: {judged}). Other metrics are context, never flagged. *Not flagged* is not *fine*: "
            "a row \"below peers, within noise\" is lower than peers but not a proven shortfall, and each row states "
            "the level below which this window would flag.")


def shortfall_table(card: pd.DataFrame) -> pd.DataFrame:
    """One row per rep and shortfall metric, most flagged reps first (the manager's team view)."""
    order = {rep: i for i, rep in enumerate(flagged_reps(card))}
    rows = card[card["flag"] == "shortfall"].copy()
    rows = rows.sort_values(["rep_id"], key=lambda s: s.map(order), kind="stable")
    return pd.DataFrame({
        "Rep": rows["rep_name"], "Team": rows["team"], "Metric": rows["label"],
        "Value": [value(m, v) for m, v in zip(rows["metric"], rows["value"])],
        "Peer median": [value(m, v) for m, v in zip(rows["metric"], rows["peer_median"])],
        "Peers": [_count(n) for n in rows["n_peers"]],
        "Flagged beyond": [value(m, v) for m, v in zip(rows["metric"], rows["flag_limit"])],
        "Evidence": [_evidence(z) for z in rows["z"]],
    }).reset_index(drop=True)


def _evidence(z: float) -> str:
    """The funnel z-score in words (how far beyond the noise a shortfall lies)."""
    if not np.isfinite(z):
        return "—"
    return f"z = {z:+.1f}"


def plan_areas(plan: Plan) -> str:
    """Improvement areas of a plan with their rationale and evidence (shortfalls first)."""
    order = {"shortfall": 0, "strength": 1}
    parts = []
    for area in sorted(plan.improvement_areas, key=lambda a: order.get(a.classification, 3)):
        label = METRICS[area.metric].label
        share = f" It accounts for about {area.explains:.0%} of the gap in wins." if area.explains else ""
        parts.append(f"**{label} — {esc(area.classification)}.** {esc(area.rationale)}{share} "
                     f"*The numbers:* {esc(area.evidence)}.")
    return "\n\n".join(parts) or "No improvement area was recorded."


def plan_commitments(plan: Plan) -> str:
    return "\n".join([
        "**Consequences if expectations are not met**", "", bullet_list(plan.consequences), "",
        "**Resources available**", "", bullet_list(plan.resources), "",
        "**The manager's coaching commitments**", "", bullet_list(plan.coaching),
    ])


def verdict_table(rv: Review) -> pd.DataFrame:
    """The statistics of improvement as a display table: counts first, the verdict last. The range beside a
    verdict is the one it was decided on (see :func:`verdict_notes`); a measure not judged shows its 95% range."""
    v = rv.verdicts
    if v.empty:
        return pd.DataFrame({"Measure": [], "Verdict": []})
    judged = v["ci_kind"].eq("decision")
    return pd.DataFrame({
        "Measure": v["label"],
        "Baseline weeks (before the diagnosis)": [value(m, x) for m, x in zip(v["metric"], v["baseline"])],
        "Plan period": [value(m, x) for m, x in zip(v["metric"], v["actual"])],
        "Change beyond peers (decision range)": [
            _change(e, x, lo, hi, label="" if d else "95%: ") for e, x, lo, hi, d in
            zip(v["effect"], v["estimate"], v["ci_low"], v["ci_high"], judged)],
        "Change found 80% of the time": [_change(e, x, np.nan, np.nan) if d else "—"
                                         for e, x, d in zip(v["effect"], v["mde"], judged)],
        "Peers, same weeks": [_change(e, x, np.nan, np.nan) for e, x in zip(v["effect"], v["peer_change"])],
        "Verdict": v["verdict"],
    })


def baseline_notes(rv: Review) -> str:
    """A note for each measure whose two baselines differ: the plan's (where the glide path starts: the level before
    the diagnosis, or the target when that level met it) and the verdict's (the weeks before the diagnosis, which
    did not select the rep)."""
    if rv.verdicts.empty:
        return ""
    targets = {t.metric: t for t in rv.plan.targets}
    notes = []
    for row in rv.verdicts.itertuples():
        target = targets.get(row.metric)
        start = target.baseline if target is not None else None
        if start is None or not np.isfinite(start) or not np.isfinite(row.baseline):
            continue
        if value(row.metric, start) != value(row.metric, row.baseline):
            before = value(row.metric, row.baseline)
            origin = target.glide_origin()
            notes.append(f"- **{esc(row.label)}**: the glide path starts at {value(row.metric, start)}, {origin}; "
                         f"the verdict compares with {before}, the rep's level over the {row.baseline_weeks} weeks "
                         "before the diagnosis window. The diagnosis window is the stretch that put the rep on the "
                         "plan, so part of any rebound from it is chance; the earlier weeks did not select the rep.")
    if not notes:
        return ""
    return "**Why two baselines.**\n\n" + "\n".join(notes)


def _change(effect: str, estimate: float, low: float, high: float, *, label: str = "") -> str:
    if estimate is None or not np.isfinite(estimate):
        return "—"
    if "ratio" in str(effect):
        text = _signed_pct((estimate - 1) * 100, "%")
        span = (f" ({label}{_signed_pct((low - 1) * 100, '%')} to {_signed_pct((high - 1) * 100, '%')})"
                if np.isfinite(low) else "")
    else:
        text = _signed_pct(estimate * 100, " pts")
        span = (f" ({label}{_signed_pct(low * 100, '')} to {_signed_pct(high * 100, ' pts')})"
                if np.isfinite(low) else "")
    return text + span


def _signed_pct(x: float, unit: str) -> str:
    """``+47%``; a bound that is not zero never prints as ``+0`` or ``-0`` (``+0.4%``), so a range that excludes
    no change never reads as if it touched it."""
    if not np.isfinite(x):
        return "any" if np.isinf(x) else "n/a"
    for digits in (0, 1, 2):
        text = f"{x:+.{digits}f}"
        if x == 0 or float(text) != 0:
            return text + unit
    return text + unit


def verdict_notes(rv: Review) -> str:
    """One paragraph per measure in a manager's words, then how to read the ranges and how regression to the mean
    is handled."""
    if rv.verdicts.empty:
        return "No plan measure could be assessed."
    sentences = verdict_sentences(rv.verdicts)
    lines = [f"- **{esc(label)} — {verdict}.** {esc(sentence)}"
             for label, verdict, sentence in zip(rv.verdicts["label"], rv.verdicts["verdict"], sentences)]
    return "\n".join([*lines, "", f"*How to read this.* {METHOD_NOTE}"])
