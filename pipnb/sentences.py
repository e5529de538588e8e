"""One metric's verdict in words: the sentence a sales manager reads beside each row of a review's verdict table.

The statistics of improvement (:mod:`pipnb.stats`) return numbers and the facts a sentence needs, one verdict row
per metric (:func:`pipnb.stats.verdict_record`); :func:`describe_verdict` words such a row, and
:data:`METHOD_NOTE` says how to read them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipnb.findings import plural
from pipnb.lifecycle import MIN_EVENT_WEEKS
from pipnb.schema import METRICS
from pipnb.stats._common import NO_CLEAR_CHANGE, TOO_EARLY

if TYPE_CHECKING:   # annotations only
    from pipnb.reviews import Review
    from pipnb.stats import MetricChange


METHOD_NOTE = (
    "Reps are put on a plan after a bad stretch, so some recovery happens by chance (regression to the "
    "mean). The plan period is therefore compared with an earlier baseline that did not select the rep, "
    "never with the stretch that triggered the plan; the rep's change is measured beyond what peers did "
    "over the same weeks, with its uncertainty widened when the peers refitted as if on the plan vary more "
    "than the model expects. Only the plan's improvement areas are judged, and the checkpoints and the final "
    "review share one error budget (a checkpoint needs a much larger change to say 'improved' than the final "
    "review). The decision range is the change plus or minus the boundary this look must pass, in standard "
    "errors (5% each way, one-sided, spread over the four looks and the improvement areas, so it is not a 95% "
    "interval): the verdict is 'improved' or 'worse' exactly when the whole range lies on one side of no change. "
    "The change found 80% of the time is the true change this look would call 'improved' four times in five; "
    "smaller true changes are found too, less often, so an 'improved' verdict on a smaller change is no "
    "contradiction. 'Too early to tell' means the data so far could not have shown the change the target asks for."
)


def describe_change(change: MetricChange, verdict: str, *, target: float | None = None,
                    baseline_label: str = "", caveat: str = "") -> str:
    """:func:`describe_verdict` of one change (its verdict row built by :func:`pipnb.stats.verdict_record`).

    Parameters
    ----------
    change
        The metric's change.
    verdict
        From :func:`pipnb.stats.decide_verdict`.
    target
        The plan's final target, if any.
    baseline_label
        The baseline window in words (``PlanWindows.describe_baseline()``).
    caveat
        Sentences appended at the end (short or selecting baseline, few peers).
    """
    from pipnb.stats.assessment import verdict_record  # the models behind it load scipy and statsmodels (heavy)

    return describe_verdict(verdict_record(change, verdict, target=target, baseline_window=baseline_label,
                                           caveat=caveat))


def describe_verdict(row: Mapping[str, Any]) -> str:
    """One paragraph a sales manager can read about a verdict row: counts and ranges, then the verdict, then peers.

    ``row`` is one row of :func:`pipnb.stats.assess` (``Review.verdicts``), as a mapping. Names no peer: peers
    appear only as "peers over the same weeks" and a count.

    Example
    -------
    ``"Emails per week: 17.3 a week over 13 plan weeks (222 in all), against 12.6 a week over the 12
    baseline weeks (1 Jan – 24 Mar 2024). Beyond what peers did, the change is +41% (plausibly +6% to
    +86%). Verdict: no clear change yet (this data would show a change of +49% or more). Peers over the
    same weeks: -2%; measured the same way, none of 29 peers improved as much."``
    """
    c = SimpleNamespace(**row)
    target = None if c.target is None or not np.isfinite(c.target) else float(c.target)
    label = METRICS[c.metric].label if c.metric in METRICS else c.metric
    parts = [f"{label}: {_levels(c, c.baseline_window)}.", _range_text(c),
             _target_text(c, target), f"Verdict: {c.verdict}{_verdict_reason(c, c.verdict)}.",
             _peer_text(c), c.caveat]
    return " ".join(p for p in parts if p)


def review_record(rv: Review) -> dict[str, Any]:
    """``rv.to_dict()`` with each verdict's sentence (``pipnb review --format json``)."""
    record = rv.to_dict()
    for verdict, sentence in zip(record["verdicts"], verdict_sentences(rv.verdicts)):
        verdict["sentence"] = sentence
    for event, fact in zip(record.get("events", []), rv.events):
        event["sentence"] = describe_event(fact)
    return record


_EVENT_WORDS = {"territory": "territory or accounts changed", "segment": "segment or quota changed",
                "other": "a change the rep does not control"}


