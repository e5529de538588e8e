"""Policy and plan: targets computed from data, a glide path, the timeline, and the plan YAML.

The article's second step. :func:`draft_plan` turns a :class:`~pipnb.diagnose.Diagnosis` into a
:class:`Plan` by the rules of ``params/policy.yaml``; each target states its rule and the numbers it came
from. A plan is saved as ``params/plans/<rep>.yaml`` — the contract between stages — and validated on load.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipnb.errors import PlanError
from pipnb.peers import fmt
from pipnb.schema import METRICS

STATUSES = ("draft", "active", "acknowledged", "extended", "completed", "not-completed")
PLAN_METRICS = ("first_meetings_per_week", "followup_meeting_ratio", "emails_per_week",
                "avg_days_between_touches", "win_rate")
DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "params" / "policy.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- policy -------------------------------------------------------------------------------------
class _Range(_Model):
    """A model with an optional ``min``..``max`` range that must not be upside down."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _range_order(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range is upside down: min {self.min} is above max {self.max}")
        return self


class TargetRule(_Range):
    rule: Literal["peer_median", "close_gap", "range", "at_most", "at_least"]
    share: float | None = Field(default=None, gt=0, le=1)


class ReviewRules(_Model):
    on_track_share: float = Field(default=0.5, ge=0, le=1)
    complete_when: Literal["all_focus_met_and_improved"] = "all_focus_met_and_improved"
    extension_weeks: int = Field(default=6, ge=1, le=26)


class Policy(_Model):
    """The rules of ``params/policy.yaml``."""

    plan_weeks: int = Field(default=12, ge=2, le=52)
    checkpoints: list[int] = [3, 6, 9]
    diagnosis_weeks: int = Field(default=12, ge=2, le=104)
    peer_by: Literal["team", "segment", "all"] = "team"
    win_rate_basis: Literal["all", "closed"] = "all"
    targets: dict[Literal[PLAN_METRICS], TargetRule]  # type: ignore[valid-type]
    review: ReviewRules = ReviewRules()
    consequences: list[str] = []
    resources: list[str] = []
    coaching: list[str] = []

    @model_validator(mode="after")
    def _checkpoints_inside(self):
        _check_checkpoints(self.checkpoints, self.plan_weeks)
        return self

    @classmethod
    def from_yaml(cls, path: str | Path = DEFAULT_POLICY) -> Policy:
        return _load_model(cls, Path(path))


def _check_checkpoints(checkpoints: list[int], weeks: int) -> None:
    if sorted(set(checkpoints)) != list(checkpoints):
        raise ValueError(f"checkpoints {checkpoints} must be increasing plan weeks")
    outside = [c for c in checkpoints if not 0 < c < weeks]
    if outside:
        raise ValueError(f"checkpoint week {outside[0]} is outside the plan (weeks 1 to {weeks - 1}; "
                         f"the final review is week {weeks})")


# -- plan ---------------------------------------------------------------------------------------
class Target(_Range):
    """One plan target: where the rep starts, where they must get to, and how that was decided."""

    metric: str
    label: str
    direction: Literal["at_least", "at_most"]
    baseline: float | None
    target: float
    glide: list[float]             # targets at each checkpoint, then the final target
    focus: bool                    # an improvement area of the diagnosis
    rule: str                      # the rule in words, with the numbers it used
    basis: dict[str, float | None] = {}

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric '{value}' (use one of {', '.join(PLAN_METRICS)})")
        return value

    def met(self, actual: float) -> bool:
        """Whether ``actual`` meets the final target."""
        return self.reached(actual, self.target)

    def reached(self, actual: float, goal: float) -> bool:
        if actual is None or not np.isfinite(actual):
            return False
        return actual >= goal - 1e-9 if self.direction == "at_least" else actual <= goal + 1e-9


class Window(_Model):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Area(_Model):
    metric: str
    classification: str
    rationale: str
    evidence: str
    explains: float | None = None


class HistoryEntry(_Model):
    date: dt.date
    status: Literal[STATUSES]  # type: ignore[valid-type]
    note: str = ""


