"""Fairness benchmark (issue 11, "Targets"): how often pipnb's decisions are wrong when nothing is wrong,
and right when something is, on worlds from an independent generator (``tests/simworld.py``).

Run (2 cores, about 15 minutes at the default; ``--quick`` about 2 minutes)::

    nice .venv/bin/python benchmarks/bench_fairness.py [--reps 120] [--seed 2024] [--jobs 2] [--quick]

Every line prints the rate, its Wilson 95% interval, the number of replications (reps, plans or worlds, as
the line counts them), the issue's target and whether the point estimate meets it. ``--reps N`` sets the
replications of every scenario; the all-equal team (scenarios 1 and 2, the hard limits) and the
detectable-change calibration (scenario 7, whose target is 80% ± 5%) get ``2N``.

Scenarios (see ``tests/simworld.py`` for the world):

1. all-equal team (nobody differs): share of reps flagged short on any plan metric, 12-week scan at week 40;
2. the rep the scan makes look worst in that team, forced onto a plan: consequences, "improved" / "worse"
   at any of the four looks;
3. a rep truly at 60% of peers on one driver who truly returns to the peer level on the plan's first day;
4. planted 60% drivers: flagged on that driver, 12- and 26-week windows;
5. a truly low rep (60% on one driver) who does not change through the plan;
6. power at the final review: emails x1.5 from the plan start; a follow-up ratio rising from 45% to 70%;
7. a true change equal to the stated smallest detectable change (final review): "improved" should be ~80%.

One decision path (issue 22), on the same worlds, scan at week 40 over 12 weeks, win rate on closed deals:

F1. all-equal team: reps flagged short on **any** metric (every flag the scan gives: outcomes, drivers, deal size,
    sales cycle; the rest is context and never flagged), target <= 5%; reps whose diagnosis "needs a plan"
    (``Diagnosis.needs_plan``: a shortfall on the win rate or a driver), target <= 5%;
F2. power: a rep with a true 30% shortfall (factor 0.7, from week 1) on one driver, or with deals 30% smaller
    (every amount x 0.7), flagged on that metric.

Untidy worlds (issue 23), ``--worlds NAME,NAME`` (or ``--worlds all``) instead of the scenarios above::

    nice .venv/bin/python benchmarks/bench_fairness.py --worlds all --reps 30 [--seed 2024] [--minutes 40]

Worlds (``simworld.WORLDS``): tidy, dip (the whole team x0.6 in plan weeks 7-12), territory (the rep's
opportunities and book x0.6 from the diagnosis window on; with/without account ids, with/without a recorded
plan event), ar1 (rho 0.5), nb (alpha 0.5), small (teams of 5-8), ramping (half the team hired recently),
lowvol (0.3 opportunities a week). In each world, the promises of issue 23's "Targets" that apply: rate,
Wilson 95% interval, n, target and a mark: *meets* (the whole interval on the target's side), *misses*
(the whole interval on the other side) or *undecided*. Every world's replications share seeds, so worlds
differ by their untidiness only (common random numbers). ``--kinds equal,recovered,territory,detection,mde_emails``
runs only those replication kinds (the MDE calibration of first meetings, touches and follow-ups first fits effect
curves, about 16 CPU s a process each). ``--minutes``: stop starting replications after
that long and report what finished (replications are interleaved, so every world gets about the same n).
Worlds run interleaved in one pool, so each world's wall time is the run's wall time shared out by its CPU
seconds (the tidy world's includes the one-off effect curves of its MDE calibration, ~16 CPU s a curve and process).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import simworld as sw  # noqa: E402

GROUPS = ("all_equal", "natural_spread", *(f"planted_{d}" for d in sw.DRIVERS), "emails_up", "followup_up",
          *(f"mde_{d}" for d in sw.DRIVERS), "flags_equal", *(f"flags_power_{d}" for d in (*sw.DRIVERS, "deal")))
DOUBLED = ("all_equal", "flags_equal", *(f"mde_{d}" for d in sw.DRIVERS))   # hard limits, 80% +- 5% calibration
POWER_FACTOR = 0.7
FLAG_TARGETS = [
    ("f1.any", "F1 all-equal team: reps flagged short on any metric (closed-deal win rate)", "<=", 0.05),
    ("f1.plan_metrics", "  ... on the win rate or a driver", "", float("nan")),
    ("f1.outcomes_only", "  ... on deal size or sales cycle only", "", float("nan")),
    ("f1.needs_plan", "  reps whose diagnosis says 'needs a plan'", "<=", 0.05),
    *[(f"f2.{d}", f"F2 true 30% shortfall on {d}: flagged on it (12-week scan)", "", float("nan"))
      for d in (*sw.DRIVERS, "deal")],
]


def _task(group: str, seed: int) -> tuple[str, sw.Tally, float, str | None]:
    """One replication; an exception (pipnb's or the harness's) is returned, counted and shown, not fatal."""
    start = time.process_time()
    try:
        tally = _scenario(group, seed)
    except Exception:
        import traceback

        return group, sw.Tally(), time.process_time() - start, f"{group} seed {seed}:\n{traceback.format_exc()}"
    return group, tally, time.process_time() - start, None


def _scenario(group: str, seed: int) -> sw.Tally:
    if group == "all_equal":
        tally = sw.scenario_all_equal(seed, bases=("all", "closed"))
    elif group == "natural_spread":
        tally = sw.scenario_all_equal(seed, plan=False, params=sw.WorldParams(), prefix="s1h")
    elif group.startswith("planted_"):
        tally = sw.scenario_planted(seed, group.removeprefix("planted_"), mde=False)
    elif group.startswith("mde_"):
        tally = sw.scenario_mde(seed, group.removeprefix("mde_"))
    elif group == "emails_up":
        tally = sw.scenario_emails_up(seed, factor=1.5)
    elif group == "followup_up":
        tally = sw.scenario_followup_up(seed, before=0.45, after=0.70)
    elif group == "flags_equal":
        tally = _flags_equal(seed)
    elif group.startswith("flags_power_"):
        tally = _flags_power(seed, group.removeprefix("flags_power_"))
    else:
        raise ValueError(group)
    return tally


def _scan_closed(world):
    return sw.scan(world, win_rate_basis="closed")


def _flags_equal(seed: int) -> sw.Tally:
    """F1: every flag on an all-equal team, and each rep's diagnosis (needs a plan?)."""
    import pipnb as pn
    from pipnb.schema import DRIVER_METRICS

    t = sw.Tally()
    world = sw.generate(seed, sw.ALL_EQUAL)
    card = _scan_closed(world)
    short = card[card["flag"] == "shortfall"]
    reps = card["rep_id"].unique()
    plan_metrics = ("win_rate", *DRIVER_METRICS)
    t.add("f1.any", int(short["rep_id"].nunique()), len(reps))
    t.add("f1.plan_metrics", int(short.loc[short["metric"].isin(plan_metrics), "rep_id"].nunique()), len(reps))
    only = set(short["rep_id"]) - set(short.loc[short["metric"].isin(plan_metrics), "rep_id"])
    t.add("f1.outcomes_only", len(only), len(reps))
    policy = card.attrs["policy"]
    need = sum(pn.diagnose(world.data, rep, as_of=world.week_end(sw.DIAGNOSIS_WEEK), policy=policy,
                           panel=world.panel, card=card).needs_plan for rep in reps)
    t.add("f1.needs_plan", int(need), len(reps))
    return t


