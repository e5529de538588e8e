"""The one-outcome warning (issue 25): how often it fires on skips with no bias in them, and whether it names the
rep whose lost deals a skip takes, on worlds from the independent generator (``tests/simworld.py``).

Run (2 cores, about 10 minutes at the default)::

    nice .venv/bin/python benchmarks/bench_skip_warning.py [--worlds 200]

Each world: 10 reps over 16 weeks (about 4 won and 26 lost deals a rep), written as a folder of CSVs and loaded
with ``bad_rows="skip"``:

1. random: 10% of deals, whatever their outcome, lose their created date. The rate of reps warned, and a check
   that the warning names exactly the reps whose kept closed deals have one outcome while deals of the other
   were set aside (counted from the frames, not through pipnb): any other rep named is a false statement;
2. all lost: every lost deal of one rep (with won and lost deals) loses its close date (the issue's export):
   the rate at which the warning names that rep, and that rep alone;
3. 75% lost: three lost deals in four of that rep lose their close date: the win rate is inflated but both
   outcomes are left; the warning's rule does not cover it (the rate shows the limit).

Every line prints the count, the rate and its Wilson 95% interval.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import simworld as sw  # noqa: E402

from pipnb.sources import load  # noqa: E402


def warned(folder: Path, reps: pd.DataFrame, opps: pd.DataFrame) -> set[str]:
    folder.mkdir()
    reps.to_csv(folder / "reps.csv", index=False)
    opps.to_csv(folder / "opportunities.csv", index=False)
    return {rep for warning in load(folder, bad_rows="skip").quality.warnings for rep in warning.reps}


def one_world(seed: int, base: Path) -> dict[str, int]:
    world = sw.generate(1000 + seed, sw.WorldParams(n_weeks=16))
    rng = np.random.default_rng(seed)
    reps, opps = world.data.reps, world.data.opportunities.copy()
    for column in ("created_at", "closed_at"):
        opps[column] = opps[column].dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
    bad = rng.random(len(opps)) < 0.10
    named = warned(base / "random", reps, opps.assign(created_at=opps["created_at"].mask(bad, "not a date")))
    truth = set()
    for rep in reps["rep_id"]:
        closed = opps["outcome"].isin(["won", "lost"]) & (opps["rep_id"] == rep)
        kept, gone = set(opps.loc[closed & ~bad, "outcome"]), set(opps.loc[closed & bad, "outcome"])
        if len(kept) == 1 and gone - kept:
            truth.add(rep)
    both = opps.groupby("rep_id")["outcome"].agg(lambda o: {"won", "lost"} <= set(o))
    choices = both.index[both.to_numpy(bool)]
    rep = choices[rng.integers(len(choices))]
    lost = (opps["rep_id"] == rep) & (opps["outcome"] == "lost")
    all_lost = warned(base / "all", reps, opps.assign(closed_at=opps["closed_at"].mask(lost, "")))
    part = lost & (rng.random(len(opps)) < 0.75)
    most_lost = warned(base / "part", reps, opps.assign(closed_at=opps["closed_at"].mask(part, "")))
    return {"reps": len(reps), "random_warned": len(named), "random_false": len(named ^ truth),
            "random_world_warned": int(bool(named)), "all_named": int(rep in all_lost),
            "all_exact": int(all_lost == {rep}), "part_named": int(rep in most_lost)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=200)
    args = parser.parse_args()
    totals: dict[str, int] = {}
    for seed in range(args.worlds):
        with tempfile.TemporaryDirectory() as folder:
            for key, value in one_world(seed, Path(folder)).items():
                totals[key] = totals.get(key, 0) + value
    n = args.worlds
    for label, key, of in (("random skips: reps warned", "random_warned", totals["reps"]),
                           ("random skips: reps named wrongly (or missed)", "random_false", totals["reps"]),
                           ("random skips: worlds with a warning", "random_world_warned", n),
                           ("all of a rep's lost deals set aside: rep named", "all_named", n),
                           ("all of a rep's lost deals set aside: that rep alone", "all_exact", n),
                           ("75% of a rep's lost deals set aside: rep named", "part_named", n)):
        low, high = sw.wilson(totals[key], of)
        print(f"{label:<52} {totals[key]:>5,}/{of:<6,} {totals[key] / of:6.1%}  [{low:.1%}, {high:.1%}]")


if __name__ == "__main__":
    main()
