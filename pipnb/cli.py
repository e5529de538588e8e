"""The ``pipnb`` command line: parse, validate, delegate.

Heavy libraries are imported inside the commands, so ``pipnb --help`` starts quickly. Every
:class:`~pipnb.errors.PipnbError` ends as one line on stderr and a non-zero exit code, and so does a file
that cannot be written (a full disk): nothing half-written is left. Paths given on the command line are
taken from the caller's working directory before anything runs; notebooks receive absolute paths. What
pipnb prints passes one filter: control characters from the data are shown escaped (``\x1b``), never sent
to the terminal, and an error message never shows a database password (:mod:`pipnb.redact`).
"""

from __future__ import annotations

import errno
import sys
import unicodedata
from pathlib import Path

import click

from pipnb.cli_events import event_command
from pipnb.cli_verify import verify_command
from pipnb.errors import PipnbError
from pipnb.kernel.__main__ import main as kernel_commands
from pipnb.options import absolute_path as _absolute
from pipnb.options import date_value as _date
from pipnb.options import existing_folder as _existing_folder
from pipnb.options import iso_date as _iso
from pipnb.options import nonempty_path as _nonempty
from pipnb.pdf import print_pdfs
from pipnb.progress import configure
from pipnb.redact import Redactor
from pipnb.report import render as export
from pipnb.stages import parse_stage, stage_name
from pipnb.workdir import plan_path

DATA_HELP = ("A folder (pipnb tables, or a Salesforce / HubSpot export), a source YAML, or a database URL.")


class _Group(click.Group):
    def main(self, *args, **kwargs):
        """Click's own handling, except that a command-line mistake is one line (no usage block), exit 2."""
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.exceptions.Abort:
            echo("pipnb: aborted", err=True)
            sys.exit(1)
        except click.ClickException as err:
            ctx = getattr(err, "ctx", None)            # the command's own name, however pipnb was started
            sub = ctx.command_path[len(ctx.find_root().command_path):].strip() if ctx else ""
            hint = f" (see pipnb {sub} --help)" if sub else " (see pipnb --help)"
            _fail(err.format_message() + (hint if isinstance(err, click.UsageError) else ""), err.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PipnbError as err:
            _fail(str(err), err.exit_code)
        except KeyboardInterrupt:
            echo("pipnb: interrupted; finished files are kept, rerun to complete the rest", err=True)
            sys.exit(130)
        except BrokenPipeError:       # the reader went away (`pipnb scan | head`): nothing more to say
            sys.exit(1)
        except OSError as err:        # e.g. a full disk: every file pipnb writes is whole or absent
            _fail(_os_error(err), 1)


def _fail(message: str, code: int):
    echo(f"pipnb: error: {_redacted(message)}", err=True)
    sys.exit(code)


def _os_error(err: OSError) -> str:
    where = f" {err.filename}" if err.filename else ""
    what = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (f"cannot write{where}: {what}; nothing half-written was left and finished files are kept: free "
                "some space and rerun")
    return f"cannot read or write{where}: {what}"


def _redacted(message: str) -> str:
    """``message`` without the secrets of a database URL given on the command line (even a mistyped one)."""
    redact = Redactor()
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "--data" and i + 1 < len(args) else arg.partition("=")[2] \
            if arg.startswith("--data=") else None
        if value and ("://" in value or "@" in value):
            redact.add_url(value)
    return redact(message)


#: Characters never sent to a terminal as they are: controls (but newline and tab) and bidirectional overrides.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def printable(text: str) -> str:
    """``text`` with control characters (but newline and tab) and bidirectional overrides shown escaped
    (``\x1b``, ``\r``, ``\u202e``), so text from the data cannot move the cursor, recolour or rewrite a
    terminal."""
    if text.isprintable() or all(c in "\n\t" or c.isprintable() for c in text):
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if _unsafe(c) else c for c in text)


