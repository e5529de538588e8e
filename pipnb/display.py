"""How the analyst-facing objects show in Jupyter: a one-line ``__repr__`` and a small ``_repr_html_``.

:class:`~pipnb.data.SalesData`, :class:`~pipnb.diagnosis.Diagnosis`, :class:`~pipnb.plan.Plan` and
:class:`~pipnb.reviews.Review` call these, so ``data`` or ``dx`` at the end of a cell shows a summary card (what
it is about, its window, its key result) instead of whole tables. Every text from the data is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

__all__ = ["card_html", "diagnosis_facts", "plan_facts", "review_facts", "sales_data_facts", "short_repr"]


def short_repr(kind: str, facts: dict[str, Any]) -> str:
    """``<Kind key=value, ...>`` on one line (values from the data shown as ``repr``)."""
    shown = (f"{k.replace(' ', '_')}={v!r}" if isinstance(v, str) else f"{k.replace(' ', '_')}={v}"
             for k, v in facts.items())
    return f"<{kind} " + ", ".join(shown) + ">"


def card_html(title: str, facts: dict[str, Any], tables: Iterable[tuple[str, Any]] = ()) -> str:
    """A title, a two-column table of facts, then small titled tables (DataFrames, shown escaped)."""
    esc = html.escape
    rows = "".join(f"<tr><th style='text-align:left'>{esc(str(k))}</th><td style='text-align:left'>{esc(str(v))}"
                   "</td></tr>" for k, v in facts.items())
    parts = [f"<div class='pipnb-card'><strong>{esc(title)}</strong><table>{rows}</table>"]
    for caption, frame in tables:
        if frame is not None and len(frame):
            parts.append(f"<details><summary>{esc(caption)}</summary>{frame.to_html(index=False, escape=True)}"
                         "</details>")
    return "".join(parts) + "</div>"


def _day(value: Any) -> str:
    return f"{value:%Y-%m-%d}" if value is not None and hasattr(value, "strftime") else str(value)


def sales_data_facts(data) -> dict[str, Any]:
    facts: dict[str, Any] = {"source": str(data.source), "reps": len(data.reps),
                             "opportunities": len(data.opportunities),
                             "activities": len(data.activities) if data.activities is not None else "none"}
    try:
        first, last = data.period
        facts["period"] = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    except Exception:  # noqa: BLE001 - a display never raises
        pass
    return facts


def diagnosis_facts(dx) -> dict[str, Any]:
    return {"rep": f"{dx.rep_name} ({dx.rep_id})", "window": f"{_day(dx.window_start)} to {_day(dx.window_end)}",
            "weeks": dx.weeks, "peers": f"{dx.n_peers} by {dx.peer_by}",
            "improvement areas": ", ".join(dx.improvement_areas) or "none"}


def plan_facts(plan) -> dict[str, Any]:
    return {"rep": f"{plan.rep_name} ({plan.rep_id})", "status": plan.status,
            "period": f"{_day(plan.start)} to {_day(plan.end)}", "checkpoints": plan.checkpoints,
            "targets": ", ".join(t.metric for t in plan.targets)}


def review_facts(rv) -> dict[str, Any]:
    facts = {"rep": f"{rv.plan.rep_name} ({rv.plan.rep_id})", "stage": rv.stage, "as of": _day(rv.as_of),
             "window": f"{_day(rv.window_start)} to {_day(rv.window_end)}"}
    if rv.recommendation:
        facts["recommendation"] = rv.recommendation
    return facts