def _flags_power(seed: int, driver: str) -> sw.Tally:
    """F2: a rep truly 30% short on one driver (or on deal size) from week 1: flagged on it?"""
    import dataclasses

    import pipnb as pn

    t = sw.Tally()
    if driver == "deal":
        world = sw.generate(seed)
        opps = world.data.opportunities.copy()
        mine = opps["rep_id"] == world.rep_id(0)
        opps.loc[mine, "amount"] = opps.loc[mine, "amount"] * POWER_FACTOR
        data = dataclasses.replace(world.data, opportunities=opps)
        card = pn.scorecard(data, as_of=world.week_end(sw.DIAGNOSIS_WEEK), weeks=12, win_rate_basis="closed")
        metric = "avg_deal_size"
    else:
        world = sw.generate(seed, changes=sw.low_rep(driver, factor=POWER_FACTOR))
        card = _scan_closed(world)
        metric = sw.DRIVER_METRIC[driver]
    row = card[(card["rep_id"] == world.rep_id(0)) & (card["metric"] == metric)]
    t.add(f"f2.{driver}", bool((row["flag"] == "shortfall").any()))
    return t


def tasks(reps: int, seed: int, groups=GROUPS) -> list[tuple[str, int]]:
    out = []
    for g, group in enumerate(GROUPS):
        if group not in groups:
            continue
        n = 2 * reps if group in DOUBLED else reps
        out += [(group, seed * 1_000_000 + g * 10_000 + i) for i in range(n)]
    return out