def describe_event(fact: Mapping[str, Any]) -> str:
    """The sentence a review states about one signed plan event, from its record
    (:func:`pipnb.events.event_facts`): kind, dates, note, signer, and what the review did about it (the weeks a
    leave set aside, or the metrics rebaselined from the event, their reference weeks and the factor measured)."""
    f = SimpleNamespace(**fact)
    signed = f"signed by {f.by} on {f.signed:%d %b %Y}"
    if f.kind == "leave":
        head = (f"Leave from {f.start:%d %b %Y} to {f.end:%d %b %Y} ({plural(f.leave_weeks, 'week')}), {signed}: "
                f"\u201c{f.note}\u201d.")
        if f.weeks_set_aside:
            return (f"{head} {plural(f.weeks_set_aside, 'week')} of it so far "
                    f"{'was' if f.weeks_set_aside == 1 else 'were'} set aside: not plan weeks, for any metric.")
        return f"{head} None of its weeks has begun by this review."
    head = f"Plan event from {f.start:%d %b %Y} ({_EVENT_WORDS[f.kind]}), {signed}: \u201c{f.note}\u201d."
    if not f.metrics:
        return f"{head} It affects no metric of this plan."
    parts = []
    for m in f.metrics:
        m = SimpleNamespace(**m)
        where = (f"re-measured over the {plural(m.reference_weeks, 'week')} {m.reference_start:%d %b} – "
                 f"{m.reference_end:%d %b %Y}")
        if m.judged and np.isfinite(m.factor):
            parts.append(f"{m.label} {where} at {m.factor:.0%} of the plan's baseline, its glide, final target and "
                         f"the peers' level scaled to match, and judged on the weeks from {m.judged_start:%d %b %Y}")
        elif np.isfinite(m.factor):
            parts.append(f"{m.label} {where} at {m.factor:.0%} of the plan's baseline, and not judged at this review "
                         f"(fewer than {plural(MIN_EVENT_WEEKS, 'week')} after its reference weeks, so no consequence "
                         "rests on it)")
        else:
            parts.append(f"{m.label} {where}, and not judged at this review (no reference level measured yet, so "
                         "no consequence rests on it)")
    return f"{head} Rebaselined: " + "; ".join(parts) + "."


def verdict_sentences(verdicts: pd.DataFrame) -> pd.Series:
    """:func:`describe_verdict` of every row of a verdict table (:func:`pipnb.stats.assess`), on its index."""
    return pd.Series([describe_verdict(row) for row in verdicts.to_dict(orient="records")], index=verdicts.index,
                     dtype=object)


def _levels(c: SimpleNamespace, baseline_label: str) -> str:
    plan = f"over {_weeks(c.plan_weeks, 'plan')}"
    base = f"over the {_weeks(c.baseline_weeks, 'baseline')}"
    base += f" ({baseline_label})" if baseline_label else ""
    if c.plan_weeks == 0:
        return f"no complete plan week yet; the baseline is {_baseline_value(c)} {base}"
    if c.kind == "count":
        return (f"{_num(c.actual)} a week {plan} ({c.plan_count:.0f} in all), "
                f"against {_num(c.baseline)} a week {base}")
    if c.kind == "ratio":
        shrunk = (f", or {_percent(c.baseline)} once weighed against the peer rate"
                  if np.isfinite(c.baseline) and abs(c.baseline - c.baseline_raw) >= 0.005 else "")
        return (f"{c.plan_successes:.0f} of {c.plan_trials:.0f} ({_percent(c.actual)}) {plan}, against "
                f"{c.baseline_successes:.0f} of {c.baseline_trials:.0f} ({_percent(c.baseline_raw)}) "
                f"{base}{shrunk}")
    return (f"{_num(c.actual)} days on average {plan} ({c.plan_closed:.0f} gaps closed; gaps still open "
            f"count as running), against {_num(c.baseline)} days {base}")


def _weeks(n: int, kind: str) -> str:
    return f"{n} {kind} week{'s' * (n != 1)}"


def _baseline_value(c: SimpleNamespace) -> str:
    if c.kind == "count":
        return f"{_num(c.baseline)} a week"
    if c.kind == "ratio":
        return f"{c.baseline_successes:.0f} of {c.baseline_trials:.0f} ({_percent(c.baseline_raw)})"
    return f"{_num(c.baseline)} days"


def _num(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.1f}"


def _percent(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.0%}"


def _signed(value: float, effect: str, *, unit: bool = True, plural: bool = False) -> str:
    """'+41%', '-6 points', '+12'; ratios shown as percent changes. A value that is not zero never prints as
    '+0' or '-0' ('+0.4%'), so a range that excludes no change never reads as touching it."""
    if not np.isfinite(value):
        return "n/a" if np.isnan(value) else "any change"
    if effect == "difference in points":
        points = _nonzero(value * 100)
        return points + (f" point{'s' * (plural or points not in ('+1', '-1'))}" if unit else "")
    return f"{_nonzero((value - 1) * 100)}%"


def _nonzero(x: float) -> str:
    for digits in (0, 1, 2):
        text = f"{x:+.{digits}f}"
        if x == 0 or float(text) != 0:
            return text
    return text


