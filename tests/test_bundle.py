"""A report's slice (its rep and peer group) gives exactly what the whole team gives."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from pipnb.batch.bundle import (
    diagnosis_looks,
    plan_looks,
    read_bundle,
    report_data,
    slice_data,
    slice_reps,
    team_card,
    write_bundle,
)
from pipnb.demo import DEMO_CASES
from pipnb.diagnosis import diagnose
from pipnb.fingerprint import fingerprint_until
from pipnb.peers import scorecard
from pipnb.policy import Policy
from pipnb.reviews import review


@pytest.fixture(scope="module")
def policy():
    return Policy.default()


def _sliced(data, panel, rep_id, looks, day):
    reps = slice_reps(data, rep_id, looks)
    assert reps is not None
    part = slice_data(data, reps, stamps={f"{pd.Timestamp(day):%Y-%m-%d}": fingerprint_until(data, day)})
    return part, panel[panel["rep_id"].isin(reps)]


def _same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


@pytest.mark.parametrize("case", ["article", "responder"])
def test_a_diagnosis_from_the_slice_is_the_diagnosis_from_the_whole_team(demo, demo_panel, policy, case,
                                                                          tmp_path):
    rep_id = DEMO_CASES[case]
    as_of = f"{demo.period[1]:%Y-%m-%d}"
    looks = diagnosis_looks(demo, as_of, policy)
    part, panel = _sliced(demo, demo_panel, rep_id, looks, looks[0][1])
    team = demo.rep(rep_id)["team"]
    assert set(part.reps["rep_id"]) == set(demo.reps.loc[demo.reps["team"] == team, "rep_id"])
    assert len(part.reps) < len(demo.reps) and part.period == demo.period

    whole = diagnose(demo, rep_id, as_of=as_of, policy=policy, panel=demo_panel)
    card = scorecard(demo, as_of=as_of, policy=policy, panel=demo_panel)       # the team's summary, once a batch
    folder = write_bundle(demo, demo_panel, slice_reps(demo, rep_id, diagnosis_looks(demo, as_of, policy)),
                          tmp_path, card=card)
    sliced = diagnose(part, rep_id, as_of=as_of, policy=policy, panel=panel, card=team_card(str(folder)))
    for f in dataclasses.fields(whole):
        a, b = getattr(whole, f.name), getattr(sliced, f.name)
        if isinstance(a, pd.DataFrame):
            _same_frame(a, b)
        elif isinstance(a, dict):
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a), f.name
        else:
            assert a == b or (a != a and b != b), f.name
    assert sliced.card.attrs == whole.card.attrs
    # without the team's summary the drivers' slopes would rest on the slice alone: the card is not optional
    alone = diagnose(part, rep_id, as_of=as_of, policy=policy, panel=panel, card=team_card(""))
    assert alone.card["rep_id"].nunique() == len(part.reps)


@pytest.mark.parametrize("checkpoint", [1, "final"])
def test_a_review_from_the_slice_is_the_review_from_the_whole_team(demo, demo_panel, policy, checkpoint):
    from pipnb.batch.demo import demo_plan

    plan = demo_plan(demo)
    part, panel = _sliced(demo, demo_panel, plan.rep_id, plan_looks(plan, policy), plan.diagnosis_window.end)
    assert len(part.reps) < len(demo.reps)
    whole = review(demo, plan, checkpoint, panel=demo_panel, policy=policy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no "the data behind this plan changed" from a slice
        sliced = review(part, plan, checkpoint, panel=panel, policy=policy)
    _same_frame(whole.table, sliced.table)
    _same_frame(whole.verdicts, sliced.verdicts)
    assert (whole.stage, whole.as_of, whole.window_start, whole.window_end) == \
        (sliced.stage, sliced.as_of, sliced.window_start, sliced.window_end)
    assert (whole.recommendation, whole.reasons, whole.extended_end) == \
        (sliced.recommendation, sliced.reasons, sliced.extended_end)
    assert whole.attainment == sliced.attainment or (whole.attainment != whole.attainment)


def test_a_small_team_widens_and_its_slice_holds_the_wider_group(demo, policy):
    """Two reps left in a team whose segment is that team: too few peers, so the rep is compared with everyone,
    and the slice is everyone (the batch then hands the notebook the whole data)."""
    from pipnb.peers import peer_table, peers_of

    team = demo.rep(DEMO_CASES["article"])["team"]
    members = demo.reps.loc[demo.reps["team"] == team, "rep_id"].tolist()
    gone = members[2:]
    small = dataclasses.replace(demo, reps=demo.reps[~demo.reps["rep_id"].isin(gone)],
                                opportunities=demo.opportunities[~demo.opportunities["rep_id"].isin(gone)],
                                activities=demo.activities[~demo.activities["rep_id"].isin(gone)])
    rep_id = members[0]
    looks = diagnosis_looks(small, None, policy)
    table = peer_table(small, on=looks[0][0], policy=policy, until=looks[0][1]).set_index("rep_id")
    assert table.loc[rep_id, "peer_level"] == "all" and table.loc[rep_id, "widened"] == "team"
    assert slice_reps(small, rep_id, looks) == small.rep_ids
    other = demo.reps.loc[demo.reps["team"] != team, "rep_id"].iloc[0]     # a full team stays its team
    reps = slice_reps(small, other, looks)
    assert set(reps) == set(small.reps.loc[small.reps["team"] == small.rep(other)["team"], "rep_id"])
    on = looks[0][0]
    assert peers_of(slice_data(small, reps), other, on=on, policy=policy) == peers_of(small, other, on=on,
                                                                                      policy=policy)


def test_a_bundle_is_read_back_and_an_altered_one_is_not_used(demo, demo_panel, demo_folder, policy, tmp_path):
    rep_id = DEMO_CASES["article"]
    reps = slice_reps(demo, rep_id, diagnosis_looks(demo, None, policy))
    folder = write_bundle(demo, demo_panel, reps, tmp_path / "slices")
    assert folder.parent == tmp_path / "slices" and not list((tmp_path / "slices").glob(".*"))
    data, panel = report_data(str(demo_folder), prepared=str(folder))
    assert sorted(data.rep_ids) == sorted(reps) and set(panel["rep_id"]) == set(reps)
    assert data.period == demo.period and data.quality.issues.empty
    assert write_bundle(demo, demo_panel, reps, tmp_path / "slices") == folder     # reused, not rewritten

    acts = pd.read_parquet(folder / "activities.parquet")
    acts.iloc[:-1].to_parquet(folder / "activities.parquet", index=False)           # a row lost
    assert read_bundle(folder) is None
    data, panel = report_data(str(demo_folder), prepared=str(folder))                # the whole data instead
    assert len(data.reps) == len(demo.reps) and set(panel["rep_id"]) == set(demo.rep_ids)
    assert write_bundle(demo, demo_panel, reps, tmp_path / "slices") == folder     # the batch rebuilds it
    assert read_bundle(folder) is not None


def test_a_day_that_cuts_nothing_takes_the_whole_datas_fingerprint_and_any_other_day_its_own(demo):
    from pipnb.fingerprint import data_as_of, is_whole

    last = demo.period[1]
    assert is_whole(data_as_of(demo, last), demo)
    assert data_as_of(demo, last).fingerprint() == demo.fingerprint()        # the shortcut's value is right
    assert fingerprint_until(demo, last, whole="given") == "given"             # and is taken, not recomputed
    month_ago = last - pd.Timedelta(days=30)
    cut = data_as_of(demo, month_ago)
    assert not is_whole(cut, demo)
    assert fingerprint_until(demo, month_ago, whole="given") == cut.fingerprint() != demo.fingerprint()


@pytest.mark.parametrize("as_of", ["", "2026-01-31"])
def test_a_plans_diagnosis_in_a_batch_is_the_diagnosis_of_the_whole_data(demo_folder, tmp_path, as_of):
    """Drafting shares the batch's scorecard and its fingerprint of the window's last day: same diagnosis."""
    from pipnb.batch import prepare
    from pipnb.batch.jobs import batch_diagnosis

    batch = prepare(str(demo_folder), reports=tmp_path / "reports", params=tmp_path / "params")
    if as_of and not batch.data.period[0] < pd.Timestamp(as_of) < batch.data.period[1]:
        as_of = f"{batch.data.period[1] - pd.Timedelta(days=60):%Y-%m-%d}"
    rep_id = DEMO_CASES["article"]
    got = batch_diagnosis(batch, rep_id, as_of)
    want = diagnose(batch.data, rep_id, as_of=as_of or None, policy=batch.policy, panel=batch.panel)
    assert got.data_fingerprint == want.data_fingerprint == fingerprint_until(batch.data, want.window_end)
    assert got.improvement_areas == want.improvement_areas and got.window_end == want.window_end
    for name in ("outcomes", "drivers", "card"):
        _same_frame(getattr(got, name), getattr(want, name))


def test_a_batch_snapshot_is_trusted_by_its_manifest_and_an_altered_one_is_not(demo_folder, tmp_path, monkeypatch):
    """A notebook reading the batch's cached data hashes its files, not every row; an edit is still caught."""
    from pipnb.batch import prepare
    from pipnb.data import SalesData

    batch = prepare(str(demo_folder), reports=tmp_path / "reports", params=tmp_path / "params")
    snapshot = batch.cache / "data"
    with monkeypatch.context() as patched:
        patched.setattr(SalesData, "fingerprint", lambda self: pytest.fail("rows hashed again"))
        data = SalesData.read_snapshot(snapshot)
    assert data is not None and len(data.activities) == len(batch.data.activities)

    reps = pd.read_parquet(snapshot / "reps.parquet")
    reps.assign(rep_name="someone else").to_parquet(snapshot / "reps.parquet", index=False)
    assert SalesData.read_snapshot(snapshot) is None            # the manifest fails, then the fingerprint does
