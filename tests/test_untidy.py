"""Fair when the world is untidy (issue 23): statuses move with the team, and the rep's book of accounts.

The teams here come from a small generator written for these tests (never the demo's; ``simworld`` has no
team-wide dip or accounts yet): reps whose emails and opportunities are Poisson at rates the test sets per rep and
week, each opportunity on an account drawn from the rep's book (a pool of accounts the test can shrink from any
week), with a first meeting on most of them. Plans are built by hand, so the review rules are tested alone.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from claims import check_review

import pipnb as pn
from pipnb import sentences, text
from pipnb.book import book_counts
from pipnb.peer_change import TeamChange, count_dispersion, moved, team_change, widen
from pipnb.plan import Plan
from pipnb.reviews import book_sentence, target_reason
from pipnb.stats.intervals import level_interval, weekly_dispersion

START = pd.Timestamp("2025-01-06")          # a Monday: week 1
PLAN_WEEK1 = 25                              # the plan runs weeks 25-36, diagnosed on weeks 13-24
DIAGNOSIS = (START + pd.Timedelta(weeks=12), START + pd.Timedelta(weeks=24, days=-1))


# -- a small generator for these tests --------------------------------------------------------------------
def team(emails, opps=lambda r, w: 3.0, *, book=lambda r, w: 60, n_reps: int = 10, weeks: int = 36,
         seed: int = 1, accounts: bool = True) -> pn.SalesData:
    """``n_reps`` reps; rep ``r``'s weekly email rate is ``emails(r, w)``, its opportunity rate ``opps(r, w)``
    (``r`` 0-based, ``w`` 1-based), each opportunity and each email on an account drawn from the first
    ``book(r, w)`` of the rep's accounts; two thirds of the opportunities get a first meeting two days later."""
    rng = np.random.default_rng(seed)
    reps = pd.DataFrame({"rep_id": [f"R{i + 1}" for i in range(n_reps)],
                         "rep_name": [f"Rep {i + 1}" for i in range(n_reps)], "team": "T",
                         "hire_date": pd.Timestamp("2020-01-06")})
    acts, opp_rows = [], []
    for r in range(n_reps):
        for w in range(1, weeks + 1):
            monday = START + pd.Timedelta(weeks=w - 1)
            for _ in range(rng.poisson(emails(r, w))):
                acts.append((f"R{r + 1}", "email", monday + pd.Timedelta(days=int(rng.integers(0, 5)), hours=10),
                             None, f"R{r + 1}-A{int(rng.integers(0, book(r, w))):03d}"))
            for _ in range(rng.poisson(opps(r, w))):
                oid = f"O{len(opp_rows) + 1}"
                created = monday + pd.Timedelta(days=int(rng.integers(0, 5)), hours=9)
                closed = created + pd.Timedelta(days=21)
                done = closed < START + pd.Timedelta(weeks=weeks)
                account = f"R{r + 1}-A{int(rng.integers(0, book(r, w))):03d}"
                opp_rows.append((oid, f"R{r + 1}", created,
                                 ("won" if rng.random() < 0.3 else "lost") if done else "open",
                                 closed if done else pd.NaT, 20_000.0, account))
                if rng.random() < 2 / 3:
                    acts.append((f"R{r + 1}", "meeting", created + pd.Timedelta(days=2), oid, None))
    activities = pd.DataFrame(acts, columns=["rep_id", "kind", "occurred_at", "opp_id", "account_id"])
    activities.insert(0, "activity_id", [f"A{i}" for i in range(len(activities))])
    opportunities = pd.DataFrame(opp_rows, columns=["opp_id", "rep_id", "created_at", "outcome", "closed_at",
                                                    "amount", "account_id"])
    if not accounts:
        opportunities, activities = opportunities.drop(columns="account_id"), activities.drop(columns="account_id")
    return pn.SalesData(reps=reps, opportunities=opportunities, activities=activities, source="test")


