"""Diagnosis, plan drafting, plan YAML and reviews on the demo team (in-process, no notebooks)."""

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from cliproc import pipnb

import pipnb as pn
from pipnb.demo import DEMO_CASES, demo_plan_start
from pipnb.errors import PlanError
from pipnb.plan import Plan
from pipnb.policy import Policy
from pipnb.schema import METRICS

pytestmark = pytest.mark.slow(11)       # seconds on a quiet machine: scheduled first (conftest.py)

POLICY = Policy.from_yaml()
# The article rep's win rate and follow-up ratio fall short beyond noise in the 12 weeks to 26 April (z -2.7 and
# -3.2 against the -2.50 the false-flag budget sets once it covers every flaggable metric); in the demo's last 12
# weeks the win rate sits inside that limit (z about -2.1): "below peers, within noise" there.
ARTICLE_AS_OF = "2026-04-26"


@pytest.fixture(scope="module")
def article(demo, demo_panel):
    return pn.diagnose(demo, DEMO_CASES["article"], as_of=ARTICLE_AS_OF, panel=demo_panel)


def test_scan_flags_the_article_rep_on_win_rate_and_followup_not_volume(demo, demo_panel):
    card = pn.scorecard(demo, as_of=ARTICLE_AS_OF, panel=demo_panel)   # the policy's basis: deals closed
    flags = card[card["rep_id"] == DEMO_CASES["article"]].set_index("metric")["flag"]
    assert flags["win_rate"] == "shortfall"
    assert flags["followup_meeting_ratio"] == "shortfall"
    assert flags["opps_created_per_week"] == "in line"
    assert flags["first_meetings_per_week"] == "in line"
    last = pn.scorecard(demo, panel=demo_panel)
    rows = last[last["rep_id"] == DEMO_CASES["article"]].set_index("metric")
    crit = last.attrs["z_crit"]
    for metric in ("win_rate", "followup_meeting_ratio"):         # still low at the data's end: the word follows z
        z, flag = rows.loc[metric, "z"], rows.loc[metric, "flag"]
        assert z < -2 and flag == ("shortfall" if z <= -crit else "below peers, within noise")


def test_scan_finds_the_volume_and_stale_cases(demo, demo_panel):
    full = pn.scorecard(demo, panel=demo_panel)
    card = full.set_index(["rep_id", "metric"])["flag"]
    # the volume case is the lowest of its team on opportunities created, but its team spreads so widely
    # (1.8 to 4.7 a week) that 1.2 is not beyond the peers' natural spread: it is reported, with the level
    # this window would flag below, not flagged
    volume = full.set_index(["rep_id", "metric"]).loc[(DEMO_CASES["volume"], "opps_created_per_week")]
    assert volume["z"] < -1.5 and volume["value"] < volume["peer_p25"] and volume["flag_limit"] < volume["value"]
    assert "this window would flag below" in volume["reason"]
    assert card[(DEMO_CASES["stale"], "avg_days_between_touches")] == "shortfall"
    assert card[(DEMO_CASES["volume"], "followup_meeting_ratio")] != "shortfall"


def test_diagnosis_finds_volume_in_line_and_ranks_followup(article):
    drivers = article.drivers.set_index("metric")
    assert drivers.loc["opps_created_per_week", "classification"] == "in line"
    assert drivers.loc["first_meetings_per_week", "classification"] == "in line"
    volume = drivers.loc["opps_created_per_week"]               # the sentence is rendered from the row's numbers
    assert volume["finding"].startswith(f"Opportunities created per week {volume['value']:.1f}/wk vs peers' median "
                                        f"{volume['peer_median']:.1f}/wk")
    assert volume["finding"].endswith("in line with peers (within the spread expected between reps)")
    assert "followup_meeting_ratio" in article.improvement_areas
    assert article.outcomes.iloc[0]["metric"] == "win_rate"
    assert article.needs_plan
    shares = drivers["explains"].dropna()
    assert ((shares >= 0) & (shares <= 1)).all()