def _run(job):
    return _task(*job)


# -- untidy worlds (issue 23) ------------------------------------------------------------------------
WORLD_LINES = [   # (key, text, op, bound, applies to): op "<=", ">=", "~" (80% +- 5%), "" (report only)
    ("s1.any", "all-equal team: established reps flagged short on any plan metric", "<=", 0.05, "equal"),
    ("s1.ramping_any", "  recently hired reps flagged short on any plan metric", "", float("nan"), "equal"),
    ("s2.consequences", "average rep put on a plan by noise: consequences", "<=", 0.02, "equal"),
    ("s2.improved_any_look", "  'improved' on some metric at any of the four looks", "<=", 0.05, "equal"),
    ("s2.worse_any_look", "  'worse' on some metric at any of the four looks", "<=", 0.05, "equal"),
    ("s2.not_met_final", "  a status 'not met' / 'behind plan' at the final (dip: target)", "dip<=", 0.10, "equal"),
    ("s2.nodip.not_met_final", "  ... the same plans without the dip", "", float("nan"), "dip"),
    ("s3.consequences", "truly recovered rep (60% on one driver, back from the plan start): consequences",
     "<=", 0.02, "recovered"),
    ("s3.complete", "  complete", "", float("nan"), "recovered"),
    ("s3.nodip.complete", "  complete, the same reps without the dip", "", float("nan"), "dip"),
    ("terr.consequences", "territory shrink, behaviour unchanged: consequences", "<=", 0.02, "territory"),
    ("terr.improved_any_look", "  'improved' on some metric at any look", "<=", 0.05, "territory"),
    ("terr.worse_any_look", "  'worse' on some metric at any look", "<=", 0.05, "territory"),
    ("terr.complete", "  complete", "", float("nan"), "territory"),
    ("terr.not_met_final", "  a status 'not met' / 'behind plan' at the final", "", float("nan"), "territory"),
    ("s4.emails.w12", "emails planted at 60%: flagged on it (12 weeks)", ">=", 0.90, "detection"),
    ("s6.emails_x1.5.improved_final", "emails x1.5 from the plan start: 'improved' at the final", ">=", 0.90,
     "detection"),
    *[(f"s7.{d}.improved_final", f"true change = stated MDE ({d}): 'improved' at the final", "~", 0.80, "mde")
      for d in sw.DRIVERS],
]


def _world_tasks(worlds: list[str], reps: int, seed: int, only: set[str] | None = None) -> list[tuple]:
    """(world, kind, driver, index, seed) per replication; the seed depends on the kind and index only, so
    every world replays the same draws (common random numbers). ``only``: the kinds to run (``equal``,
    ``recovered``, ``territory``, ``detection``, ``mde_<driver>``; default all)."""
    out = []
    for i in range(reps):
        for name in worlds:
            spec = sw.WORLDS[name]
            kinds = ["territory"] if spec.territory else ["equal", "recovered"]
            if name == "tidy":
                kinds.append("detection")
            kinds += [f"mde_{d}" for d in spec.mde_drivers]
            for kind in kinds:
                if only and kind not in only:
                    continue
                code = {"equal": 1, "recovered": 2, "territory": 3, "detection": 4}.get(kind, 5)
                driver = sw.DRIVERS[i % len(sw.DRIVERS)] if kind == "recovered" else kind.removeprefix("mde_")
                sub = sw.DRIVERS.index(driver) if kind.startswith("mde_") else 0
                out.append((name, kind, driver, i, seed * 1_000_000 + code * 100_000 + sub * 10_000 + i))
    return out


