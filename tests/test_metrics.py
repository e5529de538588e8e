"""Known answers for every metric on tiny hand-built tables (dates in January 2024; Monday = 1, 8, 15 ...)."""

import numpy as np
import pandas as pd
import pytest

from pipnb.data import SalesData
from pipnb.metrics import weekly_panel, window_metrics

T = pd.Timestamp
NaT = pd.NaT


def sales(opps, acts, reps=None):
    reps = reps if reps is not None else pd.DataFrame(
        {"rep_id": ["A", "B", "C"], "rep_name": ["Ann", "Bob", "Cy"], "team": ["E", "E", "E"],
         "hire_date": [NaT, T("2024-01-08"), NaT]})
    opps = pd.DataFrame(opps, columns=["opp_id", "rep_id", "created_at", "closed_at", "outcome", "amount"])
    for c in ("created_at", "closed_at"):
        opps[c] = pd.to_datetime(opps[c])
    acts = None if acts is None else pd.DataFrame(acts, columns=["activity_id", "rep_id", "kind", "occurred_at",
                                                                 "opp_id"])
    if acts is not None:
        acts["occurred_at"] = pd.to_datetime(acts["occurred_at"])
    return SalesData(reps, opps, acts)


@pytest.fixture
def data():
    return sales(
        opps=[("o1", "A", "2024-01-01", "2024-01-20", "won", 100.0),
              ("o2", "A", "2024-01-02", None, "open", None),
              ("o3", "B", "2024-01-09", None, "open", None),
              ("o4", "A", "2024-01-03", "2024-01-24", "lost", 50.0),
              ("o5", "C", "2024-01-05", None, "open", None)],
        acts=[("a", "A", "meeting", "2024-01-02", "o1"), ("b", "A", "meeting", "2024-01-10", "o1"),
              ("c", "A", "email", "2024-01-03", "o2"), ("d", "A", "meeting", "2024-01-04", "o2"),
              ("e", "B", "email", "2024-01-10", None), ("f", "A", "email", "2024-01-28", None),
              ("g", "A", "call", "2024-01-16", "o1"), ("h", "A", "meeting", "2024-01-17", "o1"),
              ("i", "C", "email", "2024-01-05", None)])


def window(data, metric, rep, start="2024-01-01", end="2024-01-22", **kw):
    pooled = window_metrics(weekly_panel(data), T(start), T(end), **kw)
    return pooled.set_index(["rep_id", "metric"]).loc[(rep, metric)]


def test_panel_is_long_and_covers_employed_weeks_only(data):
    panel = weekly_panel(data)
    assert list(panel.columns) == ["rep_id", "week", "metric", "numerator", "denominator", "value"]
    weeks = panel.groupby("rep_id")["week"].agg(["min", "max", "nunique"])
    assert weeks.loc["A", "nunique"] == 4 and weeks.loc["A", "min"] == T("2024-01-01")
    assert weeks.loc["B", "min"] == T("2024-01-08")   # hired on the 8th: no row for the week before
    assert (panel["week"].dt.day_of_week == 0).all()


def test_counts_per_week(data):
    emails = window(data, "emails_per_week", "A")
    assert (emails["numerator"], emails["denominator"]) == (2, 4)   # the 3rd, and the 28th in the 4th week
    assert window(data, "calls_per_week", "A")["numerator"] == 1
    assert window(data, "meetings_per_week", "A")["value"] == pytest.approx(4 / 4)
    assert window(data, "opps_created_per_week", "A")["value"] == pytest.approx(3 / 4)
    assert window(data, "emails_per_week", "B")["value"] == pytest.approx(1 / 3)


def test_first_meetings_and_followup_ratio(data):
    first = window(data, "first_meetings_per_week", "A")
    assert first["numerator"] == 2                         # o1 on the 2nd, o2 on the 4th
    ratio = window(data, "followup_meeting_ratio", "A")
    assert (ratio["numerator"], ratio["denominator"]) == (1, 2)   # o1 followed up within 21 days, o2 never
    only_week_two = window(data, "followup_meeting_ratio", "A", start="2024-01-08", end="2024-01-08")
    assert only_week_two["denominator"] == 0 and np.isnan(only_week_two["value"])  # undefined, never 0


