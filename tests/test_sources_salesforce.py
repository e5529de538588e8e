"""A Salesforce export (Opportunity, Task, Event, User with API field names) loads into the canonical tables.

The fixture in tests/data/salesforce carries the messy parts of real exports: 15- and 18-character ids
mixed (one 18-character id with its case lost), ``+0000`` date-times, picklist values in another case,
a BOM, rows marked IsDeleted, invitee copies of an event, an all-day event, an opportunity whose
CloseDate is before its CreatedDate, and users who own nothing.
"""

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from cliproc import pipnb

from pipnb.errors import DataError, SourceError
from pipnb.sources import load
from pipnb.sources.salesforce import salesforce_id15, salesforce_id18

FIXTURE = Path(__file__).parent / "data" / "salesforce"
ANN, BOB, CY = "0055g00000Ab1Cd", "0055g00000Ab1Ce", "0055g00000Ab1Cf"


def copy(tmp_path: Path, **edits: tuple[str, str]) -> Path:
    """The fixture in a temporary folder, with ``File={old: new}`` text replacements."""
    folder = tmp_path / "sf"
    shutil.copytree(FIXTURE, folder)
    for name, (old, new) in edits.items():
        path = folder / f"{name}.csv"
        text = path.read_text(encoding="utf-8-sig")
        assert old in text, f"{old!r} not in {name}.csv"
        path.write_text(text.replace(old, new), encoding="utf-8")
    return folder


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return pipnb(*args)


# -- ids -------------------------------------------------------------------------------------------
def test_18_character_ids_are_the_15_character_id_plus_a_case_checksum():
    assert salesforce_id18(["00300000003T2PG", "001A0000006Vm9r"]).tolist() == ["00300000003T2PGAA0",
                                                                                 "001A0000006Vm9rIAC"]
    ids = pd.Series(["001A0000006Vm9rIAC", "001A0000006VM9RIAC", "001a0000006vm9riac", "001A0000006Vm9r",
                     " 001A0000006Vm9r ", None, "not-an-id"])
    assert salesforce_id15(ids).tolist() == ["001A0000006Vm9r"] * 5 + [pd.NA, "not-an-id"]
    # 15-character ids are case-sensitive: these are two different records
    assert salesforce_id15(pd.Series(["0015g00000Xy2aB", "0015g00000Xy2Ab"])).nunique() == 2


# -- the fixture -----------------------------------------------------------------------------------
def test_salesforce_folder_is_detected_and_loaded():
    data = load(FIXTURE)
    reps = data.reps.set_index("rep_id")
    # the manager and the integration user own nothing: not reps; an uppercased 18-char id still joins
    assert list(reps.index) == [ANN, BOB, CY]
    assert reps.loc[ANN, "team"] == "Enterprise East" and reps.loc[CY, "team"] == "Mid-Market West"
    assert reps.loc[BOB, "manager"] == "Maria Manager" and reps.loc[CY, "segment"] == "Mid-market"
    assert str(reps.loc[BOB, "hire_date"].date()) == "2023-09-18" and pd.isna(reps.loc[CY, "hire_date"])


def test_opportunities_outcome_dates_and_ids():
    opps = load(FIXTURE).opportunities.set_index("opp_id")
    assert len(opps) == 5                                   # the IsDeleted row is gone
    assert opps["outcome"].to_dict() == {"0065g00000Op1aA": "won", "0065g00000Op1aB": "lost",
                                         "0065g00000Op1aC": "open", "0065g00000Op1aD": "won",
                                         "0065g00000Op1aE": "open"}
    assert str(opps.loc["0065g00000Op1aA", "created_at"]) == "2024-03-05 14:22:10"   # +0000 honoured
    assert str(opps.loc["0065g00000Op1aA", "closed_at"]) == "2024-03-28 00:00:00"
    assert pd.isna(opps.loc["0065g00000Op1aC", "closed_at"])    # an open deal's CloseDate is a forecast
    # CloseDate 2024-03-15 before CreatedDate 2024-03-20 10:00 (logged after it closed): closed when created
    assert opps.loc["0065g00000Op1aD", "closed_at"] == opps.loc["0065g00000Op1aD", "created_at"]
    assert opps.loc["0065g00000Op1aB", "rep_id"] == ANN and opps.loc["0065g00000Op1aA", "amount"] == 12000.0
    assert opps.loc["0065g00000Op1aC", "account_id"] == "0015g00000Xy2Ab"


