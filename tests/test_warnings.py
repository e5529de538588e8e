"""Warnings that matter (pipnb.alerts): one line each in check, the scan and the team-scan report.

Known answers on tiny hand-built teams, then worlds of ``tests/simworld.py`` (the project's independent
generator) broken the way exports break: a sync whose created dates stop in the window, a sync that stops
logging emails. Measured: how often a warning fires on a healthy world (wrong when nothing is wrong) and on a
broken one (right when something is), and that "opportunities created" is never judged, dismissed as 0% of the
win gap or "not met" when nobody created an opportunity.
"""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import simworld as sw
from click.testing import CliRunner

import pipnb as pn
from pipnb.alerts import ALL_ZERO, LEDGER, NO_CREATED, NOT_MEASURABLE, card_warnings, ledger_warnings, warning_line
from pipnb.cli import main
from pipnb.data import SalesData
from pipnb.ledger import ONE_OUTCOME, DataQuality, LoadWarning
from pipnb.quality import quality_report, quality_section
from pipnb.scan import format_scan
from pipnb.text import esc, scan_summary

T = pd.Timestamp


def team(created: str = "2024-01-03", *, emails: bool = True, old: str = "2023-11-01") -> SalesData:
    """Six reps; each has four deals created in November, two created on ``created`` and the next day, and works
    them through January 2024 (calls and meetings every few days; emails too unless ``emails`` is false)."""
    reps = pd.DataFrame({"rep_id": [f"R{i}" for i in range(6)], "rep_name": [f"Rep {i}" for i in range(6)],
                         "team": "East", "hire_date": T("2020-01-06")})
    opps, acts = [], []
    kinds = ["email", "call", "meeting"] if emails else ["call", "meeting"]
    for i in range(6):
        for k in range(6):
            day = T(old) + pd.Timedelta(days=9 * k) if k < 4 else T(created) + pd.Timedelta(days=k - 4)
            outcome = ["won", "lost", "open"][(i + k) % 3]
            opps.append((f"O{i}{k}", f"R{i}", day, None if outcome == "open" else T("2024-01-20") + pd.Timedelta(
                days=k), outcome, 1000.0))
        for j in range(20):          # work through January on the rep's deals
            when = T("2024-01-01") + pd.Timedelta(days=1.4 * j + i / 10)
            acts.append((f"A{i}{j}", f"R{i}", kinds[j % len(kinds)], when, f"O{i}{j % 6}"))
    opps = pd.DataFrame(opps, columns=["opp_id", "rep_id", "created_at", "closed_at", "outcome", "amount"])
    acts = pd.DataFrame(acts, columns=["activity_id", "rep_id", "kind", "occurred_at", "opp_id"])
    if not emails:       # emails logged once, long ago: the source has them, the window none
        acts.loc[len(acts)] = ("E0", "R0", "email", T("2023-11-02"), None)
    return SalesData(reps, opps, acts)


def test_a_window_without_created_deals_is_said_and_not_measured():
    data = team(created="2023-12-01")        # every deal created before the window of 2024-01-08 .. 2024-01-28
    card = pn.scorecard(data, as_of="2024-01-28", weeks=3)
    created = card[card["metric"] == "opps_created_per_week"]
    assert (created["flag"] == "unavailable").all() and (created["why_unavailable"] == NOT_MEASURABLE).all()
    warnings = card_warnings(card, data)
    assert [w.kind for w in warnings] == [NO_CREATED]
    assert warning_line(warnings[0]) == (
        "nobody created an opportunity from 2024-01-08 to 2024-01-28 (6 reps): opportunities created per week is "
        "not measurable in this window, so it is neither judged nor a target; check the source's created dates")
    assert f"warning: {warning_line(warnings[0])}" in format_scan(card, data).splitlines()
    assert f"**Warning**: {esc(warning_line(warnings[0]))}." in scan_summary(card, data)


def test_deals_created_in_the_window_raise_no_warning():
    data = team(created="2024-01-10")
    card = pn.scorecard(data, as_of="2024-01-28", weeks=3)
    assert card_warnings(card, data) == []
    assert not card[card["metric"] == "opps_created_per_week"]["why_unavailable"].eq(NOT_MEASURABLE).any()


def test_a_metric_zero_for_every_rep_is_said_once():
    data = team(created="2024-01-10", emails=False)
    card = pn.scorecard(data, as_of="2024-01-28", weeks=3)
    warnings = card_warnings(card, data)
    assert [(w.kind, w.metric) for w in warnings] == [(ALL_ZERO, "emails_per_week")]
    assert warning_line(warnings[0]).startswith("emails per week is 0 for every rep from 2024-01-08 to 2024-01-28")


