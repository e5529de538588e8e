"""Benchmark: one rep's final review with placebo refits over a team of 40 peers.

Budget: under 1 second on the 2-core reference machine. Run::

    python benchmarks/bench_stats.py [--repeat 20]

It builds a synthetic team (41 reps, 52 weeks, six panel metrics and a per-gap table), then times
:func:`pipnb.stats.assess` at the final review on all seven plan metrics: every metric is refitted
41 times (the rep plus each peer as a placebo) inside that call.
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
    print(verdicts[["metric", "estimate", "ci_low", "ci_high", "p_adjusted", "placebo_rank", "verdict"]]
          .to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print("within budget" if median < BUDGET_SECONDS else "OVER BUDGET")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed runs after one warm-up")
    main(parser.parse_args().repeat)
