"""The built-in demo team: reproducible, well formed, causal, and showing the article's cases.

The case checks recompute each metric here with plain pandas from its definition (window = whole weeks
``[start, end)``), independently of ``pipnb.metrics``, and compare the case rep with the median of its
established teammates (the rep itself and reps hired less than 13 weeks before the window excluded).
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipnb.data import SalesData
from pipnb.demo import DEMO_CASES, DEMO_END, demo_data, demo_plan_start
from pipnb.errors import PipnbError
from pipnb.sources import load

WEEK = pd.Timedelta(weeks=1)
PLAN_START = demo_plan_start()
LAST_12 = (PLAN_START, PLAN_START + 12 * WEEK)        # the plan period: the data's last 12 weeks
BEFORE_12 = (PLAN_START - 12 * WEEK, PLAN_START)      # the 12 weeks that triggered the plan

COLUMNS = {
    "reps": ["rep_id", "rep_name", "team", "manager", "segment", "hire_date"],
    "opportunities": ["opp_id", "rep_id", "created_at", "outcome", "closed_at", "amount", "account_id"],
    "activities": ["activity_id", "rep_id", "kind", "occurred_at", "opp_id", "account_id"],
}


# -- metrics by their definitions ---------------------------------------------------------------------
def window_stats(data: SalesData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """One row per rep: the scan's metrics over the weeks from ``start`` (a Monday) to ``end``."""
    weeks = (end - start) / WEEK
    opps, acts = data.opportunities, data.activities
    out = pd.DataFrame(index=pd.Index(data.reps["rep_id"], name="rep_id"))
    in_window = acts[(acts["occurred_at"] >= start) & (acts["occurred_at"] < end)]
    for kind in ("email", "call"):
        out[f"{kind}s_per_week"] = in_window[in_window["kind"] == kind].groupby("rep_id").size() / weeks
    created = opps[(opps["created_at"] >= start) & (opps["created_at"] < end)].groupby("rep_id").size()
    out["opps_created_per_week"] = created / weeks
    out = out.join(_meeting_stats(acts, start, end, weeks)).join(_win_rates(opps, created, start, end))
    out = out.join(_touch_stats(opps, acts, start, end))
    return out.join(data.reps.set_index("rep_id")[["team", "hire_date"]]).fillna(
        {"emails_per_week": 0.0, "calls_per_week": 0.0, "opps_created_per_week": 0.0})


def _meeting_stats(acts: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, weeks: float) -> pd.DataFrame:
    meetings = acts[acts["kind"] == "meeting"].sort_values(["opp_id", "occurred_at"])
    meetings = meetings.assign(rank=meetings.groupby("opp_id").cumcount())
    meetings = meetings[(meetings["occurred_at"] >= start) & (meetings["occurred_at"] < end)]
    first = meetings[meetings["rank"] == 0].groupby("rep_id").size()
    second = meetings[meetings["rank"] == 1].groupby("rep_id").size()
    return pd.DataFrame({"first_meetings_per_week": first / weeks,
                         "followup_meeting_ratio": second.reindex(first.index, fill_value=0) / first})


def _win_rates(opps: pd.DataFrame, created: pd.Series, start: pd.Timestamp,
               end: pd.Timestamp) -> pd.DataFrame:
    closed = opps[(opps["closed_at"] >= start) & (opps["closed_at"] < end)]
    won = closed[closed["outcome"] == "won"].groupby("rep_id").size()
    n_closed = closed.groupby("rep_id").size()
    return pd.DataFrame({"win_rate_closed": won.reindex(n_closed.index, fill_value=0) / n_closed,
                         "win_rate_all": won.reindex(created.index, fill_value=0) / created})


def _touch_stats(opps: pd.DataFrame, acts: pd.DataFrame, start: pd.Timestamp,
                 end: pd.Timestamp) -> pd.DataFrame:
    """avg_days_between_touches (gaps ending in the window + open tails) and stale_opp_share."""
    touches = acts[acts["opp_id"].notna() & (acts["occurred_at"] < end)]
    touches = touches.sort_values(["opp_id", "occurred_at"])
    gap = touches.groupby("opp_id")["occurred_at"].diff() / pd.Timedelta(days=1)
    ends_in_window = gap.notna() & (touches["occurred_at"] >= start)
    gaps = pd.DataFrame({"rep_id": touches["rep_id"][ends_in_window], "days": gap[ends_in_window]})
    is_open = (opps["created_at"] < end) & (opps["closed_at"].isna() | (opps["closed_at"] >= end))
    open_opps = opps[is_open]
    last_touch = open_opps["opp_id"].map(touches.groupby("opp_id")["occurred_at"].max())
    since = last_touch.fillna(open_opps["created_at"])
    tails = pd.DataFrame({"rep_id": open_opps["rep_id"], "days": (end - since) / pd.Timedelta(days=1)})
    # stale: more than 14 whole calendar days from the day of the last touch to the last day before `end`
    whole = ((end - pd.Timedelta(days=1)).normalize() - since.dt.normalize()).dt.days
    return pd.DataFrame({
        "avg_days_between_touches": pd.concat([gaps, tails]).groupby("rep_id")["days"].mean(),
        "stale_opp_share": (whole > 14).groupby(tails["rep_id"]).mean(),
    })


