"""Final reviews judge the final target; intervals match the decisions beside them (issue 22).

The team here comes from a small generator written for these tests (never the demo's, never ``simworld``): eight
reps whose emails are Poisson at a rate the test sets week by week, a few opportunities each, so that a review's
statuses have known answers. The plan is built by hand (no drafting), so the review rules are tested alone.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import stats as sps

import pipnb as pn
from pipnb import sentences, text
from pipnb.plan import Plan
from pipnb.reviews import target_reason
from pipnb.stats import MetricChange
from pipnb.stats.intervals import count_interval, garwood_interval
from pipnb.stats.verdicts import decision_boundaries, decision_range, sequential_holm

START = pd.Timestamp("2025-01-06")          # a Monday: week 1
PLAN_WEEK1 = 25                              # the plan runs weeks 25-36, diagnosed on weeks 13-24


# -- a small generator for these tests --------------------------------------------------------------------
def team(focal_emails, *, peers_emails: float = 60.0, n_reps: int = 8, weeks: int = 36, seed: int = 1
         ) -> pn.SalesData:
    """Eight reps; rep R1's weekly email rate is ``focal_emails(week)`` (1-based), the others ``peers_emails``."""
    rng = np.random.default_rng(seed)
    reps = pd.DataFrame({"rep_id": [f"R{i + 1}" for i in range(n_reps)],
                         "rep_name": [f"Rep {i + 1}" for i in range(n_reps)], "team": "T",
                         "hire_date": pd.Timestamp("2020-01-06")})
    acts, opps = [], []
    for r in range(n_reps):
        for w in range(1, weeks + 1):
            monday = START + pd.Timedelta(weeks=w - 1)
            rate = focal_emails(w) if r == 0 else peers_emails
            for _ in range(rng.poisson(rate)):
                acts.append((f"R{r + 1}", "email", monday + pd.Timedelta(days=int(rng.integers(0, 5)), hours=10),
                             None))
            for _ in range(rng.poisson(3)):
                oid = f"O{len(opps) + 1}"
                created = monday + pd.Timedelta(days=int(rng.integers(0, 5)), hours=9)
                closed = created + pd.Timedelta(days=21)
                done = closed < START + pd.Timedelta(weeks=weeks)
                opps.append((oid, f"R{r + 1}", created, ("won" if rng.random() < 0.3 else "lost") if done else "open",
                             closed if done else pd.NaT, 20_000.0))
                acts.append((f"R{r + 1}", "meeting", created + pd.Timedelta(days=2), oid))
    activities = pd.DataFrame(acts, columns=["rep_id", "kind", "occurred_at", "opp_id"])
    activities.insert(0, "activity_id", [f"A{i}" for i in range(len(activities))])
    opportunities = pd.DataFrame(opps, columns=["opp_id", "rep_id", "created_at", "outcome", "closed_at", "amount"])
    return pn.SalesData(reps=reps, opportunities=opportunities, activities=activities, source="test")


def email_plan(*, baseline: float = 40.0, target: float = 60.0) -> Plan:
    glide = [round(baseline + (target - baseline) * w / 12, 6) for w in (3, 6, 9, 12)]
    return Plan(rep_id="R1", rep_name="Rep 1", team="T", status="active",
                start=(START + pd.Timedelta(weeks=PLAN_WEEK1 - 1)).date(), weeks=12, checkpoints=[3, 6, 9],
                diagnosis_window={"start": (START + pd.Timedelta(weeks=12)).date(),
                                  "end": (START + pd.Timedelta(weeks=24, days=-1)).date()},
                data_fingerprint="",
                targets=[{"metric": "emails_per_week", "label": "Emails per week", "direction": "at_least",
                          "baseline": baseline, "target": target, "glide": glide, "focus": True,
                          "rule": "test"}])


def final_review(data: pn.SalesData, plan: Plan):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pn.review(data, plan, "final")


def plan_rate(before: float, plan: float, last: float):
    """40 a week before the plan, ``plan`` in plan weeks 1-9, ``last`` in plan weeks 10-12."""
    return lambda w: before if w < PLAN_WEEK1 else (plan if w < PLAN_WEEK1 + 9 else last)


# -- exact count intervals --------------------------------------------------------------------------------
def _exact_upper(k: int) -> float:
    """The Poisson mean whose P(X <= k) is 2.5%, solved directly (independent of the chi-square identity)."""
    return optimize.brentq(lambda mu: sps.poisson.cdf(k, mu) - 0.025, 1e-9, 100 + 10 * k)


@pytest.mark.parametrize("k", [0, 1, 3, 17])
def test_garwood_limits_are_the_exact_poisson_limits(k):
    low, high = garwood_interval(k)
    assert high == pytest.approx(_exact_upper(k), rel=1e-6)
    if k:
        assert low == pytest.approx(optimize.brentq(lambda mu: sps.poisson.sf(k - 1, mu) - 0.025, 1e-9, 100),
                                    rel=1e-6)


