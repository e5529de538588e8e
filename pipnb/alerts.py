"""Warnings that matter: facts about the data that would make a number mislead if nobody said them.

Each warning is a :class:`DataWarning` (the facts: what, which metric, how many, over what) and is worded by
:func:`warning_line`, one line, the same in ``pipnb check``, the scan's output and the team-scan report:

- ``no_created``: nobody created an opportunity in the window (no created date falls in it). "Opportunities
  created per week" is then not measurable there — a scan marks it unavailable (:func:`not_measurable`) rather
  than compare zeros, and nothing may be set or judged on it.
- ``all_zero``: a metric where more is better is 0 for every rep (a mapping that misses a kind of activity, a
  column left blank ...).
- ``ledger``: a warning the load recorded (:class:`pipnb.ledger.LoadWarning`: a skip that left a rep with one
  outcome).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipnb.data import SalesData
from pipnb.schema import METRICS

NO_CREATED, ALL_ZERO, LEDGER = "no_created", "all_zero", "ledger"
CREATED = "opps_created_per_week"
#: why "opportunities created" is unavailable in a window where nobody created one
NOT_MEASURABLE = "not measurable in this window: nobody created an opportunity in it"


@dataclass(frozen=True)
class DataWarning:
    """One warning: its ``kind``, the ``metric`` it is about (or None), how many reps it covers (``reps``), the
    window (``start``, ``end``, or None) and, for a load's own warning, its ``text``."""

    kind: str
    metric: str | None = None
    reps: int = 0
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    text: str = ""


def _window(w: DataWarning) -> str:
    return f" from {w.start:%Y-%m-%d} to {w.end:%Y-%m-%d}" if w.start is not None and w.end is not None else ""


def warning_line(w: DataWarning) -> str:
    """The one line that says ``w``."""
    if w.kind == NO_CREATED:
        return (f"nobody created an opportunity{_window(w)} ({w.reps} reps): opportunities created per week is not "
                "measurable in this window, so it is neither judged nor a target; check the source's created dates")
    if w.kind == ALL_ZERO:
        label = METRICS[w.metric].label.lower()
        return (f"{label} is 0 for every rep{_window(w)} ({w.reps} reps): check that the source maps it (a kind of "
                "activity or a column may be missing or misnamed)")
    return w.text


def nobody_created(pooled: pd.DataFrame) -> bool:
    """Whether no rep created an opportunity in the window of ``pooled`` (per-rep window metrics)."""
    rows = pooled[pooled["metric"] == CREATED]
    return len(rows) > 0 and not (rows["numerator"].fillna(0) > 0).any()


def not_measurable(pooled: pd.DataFrame) -> dict[str, str]:
    """The metrics a window cannot measure, and why (a scan treats them like those the source lacks)."""
    return {CREATED: NOT_MEASURABLE} if nobody_created(pooled) else {}


def window_warnings(pooled: pd.DataFrame, *, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
                    unavailable: set[str] = frozenset()) -> list[DataWarning]:
    """The warnings of one window, from per-rep window metrics (``rep_id, metric, numerator, value``: a scan's
    card or :func:`pipnb.metrics.window_metrics`); metrics in ``unavailable`` (the source cannot give them) are
    not warned about again."""
    reps = int(pooled["rep_id"].nunique())
    out = []
    if CREATED not in unavailable and nobody_created(pooled):
        out.append(DataWarning(NO_CREATED, CREATED, reps, start, end))
    for metric, rows in pooled.groupby("metric", sort=False):
        spec = METRICS.get(metric)
        if spec is None or metric == CREATED or metric in unavailable or not spec.higher_is_better \
                or spec.kind == "derived":      # a product of others (velocity): their warning says it
            continue
        values = rows["value"].to_numpy(dtype=float)
        if len(values) and np.isfinite(values).all() and (values == 0).all():
            out.append(DataWarning(ALL_ZERO, metric, reps, start, end))
    return out


def ledger_warnings(data: SalesData) -> list[DataWarning]:
    """The warnings the load recorded (``data.quality.warnings``: the ledger's :class:`~pipnb.ledger.LoadWarning`
    records, such as a skip that left reps with one outcome), each worded as the ledger words it."""
    texts = [w.text for w in data.quality.warnings]
    return [DataWarning(LEDGER, text=t) for t in dict.fromkeys(texts)]


def card_warnings(card: pd.DataFrame, data: SalesData) -> list[DataWarning]:
    """Every warning of a scan: the load's, then the window's (from the card of :func:`pipnb.scorecard`)."""
    attrs = card.attrs
    unavailable = set(card.loc[card["why_unavailable"].astype(str).str.startswith("the source"), "metric"]) \
        if "why_unavailable" in card else set()
    judged = card[card["flag"].astype(str) != "inactive"] if "flag" in card else card
    return ledger_warnings(data) + window_warnings(judged, start=attrs.get("window_start"),
                                                   end=attrs.get("window_end"), unavailable=unavailable)