def teammates_median(stats: pd.DataFrame, rep_id: str, column: str, start: pd.Timestamp) -> float:
    """Median of ``column`` over the rep's established teammates (hired 13+ weeks before ``start``)."""
    mates = stats[(stats["team"] == stats.at[rep_id, "team"]) & (stats.index != rep_id)
                  & (stats["hire_date"] <= start - 13 * WEEK)]
    assert len(mates) >= 5, f"{rep_id} has only {len(mates)} established teammates"
    return float(mates[column].median())


def relative(stats: pd.DataFrame, rep_id: str, column: str, start: pd.Timestamp) -> float:
    return float(stats.at[rep_id, column]) / teammates_median(stats, rep_id, column, start)


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo() -> SalesData:
    return demo_data()


@pytest.fixture(scope="module")
def last(demo: SalesData) -> pd.DataFrame:
    return window_stats(demo, *LAST_12)


@pytest.fixture(scope="module")
def before(demo: SalesData) -> pd.DataFrame:
    return window_stats(demo, *BEFORE_12)


@pytest.fixture(scope="module")
def peers(demo: SalesData, last: pd.DataFrame) -> pd.DataFrame:
    """Established reps that are not cases: what a typical rep looks like."""
    return last[(last["hire_date"] <= PLAN_START - 13 * WEEK) & ~last.index.isin(list(DEMO_CASES.values()))]


# -- reproducibility ----------------------------------------------------------------------------------
def test_same_seed_gives_identical_frames():
    one, two = demo_data(seed=3), demo_data(seed=3)
    for table in COLUMNS:
        pd.testing.assert_frame_equal(getattr(one, table), getattr(two, table))
    assert one.fingerprint() == two.fingerprint()


def test_different_seeds_give_different_data():
    one, two = demo_data(seed=1), demo_data(seed=2)
    assert one.fingerprint() != two.fingerprint()
    assert not one.reps["rep_name"].equals(two.reps["rep_name"])
    assert len(one.activities) != len(two.activities)


def test_case_rep_ids_do_not_depend_on_seed_or_size():
    for data in (demo_data(seed=5), demo_data(reps=41, weeks=40)):
        ids = set(data.reps["rep_id"])
        assert set(DEMO_CASES.values()) <= ids


# -- contract -----------------------------------------------------------------------------------------
def test_tables_have_the_canonical_columns_and_types(demo: SalesData):
    for table, columns in COLUMNS.items():
        frame = getattr(demo, table)
        assert list(frame.columns) == columns
        for column in columns:
            values = frame[column].dropna()
            if column.endswith(("_at", "_date")):
                assert frame[column].dtype == "datetime64[ns]", (table, column)
            elif column == "amount":
                assert frame[column].dtype == "float64" and (values > 0).all()
            else:
                assert frame[column].dtype == "str", (table, column)   # what loading gives
                assert values.map(type).eq(str).all(), (table, column)
    assert set(demo.opportunities["outcome"]) == {"open", "won", "lost"}
    assert set(demo.activities["kind"]) == {"email", "call", "meeting"}


def test_ids_are_unique_and_every_reference_exists(demo: SalesData):
    reps, opps, acts = demo.reps, demo.opportunities, demo.activities
    for frame, column in ((reps, "rep_id"), (opps, "opp_id"), (acts, "activity_id")):
        assert frame[column].is_unique
    assert opps["rep_id"].isin(reps["rep_id"]).all()
    assert acts["rep_id"].isin(reps["rep_id"]).all()
    on_opp = acts.dropna(subset=["opp_id"])
    assert on_opp["opp_id"].isin(opps["opp_id"]).all()
    owner = on_opp["opp_id"].map(opps.set_index("opp_id")["rep_id"])
    assert (owner == on_opp["rep_id"]).all()
    account = on_opp["opp_id"].map(opps.set_index("opp_id")["account_id"])
    assert (account == on_opp["account_id"]).all()


