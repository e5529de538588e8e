"""Names of the canonical tables, their columns and the metric catalogue.

Columns are named here once; every other module refers to these constants.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- canonical tables -------------------------------------------------------------------------
TABLES = ("reps", "opportunities", "activities")

REQUIRED = {
    "reps": ("rep_id", "rep_name", "team"),
    "opportunities": ("opp_id", "rep_id", "created_at", "outcome"),
    "activities": ("activity_id", "rep_id", "kind", "occurred_at"),
}
OPTIONAL = {
    "reps": ("manager", "segment", "hire_date"),
    "opportunities": ("closed_at", "amount", "account_id"),
    "activities": ("opp_id", "account_id"),
}
ID_COLUMN = {"reps": "rep_id", "opportunities": "opp_id", "activities": "activity_id"}
DATE_COLUMNS = {
    "reps": ("hire_date",),
    "opportunities": ("created_at", "closed_at"),
    "activities": ("occurred_at",),
}
OUTCOMES = ("open", "won", "lost")
KINDS = ("email", "call", "meeting")

# -- the weekly panel -------------------------------------------------------------------------
PANEL_COLUMNS = ("rep_id", "week", "metric", "numerator", "denominator", "value")


@dataclass(frozen=True)
class Metric:
    """One metric of the catalogue.

    Attributes
    ----------
    name
        Column value in the panel's ``metric`` column.
    label
        Words a sales manager reads.
    kind
        ``"count"`` (events per week), ``"ratio"`` (successes / trials),
        ``"mean"`` (a pooled average such as days) or ``"derived"`` (computed from others).
    higher_is_better
        Direction used by flags and verdicts.
    needs
        The tables the metric is computed from; when one is missing the metric is unavailable.
    unit
        How the value is shown: ``"per week"``, ``"%"``, ``"days"``, ``"$"``.
    """

    name: str
    label: str
    kind: str
    higher_is_better: bool
    needs: tuple[str, ...]
    unit: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("win_rate", "Win rate", "ratio", True, ("opportunities",), "%"),
    Metric("opps_created_per_week", "Opportunities created per week", "count", True, ("opportunities",),
           "per week"),
    Metric("first_meetings_per_week", "First meetings per week", "count", True,
           ("opportunities", "activities"), "per week"),
    Metric("followup_meeting_ratio", "Follow-up meeting ratio", "ratio", True,
           ("opportunities", "activities"), "%"),
    Metric("meetings_per_week", "Meetings per week (all)", "count", True, ("activities",), "per week"),
    Metric("emails_per_week", "Emails per week", "count", True, ("activities",), "per week"),
    Metric("calls_per_week", "Calls per week", "count", True, ("activities",), "per week"),
    Metric("avg_days_between_touches", "Average days between touches", "mean", False,
           ("opportunities", "activities"), "days"),
    Metric("stale_opp_share", "Share of open opportunities untouched > 14 days", "ratio", False,
           ("opportunities", "activities"), "%"),
    Metric("avg_deal_size", "Average won deal size", "mean", True, ("opportunities",), "$"),
    Metric("sales_cycle_days", "Sales cycle (days, won deals)", "mean", False, ("opportunities",), "days"),
    Metric("pipeline_velocity", "Pipeline velocity ($ per day)", "derived", True, ("opportunities",),
           "$ per day"),
)}

OUTCOME_METRICS = ("win_rate", "avg_deal_size", "sales_cycle_days", "pipeline_velocity")
DRIVER_METRICS = ("followup_meeting_ratio", "first_meetings_per_week", "opps_created_per_week",
                  "avg_days_between_touches", "emails_per_week")

STALE_DAYS = 14  # the article's standard: touch every open opportunity at least every 14 days
