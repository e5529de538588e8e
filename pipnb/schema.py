"""Names of the canonical tables, their columns and the metric catalogue.

Columns are named here once; every other module refers to these constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# -- canonical tables -------------------------------------------------------------------------
TABLES = ("reps", "opportunities", "activities")

REQUIRED = {
    "reps": ("rep_id", "rep_name", "team"),
    "opportunities": ("opp_id", "rep_id", "created_at", "outcome"),
    "activities": ("activity_id", "rep_id", "kind", "occurred_at"),
}
OPTIONAL = {
    "reps": ("manager", "segment", "hire_date", "active", "end_date"),
    "opportunities": ("closed_at", "amount", "account_id"),
    "activities": ("opp_id", "account_id"),
}
ID_COLUMN = {"reps": "rep_id", "opportunities": "opp_id", "activities": "activity_id"}
DATE_COLUMNS = {
    "reps": ("hire_date", "end_date"),
    "opportunities": ("created_at", "closed_at"),
    "activities": ("occurred_at",),
}
BOOL_COLUMNS = {"reps": ("active",), "opportunities": (), "activities": ()}
OUTCOMES = ("open", "won", "lost")
KINDS = ("email", "call", "meeting")

# -- the metric catalogue ---------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric of the catalogue: every property any module asks about lives here.

    Adding a metric means one entry in :data:`METRICS` plus its computation in :mod:`pipnb.metrics`.

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
        Direction used by flags, targets and verdicts.
    needs
        The tables the metric is computed from; when one is missing the metric is unavailable.
    unit
        How the value is shown: ``"per week"``, ``"%"``, ``"days"``, ``"$"``, ``"$ per day"``.
    role
        ``"outcome"`` (what the business gets), ``"driver"`` (what the rep does) or ``"context"``.
    model
        The change model of :mod:`pipnb.stats` that tests it (``"count"``, ``"ratio"``, ``"gap"``),
        or ``None`` when a plan's improvement on it is not tested.
    snapshot
        A window takes its last week's value (a state at a date), not the sum of its weeks.
    plan_target
        A plan can set a target on it.
    funnel_stage
        Position in the funnel whose product is wins per week (``None`` outside the funnel).
    cohort_days
        For a cohort ratio: the days after the event within which success counts (the follow-up ratio
        judges each first meeting once this many days have passed).
    carryover_weeks
        Plan weeks whose values still mostly reflect what happened before the plan (follow-up cohorts of
        earlier first meetings; deals closed in the plan but worked before it): left out when judging a
        change, so the luck of the window that selected the rep is not carried into the verdict.
    rationale
        Why it matters (the article's business reasons): what the metric does for the business, never a
        statement about a rep. What the numbers show about a rep is worded from the scorecard's finding
        (:func:`pipnb.findings.finding_sentence`).
    noise
        The noise model the scan's flag uses (``"count"``, ``"ratio"``, ``"gap"``, ``"logmean"``: a per-deal
        mean judged on the log scale with the peers' within-rep spread); defaults to ``model``. A metric
        without one is context: shown, never flagged.
    source_kind
        The activity kind it is counted from (``"meeting"`` ...): an export without any activity of that
        kind leaves it unavailable, never 0.
    source_column
        A ``table.column`` it needs (``opportunities.amount``): absent or empty, the metric is unavailable.
    counted
        What its denominator counts, in words (``"closed deals"``): a window with none of them leaves the
        metric unavailable for the rep ("no closed deals in the window").
    """

    name: str
    label: str
    kind: str
    higher_is_better: bool
    needs: tuple[str, ...]
    unit: str
    role: str = "context"
    model: str | None = None
    snapshot: bool = False
    plan_target: bool = False
    funnel_stage: int | None = None
    cohort_days: int | None = None
    carryover_weeks: int = 0
    rationale: str = ""
    noise: str | None = None
    source_kind: str | None = None
    source_column: str | None = None
    counted: str = "weeks"

    @property
    def noise_model(self) -> str | None:
        """The noise model of the scan's flag (``noise``, else ``model``)."""
        return self.noise or self.model

    @property
    def flaggable(self) -> bool:
        """Whether the scan may flag it: an outcome or a driver with a noise model (the others are context).

        Every flaggable metric shares the policy's false-flag budget (Bonferroni across :data:`FLAG_METRICS`).
        """
        return self.role in ("outcome", "driver") and self.noise_model is not None

    def fmt(self, value: float | None) -> str:
        """A value of this metric as a sales manager reads it: ``6%``, ``3.5/wk``, ``12.0 days``, ``$24,500``."""
        if value is None or not math.isfinite(value):
            return "n/a"
        if self.unit == "%":
            return f"{100 * value:.0f}%"
        if self.unit == "$":
            return f"${value:,.0f}"
        if self.unit == "$ per day":
            return f"${value:,.0f}/day"
        if self.unit == "days":
            return f"{value:.1f} days"
        return f"{value:.1f}/wk"