def test_the_loads_own_warnings_are_printed_as_the_ledger_words_them():
    warning = LoadWarning(kind=ONE_OUTCOME, table="opportunities", file="deals.csv", reps=("R1",), left="won",
                          count=2, reasons=("closed_at: is empty on a closed (won or lost) deal",))
    data = dataclasses.replace(team(created="2024-01-10"), quality=DataQuality(warnings=(warning, warning)))
    got = ledger_warnings(data)
    assert [(w.kind, w.text) for w in got] == [(LEDGER, warning.text)]        # once, however often recorded
    assert "R1" in warning.text and "2 lost deals set aside" in warning.text
    report = quality_report(data)
    assert report.warnings == (warning.text,)
    assert f"**Warning**: {esc(warning.text)}." in quality_section(data)


def test_check_and_scan_print_the_warning_line(tmp_path):
    data = team(created="2023-07-01", old="2023-06-01")     # nothing created in check's 12 weeks to 2024-01-28
    folder = data.write(tmp_path / "data", format="csv")
    runner = CliRunner()
    check = runner.invoke(main, ["check", "--data", str(folder)])
    assert check.exit_code == 0
    lines = [line for line in check.stdout.splitlines() if "warning:" in line]
    assert len(lines) == 1 and "nobody created an opportunity from" in lines[0]
    assert json.loads(runner.invoke(main, ["check", "--data", str(folder), "--format", "json"]).stdout)["warnings"]
    scan = runner.invoke(main, ["scan", "--data", str(folder), "--format", "csv"])
    assert scan.exit_code == 0
    assert [line for line in scan.stderr.splitlines() if line.startswith("pipnb: warning: nobody created")]
    table = runner.invoke(main, ["scan", "--data", str(folder)])
    assert any(line.startswith("warning: nobody created") for line in table.stdout.splitlines())


# -- worlds ---------------------------------------------------------------------------------------------
def without_creation(world: sw.World, first: pd.Timestamp, *, blank: bool = False) -> SalesData:
    """The world as a sync that stamps every opportunity created from ``first`` on with a created date before it
    (``blank``: with none), so that creation from ``first`` on is unknown to the data."""
    data = world.data
    opps = data.opportunities.copy()
    late = opps["created_at"] >= first
    opps.loc[late, "created_at"] = pd.NaT if blank else first - pd.Timedelta(days=1)
    return dataclasses.replace(data, opportunities=opps)


def without_emails(world: sw.World, first: pd.Timestamp) -> SalesData:
    """The world as a sync that stopped logging emails on ``first``."""
    acts = world.data.activities
    stopped = (acts["kind"] == "email") & (acts["occurred_at"] >= first)
    return dataclasses.replace(world.data, activities=acts[~stopped])


SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
def test_healthy_and_broken_worlds(seed):
    world = sw.generate(seed)
    as_of = world.week_end(sw.DIAGNOSIS_WEEK)
    first = world.week_start(sw.DIAGNOSIS_FIRST_WEEK)
    healthy = pn.scorecard(world.data, as_of=as_of, panel=world.panel)
    assert card_warnings(healthy, world.data) == []                      # no false warning
    broken = without_creation(world, first)
    card = pn.scorecard(broken, as_of=as_of)
    assert [w.kind for w in card_warnings(card, broken)] == [NO_CREATED]
    created = card[card["metric"] == "opps_created_per_week"]
    assert (created["flag"] == "unavailable").all()                      # never "in line", never a shortfall
    dx = pn.diagnose(broken, world.rep_id(0), as_of=as_of)
    share = dx.drivers.set_index("metric").loc["opps_created_per_week", "explains"]
    assert not np.isfinite(share)                                        # unknown, not "0% of the gap"
    silent = without_emails(world, first)
    card = pn.scorecard(silent, as_of=as_of)
    assert [(w.kind, w.metric) for w in card_warnings(card, silent)] == [(ALL_ZERO, "emails_per_week")]


def test_a_creation_target_is_no_data_when_nobody_creates_during_the_plan():
    world = sw.generate(11, changes=sw.low_rep("opps"))
    rep = world.rep_id(0)
    dx = pn.diagnose(world.data, rep, as_of=world.week_end(sw.DIAGNOSIS_WEEK), panel=world.panel)
    plan = pn.draft_plan(dx, start=world.week_start(sw.PLAN_START_WEEK).date(), reason="test")
    assert "opps_created_per_week" in [t.metric for t in plan.targets]
    broken = without_creation(world, world.week_start(sw.PLAN_START_WEEK), blank=True)   # diagnosis data intact
    with pytest.warns(UserWarning, match="not the data it was drafted from"):     # the sync did change rows
        table = pn.review(broken, plan, "final").table.set_index("metric")
    assert table.loc["opps_created_per_week", "status"] == "no data"
    normal = pn.review(world.data, plan, "final").table.set_index("metric")
    assert normal.loc["opps_created_per_week", "status"] != "no data"
