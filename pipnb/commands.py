"""What pipnb's commands do once :mod:`pipnb.cli` has parsed and checked their options.

Each function takes plain values and, when it prints, the command line's ``echo`` (which shows control
characters from the data escaped, and masks the secrets of a database URL given on the command line): no
function here reads ``sys.argv`` or writes to ``sys.stdout`` itself.

* :func:`execute` runs a batch's jobs, rebuilds the index and the data-quality file, prints the summary and
  every file written (``pipnb run``, ``diagnose``, ``plan``, ``review``, ``demo``);
* :func:`diagnose`, :func:`draft`, :func:`review_report`, :func:`run_stage` and :func:`demo` prepare the batch,
  build its jobs and :func:`execute` them (``pipnb diagnose``, ``plan --data``, ``review``, ``run``, ``demo``);
* :func:`scan_text`, :func:`review_json`, :func:`status_text` and :func:`history_lines` are what ``pipnb scan``,
  ``review --format json``, ``status`` and ``plan history`` show; :func:`plan_event_line` signs a plan event
  (``pipnb plan event``); :func:`write_demo_data` and
  :func:`init_folder` write the demo team (``pipnb demo-data``) and a working folder (``pipnb init``).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from pipnb.alerts import card_warnings, warning_line
from pipnb.batch import (
    demo_jobs,
    diagnose_jobs,
    draft_plans,
    find_plans,
    plan_jobs,
    prepare,
    review_jobs,
    scan_job,
    write_index,
)
from pipnb.batch.prepare import Batch, absolute_source
from pipnb.cluster import ClusterError
from pipnb.dashboard import dashboard, format_table, to_json
from pipnb.data import rep_hint
from pipnb.dates import FORMAT, DateError, read_day
from pipnb.demo import demo_data
from pipnb.errors import PlanError
from pipnb.findings import plural
from pipnb.io import safe_csv
from pipnb.job import Problem, RunSummary
from pipnb.kernel import KERNEL_NAME, available
from pipnb.lifecycle import HistoryEntry
from pipnb.locks import writing
from pipnb.outputs import run_json, written_paths
from pipnb.pdf import print_pdfs
from pipnb.peers import scorecard
from pipnb.plan import Plan, record_plan_event
from pipnb.policy import Policy
from pipnb.progress import quiet
from pipnb.quality import summary_line, write_quality_csv
from pipnb.reviews import review
from pipnb.runner import WarmPool, run_jobs
from pipnb.scan import flagged_reps, format_scan, scan_json, scan_records
from pipnb.sentences import review_record
from pipnb.sources import load
from pipnb.sources.layouts import write_layout
from pipnb.workdir import init

__all__ = ["demo", "diagnose", "draft", "event_line", "execute", "history_lines", "init_folder", "plan_event_line",
           "review_json", "review_report", "run_stage", "scan_text", "status_text", "write_demo_data"]

#: How a command prints a line: ``echo(text, err=False, nl=True)``.
Echo = Callable[..., None]


def execute(batch: Batch, jobs: list, *, echo: Echo, jobs_n: int | None = None, force: bool = False,
            scheduler: str | None = None, kernel: str | None = None, fmt: str = "text", pdf: bool = False,
            paper: str = "a4", pool: WarmPool | None = None) -> RunSummary:
    """Run jobs, rebuild the index, print the summary and every file written (or, with ``fmt`` json, the
    results as JSON); ``pdf`` prints a PDF beside each report; a failed job makes the exit code non-zero;
    ``pool``: workers forked early (:func:`pipnb.runner.start_pool`).

    Raises
    ------
    pipnb.cluster.ClusterError
        When the cluster was lost (after the summary and the index covering what finished).
    pipnb.errors.RunError
        When a job failed (:meth:`~pipnb.job.RunSummary.raise_for_failures`).
    """
    if kernel is None:
        fast, why = available()
        kernel = KERNEL_NAME if fast else None
        if not fast and not quiet():
            echo(f"pipnb: using the normal kernel: {why}", err=True)
    lost = None
    try:
        results = run_jobs(jobs, jobs_n=jobs_n, force=force, scheduler=scheduler, kernel_name=kernel, pool=pool)
    except ClusterError as err:          # the summary and index still cover what finished
        lost, results = err, err.results
    summary = RunSummary.from_results(results)
    index = write_index(batch.reports, batch.params, summary.results, data_date=f"{batch.data.period[1]:%Y-%m-%d}")
    quality = write_quality_csv(batch.data, batch.reports)   # every row set aside or value blanked
    pdfs = []
    if pdf:
        htmls = [r.html for r in summary.results if r.status in ("ok", "skipped") and r.html is not None]
        pdfs = list(print_pdfs(htmls, paper=paper))
    if fmt == "json":
        echo(run_json(summary, index=index, data_quality=quality, pdfs=pdfs))
    else:
        echo(str(summary))
        echo(f"index: {index}")
        echo(f"data quality: {quality}")
        written = [*written_paths(summary), *pdfs]
        if written:                                    # last: what a script or a reader picks up
            echo("written:")
            for path in written:
                echo(f"  {path}")
    if lost is not None:
        raise lost
    summary.raise_for_failures()
    return summary


def diagnose(source: str, rep_id: str, *, as_of: str, reports: str, params: str, echo: Echo,
             bad_rows: str | None = None, **run: Any) -> RunSummary:
    """``pipnb diagnose``: one rep's diagnosis report (``run``: :func:`execute`'s options)."""
    batch = prepare(absolute_source(source), reports=reports, params=params, bad_rows=bad_rows)
    with writing(batch.reports, batch.params):
        return execute(batch, diagnose_jobs(batch, [rep_id], as_of=as_of), echo=echo, jobs_n=1, **run)


def draft(source: str, rep_id: str, *, as_of: str, start: str, reports: str, params: str, echo: Echo,
          bad_rows: str | None = None, reason: str = "", **run: Any) -> RunSummary:
    """``pipnb plan --data SRC --rep ID [--reason TEXT]``: draft the rep's plan YAML (an existing one is kept
    unless it is a draft and ``force`` is set), then write its report (``run``: :func:`execute`'s options).

    Raises
    ------
    PlanError
        When the plan cannot be drafted: the rep's diagnosis finds no shortfall and no ``reason`` is given
        (nothing is written), or its file holds another rep's plan.
    """
    batch = prepare(absolute_source(source), reports=reports, params=params, bad_rows=bad_rows)
    with writing(batch.reports, batch.params):
        paths = draft_plans(batch, [rep_id], as_of=as_of, start=start, force=run.get("force", False), reason=reason)
        if isinstance(paths[0], Problem):
            raise PlanError(paths[0].error)
        _reason_note(paths, reason, echo)
        echo(f"plan: {paths[0]}")
        return execute(batch, plan_jobs(batch, paths), echo=echo, jobs_n=1, **run)


def review_report(source: str, plan_file: Path, stage: str, *, reports: str, params: str, echo: Echo,
                  bad_rows: str | None = None, **run: Any) -> RunSummary:
    """``pipnb review``: one review's report (``run``: :func:`execute`'s options).

    Raises
    ------
    PlanError
        When the plan cannot be reviewed at ``stage`` (a review not due yet or a draft plan is a state, not an
        error: the summary says so).
    """
    batch = prepare(source, reports=reports, params=params, bad_rows=bad_rows)
    with writing(batch.reports, batch.params):
        jobs = review_jobs(batch, [plan_file], stage, plan_files_only=False)
        problems = [j for j in jobs if isinstance(j, Problem) and not j.state]      # not due / draft: a state
        if problems:
            raise PlanError(problems[0].error)
        return execute(batch, jobs, echo=echo, jobs_n=1, **run)


def run_stage(source: str, stage: str, reps: list[str], *, flagged: bool, plans_glob: str | None, as_of: str,
              reports: str, params: str, echo: Echo, bad_rows: str | None = None, reason: str = "",
              **run: Any) -> RunSummary:
    """``pipnb run`` once its options are checked: prepare the batch, build the stage's jobs (for ``diagnose``
    and ``plan`` without reps, every flagged rep), run them (``run``: :func:`execute`'s options).

    At the plan stage a rep whose diagnosis finds no shortfall gets no plan unless ``reason`` says why: the
    summary names them as not run, with why, and the others run.

    Raises
    ------
    PlanError
        At the plan stage, when no rep gets a plan because no diagnosis finds a shortfall (one line).
    """
    batch = prepare(absolute_source(source), reports=reports, params=params, bad_rows=bad_rows)
    with writing(batch.reports, batch.params):      # from the plans drafted and versions claimed to the index
        return _run_stage(batch, stage, reps, flagged=flagged, plans_glob=plans_glob, as_of=as_of, echo=echo,
                          reason=reason, **run)


def _run_stage(batch: Batch, stage: str, reps: list[str], *, flagged: bool, plans_glob: str | None, as_of: str,
               echo: Echo, reason: str, **run: Any) -> RunSummary:
    if stage == "scan":
        jobs = [scan_job(batch, as_of=as_of)]
    elif stage in ("diagnose", "plan"):
        if flagged or not reps:
            reps = _flagged(batch, as_of)
        for rep_id in reps:
            batch.data.rep(rep_id)
        if stage == "diagnose":
            jobs = diagnose_jobs(batch, reps, as_of=as_of)
        else:
            drafted = draft_plans(batch, reps, as_of=as_of, force=run.get("force", False), reason=reason)
            refused = [p for p in drafted if isinstance(p, Problem) and p.skipped]    # no shortfall, no reason
            if refused and len(refused) == len(drafted):
                others = ", ".join(p.label.removesuffix(" plan") for p in refused[1:])
                more = f"; the same for {others}" if others else ""
                raise PlanError(refused[0].error + more)
            _reason_note(drafted, reason, echo)
            jobs = plan_jobs(batch, drafted)
    else:
        jobs = review_jobs(batch, find_plans(batch, pattern=plans_glob, rep_ids=reps or None), stage)
    return execute(batch, jobs, echo=echo, **run)


def _reason_note(paths: list, reason: str, echo: Echo) -> None:
    """Say when a ``--reason`` was not recorded: the plan's diagnosis finds a shortfall (it needs none), or the
    plan file existed and was kept."""
    if not reason.strip():
        return
    for path in paths:
        if isinstance(path, Problem):
            continue
        plan = Plan.from_yaml(path)
        if plan.reason != " ".join(reason.split()):
            why = ("the plan file was kept as it is" if plan.reason else
                   "its diagnosis finds a shortfall, or the plan file was kept as it is")
            echo(f"pipnb: --reason not recorded for {plan.rep_id}: {why}", err=True)


def _flagged(batch: Batch, as_of: str) -> list[str]:
    card = scorecard(batch.data, as_of=as_of or None, policy=batch.policy, panel=batch.panel)
    return flagged_reps(card, plan_metrics_only=True)


def existing_plan_file(path: str) -> str:
    """``review --plan FILE``: the file, or a :class:`PlanError` with a did-you-mean over the plan files beside it
    (:func:`pipnb.data.rep_hint`: ``r07.yaml`` for ``R07.yaml``)."""
    file = Path(path)
    if file.is_file():
        return path
    known = sorted(p.name for p in file.parent.glob("*.yaml")) if file.parent.is_dir() else []
    hint = (rep_hint(file.name, known, examples="the plan files there are") if known else
            f"{file.parent} holds no plan file; draft one with pipnb plan --data SRC --rep ID")
    raise PlanError(f"{path}: file not found; {hint}")


def review_json(source: str, plan: Plan, stage: str, params: str, *, bad_rows: str | None = None) -> str:
    """``pipnb review --format json``: the review computed here (no notebook), with the notes it warned of."""
    policy_path = Path(params) / "policy.yaml"
    policy = Policy.from_yaml(policy_path) if policy_path.is_file() else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = review(load(source, bad_rows=bad_rows), plan, stage, policy=policy)
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return json.dumps({**review_record(result), "notes": notes}, indent=1, default=str)


def history_lines(path: Path, plan: Plan) -> list[str]:
    """``pipnb plan history``: the plan's status, lock and signed history (who, when, why), and any edit since
    it was locked."""
    lock = (f"locked {plan.lock.on} by {plan.lock.by} ({plan.lock.how()} {plan.lock.sha256[:12]})"
            if plan.lock is not None else "not locked")
    lines = [f"{path}: {plan.status}, {plan.start} to {plan.end}, {lock}"]
    for h in plan.history:
        when = f"{h.at:%Y-%m-%d %H:%M} UTC" if h.at is not None else f"{h.date}"
        if h.event is not None:
            lines.append(f"  {h.date}  {'event':<13} {h.by}  {when}  {event_line(h)}")
            continue
        lines.append(f"  {h.date}  {h.status:<13} {h.by or '(unsigned)'}  {when}" + (f"  {h.note}" if h.note else ""))
    edit = plan.edits()
    if edit:
        lines.append(f"  edited since it was locked: {edit}")
    return lines


def plan_event_line(params: str, rep_id: str, *, kind: str, on: str, note: str, by: str, until: str | None,
                    weeks: int | None, metrics: str) -> str:
    """``pipnb plan event``: sign the event on the rep's plan file (:func:`pipnb.plan.record_plan_event`) and say
    what was recorded in one line. Dates are YYYY-MM-DD only; any problem is one :class:`PlanError` line and
    nothing is written."""
    named = [m.strip() for m in metrics.split(",") if m.strip()]
    path, signed = record_plan_event(params, rep_id, kind, on=_iso_day(on, "--date"), note=note, by=by,
                                     until=_iso_day(until, "--until"), weeks=weeks, metrics=named or None)
    return f"{path}: {event_line(signed.history[-1])}"


def event_line(entry: HistoryEntry) -> str:
    """One line on a signed plan event: its kind and dates, the metrics it rebaselines (or, for a leave, the weeks
    it sets aside), who signed it, and its note."""
    event = entry.event
    if event.kind == "leave":
        what = f"leave {event.start} to {event.end}: {plural(event.weeks(), 'week')} set aside for every metric"
    else:
        what = f"{event.kind} change from {event.start}: rebaselines {', '.join(event.metrics) or 'no plan metric'}"
    return f"{what}; signed by {entry.by} on {entry.date}: {entry.note}"


def _iso_day(value: str | None, option: str) -> dt.date | None:
    """A date given as ISO 8601 (:func:`pipnb.dates.read_day`); None when not given."""
    try:
        return read_day(value, option)
    except DateError as err:
        raise PlanError(err.problem + f" (use {FORMAT})", key=option) from None


def demo(out: str, source: str | None, *, reports: str, params: str, echo: Echo, **run: Any) -> RunSummary:
    """``pipnb demo``: the demo data written to ``out`` when missing (unless another ``source`` is given), then
    the whole lifecycle run on it (``run``: :func:`execute`'s options)."""
    if source is None and not (Path(out) / "reps.csv").exists():
        demo_data().write(out)
        echo(f"demo data written to {out}")
    batch = prepare(absolute_source(source or out), reports=reports, params=params)
    with writing(batch.reports, batch.params):
        summary = execute(batch, demo_jobs(batch, force=run.get("force", False)), echo=echo, **run)
    echo(f"\nOpen the reports: {(batch.reports / 'index.html')}")
    return summary


def init_folder(folder: str, *, notebooks: bool, echo: Echo) -> None:
    """``pipnb init``: make the working folder (:func:`pipnb.workdir.init`) and say what was created and kept."""
    done = init(folder, notebooks=notebooks)
    for path in done.created:
        echo(f"created {path}{'/' if path.is_dir() else ''}")
    for path in done.kept:
        echo(f"kept {path} (exists)")
    echo(f"working folder: {done.folder}; next: pipnb demo-data, then pipnb demo (or pipnb scan --data SRC)")


def write_demo_data(out: str, *, seed: int, reps: int, weeks: int, fmt: str, layout: str) -> str:
    """``pipnb demo-data``: write the demo team to ``out`` as pipnb's tables (``fmt``) or as a vendor export
    (``layout`` ``salesforce`` or ``hubspot``); returns the line saying what was written where."""
    data = demo_data(seed=seed, reps=reps, weeks=weeks)
    folder = data.write(out, format=fmt) if layout == "canonical" else write_layout(data, out, layout)
    counts = ", ".join(f"{len(getattr(data, t))} {t}" for t in ("reps", "opportunities", "activities"))
    return f"wrote {counts} to {folder}"


def scan_text(source: str, *, bad_rows: str | None = None, as_of: pd.Timestamp | None, weeks: int | None,
              since: pd.Timestamp | None, peer_by: str | None, win_rate_basis: str | None, policy: str | None,
              fmt: str, echo: Echo) -> str:
    """``pipnb scan``: the team scan as a table, CSV or JSON. The settings are ``policy`` when given, else
    ./params/policy.yaml when it exists, else pipnb's own; one line on stderr says what the load kept."""
    rules = Policy.find(policy, params="params")
    data = load(source, bad_rows=bad_rows)
    if not quiet():
        echo(f"pipnb: {summary_line(data)}", err=True)
    card = scorecard(data, as_of=as_of, weeks=weeks, since=since, peer_by=peer_by, win_rate_basis=win_rate_basis,
                     policy=rules)
    if fmt == "table":
        return format_scan(card, data)         # its warnings among its lines
    for warning in card_warnings(card, data):  # the records stay records: the warnings go beside them
        echo(f"pipnb: warning: {warning_line(warning)}", err=True)
    return safe_csv(scan_records(card)) if fmt == "csv" else scan_json(card)


def status_text(reports: str, params: str, *, today: dt.date | None, data_date: str, fmt: str) -> str:
    """``pipnb status``: the dashboard of the reports on disk, as a table or JSON."""
    board = dashboard(Path(reports), Path(params), today=today, data_date=data_date)
    return to_json(board) if fmt == "json" else format_table(board)