def _unsafe(c: str) -> bool:
    return c not in "\n\t" and (unicodedata.category(c) == "Cc" or c in _BIDI)


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print for the user (stdout, or stderr with ``err``), through :func:`printable`: every command prints
    with this."""
    click.echo(printable(text), err=err, nl=nl)


def _echo_redacted(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """:func:`echo`, with the secrets of a database URL given on the command line masked (a run's summary and
    results may quote a driver's error)."""
    echo(_redacted(text), err=err, nl=nl)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipnb")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no notes: the results, the files written "
              "and errors only.")
@click.option("--no-progress", is_flag=True, help="No progress display (TQDM_DISABLE=1 does the same). Progress "
              "is a bar on a terminal, one line per job elsewhere.")
def main(quiet: bool, no_progress: bool) -> None:
    """Data-driven performance improvement plans for sales reps."""
    configure(progress=not no_progress, quiet=quiet)


def data_option(f):
    """``--data SRC`` and ``--bad-rows stop|skip`` (how the command's load treats invalid rows), passed to the
    command as ``data_source`` and ``bad_rows``."""
    f = click.option("--bad-rows", type=click.Choice(["stop", "skip"]), default=None,
                     help="stop: the first invalid row stops the load; skip: set invalid rows aside (blank invalid "
                          "optional values) and list them (`pipnb check` shows the list) [default: the source "
                          "YAML's bad_rows, else stop].")(f)
    return click.option("--data", "data_source", required=True, metavar="SRC", help=DATA_HELP)(f)


@main.command("demo-data")
@click.option("--out", default="data/demo", show_default=True, help="Folder to write the tables to.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Random seed, 0 to 4294967295 (same seed, same data).")
@click.option("--reps", "n_reps", default=24, show_default=True, help="Number of reps (at least 24).")
@click.option("--weeks", default=56, show_default=True, help="Number of weeks (at least 52).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--layout", type=click.Choice(["canonical", "salesforce", "hubspot"]), default="canonical",
              show_default=True, help="Write pipnb's tables, or the same team as a vendor export (CSV).")
def demo_data_cmd(out: str, seed: int, n_reps: int, weeks: int, fmt: str, layout: str) -> None:
    """Write the built-in demo team (deterministic for a seed)."""
    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import write_demo_data

    echo(write_demo_data(out, seed=seed, reps=n_reps, weeks=weeks, fmt=fmt, layout=layout))


@main.command()
@data_option
@click.option("--as-of", default=None, help="Last day of the window (default: last day with data).")
@click.option("--weeks", type=click.IntRange(min=1), default=None,
              help="Window length in weeks [default: the policy's diagnosis_weeks].")
@click.option("--since", default=None, help="Start the window at this date instead of --weeks.")
@click.option("--peer-by", type=click.Choice(["team", "segment", "all"]), default=None,
              help="Peer grouping [default: the policy's peer_by].")
@click.option("--win-rate-basis", type=click.Choice(["closed", "all"]), default=None,
              help="Win rate on closed deals or on all opportunities [default: the policy's].")
@click.option("--policy", "policy_path", default=None, metavar="YAML",
              help="Settings [default: params/policy.yaml when it exists, else pipnb's].")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
def scan(data_source: str, bad_rows: str | None, as_of: str | None, weeks: int | None, since: str | None,
         peer_by: str | None, win_rate_basis: str | None, policy_path: str | None, fmt: str) -> None:
    """Show which reps fall short of their peers, on which metrics, and why."""
    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import scan_text

    echo(scan_text(data_source, bad_rows=bad_rows, as_of=_date(as_of, "--as-of"), weeks=weeks,
                   since=_date(since, "--since"), peer_by=peer_by, win_rate_basis=win_rate_basis, policy=policy_path,
                   fmt=fmt, echo=echo))