_OPPS = ("opportunities",)
_BOTH = ("opportunities", "activities")

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("win_rate", "Win rate", "ratio", True, _OPPS, "%", role="outcome", model="ratio", plan_target=True,
           carryover_weeks=4, counted="closed deals"),
    Metric("opps_created_per_week", "Opportunities created per week", "count", True, _OPPS, "per week",
           role="driver", model="count", plan_target=True, funnel_stage=1,
           rationale="Opportunity volume sets how many deals can be won."),
    Metric("first_meetings_per_week", "First meetings per week", "count", True, _BOTH, "per week",
           role="driver", model="count", plan_target=True, funnel_stage=2,
           rationale="First meetings are the entry to the funnel: every deal that can be won starts with one. "
                     "Fewer first meetings means fewer deals to win.", source_kind="meeting"),
    Metric("followup_meeting_ratio", "Follow-up meeting ratio", "ratio", True, _BOTH, "%",
           role="driver", model="ratio", plan_target=True, funnel_stage=3, cohort_days=21, carryover_weeks=3,
           counted="first meetings old enough to judge",
           rationale="Deals move forward when a second meeting brings in more stakeholders. A low ratio means "
                     "opportunities stall after the first conversation, and that shows up directly in the "
                     "win rate.", source_kind="meeting"),
    Metric("meetings_per_week", "Meetings per week (all)", "count", True, ("activities",), "per week",
           model="count", source_kind="meeting"),
    Metric("emails_per_week", "Emails per week", "count", True, ("activities",), "per week",
           role="driver", model="count", plan_target=True,
           rationale="Emails do not close deals, but they are a good proxy for general selling effort: "
                     "following up on meetings and checking in on opportunities.", source_kind="email"),
    Metric("calls_per_week", "Calls per week", "count", True, ("activities",), "per week", model="count",
           source_kind="call"),
    Metric("avg_days_between_touches", "Average days between touches", "mean", False, _BOTH, "days",
           role="driver", model="gap", plan_target=True,
           rationale="Touching every open opportunity at least every 14 days keeps control of the deal and "
                     "shows early which ones are dead, so they do not drag the averages.",
           source_column="activities.opp_id", counted="gaps between touches on opportunities"),
    Metric("stale_opp_share", "Share of open opportunities untouched more than 14 days", "ratio", False, _BOTH, "%",
           model="ratio", snapshot=True, source_column="activities.opp_id", counted="open opportunities"),
    Metric("avg_deal_size", "Average won deal size", "mean", True, _OPPS, "$", role="outcome", noise="logmean",
           source_column="opportunities.amount", counted="won deals with an amount",
           rationale="The money each won deal brings: with the win rate and the volume it sets revenue."),
    Metric("sales_cycle_days", "Sales cycle (days, won deals)", "mean", False, _OPPS, "days", role="outcome",
           noise="logmean", counted="won deals",
           rationale="How long won deals take from creation to close: slower cycles delay revenue."),
    Metric("pipeline_velocity", "Pipeline velocity ($ per day)", "derived", True, _OPPS, "$ per day",
           role="outcome", counted="won deals with an amount"),
)}

OUTCOME_METRICS = tuple(m for m, spec in METRICS.items() if spec.role == "outcome")
DRIVER_METRICS = tuple(m for m, spec in METRICS.items() if spec.role == "driver")
PLAN_METRICS = tuple(m for m, spec in METRICS.items() if spec.plan_target)
FLAG_METRICS = tuple(m for m, spec in METRICS.items() if spec.flaggable)   # share the false-flag budget
FUNNEL_METRICS = tuple(sorted((m for m, s in METRICS.items() if s.funnel_stage), key=lambda m:
                              METRICS[m].funnel_stage))

# Panel rows a window takes from its last week: snapshot metrics, and the open half of the touch gap (the panel
# also holds ``touch_gap_closed``, ``win_rate_all`` and the log moments of the per-deal means, parts of a metric
# rather than metrics).
SNAPSHOT_ROWS = ("touch_gap_open", *(m for m, spec in METRICS.items() if spec.snapshot))

#: the article's standard: touch every open opportunity at least every 14 days. An open deal is stale when it has gone
#: *more than* 14 whole calendar days untouched (touched on the 1st: stale from the 16th), see metrics.untouched_days
STALE_DAYS = 14
WIN_RATE_BASES = ("closed", "all")
PEER_GROUPINGS = ("team", "segment", "all")
