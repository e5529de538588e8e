"""``pipnb status`` and a scheduled review run, against a hand-built plan set: one review overdue, one not due,
one plan still a draft. No notebook runs here (the dashboard reads what is on disk; nothing is due to run)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cliproc import pipnb as forked_pipnb

from pipnb.demo import DEMO_CASES
from pipnb.index_page import sparkline

pytestmark = pytest.mark.slow(4)       # seconds on a quiet machine: scheduled first (conftest.py)

RESPONDER, NON_RESPONDER, ARTICLE = DEMO_CASES["responder"], DEMO_CASES["non_responder"], DEMO_CASES["article"]


def pipnb(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return forked_pipnb(*args, cwd=cwd)


@pytest.fixture(scope="module")
def plans(tmp_path_factory, demo):
    """params/plans: the responder's active plan (its checkpoint 1 reached by the data), the non-responder's
    active plan starting a year later (not due), and a draft for the article's rep."""
    from pipnb.batch import demo_plan, plan_path
    from pipnb.workdir import remember_rep

    root = tmp_path_factory.mktemp("status")
    params = root / "params"
    due = demo_plan(demo, "responder")
    later = demo_plan(demo, "non_responder")
    later = later.model_copy(update={"start": later.start.replace(year=later.start.year + 1)})
    draft = due.model_copy(update={"rep_id": ARTICLE, "rep_name": "Article Rep", "team": "Elsewhere",
                                   "status": "draft", "history": due.history[:1]})
    for plan in (due, later, draft):
        plan.to_yaml(plan_path(params, plan.rep_id))
        remember_rep(root / "reports", plan.rep_id, {"rep_name": plan.rep_name, "team": plan.team,
                                                     "manager": f"Manager of {plan.rep_id}"})
    (params / "plans" / "R99.yaml").write_text(plan_path(params, ARTICLE).read_text().replace(ARTICLE, "R99"))
    return {"root": root, "due": due, "later": later, "draft": draft}


def test_status_json_says_overdue_not_due_and_draft(plans):
    due = plans["due"]
    checkpoint = due.checkpoint_dates()["checkpoint-1"]
    data_date, today = checkpoint + dt.timedelta(days=20), checkpoint + dt.timedelta(days=30)
    result = pipnb(plans["root"], "status", "--format", "json", "--today", f"{today}", "--data-date", f"{data_date}")
    assert result.returncode == 0, result.stderr
    board = json.loads(result.stdout)
    assert board["today"] == f"{today}" and board["data_date"] == f"{data_date}"
    rows = {r["rep_id"]: r for r in board["plans"]}
    assert set(rows) == {RESPONDER, NON_RESPONDER, ARTICLE}              # R99 was never run: no reports, no row
    assert rows[RESPONDER]["manager"] == f"Manager of {RESPONDER}" and rows[ARTICLE]["team"] == "Elsewhere"
    assert rows[RESPONDER]["next_stage"] == "checkpoint-1"
    assert rows[RESPONDER]["next_date"] == f"{checkpoint}"
    assert rows[RESPONDER]["next_state"] == "overdue" and "30 days past" in rows[RESPONDER]["next_note"]
    assert rows[NON_RESPONDER]["next_state"] == "not due"
    assert rows[NON_RESPONDER]["next_note"] == f"the data ends {data_date}"
    assert rows[ARTICLE]["next_state"] == "draft" and rows[ARTICLE]["plan_status"] == "draft"
    assert rows[RESPONDER]["plan_status"] == "active"
    # Most urgent first, within and across teams; no review yet, so every measure is "not reviewed yet".
    assert [r["rep_id"] for r in board["plans"]][0] == RESPONDER
    assert board["teams"][0]["reps"][0] == RESPONDER
    assert {m["status"] for r in board["plans"] for m in r["measures"]} == {"not reviewed yet"}
    assert board["flagged"] == [] and board["scan"] == ""


def test_status_due_within_the_grace_days_and_the_table(plans):
    checkpoint = plans["due"].checkpoint_dates()["checkpoint-1"]
    result = pipnb(plans["root"], "status", "--today", f"{checkpoint + dt.timedelta(days=3)}",
                   "--data-date", f"{checkpoint}")
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if f"({RESPONDER})" in x)
    assert f"next checkpoint-1 {checkpoint} due" in line and "active" in line
    assert "Article Rep (" in result.stdout and "draft" in result.stdout


def test_status_with_a_bad_option_is_one_line(plans):
    result = pipnb(plans["root"], "status", "--today", "someday")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--today" in result.stderr and "not a date" in result.stderr


