"""The settings of ``params/policy.yaml``: one object every stage reads.

The policy holds the choices that must give one number one answer in every report: how peers are
grouped, the win-rate basis, window lengths, the tenure below which a rep is ramping, and the rules that
turn a diagnosis into targets and a final review into a recommendation. The scan, the diagnosis, the plan
and the reviews all read it; a command-line flag overrides one setting explicitly and the report states
the value it used. Loaded safely and validated: an unknown key or a bad value is a
:class:`~pipnb.errors.PlanError` naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipnb.errors import PlanError
from pipnb.io import read_yaml
from pipnb.schema import PEER_GROUPINGS, PLAN_METRICS, WIN_RATE_BASES
from pipnb.workdir import DEFAULT_POLICY, policy_file


class StrictModel(BaseModel):
    """A YAML-backed model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class RangeModel(StrictModel):
    """A model with an optional ``min``..``max`` range that must not be upside down."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _range_order(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range is upside down: min {self.min} is above max {self.max}")
        return self


class TargetRule(RangeModel):
    rule: Literal["peer_median", "close_gap", "range", "at_most", "at_least"]
    share: float | None = Field(default=None, gt=0, le=1)


class ReviewRules(StrictModel):
    extension_weeks: int = Field(default=6, ge=1, le=26)


class Policy(StrictModel):
    """The settings of ``params/policy.yaml`` (see the module docstring).

    Example
    -------
    >>> policy = Policy.from_yaml("params/policy.yaml")                  # doctest: +SKIP
    >>> policy.with_overrides(win_rate_basis="all").win_rate_basis        # doctest: +SKIP
    'all'
    """

    plan_weeks: int = Field(default=12, ge=2, le=52)
    checkpoints: list[int] = [3, 6, 9]
    diagnosis_weeks: int = Field(default=12, ge=1, le=104)     # the scan's and the diagnosis's window
    peer_by: Literal[PEER_GROUPINGS] = "team"  # type: ignore[valid-type]
    win_rate_basis: Literal[WIN_RATE_BASES] = "closed"  # type: ignore[valid-type]
    ramp_weeks: int = Field(default=13, ge=0, le=104)          # tenure below this: ramping, not judged
    min_peers: int = Field(default=5, ge=1, le=50)             # fewer judged peers: widen the group
    false_flag_rate: float = Field(default=0.05, gt=0, lt=0.5)  # per rep, across the plan metrics
    margin: float = Field(default=0.20, ge=0, lt=1)            # a shortfall also needs this practical gap
    confirm_previous_window: bool = False                      # a flag must also hold in the window before
    peer_gap_share: float = Field(default=0.8, gt=0, le=1)     # a flagged area closes this share of its gap
    targets: dict[Literal[PLAN_METRICS], TargetRule]  # type: ignore[valid-type]
    review: ReviewRules = ReviewRules()
    notebook_timeout_minutes: float = Field(default=15, gt=0, le=24 * 60)  # a notebook running longer fails alone
    consequences: list[str] = []
    resources: list[str] = []
    coaching: list[str] = []

    @model_validator(mode="after")
    def _checkpoints_inside(self):
        check_checkpoints(self.checkpoints, self.plan_weeks)
        return self

    @classmethod
    def from_yaml(cls, path: str | Path = DEFAULT_POLICY) -> Policy:
        """Load and validate a policy YAML; a problem raises :class:`PlanError` naming the key."""
        return load_yaml_model(cls, Path(path))

    @classmethod
    def find(cls, path: str | Path | None = None, *, params: str | Path | None = None) -> Policy:
        """The policy to use: ``path`` when given (not empty), else the working folder's
        ``params/policy.yaml`` (``params`` given, or the nearest working folder's), else pipnb's own.

        What a notebook's empty ``policy_path`` means (see :func:`pipnb.workdir.policy_file`).
        """
        return cls.from_yaml(policy_file(path or None, params=params))

    @classmethod
    def default(cls) -> Policy:
        """The policy shipped with pipnb (``pipnb/resources/policy.yaml``; ``pipnb init`` copies it to
        ``params/policy.yaml``)."""
        return cls.from_yaml(DEFAULT_POLICY)

    def with_overrides(self, **settings: object) -> Policy:
        """A validated copy with the given settings replaced; ``None`` values keep the policy's."""
        given = {k: v for k, v in settings.items() if v is not None}
        if not given:
            return self
        try:
            return type(self).model_validate({**self.model_dump(), **given})
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise PlanError(first["msg"].removeprefix("Value error, "), key=key) from None


def resolve_policy(policy: Policy | str | Path | None) -> Policy:
    """A :class:`Policy` from a policy, a path to a policy YAML, or ``None`` (the default policy)."""
    if isinstance(policy, Policy):
        return policy
    return Policy.from_yaml(policy) if policy is not None else Policy.default()


def check_checkpoints(checkpoints: list[int], weeks: int) -> None:
    if sorted(set(checkpoints)) != list(checkpoints):
        raise ValueError(f"checkpoints {checkpoints} must be increasing plan weeks")
    outside = [c for c in checkpoints if not 0 < c < weeks]
    if outside:
        raise ValueError(f"checkpoint week {outside[0]} is outside the plan (weeks 1 to {weeks - 1}; "
                         f"the final review is week {weeks})")


def load_yaml_model(cls, path: Path):
    """Load a YAML file safely and validate it into ``cls``; a problem is one :class:`PlanError`."""
    if not path.is_file():
        raise PlanError("file not found", file=str(path))
    try:
        raw = read_yaml(path, aliases=False)          # size, depth and no aliases: pipnb.io
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
            message = "unknown key (check its spelling; see params/policy.yaml and docs/guide.md for the keys)"
        elif "date" in first["type"]:
            message = f"'{first.get('input')}' is not a date (use YYYY-MM-DD)"
        raise PlanError(message, file=str(path), key=key) from None
