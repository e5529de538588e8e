"""The untidy worlds of issue 23 (``tests/simworld.py``): each knob does what its docstring says, and the
defaults leave the tidy world untouched, draw for draw."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import simworld as sw

P = sw.WorldParams()


def _weekly(world: sw.World, frame: pd.DataFrame, column: str) -> pd.DataFrame:
    week = (frame[column] - pd.Timestamp(world.params.start)).dt.days // 7 + 1
    return frame.assign(week=week.to_numpy())


def test_untidy_knobs_at_their_defaults_leave_every_draw_of_the_tidy_world():
    tidy = sw.generate(7, changes=sw.low_rep("emails"))
    again = sw.generate(7, replace(P, nb_alpha=0.0, ramping_share=0.0, accounts=False), sw.low_rep("emails"))
    assert tidy.data.fingerprint() == again.data.fingerprint()
    # the accounts come from their own stream: the tables without them are the tidy tables
    with_accounts = sw.generate(7, replace(P, accounts=True), sw.low_rep("emails"))
    for table in ("opportunities", "activities"):
        pd.testing.assert_frame_equal(getattr(with_accounts.data, table).drop(columns="account_id"),
                                      getattr(tidy.data, table))


def test_accounts_name_each_reps_book_and_meetings_carry_their_opportunitys_account():
    world = sw.generate(3, replace(P, accounts=True))
    opps, acts = world.data.opportunities, world.data.activities
    assert opps["account_id"].notna().all() and acts["account_id"].notna().all()
    assert (opps["account_id"].str[:3] == opps["rep_id"]).all()
    assert (acts["account_id"].str[:3] == acts["rep_id"]).all()
    assert opps.groupby("rep_id")["account_id"].nunique().between(35, 40).all()     # ~130 opps over 40 accounts
    on_opps = acts[acts["opp_id"].notna()].merge(opps[["opp_id", "account_id"]], on="opp_id", suffixes=("", "_o"))
    assert (on_opps["account_id"] == on_opps["account_id_o"]).all()
    assert sw.generate(3).data.opportunities.columns.tolist() == opps.drop(columns="account_id").columns.tolist()


def test_territory_shrink_cuts_opportunities_and_the_book_but_not_behaviour():
    params = replace(P, accounts=True)
    base = sw.generate(5, params, focal=0)          # the same rep at the peer level, no change
    shrunk = sw.generate(5, params, sw.territory_shrink())
    first = sw.DIAGNOSIS_FIRST_WEEK
    opps = _weekly(shrunk, shrunk.data.opportunities, "created_at")
    mine = opps[(opps["rep_id"] == "R01") & (opps["week"] >= first)]
    assert mine["account_id"].str[-3:].astype(int).max() <= 24              # 60% of 40 accounts
    before = _weekly(base, base.data.opportunities, "created_at")
    before = before[(before["rep_id"] == "R01") & (before["week"] >= first)]
    assert 0.4 <= len(mine) / len(before) <= 0.8
    emails = _weekly(shrunk, shrunk.data.activities.query("kind == 'email'"), "occurred_at")
    emails_base = _weekly(base, base.data.activities.query("kind == 'email'"), "occurred_at")
    late = emails[(emails["rep_id"] == "R01") & (emails["week"] >= first)]
    assert late["account_id"].str[-3:].astype(int).max() <= 24
    assert len(late) == len(emails_base[(emails_base["rep_id"] == "R01") & (emails_base["week"] >= first)])
    for driver in ("emails", "first_meetings", "followup", "touches"):
        assert np.array_equal(shrunk.truth[driver], base.truth[driver])
    assert np.allclose(shrunk.truth["opps"][0, first - 1:], 0.6)


def test_negative_binomial_weeks_have_the_stated_variance():
    alpha = 0.5
    world = sw.generate(11, replace(P, n_reps=60, nb_alpha=alpha, rep_cv=0.0, week_sd=0.0, team_week_sd=0.0))
    emails = _weekly(world, world.data.activities.query("kind == 'email'"), "occurred_at")
    counts = emails.groupby(["rep_id", "week"]).size()
    mu = P.emails_per_week
    assert abs(counts.mean() - mu) < 2
    # variance mu + alpha mu^2 = 1860; the sample variance of 3120 NB weeks has a relative sd of ~5%
    assert 0.85 <= counts.var() / (mu + alpha * mu ** 2) <= 1.15


def test_ar1_world_has_the_stated_lag_one_correlation():
    world = sw.generate(2, replace(P, n_reps=20, rep_cv=0.0, week_sd=0.2, week_rho=0.5, team_week_sd=0.0,
                                   emails_per_week=300.0, opps_per_week=0.5))
    emails = _weekly(world, world.data.activities.query("kind == 'email'"), "occurred_at")
    counts = emails.groupby(["rep_id", "week"]).size().unstack()
    logs = np.log(counts.to_numpy())
    lag1 = np.mean([np.corrcoef(row[:-1], row[1:])[0, 1] for row in logs])
    # 0.5, attenuated by Poisson noise (var of a log count ~1/300 beside the factor's 0.04: x0.92) and the
    # small-sample bias of 52 weeks (~ -0.04): about 0.42, with an sd of ~0.03 over 20 reps
    assert 0.33 <= lag1 <= 0.55


def test_team_dip_moves_every_rep_and_leaves_the_focal_choice_to_the_caller():
    dip = sw.team_dip(n_reps=10)
    world = sw.generate(4, P, [*dip, *sw.low_rep("emails", after=1.0)])
    assert world.focal == 0                      # the first non-team change names it
    weeks = slice(sw.PLAN_START_WEEK + 5, sw.PLAN_START_WEEK + 11)         # plan weeks 7-12 (0-based slice)
    assert np.allclose(world.truth["emails"][0, weeks], 0.6)
    assert np.allclose(world.truth["opps"][:, weeks] / world.truth["opps"][:, [sw.PLAN_START_WEEK]], 0.6)
    assert np.allclose(world.truth["emails"][1:, : sw.PLAN_START_WEEK + 5],
                       world.truth["emails"][1:, [0]])
    assert sw.generate(4, P, dip).focal is None


def test_ramping_reps_are_hired_recently_and_ramp_from_30_percent():
    params = replace(P, ramping_share=0.5)
    world = sw.generate(8, params, sw.low_rep("emails"))
    hires = sw.ramp_hires(params, 0)
    assert sorted(hires) == [5, 6, 7, 8, 9] and min(hires.values()) == 21 and max(hires.values()) == 40
    reps = world.data.reps.set_index("rep_id")
    for r, week in hires.items():
        assert reps.loc[world.rep_id(r), "hire_date"] == world.week_start(week)
        assert np.isclose(world.truth["opps"][r, week - 1] / world.truth["opps"][r, -1],
                          0.3 if week + 26 <= 52 else 0.3 / (0.3 + 0.7 * (52 - week) / 26))
    acts = world.data.activities.merge(world.data.reps[["rep_id", "hire_date"]], on="rep_id")
    assert (acts["occurred_at"] >= acts["hire_date"]).all()
    assert reps.loc["R01", "hire_date"] < world.week_start(1)
    assert sw.ramp_hires(replace(P, ramping_share=0.5), focal=9).keys() == {4, 5, 6, 7, 8}


def test_small_teams_and_very_low_volume_are_plain_parameters():
    for n in (5, 8):
        world = sw.generate(1, replace(P, n_reps=n, opps_per_week=0.3), sw.low_rep("emails"))
        card = sw.scan(world)
        assert card["rep_id"].nunique() == n
        assert len(world.data.opportunities) < 0.6 * 52 * n


# -- issue 23's promises, fast version: fixed seeds, small n, loose bounds ---------------------------
# benchmarks/bench_fairness.py --worlds all measures the same with Wilson intervals; each bound below
# is the target loosened for a small sample, with P(fail | target met) for independent draws.
FLAG_TEAMS = 8
FLAG_WORLDS = ("ar1", "nb", "small", "ramping", "lowvol")


@pytest.mark.parametrize("name", FLAG_WORLDS)
def test_an_all_equal_team_in_an_untidy_world_flags_few_reps(name):
    # target <= 5% of (established) reps flagged on any plan metric; here <= 12.5% of ~50-80 reps
    # (P(fail | 5%) < 1% for 80 reps, ~3% for the 52 reps of the small teams)
    tally = sw.Tally()
    spec = sw.WORLDS[name]
    for i in range(FLAG_TEAMS):
        params = replace(spec.world_params(i), rep_cv=0.0)
        world = sw.generate(23_000 + i, params)
        recent = {world.rep_id(r) for r in sw.ramp_hires(params, None)}
        flags = sw.shortfalls(sw.scan(world))
        flags = flags[~flags.index.isin(recent)]
        tally.add("s1.any", int(flags.any(axis=1).sum()), len(flags))
    assert tally.rate("s1.any") <= 0.125, _line(tally, "s1.any")


DIP_PLANS = 8


def test_a_team_wide_dip_does_not_make_average_reps_not_met():
    # target <= 10% of noise-selected average reps with a 'not met' / 'behind plan' status at the final;
    # at most 2 of 8 (P(fail | 10%) ~ 4%; P(pass | 30%) ~ 55%, so today's rules fail often, not always)
    tally = sw.Tally()
    params = replace(P, rep_cv=0.0)
    for i in range(DIP_PLANS):
        world = sw.generate(23_100 + i, params, sw.team_dip(n_reps=params.n_reps))
        run = sw.run_plan(world, sw.select_worst(sw.scan(world)), every_look=False)
        tally.add("not_met", sw.not_met(run.final_table))
    assert tally.rate("not_met") <= 2 / DIP_PLANS, _line(tally, "not_met")


TERRITORY_PLANS = 6


def test_a_shrunk_territory_does_not_lead_to_consequences():
    # target <= 2%; at most 1 of 6 plans (P(fail | 2%) ~ 0.6%; P(pass | 32%) ~ 38%)
    tally = sw.Tally()
    params = replace(P, accounts=True)
    for i in range(TERRITORY_PLANS):
        world = sw.generate(23_200 + i, params, sw.territory_shrink(0), focal=0)
        run = sw.run_plan(world, world.rep_id(0), every_look=False)
        tally.add("consequences", run.recommendation == "consequences")
    assert tally.rate("consequences") <= 1 / TERRITORY_PLANS, _line(tally, "consequences")


def _line(tally: sw.Tally, key: str) -> str:
    k, n = tally.counts.get(key, (0, 0))
    lo, hi = tally.interval(key)
    return f"{key}: {k} of {n} ({tally.rate(key):.0%}, 95% interval {lo:.0%}-{hi:.0%})"