# -- the lifecycle ------------------------------------------------------------------------------
def batch_options(f):
    f = click.option("--reports", default="reports", show_default=True, callback=_absolute,
                     help="Folder for the reports.")(f)
    f = click.option("--params", default="params", show_default=True, callback=_absolute,
                     help="Folder holding policy.yaml and plans/.")(f)
    f = click.option("--force", is_flag=True, help="Re-run reports whose inputs are unchanged (a review already "
                     "written gets a new version beside it, never a rewrite).")(f)
    f = click.option("--kernel", default=None, help="Jupyter kernel for the notebooks (default: the fast "
                     "pipnb kernel when available, else python3).")(f)
    return f


def pdf_options(f):
    """``--pdf`` and ``--paper``: a PDF beside each report the run writes (or finds up to date)."""
    f = click.option("--paper", type=click.Choice(["a4", "letter"]), default="a4", show_default=True,
                     help="Paper size of the PDFs.")(f)
    return click.option("--pdf", "pdf", is_flag=True, help="Also print each report to a PDF beside it, for the "
                        "HR file (needs Debian's chromium).")(f)


def jobs_option(f):
    """``--jobs``, for the commands that run many notebooks (``run``, ``demo``)."""
    return click.option("--jobs", "jobs_n", type=click.IntRange(1, 64), default=None,
                        help="Parallel notebooks (default: the number of cores).")(f)


@main.command()
@data_option
@click.option("--rep", "rep_id", required=True, help="Rep id to diagnose.")
@click.option("--as-of", default="", help="Last day of the diagnosis window (default: last day with data).")
@batch_options
@pdf_options
def diagnose(data_source, bad_rows, rep_id, as_of, reports, params, force, kernel, pdf, paper):
    """Diagnose one rep and write reports/<rep>/diagnose.html."""
    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import diagnose as run_diagnose

    run_diagnose(data_source, rep_id, bad_rows=bad_rows, as_of=_iso(as_of, "--as-of"), reports=reports, params=params,
                 echo=_echo_redacted, force=force, kernel=kernel, pdf=pdf, paper=paper)


def _optional_data(f):
    """``data_option``, with ``--data`` optional: ``pipnb plan`` drafts with it and signs steps without it."""
    f = data_option(f)
    for param in f.__click_params__:
        if param.name == "data_source":
            param.required = False
    return f


@main.group(invoke_without_command=True, subcommand_metavar="[activate|acknowledge|extend|complete|close REP]")
@_optional_data
@click.option("--rep", "rep_id", default=None, help="Rep id to draft a plan for.")
@click.option("--as-of", default="", help="Last day of the diagnosis window (default: last day with data).")
@click.option("--start", default="", help="First day of the plan (default: the day after the diagnosis).")
@click.option("--reason", default="", metavar="TEXT", help="Why a plan is drafted though the rep's diagnosis "
              "finds no shortfall (refused without it); kept in the plan, its history and every report of it.")
@batch_options
@pdf_options
@click.pass_context
def plan(ctx, data_source, bad_rows, rep_id, as_of, start, reason, reports, params, force, kernel, pdf, paper):
    """Draft a plan, or sign a step of its lifecycle.

    \b
    Draft:  pipnb plan --data SRC --rep ID [--start DATE] [--reason TEXT]
            writes params/plans/<rep>.yaml (kept if it exists) and reports/<rep>/plan.html;
            a rep whose diagnosis finds no shortfall gets no plan unless --reason says why.
    Sign:   pipnb plan activate|acknowledge|extend|complete|close REP --by NAME [--note TEXT]
            draft -> active -> acknowledged -> extended -> completed / not-completed (close);
            activate locks the targets and dates; a re-activation needs --note (why).
    History: pipnb plan history REP       Event: pipnb plan event REP --kind K --date D --note TEXT --by NAME
    """
    ctx.ensure_object(dict)["params"] = params
    if ctx.invoked_subcommand is not None:
        if data_source or rep_id or reason:
            raise click.UsageError("--data, --rep and --reason draft a plan; a lifecycle step takes the rep only: "
                                   f"pipnb plan {ctx.invoked_subcommand} REP --by NAME")
        return
    if not data_source or not rep_id:
        raise click.UsageError("draft a plan with --data SRC --rep ID, or sign a step of one: pipnb plan "
                               "activate|acknowledge|extend|complete|close REP --by NAME")
    # pipnb.commands loads pandas (~0.9 s): drafting pays it, a lifecycle step (a subcommand) does not
    from pipnb.commands import draft

    _check_redraft(params, rep_id, force=force, start=start, as_of=as_of)
    draft(data_source, rep_id, bad_rows=bad_rows, as_of=_iso(as_of, "--as-of"), start=_iso(start, "--start"),
          reason=reason, reports=reports, params=params, echo=_echo_redacted, force=force, kernel=kernel, pdf=pdf,
          paper=paper)


