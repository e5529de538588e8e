"""Reviews: a plan's checkpoints and its final review, against the glide path, with honest statistics.

The article's third step. Each checkpoint compares the rep's actual numbers with the glide-path target
for the checkpoint's own window (the weeks since the previous checkpoint) and since the plan start, gives
each metric a status (*met*, *on track*, *behind*), and carries the statistical verdicts of
:mod:`pipnb.stats` (did the rep change, beyond chance and beyond what peers did over the same weeks).
The final review adds overall attainment and a recommended course of action with its reasons.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipnb.data import SalesData
from pipnb.errors import PlanError
from pipnb.metrics import weekly_panel, window_metrics
from pipnb.peers import fmt
from pipnb.plan import Plan, Policy
from pipnb.schema import METRICS


@dataclass
class Review:
    """One checkpoint (or the final review) of one plan.

    Attributes
    ----------
    table
        Per plan metric: baseline, target (this checkpoint's glide value), final_target, actual over
        the checkpoint window (with its counts), actual since the plan start, progress and status.
    verdicts
        The statistics of improvement per metric (see :func:`pipnb.stats.assess`).
    recommendation, reasons
        Final review only: ``complete``, ``extend`` or ``consequences``, and why.
    """

    plan: Plan
    stage: str
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    table: pd.DataFrame
    verdicts: pd.DataFrame
    attainment: float | None = None
    recommendation: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return self.stage == "final"

    def to_dict(self) -> dict:
        """Plain JSON-ready fields, for ``pipnb review --format json``."""
        def records(frame: pd.DataFrame) -> list[dict]:
            clean = frame.astype(object).where(frame.notna(), None)
            return [{k: (v.isoformat() if isinstance(v, (pd.Timestamp, dt.date)) else v) for k, v in row.items()}
                    for row in clean.to_dict(orient="records")]

        return {
            "rep_id": self.plan.rep_id, "stage": self.stage, "as_of": self.as_of.isoformat(),
            "plan_start": self.plan.start.isoformat(), "plan_end": self.plan.end.isoformat(),
            "window_start": self.window_start.isoformat(), "window_end": self.window_end.isoformat(),
            "metrics": records(self.table), "verdicts": records(self.verdicts),
            "attainment": self.attainment, "recommendation": self.recommendation, "reasons": self.reasons,
        }


def review(data: SalesData, plan: Plan, checkpoint: int | str, *, panel: pd.DataFrame | None = None,
           policy: Policy | None = None) -> Review:
    """Review a plan at a checkpoint (1, 2, 3) or at the final review (``"final"``).

    Parameters
    ----------
    data
        Validated sales data reaching at least the checkpoint's last day.
    plan
        The plan (``Plan.from_yaml("params/plans/<rep>.yaml")``).
    checkpoint
        ``1``, ``2``, ``3`` or ``"final"``.
    panel
        A precomputed weekly panel (one per batch).
    policy
        Review rules (default ``params/policy.yaml``).

    Raises
    ------
    PlanError
        When the checkpoint does not exist or the data does not reach its last day yet.
    """
    from pipnb.plan import DEFAULT_POLICY

    policy = policy or Policy.from_yaml(DEFAULT_POLICY)
    data.rep(plan.rep_id)
    stage = "final" if str(checkpoint) == "final" else f"checkpoint-{int(checkpoint)}"
    week = plan.checkpoint_week(checkpoint)
    previous = ([0, *plan.checkpoints])[plan.stages().index(stage)]
    as_of = plan.start + dt.timedelta(weeks=week, days=-1)
    data_end = data.period[1].date()
    if data_end < as_of - dt.timedelta(days=2):   # a weekend without activity is not missing data
        raise PlanError(f"{stage} ends {as_of} but the data ends {data_end}; run it once the data reaches "
                        f"{as_of}", key=stage)
    panel = weekly_panel(data) if panel is None else panel
    start_window = plan.start + dt.timedelta(weeks=previous)
    mine = panel[panel["rep_id"] == plan.rep_id]
    window = _pooled(mine, start_window, as_of, plan)
    since = _pooled(mine, plan.start, as_of, plan)
    table = _status_table(plan, stage, window, since, policy)
    verdicts = plan_verdicts(data, plan, panel=panel, as_of=as_of)
    out = Review(plan=plan, stage=stage, as_of=as_of, window_start=start_window, window_end=as_of, table=table,
                 verdicts=verdicts)
    if out.is_final:
        out.attainment, out.recommendation, out.reasons = _recommend(table, verdicts, plan, policy)
    return out


def _pooled(panel: pd.DataFrame, start: dt.date, end: dt.date, plan: Plan) -> pd.DataFrame:
    pooled = window_metrics(panel, pd.Timestamp(start), pd.Timestamp(end), win_rate_basis=plan.win_rate_basis)
    return pooled.set_index("metric")


def _status_table(plan: Plan, stage: str, window: pd.DataFrame, since: pd.DataFrame,
                  policy: Policy) -> pd.DataFrame:
    step = plan.stages().index(stage)
    rows = []
    for target in plan.targets:
        goal = target.glide[step]
        actual = _get(window, target.metric, "value")
        overall = _get(since, target.metric, "value")
        base = target.baseline
        required = None if base is None else goal - base
        progress = (overall - base) / required if base is not None and required and np.isfinite(overall) \
            else np.nan
        if not np.isfinite(actual):
            status = "no data"
        elif target.reached(actual, goal):
            status = "met"
        elif np.isfinite(progress) and progress >= policy.review.on_track_share:
            status = "on track"
        else:
            status = "behind"
        spec = METRICS[target.metric]
        rows.append({
            "metric": target.metric, "label": target.label, "focus": target.focus, "baseline": base,
            "target": goal, "final_target": target.target, "actual": actual,
            "numerator": _get(window, target.metric, "numerator"),
            "denominator": _get(window, target.metric, "denominator"),
            "since_start": overall, "progress": progress, "status": status,
            "display": f"{fmt(actual, spec)} vs target {fmt(goal, spec)} (baseline {fmt(base or np.nan, spec)})",
        })
    return pd.DataFrame(rows)


def _get(frame: pd.DataFrame, metric: str, column: str) -> float:
    return float(frame.loc[metric, column]) if metric in frame.index else np.nan


def _recommend(table: pd.DataFrame, verdicts: pd.DataFrame, plan: Plan,
               policy: Policy) -> tuple[float, str, list[str]]:
    """Complete when the focus targets are met and improvement is shown; extend on clear improvement
    short of the targets; otherwise the plan's stated consequences."""
    focus = table[table["focus"]] if table["focus"].any() else table
    met = focus["status"].eq("met")
    attainment = float(met.mean()) if len(focus) else 0.0
    judged = verdicts.set_index("metric")["verdict"] if len(verdicts) else pd.Series(dtype=object)
    improved = [m for m in focus["metric"] if judged.get(m) == "improved"]
    reasons = [f"{met.sum()} of {len(focus)} focus targets met at the final review ({attainment:.0%})."]
    for row in focus.itertuples():
        verdict = judged.get(row.metric, "not assessed")
        reasons.append(f"{row.label}: {row.display}; {row.status}; statistical verdict: {verdict}.")
    if met.all() and (improved or len(focus) == 0 or _already_there(focus)):
        decision = "complete"
        reasons.append("Targets are met and the improvement is real beyond chance: close the plan as completed.")
    elif improved:
        decision = "extend"
        reasons.append(f"Clear improvement on {', '.join(METRICS[m].label.lower() for m in improved)}, but not "
                       f"every target is met: extend the plan by {policy.review.extension_weeks} weeks.")
    else:
        decision = "consequences"
        reasons.append("Neither the targets nor a clear improvement were reached: apply the consequences "
                       "stated in the plan.")
    return attainment, decision, reasons


def _already_there(focus: pd.DataFrame) -> bool:
    """Targets that only asked to hold a level need no statistical improvement."""
    return bool(((focus["target"] - focus["baseline"]).abs() < 1e-9).all())


def plan_verdicts(data: SalesData, plan: Plan, *, panel: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The statistics of improvement for every plan metric (see :func:`pipnb.stats.assess`).

    The baseline is the weeks before the diagnosis window recorded in the plan; peers are the rep's
    peers when that window began, compared over the same weeks.
    """
    from pipnb.metrics import touch_gaps
    from pipnb.peers import plan_peers
    from pipnb.stats import assess

    peers = plan_peers(data, plan)
    metrics = [t.metric for t in plan.targets]
    panel = with_win_rate_basis(panel[panel["rep_id"].isin([plan.rep_id, *peers])], plan.win_rate_basis)
    gaps = touch_gaps(data, as_of, rep_ids=[plan.rep_id, *peers]) if "avg_days_between_touches" in metrics \
        else None
    return assess(panel, plan.rep_id, metrics=metrics, plan_start=plan.start, as_of=as_of, peers=peers,
                  targets={t.metric: t.target for t in plan.targets}, gaps=gaps,
                  diagnosis_start=plan.diagnosis_window.start, diagnosis_end=plan.diagnosis_window.end)


def with_win_rate_basis(panel: pd.DataFrame, basis: str) -> pd.DataFrame:
    """The panel with ``win_rate`` rows on the plan's basis (``"all"`` takes the ``win_rate_all`` rows)."""
    if basis != "all":
        return panel
    rest = panel[panel["metric"] != "win_rate"]
    return pd.concat([rest[rest["metric"] != "win_rate_all"],
                      panel[panel["metric"] == "win_rate_all"].assign(metric="win_rate")], ignore_index=True)