def _range_text(c: SimpleNamespace) -> str:
    if not np.isfinite(c.estimate):
        return "There is not enough data yet to measure a change."
    what = "the gap between touches changed by" if c.kind == "gap" else "the change is"
    against = "Beyond what peers did" if np.isfinite(c.peer_change) else "Against the baseline (no peers)"
    decision = getattr(c, "ci_kind", "95%") == "decision"
    name = "decision range" if decision else "95% interval"
    side = (f", the change ± {c.ci_z:.2f} standard errors, this look's boundary" if decision else "")
    return (f"{against}, {what} {_signed(c.estimate, c.effect)} ({name} "
            f"{_signed(c.ci_low, c.effect, unit=False)} to {_signed(c.ci_high, c.effect, plural=True)}{side}).")


def _target_text(c: SimpleNamespace, target: float | None) -> str:
    """The target and its status, read from the review's table (the same rule as the status column); without a
    review's status, the target alone."""
    if target is None or not np.isfinite(target):
        return ""
    fmt = METRICS[c.metric].fmt if c.metric in METRICS else (lambda v: f"{v:.1f}")
    status, basis = getattr(c, "target_status", ""), getattr(c, "target_basis", "")
    if not isinstance(status, str) or not status or basis not in ("final", "glide"):
        return f"Target: {fmt(target)} by the end of the plan."
    weeks = int(c.target_weeks) if np.isfinite(c.target_weeks) else 0
    span = f"{weeks} week{'s' * (weeks != 1)}"
    if not np.isfinite(c.target_level):
        level = "no data"
    elif c.kind == "count" and c.target_level == 0:
        level = f"none (95% interval up to {fmt(c.target_high)})"
    else:
        level = f"{fmt(c.target_level)} (95% interval {fmt(c.target_low)}–{fmt(c.target_high)})"
    raw = float(getattr(c, "target_unadjusted", np.nan))
    raw = raw if np.isfinite(raw) else (target if basis == "final" else c.target_expected)
    moved = (f" ({fmt(c.target_expected)} with the team's change)"
             if np.isfinite(c.target_expected) and fmt(c.target_expected) != fmt(raw) else "")
    if basis == "final":
        return f"Final target {fmt(target)}{moved}: {status} — {level} over the last {span}."
    return (f"Target {fmt(target)} by the end of the plan; {fmt(raw)} expected on average by now{moved}: "
            f"{status} — {level} over the {span} of the plan so far.")


def _verdict_reason(c: SimpleNamespace, verdict: str) -> str:
    if verdict == TOO_EARLY and not np.isfinite(c.estimate):
        return f" — {_missing_reason(c)}"
    if verdict == TOO_EARLY:
        wanted = c.target_change
        if c.nothing_detectable or not np.isfinite(wanted):
            return f" — {_weeks(c.plan_weeks, 'plan')} of data cannot show a change yet"
        return (f" — with {_weeks(c.plan_weeks, 'plan')}, this look would find a true change of "
                f"{_signed(c.mde, c.effect)} only 80% of the time, and the target asks for "
                f"{_signed(wanted, c.effect)}")
    if verdict == NO_CLEAR_CHANGE and np.isfinite(c.mde) and not c.nothing_detectable:
        return f" (this look finds a true change of {_signed(c.mde, c.effect)} 80% of the time)"
    return ""


def _missing_reason(c: SimpleNamespace) -> str:
    """Why there is no estimate, from the counts: too few trials, no events, or no weeks."""
    if c.plan_weeks == 0:
        return "no complete plan week yet"
    if c.kind == "ratio":
        need = int(c.min_trials) if np.isfinite(c.min_trials) else 0
        plan, base = c.plan_trials, c.baseline_trials
        short = [f"{n:.0f} {name}" for n, name in ((plan, "in the plan period"), (base, "in the baseline"))
                 if np.isfinite(n) and n < need]
        if short:
            return (f"only {' and '.join(short)} so far (of {plan:.0f} plan and {base:.0f} baseline trials); a "
                    f"verdict needs at least {need} in each")
    if c.kind == "count" and (c.plan_count + c.baseline_count) == 0:
        return "no events in the plan period or the baseline"
    if c.kind == "count" and not np.isfinite(c.baseline) or c.baseline_weeks == 0:
        return "no baseline weeks to compare with"
    return "the peers' weeks give no comparison yet"


def _peer_text(c: SimpleNamespace) -> str:
    if not np.isfinite(c.peer_change):
        return "No peers to compare with over the same weeks." if c.placebo_n == 0 else ""
    text = f"Peers over the same weeks: {_signed(c.peer_change, c.effect)}"
    if c.placebo_n == 0:      # the peers' pooled change exists, but none has enough data of its own to rank
        return text + "; no peer has enough data of its own to rank the rep's change among them."
    if np.isfinite(c.placebo_rank):
        toward_better = c.direction >= 0
        k = int(c.placebo_rank) - 1 if toward_better else int(c.placebo_n) + 1 - int(c.placebo_rank)
        way = "improved" if toward_better else "declined"
        text += f"; measured the same way, {'none' if k == 0 else k} of {int(c.placebo_n)} peers {way} as much"
    return text + "."