def test_dates_are_ordered_and_inside_whole_weeks(demo: SalesData):
    opps, acts = demo.opportunities, demo.activities
    first_day, last_day = pd.Timestamp(DEMO_END) - 56 * WEEK + pd.Timedelta(days=1), pd.Timestamp(DEMO_END)
    assert first_day.day_name() == "Monday"
    assert (opps["closed_at"].isna() == (opps["outcome"] == "open")).all()
    assert (opps["closed_at"].dropna() >= opps.loc[opps["closed_at"].notna(), "created_at"]).all()
    for stamps in (opps["created_at"], opps["closed_at"].dropna(), acts["occurred_at"]):
        assert stamps.min() >= first_day and stamps.max() < last_day + pd.Timedelta(days=1)
    assert demo.period[1].normalize() == last_day      # a few weekend emails: the last day has data
    span = acts.dropna(subset=["opp_id"]).merge(opps, on="opp_id")
    assert (span["occurred_at"] >= span["created_at"]).all()
    assert (span["closed_at"].isna() | (span["occurred_at"] <= span["closed_at"])).all()


def test_only_weekdays_except_a_few_prospecting_emails(demo: SalesData):
    acts = demo.activities
    weekend = acts["occurred_at"].dt.day_of_week >= 5
    assert 0 < weekend.mean() < 0.03
    assert (acts.loc[weekend, "kind"] == "email").all() and acts.loc[weekend, "opp_id"].isna().all()
    assert demo.opportunities["created_at"].dt.day_of_week.lt(5).all()


def test_nobody_works_before_being_hired(demo: SalesData):
    hired = demo.reps.set_index("rep_id")["hire_date"]
    assert (demo.activities["occurred_at"] >= demo.activities["rep_id"].map(hired)).all()
    assert (demo.opportunities["created_at"] >= demo.opportunities["rep_id"].map(hired)).all()


def test_roster_has_teams_managers_segments_and_unique_fake_names(demo: SalesData):
    reps = demo.reps
    assert len(reps) == 24 and reps["team"].nunique() == 3
    assert reps.groupby("team")["manager"].nunique().eq(1).all()
    assert set(reps["segment"]) == {"SMB", "Mid-market", "Enterprise"}
    assert reps["rep_name"].is_unique and not set(reps["rep_name"]) & set(reps["manager"])
    assert reps["rep_name"].str.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+").all()


def test_new_hires_ramp_up_and_case_reps_have_established_teammates(demo: SalesData):
    reps = demo.reps.set_index("rep_id")
    end = pd.Timestamp(DEMO_END)
    ramping = reps[reps["hire_date"] > end - 20 * WEEK]
    assert 2 <= len(ramping) <= 3
    emails = demo.activities[demo.activities["kind"] == "email"]
    for rep_id, hired in ramping["hire_date"].items():
        own = emails.loc[emails["rep_id"] == rep_id, "occurred_at"]
        early = own.between(hired, hired + 3 * WEEK, inclusive="left").sum() / 3
        late = own.between(end - 3 * WEEK, end + WEEK, inclusive="left").sum() / 4  # last 3 weeks + a day
        assert early < 0.5 * late, rep_id
    for rep_id in DEMO_CASES.values():
        assert rep_id not in ramping.index
        mates = reps[(reps["team"] == reps.at[rep_id, "team"]) & (reps.index != rep_id)]
        assert (mates["hire_date"] <= PLAN_START - 24 * WEEK).sum() >= 5


def test_bad_arguments_say_how_to_fix_them():
    with pytest.raises(PipnbError, match="Tuesday.*2026-06-28"):
        demo_data(end="2026-06-23")
    with pytest.raises(PipnbError, match="reps=10"):
        demo_data(reps=10)
    with pytest.raises(PipnbError, match="weeks=10"):
        demo_data(weeks=10)
    with pytest.raises(PipnbError, match="not a date"):
        demo_plan_start("soon")


def test_plan_start_is_the_monday_twelve_weeks_before_the_end():
    assert demo_plan_start() == pd.Timestamp("2026-04-06")
    assert demo_plan_start("2025-12-28") == pd.Timestamp("2025-10-06")


