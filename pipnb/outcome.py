"""What a report tells the dashboard: the *outcome* its notebook records for ``reports/index.html``.

The dashboard (:mod:`pipnb.dashboard`) never recomputes a statistic: it reads what each executed notebook
recorded. A notebook records its outcome with :func:`record_outcome` in a cell tagged ``remove-cell`` (so the
report does not show it): the call displays a JSON bundle of the media type :data:`pipnb.record.MIME`. When
the run ends, :mod:`pipnb.execute` reads it back (:func:`pipnb.record.read_outcome`) into the notebook's
:class:`~pipnb.record.RunRecord` (``outcome``), so ``read_record(path).outcome`` is what the report concluded.

Outcomes are plain JSON:

* a checkpoint or final review (:func:`review_outcome`): per measure its status (*met*, *not met*, *not yet
  clear*, *no data*; at the final review the final target's, on the last window) and its glide-path status,
  with a one-sentence reason and its weekly values since the diagnosis window (for a
  sparkline), the status line, the recommendation and the extension's new end (final), the next review and
  its date, and at checkpoint 1 how many of the plan's dead opportunities remain open and untouched;
* a team scan (:func:`scan_outcome`): the reps it flags on the win rate or a driver, with their team and the
  metrics they fall short on;
* a diagnosis (:func:`diagnosis_outcome`): whether the latest scan rules would flag the rep, and the data's
  last day.

Example
-------
>>> pn.outcome.record_outcome(pn.outcome.review_outcome(rv, panel, data))   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipnb.diagnosis import remaining_dead
from pipnb.record import MIME
from pipnb.scan import flagged_reps
from pipnb.schema import DRIVER_METRICS
from pipnb.text import measure_reason, status_line

if TYPE_CHECKING:
    from pipnb.data import SalesData
    from pipnb.diagnosis import Diagnosis
    from pipnb.reviews import Review

__all__ = ["diagnosis_outcome", "record_outcome", "review_outcome", "scan_outcome"]

def record_outcome(outcome: Mapping[str, Any]) -> None:
    """Display ``outcome`` as a :data:`MIME` bundle: what the runner records for the dashboard."""
    from IPython.display import display  # IPython (70 ms): only a running notebook displays the outcome

    display({MIME: _plain(outcome), "text/plain": "(outcome recorded for the dashboard)"}, raw=True)


def review_outcome(rv: Review, panel: pd.DataFrame, data: SalesData) -> dict[str, Any]:
    """What a checkpoint or the final review concluded, for the dashboard.

    Parameters
    ----------
    rv
        The review (:func:`pipnb.review`).
    panel
        The weekly panel the review used: the weekly values of the rep's measures are sliced from it.
    data
        The data the review read (its last day is recorded; checkpoint 1 counts the dead opportunities left).
    """
    plan = rv.plan
    mine = panel[(panel["rep_id"] == plan.rep_id) & (panel["week"] >= pd.Timestamp(plan.diagnosis_window.start))
                 & (panel["week"] <= pd.Timestamp(rv.as_of))]
    measures = []
    for row in rv.table.itertuples():
        weekly = mine[mine["metric"] == row.metric].sort_values("week")
        measures.append({
            "metric": row.metric, "label": row.label, "focus": bool(row.focus), "status": row.status,
            "glide_status": row.glide_status, "final_status": row.final_status or "",
            "reason": measure_reason(row), "target": _num(row.target), "final_target": _num(row.final_target),
            "since_start": _num(row.since_start),
            "weekly": [[f"{w:%Y-%m-%d}", _num(v)] for w, v in zip(weekly["week"], weekly["value"], strict=True)],
        })
    stages = plan.stages()
    later = stages[stages.index(rv.stage) + 1:]
    dates = plan.checkpoint_dates()
    out: dict[str, Any] = {
        "kind": "review", "rep_id": plan.rep_id, "stage": rv.stage, "as_of": f"{rv.as_of}",
        "plan_start": f"{plan.start}", "plan_end": f"{plan.end}", "data_end": f"{data.period[1]:%Y-%m-%d}",
        "status_line": status_line(rv), "measures": measures,
        "next_stage": later[0] if later else "", "next_date": f"{dates[later[0]]}" if later else "",
        "recommendation": rv.recommendation or "", "reasons": list(rv.reasons) if rv.is_final else [],
        "extended_end": f"{rv.extended_end}" if rv.extended_end is not None else "",
    }
    if plan.dead_opportunities:
        left = remaining_dead(data, plan, rv.as_of)
        out["dead"] = {"listed": len(plan.dead_opportunities), "remaining": len(left)}
    return out


def scan_outcome(card: pd.DataFrame, data: SalesData) -> dict[str, Any]:
    """The reps the team scan flags on the win rate or a driver (most shortfalls first), for the dashboard."""
    reps = data.reps.set_index("rep_id")
    short = card[(card["flag"] == "shortfall") & card["metric"].isin(("win_rate", *DRIVER_METRICS))]
    flagged = []
    for rep_id in flagged_reps(card, plan_metrics_only=True):
        rep = reps.loc[rep_id]
        flagged.append({"rep_id": str(rep_id), "rep_name": str(rep["rep_name"]), "team": str(rep["team"]),
                        "manager": _text(rep.get("manager")),
                        "metrics": sorted(short.loc[short["rep_id"] == rep_id, "metric"].astype(str))})
    return {"kind": "scan", "as_of": f"{card.attrs['window_end']:%Y-%m-%d}",
            "data_end": f"{data.period[1]:%Y-%m-%d}", "flagged": flagged}


def diagnosis_outcome(dx: Diagnosis, data: SalesData) -> dict[str, Any]:
    """What a diagnosis concluded, for the dashboard: its improvement areas and dead opportunities."""
    return {"kind": "diagnosis", "rep_id": str(dx.rep_id), "as_of": f"{pd.Timestamp(dx.as_of):%Y-%m-%d}",
            "data_end": f"{data.period[1]:%Y-%m-%d}", "improvement_areas": list(dx.improvement_areas),
            "dead": 0 if dx.dead is None else len(dx.dead)}


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 6) if math.isfinite(number) else None


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO strings, numpy scalars as Python numbers, NaN as None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()[:10]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
