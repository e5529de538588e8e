"""The lifecycle's stages as :class:`pipnb.runner.Job` lists: which notebook, which parameters, which paths.

One builder per stage (:func:`scan_job`, :func:`diagnose_jobs`, :func:`plan_jobs`, :func:`review_jobs`)
turns a :class:`~pipnb.batch.prepare.Batch` and a list of reps or plans into jobs for
:func:`pipnb.runner.run_jobs`; each also records the rep's display name for the index. :func:`draft_plans`
writes the plan YAMLs the plan notebooks then present (in-process: it is fast), and :func:`find_plans`
finds the plans a review run covers. Review stages come from :mod:`pipnb.stages`, checked against each plan.
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path

from pipnb.batch.index import remember_rep
from pipnb.batch.prepare import ROOT, Batch, plan_path, rep_dir
from pipnb.errors import PlanError
from pipnb.plan import Plan
from pipnb.stages import FINAL, checkpoint_number, parse_stage, stage_title

NOTEBOOKS = {
    "scan": "00-team-scan.ipynb", "diagnose": "10-diagnose.ipynb", "plan": "20-plan.ipynb",
    "checkpoint": "30-checkpoint.ipynb", FINAL: "40-final-review.ipynb",
}


def _job(batch: Batch, notebook: str, out: Path, parameters: dict, header: dict, label: str,
         extra_fingerprint: str = ""):
    from pipnb.runner import Job

    params = {"data_source": batch.source, "panel_path": str(batch.panel_path),
              "policy_path": str(batch.policy_path), **parameters}
    return Job(notebook=ROOT / "notebooks" / notebook, output_ipynb=out.with_suffix(".ipynb"),
               output_html=out.with_suffix(".html"), parameters=params, header=header, label=label,
               cwd=ROOT / "notebooks", fingerprint=batch.fingerprint + extra_fingerprint)


def scan_job(batch: Batch, *, as_of: str = "", weeks: int = 0):
    """The team scan as of ``as_of`` (default: the data's last day), written to ``reports/team-scan.html``."""
    as_of = as_of or f"{batch.data.period[1]:%Y-%m-%d}"
    header = {"stage": stage_title("scan"), "as_of": as_of, "title": stage_title("scan"),
              "audience": "sales managers and sales operations"}
    return _job(batch, NOTEBOOKS["scan"], batch.reports / "team-scan",
                {"as_of": as_of, "weeks": weeks}, header, "team scan")   # settings: the batch's policy


def diagnose_jobs(batch: Batch, rep_ids: list[str], *, as_of: str = ""):
    """One diagnosis per rep, written to ``reports/<rep>/diagnose.html``."""
    as_of = as_of or f"{batch.data.period[1]:%Y-%m-%d}"
    jobs = []
    for rep_id in rep_ids:
        rep = batch.data.rep(rep_id)
        remember_rep(batch.reports, rep_id, rep)
        header = {"rep_name": rep["rep_name"], "team": rep["team"], "stage": stage_title("diagnose"),
                  "as_of": as_of}
        jobs.append(_job(batch, NOTEBOOKS["diagnose"], rep_dir(batch.reports, rep_id) / "diagnose",
                         {"rep_id": str(rep_id), "as_of": as_of},
                         header, f"{rep_id} diagnose"))
    return jobs


def draft_plans(batch: Batch, rep_ids: list[str], *, as_of: str = "", start: str = "",
                force: bool = False) -> list[Path]:
    """Draft and write ``params/plans/<rep>.yaml`` for each rep (in-process; fast).

    An existing plan is kept unless it is still a draft and ``force`` is set, so a manager's edits and a
    plan that is already active are never overwritten.
    """
    from pipnb.diagnosis import diagnose
    from pipnb.plan import draft_plan

    paths = []
    for rep_id in rep_ids:
        path = plan_path(batch.params, rep_id)
        if path.exists():
            existing = Plan.from_yaml(path)
            if existing.status != "draft" or not force:
                paths.append(path)
                continue
        dx = diagnose(batch.data, rep_id, as_of=as_of or None, policy=batch.policy, panel=batch.panel)
        draft_plan(dx, start=start or None, policy=batch.policy).to_yaml(path)
        paths.append(path)
    return paths


def plan_jobs(batch: Batch, plan_paths: list[Path]):
    """One plan document per plan YAML, written to ``reports/<rep>/plan.html``."""
    jobs = []
    for path in plan_paths:
        plan = Plan.from_yaml(path)
        remember_rep(batch.reports, plan.rep_id, batch.data.rep(plan.rep_id))
        header = {"rep_name": plan.rep_name, "team": plan.team, "stage": stage_title("plan"),
                  "as_of": f"{plan.diagnosis_window.end}", "plan_period": f"{plan.start} to {plan.end}"}
        jobs.append(_job(batch, NOTEBOOKS["plan"], rep_dir(batch.reports, plan.rep_id) / "plan",
                         {"rep_id": plan.rep_id, "plan_path": str(path)}, header, f"{plan.rep_id} plan",
                         _file_hash(path)))
    return jobs


def review_jobs(batch: Batch, plan_paths: list[Path], stage: int | str):
    """One review per plan at ``stage`` (``"checkpoint-N"``, ``N`` or ``"final"``), written to
    ``reports/<rep>/<stage>.html``.

    Raises
    ------
    PlanError
        When a plan has no such review (the message names the plan and the reviews it has).
    """
    jobs = []
    for path in plan_paths:
        plan = Plan.from_yaml(path)
        name = parse_stage(stage, len(plan.checkpoints), file=str(path))
        checkpoint = FINAL if name == FINAL else str(checkpoint_number(name))
        remember_rep(batch.reports, plan.rep_id, batch.data.rep(plan.rep_id))
        header = {"rep_name": plan.rep_name, "team": plan.team, "stage": stage_title(name),
                  "as_of": f"{plan.checkpoint_dates()[name]}", "plan_period": f"{plan.start} to {plan.end}"}
        jobs.append(_job(batch, NOTEBOOKS[FINAL if name == FINAL else "checkpoint"],
                         rep_dir(batch.reports, plan.rep_id) / name, {"plan_path": str(path), "checkpoint": checkpoint},
                         header, f"{plan.rep_id} {name}", _file_hash(path)))
    return jobs


def find_plans(batch: Batch, *, pattern: str | None = None, rep_ids: list[str] | None = None) -> list[Path]:
    """Plan YAMLs by glob (``--plans``), by rep id (``--reps``), or every plan under ``params/plans``."""
    if rep_ids:
        paths = [plan_path(batch.params, r) for r in rep_ids]
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise PlanError("no plan yet; draft it with `pipnb plan` or `pipnb run --stage plan`",
                            file=str(missing[0]))
        return paths
    found = sorted(Path(p) for p in glob.glob(pattern or str(batch.params / "plans" / "*.yaml")))
    if not found:
        raise PlanError(f"no plan YAML matches {pattern or batch.params / 'plans' / '*.yaml'}")
    return found


def _file_hash(path: Path) -> str:
    return "-" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