def test_explained_shares_of_funnel_drivers_add_up_to_the_funnel_part(article):
    funnel = article.drivers.set_index("metric").loc[
        ["opps_created_per_week", "first_meetings_per_week", "followup_meeting_ratio"], "explains"]
    assert funnel.sum() <= 1 + 1e-9


def test_draft_plan_targets_follow_the_policy(article):
    plan = pn.draft_plan(article, policy=POLICY)
    card = article.card[article.card["rep_id"] == article.rep_id].set_index("metric")
    first = plan.target("first_meetings_per_week")
    median = card.loc["first_meetings_per_week", "peer_median"]
    assert first.target == pytest.approx(median, rel=1e-6)                       # the peers' median rule
    follow = plan.target("followup_meeting_ratio")
    base, med = follow.basis["baseline"], card.loc["followup_meeting_ratio", "peer_median"]
    assert base == pytest.approx(card.loc["followup_meeting_ratio", "value"])
    assert follow.target == pytest.approx(base + 0.8 * (med - base), rel=1e-6)   # slightly less than the median
    emails = plan.target("emails_per_week")
    assert (emails.min, emails.max) == (60, 100) and emails.target == 60
    touches = plan.target("avg_days_between_touches")
    assert touches.direction == "at_most" and touches.target <= 14
    win = plan.target("win_rate")
    assert win.basis["baseline"] < win.target < card.loc["win_rate", "peer_median"]
    # the win-rate target comes from the driver targets through the funnel, no higher than the fair increase;
    # the sentence says which bound it is (issue 22: "capped ... at 10%" stood beside a half-way of 18%)
    fair = win.basis["baseline"] + 0.5 * (card.loc["win_rate", "peer_median"] - win.basis["baseline"])
    assert win.basis["fair_target"] == pytest.approx(fair) and win.target <= fair + 1e-6
    assert "first meetings a week" in win.rule
    if win.basis["funnel_target"] < fair:
        assert win.target == pytest.approx(win.basis["funnel_target"], abs=1e-6)
        assert f"within the fair increase (50% of the way from the rep's {win.basis['baseline']:.0%} to the peers' " \
               f"median {card.loc['win_rate', 'peer_median']:.0%}: {fair:.0%})" in win.rule
    else:
        assert "capped by the fair increase" in win.rule and win.target == pytest.approx(fair, abs=1e-6)
    assert "follow" in follow.rule.lower() and f"{base * 100:.0f}%" in follow.rule


def test_a_target_flagged_against_peers_moves_toward_them_and_glides_from_an_unselected_baseline(article):
    plan = pn.draft_plan(article, policy=POLICY)
    card = article.card[article.card["rep_id"] == article.rep_id].set_index("metric")
    touches = plan.target("avg_days_between_touches")            # 9.2 days vs peers 5.1: the 14-day rule asks
    assert touches.focus                                         # nothing, the peers do
    now, median = card.loc["avg_days_between_touches", ["value", "peer_median"]]
    assert touches.target == pytest.approx(now + 0.8 * (median - now), rel=1e-6) and touches.target < now
    for target in plan.targets:
        prior = article.prior.get(target.metric)
        if prior is not None:                                    # the glide path starts before the selecting
            up = target.direction == "at_least"                  # window, never beyond the goal
            start = min(prior, target.target) if up else max(prior, target.target)
            assert target.baseline == pytest.approx(start, abs=1e-6)


def test_glide_path_rises_in_equal_steps_to_the_target(article):
    plan = pn.draft_plan(article, policy=POLICY)
    emails = plan.target("emails_per_week")
    steps = np.diff([emails.baseline, *emails.glide])
    assert np.allclose(steps[:-1] / 3, steps[-1] / 3)          # weeks 3, 6, 9, 12: equal steps
    assert emails.glide[-1] == emails.target
    assert plan.checkpoints == [3, 6, 9] and plan.weeks == 12
    dates = plan.checkpoint_dates()
    assert dates["checkpoint-1"] == plan.start + dt.timedelta(days=20)
    assert dates["final"] == plan.end == plan.start + dt.timedelta(days=83)
    assert plan.status == "draft" and plan.data_fingerprint


