"""Benchmark: one rep's final review with placebo refits over a team of 40 peers.

Budget: under 1 second on the 2-core reference machine. Run::

    python benchmarks/bench_stats.py [--repeat 20]

It builds a synthetic team (41 reps, 52 weeks, six panel metrics and a per-gap table), then times
:func:`pipnb.stats.assess` at the final review on all seven plan metrics: every metric is refitted
41 times (the rep plus each peer as a placebo) inside that call.

``--sequential N`` instead measures the verdicts of N plans reviewed at plan weeks 3, 6, 9 and 12 (issue 23),
on teams from a generator written here: weekly emails and first meetings Poisson around a rate times a
log-normal AR(1) weekly factor (``--rho``, ``--sd``), follow-ups binomial (45%) of the week's first meetings,
``--reps`` team sizes in turn. The rep lowest on the diagnosis window (emails and first meetings, standardized)
is put on a plan, unchanged (``--factor 1``) or with emails times ``--factor`` from the plan start. It prints
"worse" / "improved" at any look and "improved" on emails at the final review, with Wilson 95% intervals and n::

    nice python benchmarks/bench_stats.py --sequential 200 --rho 0.5 --sd 0.2            # about 7 minutes
    nice python benchmarks/bench_stats.py --sequential 200 --rho 0.3 --sd 0.1 --reps 5,6,7,8
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from pipnb import stats

N_PEERS = 40
N_WEEKS = 52
WEEKS = pd.date_range("2024-01-01", periods=N_WEEKS, freq="W-MON")
PLAN_WEEK = 39                                  # baseline weeks 15-26, diagnosis 27-38, plan 39-51
PLAN_START = WEEKS[PLAN_WEEK]
AS_OF = WEEKS[-1] + pd.Timedelta(days=6)
BUDGET_SECONDS = 1.0
METRICS = ["emails_per_week", "calls_per_week", "first_meetings_per_week", "opps_created_per_week",
           "followup_meeting_ratio", "win_rate", "avg_days_between_touches"]


def team_panel(rng: np.random.Generator, n_reps: int) -> pd.DataFrame:
    """A weekly panel of negative-binomial counts and pooled-count ratios for ``n_reps`` reps."""
    days = stats.working_days(WEEKS)

    def counts(mean: float) -> np.ndarray:
        rate = mean * rng.lognormal(0.0, 0.3, (n_reps, 1))
        return rng.poisson(rate / 5 * days * rng.gamma(20.0, 1 / 20.0, (n_reps, N_WEEKS))).astype(float)

    first, closed = counts(4), counts(3)
    second = rng.binomial(first.astype(int), 0.4).astype(float)
    won = rng.binomial(closed.astype(int), 0.25).astype(float)
    ones = np.ones((n_reps, N_WEEKS))
    arrays = {"emails_per_week": (counts(60), ones), "calls_per_week": (counts(25), ones),
              "first_meetings_per_week": (first, ones), "opps_created_per_week": (counts(3), ones),
              "followup_meeting_ratio": (second, first), "win_rate": (won, closed)}
    reps = np.repeat([f"R{i:02d}" for i in range(n_reps)], N_WEEKS)
    frames = [pd.DataFrame({"rep_id": reps, "week": np.tile(WEEKS, n_reps), "metric": metric,
                            "numerator": num.ravel(), "denominator": den.ravel(),
                            "value": (num / np.where(den > 0, den, np.nan)).ravel()})
              for metric, (num, den) in arrays.items()]
    return pd.concat(frames, ignore_index=True)


def team_gaps(rng: np.random.Generator, n_reps: int, opps_per_rep: int = 40) -> pd.DataFrame:
    """Gaps between touches: each opportunity is touched every ~6 days; its last gap is open at AS_OF."""
    start, span = WEEKS[0], (AS_OF - WEEKS[0]) / pd.Timedelta(days=1)
    n_opps = n_reps * opps_per_rep
    touches = rng.uniform(0, span - 30, (n_opps, 1)) + np.cumsum(rng.exponential(6.0, (n_opps, 80)), axis=1)
    seen = touches < span
    closed = seen[:, 1:]                                     # a gap closes at every touch after the first
    last = np.where(seen, touches, -np.inf).max(axis=1)
    rep_of = np.repeat([f"R{i:02d}" for i in range(n_reps)], opps_per_rep)
    opp_of = np.array([f"O{i}" for i in range(n_opps)])
    row, col = np.nonzero(closed)
    done = pd.DataFrame({"rep_id": rep_of[row], "opp_id": opp_of[row],
                         "ended_at": start + pd.to_timedelta(touches[row, col + 1], unit="D"),
                         "days": touches[row, col + 1] - touches[row, col], "censored": False})
    has = np.isfinite(last)
    still_open = pd.DataFrame({"rep_id": rep_of[has], "opp_id": opp_of[has], "ended_at": AS_OF,
                               "days": span - last[has], "censored": True})
    return pd.concat([done, still_open], ignore_index=True)


def run_once(panel: pd.DataFrame, gaps: pd.DataFrame, peers: list[str]) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    verdicts = stats.assess(panel, "R00", metrics=METRICS, plan_start=PLAN_START, as_of=AS_OF, peers=peers,
                            gaps=gaps, targets={"emails_per_week": 80, "followup_meeting_ratio": 0.5})
    return time.perf_counter() - start, verdicts


def main(repeat: int = 20) -> None:
    rng = np.random.default_rng(7)
    n_reps = N_PEERS + 1
    panel, gaps = team_panel(rng, n_reps), team_gaps(rng, n_reps)
    peers = [f"R{i:02d}" for i in range(1, n_reps)]
    run_once(panel, gaps, peers)                                           # warm-up (imports, caches)
    timings, verdicts = [], None
    for _ in range(repeat):
        seconds, verdicts = run_once(panel, gaps, peers)
        timings.append(seconds)
    median, worst = statistics.median(timings), max(timings)
    print(f"team: 1 rep + {N_PEERS} peers, {N_WEEKS} weeks; "
          f"panel {len(panel):,} rows, gaps {len(gaps):,} rows")
    print(f"final review: {len(METRICS)} plan metrics x {n_reps} fits each (rep + {N_PEERS} placebo refits)")
    print(f"assess(): median {median * 1000:.0f} ms, min {min(timings) * 1000:.0f} ms, "
          f"max {worst * 1000:.0f} ms over {repeat} runs (budget {BUDGET_SECONDS * 1000:.0f} ms)")
    print(verdicts[["metric", "estimate", "ci_low", "ci_high", "z", "boundary", "inflation", "verdict"]]
          .to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print("within budget" if median < BUDGET_SECONDS else "OVER BUDGET")


# -- sequential reviews of a noise-selected rep (issue 23) ------------------------------------------------
SEQ_PLAN = 40                                   # baseline weeks 16-27, diagnosis 28-39, plan 40-51
SEQ_LOOKS = (3, 6, 9, 12)
SEQ_METRICS = ["emails_per_week", "first_meetings_per_week", "followup_meeting_ratio"]


def _ar1_factor(rng: np.random.Generator, n: int, sd: float, rho: float) -> np.ndarray:
    x = np.zeros((n, N_WEEKS))
    x[:, 0] = rng.normal(0.0, sd, n)
    for t in range(1, N_WEEKS):
        x[:, t] = rho * x[:, t - 1] + sd * np.sqrt(1 - rho ** 2) * rng.normal(size=n)
    return np.exp(x - sd ** 2 / 2)


def _seq_panel(rng: np.random.Generator, emails: np.ndarray, first: np.ndarray) -> tuple[pd.DataFrame, dict]:
    em, fm = rng.poisson(emails).astype(float), rng.poisson(first).astype(float)
    fu = rng.binomial(fm.astype(int), 0.45).astype(float)
    n, ones = em.shape[0], np.ones_like(em)
    arrays = {"emails_per_week": (em, ones), "first_meetings_per_week": (fm, ones), "followup_meeting_ratio": (fu, fm)}
    frames = [pd.DataFrame({"rep_id": np.repeat([f"R{i:02d}" for i in range(n)], N_WEEKS),
                            "week": np.tile(WEEKS, n), "metric": metric, "numerator": num.ravel(),
                            "denominator": den.ravel(), "value": (num / np.where(den > 0, den, np.nan)).ravel()})
              for metric, (num, den) in arrays.items()]
    return pd.concat(frames, ignore_index=True), {"em": em, "fm": fm}


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> str:
    p, d = k / n, 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return f"{p:.3f} [{centre - half:.3f}-{centre + half:.3f}] n={n}"


def sequential(n_plans: int, *, rho: float, sd: float, reps: list[int], factor: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    fractions = stats.information_fractions(SEQ_LOOKS, 12)
    worse = improved = improved_final = 0
    for i in range(n_plans):
        n = reps[i % len(reps)]
        emails, first = 60 * _ar1_factor(rng, n, sd, rho), 2.0 * _ar1_factor(rng, n, sd, rho)
        panel, seen = _seq_panel(rng, emails, first)
        diagnosis = slice(SEQ_PLAN - 12, SEQ_PLAN)
        totals = [x[:, diagnosis].sum(1) for x in seen.values()]
        rep = int(np.argmin(sum((t - t.mean()) / (t.std() + 1e-9) for t in totals)))
        if factor != 1.0:
            emails[rep, SEQ_PLAN:] *= factor
            panel, _ = _seq_panel(rng, emails, first)
        peers = [f"R{j:02d}" for j in range(n) if j != rep]
        any_worse = any_improved = False
        for look, week in enumerate(SEQ_LOOKS):
            as_of = WEEKS[SEQ_PLAN + week - 1] + pd.Timedelta(days=6)
            v = stats.assess(panel, f"R{rep:02d}", metrics=SEQ_METRICS, plan_start=WEEKS[SEQ_PLAN], as_of=as_of,
                             peers=peers, fractions=fractions, look=look, diagnosis_start=WEEKS[SEQ_PLAN - 12],
                             diagnosis_end=WEEKS[SEQ_PLAN - 1] + pd.Timedelta(days=6))
            any_worse |= bool(v["verdict"].eq(stats.WORSE).any())
            any_improved |= bool(v["verdict"].eq(stats.IMPROVED).any())
        improved_final += bool(v.loc[v["metric"] == "emails_per_week", "verdict"].eq(stats.IMPROVED).any())
        worse += any_worse
        improved += any_improved
    print(f"AR(1) rho {rho}, weekly sd {sd}, teams of {reps}, emails x{factor} from the plan start, seed {seed}")
    print(f"  'worse' at any look     {_wilson(worse, n_plans)}   (promise <= 5% when nothing changed)")
    print(f"  'improved' at any look  {_wilson(improved, n_plans)}   (promise <= 5% when nothing changed)")
    print(f"  'improved' on emails at the final review  {_wilson(improved_final, n_plans)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed runs after one warm-up")
    parser.add_argument("--sequential", type=int, default=0, help="plans to simulate (issue 23's verdict rates)")
    parser.add_argument("--rho", type=float, default=0.5)
    parser.add_argument("--sd", type=float, default=0.2)
    parser.add_argument("--reps", default="10", help="team sizes, used in turn (e.g. 5,6,7,8)")
    parser.add_argument("--factor", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if args.sequential:
        sequential(args.sequential, rho=args.rho, sd=args.sd, reps=[int(r) for r in args.reps.split(",")],
                   factor=args.factor, seed=args.seed)
    else:
        main(args.repeat)