def test_a_weekly_cron_run_where_nothing_is_due_exits_0(plans, demo_folder):
    """`pipnb run --stage checkpoint-1` every week: the plan not due and the draft are states, not failures."""
    from pipnb.batch import plan_path

    root = plans["root"]
    params = root / "cron-params"
    for plan in (plans["later"], plans["draft"]):
        plan.to_yaml(plan_path(params, plan.rep_id))
    result = pipnb(root, "run", "--data", str(demo_folder), "--stage", "checkpoint-1", "--params", str(params),
                   "--reports", str(root / "cron-reports"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 ok, 0 skipped, 0 failed, 1 not due, 1 draft (2 jobs" in result.stdout
    assert f"draft:\n  {ARTICLE} checkpoint-1  the plan is a draft: activate it first" in result.stdout
    assert not list((root / "cron-reports").rglob("*.ipynb"))            # no kernel was started
    index = (root / "cron-reports" / "index.html").read_text()
    assert ">not due<" in index and ">draft<" in index and "pipnb-status-failed\"" not in index


def test_sparkline_draws_the_weeks_with_gaps():
    svg = sparkline([("w1", 1.0), ("w2", 3.0), ("w3", None), ("w4", 2.0), ("w5", 2.5)])
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert 'points="0.0,15.0 16.0,1.0"' in svg            # the lowest value at the bottom, the highest at the top
    assert sparkline([("w1", 1.0)]) == ""


def test_a_rep_diagnosed_but_not_flagged_is_listed_as_such_not_as_a_missing_plan(tmp_path):
    import nbformat

    from pipnb.batch.index import index_entries, write_index
    from pipnb.dashboard import dashboard
    from pipnb.record import RunRecord, write_record
    from pipnb.workdir import remember_rep

    reports = tmp_path / "reports"
    remember_rep(reports, "R05", {"rep_name": "Sam <b>Lee</b>", "team": "West", "manager": ""})
    nb = nbformat.v4.new_notebook()
    write_record(nb, RunRecord(input_hash="ab", status="ok", as_of="2026-06-28",
                               outcome={"kind": "diagnosis", "rep_id": "R05", "data_end": "2026-06-28"}))
    nbformat.write(nb, reports / "R05" / "diagnose.ipynb")
    (reports / "R05" / "diagnose.html").write_text("<html></html>")
    assert [e.stage for e in index_entries(reports, tmp_path / "params")] == ["diagnose"]     # no "plan — missing"
    board = dashboard(reports, tmp_path / "params")
    assert board.plans == () and board.flagged == ()
    assert [(r.rep_id, r.diagnosis) for r in board.diagnosed] == [("R05", "R05/diagnose.html")]
    assert board.data_date == "2026-06-28"                          # from what the reports recorded
    page = write_index(reports, tmp_path / "params").read_text()
    assert "Diagnosed, not flagged by the latest scan, no plan" in page and "Sam &lt;b&gt;Lee&lt;/b&gt; (R05)" in page
    assert 'class="pipnb-status pipnb-status-missing"' not in page


def test_checkpoint_1_counts_the_dead_opportunities_still_open_and_untouched(demo):
    """Of three dead deals the plan lists, one is closed and one re-engaged after the start: one remains."""
    import dataclasses

    import pandas as pd

    from pipnb.batch import demo_plan
    from pipnb.diagnosis import remaining_dead
    from pipnb.plan import DeadOpportunity
    from pipnb.text import dead_action

    plan = demo_plan(demo, "responder")
    start = pd.Timestamp(plan.start)
    opps = demo.opportunities
    mine = opps[(opps["rep_id"] == RESPONDER) & (opps["outcome"] == "open")]["opp_id"].astype(str).head(3).tolist()
    closed, touched, left = mine
    plan = plan.model_copy(update={"dead_opportunities": [
        DeadOpportunity(opp_id=o, account="A", amount=1000.0, days_since_touch=20.0) for o in mine]})
    acts = demo.activities
    acts = acts[~(acts["opp_id"].astype(str).isin(mine) & (pd.to_datetime(acts["occurred_at"]) >= start))]
    touch = acts.iloc[[0]].assign(activity_id="ACT-bench", rep_id=RESPONDER, opp_id=touched,
                                  occurred_at=start + pd.Timedelta(days=2))
    acts = pd.concat([acts, touch], ignore_index=True)
    opps = opps.copy()
    hit = opps["opp_id"].astype(str) == closed
    opps.loc[hit, "outcome"] = "won"
    opps.loc[hit, "closed_at"] = start + pd.Timedelta(days=3)
    data = dataclasses.replace(demo, opportunities=opps, activities=acts)
    checkpoint = plan.checkpoint_dates()["checkpoint-1"]
    assert remaining_dead(data, plan, checkpoint)["opp_id"].tolist() == [left]
    before_start = plan.start - pd.Timedelta(days=1).to_pytimedelta()
    assert remaining_dead(data, plan, before_start)["opp_id"].tolist() == mine       # nothing done yet
    assert f"close out or re-engage these 3 opportunities by checkpoint 1 ({checkpoint:%d %B %Y})" in dead_action(plan)


# -- only signed states (issue 22): a recommendation waiting for sign-off is a decision due, never a state --------
def _reviewed(root: Path, plan, recommendation: str, extended_end: str = "") -> Path:
    """A working folder with the plan's file and a written report for every review (each as of its own day), the
    final one recommending ``recommendation``, as its notebook records it."""
    import nbformat

    from pipnb.batch import plan_path
    from pipnb.record import RunRecord, write_record
    from pipnb.workdir import remember_rep

    plan.to_yaml(plan_path(root / "params", plan.rep_id))
    folder = root / "reports" / plan.rep_id
    remember_rep(root / "reports", plan.rep_id, {"rep_name": plan.rep_name, "team": plan.team, "manager": "Ann"})
    for stage, day in plan.checkpoint_dates().items():
        outcome = {"kind": "review", "stage": stage, "rep_id": plan.rep_id, "as_of": f"{day}", "data_end": f"{day}"}
        if stage == "final":
            outcome.update(recommendation=recommendation, extended_end=extended_end)
        nb = nbformat.v4.new_notebook()
        write_record(nb, RunRecord(input_hash="ab", status="ok", as_of=f"{day}", outcome=outcome))
        nbformat.write(nb, folder / f"{stage}.ipynb")
        (folder / f"{stage}.html").write_text("<html></html>")
    return root


@pytest.mark.parametrize("recommended, decision, step", [
    ("consequences", "consequences recommended", "close"),
    ("extend", "extension recommended (to 2099-01-01)", "extend"),
    ("complete", "completion recommended", "complete")])
def test_a_final_recommendation_nobody_signed_is_a_decision_due_not_a_state(tmp_path, demo, recommended, decision,
                                                                             step):
    from pipnb.batch import demo_plan
    from pipnb.dashboard import dashboard, format_table
    from pipnb.index_page import render_dashboard

    plan = demo_plan(demo, "non_responder").transition("activate", by="Ann Lee")
    root = _reviewed(tmp_path, plan, recommended, "2099-01-01" if recommended == "extend" else "")
    board = dashboard(root / "reports", root / "params", today=plan.end + dt.timedelta(days=3))
    [row] = board.plans
    assert (row.plan_status, row.start, row.end) == ("active", f"{plan.start}", f"{plan.end}")   # as the file says
    assert row.next_state == "decision due" and row.decision == decision
    assert row.next_label == f"decision due: {decision}"
    assert f"pipnb plan {step} {NON_RESPONDER} --by NAME" in row.next_note and "nothing is decided" in row.next_note
    line = next(x for x in format_table(board).splitlines() if f"({NON_RESPONDER})" in x)
    assert f"  active  {plan.start} to {plan.end}  " in line and f"next decision due: {decision}" in line
    assert "extended" not in line
    page = render_dashboard(board)
    assert f"decision due: {decision}" in page and "<strong>active</strong>" in page


def test_a_signed_extension_is_shown_with_its_new_end_and_no_decision(tmp_path, demo):
    from pipnb.batch import demo_plan
    from pipnb.dashboard import dashboard, format_table

    plan = demo_plan(demo, "non_responder").transition("activate", by="Ann Lee")
    root = _reviewed(tmp_path, plan, "extend", "2099-01-01")
    board = dashboard(root / "reports", root / "params", today=plan.end + dt.timedelta(days=3))
    assert board.plans[0].plan_status == "active"                # recommended, not signed: the old end stands
    signed = plan.transition("extend", by="Kim HR", extension_weeks=6)
    signed.to_yaml(root / "params" / "plans" / f"{NON_RESPONDER}.yaml")
    [row] = dashboard(root / "reports", root / "params", today=plan.end + dt.timedelta(days=3)).plans
    assert (row.plan_status, row.end) == ("extended", f"{signed.end}") and signed.end > plan.end
    assert row.decision == "" and row.next_stage == "final" and row.next_date == f"{signed.end}"
    assert row.next_state == "not due" and "signed by Kim HR" in row.status_note
    closed = signed.transition("close", by="Kim HR")
    closed.to_yaml(root / "params" / "plans" / f"{NON_RESPONDER}.yaml")
    [row] = dashboard(root / "reports", root / "params").plans
    assert (row.plan_status, row.next_state, row.decision) == ("not completed", "closed", "")
    assert "decision due" not in format_table(dashboard(root / "reports", root / "params"))


def test_the_dead_deal_action_counts_in_words_and_names_the_policy(demo):
    from pipnb.batch import demo_plan
    from pipnb.plan import DeadOpportunity
    from pipnb.text import dead_action

    plan = demo_plan(demo, "responder")
    one = plan.model_copy(update={"dead_opportunities": [DeadOpportunity(opp_id="O1", days_since_touch=20.0)]})
    assert "close out or re-engage this opportunity by checkpoint 1" in dead_action(one)
    assert "It was open" in dead_action(one) and "the policy's rule" in dead_action(one)
    assert "article" not in dead_action(one)
    none = plan.model_copy(update={"dead_opportunities": []})
    assert dead_action(none).startswith("No open opportunity had gone more than 14 days")
    untouched = none.model_copy(update={"targets": [t for t in plan.targets
                                                    if t.metric != "avg_days_between_touches"]})
    assert "is unknown" in dead_action(untouched) and "No open opportunity" not in dead_action(untouched)