def test_plan_yaml_round_trip(tmp_path, article):
    plan = pn.draft_plan(article, policy=POLICY)
    path = plan.to_yaml(tmp_path / "plan.yaml")
    again = Plan.from_yaml(path)
    assert again == plan
    assert yaml.safe_load(path.read_text())["status"] == "draft"


def _broken(tmp_path, article, change):
    raw = pn.draft_plan(article, policy=POLICY).model_dump(mode="json")
    change(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("change, key, words", [
    (lambda r: r.update(colour="red"), "colour", "unknown key"),
    (lambda r: r.update(start="2026-02-30"), "start", "is not a date"),
    (lambda r: r.update(checkpoints=[3, 6, 14]), None, "checkpoint week 14 is outside the plan"),
    (lambda r: r["targets"][4].update(min=120), "targets.4", "upside down"),   # emails: a range 60-100
    (lambda r: r.update(status="fired"), "status", ""),
])
def test_bad_plan_yaml_is_one_line_naming_the_key(tmp_path, article, demo_folder, change, key, words):
    path = _broken(tmp_path, article, change)
    with pytest.raises(PlanError) as err:
        Plan.from_yaml(path)
    if key:
        assert f": {key}" in str(err.value)
    assert words in str(err.value)
    result = pipnb("review", "--data", demo_folder, "--plan", path, "--checkpoint", "1", "--format", "json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(path) in result.stderr


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("rep_id: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        Plan.from_yaml(path)


def test_reviews_follow_the_glide_path(demo, demo_panel):
    plan = pn.demo_plan(demo, "responder")
    assert plan.start == demo_plan_start().date()
    one = pn.review(demo, plan, 1, panel=demo_panel)
    assert one.window_start == plan.start and one.as_of == plan.start + dt.timedelta(days=20)
    assert list(one.table["glide_target"]) == [t.glide[0] for t in plan.targets]
    # held to the glide path's average over plan weeks 1-3: baseline + (target - baseline) * 4 / 24
    expected = [t.baseline + (t.target - t.baseline) * 4 / 24 for t in plan.targets]
    assert list(one.table["target"]) == pytest.approx(expected)
    assert set(one.table["status"]) <= {"met", "not met", "not yet clear", "no data"}
    for row in one.table.itertuples():                        # the status reads the interval, not the point
        if row.status == "met":
            assert (row.since_low >= row.target) if METRICS[row.metric].higher_is_better else \
                (row.since_high <= row.target)
        if row.status == "not yet clear":
            assert row.since_low < row.target < row.since_high
    final = pn.review(demo, plan, "final", panel=demo_panel)
    assert final.window_start == plan.start + dt.timedelta(weeks=9)
    assert final.recommendation in ("complete", "extend", "consequences") and final.reasons
    emails = final.table.set_index("metric").loc["emails_per_week"]
    recomputed = demo_panel[(demo_panel["rep_id"] == plan.rep_id) & (demo_panel["metric"] == "emails_per_week")
                            & (demo_panel["week"] >= str(final.window_start))
                            & (demo_panel["week"] <= str(final.window_end))]
    assert emails["actual"] == pytest.approx(recomputed["numerator"].sum() / recomputed["denominator"].sum())


def test_review_before_the_data_reaches_the_checkpoint_is_an_error(demo, demo_panel):
    plan = pn.demo_plan(demo).model_copy(update={"start": demo_plan_start().date() + dt.timedelta(weeks=4)})
    with pytest.raises(PlanError, match=r"data ends .*; the final review needs data to .*: run checkpoint-\d \(ends "):
        pn.review(demo, plan, "final", panel=demo_panel)


def test_review_json_for_scripts(demo_folder, tmp_path, demo):
    path = pn.demo_plan(demo).to_yaml(tmp_path / "plan.yaml")
    result = pipnb("review", "--data", demo_folder, "--plan", path, "--checkpoint", "final", "--format", "json")
    assert result.returncode == 0, result.stderr
    import json

    out = json.loads(result.stdout)
    assert out["stage"] == "final" and out["recommendation"] in ("complete", "extend", "consequences")
    assert {"metric", "baseline", "actual", "target", "estimate", "ci_low", "ci_high", "p_value", "z", "boundary",
            "mde", "peer_change", "verdict", "sentence"} <= set(out["verdicts"][0])


def test_demo_responder_improves_and_non_responder_does_not(demo, demo_panel):
    responder = pn.review(demo, pn.demo_plan(demo, "responder"), "final", panel=demo_panel)
    verdicts = responder.verdicts.set_index("metric")["verdict"]
    assert verdicts["emails_per_week"] == "improved"               # its one shortfall, and its one focus
    assert [t.metric for t in pn.demo_plan(demo, "responder").targets if t.focus] == ["emails_per_week"]
    other = pn.review(demo, pn.demo_plan(demo, "non_responder"), "final", panel=demo_panel)
    assert "improved" not in set(other.verdicts["verdict"])
    assert responder.recommendation in ("complete", "extend")
    assert other.recommendation == "consequences"


# -- one number, one answer: the settings every stage shares -------------------------------------------
def test_scan_and_diagnosis_give_one_win_rate_for_one_rep_window_and_basis(demo, demo_panel, demo_folder):
    rep = DEMO_CASES["article"]
    for basis in ("closed", "all"):
        scan = pipnb("scan", "--data", demo_folder, "--format", "json", "--win-rate-basis", basis)
        assert scan.returncode == 0, scan.stderr
        result = yaml.safe_load(scan.stdout)
        assert result["basis"]["win_rate_basis"] == basis
        rows = [r for r in result["rows"] if r["rep_id"] == rep and r["metric"] == "win_rate"]
        dx = pn.diagnose(demo, rep, panel=demo_panel, win_rate_basis=basis)
        mine = dx.outcomes.set_index("metric").loc["win_rate"]
        assert (rows[0]["numerator"], rows[0]["denominator"]) == (mine["numerator"], mine["denominator"])
        assert rows[0]["peer_median"] == pytest.approx(mine["peer_median"])
    # with no override both read the policy, and the diagnosis says which basis it used
    default = pn.diagnose(demo, rep, panel=demo_panel)
    assert default.win_rate_basis == POLICY.win_rate_basis
    card = pn.scorecard(demo, panel=demo_panel)
    assert card.attrs["win_rate_basis"] == POLICY.win_rate_basis
    same = card[(card["rep_id"] == rep) & (card["metric"] == "win_rate")].iloc[0]
    assert same["numerator"] == default.outcomes.set_index("metric").loc["win_rate", "numerator"]


def test_peers_follow_the_policy_grouping_in_flags_shares_and_plans(demo, demo_panel):
    segment = POLICY.with_overrides(peer_by="segment")
    rep = DEMO_CASES["article"]
    card = pn.scorecard(demo, panel=demo_panel, policy=segment)
    by_card = set(pn.peer_ids(card, rep))
    by_date = set(pn.peers_of(demo, rep, on=card.attrs["window_start"], policy=segment))
    assert by_card == by_date
    reps = demo.reps.set_index("rep_id")
    assert {reps.loc[r, "segment"] for r in by_card} == {reps.loc[rep, "segment"]}
    everyone = set(pn.peer_ids(pn.scorecard(demo, panel=demo_panel, peer_by="all"), rep))
    assert by_card < everyone and len({reps.loc[r, "team"] for r in everyone}) > 1
    n_peers = card[(card["rep_id"] == rep) & (card["metric"] == "win_rate")]["n_peers"].iloc[0]
    assert n_peers == len(by_card)


def test_a_cli_flag_overrides_the_policy_and_a_bad_setting_is_one_line(demo_folder, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(open(pn.policy.DEFAULT_POLICY).read().replace("win_rate_basis: closed", "win_rate_basis: all"))
    out = pipnb("scan", "--data", demo_folder, "--policy", policy).stdout
    assert "win rate on all opportunities" in out.splitlines()[0]
    out = pipnb("scan", "--data", demo_folder, "--policy", policy, "--win-rate-basis", "closed").stdout
    assert "win rate on closed deals" in out.splitlines()[0]
    policy.write_text("peer_by: region\n")
    bad = pipnb("scan", "--data", demo_folder, "--policy", policy)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and "peer_by" in bad.stderr


# -- the cost of the gap and the dead opportunities (the article's two asks) ---------------------------
def test_cost_of_the_gap_in_wins_and_money_is_computed_from_the_card(article):
    card = article.card
    wins = card[card["metric"] == "win_rate"].set_index("rep_id")["numerator"]
    weeks = card[card["metric"] == "opps_created_per_week"].set_index("rep_id")["denominator"]
    peers = pn.peer_ids(card, article.rep_id)
    peer_rate = float(np.median([wins[p] / weeks[p] for p in peers]))
    expected = (peer_rate - wins[article.rep_id] / weeks[article.rep_id]) * 13
    cost = article.cost
    assert cost["wins_per_quarter"] == pytest.approx(expected)
    assert cost["wins_low"] < cost["wins_per_quarter"] < cost["wins_high"]
    sizes = card[(card["metric"] == "avg_deal_size") & card["rep_id"].isin(peers)]
    assert cost["money"] == pytest.approx(expected * sizes["numerator"].sum() / sizes["denominator"].sum())
    assert "wins a quarter" in pn.text.cost_of_gap(article)


def test_dead_opportunities_are_the_reps_own_open_deals_untouched_past_14_days(demo, demo_panel):
    dx = pn.diagnose(demo, DEMO_CASES["stale"], panel=demo_panel)
    dead = dx.dead
    opps = demo.opportunities.set_index("opp_id")
    assert len(dead) > 5 and (dead["days_since_touch"] > 14).all()
    assert set(opps.loc[dead["opp_id"], "rep_id"]) == {DEMO_CASES["stale"]}
    assert (opps.loc[dead["opp_id"], "outcome"] == "open").all() or (
        opps.loc[dead["opp_id"], "closed_at"] > dx.window_end).all()
    assert list(dead["days_since_touch"]) == sorted(dead["days_since_touch"], reverse=True)
    # the last touch of the oldest really is that long before the window end
    oldest = dead.iloc[0]
    touches = demo.activities[demo.activities["opp_id"] == oldest["opp_id"]]["occurred_at"]
    touches = touches[touches <= dx.window_end + pd.Timedelta(days=1)]
    last = touches.max() if len(touches) else opps.loc[oldest["opp_id"], "created_at"]
    assert (dx.window_end.normalize() - last.normalize()).days == oldest["days_since_touch"]   # whole days
    assert "open opportunities" in pn.text.dead_opportunity_notes(dx)


def test_demo_final_reviews_judge_the_final_target_and_never_contradict_themselves(demo, demo_panel):
    from pipnb import sentences, text

    for case in ("responder", "non_responder"):
        rv = pn.review(demo, pn.demo_plan(demo, case), "final", panel=demo_panel)
        for row in rv.table.itertuples():
            up = METRICS[row.metric].higher_is_better
            assert row.status == row.final_status
            if row.status == "met":           # the whole last-window interval reaches the final target (both
                goal = row.adjusted_final_target  # moved with the peers' change from the diagnosis window)
                assert (row.status_low >= goal) if up else (row.status_high <= goal)
        status = rv.table.set_index("metric")["status"]
        for v, sentence in zip(rv.verdicts.itertuples(), sentences.verdict_sentences(rv.verdicts)):
            said = re.search(rf"Final target {re.escape(METRICS[v.metric].fmt(v.target))}"
                             r"(?: \([^)]* with the team's change\))?: ([a-z ]+) —", sentence)
            assert said and said.group(1) == status[v.metric]
            if v.verdict in ("improved", "worse"):
                null = 0.0 if v.effect == "difference in points" else 1.0
                assert not v.ci_low <= null <= v.ci_high
        focus = rv.table[rv.table["focus"]]
        if rv.recommendation == "complete":
            assert (focus["status"].eq("met") | focus["at_peer_level"]).all()
        assert f"{int(focus['status'].eq('met').sum())} of {len(focus)} focus targets reached" in rv.reasons[0]
        assert "met with confidence" not in text.recommendation(rv)