def test_weeks_without_events_are_never_a_zero_width_interval():
    mean, low, high = count_interval(np.zeros(12))
    assert (mean, low) == (0.0, 0.0) and high == pytest.approx(3.689 / 12, abs=1e-3)     # 0.31 a week
    rng = np.random.default_rng(3)
    for _ in range(200):
        weeks = rng.poisson(rng.uniform(0, 2), size=rng.integers(1, 13))
        mean, low, high = count_interval(weeks)
        assert low <= mean <= high and high > low and high > 0


def test_count_interval_covers_the_true_rate_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    for rate in (0.3, 2.0, 20.0):
        weeks = rng.poisson(rate, size=(2000, 3))
        covered = [lo <= rate <= hi for _, lo, hi in map(count_interval, weeks)]
        assert np.mean(covered) >= 0.94


# -- the decision range ------------------------------------------------------------------------------------
def test_the_decision_range_excludes_no_change_exactly_when_the_verdict_is_improved_or_worse():
    rng = np.random.default_rng(9)
    fractions = [0.25, 0.5, 0.75, 1.0]
    for _ in range(400):
        m = int(rng.integers(1, 5))
        z = rng.normal(0, 2.5, m)
        z[rng.random(m) < 0.15] = np.nan
        look = int(rng.integers(0, 4))
        crossed, _ = sequential_holm(z, fractions=fractions, look=look)
        decided = decision_boundaries(z, fractions=fractions, look=look)
        for zi, c, d in zip(z, crossed, decided):
            if not np.isfinite(zi):
                assert c == 0 and np.isnan(d)
                continue
            change = _change(estimate=math.exp(0.1 * zi), se=0.1)
            low, high = decision_range(change, d)
            excludes = low > 1 or high < 1
            assert excludes == (c != 0), (zi, c, d, low, high)


def _change(estimate: float, se: float) -> MetricChange:
    return MetricChange(metric="emails_per_week", kind="count", effect="rate ratio", model="test",
                        higher_is_better=True, baseline=40.0, baseline_raw=40.0, actual=40.0 * estimate,
                        estimate=estimate, ci_low=math.nan, ci_high=math.nan, p_value=math.nan,
                        z=math.log(estimate) / se, peer_change=1.0, placebo_rank=1.0, placebo_n=7, placebo_p=0.1,
                        mde=1.5, baseline_weeks=12, plan_weeks=12, se=se)


def test_a_bound_that_is_not_zero_never_prints_as_zero():
    assert text._change("rate ratio", 1.3, 1.004, 1.6) == "+30% (+0.4% to +60%)"
    assert "+0.4%" in sentences._signed(1.004, "rate ratio")


# -- final reviews judge the final target ------------------------------------------------------------------
@pytest.fixture(scope="module")
def dropped_at_the_end():
    """On the glide path and beyond it for nine plan weeks (70 a week), then 35 a week over the last three."""
    return final_review(team(plan_rate(40, 70, 35)), email_plan())


def test_final_status_reads_the_last_window_against_the_final_target(dropped_at_the_end):
    row = dropped_at_the_end.table.iloc[0]
    assert row["since_low"] > row["target"] and row["glide_status"] == "met"   # the old rule said "met"
    assert row["window_weeks"] == 3 and row["actual_high"] < 60 and row["status"] == row["final_status"] == "not met"


def test_reasons_table_and_target_line_use_one_rule(dropped_at_the_end):
    rv = dropped_at_the_end
    row = rv.table.iloc[0]
    assert rv.reasons[0].startswith("0 of 1 focus targets reached")
    assert "final target 60.0/wk not met" in rv.reasons[1] and "glide path met" in rv.reasons[1]
    assert text.status_table(rv)["Final target status"].tolist() == ["not met"]
    sentence = sentences.verdict_sentences(rv.verdicts)[0]
    assert "Final target 60.0/wk: not met" in sentence and f"{row['actual']:.1f}/wk" in sentence
    clause = target_reason(next(rv.table.itertuples()))
    assert text.measure_reason(next(rv.table.itertuples())) == f"Emails per week: {clause}."
    assert rv.reasons[1].startswith(f"Emails per week: {clause}; peers")


def test_complete_names_its_evidence(dropped_at_the_end):
    rv = dropped_at_the_end            # final target not met, but over the plan within the margin of peers
    row = rv.table.iloc[0]
    assert row["at_peer_level"] and rv.recommendation == "complete"
    assert "within" in rv.reasons[-1] and "of the peers' median or better" in rv.reasons[-1]
    assert "reached its final target" not in rv.reasons[-1]


def test_consequences_need_the_final_target_and_the_peers_beyond_chance():
    rv = final_review(team(plan_rate(40, 50, 30), peers_emails=80.0), email_plan())
    row = rv.table.iloc[0]
    assert row["status"] == "not met" and row["short_of_peers"] and rv.recommendation == "consequences"
    assert not row["at_peer_level"]


def test_a_met_final_target_completes_and_says_so():
    rv = final_review(team(plan_rate(40, 62, 75)), email_plan())
    row = rv.table.iloc[0]
    assert row["status"] == "met" and row["actual_low"] >= 60 and rv.recommendation == "complete"
    assert "emails per week reached its final target" in rv.reasons[-1]


