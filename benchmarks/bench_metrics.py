"""Time loading, the weekly panel and the scorecard on a large demo team, against a per-rep loop.

Run: .venv/bin/python benchmarks/bench_metrics.py [--reps 500 --weeks 104]
Budget (issue 2): the whole panel in under 2 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from pipnb.data import SalesData
from pipnb.demo import demo_data
from pipnb.metrics import weekly_panel
from pipnb.peers import scorecard
from pipnb.sources import load


def timed(fn, repeat: int = 3):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def per_rep_loop(data: SalesData) -> pd.DataFrame:
    """The same panel computed one rep at a time (what a naive implementation does)."""
    frames = []
    for rep_id in data.rep_ids:
        opps = data.opportunities[data.opportunities["rep_id"] == rep_id]
        acts = data.activities[data.activities["rep_id"] == rep_id]
        # keep every opportunity the rep's activities touch, so the slice stays valid
        one = SalesData(reps=data.reps[data.reps["rep_id"] == rep_id], opportunities=opps,
                        activities=acts[acts["opp_id"].isin(opps["opp_id"]) | acts["opp_id"].isna()])
        frames.append(weekly_panel(one, as_of=data.period[1]))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--loop-reps", type=int, default=100, help="reps timed in the per-rep loop")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"pandas {pd.__version__}")
    gen, data = timed(lambda: demo_data(reps=args.reps, weeks=args.weeks), repeat=1)
    print(f"demo data: {len(data.reps)} reps, {len(data.opportunities):,} opportunities, "
          f"{len(data.activities):,} activities over {args.weeks} weeks (generated in {gen:.2f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = data.write(Path(tmp) / "bench", format="parquet")
        load_s, loaded = timed(lambda: load(folder), repeat=1)
    print(f"load (Parquet, validated):  {load_s:8.2f} s")
    panel_s, panel = timed(lambda: weekly_panel(loaded))
    print(f"weekly panel (vectorized):  {panel_s:8.2f} s  ({len(panel):,} rows)  budget 2 s: "
          f"{'OK' if panel_s < 2 else 'OVER'}")
    card_s, _ = timed(lambda: scorecard(loaded, panel=panel))
    print(f"scorecard (given panel):    {card_s:8.2f} s")

    subset = loaded.rep_ids[: args.loop_reps]
    small = SalesData(reps=loaded.reps[loaded.reps["rep_id"].isin(subset)],
                      opportunities=loaded.opportunities[loaded.opportunities["rep_id"].isin(subset)],
                      activities=loaded.activities[loaded.activities["rep_id"].isin(subset)])
    loop_s, _ = timed(lambda: per_rep_loop(small), repeat=1)
    loop_all = loop_s * len(loaded.rep_ids) / len(subset)
    print(f"per-rep loop:               {loop_s:8.2f} s for {len(subset)} reps "
          f"-> {loop_all:.1f} s for all {len(loaded.rep_ids)} (extrapolated)")
    print(f"vectorized / loop speed-up: {loop_all / panel_s:8.1f}x")


if __name__ == "__main__":
    main()
