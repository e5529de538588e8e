"""Scale: a report costs the same in a team of 24 or 400, memory stays small, loading is cheap (issue 13).

Everything is measured in one run, each figure beside its baseline, with the machine and its load noted
(the machine is shared: compare within a run, not across runs):

1. ``team size``: per-report wall time of a 4-report diagnose batch (fast kernel, ``--jobs 2``) in a 24-rep
   and a 400-rep team (52 weeks), with each notebook handed its bundle (the rep's and peer group's slice)
   and, as the baseline, the same jobs without it (each notebook loads the whole team). Goal: 400 ≤ 1.5× 24.
2. ``memory``: the same at 500 reps × 104 weeks: peak resident memory (RSS, and USS: the pages the kernel
   does not share with the fork server) of each kernel, and of this (the batch) process. Goal: ≤ 400 MB.
3. ``load``: ``pn.load`` of the 500 × 104 Parquet files against a plain ``pd.read_parquet`` of the same
   files, in a fresh process (best of 5 each, interleaved; the medians and every run are printed too).
   Goal: ≤ 3×.
4. ``whole command``: ``pipnb run --stage diagnose`` of 8 reps (24-rep team, ``--jobs 2``), as a user runs
   it: the normal kernel, the fast kernel with its fork server running (best of 3 each, interleaved), and
   with the server started by the command. Goal: fast ≥ 1.8× normal.
5. ``lifecycle``: a 500-rep team's full cycle, stage by stage as the command line runs it (scan, diagnose
   the flagged, draft and activate their plans, plan documents, three checkpoints, final reviews): total
   time and reports per minute on the local pool (``--jobs 2``), then the same jobs on a 2-worker Dask
   ``LocalCluster`` (loopback).

Run: .venv/bin/python benchmarks/bench_scale.py [--skip lifecycle] [--max-flagged N]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pipnb import batch as batches
from pipnb.demo import demo_data
from pipnb.runner import run_jobs

BIN = Path(sys.executable).parent
TAG = f"pipnb-bench-{uuid.uuid4().hex[:8]}"   # in every kernel's environment: how this run finds its kernels
FAST = "pipnb-fast"


def machine() -> str:
    one, five, _ = os.getloadavg()
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {one:.1f} (1 min) {five:.1f} (5 min)")


class KernelMemory:
    """Peak RSS and USS of every kernel process started by this run (found by :data:`TAG`), sampled."""

    def __init__(self, every: float = 0.15):
        self.every, self.rss, self.uss = every, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psutil

        mine: dict[int, psutil.Process] = {}
        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "name", "cmdline"]):
                pid = proc.info["pid"]
                if pid not in mine:
                    try:
                        cmd = " ".join(proc.info["cmdline"] or [])
                        if (proc.info["name"] == "pipnb-kernel" or "ipykernel" in cmd) and \
                                proc.environ().get("PIPNB_BENCH_TAG") == TAG:
                            mine[pid] = proc
                    except (psutil.Error, OSError):
                        continue
            for pid, proc in list(mine.items()):
                try:
                    info = proc.memory_full_info()
                except (psutil.Error, OSError):
                    mine.pop(pid)
                    continue
                self.rss[pid] = max(self.rss.get(pid, 0), info.rss)
                self.uss[pid] = max(self.uss.get(pid, 0), info.uss)
            self._stop.wait(self.every)

    def peak(self) -> tuple[float, float]:
        mb = 1024 * 1024
        return (max(self.rss.values(), default=0) / mb, max(self.uss.values(), default=0) / mb)


def whole(jobs):
    """The baseline: the same jobs without their bundle (each notebook loads the whole team)."""
    return [replace(j, parameters={k: v for k, v in j.parameters.items() if k != "prepared"}) for j in jobs]


def timed(jobs, **kw) -> float:
    start = time.perf_counter()
    results = run_jobs(jobs, force=True, progress=False, **kw)
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise SystemExit(f"benchmark job failed: {failed[0].label}: {failed[0].error}")
    return elapsed


def team(tmp: Path, reps: int, weeks: int, fmt: str = "parquet") -> Path:
    data = demo_data(reps=reps, weeks=weeks)
    return data.write(tmp / f"team-{reps}x{weeks}", format=fmt)


def diagnose_batch(folder: Path, tmp: Path, n: int = 4):
    batch = batches.prepare(str(folder), reports=tmp / f"reports-{folder.name}", params=tmp / f"params-{folder.name}")
    return batch, batches.diagnose_jobs(batch, batch.data.rep_ids[:n])     # established reps of the first team


def section_team_size(tmp: Path, kernel: str) -> dict[str, float]:
    print("\n1. per-report wall time, 4 diagnoses, --jobs 2, kernel", kernel)
    rows = {}
    for reps in (24, 400):
        batch, jobs = diagnose_batch(team(tmp, reps, 52), tmp)
        timed(jobs[:1], jobs_n=1, kernel_name=kernel)        # warm-up, not counted: the fork server is up
        sliced = timed(jobs, jobs_n=2, kernel_name=kernel) / len(jobs)
        baseline = timed(whole(jobs), jobs_n=2, kernel_name=kernel) / len(jobs)
        rows[reps] = sliced
        print(f"   {reps:4d} reps x 52 weeks: {sliced:5.2f} s/report with bundles   {baseline:5.2f} s/report whole "
              f"data (baseline)   [{machine()}]")
    print(f"   400 vs 24 reps: {rows[400] / rows[24]:.2f}x (goal <= 1.5x)")
    return rows


def section_memory(tmp: Path, folder: Path, kernel: str) -> None:
    print("\n2. 500 reps x 104 weeks: 4 diagnoses, --jobs 2, kernel", kernel)
    batch, jobs = diagnose_batch(folder, tmp)
    for name, chosen in (("with bundles", jobs), ("whole data (baseline)", whole(jobs))):
        with KernelMemory() as memory:
            seconds = timed(chosen, jobs_n=2, kernel_name=kernel) / len(jobs)
        rss, uss = memory.peak()
        print(f"   {name:<22} {seconds:5.2f} s/report; kernel peak RSS {rss:6.0f} MB, USS {uss:6.0f} MB "
              f"({len(memory.rss)} kernels)   [{machine()}]")
    print(f"   this batch process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          "(goal: kernel <= 400 MB)")


LOAD_TIMINGS = """
import json, sys, time
import pandas as pd
import pipnb as pn
folder = sys.argv[1]
pn.load(folder)                                        # imports and first use, not counted
plain, ours = [], []
for _ in range(5):
    start = time.perf_counter()
    frames = [pd.read_parquet(f"{folder}/{t}.parquet") for t in ("reps", "opportunities", "activities")]
    plain.append(time.perf_counter() - start)
    del frames
    start = time.perf_counter()
    data = pn.load(folder)
    ours.append(time.perf_counter() - start)
    kept = len(data.activities)
    del data
