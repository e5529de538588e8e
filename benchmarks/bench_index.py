"""How long ``reports/index.html`` takes to build with the dashboard, against the report list alone (the baseline).

A synthetic reports folder (no kernel runs): ``--reps`` reps, each with a plan, a diagnosis, a plan document,
three checkpoints and a final review whose notebooks carry a run record with its outcome (the weekly values of
six measures) and a chart-sized output (``--image-kb`` of base64, as a real report's notebook holds). Printed side
by side, best of ``--repeat``: the report list alone (what the index was before the dashboard), the dashboard
rows alone (:func:`pipnb.dashboard.dashboard`), and the whole page (both).

Run: .venv/bin/python benchmarks/bench_index.py [--reps 50] [--repeat 5] [--image-kb 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

import nbformat

from pipnb.batch.index import index_entries, write_index
from pipnb.dashboard import dashboard
from pipnb.index_page import write_index as list_page
from pipnb.lifecycle import HistoryEntry
from pipnb.plan import Plan, Target, Window
from pipnb.record import RunRecord, write_record
from pipnb.workdir import remember_rep

METRICS = ("win_rate", "opps_created_per_week", "first_meetings_per_week", "followup_meeting_ratio",
           "emails_per_week", "avg_days_between_touches")


def build(root: Path, reps: int, image_kb: int) -> tuple[Path, Path]:
    reports, params = root / "reports", root / "params"
    start = dt.date(2026, 4, 6)
    image = "A" * (image_kb * 1024)
    for i in range(reps):
        rep_id = f"R{i:03d}"
        plan = Plan(rep_id=rep_id, rep_name=f"Rep {i}", team=f"Team {i % 4}", status="active", start=start, weeks=12,
                    checkpoints=[3, 6, 9], diagnosis_window=Window(start=dt.date(2026, 1, 5), end=dt.date(2026, 4, 5)),
                    data_fingerprint="x", history=[HistoryEntry(date=start, status="active", by="bench")],
                    targets=[Target(metric=m, label=m, direction="at_least", baseline=1.0, target=2.0,
                                    glide=[1.2, 1.5, 1.8, 2.0], focus=j < 3, rule="bench")
                             for j, m in enumerate(METRICS)])
        plan.to_yaml(params / "plans" / f"{rep_id}.yaml")
        remember_rep(reports, rep_id, {"rep_name": plan.rep_name, "team": plan.team, "manager": "M"})
        dates = plan.checkpoint_dates()
        for stage in ("diagnose", "plan", *plan.stages()):
            weeks = [[f"{dt.date(2026, 1, 5) + dt.timedelta(weeks=w)}", 1.0 + w / 20] for w in range(25)]
            outcome = {"kind": "review", "stage": stage, "as_of": f"{dates.get(stage, start)}",
                       "data_end": "2026-06-28",
                       "measures": [{"metric": m, "label": m, "focus": j < 3, "status": "met", "reason": "",
                                     "weekly": weeks} for j, m in enumerate(METRICS)], "status_line": "On track",
                       "recommendation": "extend" if stage == "final" else "", "extended_end": ""}
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
                "display_data", data={"image/png": image})])])
            write_record(nb, RunRecord(input_hash="ab", status="ok", as_of=outcome["as_of"], outcome=outcome,
                                       written_at="2026-07-01T00:00:00Z"))
            nbformat.write(nb, reports / rep_id / f"{stage}.ipynb")
            (reports / rep_id / f"{stage}.html").write_text("<html></html>")
    return reports, params


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--image-kb", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reports, params = build(Path(tmp), args.reps, args.image_kb)
        baseline = best(lambda: list_page(index_entries(reports, params), reports / "list.html"), args.repeat)
        rows = best(lambda: dashboard(reports, params), args.repeat)
        page = best(lambda: write_index(reports, params), args.repeat)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{platform.python_version()} on {os.cpu_count()} cores, load {load:.1f}; {args.reps} reps x 6 reports, "
          f"{args.image_kb} KB of chart per notebook; best of {args.repeat}")
    print(f"{'report list alone (baseline)':<34}{baseline * 1000:>9.0f} ms")
    print(f"{'dashboard rows alone':<34}{rows * 1000:>9.0f} ms")
    print(f"{'index page (dashboard + list)':<34}{page * 1000:>9.0f} ms  ({page / baseline:.2f}x the baseline)")


if __name__ == "__main__":
    main()