def test_other_sizes_scale_with_reps_and_weeks():
    small, wide = demo_data(reps=24, weeks=40), demo_data(reps=48, weeks=40)
    assert wide.reps["team"].nunique() == 6 and wide.reps.groupby("team").size().min() == 8
    ratio = len(wide.activities) / len(small.activities)
    assert 1.6 < ratio < 2.4
    first, last_ = small.period
    assert first.normalize() == pd.Timestamp("2025-09-22")
    assert last_.normalize() == pd.Timestamp(DEMO_END)


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_written_and_loaded_back_it_is_the_same_data(tmp_path, file_format: str):
    data = demo_data(seed=7, weeks=40)
    back = load(data.write(tmp_path / "demo", format=file_format))
    for table in COLUMNS:
        pd.testing.assert_frame_equal(getattr(back, table), getattr(data, table))
    assert back.fingerprint() == data.fingerprint()


# -- a typical rep and the causal funnel --------------------------------------------------------------
def test_typical_rep_matches_the_brief(peers: pd.DataFrame):
    typical = peers.median(numeric_only=True)
    assert 60 <= typical["emails_per_week"] <= 90
    assert 3.5 <= typical["calls_per_week"] <= 7
    assert 2.5 <= typical["opps_created_per_week"] <= 3.5
    assert 0.6 <= typical["followup_meeting_ratio"] <= 0.8
    assert 0.30 <= typical["win_rate_closed"] <= 0.45
    assert 5 <= typical["avg_days_between_touches"] <= 8
    assert typical["stale_opp_share"] < 0.2


def test_most_opportunities_get_a_first_meeting_within_two_weeks(demo: SalesData):
    opps, acts = demo.opportunities, demo.activities
    opps = opps[opps["created_at"] < pd.Timestamp(DEMO_END) - 2 * WEEK]
    first = opps["opp_id"].map(acts[acts["kind"] == "meeting"].groupby("opp_id")["occurred_at"].min())
    assert 0.65 <= ((first - opps["created_at"]) <= 2 * WEEK).mean() <= 0.85


def test_follow_up_meetings_lead_to_wins(demo: SalesData):
    opps, acts = demo.opportunities, demo.activities
    closed = opps[opps["outcome"] != "open"]
    meetings = closed["opp_id"].map(acts[acts["kind"] == "meeting"].groupby("opp_id").size()).fillna(0)
    won = closed["outcome"] == "won"
    assert won[meetings >= 2].mean() > 0.5 and won[meetings < 2].mean() < 0.1


def test_most_emails_are_on_opportunities_and_some_are_prospecting(demo: SalesData):
    emails = demo.activities[(demo.activities["kind"] == "email")
                             & (demo.activities["occurred_at"] >= LAST_12[0])]   # pipeline filled
    assert 0.5 < emails["opp_id"].notna().mean() < 0.7
    assert emails.loc[emails["opp_id"].isna(), "account_id"].notna().all()


def test_deal_sizes_grow_with_segment(demo: SalesData):
    segment = demo.opportunities["rep_id"].map(demo.reps.set_index("rep_id")["segment"])
    median = demo.opportunities.groupby(segment)["amount"].median()
    assert median["SMB"] < median["Mid-market"] < median["Enterprise"]


def test_closes_bunch_up_at_quarter_end(demo: SalesData):
    closed = demo.opportunities["closed_at"].dropna()
    closed = closed[(closed >= pd.Timestamp("2025-07-01")) & (closed < pd.Timestamp("2026-04-01"))]
    in_last_two_weeks = (closed.dt.to_period("Q").dt.end_time - closed) < 2 * WEEK
    per_week_at_quarter_end = in_last_two_weeks.sum() / (3 * 2)
    assert per_week_at_quarter_end > 1.8 * closed.dt.to_period("W-SUN").value_counts().median()


def test_activity_dips_at_christmas_and_in_mid_august(demo: SalesData):
    emails = demo.activities.loc[demo.activities["kind"] == "email", "occurred_at"]
    per_week = emails.dt.to_period("W-SUN").value_counts()
    typical = per_week.median()
    assert per_week[pd.Period("2025-12-29", "W-SUN")] < 0.4 * typical
    assert per_week[pd.Period("2025-08-13", "W-SUN")] < 0.8 * typical


# -- the article's cases ------------------------------------------------------------------------------
def test_article_rep_wins_six_percent_of_opps_with_few_follow_ups(last: pd.DataFrame):
    rep, start = DEMO_CASES["article"], LAST_12[0]
    assert 0.03 <= last.at[rep, "win_rate_all"] <= 0.10
    assert 0.4 <= last.at[rep, "followup_meeting_ratio"] <= 0.6
    assert 0.75 <= relative(last, rep, "first_meetings_per_week", start) <= 1.25
    assert 0.75 <= relative(last, rep, "opps_created_per_week", start) <= 1.25
    assert relative(last, rep, "emails_per_week", start) < 0.65
    assert last.at[rep, "avg_days_between_touches"] < 14


