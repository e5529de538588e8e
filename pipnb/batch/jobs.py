"""The lifecycle's stages as :class:`pipnb.job.Job` lists: which notebook, which parameters, which paths.

One builder per stage (:func:`scan_job`, :func:`diagnose_jobs`, :func:`plan_jobs`, :func:`review_jobs`)
turns a :class:`~pipnb.batch.prepare.Batch` and a list of reps or plans into jobs for
:func:`pipnb.runner.run_jobs`; each also records the rep's display name for the index. :func:`draft_plans`
writes the plan YAMLs the plan notebooks then present (in-process: it is fast), and :func:`find_plans`
finds the plans a review run covers. Review stages come from :mod:`pipnb.stages`, checked against each plan.

A plan is isolated: one that cannot be read, belongs to no rep of the data, was edited after it was locked,
or lacks the stage becomes a :class:`~pipnb.job.Problem` (named in the summary; the others run), and a
file that is not a rep's plan file (a backup copy such as ``R14-copy.yaml``) is named and skipped.

Every job is handed absolute paths and records what its report stands on: the data *as of the report's
date* (:mod:`pipnb.fingerprint`; rows dated later change nothing), the policy and, for a plan or a review,
the plan. Reviews are frozen (:mod:`pipnb.record`): a run with other inputs writes a new version beside them.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
from pathlib import Path

import pandas as pd

from pipnb.batch.bundle import batch_scorecard, diagnosis_bundle, plan_looks, prepared_for
from pipnb.batch.prepare import Batch
from pipnb.diagnosis import check_judged, diagnose
from pipnb.drafting import draft_plan, no_plan_needed
from pipnb.errors import PipnbError, PlanError
from pipnb.job import Job, Problem
from pipnb.plan import Plan
from pipnb.record import versions
from pipnb.stages import FINAL, checkpoint_number, parse_stage, stage_title
from pipnb.workdir import notebook as find_notebook
from pipnb.workdir import plan_path, remember_rep, rep_dir

NOTEBOOKS = {
    "scan": "00-team-scan.ipynb", "diagnose": "10-diagnose.ipynb", "plan": "20-plan.ipynb",
    "checkpoint": "30-checkpoint.ipynb", FINAL: "40-final-review.ipynb",
}
#: Parameters that only say where an input lives (its content is fingerprinted in the job's inputs).
PATH_PARAMETERS = ("data_source", "panel_path", "policy_path", "plan_path", "prepared")


def _job(batch: Batch, notebook: str, out: Path, parameters: dict, header: dict, label: str, *, as_of: str,
         frozen: bool = False, prepared: str = "", **inputs: str) -> Job:
    data = data_stamp(batch, as_of)
    params = {"data_source": batch.source, "panel_path": str(batch.panel_path),
              "policy_path": str(batch.policy_path), **parameters}
    if prepared:                                  # the rep's and peer group's slice (pipnb.batch.bundle)
        params["prepared"] = prepared
    # The working folder's own copy of a notebook (pipnb init --notebooks) takes precedence over pipnb's.
    return Job(notebook=find_notebook(notebook, batch.params.parent), output_ipynb=out.with_suffix(".ipynb"),
               output_html=out.with_suffix(".html"), parameters=params, header=header, label=label,
               cwd=batch.params.parent, fingerprint=data, frozen=frozen, path_parameters=PATH_PARAMETERS,
               timeout=batch.policy.notebook_timeout_minutes * 60,
               inputs={"data": data, "policy": batch.policy_hash, **inputs})


def data_stamp(batch: Batch, as_of: str) -> str:
    """``<fingerprint>@<day>``: the data a report as of ``as_of`` stands on, up to the end of that week (a
    report's weekly numbers count the whole week that holds its date)."""
    day = pd.Timestamp(as_of)
    day = f"{day + pd.Timedelta(days=6 - day.weekday()):%Y-%m-%d}"
    return f"{batch.fingerprint_until(day)}@{day}"


def _last_day(batch: Batch) -> str:
    return f"{batch.data.period[1]:%Y-%m-%d}"


def scan_job(batch: Batch, *, as_of: str = "", weeks: int = 0) -> Job:
    """The team scan as of ``as_of`` (default: the data's last day), written to ``reports/team-scan.html``."""
    as_of = as_of or _last_day(batch)
    header = {"stage": stage_title("scan"), "as_of": as_of, "title": stage_title("scan"),
              "audience": "sales managers and sales operations"}
    return _job(batch, NOTEBOOKS["scan"], batch.reports / "team-scan",
                {"as_of": as_of, "weeks": weeks}, header, "team scan", as_of=as_of)   # settings: the batch's policy


def diagnose_jobs(batch: Batch, rep_ids: list[str], *, as_of: str = "") -> list[Job]:
    """One diagnosis per rep, written to ``reports/<rep>/diagnose.html``.

    Raises
    ------
    UnknownRepError
        When a rep is not in the data (the ids come from the command line).
    DataError
        When a rep has no record in the diagnosis window (nothing to diagnose).
    """
    as_of = as_of or _last_day(batch)
    jobs = []
    for rep_id in rep_ids:
        rep = batch.data.rep(rep_id)
        try:
            card = batch_scorecard(batch, as_of)
        except PipnbError:          # a window outside the data: the notebook fails alone and says why
            card = None
        if card is not None:
            check_judged(card, str(rep_id))
        remember_rep(batch.reports, rep_id, rep)
        header = {"rep_name": rep["rep_name"], "team": rep["team"], "stage": stage_title("diagnose"),
                  "as_of": as_of}
        prepared = diagnosis_bundle(batch, str(rep_id), as_of)
        jobs.append(_job(batch, NOTEBOOKS["diagnose"], rep_dir(batch.reports, rep_id) / "diagnose",
                         {"rep_id": str(rep_id), "as_of": as_of}, header, f"{rep_id} diagnose", as_of=as_of,
                         prepared=prepared))
    return jobs


def batch_diagnosis(batch: Batch, rep_id: str, as_of: str = ""):
    """:func:`~pipnb.diagnosis.diagnose` of ``rep_id`` on the batch's whole data, as drafting a plan needs it
    (``as_of`` ``YYYY-MM-DD``, ``""``: the data's last day). It shares the batch's team scorecard of the window
    and the data's fingerprint on the window's last day, each computed once per batch: drafting many plans
    hashes every row of the data once, not once a rep."""

    card = batch_scorecard(batch, as_of)
    day = f"{pd.Timestamp(card.attrs['window_end']):%Y-%m-%d}"
    data = dataclasses.replace(batch.data, stamps={day: batch.fingerprint_until(day)})
    return diagnose(data, rep_id, as_of=as_of or None, policy=batch.policy, panel=batch.panel, card=card)


def draft_plans(batch: Batch, rep_ids: list[str], *, as_of: str = "", start: str = "", force: bool = False,
                reason: str = "") -> list[Path | Problem]:
    """Draft and write ``params/plans/<rep>.yaml`` for each rep (in-process; fast).

    An existing plan is kept unless it is still a draft and ``force`` is set, so a manager's edits and a
    plan that is already active are never overwritten. An existing file that cannot be read, or that holds
    another rep's plan, is a :class:`~pipnb.job.Problem` for that rep (the file is left alone). A rep whose
    diagnosis finds no shortfall gets no plan unless ``reason`` says why (:func:`pipnb.drafting.draft_plan`):
    a skipped :class:`~pipnb.job.Problem` saying so (the only skipped one here), and no file. A drafted plan
    records the fingerprint of the data up to the end of its diagnosis: what it was drafted from.
    """
    paths: list[Path | Problem] = []
    for rep_id in rep_ids:
        path = plan_path(batch.params, rep_id)
        if path.exists():
            try:
                existing = load_plan(path)
            except PlanError as err:
                paths.append(Problem(f"{rep_id} plan", f"{err}; the file is left as it is (fix or move it)"))
                continue
            if existing.rep_id != str(rep_id):
                paths.append(Problem(f"{rep_id} plan", f"{path} holds the plan of {existing.rep_id!r}, not "
                                                       f"{rep_id!r}; the file is left as it is"))
                continue
            if existing.status != "draft" or not force:
                paths.append(path)
                continue
        diagnosis = batch_diagnosis(batch, rep_id, as_of)
        if not diagnosis.needs_plan and not reason.strip():
            paths.append(Problem(f"{rep_id} plan", no_plan_needed(diagnosis), skipped=True))
            continue
        plan = draft_plan(diagnosis, start=start or None, policy=batch.policy, reason=reason)
        stamped = plan.model_copy(update={"data_fingerprint": batch.fingerprint_until(plan.diagnosis_window.end)})
        paths.append(stamped.to_yaml(path))
    return paths


def plan_jobs(batch: Batch, plan_paths: list[Path | Problem]) -> list[Job | Problem]:
    """One plan document per plan YAML, written to ``reports/<rep>/plan.html``."""
    jobs: list[Job | Problem] = []
    for path in plan_paths:
        if isinstance(path, Problem):
            jobs.append(path)
            continue
        try:
            plan = _read_plan(batch, path)
        except Exception as err:  # noqa: BLE001 - whatever a crafted plan breaks, that plan fails alone
            jobs.append(_problem(path, _unexpected(path, err)))
            continue
        as_of = f"{plan.diagnosis_window.end}"
        header = {"rep_name": plan.rep_name, "team": plan.team, "stage": stage_title("plan"), "as_of": as_of,
                  "plan_period": f"{plan.start} to {plan.end}", "plan_status": plan.signed_status(),
                  "signoff": _signers(batch, plan)}
        jobs.append(_job(batch, NOTEBOOKS["plan"], rep_dir(batch.reports, plan.rep_id) / "plan",
                         {"rep_id": plan.rep_id, "plan_path": str(Path(path).resolve())}, header,
                         f"{plan.rep_id} plan", as_of=as_of, plan=_file_hash(path),
                         prepared=prepared_for(batch, plan.rep_id, plan_looks(plan, batch.policy),
                                               stamp=plan.diagnosis_window.end)))
    return jobs


def review_jobs(batch: Batch, plan_paths: list[Path | Problem], stage: int | str, *,
                plan_files_only: bool = True) -> list[Job | Problem]:
    """One review per plan at ``stage`` (``"checkpoint-N"``, ``N`` or ``"final"``), written to
    ``reports/<rep>/<stage>.html`` (a frozen report: a later run with other inputs writes a new version).

    Each plan fails alone (a :class:`~pipnb.job.Problem`): a plan that cannot be read, is for a rep not in
    the data, was edited after it was locked, or is the second plan of a rep in this batch. A plan without
    the stage is skipped, and with ``plan_files_only`` so is a file that is not its rep's plan file (a
    backup copy). The report's header says when the data behind the plan or behind an earlier stage of the
    rep changed since it was written.

    Raises
    ------
    PlanError
        When no plan has such a review (the message names the reviews the plans have).
    """
    jobs: list[Job | Problem] = []
    lacking: list[PlanError] = []
    seen: dict[str, str] = {}
    for path in plan_paths:
        if isinstance(path, Problem):
            jobs.append(path)
            continue
        try:
            jobs.append(_review_item(batch, path, stage, plan_files_only, seen, lacking))
        except Exception as err:  # noqa: BLE001 - whatever a crafted plan breaks, that plan fails alone
            jobs.append(_problem(path, _unexpected(path, err)))
    if lacking and not any(isinstance(j, Job) for j in jobs) and len(lacking) == len(jobs):
        raise lacking[0]
    return jobs


def _review_item(batch: Batch, path: Path, stage: int | str, plan_files_only: bool, seen: dict[str, str],
                 lacking: list[PlanError]) -> Job | Problem:
    """The review job of one plan file, or the :class:`Problem` that stops it (see :func:`review_jobs`)."""
    shown = _shown(path)
    try:
        plan = load_plan(path)
    except PlanError as err:
        return _problem(path, err)
    if plan_files_only and Path(path).name != plan_path(batch.params, plan.rep_id).name:
        return Problem(shown, f"not a plan file: it holds {plan.rep_id}'s plan, whose file is "
                              f"{plan_path(batch.params, plan.rep_id).name} (a copy is left alone)", skipped=True)
    if plan.rep_id in seen:
        return Problem(shown, f"a second plan for {plan.rep_id} (the first is {seen[plan.rep_id]}); review one plan "
                              "per rep")
    try:
        name = parse_stage(stage, len(plan.checkpoints), file=shown)
    except PlanError as err:
        lacking.append(err)
        return _problem(path, err, skipped=True)
    try:
        plan = _read_plan(batch, path, plan)
        plan.check_lock(file=shown)
    except PipnbError as err:
        return _problem(path, err)
    seen[plan.rep_id] = shown
    waiting = _not_due(batch, plan, name)
    return waiting if waiting is not None else _review_job(batch, path, plan, name)


def load_plan(path: Path) -> Plan:
    """:meth:`Plan.from_yaml`, where whatever else a crafted file makes reading it raise (nesting past Python's
    recursion limit, more than the memory holds) is a :class:`PlanError` naming the file: that plan fails alone."""
    try:
        return Plan.from_yaml(path)
    except PipnbError:
        raise
    except Exception as err:  # noqa: BLE001 - a file that breaks the reader is a plan that cannot be read
        raise _unexpected(path, err) from None


def _unexpected(path: Path, err: Exception) -> PipnbError:
    """``err`` as one line naming the plan file; a :class:`PipnbError` is kept as it is."""
    if isinstance(err, PipnbError):
        return err
    return PlanError(f"cannot be read or reviewed ({type(err).__name__}: {_bounded(err)}); fix the file or restore "
                     "it from its backup", file=_shown(path))


def _bounded(err: Exception, limit: int = 120) -> str:
    text = " ".join(str(err).split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _signers(batch: Batch, plan: Plan) -> dict[str, str]:
    """The names the sign-off block is pre-filled with: the rep's, and their manager's when the data has one."""
    manager = batch.data.rep(plan.rep_id).get("manager")
    return {"rep": plan.rep_name, "manager": manager if isinstance(manager, str) else "", "hr": ""}


def _not_due(batch: Batch, plan: Plan, stage: str) -> Problem | None:
    """A review that is not run yet, and says why (no kernel is started for it): its plan is a draft, never
    activated, or the data does not reach its last day (the rule of :func:`pipnb.review`: a weekend without
    activity at the end of the data is not missing data). None when the review is due."""
    label = f"{plan.rep_id} {stage}"
    if plan.status == "draft":
        return Problem(label, f"the plan is a draft: activate it first (pipnb plan activate {plan.rep_id} --by "
                              "NAME)", skipped=True, state="draft")
    when = plan.checkpoint_dates()[stage]
    data_end = batch.data.period[1].date()
    if not plan.data_reaches(stage, data_end):
        return Problem(label, f"due {when}; the data ends {data_end}", skipped=True, state="not due")
    return None


def _review_job(batch: Batch, path: Path, plan: Plan, name: str) -> Job:
    checkpoint = FINAL if name == FINAL else str(checkpoint_number(name))
    as_of = f"{plan.checkpoint_dates()[name]}"
    folder = rep_dir(batch.reports, plan.rep_id)
    notes = [*plan.data_notes(batch.data, now=batch.fingerprint_until(plan.diagnosis_window.end)),
             *_earlier_notes(batch, folder, plan, name)]
    header = {"rep_name": plan.rep_name, "team": plan.team, "stage": stage_title(name), "as_of": as_of,
              "plan_period": f"{plan.start} to {plan.end}", "plan_status": plan.signed_status(), "notes": notes,
              "signoff": _signers(batch, plan)}
    return _job(batch, NOTEBOOKS[FINAL if name == FINAL else "checkpoint"], folder / name,
                {"plan_path": str(Path(path).resolve()), "checkpoint": checkpoint}, header,
                f"{plan.rep_id} {name}", as_of=as_of, frozen=True, plan=plan.content_hash()[:16],
                prepared=prepared_for(batch, plan.rep_id, plan_looks(plan, batch.policy),
                                      stamp=plan.diagnosis_window.end))


def _earlier_notes(batch: Batch, folder: Path, plan: Plan, stage: str) -> list[str]:
    """A sentence for each earlier report of the rep (the diagnosis, the reviews before ``stage``, as of a day
    no later than this one's) whose data has changed since it was written: rows dated on or before its as-of
    date were added, changed or removed. Data dated after this review changes none of them."""
    earlier = ["diagnose", *plan.stages()[: plan.stages().index(stage)]]
    as_of = f"{plan.checkpoint_dates()[stage]}"
    notes = []
    for name in earlier:
        good = [v for v in versions(folder / name) if v.good]
        record = good[-1].record if good else None
        if record is None or not record.as_of or not record.inputs.get("data") or record.as_of > as_of:
            continue
        if record.inputs["data"] != data_stamp(batch, record.as_of):
            when = record.written_at[:10] or "earlier"
            notes.append(f"The data behind the {stage_title(name).lower()} report (up to "
                         f"{pd.Timestamp(record.as_of):%d %b %Y}) has changed since it was written ({when}): rows "
                         "dated on or before that day were added, changed or removed. That report is kept as it "
                         "was; rerun its stage to add a new version beside it.")
    return notes


def find_plans(batch: Batch, *, pattern: str | None = None, rep_ids: list[str] | None = None
               ) -> list[Path | Problem]:
    """Plan YAMLs by glob (``--plans``, relative to the working directory), by rep id (``--reps``; a rep
    without a plan is a :class:`~pipnb.job.Problem`), or every plan under ``params/plans``; absolute paths.

    Raises
    ------
    PlanError
        When nothing matches.
    """
    if rep_ids:
        found: list[Path | Problem] = []
        for rep_id in rep_ids:
            path = plan_path(batch.params, rep_id)
            found.append(path if path.exists() else Problem(
                f"{rep_id} plan", f"{path}: no plan yet; draft it with `pipnb plan` or `pipnb run --stage plan`"))
        if all(isinstance(p, Problem) for p in found):
            raise PlanError(found[0].error)
        return found
    wanted = pattern or str(batch.params / "plans" / "*.yaml")
    paths = sorted(Path(p).resolve() for p in glob.glob(str(Path(wanted).expanduser())))
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise PlanError(f"no plan YAML matches {wanted}")
    return paths


def _read_plan(batch: Batch, path: Path, plan: Plan | None = None) -> Plan:
    """The plan at ``path`` (read unless given), checked to be for a rep of the data; records the rep for the
    index."""
    plan = plan or load_plan(path)
    remember_rep(batch.reports, plan.rep_id, batch.data.rep(plan.rep_id))
    return plan


def _problem(path: Path, err: Exception, *, skipped: bool = False) -> Problem:
    """A plan that fails alone: labelled by its file (as the user wrote it), the message without it."""
    shown, message = _shown(path), str(err)
    for prefix in (f"{shown}: ", f"{path}: ", f"{Path(path).resolve()}: "):
        message = message.removeprefix(prefix)
    return Problem(shown, message, skipped=skipped)


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
