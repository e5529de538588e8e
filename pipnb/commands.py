"""The commands that set pipnb up and export by hand: ``init``, ``kernel`` and ``render`` (see :mod:`pipnb.cli`)."""

from __future__ import annotations

import click

from pipnb.report import render as export


@click.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--notebooks", is_flag=True, help="Also copy the lifecycle notebooks to FOLDER/notebooks to customise "
              "(they then take precedence over pipnb's own).")
def init(folder: str, notebooks: bool) -> None:
    """Create a working folder: params/policy.yaml (the settings, to edit), params/plans/, reports/.

    Nothing that exists is overwritten. Every pipnb command then works from FOLDER.
    """
    from pipnb.workdir import init as make

    done = make(folder, notebooks=notebooks)
    for path in done.created:
        click.echo(f"created {path}{'/' if path.is_dir() else ''}")
    for path in done.kept:
        click.echo(f"kept {path} (exists)")
    click.echo(f"working folder: {done.folder}; next: pipnb demo-data, then pipnb demo (or pipnb scan --data SRC)")


@click.command()
@click.argument("notebook", type=click.Path(dir_okay=False))
@click.option("--out", default=None, metavar="HTML", help="Where to write the report [default: NOTEBOOK with "
              ".html]; an existing file is never replaced.")
def render(notebook: str, out: str | None) -> None:
    """Export one executed notebook (e.g. papermill's output) as a pipnb HTML report."""
    click.echo(f"written: {export(notebook, out)}")


def register(group: click.Group) -> None:
    """Add these commands, and ``pipnb kernel`` (the commands of ``python -m pipnb.kernel``), to ``group``."""
    from pipnb.kernel.__main__ import main as kernel

    group.add_command(init)
    group.add_command(render)
    group.add_command(kernel, name="kernel")
