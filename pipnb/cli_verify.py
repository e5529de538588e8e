"""``pipnb verify [REP]``: the command line of :func:`pipnb.verify.verify`.

Kept beside :mod:`pipnb.cli` (which adds it to the ``pipnb`` group with its own ``echo`` and path option callback):
one line per break naming the rep, the file and what broke, an ``ok`` line for each rep without one; exit 2 on
any break, 0 when everything checks.
"""

from __future__ import annotations

from collections.abc import Callable

import click


def verify_command(echo: Callable[[str], None], absolute: Callable) -> click.Command:
    """The ``verify`` command, printing through ``echo``; ``absolute`` resolves ``--params`` and ``--reports``."""

    @click.command("verify")
    @click.argument("rep_id", metavar="[REP]", required=False)
    @click.option("--reports", default="reports", show_default=True, callback=absolute,
                  help="Folder holding the reports and each rep's audit log.")
    @click.option("--params", default="params", show_default=True, callback=absolute,
                  help="Folder holding plans/.")
    @click.pass_context
    def verify(ctx, rep_id, reports, params):
        """Check the plans, their signed histories and the frozen reports: one line per break (rep, file, what
        broke), ok lines otherwise; exit 2 on any break. With PIPNB_SIGNING_KEY set, keyed signatures are checked
        (without it they cannot be)."""
        from pipnb.verify import verify as check  # pipnb.plan (pydantic, yaml: 0.4 s): only this command pays it

        found = check(params, reports, rep_id)
        for finding in found:
            echo(str(finding))
        if not found:
            echo("no plans and no reports to verify")
        if any(f.broken for f in found):
            ctx.exit(2)

    return verify