def test_tasks_and_events_become_emails_calls_and_meetings():
    acts = load(FIXTURE).activities.set_index("activity_id")
    assert acts["kind"].to_dict() == {
        "00T5g00000Tk1aA": "email",     # TaskSubtype Email
        "00T5g00000Tk1aB": "email",     # "listemail", Status "completed": any case
        "00T5g00000Tk1aC": "call",      # "CALL"
        "00T5g00000Tk1aG": "email",
        "00U5g00000Ev1aA": "meeting", "00U5g00000Ev1aB": "meeting",
        "00U5g00000Ev1aD": "meeting",   # all-day event: ActivityDate only
        "00U5g00000Ev1aE": "meeting",   # every event is a meeting by default
    }  # not: a to-do (Task), a call not started, an IsDeleted email, the invitee's copy (IsChild)
    assert acts.loc["00T5g00000Tk1aA", "opp_id"] == "0065g00000Op1aA"    # WhatId 18 chars, case lost
    assert pd.isna(acts.loc["00T5g00000Tk1aB", "opp_id"])                 # WhatId is an account ...
    assert acts.loc["00T5g00000Tk1aB", "account_id"] == "0015g00000Xy2aB"  # ... and gives the account
    assert str(acts.loc["00T5g00000Tk1aA", "occurred_at"]) == "2024-03-06 10:15:00"  # CompletedDateTime
    assert str(acts.loc["00T5g00000Tk1aB", "occurred_at"]) == "2024-03-07 00:00:00"  # else ActivityDate
    assert str(acts.loc["00U5g00000Ev1aD", "occurred_at"]) == "2024-03-13 00:00:00"


def test_timezone_converts_date_times_but_keeps_dates():
    data = load(FIXTURE, timezone="Europe/Berlin")
    opps = data.opportunities.set_index("opp_id")
    assert str(opps.loc["0065g00000Op1aA", "created_at"]) == "2024-03-05 15:22:10"
    assert str(opps.loc["0065g00000Op1aA", "closed_at"]) == "2024-03-28 00:00:00"


def test_source_yaml_chooses_fields_and_rules(tmp_path):
    folder = copy(tmp_path)
    (tmp_path / "source.yaml").write_text(
        "format: salesforce\n"
        "folder: sf\n"
        "team_field: Department\n"
        "meeting_when: {field: Type, values: [meeting]}\n"
        "email_when: [{field: TaskSubtype, values: [Email]}, {field: Subject, pattern: '^email:'}]\n"
        "call_when: {field: Type, values: [Call]}\n"
        "task_status: null\n")
    data = load(tmp_path / "source.yaml")
    assert set(data.reps["team"]) == {"Sales"}
    kinds = data.activities.set_index("activity_id")["kind"]
    assert "00U5g00000Ev1aE" not in kinds                  # Type Other is not a meeting now
    assert kinds["00T5g00000Tk1aE"] == "call"               # not started, but task_status: null
    assert kinds["00T5g00000Tk1aB"] == "email"              # by its subject
    assert folder.is_dir()


def test_role_ids_of_a_data_export_are_named_from_userrole_csv(tmp_path):
    folder = copy(tmp_path)
    users = (folder / "User.csv").read_text(encoding="utf-8-sig")
    users = (users.replace("UserRole.Name", "UserRoleId").replace("Enterprise East", "00E5g000000AbCdEAK")
             .replace("Mid-Market West", "00E5g000000AbCe"))
    (folder / "User.csv").write_text(users)
    (folder / "UserRole.csv").write_text("Id,Name\n00E5g000000AbCd,Enterprise East\n"
                                         "00E5g000000AbCeEAK,Mid-Market West\n")
    (tmp_path / "source.yaml").write_text("format: salesforce\nfolder: sf\nteam_field: UserRoleId\n")
    assert load(tmp_path / "source.yaml").reps["team"].tolist() == ["Enterprise East"] * 2 + ["Mid-Market West"]


def test_reps_when_keeps_only_chosen_users_and_their_records(tmp_path):
    copy(tmp_path)
    (tmp_path / "source.yaml").write_text(
        "format: salesforce\nfolder: sf\nreps_when: {field: UserRole.Name, values: [Enterprise East]}\n")
    data = load(tmp_path / "source.yaml")
    assert data.reps["rep_id"].tolist() == [ANN, BOB]
    assert set(data.opportunities["rep_id"]) == {ANN, BOB} and set(data.activities["rep_id"]) == {ANN, BOB}


def test_without_tasks_and_events_activities_are_unavailable(tmp_path):
    folder = copy(tmp_path)
    (folder / "Task.csv").unlink()
    (folder / "Event.csv").unlink()
    assert load(folder).activities is None