def test_win_rate_bases(data):
    closed = window(data, "win_rate", "A")
    assert (closed["numerator"], closed["denominator"]) == (1, 2)
    everything = window(data, "win_rate", "A", win_rate_basis="all")
    assert (everything["numerator"], everything["denominator"]) == (1, 3)
    no_closed = window(data, "win_rate", "C")
    assert no_closed["denominator"] == 0 and np.isnan(no_closed["value"])


def test_deal_size_cycle_and_velocity(data):
    assert window(data, "avg_deal_size", "A")["value"] == 100.0          # won deals only
    assert window(data, "sales_cycle_days", "A")["value"] == 19.0
    velocity = window(data, "pipeline_velocity", "A")["value"]
    assert velocity == pytest.approx(0.75 * 0.5 * 100 / 19)


def test_days_between_touches_includes_the_open_gap(data):
    # window = weeks of Jan 1..Jan 21 (ends Monday Jan 22 00:00)
    # closed gaps on o1: 2nd->10th (8), 10th->16th (6), 16th->17th (1); on o2: 3rd->4th (1)
    # open at the end: o2 (last touch 4th: 18 days); o1 won on the 20th is closed; o4 (untouched since the 3rd: 19)
    gaps = window(data, "avg_days_between_touches", "A", end="2024-01-15")
    assert gaps["denominator"] == 6
    assert gaps["value"] == pytest.approx((8 + 6 + 1 + 1 + 18 + 19) / 6)
    stale = window(data, "stale_opp_share", "A", end="2024-01-15")
    assert (stale["numerator"], stale["denominator"]) == (2, 2)


def test_opportunity_with_one_touch_and_untouched_past_window_end(data):
    # C's o5 (created the 5th) is never touched: its whole age is the open gap at the window end
    gaps = window(data, "avg_days_between_touches", "C", end="2024-01-08")
    assert gaps["value"] == pytest.approx(15 - 5) and gaps["denominator"] == 1
    assert window(data, "stale_opp_share", "C", end="2024-01-08")["value"] == 0
    assert window(data, "stale_opp_share", "C", end="2024-01-15")["value"] == 1   # 17 days > 14


def test_rep_with_no_activity_and_no_meetings():
    reps = pd.DataFrame({"rep_id": ["A", "B"], "rep_name": ["Ann", "Bob"], "team": ["E", "E"]})
    data = sales(opps=[("o1", "A", "2024-01-01", None, "open", None), ("o2", "B", "2024-01-02", None, "open", None),
                       ("o3", "A", "2024-01-10", None, "open", None)],
                 acts=[("a", "A", "email", "2024-01-03", "o1")], reps=reps)
    b = window(data, "emails_per_week", "B", end="2024-01-08")
    assert b["numerator"] == 0 and b["value"] == 0            # employed weeks with no email: a real 0
    assert np.isnan(window(data, "followup_meeting_ratio", "B", end="2024-01-08")["value"])
    assert window(data, "first_meetings_per_week", "A", end="2024-01-08")["value"] == 0


def test_missing_activities_table_leaves_activity_metrics_out():
    data = sales(opps=[("o1", "A", "2024-01-01", "2024-01-05", "won", 10.0)], acts=None)
    metrics = set(weekly_panel(data)["metric"])
    assert "emails_per_week" not in metrics and "followup_meeting_ratio" not in metrics
    assert "win_rate" in metrics


def test_as_of_ignores_later_events(data):
    early = window_metrics(weekly_panel(data, as_of="2024-01-14"), T("2024-01-01"), T("2024-01-08"))
    late = window_metrics(weekly_panel(data), T("2024-01-01"), T("2024-01-08"))
    pd.testing.assert_frame_equal(early.drop(columns="weeks"), late.drop(columns="weeks"))