class Plan(_Model):
    """A performance improvement plan, as stored in ``params/plans/<rep>.yaml``.

    Example
    -------
    >>> plan = Plan.from_yaml("params/plans/R07.yaml")     # doctest: +SKIP
    >>> plan.checkpoint_dates()                             # doctest: +SKIP
    """

    rep_id: str
    rep_name: str
    team: str
    status: Literal[STATUSES] = "draft"  # type: ignore[valid-type]
    start: dt.date
    weeks: int = Field(ge=2, le=52)
    checkpoints: list[int]
    diagnosis_window: Window
    win_rate_basis: Literal["all", "closed"] = "all"
    peer_by: Literal["team", "segment", "all"] = "team"
    data_fingerprint: str
    source: str = ""
    summary: str = ""
    improvement_areas: list[Area] = []
    targets: list[Target]
    consequences: list[str] = []
    resources: list[str] = []
    coaching: list[str] = []
    history: list[HistoryEntry] = []

    @model_validator(mode="after")
    def _consistent(self):
        _check_checkpoints(self.checkpoints, self.weeks)
        for target in self.targets:
            if len(target.glide) != len(self.checkpoints) + 1:
                raise ValueError(f"target {target.metric}: glide has {len(target.glide)} values, the plan has "
                                 f"{len(self.checkpoints)} checkpoints and a final review")
        if self.diagnosis_window.end >= self.start:
            raise ValueError(f"diagnosis_window ends {self.diagnosis_window.end}, on or after the plan start "
                             f"{self.start}")
        return self

    # -- timeline ---------------------------------------------------------------------------
    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(weeks=self.weeks, days=-1)

    def stages(self) -> list[str]:
        return [f"checkpoint-{i + 1}" for i in range(len(self.checkpoints))] + ["final"]

    def checkpoint_week(self, checkpoint: int | str) -> int:
        """Plan week a checkpoint (1, 2, 3 or "final") closes."""
        if str(checkpoint) == "final":
            return self.weeks
        index = int(checkpoint)
        if not 1 <= index <= len(self.checkpoints):
            raise PlanError(f"checkpoint {checkpoint} does not exist (use 1 to {len(self.checkpoints)} or final)",
                            key="checkpoints")
        return self.checkpoints[index - 1]

    def checkpoint_dates(self) -> dict[str, dt.date]:
        """Last day of each checkpoint's window, and the final review's."""
        weeks = [*self.checkpoints, self.weeks]
        return {stage: self.start + dt.timedelta(weeks=w, days=-1) for stage, w in zip(self.stages(), weeks)}

    def target(self, metric: str) -> Target:
        return next(t for t in self.targets if t.metric == metric)

    # -- files ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> Plan:
        """Load and validate a plan YAML; a problem raises :class:`PlanError` naming the key."""
        return _load_model(cls, Path(path))

    def to_yaml(self, path: str | Path) -> Path:
        """Write the plan atomically as YAML (dates as ISO strings, keys in a stable order)."""
        import yaml

        from pipnb.io import atomic_write_text

        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100)
        return atomic_write_text(path, _PLAN_HEADER + text)

    def with_status(self, status: str, *, on: dt.date | None = None, note: str = "") -> Plan:
        """A copy with a new status and a history entry."""
        entry = HistoryEntry(date=on or dt.date.today(), status=status, note=note)
        return self.model_copy(update={"status": status, "history": [*self.history, entry]})


_PLAN_HEADER = ("# pipnb performance improvement plan. A manager may edit the text, the targets and the status;\n"
                "# every later stage reads this file and validates it (unknown keys and bad dates are errors).\n")


