"""A Fivetran HubSpot sync loads: engagements keep their owner in ``engagement`` and their deals in
``engagement_deal``; teams are in ``owner_team``; deal outcomes come from ``deal_pipeline_stage``.

The folder is written here by :func:`fivetran_hubspot` (a generator for this test, not pipnb's demo), and the
loaded numbers are checked against a plain pandas computation on the same tables.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipnb.errors import DataError, SourceError
from pipnb.sources import load

OWNERS = ["101", "102", "103", "104"]
STAGES = pd.DataFrame({"stage_id": ["appointmentscheduled", "closedwon", "closedlost", "98765", "98766"],
                       "label": ["Appointment", "Closed won", "Closed lost", "Signed", "Dropped"],
                       "pipeline_id": ["default", "default", "default", "renewals", "renewals"],
                       "closed_won": [False, True, False, True, False],
                       "probability": [0.2, 1.0, 0.0, 1.0, 0.0], "_fivetran_deleted": False})
TYPES = ["MEETING", "EMAIL", "INCOMING_EMAIL", "CALL", "NOTE", "TASK"]


def iso(days: np.ndarray) -> list[str]:
    stamps = pd.Timestamp("2024-03-04") + pd.to_timedelta(days, unit="D")
    return [f"{t:%Y-%m-%dT%H:%M:%S}Z" for t in stamps]


def fivetran_hubspot(folder: Path, *, seed: int = 7, engagements: int = 60) -> dict[str, pd.DataFrame]:
    """Write a Fivetran-shaped HubSpot folder; return its tables."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    owner = pd.DataFrame({"owner_id": [*OWNERS, "105"], "email": [f"o{i}@x.io" for i in range(5)],
                          "first_name": ["Ann", "Bob", "Cy", "Di", "Ed"], "last_name": ["Lee", "Ray", "Ng", "Oh", "Po"],
                          "is_active": [True, True, True, False, True]})
    owner_team = pd.DataFrame({"owner_id": ["101", "102", "103", "103", "104", "105"],
                               "team_id": ["7", "7", "7", "8", "8", "8"],
                               "is_team_primary": [True, True, False, True, True, True]})
    team = pd.DataFrame({"id": ["7", "8"], "name": ["Inside Sales", "Field Sales"]})
    n_deals = 24
    stage = rng.choice(STAGES["stage_id"], n_deals)
    created = rng.uniform(0, 30, n_deals)
    deal = pd.DataFrame({
        "deal_id": [str(5000 + i) for i in range(n_deals)], "owner_id": rng.choice(OWNERS, n_deals),
        "deal_pipeline_id": np.where(np.isin(stage, ["98765", "98766"]), "renewals", "default"),
        "deal_pipeline_stage_id": stage, "property_dealname": [f"Deal {i}" for i in range(n_deals)],
        "property_createdate": iso(created), "property_closedate": iso(created + rng.uniform(5, 20, n_deals)),
        "property_amount": rng.integers(1, 50, n_deals) * 1000, "is_deleted": False, "_fivetran_deleted": False})
    deal.loc[3, "_fivetran_deleted"] = True                       # deleted in HubSpot: left out and counted
    kinds = rng.choice(TYPES, engagements, p=[0.3, 0.25, 0.1, 0.2, 0.1, 0.05])
    owners = rng.choice(OWNERS, engagements).astype(object)
    engagement = pd.DataFrame({"id": [str(90000 + i) for i in range(engagements)], "type": kinds,
                               "owner_id": owners, "timestamp": iso(rng.uniform(0, 40, engagements)),
                               "active": True, "_fivetran_deleted": False})
    blank = rng.choice(engagements, 10, replace=False)
    engagement.loc[blank, "owner_id"] = ""                       # no owner on the engagement ...
    eid = engagement["id"]
    meeting = engagement[engagement["type"] == "MEETING"]
    # ... a meeting's own table may still name it (the first half of the blank ones); the rest have none
    meeting_owner = np.where(meeting.index.isin(blank[:5]), rng.choice(OWNERS, len(meeting)), "")
    engagement_meeting = pd.DataFrame({
        "engagement_id": meeting["id"], "property_hs_timestamp": meeting["timestamp"],
        "property_hubspot_owner_id": meeting_owner,
        "property_hs_meeting_outcome": rng.choice(["COMPLETED", "CANCELED", "NO_SHOW", "SCHEDULED"], len(meeting)),
        "_fivetran_synced": "2024-05-01T00:00:00Z"})
    email = engagement[engagement["type"].isin(["EMAIL", "INCOMING_EMAIL"])]
    engagement_email = pd.DataFrame({"engagement_id": email["id"], "property_hs_email_subject": "Hello"})
    call = engagement[engagement["type"] == "CALL"]
    engagement_call = pd.DataFrame({"engagement_id": call["id"], "property_hs_call_status": "COMPLETED"})
    linked = rng.choice(engagements, engagements // 2, replace=False)
    engagement_deal = pd.DataFrame({"engagement_id": eid[linked].to_numpy(),
                                    "deal_id": rng.choice(deal["deal_id"], len(linked))})
    tables = {"owner": owner, "owner_team": owner_team, "team": team, "deal": deal, "deal_pipeline_stage": STAGES,
              "engagement": engagement, "engagement_deal": engagement_deal, "engagement_meeting": engagement_meeting,
              "engagement_email": engagement_email, "engagement_call": engagement_call}
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return tables


@pytest.fixture
def sync(tmp_path):
    folder = tmp_path / "fivetran"
    return folder, fivetran_hubspot(folder)


def expected_counts(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Meetings (not canceled or no-show), sent emails and calls per owner, by plain pandas joins."""
    eng = t["engagement"].astype({"owner_id": str}).replace({"owner_id": {"nan": ""}})
    meet = t["engagement_meeting"].astype({"property_hubspot_owner_id": str}).rename(
        columns={"engagement_id": "id"})
    eng = eng.merge(meet[["id", "property_hubspot_owner_id", "property_hs_meeting_outcome"]], on="id", how="left")
    fallback = eng["property_hubspot_owner_id"].fillna("").replace("nan", "")
    eng["owner"] = eng["owner_id"].where(eng["owner_id"] != "", fallback)
    counted = ((eng["type"] == "MEETING") & ~eng["property_hs_meeting_outcome"].isin(["CANCELED", "NO_SHOW"])) | \
        eng["type"].isin(["EMAIL", "CALL"])
    eng = eng[counted & (eng["owner"] != "")]
    kind = eng["type"].str.lower()
    return eng.assign(kind=kind).groupby(["owner", "kind"]).size().unstack(fill_value=0)


def test_fivetran_hubspot_counts_match_an_independent_computation(sync):
    folder, tables = sync
    data = load(folder, bad_rows="skip")
    got = data.activities.groupby(["rep_id", "kind"]).size().unstack(fill_value=0)
    want = expected_counts(tables)
    assert got.sort_index().to_dict() == want.sort_index().to_dict()
    assert got.to_numpy().sum() > 20                  # the sync is not trivially empty


def test_fivetran_hubspot_outcomes_come_from_the_stage_table(sync):
    folder, tables = sync
    data = load(folder, bad_rows="skip")
    deal = tables["deal"][~tables["deal"]["_fivetran_deleted"]]
    stage = deal.merge(STAGES, left_on="deal_pipeline_stage_id", right_on="stage_id")
    outcome = np.select([stage["closed_won"], stage["probability"].eq(0)], ["won", "lost"], "open")
    want = pd.crosstab(stage["owner_id"], outcome)
    got = pd.crosstab(data.opportunities["rep_id"], data.opportunities["outcome"])
    assert got.sort_index().to_dict() == want.sort_index().to_dict()
    assert {"won", "lost", "open"} <= set(data.opportunities["outcome"])
    assert "5003" not in set(data.opportunities["opp_id"])       # _fivetran_deleted


def test_fivetran_hubspot_links_teams_and_owners(sync):
    folder, tables = sync
    data = load(folder, bad_rows="skip")
    reps = data.reps.set_index("rep_id")
    # 103 is in two teams: the primary one (8) counts; 105 owns nothing: not a rep
    assert reps["team"].to_dict() == {"101": "Inside Sales", "102": "Inside Sales", "103": "Field Sales",
                                      "104": "Field Sales"}
    links = tables["engagement_deal"].drop_duplicates("engagement_id").set_index("engagement_id")["deal_id"]
    acts = data.activities.set_index("activity_id")
    live = set(data.opportunities["opp_id"])
    for activity, deal in acts["opp_id"].items():
        want = links.get(activity)
        assert (deal == want) if want in live else pd.isna(deal)


def test_an_engagement_without_an_owner_anywhere_is_set_aside_and_counted(sync):
    folder, tables = sync
    data = load(folder)                     # bad_rows stop: no owner is not a stop
    issues = data.quality.issues
    no_owner = issues[(issues["table"] == "activities") & issues["reason"].str.startswith("no owner")]
    eng = tables["engagement"]
    meet = tables["engagement_meeting"].set_index("engagement_id")
    fallback = eng["id"].map(meet["property_hubspot_owner_id"]).fillna("").astype(str).replace("nan", "")
    own = eng["owner_id"].fillna("").astype(str)
    counted = eng["type"].isin(["MEETING", "EMAIL", "INCOMING_EMAIL", "CALL"])
    kept = ~eng["type"].eq("MEETING") | ~eng["id"].map(meet["property_hs_meeting_outcome"]).isin(
        ["CANCELED", "NO_SHOW"])
    kept &= ~eng["type"].eq("INCOMING_EMAIL")
    nowhere = counted & kept & (own == "") & (fallback == "")
    assert nowhere.sum() > 0 and len(no_owner) == nowhere.sum()
    assert set(no_owner["column"]) == {"owner_id"}          # the file's own column, not hubspot_owner_id
    files = data.quality.files.set_index("file")
    assert files.loc["engagement.csv", "rows_read"] == len(eng)
    assert files.loc["engagement.csv", "rows_kept"] == len(data.activities)
    filtered = issues[(issues["file"] == "engagement.csv") & (issues["action"] == "filtered")]
    assert files.loc["engagement.csv", "filtered"] == filtered["row"].nunique() == len(eng) - len(data.activities)
    assert {"not a meeting, email or call (its type)", "not a sent email (email_directions: EMAIL)"} <= set(
        filtered["reason"])


def test_messages_name_the_files_real_column(sync):
    folder, tables = sync
    eng = tables["engagement"]
    eng.loc[(eng["owner_id"].ne("") & eng["type"].eq("CALL")).idxmax(), "owner_id"] = "999"
    eng.to_csv(folder / "engagement.csv", index=False)
    with pytest.raises(DataError, match=r"engagement.csv row \d+: owner_id '999' is not in owner.csv"):
        load(folder)


def test_a_constant_team_and_its_conflict_with_team_field(sync, tmp_path):
    folder, _ = sync
    (tmp_path / "source.yaml").write_text("format: hubspot\nfolder: fivetran\nteam: Sales\nbad_rows: skip\n")
    assert set(load(tmp_path / "source.yaml").reps["team"]) == {"Sales"}
    (tmp_path / "source.yaml").write_text("format: hubspot\nfolder: fivetran\nteam: Sales\nteam_field: x\n")
    with pytest.raises(SourceError, match="give either `team:`.*or `team_field:`"):
        load(tmp_path / "source.yaml")


def test_an_owner_without_a_team_names_owner_team(sync):
    folder, tables = sync
    tables["owner_team"][tables["owner_team"]["owner_id"] != "102"].to_csv(folder / "owner_team.csv", index=False)
    with pytest.raises(DataError, match=r"owner.csv row 3: owner '102' has no team in owner_team.csv"):
        load(folder)
