"""Selection without fooling anyone: funnel limits, over-dispersion, peer groups that widen, confirmation."""

import numpy as np
import pandas as pd
import pytest

import pipnb as pn
from pipnb import stats
from pipnb.data import SalesData
from pipnb.peers import peer_mask, peer_table
from pipnb.policy import Policy


def test_funnel_z_is_the_poisson_and_binomial_z_without_overdispersion():
    # a count of 30 in 12 weeks against a target of 4 a week; a ratio of 8 of 26 against 55%
    z = stats.funnel_z(np.array([30 / 12]), np.array([4.0]), np.array([12.0]), "count", 0.0)
    assert z[0] == pytest.approx((2.5 - 4) / np.sqrt(4 / 12))
    z = stats.funnel_z(np.array([8 / 26]), np.array([0.55]), np.array([26.0]), "ratio", 0.0)
    assert z[0] == pytest.approx((8 / 26 - 0.55) / np.sqrt(0.55 * 0.45 / 26))
    # the limit is where z reaches the critical value, and it narrows as the volume grows
    lows = stats.funnel_limit(4.0, np.array([4.0, 12.0, 52.0]), "count", 0.0, -2.33)
    assert lows[0] < lows[1] < lows[2] < 4.0
    assert lows[1] == pytest.approx(4 - 2.33 * np.sqrt(4 / 12))


def test_overdispersion_recovers_a_known_between_rep_spread():
    # an independent simulation: 400 units, true rates drawn around 0.3 with sd 0.05, 200 trials each
    rng = np.random.default_rng(1)
    true = np.clip(rng.normal(0.3, 0.05, 400), 0.01, 0.99)
    n = np.full(400, 200.0)
    rate = rng.binomial(200, true) / n
    target = np.full(400, 0.3)
    tau2 = stats.overdispersion(rate, target, stats.null_variance("ratio", target, n), winsor=0.1)
    assert np.sqrt(tau2) == pytest.approx(0.05, rel=0.2)
    same = rng.binomial(200, 0.3, 400) / n                          # no spread beyond sampling: about 0
    assert stats.overdispersion(same, target, stats.null_variance("ratio", target, n)) < 0.0005


def _reps(teams: dict[str, int], segment: dict[str, str]) -> pd.DataFrame:
    rows = [(f"{team}{i}", f"Rep {team}{i}", team, segment[team]) for team, size in teams.items()
            for i in range(size)]
    return pd.DataFrame(rows, columns=["rep_id", "rep_name", "team", "segment"]).assign(
        hire_date=pd.Timestamp("2020-01-06"))


def test_a_small_team_widens_to_its_segment_then_the_company():
    reps = _reps({"A": 3, "B": 4, "C": 9}, {"A": "SMB", "B": "SMB", "C": "ENT"})
    data = SalesData(reps, pd.DataFrame(columns=["opp_id", "rep_id", "created_at", "outcome"]))
    table = peer_table(data, on="2026-01-05", policy=Policy.default())
    levels = table.set_index("rep_id")["peer_level"]
    assert levels["C0"] == "team"                 # 8 judged peers in the team
    assert levels["A0"] == "segment"              # 2 team peers: the SMB segment has 6 besides the rep
    assert levels["B0"] == "segment"
    mask = peer_mask(table)
    ids = table["rep_id"].tolist()
    assert {ids[j] for j in np.flatnonzero(mask[ids.index("A0")])} == {"A1", "A2", "B0", "B1", "B2", "B3"}
    assert {ids[j] for j in np.flatnonzero(mask[ids.index("C0")])} == {f"C{i}" for i in range(1, 9)}
    tiny = _reps({"A": 2, "B": 2}, {"A": "SMB", "B": "ENT"})
    table = peer_table(SalesData(tiny, data.opportunities), on="2026-01-05", policy=Policy.default())
    assert set(table["peer_level"]) == {"all"}    # no group has 5 peers: the whole company


def test_confirmation_keeps_only_a_shortfall_the_window_before_also_showed(demo, demo_panel):
    # a window of the demo in which some shortfalls are new (at its last day every one was already there)
    plain = pn.scorecard(demo, panel=demo_panel, as_of="2026-05-31")
    confirmed = pn.scorecard(demo, panel=demo_panel, as_of="2026-05-31",
                             policy=Policy.default().with_overrides(confirm_previous_window=True))
    before = pn.scorecard(demo, panel=demo_panel, as_of=plain.attrs["window_start"] - pd.Timedelta(days=1))
    key = ["rep_id", "metric"]
    short = {tuple(r) for r in plain.loc[plain["flag"] == "shortfall", key].to_numpy()}
    held = {tuple(r) for r in before.loc[before["flag"] == "shortfall", key].to_numpy()}
    kept = {tuple(r) for r in confirmed.loc[confirmed["flag"] == "shortfall", key].to_numpy()}
    assert kept == short & held and kept < short
    dropped = confirmed.set_index(key).loc[sorted(short - held)[0]]
    assert "window before did not show it" in dropped["reason"]
    assert dropped["flag"] == "below peers, not confirmed"           # what the numbers show, not "in line"


def test_a_rep_who_left_is_neither_judged_nor_a_peer():
    reps = _reps({"A": 8}, {"A": "SMB"}).assign(end_date=pd.NaT)
    reps.loc[reps["rep_id"] == "A3", "end_date"] = pd.Timestamp("2026-02-01")
    data = SalesData(reps, pd.DataFrame(columns=["opp_id", "rep_id", "created_at", "outcome"]))
    table = peer_table(data, on="2026-01-05", policy=Policy.default(), until="2026-03-29")
    assert table.set_index("rep_id").loc["A3", "inactive"] and not table.set_index("rep_id").loc["A3", "ramping"]
    mask = peer_mask(table)
    ids = table["rep_id"].tolist()
    assert not mask[:, ids.index("A3")].any()                      # nobody's peer
    still = peer_table(data, on="2026-01-05", policy=Policy.default(), until="2026-01-20")
    assert not still.set_index("rep_id").loc["A3", "inactive"]   # had not left yet