def _check_redraft(params: str, rep_id: str, *, force: bool, start: str, as_of: str) -> None:
    """``--start`` and ``--as-of`` shape a new draft: with a plan that is kept (not a draft redrafted with
    ``--force``) they cannot apply, and saying so beats ignoring them."""
    from pipnb.plan import Plan  # pipnb.plan (pydantic, yaml: 0.4 s): not on the `pipnb --help` path

    given = [name for name, value in (("--start", start), ("--as-of", as_of)) if value]
    path = plan_path(Path(params), rep_id)
    if not given or not path.is_file():
        return
    status = Plan.from_yaml(path).status
    if status == "draft" and force:
        return
    how = ("redraft it with --force, or edit its dates in the file" if status == "draft" else
           "it is kept as it is; edit the file, and re-activate it with --note if it was locked")
    raise click.UsageError(f"{' and '.join(given)} cannot apply: {path} exists (status {status}): {how}")


_STEPS = {
    "activate": "Activate a plan: its targets and dates are locked (re-activating an edited plan needs --note).",
    "acknowledge": "Record that the rep acknowledged the active plan.",
    "extend": "Extend the plan: its end moves by the policy's review.extension_weeks (or --weeks).",
    "complete": "Close the plan as completed (needs its final review, or --note saying why not).",
    "close": "Close the plan as not completed (the consequences apply).",
}


def _step_command(action: str):
    def step(ctx, rep_id, by, note, params, weeks=None):
        _sign(action, rep_id, by=by, note=note, params=params or ctx.obj.get("params") or "params", weeks=weeks)

    step = click.pass_context(step)
    if action == "extend":
        step = click.option("--weeks", type=click.IntRange(1, 26), default=None,
                            help="Weeks to extend by [default: the policy's review.extension_weeks].")(step)
    step = click.option("--params", default=None, callback=_absolute,
                        help="Folder holding plans/ and policy.yaml [default: params].")(step)
    step = click.option("--note", default="", metavar="TEXT",
                        help="Why (kept in the history; required to re-activate).")(step)
    step = click.option("--by", "by", required=True, metavar="NAME",
                        help="Who signs this step (kept in the plan's history).")(step)
    step = click.argument("rep_id", metavar="REP")(step)
    return plan.command(action, help=_STEPS[action])(step)


for _action in _STEPS:
    _step_command(_action)
plan.add_command(event_command(echo, _absolute))      # pipnb plan event: pipnb.cli_events


def _sign(action: str, rep_id: str, *, by: str, note: str, params: str, weeks: int | None) -> None:
    """Take the step on the rep's plan file (:func:`pipnb.plan.sign_plan`); one line says what was signed."""
    from pipnb.plan import sign_plan  # pipnb.plan (pydantic, yaml: 0.4 s): not on the `pipnb --help` path

    path, signed = sign_plan(params, rep_id, action, by=by, note=note, weeks=weeks)
    entry = signed.history[-1]
    line = f"{path}: {signed.status}, signed by {entry.by} on {entry.date}"
    if entry.lock:
        line += (f"; the whole plan locked ({signed.lock.how()} {entry.lock}); plan period {signed.start} to "
                 f"{signed.end}")
    echo(line + (f"; {entry.note}" if entry.note else ""))


