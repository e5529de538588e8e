"""The ``pipnb`` command line: parse, validate, delegate.

Heavy libraries are imported inside the commands, so ``pipnb --help`` starts quickly. Every
:class:`~pipnb.errors.PipnbError` ends as one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import sys

import click

DATA_HELP = ("A folder (pipnb tables, or a Salesforce / HubSpot export), a source YAML, or a database URL.")


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        from pipnb.errors import PipnbError

        try:
            return super().invoke(ctx)
        except PipnbError as err:
            click.echo(f"pipnb: error: {err}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("pipnb: interrupted; finished files are kept, rerun to complete the rest", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipnb")
def main() -> None:
    """Data-driven performance improvement plans for sales reps."""


def data_option(f):
    return click.option("--data", "data_source", required=True, metavar="SRC", help=DATA_HELP)(f)


def _load(source: str):
    from pipnb.sources import load

    return load(source)


@main.command("demo-data")
@click.option("--out", default="data/demo", show_default=True, help="Folder to write the tables to.")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same data).")
@click.option("--reps", "n_reps", default=24, show_default=True, help="Number of reps (at least 24).")
@click.option("--weeks", default=56, show_default=True, help="Number of weeks (at least 52).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--layout", type=click.Choice(["canonical", "salesforce", "hubspot"]), default="canonical",
              show_default=True, help="Write pipnb's tables, or the same team as a vendor export (CSV).")
def demo_data_cmd(out: str, seed: int, n_reps: int, weeks: int, fmt: str, layout: str) -> None:
    """Write the built-in demo team (deterministic for a seed)."""
    from pipnb.demo import demo_data

    data = demo_data(seed=seed, reps=n_reps, weeks=weeks)
    if layout == "canonical":
        folder = data.write(out, format=fmt)
    else:
        from pipnb.sources.layouts import write_layout

        folder = write_layout(data, out, layout)
    counts = ", ".join(f"{len(getattr(data, t))} {t}" for t in ("reps", "opportunities", "activities"))
    click.echo(f"wrote {counts} to {folder}")


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
def scan(data_source: str, as_of: str | None, weeks: int | None, since: str | None, peer_by: str | None,
         win_rate_basis: str | None, policy_path: str | None, fmt: str) -> None:
    """Show which reps fall short of their peers, on which metrics, and why."""
    from pipnb.peers import scorecard
    from pipnb.scan import format_scan, scan_records

    policy = _policy(policy_path)
    data = _load(data_source)
    card = scorecard(data, as_of=_date(as_of, "--as-of"), weeks=weeks, since=_date(since, "--since"),
                     peer_by=peer_by, win_rate_basis=win_rate_basis, policy=policy)
    if fmt == "table":
        click.echo(format_scan(card, data))
    else:
        records = scan_records(card)
        click.echo(records.to_csv(index=False) if fmt == "csv" else records.to_json(orient="records",
                                                                                    indent=1))


def _policy(path: str | None):
    """The settings: the given YAML, else ./params/policy.yaml when it exists, else pipnb's own."""
    from pathlib import Path

    from pipnb.policy import Policy

    if path is not None:
        return Policy.from_yaml(Path(path).resolve())
    local = Path("params") / "policy.yaml"
    return Policy.from_yaml(local.resolve()) if local.is_file() else Policy.default()


# -- the lifecycle ------------------------------------------------------------------------------
def batch_options(f):
    f = click.option("--reports", default="reports", show_default=True, help="Folder for the reports.")(f)
    f = click.option("--params", default="params", show_default=True,
                     help="Folder holding policy.yaml and plans/.")(f)
    f = click.option("--force", is_flag=True, help="Re-run reports whose inputs are unchanged.")(f)
    f = click.option("--kernel", default=None, help="Jupyter kernel for the notebooks (default: the fast "
                     "pipnb kernel when available, else python3).")(f)
    return f


def jobs_option(f):
    """``--jobs``, for the commands that run many notebooks (``run``, ``demo``)."""
    return click.option("--jobs", "jobs_n", type=click.IntRange(1, 64), default=None,
                        help="Parallel notebooks (default: the number of cores).")(f)


