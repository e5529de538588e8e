"""``pipnb plan event REP --kind K --date D --note TEXT --by NAME``: the command line of a signed plan event.

Kept beside :mod:`pipnb.cli` (which adds it to ``pipnb plan`` with its own ``echo`` and path option callback):
:func:`pipnb.commands.plan_event_line` checks the dates and signs the event (:meth:`pipnb.plan.Plan.record_event`).
"""

from __future__ import annotations

from collections.abc import Callable

import click

KINDS = ("territory", "leave", "segment", "other")      # pipnb.lifecycle.EVENT_KINDS, without loading pydantic


def event_command(echo: Callable[[str], None], absolute: Callable) -> click.Command:
    """The ``event`` subcommand of ``pipnb plan``, printing through ``echo``; ``absolute`` resolves ``--params``."""

    @click.command("event")
    @click.argument("rep_id", metavar="REP")
    @click.option("--kind", required=True, type=click.Choice(KINDS),
                  help="territory (accounts), leave, segment (or quota), or other (with --metrics).")
    @click.option("--date", "on", required=True, metavar="YYYY-MM-DD",
                  help="The day it took effect: from the diagnosis start to the plan's last day.")
    @click.option("--note", required=True, metavar="TEXT", help="What changed (every review states it).")
    @click.option("--by", "by", required=True, metavar="NAME", help="Who signs the event (kept in the history).")
    @click.option("--until", default=None, metavar="YYYY-MM-DD", help="leave: its last day (or --weeks).")
    @click.option("--weeks", type=click.IntRange(1, 52), default=None, help="leave: its length in weeks.")
    @click.option("--metrics", default="", metavar="A,B", help="other: the plan metrics it affects.")
    @click.option("--params", default=None, callback=absolute, help="Folder holding plans/ [default: params].")
    @click.pass_context
    def plan_event(ctx, rep_id, params, **event):
        """Sign a plan event: a change the rep does not control. Reviews rebaseline the metrics it affects from its
        date (territory: the volume metrics; segment: those and the win rate; other: --metrics), and set a leave's
        weeks aside (--until D or --weeks N). The plan's status is unchanged; see docs/guide.md, Plan events."""
        from pipnb.commands import plan_event_line  # pandas and the statistics (~1 s): only this command pays it

        echo(plan_event_line(params or (ctx.obj or {}).get("params") or "params", rep_id, **event))

    return plan_event