@plan.command("history")
@click.argument("rep_id", metavar="REP")
@click.option("--params", default=None, callback=_absolute, help="Folder holding plans/ [default: params].")
@click.pass_context
def plan_history(ctx, rep_id, params):
    """Show a plan's status, lock and signed history (who, when, why), and any edit since it was locked."""
    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import history_lines
    from pipnb.plan import Plan, plan_file  # pipnb.plan (pydantic, yaml: 0.4 s): not on the `pipnb --help` path

    path = plan_file(Path(params or ctx.obj.get("params") or "params"), rep_id)     # did-you-mean when missing
    for line in history_lines(path, Plan.from_yaml(path)):
        echo(line)


@main.command()
@data_option
@click.option("--plan", "plan_file", required=True, help="The plan YAML (params/plans/<rep>.yaml).")
@click.option("--checkpoint", required=True, metavar="N|final",
              help="Which review: a checkpoint number (1 up to the plan's count), checkpoint-N, or final.")
@click.option("--format", "fmt", type=click.Choice(["report", "json"]), default="report", show_default=True,
              help="json prints the review for scripts instead of writing a report.")
@batch_options
@pdf_options
def review(data_source, bad_rows, plan_file, checkpoint, fmt, reports, params, force, kernel, pdf, paper):
    """Review a plan at one of its checkpoints or at the final review.

    A plan edited after it was locked is refused (one line saying what changed) until it is re-activated.
    A review once written is kept: a later run with other data or another plan writes a new version beside
    it (reports/<rep>/<stage>.v2.html ...), and the index links every version.
    """
    from pipnb.batch.prepare import absolute_source  # pipnb.batch (pandas: 0.35 s): not on the `pipnb --help` path

    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import existing_plan_file, review_json, review_report
    from pipnb.plan import Plan  # pipnb.plan (pydantic, yaml: 0.4 s): not on the `pipnb --help` path

    plan_file, data_source = str(Path(plan_file).expanduser().absolute()), absolute_source(data_source)
    plan_obj = Plan.from_yaml(existing_plan_file(plan_file))
    stage = parse_stage(checkpoint, len(plan_obj.checkpoints), file=plan_file)
    plan_obj.check_lock(file=plan_file)
    if fmt == "json":
        echo(review_json(data_source, plan_obj, stage, params, bad_rows=bad_rows))
    else:
        review_report(data_source, Path(plan_file), stage, bad_rows=bad_rows, reports=reports, params=params,
                      echo=_echo_redacted, force=force, kernel=kernel, pdf=pdf, paper=paper)


@main.command()
@data_option
@click.option("--stage", required=True, metavar="STAGE",
              help="scan, diagnose, plan, checkpoint-N (N up to the plans' checkpoints) or final.")
@click.option("--reps", "rep_ids", multiple=True, metavar="ID ...", help="Rep ids (space or comma separated).")
@click.option("--flagged", is_flag=True, help="Every rep the team scan flags on the win rate or a driver.")
@click.option("--plans", "plans_glob", default=None, metavar="GLOB", help="Plan YAMLs to review.")
@click.option("--as-of", default="", help="Last day of the diagnosis window (diagnose, plan).")
@click.option("--reason", default="", metavar="TEXT", help="plan: why the named reps whose diagnosis finds no "
              "shortfall get a plan anyway (without it they are skipped, and named).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Send the jobs to a Dask cluster.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: the results for scripts (jobs, status, paths, timings) instead of the summary.")