def _execute(batch, jobs, *, jobs_n=None, force=False, scheduler=None, kernel=None):
    """Run jobs, rebuild the index, print the summary; a failed job makes the exit code non-zero."""
    from pipnb.batch import write_index
    from pipnb.runner import RunSummary, run_jobs

    if kernel is None:
        from pipnb.kernel import KERNEL_NAME, available

        fast, why = available()
        kernel = KERNEL_NAME if fast else None
        if not fast:
            click.echo(f"pipnb: using the normal kernel: {why}", err=True)
    summary = RunSummary.from_results(run_jobs(jobs, jobs_n=jobs_n, force=force, scheduler=scheduler,
                                               kernel_name=kernel))
    index = write_index(batch.reports, batch.params, summary.results)
    click.echo(str(summary))
    click.echo(f"index: {index}")
    summary.raise_for_failures()
    return summary


@main.command()
@data_option
@click.option("--rep", "rep_id", required=True, help="Rep id to diagnose.")
@click.option("--as-of", default="", help="Last day of the diagnosis window (default: last day with data).")
@batch_options
def diagnose(data_source, rep_id, as_of, reports, params, force, kernel):
    """Diagnose one rep and write reports/<rep>/diagnose.html."""
    from pipnb.batch import diagnose_jobs, prepare

    batch = prepare(data_source, reports=reports, params=params)
    _execute(batch, diagnose_jobs(batch, [rep_id], as_of=_iso(as_of, "--as-of")), jobs_n=1, force=force,
             kernel=kernel)


@main.command()
@data_option
@click.option("--rep", "rep_id", required=True, help="Rep id to draft a plan for.")
@click.option("--as-of", default="", help="Last day of the diagnosis window (default: last day with data).")
@click.option("--start", default="", help="First day of the plan (default: the day after the diagnosis).")
@batch_options
def plan(data_source, rep_id, as_of, start, reports, params, force, kernel):
    """Draft params/plans/<rep>.yaml (kept if it exists) and write reports/<rep>/plan.html."""
    from pipnb.batch import draft_plans, plan_jobs, prepare

    batch = prepare(data_source, reports=reports, params=params)
    paths = draft_plans(batch, [rep_id], as_of=_iso(as_of, "--as-of"), start=_iso(start, "--start"),
                        force=force)
    click.echo(f"plan: {paths[0]}")
    _execute(batch, plan_jobs(batch, paths), jobs_n=1, force=force, kernel=kernel)


@main.command()
@data_option
@click.option("--plan", "plan_file", required=True, help="The plan YAML (params/plans/<rep>.yaml).")
@click.option("--checkpoint", required=True, metavar="N|final",
              help="Which review: a checkpoint number (1 up to the plan's count), checkpoint-N, or final.")
@click.option("--format", "fmt", type=click.Choice(["report", "json"]), default="report", show_default=True,
              help="json prints the review for scripts instead of writing a report.")
@batch_options
def review(data_source, plan_file, checkpoint, fmt, reports, params, force, kernel):
    """Review a plan at one of its checkpoints or at the final review."""
    from pathlib import Path

    from pipnb.plan import Plan
    from pipnb.stages import parse_stage

    plan_obj = Plan.from_yaml(plan_file)
    stage = parse_stage(checkpoint, len(plan_obj.checkpoints), file=plan_file)
    if fmt == "json":
        import json

        from pipnb.policy import Policy
        from pipnb.reviews import review as run_review
        from pipnb.sources import load

        policy_path = Path(params) / "policy.yaml"
        policy = Policy.from_yaml(policy_path) if policy_path.is_file() else None
        result = run_review(load(data_source), plan_obj, stage, policy=policy)
        click.echo(json.dumps(result.to_dict(), indent=1, default=str))
        return
    from pipnb.batch import prepare, review_jobs

    batch = prepare(data_source, reports=reports, params=params)
    _execute(batch, review_jobs(batch, [Path(plan_file)], stage), jobs_n=1, force=force, kernel=kernel)