def test_followup_ratio_is_a_cohort_judged_when_its_window_closes():
    # first meetings: o1 on the 2nd (second meeting the 9th: 7 days), o3 on the 3rd (never followed up),
    # o2 on the 10th (second meeting Feb 5th: 26 days, past the 21-day window)
    opps = [(o, "A", "2024-01-01", None, "open", None) for o in ("o1", "o2", "o3")]
    acts = [("a", "A", "meeting", "2024-01-02", "o1"), ("b", "A", "meeting", "2024-01-09", "o1"),
            ("c", "A", "meeting", "2024-01-03", "o3"), ("d", "A", "meeting", "2024-01-10", "o2"),
            ("e", "A", "meeting", "2024-02-05", "o2")]
    data = sales(opps, acts)
    pooled = window_metrics(weekly_panel(data, as_of="2024-02-20"), T("2024-01-01"), T("2024-02-12"))
    ratio = pooled.set_index(["rep_id", "metric"]).loc[("A", "followup_meeting_ratio")]
    assert (ratio["numerator"], ratio["denominator"]) == (1, 3)        # never more follow-ups than first meetings
    # judged in the week the window closes: o1 and o3 on the 23rd/24th, o2 on the 31st
    week = window_metrics(weekly_panel(data, as_of="2024-02-20"), T("2024-01-22"), T("2024-01-22"))
    assert tuple(week.set_index(["rep_id", "metric"]).loc[("A", "followup_meeting_ratio"),
                                                           ["numerator", "denominator"]]) == (1, 2)
    # before a cohort's window has closed it is not judged at all (not counted as a miss)
    early = window_metrics(weekly_panel(data, as_of="2024-01-25"), T("2024-01-01"), T("2024-01-22"))
    assert tuple(early.set_index(["rep_id", "metric"]).loc[("A", "followup_meeting_ratio"),
                                                            ["numerator", "denominator"]]) == (1, 2)


def test_stale_means_more_than_14_whole_days_untouched():
    """Touched on the 6th, 7th and 8th, seen at the end of Sunday the 21st: 15, 14 and 13 days untouched; only the
    first is stale ("more than 14 days"), in the weekly share and in the diagnosis's dead opportunities alike —
    the 7th's midnight touch is 15.0 elapsed days before the end of the 21st, which the rule does not count."""
    from pipnb.diagnosis import dead_opportunities
    from pipnb.metrics import touch_gaps

    data = sales(opps=[(f"o{d}", "A", "2024-01-01", None, "open", None) for d in (6, 7, 8)],
                 acts=[("t6", "A", "call", "2024-01-06 23:30", "o6"), ("t7", "A", "call", "2024-01-07 00:00", "o7"),
                       ("t8", "A", "call", "2024-01-08 09:00", "o8")])
    pooled = window_metrics(weekly_panel(data, as_of="2024-01-21"), T("2024-01-01"), T("2024-01-15"))
    stale = pooled.set_index(["rep_id", "metric"]).loc[("A", "stale_opp_share")]
    assert (stale["numerator"], stale["denominator"]) == (1, 3)
    dead = dead_opportunities(data, touch_gaps(data, "2024-01-21"))
    assert dead[["opp_id", "days_since_touch"]].values.tolist() == [["o6", 15.0]]
    later = dead_opportunities(data, touch_gaps(data, "2024-01-22"))       # a day later: 16, 15 and 14
    assert later[["opp_id", "days_since_touch"]].values.tolist() == [["o6", 16.0], ["o7", 15.0]]