def _world_task(job: tuple) -> tuple[str, str, sw.Tally, float, str | None]:
    name, kind, driver, index, seed = job
    spec = sw.WORLDS[name]
    start = time.process_time()
    try:
        if kind == "equal":
            tally = sw.scenario_world_equal(seed, spec, index)
        elif kind == "recovered":
            tally = sw.scenario_world_recovered(seed, spec, driver, index)
        elif kind == "territory":
            tally = sw.scenario_world_territory(seed, spec, index)
        elif kind == "detection":
            tally = sw.scenario_world_detection(seed, spec, index)
        else:
            tally = sw.scenario_mde(seed, driver, params=spec.world_params(index))
    except Exception:
        import traceback

        return name, kind, sw.Tally(), time.process_time() - start, f"{name}/{kind} seed {seed}:\n" \
            f"{traceback.format_exc()}"
    return name, kind, tally, time.process_time() - start, None


def mark(op: str, bound: float, lo: float, hi: float) -> str:
    """meets / misses / undecided from the Wilson interval (``~``: 80% +- 5 points)."""
    if not op or lo != lo:
        return ""
    if op == "<=":
        return "meets" if hi <= bound else "misses" if lo > bound else "undecided"
    if op == ">=":
        return "meets" if lo >= bound else "misses" if hi < bound else "undecided"
    low, high = bound - 0.05, bound + 0.05
    return "meets" if low <= lo and hi <= high else "misses" if hi < low or lo > high else "undecided"


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe's score interval (method 10) for p1 - p2 from two Wilson intervals (unpaired; on paired
    worlds with common random numbers it is conservative)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = sw.wilson(k1, n1)
    l2, u2 = sw.wilson(k2, n2)
    d = p1 - p2
    return d - ((p1 - l1) ** 2 + (u2 - p2) ** 2) ** 0.5, d + ((u1 - p1) ** 2 + (p2 - l2) ** 2) ** 0.5


def report_world(name: str, tally: sw.Tally, wall: float, cpu: float) -> None:
    spec = sw.WORLDS[name]
    print(f"\n== {name}: {spec.text.strip(' .')} ({wall:.0f} s wall, {cpu:.0f} CPU s)")
    for key, text, op, bound, applies in WORLD_LINES:
        n = tally.n(key)
        if n == 0 or (applies == "dip" and not spec.dip):
            continue
        if op == "dip<=":
            op = "<=" if spec.dip else ""
        rate = tally.rate(key)
        lo, hi = tally.interval(key)
        target = "" if not op else f"{op} {bound:.0%}" if op != "~" else f"{bound:.0%} ± 5%"
        print(f"  {text:<90} {rate:6.1%}  [{lo:5.1%}, {hi:5.1%}] {n:5d}  {target:<9} {mark(op, bound, lo, hi)}")
    if spec.dip and tally.n("s3.complete") and tally.n("s3.nodip.complete"):
        (k1, n1), (k2, n2) = tally.counts["s3.complete"], tally.counts["s3.nodip.complete"]
        lo, hi = newcombe(k1, n1, k2, n2)
        diff = k1 / n1 - k2 / n2
        verdict = "meets" if -0.05 <= lo and hi <= 0.05 else "misses" if hi < -0.05 or lo > 0.05 else "undecided"
        print(f"  {'recovered rep completes with the dip minus without (points)':<90} {100 * diff:+5.1f}   "
              f"[{100 * lo:+5.1f}, {100 * hi:+5.1f}] {n1:5d}  ± 5 pts    {verdict}")


