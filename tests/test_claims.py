"""Every sentence true (issue 22): the claims of every stage held against their records, on simulated teams.

The fast version of ``benchmarks/bench_claims.py`` (which checks hundreds of plans and the demo's rendered reports):
two simulated teams (``tests/simworld.py``, never the demo's generator), every diagnosis, two plans each (one may be
drafted without a shortfall, with a recorded reason) reviewed at checkpoint 2 and at the final review. See
``tests/claims.py`` for what each kind of claim means.
"""

from __future__ import annotations

import claims
import pytest
import simworld as sw


@pytest.fixture(scope="module")
def team_claims():
    worlds = [sw.generate(11, sw.WorldParams(), sw.low_rep("emails", factor=0.55)),
              sw.generate(12, sw.WorldParams(opps_per_week=0.6), sw.low_rep("followup", factor=0.6))]
    return [c for world in worlds for c in claims.check_team(world, reps=2, looks=(2, "final"))]


def test_no_false_claim_on_simulated_teams(team_claims):
    assert claims.false_claims(team_claims) == []


def test_the_check_covers_each_kind_of_claim(team_claims):
    kinds = set(claims.summary(team_claims)["kind"])
    assert {"needs plan", "final met", "arithmetic", "missing", "parity", "target line"} <= kinds


def test_each_check_can_fail():
    """A parity word said of a shortfall, a wrong half-way, literal markdown: each is caught."""
    import pandas as pd

    card = pd.DataFrame({"rep_id": ["R1", "R1"], "metric": ["emails_per_week", "first_meetings_per_week"],
                         "flag": ["shortfall", "unavailable"]})
    said = "Emails per week 33.5/wk: in line with peers.\nFirst meetings per week 0.0/wk vs peers."
    found = claims.check_findings(card, "R1", said, "made up")
    assert [c.kind for c in found if not c.ok] == ["parity", "missing"]
    wrong = claims.check_arithmetic("50% of the way from the rep's 5% to the peers' median 31%: 10%", "made up")
    right = claims.check_arithmetic("50% of the way from the rep's 5% to the peers' median 31%: 18%", "made up")
    assert [c.ok for c in wrong] == [False] and [c.ok for c in right] == [True]
    assert not claims.check_html("<p>cost **$124,282** a quarter</p>", "made up")[0].ok
    assert claims.check_html("<p>cost <strong>$124,282</strong> a quarter</p>", "made up")[0].ok
