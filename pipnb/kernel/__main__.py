"""``python -m pipnb.kernel``: install the ``pipnb-fast`` kernelspec and manage its fork server.

::

    python -m pipnb.kernel install [--sys-prefix | --user | --prefix P]   # also: pipnb kernel install
    python -m pipnb.kernel check             # can the runner use the fast kernel here?
    python -m pipnb.kernel status            # the fork server of this environment
    python -m pipnb.kernel stop [--force]
    python -m pipnb.kernel bench [--runs 3]  # fast vs. python3 timings
"""

from __future__ import annotations

import json
import sys

import click

from pipnb.errors import PipnbError
from pipnb.kernel import KERNEL_NAME, available, server_status, stop_server
from pipnb.kernel import install as install_spec
from pipnb.kernel.bench import measure, warm_up
from pipnb.report import install_template


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Fast, isolated IPython kernels forked from a server with the libraries imported."""


@main.command()
@click.option("--sys-prefix", "sys_prefix", is_flag=True, help="Install into this environment (default).")
@click.option("--user", is_flag=True, help="Install for the current user.")
@click.option("--prefix", type=click.Path(file_okay=False), help="Install under PREFIX/share/jupyter.")
def install(sys_prefix: bool, user: bool, prefix: str | None) -> None:
    """Install the 'pipnb-fast' kernelspec (display name 'Python 3 (pipnb fast)') and register the
    'pipnb_report' template with nbconvert (jupyter nbconvert --template pipnb_report)."""
    if sum([sys_prefix, user, prefix is not None]) > 1:
        raise click.UsageError("choose one of --sys-prefix, --user and --prefix")
    dest = install_spec(user=user, prefix=None if user else (prefix or sys.prefix))
    click.echo(f"Installed kernelspec pipnb-fast in {dest}")
    template = install_template(user=user, prefix=None if user else (prefix or sys.prefix))
    click.echo(f"Installed nbconvert template pipnb_report in {template}")


@main.command()
def check() -> None:
    """Say whether the fast kernel can be used here (exit status 1 if not)."""
    ok, reason = available()
    click.echo(reason)
    sys.exit(0 if ok else 1)


@main.command()
def status() -> None:
    """Show the fork server this environment's kernels use."""
    info = server_status()
    if info is None:
        click.echo("no fork server is running")
        return
    click.echo(json.dumps(info, indent=1))


@main.command()
@click.option("--force", is_flag=True, help="Also terminate running kernels.")
def stop(force: bool) -> None:
    """Stop the fork server (it also stops by itself after PIPNB_FORKSERVER_IDLE seconds)."""
    stopped = stop_server(force=force)
    click.echo("fork server stopped" if stopped else "no fork server is running")


@main.command()
@click.option("--runs", default=3, show_default=True, help="Measurements per median.")
@click.option("--baseline", default="python3", show_default=True, help="Kernel to compare with.")
def bench(runs: int, baseline: str) -> None:
    """Time kernel start-up and a papermill run (pandas/seaborn/statsmodels + Poisson GLM)."""
    click.echo(f"fork server start: {warm_up():.2f} s (0 = already running)")
    click.echo(f"{'kernel':<12} {'kernel_info':>12} {'ready':>8} {'papermill':>10} {'cells':>8}"
               f"   (medians of {runs}, s)")
    for name in (KERNEL_NAME, baseline):
        t = measure(name, runs=runs)
        click.echo(f"{t.kernel_name:<12} {t.kernel_info:>12.3f} {t.ready:>8.3f} {t.papermill:>10.3f}"
                   f" {t.cells:>8.3f}")


def run() -> None:
    """Run the command line, printing a :class:`PipnbError` as one line (exit status 2)."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PipnbError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    run()
