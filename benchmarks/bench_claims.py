"""Every sentence true (issue 22): the claims check over hundreds of simulated plans and the demo's reports.

Simulated teams come from ``tests/simworld.py`` (an independent generator, never the demo's) in four kinds of world:
tidy teams with one rep low on a driver, all-equal teams, low-volume teams (0.3 opportunities a week) and exports
without meetings. In each, every rep is diagnosed, four plans are drafted (with a recorded reason when the diagnosis
finds no shortfall) and reviewed at the three checkpoints and the final review; every claim is checked against its
record (``tests/claims.py``). The demo's rendered HTML reports (``reports/`` after ``make demo``) are checked for
literal Markdown. Prints each kind of claim: checked, false, and the false rate with its Wilson 95% interval.

Run: ``.venv/bin/python benchmarks/bench_claims.py [--teams 52] [--plans-per-team 4]`` (about 20 minutes on 2 cores;
``--quick``: 4 teams).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import claims  # noqa: E402
import simworld as sw  # noqa: E402

DRIVERS = ("emails", "opps", "first_meetings", "followup", "touches")


def worlds(n: int):
    """``n`` teams, cycling through the four kinds of world."""
    for i in range(n):
        seed, kind = 1000 + i, i % 4
        if kind == 0:
            yield "one rep low", sw.generate(seed, sw.WorldParams(), sw.low_rep(DRIVERS[i % len(DRIVERS)], factor=0.6))
        elif kind == 1:
            yield "all equal", sw.generate(seed, sw.ALL_EQUAL)
        elif kind == 2:
            yield "0.3 opps/week", sw.generate(seed, replace(sw.WorldParams(), opps_per_week=0.3),
                                               sw.low_rep("emails", factor=0.6))
        else:
            world = sw.generate(seed, sw.WorldParams(), sw.low_rep("touches", factor=0.6))
            yield "no meetings", _without_meetings(world)


def _without_meetings(world):
    """The same team exported without its meetings (a source with emails and calls only)."""
    import pipnb as pn

    data = world.data
    acts = data.activities[data.activities["kind"] != "meeting"]
    stripped = pn.SalesData(reps=data.reps, opportunities=data.opportunities, activities=acts,
                            source="simworld without meetings")
    return replace(world, data=stripped)


def demo_reports() -> list[claims.Claim]:
    found = []
    for html in sorted((ROOT / "reports").glob("**/*.html")):
        found += claims.check_html(html.read_text(encoding="utf-8"), str(html.relative_to(ROOT)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=52)
    parser.add_argument("--plans-per-team", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="4 teams")
    args = parser.parse_args()
    teams = 4 if args.quick else args.teams
    print(f"machine: {platform.machine()}, {platform.python_version()}; teams: {teams}, "
          f"plans per team: {args.plans_per_team}")
    started = time.perf_counter()
    everything, plans = [], 0
    for kind, world in worlds(teams):
        found = claims.check_team(world, reps=args.plans_per_team)
        plans += sum(1 for c in found if c.kind == "plan reason")          # one per plan drafted and reviewed
        bad = claims.false_claims(found)
        print(f"  {kind:<14} seed {world.seed}: {len(found):5d} claims, {len(bad)} false", flush=True)
        for c in bad[:3]:
            print(f"    FALSE {c.kind} ({c.where}): {c.why}")
        everything += found
    html = demo_reports()
    everything += html
    print(f"\n{plans} simulated plans reviewed at 4 looks; {len(html)} demo report pages "
          f"({'none: run make demo first' if not html else 'from reports/'}); "
          f"{time.perf_counter() - started:.0f} s\n")
    table = claims.summary(everything)
    print(f"{'claim':<18}{'checked':>9}{'false':>7}   false rate [95% Wilson]")
    for row in table.itertuples():
        lo, hi = sw.wilson(row.false, row.checked)
        print(f"{row.kind:<18}{row.checked:>9}{row.false:>7}   {row.false / row.checked:6.2%} "
              f"[{lo:.2%}–{hi:.2%}]")
    total, false = int(table["checked"].sum()), int(table["false"].sum())
    lo, hi = sw.wilson(false, total)
    print(f"{'all':<18}{total:>9}{false:>7}   {false / total:6.2%} [{lo:.2%}–{hi:.2%}]   target: 0 false claims")


if __name__ == "__main__":
    main()
