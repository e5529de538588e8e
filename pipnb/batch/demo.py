"""The demo lifecycle as one batch: what ``pipnb demo`` runs, and the plan the review notebooks default to.

:func:`demo_jobs` drafts the demo's plans (the two plan cases activated, signed and locked, at the start
:func:`pipnb.demo.demo_plan_start` gives, and a draft for every other flagged rep) and returns every job of
the lifecycle; :func:`demo_plan` drafts one of the active plans in memory (unsigned), for a review notebook
opened with its defaults.
"""

from __future__ import annotations

import pandas as pd

from pipnb.batch.bundle import batch_scorecard
from pipnb.batch.jobs import batch_diagnosis, diagnose_jobs, draft_plans, plan_jobs, review_jobs, scan_job
from pipnb.batch.prepare import Batch
from pipnb.data import SalesData
from pipnb.demo import DEMO_CASES, demo_plan_start
from pipnb.diagnosis import diagnose
from pipnb.drafting import draft_plan
from pipnb.errors import PipnbError
from pipnb.plan import Plan, log_signed_step
from pipnb.policy import Policy
from pipnb.scan import flagged_reps
from pipnb.sources import accepts_path
from pipnb.stages import review_stages
from pipnb.workdir import plan_path, rep_dir


def demo_jobs(batch: Batch, *, force: bool = False) -> list:
    """Every job of the demo: scan, diagnosis and plan of each flagged rep, and the whole review cycle
    of the two reps whose plans started 12 weeks before the data ends."""
    start = demo_plan_start(f"{batch.data.period[1]:%Y-%m-%d}")
    before = f"{start - pd.Timedelta(days=1):%Y-%m-%d}"
    active = [DEMO_CASES["responder"], DEMO_CASES["non_responder"]]
    for rep_id in active:
        path = plan_path(batch.params, rep_id)
        if path.exists() and not (force and _draft(path)):      # a signed plan is never redrafted
            continue
        plan = draft_plan(batch_diagnosis(batch, rep_id, before), start=start, policy=batch.policy)
        plan = plan.model_copy(update={"data_fingerprint": batch.fingerprint_until(plan.diagnosis_window.end)})
        signed = plan.transition("activate", by="pipnb demo (the rep's manager)", on=start.date(),
                                 note="agreed with the rep at the plan meeting")
        signed.to_yaml(path)
        log_signed_step(rep_dir(batch.reports, rep_id), signed, "activate")     # pipnb verify knows the step
    card = batch_scorecard(batch, "")                # the team's, as of the last day (draft_plans shares it)
    flagged = [r for r in flagged_reps(card, plan_metrics_only=True) if r not in active]
    plans = [*draft_plans(batch, flagged, force=force), *(plan_path(batch.params, r) for r in active)]
    jobs = [scan_job(batch), *diagnose_jobs(batch, flagged), *diagnose_jobs(batch, active, as_of=before),
            *plan_jobs(batch, plans)]
    reviewed = {path: Plan.from_yaml(path) for path in (plan_path(batch.params, r) for r in active)}
    for stage in review_stages(max(len(plan.checkpoints) for plan in reviewed.values())):
        jobs += review_jobs(batch, [path for path, plan in reviewed.items() if stage in plan.stages()], stage)
    return jobs


def _draft(path) -> bool:
    try:
        return Plan.from_yaml(path).status == "draft"
    except PipnbError:
        return False


@accepts_path
def demo_plan(data: SalesData, case: str = "responder") -> Plan:
    """The demo's active plan for ``case`` ("responder" or "non_responder"), drafted in memory.

    What the review notebooks use when they are opened with their defaults (no plan file yet).
    """
    if case not in DEMO_CASES:
        raise PipnbError(f"{case!r} is not a demo case (use {', '.join(repr(c) for c in DEMO_CASES)})")
    policy = Policy.default()
    start = demo_plan_start(f"{data.period[1]:%Y-%m-%d}")
    dx = diagnose(data, DEMO_CASES[case], as_of=start - pd.Timedelta(days=1), policy=policy)
    return draft_plan(dx, start=start, policy=policy).with_status("active", on=start.date())
