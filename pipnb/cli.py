"""The ``pipnb`` command line: parse, validate, delegate.

Heavy libraries are imported inside the commands, so ``pipnb --help`` starts quickly. Every
:class:`~pipnb.errors.PipnbError` ends as one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import sys

import click

DATA_HELP = "A folder of reps/opportunities/activities tables (.csv or .parquet) or a source YAML."


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
def demo_data_cmd(out: str, seed: int, n_reps: int, weeks: int, fmt: str) -> None:
    """Write the built-in demo team (deterministic for a seed)."""
    from pipnb.demo import demo_data

    data = demo_data(seed=seed, reps=n_reps, weeks=weeks)
    folder = data.write(out, format=fmt)
    counts = ", ".join(f"{len(getattr(data, t))} {t}" for t in ("reps", "opportunities", "activities"))
    click.echo(f"wrote {counts} to {folder}")


@main.command()
@data_option
@click.option("--as-of", default=None, help="Last day of the window (default: last day with data).")
@click.option("--weeks", default=12, show_default=True, help="Window length in weeks.")
@click.option("--since", default=None, help="Start the window at this date instead of --weeks.")
@click.option("--peer-by", type=click.Choice(["team", "segment", "all"]), default="team", show_default=True)
@click.option("--win-rate-basis", type=click.Choice(["closed", "all"]), default="closed", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
def scan(data_source: str, as_of: str | None, weeks: int, since: str | None, peer_by: str,
         win_rate_basis: str, fmt: str) -> None:
    """Show which reps fall short of their peers, on which metrics, and why."""
    from pipnb.peers import scorecard
    from pipnb.scan import format_scan, scan_records

    data = _load(data_source)
    card = scorecard(data, as_of=_date(as_of, "--as-of"), weeks=weeks, since=_date(since, "--since"),
                     peer_by=peer_by, win_rate_basis=win_rate_basis)
    if fmt == "table":
        click.echo(format_scan(card, data))
    else:
        records = scan_records(card)
        click.echo(records.to_csv(index=False) if fmt == "csv" else records.to_json(orient="records",
                                                                                    indent=1))


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