@click.argument("more_reps", nargs=-1, metavar="")
@batch_options
@jobs_option
@pdf_options
def run(data_source, bad_rows, stage, rep_ids, flagged, plans_glob, as_of, reason, scheduler, more_reps, fmt, reports,
        params, force, kernel, jobs_n, pdf, paper):
    """Run one stage for many reps in parallel, resumably, and rebuild the index."""
    stage = stage_name(stage)      # a review stage is checked against each plan by review_jobs
    reps = [r for chunk in (*rep_ids, *more_reps) for r in chunk.split(",") if r.strip()]
    if more_reps and not rep_ids:
        raise click.UsageError(f"unexpected argument {more_reps[0]!r} (rep ids go after --reps)")
    if rep_ids and not reps:
        raise click.BadParameter("names no rep: give rep ids (R07,R12), or --flagged for every flagged rep",
                                 param_hint="--reps")
    _check_run_options(stage, reps=bool(reps), flagged=flagged, plans=bool(plans_glob), as_of=bool(as_of))
    if reason and (stage != "plan" or not reps):
        raise click.UsageError("--reason applies to --stage plan with --reps (the reps a plan is drafted for "
                               "anyway), never to every flagged rep")
    from pipnb.runner import WarmPool, local_workers, start_pool  # pipnb.runner (0.4 s): not on the `pipnb --help` path

    pool = WarmPool()
    if scheduler is None:        # the local pool's workers load and warm up while the batch is prepared
        workers = local_workers(jobs_n)
        if stage == "scan":
            workers = 1
        elif reps and stage in ("diagnose", "plan"):      # one job a named rep
            workers = min(workers, len(reps))
        pool = start_pool(workers)
    else:
        _check_scheduler(scheduler)
    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import run_stage

    with pool:                   # shut down when no run took it (nothing to do, or an error before the run)
        run_stage(data_source, stage, reps, bad_rows=bad_rows, flagged=flagged, plans_glob=plans_glob,
                  as_of=_iso(as_of, "--as-of"), reason=reason, reports=reports, params=params, echo=_echo_redacted,
                  jobs_n=jobs_n,
                  force=force, scheduler=scheduler, kernel=kernel, fmt=fmt, pdf=pdf, paper=paper, pool=pool)


def _check_scheduler(address: str) -> None:
    """Stop, before anything is prepared or written, on an address that is no Dask scheduler's (a malformed one, or
    a service that is not a scheduler); one that nothing answers at is left to the run, which says so in its
    summary."""
    from pipnb.cluster import ClusterError, probe_scheduler  # pipnb.cluster (socket, pipnb.job): a Dask run only

    try:
        probe_scheduler(address)
    except ClusterError:
        pass


def _check_run_options(stage: str, *, reps: bool, flagged: bool, plans: bool, as_of: bool) -> None:
    """An option the stage cannot use is an error, not silently ignored."""
    review = stage not in ("scan", "diagnose", "plan")
    if reps and flagged:
        raise click.UsageError("give --reps or --flagged, not both")
    wrong = [name for name, given, applies in (("--reps", reps, stage != "scan"),
                                               ("--flagged", flagged, stage in ("diagnose", "plan")),
                                               ("--plans", plans, review), ("--as-of", as_of, not review))
             if given and not applies]
    if wrong:
        what = "the plans set a review's dates" if review else "it takes reps, not plans"
        raise click.UsageError(f"{' and '.join(wrong)} cannot apply to --stage {stage} "
                               f"({'the scan covers the whole team' if stage == 'scan' else what})")


@main.command()
@click.option("--reports", default="reports", show_default=True, callback=_existing_folder)
@click.option("--params", default="params", show_default=True, callback=_absolute)
def index(reports, params):
    """Rebuild reports/index.html from the reports on disk."""
    from pipnb.batch import write_index  # pipnb.batch (pandas: 0.35 s): not on the `pipnb --help` path

    echo(f"index: {write_index(Path(reports), Path(params))}")


