"""A date a user gives is ISO 8601 only, on the command line, in a notebook's parameters and in the API:
``06/01/2026`` is June 1 to some and January 6 to others, so it is refused (one line naming the value and the
format), never read silently; ``2026-06-01`` and a timestamp ``2026-06-01T09:00`` are taken."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import pipnb as pn
from pipnb.dates import YEARS, DateError, read_date, read_day
from pipnb.demo import DEMO_CASES
from pipnb.parameters import check_parameters

ARTICLE = DEMO_CASES["article"]
#: Each of these is refused everywhere: day/month or month/day, no zero padding, words, a basic-format day.
AMBIGUOUS = ["06/01/2026", "01/06/2026", "07/06/2026", "2026-6-1", "June 1", "20260601", "1 June 2026",
             "2026/06/01", "2026-W22-1"]


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_anything_but_iso_is_one_line_naming_the_value_and_the_format(text):
    with pytest.raises(DateError) as caught:
        read_date(text, "as_of")
    message = str(caught.value)
    assert isinstance(caught.value, pn.PipnbError) and "\n" not in message
    assert message.startswith(f"as_of: '{text}' is not a date") and "YYYY-MM-DD" in message


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-06-01", dt.datetime(2026, 6, 1)),
    (" 2026-06-01 ", dt.datetime(2026, 6, 1)),
    ("2026-06-01T09:00", dt.datetime(2026, 6, 1, 9, 0)),
    ("2026-06-01 09:00:30", dt.datetime(2026, 6, 1, 9, 0, 30)),
    ("2026-06-01T09:00:00.123456789", dt.datetime(2026, 6, 1, 9, 0, 0, 123456)),
    ("2026-06-01T23:30-05:00", dt.datetime(2026, 6, 1, 23, 30)),      # the day the user wrote, not UTC's
    ("2026-06-01T09:00Z", dt.datetime(2026, 6, 1, 9, 0)),
    (dt.date(2026, 6, 1), dt.datetime(2026, 6, 1)),
    (dt.datetime(2026, 6, 1, 9), dt.datetime(2026, 6, 1, 9)),
    (pd.Timestamp("2026-06-01"), dt.datetime(2026, 6, 1)),
    (np.datetime64("2026-06-01"), dt.datetime(2026, 6, 1)),
    (None, None),
])
def test_iso_text_and_date_objects_are_taken(value, expected):
    assert read_date(value, "as_of") == expected


@pytest.mark.parametrize(("value", "words"), [
    ("", "empty"), ("   ", "empty"), ("NaT", "not a date"), ("nan", "not a date"), (pd.NaT, "not a date"),
    (float("nan"), "not a date"), (20260601, r"\(int\) is not a date"), (np.datetime64("NaT"), "not a date"),
    ("2026-02-30", "not a real day"), ("2026-13-01", "not a real day"),
    ("9999-12-31", "out of range"), ("1677-01-01", "out of range"), (dt.date(1, 1, 1), "out of range"),
])
def test_empty_missing_impossible_and_far_off_dates_are_refused(value, words):
    with pytest.raises(DateError, match=words):
        read_date(value, "start")


def test_the_range_is_the_years_a_crm_and_its_plans_use():
    assert read_day(f"{YEARS[0]}-01-01", "d") == dt.date(YEARS[0], 1, 1)
    assert read_day(f"{YEARS[1]}-12-31", "d") == dt.date(YEARS[1], 12, 31)


# -- the API ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dx(demo, demo_panel):
    return pn.diagnose(demo, ARTICLE, panel=demo_panel)


@pytest.mark.parametrize("text", ["06/01/2026", "01/06/2026", "2026-6-1", "June 1"])
def test_the_api_refuses_an_ambiguous_date_in_every_function_that_takes_one(demo, demo_panel, dx, text):
    calls = {
        "as_of": [lambda: pn.diagnose(demo, ARTICLE, as_of=text, panel=demo_panel),
                  lambda: pn.scorecard(demo, as_of=text, panel=demo_panel),
                  lambda: pn.weekly_panel(demo, as_of=text),
                  lambda: pn.touch_gaps(demo, text)],
        "since": [lambda: pn.scorecard(demo, since=text, panel=demo_panel)],
        "on": [lambda: pn.peers_of(demo, ARTICLE, on=text)],
        "start": [lambda: pn.window_metrics(demo_panel, text, "2026-06-28")],
    }
    for name, funcs in calls.items():
        for call in funcs:
            with pytest.raises(pn.PipnbError, match=f"^{name}: '{text}' is not a date: use YYYY-MM-DD"):
                call()
    with pytest.raises(pn.PlanError, match=f"^start: '{text}' is not a date: use YYYY-MM-DD, e.g. '2026-06-29'"):
        pn.draft_plan(dx, start=text)


def test_a_timestamp_or_a_date_object_is_the_same_window_as_its_day(demo, demo_panel, dx):
    day = pn.scorecard(demo, as_of="2026-06-01", panel=demo_panel).attrs
    for same in ("2026-06-01T09:00", dt.date(2026, 6, 1), pd.Timestamp("2026-06-01 17:45")):
        other = pn.scorecard(demo, as_of=same, panel=demo_panel).attrs
        assert (other["window_start"], other["window_end"]) == (day["window_start"], day["window_end"])
    assert str(pn.draft_plan(dx, start="2026-07-06T08:00").start) == "2026-07-06"
    assert str(pn.draft_plan(dx, start=dt.date(2026, 7, 6)).start) == "2026-07-06"


def test_a_plan_start_before_the_diagnosis_window_is_a_plan_error_with_the_default(dx):
    with pytest.raises(pn.PlanError, match=r"^start: 2025-01-06 is not after the diagnosis window's first day "
                                           r"\(2026-04-06\).*leave the start out for 2026-06-29"):
        pn.draft_plan(dx, start="2025-01-06")


# -- notebook parameters --------------------------------------------------------------------------------------------
DECLARED = {"data_source": str, "rep_id": str, "as_of": str, "start": str}


@pytest.mark.parametrize("text", ["06/01/2026", "2026-6-1", "June 1"])
def test_a_date_parameter_that_is_not_iso_is_refused_with_how_to_pass_it(text):
    namespace = {"data_source": "", "rep_id": "R01", "as_of": text, "start": ""}
    with pytest.raises(pn.PipnbError, match=f"parameter 'as_of': '{text}' is not a date: use YYYY-MM-DD "
                                            r"\(pass e\.g\. -p as_of 2026-06-01\)"):
        check_parameters(namespace, DECLARED)


def test_date_parameters_empty_iso_or_a_date_object_pass_and_become_iso_text():
    namespace = {"data_source": "", "rep_id": "R01", "as_of": dt.date(2026, 6, 1), "start": "2026-07-06"}
    check_parameters(namespace, DECLARED)
    assert namespace["as_of"] == "2026-06-01" and namespace["start"] == "2026-07-06"
    empty = {"data_source": "", "rep_id": "R01", "as_of": "", "start": ""}
    check_parameters(empty, DECLARED)
    with pytest.raises(pn.PipnbError, match="parameter 'start'"):            # dates= names them explicitly
        check_parameters({"rep_id": "R01", "start": "07/06/2026"}, {"rep_id": str, "start": str}, dates=["start"])
    check_parameters({"rep_id": "R01", "start": "07/06/2026"}, {"rep_id": str, "start": str}, dates=[])


# -- the command line -----------------------------------------------------------------------------------------------
def _cli(*args: str):
    from pipnb.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(("args", "option"), [
    (["scan", "--as-of", "06/01/2026"], "--as-of"),
    (["scan", "--since", "01/06/2026"], "--since"),
    (["diagnose", "--rep", "R01", "--as-of", "2026-6-1"], "--as-of"),
    (["plan", "--rep", "R01", "--as-of", "June 1"], "--as-of"),
    (["plan", "--rep", "R01", "--start", "07/06/2026"], "--start"),
    (["run", "--stage", "diagnose", "--reps", "R01", "--as-of", "06/01/2026"], "--as-of"),
    (["status", "--data-date", "06/01/2026"], "--data-date"),
    (["status", "--today", "01/06/2026"], "--today"),
])
def test_every_date_option_refuses_an_ambiguous_date_before_anything_runs(demo_folder, tmp_path, args, option):
    data = ["--data", str(demo_folder)] if args[0] != "status" else ["--reports", str(tmp_path)]
    result = _cli(*args[:1], *data, *args[1:])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    value = args[args.index(option) + 1]
    assert option in line and f"'{value}' is not a date" in line and "YYYY-MM-DD" in line, line
    assert not list(tmp_path.iterdir())                                     # nothing written


def test_plan_event_dates_are_iso_too(tmp_path):
    for option, value in (("--date", "06/01/2026"), ("--date", "2026-6-1")):
        result = _cli("plan", "event", "R01", "--params", str(tmp_path), "--kind", "territory", option, value,
                      "--note", "moved", "--by", "Mia")
        assert result.exit_code == 2 and f"'{value}' is not a date (use YYYY-MM-DD)" in result.stderr, result.output


def test_a_plans_signed_steps_and_events_take_iso_text_and_refuse_the_rest(demo):
    plan = pn.demo_plan(demo).model_copy(update={"status": "draft"})
    active = plan.transition("activate", by="Mia", on=str(plan.start))              # ISO text is a date here too
    assert active.history[-1].date == plan.start
    day = plan.diagnosis_window.end
    signed = active.record_event("territory", on=day.isoformat(), note="accounts moved", by="Mia")
    assert signed.history[-1].event.start == day
    for text in ("07/01/2026", "2026-7-1"):
        with pytest.raises(pn.PlanError, match=f"^on: '{text}' is not a date \\(use YYYY-MM-DD\\)"):
            active.record_event("territory", on=text, note="x", by="Mia")
        with pytest.raises(pn.PlanError, match=f"^on: '{text}' is not a date"):
            active.transition("acknowledge", by="Mia", on=text)