print(json.dumps({"plain": plain, "ours": ours, "kept": kept}))
"""


def section_load(folder: Path) -> None:
    """Timed in a fresh process (as ``pipnb check`` or a notebook loads): this one holds the demo generator's heap,
    which makes every large allocation of either side slower and noisier."""
    import json
    import statistics

    print("\n3. loading 500 reps x 104 weeks from Parquet (a fresh process; best of 5, interleaved)")
    done = subprocess.run([sys.executable, "-c", LOAD_TIMINGS, str(folder)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"load timing failed: {done.stderr.strip()[-400:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    plain, ours = got["plain"], got["ours"]
    print(f"   pd.read_parquet {min(plain):5.2f} s   pn.load {min(ours):5.2f} s   ({got['kept']:,} activities kept)   "
          f"{min(ours) / min(plain):.1f}x (goal <= 3x)   [{machine()}]")
    print(f"   medians: pd.read_parquet {statistics.median(plain):5.2f} s   pn.load {statistics.median(ours):5.2f} s   "
          f"{statistics.median(ours) / statistics.median(plain):.1f}x;   every run: read_parquet "
          f"{', '.join(f'{x:.2f}' for x in plain)}, pn.load {', '.join(f'{x:.2f}' for x in ours)} s")


def section_whole_command(tmp: Path) -> None:
    print("\n4. whole command: pipnb run --stage diagnose, 8 reps of 24, --jobs 2 --force")
    folder = team(tmp, 24, 56, fmt="csv")
    reps = ",".join(f"R{i:02d}" for i in range(1, 9))

    def run(kernel: str) -> float:
        args = [str(BIN / "pipnb"), "run", "--data", str(folder), "--stage", "diagnose", "--reps", reps, "--jobs",
                "2", "--force", "--kernel", kernel, "--reports", str(tmp / "cmd-reports"), "--params",
                str(tmp / "cmd-params")]
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"pipnb run failed: {done.stderr.strip()[-400:]}")
        return time.perf_counter() - start

    run(FAST)                                            # the cache entry and the fork server exist
    normals, warms = [], []
    for _ in range(3):                                   # best of 3, interleaved: one run is at the load's mercy
        normals.append(run("python3"))
        warms.append(run(FAST))
    normal, warm = min(normals), min(warms)
    subprocess.run([sys.executable, "-m", "pipnb.kernel", "stop", "--force"], capture_output=True)
    cold = run(FAST)
    print(f"   (best of 3 interleaved; normal {', '.join(f'{x:.1f}' for x in normals)} s, fast "
          f"{', '.join(f'{x:.1f}' for x in warms)} s)")
    print(f"   normal kernel            {normal:6.1f} s  {normal / 8:5.2f} s/report   [{machine()}]")
    print(f"   fast, server running     {warm:6.1f} s  {warm / 8:5.2f} s/report   {normal / warm:.2f}x (goal >= 1.8x)")
    print(f"   fast, server cold start  {cold:6.1f} s  {cold / 8:5.2f} s/report   {normal / cold:.2f}x")


def lifecycle_jobs(batch, max_flagged: int):
    """Every stage of the cycle for the flagged reps, as the command line would run them, stage by stage."""
    from pipnb.batch.bundle import batch_scorecard
    from pipnb.demo import demo_plan_start
    from pipnb.plan import Plan
    from pipnb.scan import flagged_reps
    from pipnb.stages import review_stages

    start = demo_plan_start(f"{batch.data.period[1]:%Y-%m-%d}")
    before = f"{start - pd.Timedelta(days=1):%Y-%m-%d}"
    flagged = flagged_reps(batch_scorecard(batch, before), plan_metrics_only=True)[: max_flagged or None]
    # drafted as `pipnb run --stage plan` drafts them, then activated, as a manager would
    paths = batches.draft_plans(batch, flagged, as_of=before, start=f"{start:%Y-%m-%d}")
    for path in paths:
        Plan.from_yaml(path).transition("activate", by="bench", on=start.date(), note="benchmark").to_yaml(path)
    stages = [("scan", [batches.scan_job(batch, as_of=before)]),
              ("diagnose", batches.diagnose_jobs(batch, flagged, as_of=before)),
              ("plan", batches.plan_jobs(batch, paths))]
    stages += [(stage, batches.review_jobs(batch, paths, stage)) for stage in review_stages(3)]
    return flagged, stages


def section_lifecycle(tmp: Path, folder: Path, kernel: str, max_flagged: int) -> None:
    import distributed

    print(f"\n5. lifecycle of a 500-rep team (104 weeks), kernel {kernel}")
    start = time.perf_counter()
    batch = batches.prepare(str(folder), reports=tmp / "life-reports", params=tmp / "life-params")
    flagged, stages = lifecycle_jobs(batch, max_flagged)
    prepared = time.perf_counter() - start
    n = sum(len(jobs) for _, jobs in stages)
    print(f"   {len(flagged)} flagged reps, {n} reports; preparing the batch, drafting and activating the plans: "
          f"{prepared:.1f} s")
    local = {}
    for stage, jobs in stages:
        local[stage] = timed(jobs, jobs_n=2, kernel_name=kernel)
    total = prepared + sum(local.values())
    print("   local pool, --jobs 2: " + ", ".join(f"{s} {t:.0f} s" for s, t in local.items()))
    print(f"   local pool, --jobs 2: total {total:6.1f} s   {60 * n / total:5.1f} reports/min   [{machine()}]")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=50) as cluster:
        dask = {stage: timed(jobs, scheduler=cluster.scheduler_address, kernel_name=kernel) for stage, jobs in stages}
    total_dask = prepared + sum(dask.values())
    print("   Dask, 2 workers:      " + ", ".join(f"{s} {t:.0f} s" for s, t in dask.items()))
    print(f"   Dask, 2 workers:      total {total_dask:6.1f} s   {60 * n / total_dask:5.1f} reports/min   "
          f"[{machine()}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip", nargs="*", default=[], choices=["team", "memory", "load", "command", "lifecycle"])
    parser.add_argument("--max-flagged", type=int, default=0, help="lifecycle: at most this many flagged reps "
                                                                   "(0: all)")
    args = parser.parse_args()
    os.environ["PIPNB_BENCH_TAG"] = TAG
    from pipnb.kernel import available

    fast, why = available()
    kernel = FAST if fast else "python3"
    # A fork server started before this run (a test suite, a user's batch) has its kernels show the server's
    # environment, without TAG: stop it, so the one this run starts carries TAG into every kernel it forks.
    subprocess.run([sys.executable, "-m", "pipnb.kernel", "stop", "--force"], capture_output=True)
    print(f"machine: {machine()}")
    if not fast:
        print(f"fast kernel unavailable ({why}): the normal kernel is used")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = team(tmp, 500, 104) if {"memory", "load", "lifecycle"} - set(args.skip) else None
        if "load" not in args.skip:
            section_load(big)
        if "team" not in args.skip:
            section_team_size(tmp, kernel)
        if "memory" not in args.skip:
            section_memory(tmp, big, kernel)
        if "command" not in args.skip and fast:
            section_whole_command(tmp)
        if "lifecycle" not in args.skip:
            section_lifecycle(tmp, big, kernel, args.max_flagged)
    print(f"\nmachine at the end: {machine()}")


if __name__ == "__main__":
    main()