@main.command("pdf")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--paper", type=click.Choice(["a4", "letter"]), default="a4", show_default=True)
@click.option("--force", is_flag=True, help="Print again even when the PDF is newer than its report.")
def pdf_cmd(paths, paper, force):
    """Print HTML reports to PDFs beside them (A4 or Letter, page numbers and the confidentiality line in every
    footer, a sign-off block on plans and reviews), with headless Chromium."""
    for path in print_pdfs(paths, paper=paper, force=force):
        echo(f"pdf: {path}")


@main.command()
@click.option("--reports", default="reports", show_default=True, callback=_absolute)
@click.option("--params", default="params", show_default=True, callback=_absolute)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--today", default=None, help="Judge overdue reviews as of this day (default: today).")
@click.option("--data-date", default="", help="The data's last day (default: the latest the reports recorded).")
def status(reports, params, fmt, today, data_date):
    """Who is on a plan and how they are doing (what reports/index.html shows), from the reports on disk."""
    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import status_text

    stamp = _date(today, "--today")
    echo(status_text(reports, params, today=stamp.date() if stamp is not None else None,
                     data_date=_iso(data_date, "--data-date"), fmt=fmt))


@main.command()
@click.option("--out", default="data/demo", show_default=True, callback=_absolute,
              help="Where the demo data lives (written there when missing).")
@click.option("--data", "data_source", default=None, metavar="SRC",
              help="Run the demo lifecycle on this source instead (it must hold the demo team, e.g. the demo "
                   "tables copied into a database).")
@batch_options
@jobs_option
def demo(out, data_source, reports, params, force, kernel, jobs_n):
    """The whole lifecycle on the built-in demo team; prints where the index report is."""
    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import demo as run_demo

    run_demo(out, data_source, reports=reports, params=params, echo=_echo_redacted, jobs_n=jobs_n, force=force,
             kernel=kernel)


# -- data quality -------------------------------------------------------------------------------
@main.command()
@data_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="table: the report; csv: every listed row (table, file, row, column, value, action, reason); "
                   "json: the report for scripts.")
def check(data_source: str, bad_rows: str | None, fmt: str) -> None:
    """Report the data's quality: rows read and kept per file; rows set aside, values blanked, rows
    filtered and duplicates resolved, by reason; and the facts worth knowing (activities before the rep's
    hire or before their deal, open deals without a touch, deals without an owner), with their first rows.

    Invalid rows are set aside and listed (--bad-rows skip) unless --bad-rows stop is given.
    """
    # pipnb.quality (pandas: 0.35 s): not on the `pipnb --help` path
    from pipnb.quality import run_check

    run_check(data_source, bad_rows=bad_rows, fmt=fmt, echo=echo)


# -- setting up and exporting by hand ------------------------------------------------------------
@main.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--notebooks", is_flag=True, help="Also copy the lifecycle notebooks to FOLDER/notebooks to customise "
              "(they then take precedence over pipnb's own).")
def init(folder: str, notebooks: bool) -> None:
    """Create a working folder: params/policy.yaml (the settings, to edit), params/plans/, reports/.

    Nothing that exists is overwritten. Every pipnb command then works from FOLDER.
    """
    # pipnb.commands loads pandas and the statistics (~1 s): only the command that runs pays it
    from pipnb.commands import init_folder

    init_folder(folder, notebooks=notebooks, echo=echo)


@main.command()
@click.argument("notebook", type=click.Path(dir_okay=False), callback=_nonempty)
@click.option("--out", default=None, metavar="HTML", callback=_nonempty,
              help="Where to write the report [default: NOTEBOOK with .html]; an existing file is never replaced.")
def render(notebook: str, out: str | None) -> None:
    """Export one executed notebook (e.g. papermill's output) as a pipnb HTML report."""
    echo(f"written: {export(notebook, out)}")


main.add_command(kernel_commands, name="kernel")      # python -m pipnb.kernel's commands, as pipnb kernel
main.add_command(verify_command(echo, _absolute))     # pipnb verify: pipnb.cli_verify


if __name__ == "__main__":  # pragma: no cover
    main()