# -- errors name the vendor's file, row and field --------------------------------------------------
SUBTYPE_MISSING = "Task.csv: column TaskSubtype is missing; export it or set `email_when` in the source YAML"
CREATED = "2024-03-06T09:00:00.000+0000"
BAD = {  # case: (file, text, replacement, expected message)
    "subtype not exported": ("Task", "Type,TaskSubtype,", "Type,Kind,", SUBTYPE_MISSING),
    "no IsWon": ("Opportunity", ",IsWon,", ",Won,", "Opportunity.csv: column IsWon is missing"),
    "bad date": ("Opportunity", CREATED, "06/03/2024 09:00",
                 "Opportunity.csv row 3: CreatedDate '06/03/2024 09:00' is not a date"),
    "bad flag": ("Opportunity", "TRUE,FALSE", "TRUE,maybe",
                 "Opportunity.csv row 3: IsWon 'maybe' is not true or false"),
    "closed without CloseDate": ("Opportunity", f"{CREATED},2024-04-02", f"{CREATED},",
                                 "Opportunity.csv row 3: CloseDate is empty"),
    "owner not exported": ("Opportunity", "0015g00000Xy2AbAAJ,0055g00000Ab1CeAAJ",
                           "0015g00000Xy2AbAAJ,0055g00000Qq1QqAAJ",
                           "Opportunity.csv row 4: OwnerId '0055g00000Qq1Qq' is not in User.csv"),
    "activity on a missing opportunity": (
        "Task", "0065g00000Op1aE,", "0065g00000Op9zZ,",
        "Task.csv row 8: WhatId '0065g00000Op9zZ' is not in Opportunity.csv"),
    "15 and 18 char duplicates": (
        "Event", "00U5g00000Ev1aB,", "00U5g00000Ev1aA,",
        "Event.csv row 3: Id '00U5g00000Ev1aA' appears more than once (first at row 2)"),
    "no team field": ("User", "UserRole.Name,Department", "Role,Dept",
                      "User.csv: no team column (UserRole.Name or Department)"),
    "rep without team": ("User", "false,Mid-Market West,", "false,,",
                         "User.csv row 4: UserRole.Name is empty"),
    "event without a date": (
        "Event", ",,2024-03-13,1440", ",,,1440",
        "Event.csv row 5: ActivityDateTime and StartDateTime and ActivityDate are empty"),
}


def broken(tmp_path: Path, case: str) -> Path:
    file, old, new, _ = BAD[case]
    return copy(tmp_path, **{file: (old, new)})


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_export_names_file_row_and_field(tmp_path, case):
    with pytest.raises(DataError) as err:
        load(broken(tmp_path, case))
    assert BAD[case][-1] in str(err.value)


def test_missing_object_file(tmp_path):
    folder = copy(tmp_path)
    (folder / "User.csv").unlink()
    (tmp_path / "source.yaml").write_text("format: salesforce\nfolder: sf\n")
    with pytest.raises(DataError, match="User.csv is missing; export that object"):
        load(tmp_path / "source.yaml")


@pytest.mark.parametrize("yaml_text, expected", [
    ("team_feild: Department", "source YAML key `team_feild`: unknown key; the known ones are folder, url, url_env"),
    ("email_when: {field: Type}", "source YAML key `email_when.0`: a rule needs `values"),
    ("call_when: {field: Subject, pattern: '(call'}", "pattern '(call' is not a regular"),
    ("team: Sales\nteam_field: Department", "give either `team:` (one team for every rep) or `team_field:`"),
    ("files: {Oportunity: o.csv}", "source YAML key `files.Oportunity`: unknown key; the known ones are Opportunity, "
                                   "Task, Event, User, UserRole"),
])
def test_source_yaml_mistakes_name_the_key(tmp_path, yaml_text, expected):
    (tmp_path / "source.yaml").write_text(f"format: salesforce\n{yaml_text}\n")
    with pytest.raises(SourceError) as err:
        load(tmp_path / "source.yaml")
    assert expected in str(err.value)


def test_a_constant_team(tmp_path):
    copy(tmp_path)
    (tmp_path / "source.yaml").write_text("format: salesforce\nfolder: sf\nteam: ' Enterprise '\n")
    assert set(load(tmp_path / "source.yaml").reps["team"]) == {"Enterprise"}


def test_cli_reports_a_salesforce_error_in_one_line(tmp_path):
    result = run_cli("scan", "--data", str(broken(tmp_path, "subtype not exported")))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"pipnb: error: {SUBTYPE_MISSING}"]