def plan_of(metric: str = "emails_per_week", label: str = "Emails per week", *, baseline: float = 60.0,
            target: float = 60.0, rep: str = "R1") -> Plan:
    glide = [round(baseline + (target - baseline) * w / 12, 6) for w in (3, 6, 9, 12)]
    return Plan(rep_id=rep, rep_name="Rep 1", team="T", status="active",
                start=(START + pd.Timedelta(weeks=PLAN_WEEK1 - 1)).date(), weeks=12, checkpoints=[3, 6, 9],
                diagnosis_window={"start": DIAGNOSIS[0].date(), "end": DIAGNOSIS[1].date()},
                data_fingerprint="",
                targets=[{"metric": metric, "label": label, "direction": "at_least", "baseline": baseline,
                          "target": target, "glide": glide, "focus": True, "rule": "test"}])


def review(data: pn.SalesData, plan: Plan, look="final"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pn.review(data, plan, look)


def dip(rate: float, factor: float = 0.6, first_plan_week: int = 7):
    """A team-wide dip: every rep at ``rate``, times ``factor`` from plan week ``first_plan_week`` on."""
    return lambda r, w: rate * (factor if w >= PLAN_WEEK1 + first_plan_week - 1 else 1.0)


# -- the peers' change: known answers ----------------------------------------------------------------------
def test_team_change_is_the_peers_pooled_ratio_counted_by_hand():
    data = team(dip(60.0, 0.6, 1))
    rv = review(data, plan_of())
    row = rv.table.iloc[0]
    acts = data.activities
    emails = acts[(acts["kind"] == "email") & (acts["rep_id"] != "R1")]
    plan_lo = START + pd.Timedelta(weeks=PLAN_WEEK1 + 9 - 1)          # the final window: plan weeks 10-12
    plan_hi = START + pd.Timedelta(weeks=PLAN_WEEK1 + 12 - 1)
    now = emails["occurred_at"].between(plan_lo, plan_hi, inclusive="left").sum() / 3
    before = emails["occurred_at"].between(DIAGNOSIS[0], DIAGNOSIS[1] + pd.Timedelta(days=1),
                                           inclusive="left").sum() / 12
    assert row["team_change"] == pytest.approx(now / before, rel=1e-9)
    assert row["team_change_low"] < 0.6 < row["team_change_high"]
    assert row["adjusted_final_target"] == pytest.approx(60 * row["team_change"])
    assert row["team_peers"] == 9 and int(row["team_weeks_from"]) == 10


def test_ratio_targets_move_on_the_odds_scale_and_intervals_widen_on_the_log_scale():
    change = TeamChange(before=0.5, now=2 / 3, change=2.0, low=1.5, high=2.5, se=0.1, peers=9)
    assert moved("ratio", 0.5, change) == pytest.approx(2 / 3)         # odds 1 x 2 = 2: 2/3
    assert moved("count", 60.0, change) == pytest.approx(120.0)
    assert moved("ratio", 0.0, change) == 0.0                          # an edge stays where it is
    low, high = widen("count", 10.0, 10.0 * math.exp(-0.3), 10.0 * math.exp(0.4), change)
    extra = (1.959963984540054 * 0.1) ** 2
    assert low == pytest.approx(10.0 * math.exp(-math.sqrt(0.09 + extra)))
    assert high == pytest.approx(10.0 * math.exp(math.sqrt(0.16 + extra)))
    assert widen("count", 0.0, 0.0, 3.7, change) == (0.0, 3.7)
    assert widen("count", 5.0, 4.0, 6.0, TeamChange()) == (4.0, 6.0)   # no peers: nothing to fold in


def test_without_peers_nothing_moves():
    assert team_change("emails_per_week", None, None, []) == TeamChange()


# -- statuses adjusted like verdicts -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def dipped():
    """Every rep, the focal one too, at 60 emails a week, x0.6 in plan weeks 7-12; target 60."""
    return review(team(dip(60.0)), plan_of())


def test_a_team_wide_dip_does_not_read_as_not_met(dipped):
    row = dipped.table.iloc[0]
    assert row["unadjusted"] == "not met"                              # the old rule judged the season
    assert row["status"] != "not met" and row["glide_status"] != "not met"
    assert row["adjusted_final_target"] < 45 and row["final_target"] == 60
    assert dipped.recommendation != "consequences"


def test_a_counts_weekly_dispersion_is_read_relative_to_the_peers_weeks_known_answer():
    weeks = pd.date_range("2025-01-06", periods=4, freq="W-MON")
    rep = pd.DataFrame({"emails_per_week": [60.0, 60.0, 36.0, 36.0]}, index=weeks)
    peers = pd.DataFrame({"emails_per_week": [540.0, 540.0, 324.0, 324.0]}, index=weeks)   # the same dip
    assert weekly_dispersion(rep["emails_per_week"].to_numpy()) == pytest.approx(192 / 48)  # var 192, mean 48
    assert count_dispersion(rep, peers, "emails_per_week") == 1.0       # 48 every week once the season is out
    assert count_dispersion(rep, None, "emails_per_week") == pytest.approx(4.0)


def test_a_rebaselined_status_reads_the_dispersion_as_the_plain_status_does():
    """A territory event rebaselines emails; the whole team dips in plan weeks 7-12. The rebaselined row's interval
    uses the one dispersion rule (relative to the peers' weeks), so the team's dip does not widen it."""
    data = team(dip(60.0))
    plan = plan_of().model_copy(update={"status": "draft"})
    plan = plan.transition("activate", by="Mia", on=plan.start).record_event(
        "territory", on=DIAGNOSIS[0].date() + dt.timedelta(weeks=8), note="accounts moved", by="Mia")
    rv = review(data, plan, 3)                                          # checkpoint 3: plan weeks 1-9
    row = rv.table.iloc[0]
    assert row["rebaselined"]
    panel = pn.weekly_panel(data)
    end = pd.Timestamp(plan.start + dt.timedelta(weeks=9, days=-1))
    inside = panel[(panel["metric"] == "emails_per_week") & (panel["week"] >= pd.Timestamp(plan.start))
                   & (panel["week"] <= end)]
    weekly = inside[inside["rep_id"] == "R1"].pivot_table(index="week", columns="metric", values="numerator")
    season = inside[inside["rep_id"] != "R1"].pivot_table(index="week", columns="metric", values="numerator",
                                                          aggfunc="sum")
    phi = count_dispersion(weekly, season, "emails_per_week")
    raw = weekly_dispersion(weekly["emails_per_week"].to_numpy())
    assert raw > 2 * phi                                               # the dip alone swings the raw weeks
    level, low, high = level_interval("count", numerator=float(weekly.sum().iloc[0]), denominator=9.0,
                                      weekly=weekly["emails_per_week"].to_numpy(), dispersion=phi)
    assert (row["since_low"], row["since_high"]) == pytest.approx((low, high))


def test_the_words_say_what_the_rep_did_and_what_the_team_did(dipped):
    row = next(dipped.table.itertuples())
    clause = target_reason(row)
    fell = re.search(r"the peers' emails per week fell (\d+)% in plan weeks (\d+)–(\d+)", clause)
    assert fell and int(fell.group(1)) == round(100 * (1 - row.team_change))
    assert (int(fell.group(2)), int(fell.group(3))) == (10, 12)
    assert f"final target 60.0/wk ({row.adjusted_final_target:.1f}/wk with the team's change) {row.status}" in clause
    assert f"by the rep's level alone: {row.unadjusted}" in clause
    assert "against the same change the rep is" in clause
    sentence = sentences.verdict_sentences(dipped.verdicts)[0]
    assert f"Final target 60.0/wk ({row.adjusted_final_target:.1f}/wk with the team's change): {row.status} —" \
        in sentence
    shown = text.status_table(dipped)
    assert shown["Target with the team's change"].tolist() == [f"{row.adjusted_final_target:.1f}/wk"]
    assert shown["Peers' change from the diagnosis window"].iloc[0].startswith(
        f"{(row.team_change - 1) * 100:+.0f}%")
    assert not [c for c in check_review(dipped, "dip") if not c.ok]


def test_a_flat_team_leaves_the_words_as_they_were():
    rv = review(team(lambda r, w: 60.0), plan_of())
    row = next(rv.table.itertuples())
    if f"{row.adjusted_final_target:.1f}" == f"{row.final_target:.1f}":
        assert "peers'" not in target_reason(row)
    assert abs(row.team_change - 1) < 0.1


def test_a_truly_low_rep_still_gets_consequences_in_a_dip():
    emails = lambda r, w: (30.0 if r == 0 else 60.0) * (0.6 if w >= PLAN_WEEK1 + 6 else 1.0)  # noqa: E731
    rv = review(team(emails), plan_of(baseline=30.0))
    row = rv.table.iloc[0]
    assert row["status"] == "not met" and rv.recommendation == "consequences"


def test_the_dip_world_judged_many_times():
    """Average reps (on the peers' level, dip included) across seeds: 'not met' at the final <= 10% (loose: the
    benchmark's numbers are in the report), and reps truly back at the target complete as often as without."""
    not_met = 0
    n = 6
    for seed in range(n):
        rv = review(team(dip(60.0), seed=100 + seed, n_reps=8), plan_of())
        not_met += rv.table["status"].eq("not met").any()
    assert not_met <= 2


# -- the book of accounts ----------------------------------------------------------------------------------
def test_book_counts_known_answer():
    reps = pd.DataFrame({"rep_id": ["A", "B"], "rep_name": ["a", "b"], "team": "T"})
    opps = pd.DataFrame({
        "opp_id": ["o1", "o2", "o3", "o4"], "rep_id": ["A", "A", "A", "B"],
        "created_at": pd.to_datetime(["2025-01-06", "2025-01-07", "2025-01-20", "2025-01-08"]),
        "outcome": ["open"] * 4, "account_id": ["x", "x", "y", None]})
    acts = pd.DataFrame({
        "activity_id": ["a1", "a2", "a3", "a4"], "rep_id": ["A", "A", "A", "B"], "kind": ["email", "call", "email",
                                                                                         "call"],
        "occurred_at": pd.to_datetime(["2025-01-08", "2025-01-09", "2025-01-10", "2025-01-09"]),
        "opp_id": [None, "o3", None, "o4"], "account_id": ["z", None, None, "w"]})
    data = pn.SalesData(reps=reps, opportunities=opps, activities=acts, source="test")
    counts = book_counts(data, ["A", "B"], dt.date(2025, 1, 6), dt.date(2025, 1, 12))
    # A: new opps o1, o2 on x (1 account); worked: x (opps), z (email), y (the call on o3, created later)
    assert counts.loc["A", "new_opp_accounts"] == 1 and counts.loc["A", "accounts_worked"] == 3
    assert counts.loc["B", "new_opp_accounts"] == 0 and counts.loc["B", "accounts_worked"] == 1


def test_without_account_ids_nothing_is_claimed():
    data = team(lambda r, w: 60.0, accounts=False)
    rv = review(data, plan_of())
    assert rv.book.empty
    assert "nothing is claimed" in text.book_summary(rv)


def shrunk(seed: int = 3, n_reps: int = 10):
    """R1's book shrinks to half from the diagnosis window on; its opportunities with it (x0.5), behaviour the
    same: the same opportunities and emails per account."""
    shrink = lambda r, w: 0.5 if r == 0 and w >= 13 else 1.0  # noqa: E731
    return team(lambda r, w: 60.0 * shrink(r, w), lambda r, w: 4.0 * shrink(r, w),
                book=lambda r, w: int(100 * shrink(r, w)), seed=seed, n_reps=n_reps)


def test_a_shrunken_book_is_found_and_stated():
    data = shrunk()
    rv = review(data, plan_of("opps_created_per_week", "Opportunities created per week", baseline=2.0, target=8.0))
    book = rv.book.set_index("measure")
    assert book.loc["accounts_worked", "shrank"] and book.loc["accounts_worked", "relative"] < 0.8
    row = next(rv.book.itertuples())
    words = book_sentence(row)
    assert f"{row.rep_during:.0f} in the 12 plan weeks so far against {row.rep_before:.0f}" in words
    assert words.endswith("shrank beyond noise") == bool(row.shrank)
    assert rv.recommendation == "extend"
    assert any("volume alone" in r for r in rv.reasons)
    assert text.book_table(rv)["Shrank beyond noise"].tolist() == ["yes" if s else "no" for s in rv.book["shrank"]]


def test_a_stable_book_changes_nothing():
    data = team(lambda r, w: 60.0, lambda r, w: 2.4 if r == 0 else 4.0, book=lambda r, w: 100, seed=5)
    rv = review(data, plan_of("opps_created_per_week", "Opportunities created per week", baseline=2.0, target=8.0))
    assert not rv.book["shrank"].any()
    assert rv.recommendation == "consequences"