def test_an_improved_verdict_never_sits_beside_a_range_that_includes_no_change(dropped_at_the_end):
    v = dropped_at_the_end.verdicts.iloc[0]
    assert v["verdict"] == "improved" and v["ci_kind"] == "decision" and v["ci_low"] > 1
    assert v["z"] >= v["ci_z"] == pytest.approx(v["boundary"])      # one focus measure: the one Holm step
    assert "decision range" in sentences.verdict_sentences(dropped_at_the_end.verdicts)[0]
    table = text.verdict_table(dropped_at_the_end)
    assert "Change beyond peers (decision range)" in table and "Change found 80% of the time" in table


def test_too_few_trials_say_how_many_not_no_data():
    row = {"metric": "followup_meeting_ratio", "kind": "ratio", "estimate": math.nan, "plan_weeks": 9,
           "plan_trials": 6.0, "baseline_trials": 29.0, "min_trials": 10.0, "verdict": "too early to tell"}
    reason = sentences._verdict_reason(__import__("types").SimpleNamespace(**row), "too early to tell")
    assert "no data" not in reason and "only 6 in the plan period" in reason and "at least 10" in reason


def test_glide_status_at_a_checkpoint_and_its_target_line():
    data = team(plan_rate(40, 70, 35))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rv = pn.review(data, email_plan(), 2)
    row = rv.table.iloc[0]
    assert row["final_status"] is None and row["status"] == row["glide_status"]
    assert row["target"] == pytest.approx(40 + 20 * 7 / 24)
    sentence = sentences.verdict_sentences(rv.verdicts)[0]
    moved = (f" ({row['adjusted_target']:.1f}/wk with the team's change)"
             if f"{row['adjusted_target']:.1f}" != f"{row['target']:.1f}" else "")
    assert f"Target 60.0/wk by the end of the plan; {row['target']:.1f}/wk expected on average by now{moved}: " \
           f"{row['status']}" in sentence
    assert dt.date.fromisoformat(str(rv.as_of)) == rv.plan.start + dt.timedelta(weeks=6, days=-1)


def test_peers_with_a_change_are_never_called_missing():
    from dataclasses import replace

    from pipnb.stats.assessment import verdict_record

    row = verdict_record(replace(_change(1.2, 0.1), peer_change=0.7, placebo_n=0, placebo_rank=math.nan), "improved")
    sentence = sentences.describe_verdict(row)
    assert "No peers" not in sentence and "Peers over the same weeks: -30%" in sentence
    row = verdict_record(replace(_change(1.2, 0.1), peer_change=math.nan, placebo_n=0), "improved")
    assert "No peers to compare with" in sentences.describe_verdict(row)


# -- leave weeks are not plan weeks (issue 23) ---------------------------------------------------------------
def on_leave(plan_weeks: list[int], *, stage="final") -> tuple[pn.Review, str]:
    """R1 at the peers' 60 emails a week, nearly nothing in the given plan weeks, recorded as a signed leave."""
    away = {PLAN_WEEK1 + w - 1 for w in plan_weeks}
    data = team(lambda w: 0.5 if w in away else 60.0)
    draft = email_plan(baseline=60.0, target=60.0).model_copy(update={"status": "draft"})
    plan = draft.transition("activate", by="Mia Manager", on=draft.start)
    first = plan.start + dt.timedelta(weeks=plan_weeks[0] - 1)
    plan = plan.record_event("leave", on=first, weeks=len(plan_weeks), note="sick leave", by="Mia Manager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rv = pn.review(data, plan, stage)
    return rv, text.review_summary(rv)


def test_the_review_summary_never_counts_leave_weeks_as_plan_weeks():
    rv, summary = on_leave([11])                     # plan week 11 of 12: in the final review's window (weeks 10-12)
    row = rv.table.iloc[0]
    assert (row["window_weeks"], row["plan_weeks"]) == (2, 11)
    assert "judged on the last 2 plan weeks" in summary and "the glide path on all 11 plan weeks" in summary
    assert "1 week of leave set aside, 1 of them in this window" in summary
    assert "calendar weeks 10 to 12 of the plan" in summary
    assert "12 plan weeks" not in summary and "last 3" not in summary
    assert "over the last 2 weeks" in text.measure_reason(next(rv.table.itertuples()))
    assert row["status"] != "not met" and rv.recommendation != "consequences"   # the empty week is set aside


def test_a_checkpoint_summary_counts_the_weeks_worked():
    rv, summary = on_leave([2, 3], stage=2)          # checkpoint 2 (plan week 6), two weeks of leave
    assert rv.table.iloc[0]["plan_weeks"] == 4
    assert "every target is judged on all 4 plan weeks so far" in summary and "2 weeks of leave set aside" in summary


def test_without_a_leave_the_summary_reads_as_before(dropped_at_the_end):
    summary = text.review_summary(dropped_at_the_end)
    assert "(plan week 10 to 12)" in summary and "judged on the last 3 plan weeks" in summary
    assert "the glide path on all 12 plan weeks" in summary and "leave" not in summary
