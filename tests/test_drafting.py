"""Plans are drafted only for a shortfall, and every number a target's sentence states is recomputed here.

The teams come from a small generator written for this test alone (never the demo's, never ``simworld``'s):
teams of eight reps over 30 weeks whose rates are drawn wide apart, a few of them planted weak on emails, on
the follow-up ratio or on touches, so that some reps need a plan, some do not, and some sit on the policy's
standards (60-100 emails a week, at most 14 days between touches). For every rep: a rep whose diagnosis finds
no shortfall is refused a plan unless a reason is given; then, for every target of every plan, the rule's
sentence is parsed and each number in it recomputed from the values the target records (``basis``), the
focus is checked against the diagnosis, and the target table shows the same numbers.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import pipnb as pn
from pipnb.errors import PlanError
from pipnb.policy import Policy
from pipnb.schema import METRICS
from pipnb.text import target_table

START = pd.Timestamp("2025-01-06")          # a Monday
WEEKS = 30
POLICY = Policy.default()
STANDARDS = {m for m, rule in POLICY.targets.items() if rule.rule in ("range", "at_most", "at_least")}


def team(seed: int, n_reps: int = 8) -> pn.SalesData:
    """One team: per rep an email rate, an opportunity rate, first- and second-meeting chances and a touch gap,
    log-normally spread around a typical rep; two reps planted weak on one driver each."""
    rng = np.random.default_rng(seed)
    emails = 65 * np.exp(rng.normal(0, 0.25, n_reps))
    opps = 3.0 * np.exp(rng.normal(0, 0.15, n_reps))
    p_first = np.clip(rng.normal(0.7, 0.06, n_reps), 0.3, 0.95)
    p_second = np.clip(rng.normal(0.5, 0.08, n_reps), 0.1, 0.9)
    gap = 5.0 * np.exp(rng.normal(0, 0.2, n_reps))
    for rep, driver in zip(rng.choice(n_reps, 2, replace=False), rng.choice(["emails", "followup", "touch"], 2)):
        if driver == "emails":
            emails[rep] *= 0.45
        elif driver == "followup":
            p_second[rep] *= 0.4
        else:
            gap[rep] *= 3.0
    days = 7.0 * WEEKS
    ids = [f"S{seed}-{i:02d}" for i in range(n_reps)]
    opp_rows, act_rows = [], []
    for i, rep in enumerate(ids):
        for t in rng.uniform(0, days, rng.poisson(emails[i] * WEEKS)):
            act_rows.append((rep, "email", t, None))
        created = rng.uniform(0, days, rng.poisson(opps[i] * WEEKS))
        for k, c in enumerate(created):
            opp = f"{rep}-O{k:04d}"
            first = rng.random() < p_first[i]
            second = first and rng.random() < p_second[i]
            won = rng.random() < (0.45 if second else 0.05)
            close = c + (rng.gamma(3.0, 8.0) if second else rng.gamma(2.0, 15.0))
            last = c
            if first:
                last = c + rng.uniform(1, 7)
                act_rows.append((rep, "meeting", last, opp))
            if second:
                last += rng.uniform(7, 20)
                act_rows.append((rep, "meeting", last, opp))
            t = c
            while t < min(close, days):
                act_rows.append((rep, "call", t, opp))
                t += rng.exponential(gap[i])
            opp_rows.append((opp, rep, c, ("won" if won else "lost") if close < days else "open",
                             close if close < days else np.nan, float(np.exp(rng.normal(np.log(20000), 0.5)))))
    at = lambda d: START + pd.to_timedelta(np.asarray(d, dtype=float), unit="D")         # noqa: E731
    o = pd.DataFrame(opp_rows, columns=["opp_id", "rep_id", "created", "outcome", "closed", "amount"])
    a = pd.DataFrame(act_rows, columns=["rep_id", "kind", "t", "opp_id"]).sort_values("t", kind="stable")
    reps = pd.DataFrame({"rep_id": ids, "rep_name": [f"Rep {r}" for r in ids], "team": f"Team {seed}",
                         "hire_date": START - pd.Timedelta(weeks=100)})
    opportunities = pd.DataFrame({"opp_id": o["opp_id"], "rep_id": o["rep_id"], "created_at": at(o["created"]),
                                  "outcome": o["outcome"], "closed_at": at(o["closed"]), "amount": o["amount"]})
    activities = pd.DataFrame({"activity_id": [f"A{seed}-{k:06d}" for k in range(len(a))],
                               "rep_id": a["rep_id"].to_numpy(), "kind": a["kind"].to_numpy(),
                               "occurred_at": at(a["t"]), "opp_id": a["opp_id"].to_numpy()})
    return pn.SalesData(reps=reps, opportunities=opportunities, activities=activities, source=f"drafting test {seed}")


@pytest.fixture(scope="module")
def drafted():
    """(diagnosis, plan, refused) for every rep of 12 simulated teams; a plan for a rep without a shortfall is
    drafted with a reason after its refusal is recorded."""
    out = []
    for seed in range(12):
        data = team(seed)
        panel = pn.weekly_panel(data)
        as_of = START + pd.Timedelta(weeks=WEEKS - 1, days=6)
        card = pn.scorecard(data, as_of=as_of, policy=POLICY, panel=panel)
        for rep in data.reps["rep_id"]:
            dx = pn.diagnose(data, rep, as_of=as_of, policy=POLICY, panel=panel, card=card)
            refused = None
            try:
                plan = pn.draft_plan(dx, policy=POLICY)
            except PlanError as err:
                refused = str(err)
                plan = pn.draft_plan(dx, policy=POLICY, reason="asked for by the manager in the test")
            out.append((dx, plan, refused))
    return out


def test_the_simulated_teams_give_both_kinds_of_rep(drafted):
    needs = sum(dx.needs_plan for dx, _, _ in drafted)
    assert len(drafted) == 96 and 10 <= needs <= 86, needs      # some need a plan, some do not
    standard_focus = [t for _, p, _ in drafted for t in p.targets if t.focus and "policy's standard" in t.rule]
    assert standard_focus                                        # the path "by a rule for every rep" is exercised


def test_a_plan_is_refused_exactly_when_the_diagnosis_finds_no_shortfall(drafted):
    for dx, plan, refused in drafted:
        assert (refused is not None) == (not dx.needs_plan)
        if refused is None:
            assert plan.reason == "" and plan.history[-1].note == "drafted by pipnb from the diagnosis"
            continue
        assert "\n" not in refused and f"no plan for {dx.rep_id}" in refused and "--reason" in refused
        assert plan.reason == "asked for by the manager in the test"
        assert plan.history[-1].note.endswith("drafted anyway because: asked for by the manager in the test")


def test_a_focus_target_is_a_shortfall_or_a_standard_for_every_rep_and_says_which(drafted):
    for dx, plan, _ in drafted:
        shortfalls = set(dx.improvement_areas)
        if (dx.outcomes.set_index("metric").get("flag", pd.Series()).get("win_rate") == "shortfall"):
            shortfalls.add("win_rate")
        classes = dx.drivers.set_index("metric")["classification"]
        for t in plan.targets:
            spec = METRICS[t.metric]
            if t.metric in shortfalls:
                assert t.focus, t.rule
                continue
            standard = "the policy's standard of" in t.rule
            assert t.focus == standard, t.rule                     # no focus target on a dismissed area
            if standard:                                           # ... unless a rule for every rep asks it
                assert t.metric in STANDARDS and "which applies to every rep" in t.rule
                assert classes.get(t.metric) != "shortfall"
                assert f"the rep is at {spec.fmt(t.basis['baseline'])}" in t.rule
                assert not _meets(t, t.basis["baseline"])
            elif "not a focus" not in t.rule:
                assert "already at" in t.rule


def _fmt(metric: str, value) -> str:
    return METRICS[metric].fmt(value)


def _meets(t, value: float) -> bool:
    """Whether ``value`` reaches the target (the file keeps six decimals)."""
    return value >= t.target - 1e-6 if t.direction == "at_least" else value <= t.target + 1e-6


def test_every_number_of_a_rule_sentence_is_recomputed_from_the_target(drafted):
    checked = {"half-way": 0, "moved": 0, "funnel": 0, "glide": 0, "flat": 0, "already": 0}
    for _, plan, _ in drafted:
        for t in plan.targets:
            m, b, rule = t.metric, t.basis, t.rule
            share = POLICY.targets[m].share
            for hit in re.finditer(r"(\d+)% of the way from the rep's (\S+) to the peers' median (\S+): ([^;,)]+)",
                                   rule):
                assert int(hit[1]) == round(100 * share)
                assert hit[2] == _fmt(m, b["baseline"]) and hit[3] == _fmt(m, b["peer_median"])
                assert hit[4] == _fmt(m, b["baseline"] + share * (b["peer_median"] - b["baseline"]))
                assert hit[4] == _fmt(m, b["rule_target"])
                checked["half-way"] += 1
            hit = re.search(r"short of peers, so the target moves (\d+)% of the way from (.+?) toward the peers' "
                            r"median (.+?): ([^;]+)", rule)
            if hit:
                assert int(hit[1]) == round(100 * POLICY.peer_gap_share) and hit[2] == _fmt(m, b["baseline"])
                assert hit[3] == _fmt(m, b["peer_median"]) and hit[4] == _fmt(m, t.target)
                assert t.target == pytest.approx(b["baseline"] + POLICY.peer_gap_share * (b["peer_median"] -
                                                                                         b["baseline"]))
                checked["moved"] += 1
            hit = re.search(r"([\d.]+) first meetings a week × (\d+)% followed up × (\d+)% of follow-ups won = "
                            r"([\d.]+) wins a week, over ([\d.]+) deals closed a week = (\d+)%, (within|capped|no "
                            r"higher)", rule)
            if hit:
                wins = b["first_meetings_target"] * b["followup_ratio_target"] * b["wins_per_followup"]
                assert b["wins_per_week"] == pytest.approx(wins)
                assert b["funnel_target"] == pytest.approx(wins / b["closed_per_week"])
                assert hit[1] == f"{b['first_meetings_target']:.2f}" and hit[4] == f"{wins:.2f}"
                assert hit[2] == f"{100 * b['followup_ratio_target']:.0f}" and hit[5] == f"{b['closed_per_week']:.2f}"
                assert hit[3] == f"{100 * b['wins_per_followup']:.0f}" and f"{hit[6]}%" == _fmt(m, b["funnel_target"])
                bound = {"within": b["funnel_target"], "capped": b["fair_target"], "no higher": b["fair_target"]}
                assert t.target == pytest.approx(bound[hit[7]], abs=1e-6)
                assert (hit[7] == "within") == (b["baseline"] < b["funnel_target"] <= b["fair_target"])
                assert (hit[7] == "no higher") == (b["funnel_target"] <= b["baseline"])
                checked["funnel"] += 1
            hit = re.search(r"the glide path starts from (.+?), the level in the weeks before the diagnosis", rule)
            if hit:
                assert hit[1] == _fmt(m, t.baseline) == _fmt(m, b["prior"])
                checked["glide"] += 1
            hit = re.search(r"the glide path stays at the target (.+?) throughout: the level in the weeks before "
                            r"the diagnosis, (.+?), already meets it", rule)
            if hit:
                assert hit[1] == _fmt(m, t.target) == _fmt(m, t.baseline) and hit[2] == _fmt(m, b["prior"])
                assert _meets(t, b["prior"])
                checked["flat"] += 1
            if "glide path" not in rule:                            # no sentence: it starts where the rep was
                assert _fmt(m, t.baseline) == _fmt(m, b["baseline"])
            hit = re.search(r"already at (.+?): the target is to stay at or beyond it", rule)
            if hit:
                assert hit[1] == _fmt(m, b["baseline"]) and _meets(t, b["baseline"])
                checked["already"] += 1
            steps = np.diff([t.baseline, *t.glide]) / np.diff([0, *POLICY.checkpoints, POLICY.plan_weeks])
            assert np.allclose(steps, steps[0], atol=1e-5) and t.glide[-1] == pytest.approx(t.target, abs=1e-6)
    assert all(n > 0 for n in checked.values()), checked        # every kind of sentence was checked


def test_the_target_table_shows_the_numbers_the_sentences_use(drafted):
    for _, plan, _ in drafted[:24]:
        table = target_table(plan).set_index("Measure")
        for t in plan.targets:
            row = table.loc[t.label + (" (focus)" if t.focus else "")]
            assert row["At the diagnosis"] == _fmt(t.metric, t.basis["baseline"])
            assert row["Glide path starts"] == _fmt(t.metric, t.baseline)
            assert row["Final target"].startswith(_fmt(t.metric, t.target))
            assert row["How it was set"] == t.rule