@main.command()
@data_option
@click.option("--stage", required=True, metavar="STAGE",
              help="scan, diagnose, plan, checkpoint-N (N up to the plans' checkpoints) or final.")
@click.option("--reps", "rep_ids", multiple=True, metavar="ID ...", help="Rep ids (space or comma separated).")
@click.option("--flagged", is_flag=True, help="Every rep the team scan flags on the win rate or a driver.")
@click.option("--plans", "plans_glob", default=None, metavar="GLOB", help="Plan YAMLs to review.")
@click.option("--as-of", default="", help="Last day of the diagnosis window (diagnose, plan).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Send the jobs to a Dask cluster.")
@click.argument("more_reps", nargs=-1, metavar="")
@batch_options
@jobs_option
def run(data_source, stage, rep_ids, flagged, plans_glob, as_of, scheduler, more_reps, reports, params,
        force, kernel, jobs_n):
    """Run one stage for many reps in parallel, resumably, and rebuild the index."""
    from pipnb.batch import diagnose_jobs, draft_plans, find_plans, plan_jobs, prepare, review_jobs, scan_job
    from pipnb.stages import stage_name

    stage = stage_name(stage)      # a review stage is checked against each plan by review_jobs
    reps = [r for chunk in (*rep_ids, *more_reps) for r in chunk.split(",") if r]
    if more_reps and not rep_ids:
        raise click.UsageError(f"unexpected argument {more_reps[0]!r} (rep ids go after --reps)")
    batch = prepare(data_source, reports=reports, params=params)
    as_of = _iso(as_of, "--as-of")
    if stage == "scan":
        jobs = [scan_job(batch, as_of=as_of)]
    elif stage in ("diagnose", "plan"):
        if flagged or not reps:
            reps = _flagged(batch, as_of)
        for rep_id in reps:
            batch.data.rep(rep_id)
        jobs = (diagnose_jobs(batch, reps, as_of=as_of) if stage == "diagnose" else
                plan_jobs(batch, draft_plans(batch, reps, as_of=as_of, force=force)))
    else:
        jobs = review_jobs(batch, find_plans(batch, pattern=plans_glob, rep_ids=reps or None), stage)
    _execute(batch, jobs, jobs_n=jobs_n, force=force, scheduler=scheduler, kernel=kernel)


def _flagged(batch, as_of: str) -> list[str]:
    from pipnb.peers import scorecard
    from pipnb.scan import flagged_reps

    card = scorecard(batch.data, as_of=as_of or None, policy=batch.policy, panel=batch.panel)
    return flagged_reps(card, plan_metrics_only=True)


@main.command()
@click.option("--reports", default="reports", show_default=True)
@click.option("--params", default="params", show_default=True)
def index(reports, params):
    """Rebuild reports/index.html from the reports on disk."""
    from pathlib import Path

    from pipnb.batch import write_index

    click.echo(f"index: {write_index(Path(reports), Path(params))}")


@main.command()
@click.option("--out", default="data/demo", show_default=True, help="Where the demo data lives.")
@batch_options
@jobs_option
def demo(out, reports, params, force, kernel, jobs_n):
    """The whole lifecycle on the built-in demo team; prints where the index report is."""
    from pathlib import Path

    from pipnb.batch import demo_jobs, prepare

    if not (Path(out) / "reps.csv").exists():
        from pipnb.demo import demo_data

        demo_data().write(out)
        click.echo(f"demo data written to {out}")
    batch = prepare(out, reports=reports, params=params)
    jobs = demo_jobs(batch, force=force)
    _execute(batch, jobs, jobs_n=jobs_n, force=force, kernel=kernel)
    click.echo(f"\nOpen the reports: {(batch.reports / 'index.html')}")


def _iso(value: str | None, option: str) -> str:
    stamp = _date(value or None, option)
    return f"{stamp:%Y-%m-%d}" if stamp is not None else ""


def _date(value: str | None, option: str):
    if value is None:
        return None
    import pandas as pd

    try:
        return pd.Timestamp(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date (use YYYY-MM-DD)", param_hint=option) from None


if __name__ == "__main__":  # pragma: no cover
    main()