# -- window_metrics on integer codes equals the pandas reshapes it replaced ------------------------------------
def _reference_window_metrics(panel, start, end, *, win_rate_basis="closed"):
    """The pandas version of :func:`window_metrics` (group, unstack, stack, merge), kept as its reference."""
    from pipnb.metrics import week_start
    from pipnb.schema import METRICS, SNAPSHOT_ROWS

    start, end = week_start(T(start)), week_start(T(end))
    rows = panel[(panel["week"] >= start) & (panel["week"] <= end)]
    flows = rows[~rows["metric"].isin(SNAPSHOT_ROWS)]
    pooled = flows.groupby(["rep_id", "metric"], sort=False)[["numerator", "denominator"]].sum()
    weeks = rows.groupby("rep_id")["week"].nunique().rename("weeks")
    last_week = rows["week"] == rows.groupby("rep_id")["week"].transform("max")
    snaps = rows[last_week & rows["metric"].isin(SNAPSHOT_ROWS)].set_index(["rep_id", "metric"])
    pooled = pd.concat([pooled, snaps[["numerator", "denominator"]]])
    wide_n, wide_d = pooled["numerator"].unstack("metric"), pooled["denominator"].unstack("metric")
    if "touch_gap_closed" in wide_n:
        wide_n["avg_days_between_touches"] = wide_n["touch_gap_closed"] + wide_n["touch_gap_open"]
        wide_d["avg_days_between_touches"] = wide_d["touch_gap_closed"] + wide_d["touch_gap_open"]
    if win_rate_basis == "all" and "win_rate_all" in wide_n:
        wide_n["win_rate"], wide_d["win_rate"] = wide_n["win_rate_all"], wide_d["win_rate_all"]
    keep = [m for m in METRICS if m in wide_n.columns]
    out = pd.DataFrame({"numerator": wide_n[keep].stack(future_stack=True),
                        "denominator": wide_d[keep].stack(future_stack=True)})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["value"] = np.where(out["denominator"] > 0, out["numerator"] / out["denominator"], np.nan)
    out = out.reset_index()
    wide = out.pivot(index="rep_id", columns="metric", values="value")
    needed = ("opps_created_per_week", "win_rate", "avg_deal_size", "sales_cycle_days")
    if all(m in wide for m in needed):
        cycle = wide["sales_cycle_days"].where(wide["sales_cycle_days"] > 0)
        value = wide["opps_created_per_week"] * wide["win_rate"] * wide["avg_deal_size"] / cycle
        out = pd.concat([out, pd.DataFrame({"rep_id": wide.index, "metric": "pipeline_velocity", "numerator": np.nan,
                                            "denominator": np.nan, "value": value.to_numpy()})], ignore_index=True)
    out = out.merge(weeks, left_on="rep_id", right_index=True, how="left")
    return out.sort_values(["rep_id", "metric"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("basis", ["closed", "all"])
def test_window_metrics_equal_the_pandas_reference_on_every_window(demo, demo_panel, data, basis):
    left = demo.reps.assign(end_date=pd.NaT)                      # reps who joined late and left early
    left.loc[left.index[:3], "end_date"] = T("2026-02-10")
    left.loc[left.index[3:5], "hire_date"] = T("2026-01-20")
    changed = weekly_panel(SalesData(left, demo.opportunities, demo.activities))
    cut = demo_panel[demo_panel["metric"].isin(["emails_per_week", "touch_gap_open", "stale_opp_share"])]
    cases = [(weekly_panel(data), "2024-01-01", "2024-01-22"), (weekly_panel(data), "2024-01-10", "2024-01-10"),
             (demo_panel, "2026-01-05", "2026-03-23"), (demo_panel, "2025-06-02", "2026-06-22"),
             (changed, "2026-01-05", "2026-03-23"), (changed, "2026-02-02", "2026-04-27"),
             (cut, "2026-01-05", "2026-03-23"), (demo_panel, "2031-01-06", "2031-03-24")]
    for panel, start, end in cases:
        got = window_metrics(panel, T(start), T(end), win_rate_basis=basis)
        want = _reference_window_metrics(panel, start, end, win_rate_basis=basis)
        if want.empty:
            assert got.empty and list(got.columns) == ["rep_id", "metric", "numerator", "denominator", "value",
                                                       "weeks"]
            continue
        pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-12)
        assert got["weeks"].dtype == np.int64 and got["numerator"].dtype == float
