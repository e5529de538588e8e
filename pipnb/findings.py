"""The finding for one rep and one metric: what the numbers show, as a classification and in words.

Each row of a :func:`pipnb.scorecard` is the structured finding for one metric: the rep's value and counts,
the peers' median and middle half, the rep's percentile, the funnel z-score and the flag limit, the
classification (``flag``) and, when the metric cannot be judged, why (``why_unavailable``). Every sentence a
report says about the metric is rendered here from that row, so no sentence can say what the numbers deny.

Classifications (the ``flag`` column)
-------------------------------------
``shortfall``
    Worse than the peers' level beyond the noise expected between reps (the funnel limit at the policy's
    false-flag budget) *and* beyond the practical margin from the peer median.
``strength``
    Better than peers beyond the noise and the margin.
``in line``
    Within the noise expected between reps and not worse than the peer median by more than the margin
    (parity: the only classification worded "in line with peers").
``below peers, within noise``
    Worse than the peer median by more than the margin, but not beyond the noise: not a proven shortfall.
``below peers, within the margin``
    Worse than peers beyond the noise, but by less than the margin: not a shortfall by the policy's rule.
``below peers, not confirmed``
    A shortfall in this window that the window before did not show (the policy's confirmation rule).
``unavailable``
    The metric cannot be judged for this rep; ``why_unavailable`` says why (the source has no activities
    table, no meetings, no amounts; no records in the window; too few deals or peers to judge).
``ramping``, ``inactive``
    The rep is new, or has left: neither judged nor a peer.
``context``
    A metric the rule cannot judge (a product of other metrics such as pipeline velocity, or one that is
    neither an outcome nor a driver): shown, never flagged.
"""

from __future__ import annotations

import math

from pipnb.schema import METRICS, Metric

SHORTFALL, STRENGTH, IN_LINE = "shortfall", "strength", "in line"
BELOW_NOISE, BELOW_MARGIN, UNCONFIRMED = ("below peers, within noise", "below peers, within the margin",
                                          "below peers, not confirmed")
UNAVAILABLE, RAMPING, INACTIVE, CONTEXT = "unavailable", "ramping", "inactive", "context"
CLASSIFICATIONS = (SHORTFALL, STRENGTH, IN_LINE, BELOW_NOISE, BELOW_MARGIN, UNCONFIRMED, UNAVAILABLE, RAMPING,
                   INACTIVE, CONTEXT)
#: the classifications of a rep the scan does not judge on the metric
NOT_JUDGED = (UNAVAILABLE, RAMPING, INACTIVE, CONTEXT)

NO_RECORDS = "no records in the window"
NOT_JUDGED_REP = (RAMPING, INACTIVE)


def classify(*, value: float, median: float, z: float, crit: float, margin: float, higher_is_better: bool) -> str:
    """The classification of a judged finding (finite ``z``), by the one rule of the module docstring."""
    worse = value < median if higher_is_better else value > median
    far = abs(value - median) > margin * abs(median)
    if z <= -crit and far and worse:
        return SHORTFALL
    if z >= crit and far and not worse:
        return STRENGTH
    if worse and far:
        return BELOW_NOISE
    if worse and z <= -crit:
        return BELOW_MARGIN
    return IN_LINE


def ordinal(p: float) -> str:
    """A percentile as words: ``0th``, ``21st``, ``52nd``; ``—`` when unknown."""
    if not _finite(p):
        return "—"
    n = int(round(p))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def plural(n: float, noun: str, plural_form: str | None = None) -> str:
    """``1 open deal``, ``2 open deals`` (``plural_form`` when the plural is not noun + s)."""
    count = int(round(n))
    return f"{count:,} {noun if count == 1 else (plural_form or noun + 's')}"


def what_it_shows(flag: str, metric: Metric, *, margin: float | None = None, why: str = "") -> str:
    """The classification in words (the part of a sentence after the numbers)."""
    lower = "lower than peers" if metric.higher_is_better else "higher than peers"
    margin_words = f"the {margin:.0%} margin" if margin is not None else "the margin"
    return {
        SHORTFALL: f"{lower} beyond the spread expected between reps and beyond {margin_words}: a shortfall",
        STRENGTH: "better than peers beyond the spread expected between reps",
        IN_LINE: "in line with peers (within the spread expected between reps)",
        BELOW_NOISE: f"{lower}, but within the spread expected between reps — not a proven shortfall",
        BELOW_MARGIN: f"{lower} beyond the spread expected between reps, but within {margin_words} — not a "
                      "shortfall by the policy's rule",
        UNCONFIRMED: f"{lower} beyond the spread expected between reps in this window, but not in the window "
                     "before — not put forward (the policy asks for both)",
        UNAVAILABLE: f"unavailable: {why}" if why else "unavailable",
        RAMPING: "still ramping: not judged",
        INACTIVE: "left the company: not judged",
        CONTEXT: f"context, not judged ({why})" if why else "context, not judged",
    }.get(flag, flag)


def finding_sentence(row, *, margin: float | None = None) -> str:
    """One sentence for one scorecard row: the numbers, then what they show.

    Example: ``Emails per week 33.5/wk vs peers' median 61.2/wk (0th percentile of 9 peers): lower than peers,
    but within the spread expected between reps — not a proven shortfall``.
    """
    metric = METRICS[_get(row, "metric")]
    flag = str(_get(row, "flag"))
    why = str(_get(row, "why_unavailable") or "")
    shows = what_it_shows(flag, metric, margin=margin, why=why)
    value = _get(row, "value")
    if flag == UNAVAILABLE or not _finite(value):
        return f"{metric.label}: {shows}"
    own = f"{metric.label} {metric.fmt(value)}"
    median, n_peers = _get(row, "peer_median"), _get(row, "n_peers")
    if not _finite(median) or not _finite(n_peers) or n_peers < 1:
        return f"{own}: no peers to compare with; {shows}"
    peers = f"vs peers' median {metric.fmt(median)} ({ordinal(_get(row, 'percentile'))} percentile of " \
            f"{plural(n_peers, 'peer')})"
    return f"{own} {peers}: {shows}"


def _get(row, name: str):
    if isinstance(row, dict):
        return row.get(name)
    return getattr(row, name, None) if not hasattr(row, "get") else row.get(name)


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