def _load_model(cls, path: Path):
    import yaml

    if not path.is_file():
        raise PlanError("file not found", file=str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise PlanError(f"not valid YAML ({getattr(err, 'problem', err)})", file=str(path), key=where) from None
    if not isinstance(raw, dict):
        raise PlanError("expected a mapping of keys to values", file=str(path))
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key (check its spelling; see params/policy.yaml and the README for the keys)"
        elif "date" in first["type"]:
            message = f"'{first.get('input')}' is not a date (use YYYY-MM-DD)"
        raise PlanError(message, file=str(path), key=key) from None


# -- drafting -----------------------------------------------------------------------------------
def draft_plan(diagnosis, start: str | dt.date | None = None, policy: Policy | str | Path | None = None) -> Plan:
    """Draft a plan from a diagnosis: targets by the policy's rules, a glide path, the timeline.

    Parameters
    ----------
    diagnosis
        From :func:`pipnb.diagnose`.
    start
        First day of the plan (default: the Monday after the diagnosis window).
    policy
        A :class:`Policy`, or a path to a policy YAML (default ``params/policy.yaml``).

    Returns
    -------
    Plan
        With ``status: draft``.
    """
    policy = policy if isinstance(policy, Policy) else Policy.from_yaml(policy or DEFAULT_POLICY)
    start = pd.Timestamp(start).date() if start is not None else (
        pd.Timestamp(diagnosis.window_end) + pd.Timedelta(days=1)).date()
    card = diagnosis.card[diagnosis.card["rep_id"] == diagnosis.rep_id].set_index("metric")
    targets = [_target(metric, card.loc[metric], policy, diagnosis)
               for metric in PLAN_METRICS if metric in card.index and metric in policy.targets
               and card.loc[metric, "flag"] != "unavailable"]
    areas = [Area(metric=r.metric, classification=r.classification, rationale=r.rationale, evidence=r.evidence,
                  explains=None if not np.isfinite(r.explains) else round(float(r.explains), 3))
             for r in diagnosis.drivers.itertuples()]
    window_end = min(pd.Timestamp(diagnosis.window_end).date(), start - dt.timedelta(days=1))
    return Plan(
        rep_id=diagnosis.rep_id, rep_name=diagnosis.rep_name, team=diagnosis.team, status="draft",
        start=start, weeks=policy.plan_weeks, checkpoints=policy.checkpoints,
        diagnosis_window=Window(start=pd.Timestamp(diagnosis.window_start).date(), end=window_end),
        win_rate_basis=diagnosis.win_rate_basis, peer_by=diagnosis.peer_by,
        data_fingerprint=diagnosis.data_fingerprint, source=diagnosis.source, summary=diagnosis.summary(),
        improvement_areas=areas, targets=targets, consequences=policy.consequences,
        resources=policy.resources, coaching=policy.coaching,
        history=[HistoryEntry(date=pd.Timestamp(diagnosis.as_of).date(), status="draft",
                              note="drafted by pipnb from the diagnosis")])


def _target(metric: str, row: pd.Series, policy: Policy, diagnosis) -> Target:
    rule = policy.targets[metric]
    spec = METRICS[metric]
    baseline = float(row["value"]) if np.isfinite(row["value"]) else None
    median = float(row["peer_median"]) if np.isfinite(row["peer_median"]) else None
    up = spec.higher_is_better
    base = baseline if baseline is not None else (median or 0.0)
    lo = hi = None
    if rule.rule == "peer_median":
        goal = median if median is not None else base
        text = f"the peers' median {fmt(goal, spec)}"
    elif rule.rule == "close_gap":
        ref = median if median is not None else base
        goal = base + rule.share * (ref - base)
        text = (f"{rule.share:.0%} of the way from the baseline {fmt(base, spec)} to the peers' median "
                f"{fmt(ref, spec)}")
    elif rule.rule == "range":
        lo, hi = rule.min, rule.max
        goal = lo if lo is not None else base
        text = f"between {fmt(lo, spec)} and {fmt(hi, spec)}"
    elif rule.rule == "at_most":
        goal, hi = rule.max, rule.max
        text = f"fewer than {fmt(goal, spec)} on average"
    else:
        goal, lo = rule.min, rule.min
        text = f"at least {fmt(goal, spec)}"
    keep = (goal < base) if up else (goal > base)
    if keep:  # already better than the rule asks: the target is to hold the baseline
        goal = base
        text += f"; already at {fmt(base, spec)}, so the target is to hold that level"
    glide = [round(base + (goal - base) * w / policy.plan_weeks, 6) for w in [*policy.checkpoints,
                                                                              policy.plan_weeks]]
    return Target(
        metric=metric, label=spec.label, direction="at_least" if up else "at_most",
        baseline=None if baseline is None else round(baseline, 6), target=round(goal, 6), min=lo, max=hi,
        glide=glide, focus=metric in diagnosis.improvement_areas or (
            metric == "win_rate" and row["flag"] == "shortfall"),
        rule=f"{spec.label}: {text}.",
        basis={"baseline": baseline, "peer_median": median,
               "peer_p25": _num(row["peer_p25"]), "peer_p75": _num(row["peer_p75"]),
               "n_peers": _num(row["n_peers"])})


def _num(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