def test_volume_rep_has_few_first_meetings_but_normal_ratios(last: pd.DataFrame):
    rep, start = DEMO_CASES["volume"], LAST_12[0]
    assert 0.25 <= relative(last, rep, "first_meetings_per_week", start) <= 0.55
    assert relative(last, rep, "opps_created_per_week", start) <= 0.55
    for ratio in ("followup_meeting_ratio", "win_rate_closed"):
        assert last.at[rep, ratio] >= teammates_median(last, rep, ratio, start) - 0.15, ratio
    assert last.at[rep, "avg_days_between_touches"] < 14


def test_stale_rep_lets_opportunities_go_untouched(last: pd.DataFrame):
    rep, start = DEMO_CASES["stale"], LAST_12[0]
    assert last.at[rep, "avg_days_between_touches"] > 18
    assert relative(last, rep, "avg_days_between_touches", start) > 2.5
    assert last.at[rep, "stale_opp_share"] > 0.4 > 2 * teammates_median(last, rep, "stale_opp_share", start)
    assert 0.75 <= relative(last, rep, "first_meetings_per_week", start) <= 1.25
    assert relative(last, rep, "emails_per_week", start) > 0.75       # busy, just not on its pipeline


@pytest.mark.parametrize("case", ["responder", "non_responder"])
def test_plan_reps_looked_weak_before_the_plan(case: str, before: pd.DataFrame):
    rep, start = DEMO_CASES[case], BEFORE_12[0]
    assert relative(before, rep, "emails_per_week", start) < 0.65
    assert before.at[rep, "followup_meeting_ratio"] <= 0.55


def test_responder_improves_after_the_plan_start(before: pd.DataFrame, last: pd.DataFrame):
    rep = DEMO_CASES["responder"]
    assert last.at[rep, "emails_per_week"] / before.at[rep, "emails_per_week"] > 1.4
    assert last.at[rep, "followup_meeting_ratio"] >= 0.6


def test_non_responder_stays_as_before(before: pd.DataFrame, last: pd.DataFrame):
    rep = DEMO_CASES["non_responder"]
    assert last.at[rep, "emails_per_week"] / before.at[rep, "emails_per_week"] < 1.15
    assert last.at[rep, "followup_meeting_ratio"] <= 0.55
    assert relative(last, rep, "emails_per_week", LAST_12[0]) < 0.65


def test_typical_reps_do_not_look_like_the_email_or_stale_cases(peers: pd.DataFrame):
    emails = peers["emails_per_week"] / peers["team"].map(peers.groupby("team")["emails_per_week"].median())
    assert emails.min() > 0.65
    assert peers["avg_days_between_touches"].max() < 10
    assert peers["stale_opp_share"].max() < 0.4


# -- the demo shows only warranted plans (issue 22) -----------------------------------------------------------
def test_every_plan_the_demo_drafts_is_warranted_by_its_diagnosis(tmp_path, demo: SalesData):
    """``pipnb demo`` drafts the two case plans (diagnosed the day before their start) and a plan for each rep the
    scan flags: every one of them is for a rep whose diagnosis finds a shortfall, so none needs a reason."""
    import pipnb as pn
    from pipnb.batch import demo_jobs, prepare
    from pipnb.plan import plans_by_folder

    folder = demo.write(tmp_path / "data")
    batch = prepare(str(folder), reports=tmp_path / "reports", params=tmp_path / "params")
    jobs = demo_jobs(batch)
    assert not [j for j in jobs if not hasattr(j, "notebook")]            # no rep skipped, nothing failed
    plans = plans_by_folder(tmp_path / "params")
    assert {DEMO_CASES["responder"], DEMO_CASES["non_responder"], DEMO_CASES["article"]} <= set(plans)
    panel = pn.weekly_panel(demo)
    for rep_id, plan in plans.items():
        dx = pn.diagnose(demo, rep_id, as_of=pd.Timestamp(plan.diagnosis_window.end), panel=panel)
        assert dx.needs_plan and plan.reason == "", rep_id
        focus = {t.metric for t in plan.targets if t.focus}
        shortfalls = set(dx.improvement_areas) | set(dx.outcomes.loc[dx.outcomes["flag"] == "shortfall", "metric"])
        assert focus & shortfalls, rep_id                       # each plan asks for what its diagnosis found
    for case in ("responder", "non_responder"):
        plan = plans[DEMO_CASES[case]]
        assert plan.status == "active" and plan.history[-1].note == "agreed with the rep at the plan meeting"