def main_worlds(args) -> int:
    names = list(sw.WORLDS) if args.worlds == "all" else [w.strip() for w in args.worlds.split(",") if w.strip()]
    unknown = [w for w in names if w not in sw.WORLDS]
    if unknown:
        print(f"unknown world(s) {', '.join(unknown)}: use {', '.join(sw.WORLDS)} or all", file=sys.stderr)
        return 2
    import pipnb as pn

    if not hasattr(pn.Plan, "record_event"):
        skipped = [w for w in names if sw.WORLDS[w].event]
        if skipped:
            print(f"note: {', '.join(skipped)} skipped: pn.Plan has no record_event yet (the plan event API of "
                  "issue 23). Expected call, on the drafted plan:\n  plan.transition('activate', by=..., "
                  "on=plan.start).record_event('territory', on=<Monday of week 29>, note=..., by=..., "
                  "signed_on=plan.start)\n  (simworld.record_territory_event)")
        names = [w for w in names if w not in skipped]
    reps = 12 if args.quick else args.reps
    jobs = _world_tasks(names, reps, args.seed, set(args.kinds.split(",")) if args.kinds else None)
    print(f"untidy worlds (issue 23): {reps} replications per scenario and world, seed {args.seed}, "
          f"{args.jobs} processes, {len(jobs)} replications", flush=True)
    deadline = time.perf_counter() + 60 * args.minutes if args.minutes else float("inf")
    tallies = {n: sw.Tally() for n in names}
    cpu = dict.fromkeys(names, 0.0)
    errors, done = [], 0
    begin = time.perf_counter()
    from concurrent.futures import FIRST_COMPLETED, wait

    pending, queue = set(), list(jobs)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        while queue or pending:
            while queue and len(pending) < 2 * args.jobs and time.perf_counter() < deadline:
                pending.add(pool.submit(_world_task, queue.pop(0)))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                name, kind, tally, seconds, error = future.result()
                tallies[name].merge(tally)
                cpu[name] += seconds
                done += 1
                if error:
                    errors.append(error)
                if done % max(1, len(jobs) // 20) == 0:
                    print(f"  {done}/{len(jobs)} replications, {time.perf_counter() - begin:.0f} s", file=sys.stderr,
                          flush=True)
    wall = time.perf_counter() - begin
    if queue:
        print(f"note: stopped after {args.minutes} minutes: {done} of {len(jobs)} replications ran")
    total_cpu = sum(cpu.values()) or 1.0
    print(f"\n{'':<92} {'rate':>6}  {'95% interval':>15} {'n':>5}  target")
    for name in names:                  # wall time per world: its share of the CPU time of the run
        report_world(name, tallies[name], wall * cpu[name] / total_cpu, cpu[name])
    if errors:
        print(f"\n{len(errors)} replications raised (left out of the rates above); the first:\n{errors[0]}")
    print(f"\nwall {wall:.0f} s for {done} replications")
    return 1 if errors else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=120,
                        help="replications per scenario (all-equal and scenario 7: 2x)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="12 replications per scenario (a smoke run)")
    parser.add_argument("--only", nargs="*", choices=GROUPS, help="run only these scenario groups")
    parser.add_argument("--worlds", help="issue 23's untidy worlds instead: comma-separated names "
                        f"({', '.join(sw.WORLDS)}) or 'all'")
    parser.add_argument("--kinds", help="worlds: only these replication kinds, comma-separated (equal, recovered, "
                        "territory, detection, mde_emails, mde_opps, ...; the MDE calibration of first meetings, "
                        "touches and follow-ups first fits effect curves, ~16 CPU s a process each)")
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="worlds: stop starting replications after this many minutes (0: run all)")
    args = parser.parse_args(argv)
    if args.worlds:
        return main_worlds(args)
    reps = 12 if args.quick else args.reps
    jobs = tasks(reps, args.seed, args.only or GROUPS)
    print(f"fairness benchmark: {reps} replications per scenario (all-equal and scenario 7 {2 * reps}), "
          f"seed {args.seed}, {args.jobs} processes, {len(jobs)} worlds", flush=True)

    wall = time.perf_counter()
    total, cpu, errors = sw.Tally(), dict.fromkeys(GROUPS, 0.0), []
    # interleave the groups so that a partial run still covers every scenario
    jobs.sort(key=lambda j: (j[1] % 10_000, j[0]))
    pool = ProcessPoolExecutor(max_workers=args.jobs) if args.jobs > 1 else None
    results = pool.map(_run, jobs, chunksize=2) if pool else map(_run, jobs)
    try:
        for done, (group, tally, seconds, error) in enumerate(results, start=1):
            total.merge(tally)
            cpu[group] += seconds
            if error:
                errors.append(error)
            if done % max(1, len(jobs) // 10) == 0:
                print(f"  {done}/{len(jobs)} worlds, {time.perf_counter() - wall:.0f} s", file=sys.stderr,
                      flush=True)
    finally:
        if pool:
            pool.shutdown()
    wall = time.perf_counter() - wall
    report(total)
    if errors:
        print(f"\n{len(errors)} replications raised (left out of the rates above); the first:\n{errors[0]}")
    print("\nruntime (CPU seconds per scenario group):",
          ", ".join(f"{g} {s:.0f}" for g, s in cpu.items() if s), f"; wall {wall:.0f} s")
    return 1 if errors else 0


def report(total: sw.Tally) -> None:
    print(f"\n{'line':<92} {'rate':>6}  {'95% interval':>15} {'n':>5}  target")
    for target in sw.targets():
        n = total.n(target.key)
        if n == 0:
            continue
        rate = total.rate(target.key)
        lo, hi = total.interval(target.key)
        bound = "" if not target.op else (
            f"{target.op} {target.bound:.0%}" if target.op != "~" else f"{target.bound:.0%} ± 5%")
        holds = target.holds(rate)
        mark = "" if holds is None else ("ok" if holds else "FAILS")
        print(f"{target.text:<92} {rate:6.1%}  [{lo:5.1%}, {hi:5.1%}] {n:5d}  {bound:<10} {mark}")
    _report_flags(total)
    lines = []
    for d in sw.DRIVERS:
        stated = total.values.get(f"s7.{d}.stated_mde", [])
        finite = sorted(x for x in stated if x == x and abs(x) != float("inf"))
        if finite:
            mid = finite[len(finite) // 2]
            lines.append(f"  {d}: median stated MDE {mid:.3g} (finite in {len(finite)} of {len(stated)} plans)")
    if lines:
        print("\nstated smallest detectable change at the final review (effect scale of the verdict table):")
        print("\n".join(lines))
    ideal = sw.ideal_detection().pivot_table(index=["driver", "spread"], columns=["weeks", "alpha"],
                                             values="power")
    print("\nceiling for scenario 4 (exact one-sided test of a rep at 60% against a known peer rate; alpha per "
          "metric;\nspread 'known': the test also allows for the peers' natural between-rep spread, as it must):")
    print(ideal.map(lambda x: f"{x:.0%}").to_string())
    for weeks in (12, 26):
        need = sw.ideal_density(weeks=weeks)
        print(f"  opportunities created found 90% of the time by that test in {weeks} weeks at 1%: from "
              f"{need['known']:.1f} a week with the spread known ({need['none']:.1f} without); "
              f"the world has {sw.WorldParams().opps_per_week:g}")


def _report_flags(total: sw.Tally) -> None:
    """The lines of issue 22's one decision path (F1, F2), in the same format."""
    for key, text, op, bound in FLAG_TARGETS:
        n = total.n(key)
        if n == 0:
            continue
        rate = total.rate(key)
        lo, hi = total.interval(key)
        mark = "" if not op else ("ok" if rate <= bound else "FAILS")
        target = f"{op} {bound:.0%}" if op else ""
        print(f"{text:<92} {rate:6.1%}  [{lo:5.1%}, {hi:5.1%}] {n:5d}  {target:<10} {mark}")


if __name__ == "__main__":
    raise SystemExit(main())
