"""A territory shrink with and without its signed plan event (issue 23), on ``tests/simworld.py`` worlds.

Rep R01's territory shrinks: its opportunities fall to ×0.6 from the first week of the diagnosis window on, its
behaviour unchanged. The rep is put on a plan (forced, as in the fairness benchmark), the plan activated and
reviewed at the final review, once as drafted and once with a territory event dated the first day of the
diagnosis window. Two focus choices: the diagnosis's own improvement areas, and the volume metrics the shrink
makes look low (opportunities created and first meetings: what a manager would put the plan on).

Run: nice -n 10 .venv/bin/python benchmarks/bench_plan_events.py [--seeds 60] [--first 1000]
Target (issue 23): consequences ≤ 2% with the event recorded; every rate printed with its Wilson 95% interval.

Measured (seeds 1000–1059 both ways; 1060–1119 with the event only, ``--event-only``):

* consequences, diagnosis focus: without the event 3/60 = 5.0% [1.7–13.7]; with it 0/120 [0.0–3.1]
* consequences, volume focus: without 5/60 = 8.3% [3.6–18.1]; with 0/120 [0.0–3.1] (both focuses: 0/240 [0.0–1.6])
* "worse" on a focus metric, volume focus: without 22/60 = 36.7% [25.6–49.3]; with 5/120 = 4.2% [1.8–9.4]
* complete, diagnosis focus: without 16/60 = 26.7% [17.1–39.0]; with 48/120 = 40.0% [31.7–48.9]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pipnb as pn  # noqa: E402
from tests import simworld as sw  # noqa: E402

DIAG_START = sw.DIAGNOSIS_WEEK - 11
VOLUME = ["opps_created_per_week", "first_meetings_per_week"]


def one_seed(seed: int, events: tuple[bool, ...] = (False, True)) -> dict[str, tuple[str | None, bool]]:
    world = sw.generate(seed, changes=[sw.Change(0, "opps", 0.6, DIAG_START)], focal=0)
    run = sw.run_plan(world, "R01", every_look=False)
    drafted = run.plan.transition("activate", by="Sim Manager", on=run.plan.start)
    volume = drafted.model_copy(update={"targets": [t.model_copy(update={"focus": t.metric in VOLUME})
                                                    for t in drafted.targets]})
    volume = volume.transition("activate", by="Sim Manager", note="focus on volume", on=run.plan.start)
    out = {}
    for name, plan in (("diagnosis focus", drafted), ("volume focus", volume)):
        for event in events:
            if event:
                plan = plan.record_event("territory", on=world.week_start(DIAG_START).date(), by="Sim Manager",
                                         note="a third of the accounts moved to a new hire")
            rv = pn.review(world.data, plan, "final", panel=world.panel)
            worse = rv.verdicts["verdict"].eq("worse").any()
            out[f"{name}, {'with' if event else 'without'} event"] = (rv.recommendation, bool(worse))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--event-only", action="store_true", help="only the reviews with the event recorded")
    args = parser.parse_args()
    tally, start = sw.Tally(), time.time()
    for seed in range(args.first, args.first + args.seeds):
        for key, (recommendation, worse) in one_seed(seed, (True,) if args.event_only else (False, True)).items():
            if recommendation == "consequences":
                print(f"seed {seed}: {key}: consequences", file=sys.stderr, flush=True)
            tally.add(f"{key}: consequences", recommendation == "consequences")
            tally.add(f"{key}: complete", recommendation == "complete")
            tally.add(f"{key}: 'worse' on a focus metric", worse)
        print(f"seed {seed} done ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    for key in sorted(tally.counts):
        k, n = tally.counts[key]
        low, high = tally.interval(key)
        print(f"{key:<60} {k:>3}/{n:<3} {k / n:6.1%}  [{low:.1%}–{high:.1%}]")


if __name__ == "__main__":
    main()
