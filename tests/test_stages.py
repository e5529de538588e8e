"""The stage vocabulary (pipnb.stages), and a policy with four checkpoints through the real command line."""

import datetime as dt
import json
import subprocess

import pytest
import yaml
from cliproc import pipnb

import pipnb as pn
from pipnb.demo import DEMO_CASES, demo_plan_start
from pipnb.errors import PlanError
from pipnb.policy import DEFAULT_POLICY, Policy
from pipnb.stages import lifecycle_stages, parse_stage, review_stages, stage_name, stage_title

RESPONDER = DEMO_CASES["responder"]
FOUR = ["checkpoint-1", "checkpoint-2", "checkpoint-3", "checkpoint-4", "final"]


def pipnb_cli(*args: str) -> subprocess.CompletedProcess:
    return pipnb(*args)


def test_review_stages_follow_the_number_of_checkpoints():
    assert review_stages(3) == ["checkpoint-1", "checkpoint-2", "checkpoint-3", "final"]
    assert review_stages(4) == FOUR
    assert review_stages(0) == ["final"]
    assert lifecycle_stages(1) == ["scan", "diagnose", "plan", "checkpoint-1", "final"]


@pytest.mark.parametrize("value, stage", [(2, "checkpoint-2"), ("2", "checkpoint-2"), ("checkpoint-4", "checkpoint-4"),
                                          ("final", "final"), (" Final ", "final")])
def test_a_review_is_named_by_number_by_name_or_final(value, stage):
    assert parse_stage(value, 4) == stage


@pytest.mark.parametrize("value", [5, "0", "checkpoint-5", "checkpoint-01", "plan", "week-2", ""])
def test_a_review_the_plan_lacks_is_an_error_naming_the_allowed_values(value):
    with pytest.raises(PlanError) as err:
        parse_stage(value, 4, file="plans/R07.yaml")
    message = str(err.value)
    assert message.startswith("plans/R07.yaml: ") and "\n" not in message
    assert "checkpoint-1, checkpoint-2, checkpoint-3, checkpoint-4 or final" in message


def test_stage_names_and_titles():
    assert [stage_name(s) for s in ("scan", "diagnose", "plan", 3, "final")] == \
        ["scan", "diagnose", "plan", "checkpoint-3", "final"]
    with pytest.raises(PlanError, match="is not a stage"):
        stage_name("review")
    assert [stage_title(s) for s in ("scan", "diagnose", "plan", "checkpoint-4", "final")] == \
        ["Team scan", "Diagnosis", "Performance improvement plan", "Checkpoint 4 review", "Final review"]


@pytest.fixture(scope="module")
def four_checkpoints(tmp_path_factory, demo, demo_panel):
    """params/ with a 10-week policy reviewed at weeks 2, 4, 6 and 8, and the responder's active plan drafted
    by it (starting where the demo's plans start)."""
    params = tmp_path_factory.mktemp("four") / "params"
    raw = yaml.safe_load(DEFAULT_POLICY.read_text())
    raw.update(plan_weeks=10, checkpoints=[2, 4, 6, 8])
    (params / "plans").mkdir(parents=True)
    (params / "policy.yaml").write_text(yaml.safe_dump(raw))
    policy = Policy.from_yaml(params / "policy.yaml")
    start = demo_plan_start()
    dx = pn.diagnose(demo, RESPONDER, as_of=start - dt.timedelta(days=1), panel=demo_panel)
    plan = pn.draft_plan(dx, start=start, policy=policy).with_status("active", on=start.date())
    return params, plan.to_yaml(params / "plans" / f"{RESPONDER}.yaml")


def test_a_four_checkpoint_policy_works_end_to_end(four_checkpoints, demo_folder):
    params, path = four_checkpoints
    plan = pn.Plan.from_yaml(path)
    assert plan.stages() == FOUR and all(len(t.glide) == 5 for t in plan.targets)
    assert (plan.checkpoint_week(4), plan.checkpoint_week("checkpoint-2"), plan.checkpoint_week("final")) == (8, 4, 10)
    reports = params.parent / "reports"
    where = ["--data", str(demo_folder), "--plan", str(path), "--params", str(params), "--reports", str(reports)]

    report = pipnb_cli("review", *where, "--checkpoint", "4")
    assert report.returncode == 0, report.stdout + report.stderr
    html = (reports / RESPONDER / "checkpoint-4.html").read_text()
    assert "Checkpoint 4 review" in html
    index = (reports / "index.html").read_text()
    assert f'href="{RESPONDER}/checkpoint-4.html"' in index
    for stage in ("checkpoint-1", "checkpoint-2", "checkpoint-3", "final"):     # expected by the plan, not run
        assert f"<td>{stage}</td>" in index

    final = pipnb_cli("review", *where, "--checkpoint", "final", "--format", "json")
    assert final.returncode == 0, final.stderr
    out = json.loads(final.stdout)
    assert out["stage"] == "final" and out["recommendation"] in ("complete", "extend", "consequences")
    assert out["window_start"] == f"{plan.start + dt.timedelta(weeks=8)}"
    assert out["as_of"] == f"{plan.start + dt.timedelta(weeks=10, days=-1)}" == out["plan_end"]

    again = pipnb_cli("run", "--data", str(demo_folder), "--stage", "checkpoint-4", "--plans", str(path),
                      "--params", str(params), "--reports", str(reports))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 ok, 1 skipped, 0 failed" in again.stdout               # the same job, up to date


@pytest.mark.parametrize("command", [["review", "--checkpoint", "5"], ["review", "--checkpoint", "checkpoint-5"],
                                     ["run", "--stage", "checkpoint-5"], ["run", "--stage", "review"]])
def test_a_stage_the_plan_lacks_is_one_line_and_exit_code_2(four_checkpoints, demo_folder, tmp_path, command):
    params, path = four_checkpoints
    where = ["--plan", str(path)] if command[0] == "review" else ["--plans", str(path)]
    result = pipnb_cli(*command, "--data", str(demo_folder), *where, "--params", str(params),
                       "--reports", str(tmp_path / "reports"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pipnb: error: ")
    assert "checkpoint-4 or final" in line or "checkpoint-N or final" in line
