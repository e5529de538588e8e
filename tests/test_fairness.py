"""Fairness promise of issue 11, fast version: fixed seeds, small replication counts, loose bounds.

The worlds come from ``tests/simworld.py`` (an independent generator, never pipnb's demo), and pipnb is
driven only through its public API. Each bound is the issue's target loosened for a small sample: a rule that
meets the target passes with high probability (given as P(fail | target met) for independent replications),
a rule far from it fails. ``benchmarks/bench_fairness.py`` measures the same scenarios with many replications
and Wilson intervals. Several of these tests fail on today's decision rules (issue 11): they pin what the
fixed rules must achieve.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import simworld as sw

import pipnb as pn

pytestmark = pytest.mark.slow(97)       # seconds on a quiet machine: scheduled first (conftest.py)

N_TEAMS = 24                        # all-equal teams: 240 reps scanned, 24 noise-selected plans
PLANTED_SEEDS = {"emails": 3, "opps": 2, "first_meetings": 2, "followup": 2, "touches": 2}
POWER_PLANS = 10


def _merge(tallies) -> sw.Tally:
    total = sw.Tally()
    for t in tallies:
        total.merge(t)
    return total


@pytest.fixture(scope="module")
def all_equal() -> sw.Tally:
    return _merge(sw.scenario_all_equal(1000 + i) for i in range(N_TEAMS))


@pytest.fixture(scope="module")
def planted() -> sw.Tally:
    """A rep at 60% of peers on one driver, forced onto a plan: unchanged, and back at peer level."""
    return _merge(sw.scenario_planted(2000 + 100 * k + i, driver, windows=(), mde=False)
                  for k, (driver, n) in enumerate(PLANTED_SEEDS.items()) for i in range(n))


# -- the world itself ------------------------------------------------------------------------------
def test_world_is_canonical_and_deterministic(tmp_path):
    world = sw.generate(7)
    assert world.data.fingerprint() == sw.generate(7).data.fingerprint()
    assert world.data.fingerprint() != sw.generate(8).data.fingerprint()
    loaded = pn.load(world.data.write(tmp_path / "world"))      # passes pipnb's own validation
    for table in ("reps", "opportunities", "activities"):
        assert len(getattr(loaded, table)) == len(getattr(world.data, table))
    card = pn.scorecard(loaded, as_of=world.week_end(40), weeks=12, win_rate_basis="all")
    same = sw.scan(world)
    pd.testing.assert_series_equal(card["numerator"], same["numerator"], check_exact=False)


def test_world_looks_like_the_articles_funnel():
    card = sw.scan(sw.generate(11), weeks=26)
    median = card.groupby("metric")["value"].median()
    assert 50 <= median["emails_per_week"] <= 70
    assert 2.5 <= median["opps_created_per_week"] <= 3.5
    assert 1.6 <= median["first_meetings_per_week"] <= 2.4
    assert 0.35 <= median["followup_meeting_ratio"] <= 0.55
    assert 0.10 <= median["win_rate"] <= 0.20                  # won / all opportunities created
    assert 3.0 <= median["avg_days_between_touches"] <= 6.5


def test_planted_rep_is_low_and_shares_its_history():
    low = sw.generate(5, changes=sw.low_rep("emails"))
    back = sw.generate(5, changes=sw.low_rep("emails", after=1.0))
    card = sw.scan(low, weeks=26).query("metric == 'emails_per_week'").set_index("rep_id")
    assert 0.45 <= card.loc["R01", "value"] / card["value"].drop("R01").median() <= 0.75
    cut = low.week_start(sw.PLAN_START_WEEK)

    def history(world, rep_filter):
        acts = world.data.activities
        keep = acts[rep_filter(acts)].drop(columns="activity_id")
        return keep.reset_index(drop=True)

    pd.testing.assert_frame_equal(history(low, lambda a: a["occurred_at"] < cut),
                                  history(back, lambda a: a["occurred_at"] < cut))
    pd.testing.assert_frame_equal(history(low, lambda a: a["rep_id"] != "R01"),
                                  history(back, lambda a: a["rep_id"] != "R01"))
    assert np.allclose(back.truth["emails"][0, sw.PLAN_START_WEEK - 1:], 1.0)


def test_reviews_on_the_full_world_equal_reviews_on_the_data_as_it_stood():
    """The harness computes one weekly panel on all 52 weeks and reviews every look on it; that is only
    fair if a review never peeks past its own last day, so compare with the data cut at each look."""
    world = sw.generate(9, changes=sw.low_rep("emails", after=0.9))
    run = sw.run_plan(world, "R01")
    columns = ["metric", "verdict", "estimate", "mde"]
    for look, week, stage in ((1, 43, "checkpoint-1"), ("final", 52, "final")):
        as_it_stood = pn.review(sw.truncate(world, week), run.plan, look)
        full = run.verdicts[run.verdicts["stage"] == stage].reset_index(drop=True)
        pd.testing.assert_frame_equal(as_it_stood.verdicts[columns].reset_index(drop=True), full[columns])
    assert as_it_stood.recommendation == run.recommendation
    assert as_it_stood.table["status"].tolist() == run.final_table["status"].tolist()


# -- 1. selection: an all-equal team ----------------------------------------------------------------
def test_all_equal_team_flags_few_reps(all_equal):
    # target <= 5% of reps on any plan metric; <= 10% of 240 reps (P(fail | 5%) < 0.1% if independent)
    assert all_equal.rate("s1.any") <= 0.10, _line(all_equal, "s1.any")


# -- 2. the average rep put on a plan by noise ------------------------------------------------------
def test_noise_selected_rep_is_not_recommended_for_consequences(all_equal):
    # target <= 2%; at most 3 of 24 plans (P(fail | 2%) ~ 0.1%)
    assert all_equal.rate("s2.consequences") <= 3 / N_TEAMS, _line(all_equal, "s2.consequences")


def test_noise_selected_rep_is_rarely_improved_or_worse_at_any_look(all_equal):
    # target <= 5% each; at most 4 of 24 plans (P(fail | 5%) ~ 0.7%)
    assert all_equal.rate("s2.improved_any_look") <= 4 / N_TEAMS, _line(all_equal, "s2.improved_any_look")
    assert all_equal.rate("s2.worse_any_look") <= 4 / N_TEAMS, _line(all_equal, "s2.worse_any_look")


# -- 3. a rep who truly returns to the peer level at the plan start ---------------------------------
def test_recovered_rep_is_not_recommended_for_consequences(planted):
    # target <= 2% consequences, >= 98% complete or extend; at most 1 of 11 plans (P(fail | 2%) ~ 2%)
    n = planted.n("s3.all.consequences")
    assert planted.rate("s3.all.consequences") <= 1 / n, _line(planted, "s3.all.consequences")
    assert planted.rate("s3.all.complete_or_extend") >= 1 - 1 / n, _line(planted, "s3.all.complete_or_extend")


# -- 4. planted 60% drivers are found --------------------------------------------------------------
def test_planted_low_emails_are_found_in_12_weeks():
    # target >= 90% at 12 weeks; at least 7 of 10 (P(fail | 90%) ~ 1.3%)
    found = _merge(sw.scenario_planted(3000 + i, "emails", windows=(12,), plans=False) for i in range(10))
    assert found.rate("s4.emails.w12") >= 0.7, _line(found, "s4.emails.w12")


def test_planted_low_opportunities_are_found_in_26_weeks():
    # The issue asks >= 90% at 12 weeks, but at ~3 opportunities a week that is beyond even an ideal test:
    # an exact Poisson test against a known peer rate (36 vs 21.6 expected) has 80% power at a 5% level and
    # 59% at the 1% a metric that keeps an all-equal team's any-metric flag rate near 5% (the benchmark
    # prints this ceiling, and the density that 90% would need: the test below).
    # That ideal knows the peer rate and ignores the world's real 10% spread between
    # reps, which a fair rule must allow for: over 26 weeks the expected z of a 60% rep is then about -2.6
    # against a limit of -2.4, so about 55% are found (the benchmark measures it). At least 7 of 20
    # (P(fail | 55%) ~ 2%).
    found = _merge(sw.scenario_planted(3100 + i, "opps", windows=(26,), plans=False) for i in range(20))
    assert found.rate("s4.opps.w26") >= 0.35, _line(found, "s4.opps.w26")


def test_a_90_percent_target_for_opportunities_needs_a_denser_driver_than_three_a_week():
    # The density at which the ideal exact test (1% a metric, 12 weeks) reaches 90%, checked against a
    # normal approximation of the same Poisson test: m0 - m1 = z_0.99 sqrt(m0) + z_0.9 sqrt(m1), m1 = 0.6 m0,
    # m0 = rate x 12 weeks
    from statistics import NormalDist
    need = sw.ideal_density()
    za, zb = NormalDist().inv_cdf(0.99), NormalDist().inv_cdf(0.9)
    approx = ((za + zb * 0.6 ** 0.5) / 0.4) ** 2 / 12
    assert abs(need["none"] - approx) / approx < 0.1, (need, approx)
    assert need["known"] > need["none"] > 3 * sw.WorldParams().opps_per_week / 2
    power = sw.ideal_detection(replace(sw.WorldParams(), opps_per_week=need["known"]), weeks=(12,),
                               alphas=(0.01,))
    assert power.query("driver == 'opps' and spread == 'known'")["power"].iloc[0] >= 0.9


# -- 5. a truly low rep who does not change --------------------------------------------------------
def test_unchanged_low_rep_does_not_complete_a_plan_that_holds_it_to_the_shortfall(planted):
    # target <= 5% complete where the diagnosis named the driver, so the plan holds the rep to it: none of these
    # plans (the dense drivers are named in nearly every plan). A sparse shortfall the scan does not name (first
    # meetings, opportunities, the follow-up ratio: named in about 8% of plans) is not held against the rep, and
    # such a plan completes when its focus is met: 58% of 36 in the benchmark (bench_fairness.py, scenario 5),
    # which prints both lines; docs/statistics.md says so.
    found = planted.n("s5.all.complete_found")
    assert found >= 5 and planted.rate("s5.all.complete_found") == 0, _line(planted, "s5.all.complete_found")
    assert planted.n("s5.all.complete_unseen") + found == planted.n("s5.all.complete")


def test_unchanged_low_emails_rep_gets_consequences(planted):
    # target >= 80% where the driver is dense (emails); at least 2 of 3
    assert planted.rate("s5.emails.consequences") >= 2 / 3, _line(planted, "s5.emails.consequences")


# -- 6. power at the final review -------------------------------------------------------------------
def test_emails_up_half_is_improved_at_the_final_review():
    # target >= 90%; at least 7 of 10 (P(fail | 90%) ~ 1.3%)
    up = _merge(sw.scenario_emails_up(4000 + i, factor=1.5) for i in range(POWER_PLANS))
    assert up.rate("s6.emails_x1.5.improved_final") >= 0.7, _line(up, "s6.emails_x1.5.improved_final")


# -- 7. the stated smallest detectable change means what it says ---------------------------------------
def test_a_true_change_equal_to_the_stated_detectable_change_is_found_about_80_percent_of_the_time():
    # target 80% +- 5% (benchmark); here 12 plans, between 6 and 11 found (P(fail | 80%) ~ 7%, these seeds
    # pass): a stated change that is far too large (~100% found) or too small (~50%) fails
    moved = _merge(sw.scenario_mde(5000 + i, "emails") for i in range(12))
    rate = moved.rate("s7.emails.improved_final")
    assert moved.n("s7.emails.improved_final") == 12
    assert 6 / 12 <= rate <= 11 / 12, _line(moved, "s7.emails.improved_final")


def _line(tally: sw.Tally, key: str) -> str:
    k, n = tally.counts.get(key, (0, 0))
    lo, hi = tally.interval(key)
    return f"{key}: {k} of {n} ({tally.rate(key):.0%}, 95% interval {lo:.0%}-{hi:.0%})"
