"""Warnings benchmark (issue 25): how often a warning that matters fires on a healthy world (wrong when nothing is
wrong) and on a world broken like an export breaks (right when something is), on ``tests/simworld.py`` worlds.

Run (2 cores, about 2 minutes at the default)::

    nice .venv/bin/python benchmarks/bench_warnings.py [--worlds 40]

Per world (seed), scan at week 40 over 12 weeks:

W1. healthy world: any warning (target 0);
W2. a sync whose created dates stop at the window start (every later creation dated the day before): "nobody
    created" fires (target 100%); opportunities created is judged (in line, below, shortfall ...) for any rep
    (target 0); the diagnosis of rep 0 gives it a finite share of the win gap, "0%" (target 0);
W3. a sync that stopped logging emails at the window start: "emails per week is 0 for every rep" fires (target
    100%), and no other warning does;
W4. a rep truly low on opportunities (60% of peers) put on a plan, and a sync that loses every created date from
    the plan start (blank): the final review's creation target reads "not met" (target 0) / "no data" (100%).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import simworld as sw  # noqa: E402  (tests/ on the path first)

import pipnb as pn  # noqa: E402
from pipnb.alerts import ALL_ZERO, NO_CREATED, card_warnings  # noqa: E402


def broken_creation(world: sw.World, first) -> pn.SalesData:
    opps = world.data.opportunities.copy()
    opps.loc[opps["created_at"] >= first, "created_at"] = first - np.timedelta64(1, "D")
    return dataclasses.replace(world.data, opportunities=opps)


def broken_emails(world: sw.World, first) -> pn.SalesData:
    acts = world.data.activities
    stopped = (acts["kind"] == "email") & (acts["occurred_at"] >= first)
    return dataclasses.replace(world.data, activities=acts[~stopped])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2500)
    args = parser.parse_args()
    tally = {k: [0, 0] for k in ("W1 healthy: any warning", "W2 no-created warning fires",
                                 "W2 opps created judged for a rep", "W2 diagnosis gives creation a finite share",
                                 "W3 all-zero emails warning fires", "W3 another warning fires",
                                 "W4 creation target 'not met'", "W4 creation target 'no data'")}

    def count(key: str, hit: bool) -> None:
        tally[key][0] += int(hit)
        tally[key][1] += 1

    for seed in range(args.seed, args.seed + args.worlds):
        world = sw.generate(seed)
        as_of = world.week_end(sw.DIAGNOSIS_WEEK)
        first = world.week_start(sw.DIAGNOSIS_FIRST_WEEK)
        card = pn.scorecard(world.data, as_of=as_of, panel=world.panel)
        count("W1 healthy: any warning", bool(card_warnings(card, world.data)))
        data = broken_creation(world, first)
        card = pn.scorecard(data, as_of=as_of)
        kinds = [w.kind for w in card_warnings(card, data)]
        count("W2 no-created warning fires", NO_CREATED in kinds)
        created = card[card["metric"] == "opps_created_per_week"]
        count("W2 opps created judged for a rep", bool((created["flag"] != "unavailable").any()))
        dx = pn.diagnose(data, world.rep_id(0), as_of=as_of)
        share = dx.drivers.set_index("metric").loc["opps_created_per_week", "explains"]
        count("W2 diagnosis gives creation a finite share", bool(np.isfinite(share)))
        data = broken_emails(world, first)
        card = pn.scorecard(data, as_of=as_of)
        found = [(w.kind, w.metric) for w in card_warnings(card, data)]
        count("W3 all-zero emails warning fires", (ALL_ZERO, "emails_per_week") in found)
        count("W3 another warning fires", any(f != (ALL_ZERO, "emails_per_week") for f in found))
        world = sw.generate(seed, changes=sw.low_rep("opps"))
        dx = pn.diagnose(world.data, world.rep_id(0), as_of=as_of, panel=world.panel)
        plan = pn.draft_plan(dx, start=world.week_start(sw.PLAN_START_WEEK).date(), reason="benchmark")
        opps = world.data.opportunities.copy()
        opps.loc[opps["created_at"] >= world.week_start(sw.PLAN_START_WEEK), "created_at"] = pd.NaT
        with warnings.catch_warnings():          # the sync changed rows: the review says so, as it should
            warnings.simplefilter("ignore", UserWarning)
            table = pn.review(dataclasses.replace(world.data, opportunities=opps), plan, "final").table
        status = table.set_index("metric")["status"].get("opps_created_per_week")
        count("W4 creation target 'not met'", status == "not met")
        count("W4 creation target 'no data'", status == "no data")
    for key, (k, n) in tally.items():
        low, high = sw.wilson(k, n)
        print(f"{key:<48} {k:>3}/{n:<3} = {k / n:6.1%}  95% CI [{low:.1%}, {high:.1%}]")


if __name__ == "__main__":
    main()
