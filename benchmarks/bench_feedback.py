"""Feedback speed (issue 26, "slow feedback"): the costs every report, every command and every test pays, each
beside its baseline in the same run (the old way, kept here as the baseline).

1. ``panel PNGs``: :func:`pipnb.plots.show` of a checkpoint report's counterfactual grid (one panel per plan
   metric): one drawing of the figure, each panel cut out of it (now) against one ``savefig`` per panel with
   its bounding box (before: a whole drawing per panel).
2. ``plan YAML``: :func:`pipnb.io.read_yaml` of the demo's plan (its limits checked on the event stream, then
   loaded) on libyaml (now) against the same on PyYAML's pure-Python loader (before). A review run reads a plan
   about eleven times.
3. ``command start``: ``python -c "import pipnb.commands"`` in a fresh process (what every ``pipnb run``,
   ``scan`` and ``check`` imports) with scipy imported on first use (now) against scipy.stats imported with it
   (before).
4. ``peer lookups``: the numerators and denominators of four metrics for the rest of the demo team in two windows,
   as :func:`pipnb.peer_change.team_change` reads them: one lookup per window (now) against the per-peer
   ``.loc`` loop it replaced (the same numbers, checked).
5. ``window metrics``: :func:`pipnb.window_metrics` of the demo's 12 weeks before its plan, on integer codes (now)
   against the pandas group/unstack/stack/merge version it replaced (``tests/test_metrics.py`` keeps it as the
   reference; the same frame, checked). A review pools several windows.

Each figure is the median of ``--repeats`` runs (interleaved with its baseline) with the lowest and highest;
the ratio is before / now. Run: ``.venv/bin/python benchmarks/bench_feedback.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipnb.demo import demo_plan_start

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _side_by_side(name: str, repeats: int, now, before) -> None:
    """Time ``now`` and ``before`` ``repeats`` times, interleaved, and print the line."""
    a, b = [], []
    for _ in range(repeats):
        a.append(_timed(now))
        b.append(_timed(before))
    _line(name, a, b)


def _line(name: str, now: list[float], before: list[float]) -> None:
    def fmt(xs):
        return f"{statistics.median(xs) * 1000:8.1f} ms [{min(xs) * 1000:.1f}-{max(xs) * 1000:.1f}]"

    ratio = statistics.median(before) / statistics.median(now)
    print(f"{name:16s} now {fmt(now)}   before {fmt(before)}   x{ratio:.1f}")


def bench_panels(repeats: int) -> None:
    import io

    import matplotlib
    from matplotlib.transforms import Bbox

    import pipnb as pn
    from pipnb import figures, plots

    data, start = pn.demo_data(), demo_plan_start()
    plan = pn.draft_plan(pn.diagnose(data, "R14", as_of=start - pd.Timedelta(days=1)), start=start)
    panel = pn.weekly_panel(data)
    rv = pn.review(data, plan, "1", panel=panel)
    figures.display = lambda image: None                        # no front end: render only

    def before():
        fig = plots.counterfactual_grid(data, rv, panel=panel)
        with matplotlib.rc_context(figures.report_style()):
            renderer, to_inches = fig.canvas.get_renderer(), fig.dpi_scale_trans.inverted()
            for ax in figures.panels(fig):
                box = ax.get_tightbbox(renderer).transformed(to_inches)
                fig.savefig(io.BytesIO(), format="png", dpi=figures.DPI, pil_kwargs={"compress_level": 3},
                            bbox_inches=Bbox.from_extents(box.x0 - 0.04, box.y0 - 0.04, box.x1 + 0.04, box.y1 + 0.04))

    def now():
        plots.show(plots.counterfactual_grid(data, rv, panel=panel))

    _side_by_side("panel PNGs", repeats, now, before)


def bench_yaml(repeats: int, path: Path) -> None:
    import yaml

    from pipnb import io as pio

    def before():
        text = path.read_text(encoding="utf-8-sig")
        pio._count_yaml_events(yaml.parse(text, Loader=yaml.SafeLoader), aliases=False)
        return yaml.safe_load(text)

    def now():
        return pio.read_yaml(path, aliases=False)

    assert now() == before()
    _side_by_side("plan YAML", repeats, now, before)


def bench_start(repeats: int) -> None:
    def run(code):
        return lambda: subprocess.run([sys.executable, "-c", code], check=True)

    _side_by_side("command start", repeats, run("import pipnb.commands"), run("import scipy.stats, pipnb.commands"))


def bench_peers(repeats: int) -> None:
    import pipnb as pn
    from pipnb.peer_change import peer_columns, peer_values

    data = pn.demo_data()
    panel = pn.weekly_panel(data)
    weeks = sorted(panel["week"].unique())
    before_w = pn.window_metrics(panel, weeks[-24], weeks[-13]).set_index(["rep_id", "metric"])
    now_w = pn.window_metrics(panel, weeks[-12], weeks[-1]).set_index(["rep_id", "metric"])
    peers = sorted(set(data.reps["rep_id"]) - {"R14"})                # the rest of the demo team
    metrics = ["emails_per_week", "opps_created_per_week", "first_meetings_per_week", "followup_meeting_ratio"]

    def loop_parts(metric):                                     # the per-peer loop team_change had
        rows = []
        for peer in peers:
            rows.append([float(f.loc[peer].loc[metric, c]) if peer in f.index.get_level_values(0)
                         and metric in f.loc[peer].index else np.nan
                         for f in (before_w, now_w) for c in ("numerator", "denominator")])
        return rows

    def before():
        for metric in metrics:
            loop_parts(metric)

    def now_parts(metric):
        return np.column_stack([peer_columns(f, peers, metric, ["numerator", "denominator"])
                                for f in (before_w, now_w)])

    def now():
        for metric in metrics:
            now_parts(metric)

    for metric in metrics:
        np.testing.assert_array_equal(now_parts(metric), np.array(loop_parts(metric)))
        np.testing.assert_array_equal(now_parts(metric)[:, 0], peer_values(before_w, peers, metric, "numerator"))

    _side_by_side("peer lookups", repeats, now, before)


def bench_windows(repeats: int) -> None:
    import pipnb as pn

    sys.path.insert(0, str(ROOT / "tests"))
    from test_metrics import _reference_window_metrics

    panel = pn.weekly_panel(pn.demo_data())
    end = demo_plan_start() - pd.Timedelta(weeks=1)
    start = end - pd.Timedelta(weeks=11)
    pd.testing.assert_frame_equal(pn.window_metrics(panel, start, end), _reference_window_metrics(panel, start, end),
                                  check_dtype=False)
    _side_by_side("window metrics", repeats, lambda: pn.window_metrics(panel, start, end),
                  lambda: _reference_window_metrics(panel, start, end))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    one, five, _ = os.getloadavg()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average "
          f"{one:.1f} (1 min) {five:.1f} (5 min); median [lowest-highest] of {args.repeats} "
          "(yaml: x5, peers and windows: x3)")
    import tempfile

    import pipnb as pn

    data, start = pn.demo_data(), demo_plan_start()
    bench_panels(args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        plan = Path(folder) / "R14.yaml"
        pn.draft_plan(pn.diagnose(data, "R14", as_of=start - pd.Timedelta(days=1)), start=start).to_yaml(plan)
        bench_yaml(args.repeats * 5, plan)
    bench_start(args.repeats)
    bench_peers(args.repeats * 3)
    bench_windows(args.repeats * 3)


if __name__ == "__main__":
    main()
