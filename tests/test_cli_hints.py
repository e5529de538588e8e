"""A user's wrong value gets a hint: every command that takes a rep says "did you mean 'R07'?" for ``r07`` (the one
helper, :func:`pipnb.data.rep_hint`, the API's and ``diagnose``'s), and the API's review says what to do when the
data does not reach the review, the stage is unknown or the plan is not a plan."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import pipnb as pn
from pipnb.demo import DEMO_CASES
from pipnb.errors import PipnbError
from pipnb.workdir import plan_path

ARTICLE = DEMO_CASES["article"]            # "R07"
TYPO = ARTICLE.lower()


def _cli(*args) -> tuple[int, str]:
    """The real command line in this process: its exit code and its one error line (stderr)."""
    from pipnb.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stderr.strip()


@pytest.fixture(scope="module")
def plan(demo, demo_panel):
    return pn.draft_plan(pn.diagnose(demo, ARTICLE, panel=demo_panel))


@pytest.fixture
def params(tmp_path, plan) -> Path:
    plan.to_yaml(plan_path(tmp_path / "params", ARTICLE))
    return tmp_path / "params"


@pytest.mark.parametrize("args", [
    ["plan", "activate", TYPO, "--by", "Mia"],
    ["plan", "acknowledge", TYPO, "--by", "Mia"],
    ["plan", "extend", TYPO, "--by", "Mia"],
    ["plan", "complete", TYPO, "--by", "Mia", "--note", "done"],
    ["plan", "close", TYPO, "--by", "Mia", "--note", "not met"],
    ["plan", "event", TYPO, "--kind", "territory", "--date", "2026-07-01", "--note", "moved", "--by", "Mia"],
    ["plan", "history", TYPO],
])
def test_every_plan_command_says_did_you_mean_for_a_rep_in_the_wrong_case(params, args):
    before = plan_path(params, ARTICLE).read_bytes()
    code, line = _cli(*args, "--params", params)
    assert code == 2 and "\n" not in line, line
    assert line.startswith(f"pipnb: error: no plan for {TYPO} ") and line.endswith(f"did you mean '{ARTICLE}'?")
    assert plan_path(params, ARTICLE).read_bytes() == before                    # nothing signed


def test_a_rep_with_no_plan_and_no_close_one_lists_the_plans_and_how_to_draft(params):
    code, line = _cli("plan", "activate", "Z99", "--by", "Mia", "--params", params)
    assert code == 2 and "did you mean" not in line, line
    assert f"the plans there are for: {ARTICLE}" in line and "draft it with pipnb plan --data SRC --rep Z99" in line
    code, line = _cli("plan", "history", "R07", "--params", params.parent / "empty")
    assert code == 2 and "there is no plan in" in line and "draft it with" in line, line


def test_review_of_a_plan_file_in_the_wrong_case_names_the_file_that_is_there(params, demo_folder):
    code, line = _cli("review", "--data", demo_folder, "--plan", params / "plans" / f"{TYPO}.yaml",
                      "--checkpoint", "1", "--format", "json")
    assert code == 2 and line.endswith(f"file not found; did you mean '{ARTICLE}.yaml'?"), line


@pytest.mark.parametrize("args", [
    ["diagnose", "--rep", TYPO],
    ["plan", "--rep", TYPO],
    ["run", "--stage", "diagnose", "--reps", f"{TYPO}"],
])
def test_commands_that_read_the_data_say_did_you_mean_too(demo_folder, tmp_path, args):
    code, line = _cli(*args[:1], "--data", demo_folder, *args[1:], "--reports", tmp_path / "reports",
                      "--params", tmp_path / "params")
    assert code == 2 and "\n" not in line and f"did you mean '{ARTICLE}'?" in line, line


# -- the API's review: what to do -----------------------------------------------------------------------------------
def test_a_review_the_data_does_not_reach_names_the_review_it_covers_and_the_data_it_needs(demo, demo_panel):
    plan = pn.demo_plan(demo)
    later = plan.model_copy(update={"start": plan.start + dt.timedelta(weeks=4)})
    ends = later.checkpoint_dates()
    data_end = demo.period[1].date()
    covered = [s for s in later.stages() if later.data_reaches(s, data_end)]
    assert covered and "final" not in covered                       # the case the hint is for
    with pytest.raises(pn.PlanError) as caught:
        pn.review(demo, later, "final", panel=demo_panel)
    assert str(caught.value) == (
        f"final: the data ends {data_end}; the final review needs data to {ends['final']}: run {covered[-1]} "
        f"(ends {ends[covered[-1]]}) with this data, or pass data that reaches {ends['final']}")
    first = later.stages()[0]
    much_later = plan.model_copy(update={"start": plan.start + dt.timedelta(weeks=30)})
    with pytest.raises(pn.PlanError, match=f"no review is due with this data \\({first} ends "):
        pn.review(demo, much_later, "final", panel=demo_panel)


@pytest.mark.parametrize("stage", ["midterm", 0, 7, "checkpoint-9", None])
def test_an_unknown_review_lists_the_plans_reviews(demo, demo_panel, stage):
    with pytest.raises(pn.PlanError, match="use checkpoint-1, checkpoint-2, checkpoint-3 or final"):
        pn.review(demo, pn.demo_plan(demo), stage, panel=demo_panel)


def test_a_review_of_something_that_is_not_a_plan_says_how_to_load_one(demo):
    with pytest.raises(pn.PlanError, match=r"review takes a plan, not a str: .*Plan\.from_yaml"):
        pn.review(demo, "params/plans/R07.yaml", 1)
    with pytest.raises(pn.PipnbError, match="'nobody' is not a demo case"):
        pn.demo_plan(demo, "nobody")


def test_api_functions_given_the_wrong_object_say_what_they_take():
    data = pn.demo_data()
    with pytest.raises(PipnbError, match=r"plan_peers takes a plan, not a str: pn.plan_peers\(data, pn.Plan"):
        pn.plan_peers(data, "R07")
    with pytest.raises(PipnbError, match=r"flagged_reps takes a scan's scorecard, not a str: pn.flagged_reps\("):
        pn.flagged_reps("R07")
    with pytest.raises(PipnbError, match="not a table without the scorecard's rep_id, metric and flag columns"):
        pn.flagged_reps(pd.DataFrame({"rep_id": ["R07"]}))


def test_a_status_that_is_not_one_names_the_statuses_and_how_to_sign_a_step(plan):
    with pytest.raises(pn.PlanError, match=r"'bogus' is not a plan status \(use draft, active, acknowledged, "
                                           r"extended, completed, not-completed\).*pipnb plan activate"):
        plan.with_status("bogus")
    assert plan.with_status("active").status == "active"


def test_an_extension_of_no_weeks_says_the_range_not_the_policy_key(plan):
    active = plan.transition("activate", by="Ann Lee")
    with pytest.raises(pn.PlanError, match="an extension of 0 weeks is not one: extend by 1 to 26 weeks"):
        active.transition("extend", by="Ann Lee", extension_weeks=0)
    with pytest.raises(pn.PlanError, match=r"extension_weeks=, or the policy's review.extension_weeks"):
        active.transition("extend", by="Ann Lee")
    assert active.transition("extend", by="Ann Lee", extension_weeks=2).weeks == plan.weeks + 2
