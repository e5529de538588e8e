"""A HubSpot export (deals, meetings, emails, calls, owners) loads into the canonical tables.

The fixture in tests/data/hubspot carries the messy parts of real exports: millisecond epochs mixed with
ISO 8601 times, ``Record ID`` instead of ``hs_object_id``, associations as semicolon lists (one pointing
first at a deal that was not exported), enumeration values in another case, canceled and no-show
meetings, incoming and forwarded emails, a deal and an email without an owner, and an owner in two teams.
"""

import shutil
from pathlib import Path

import pandas as pd
import pytest
from cliproc import pipnb

from pipnb.errors import DataError, SourceError
from pipnb.sources import load

FIXTURE = Path(__file__).parent / "data" / "hubspot"


def copy(tmp_path: Path, **edits: tuple[str, str]) -> Path:
    """The fixture in a temporary folder, with ``file={old: new}`` text replacements."""
    folder = tmp_path / "hs"
    shutil.copytree(FIXTURE, folder)
    for name, (old, new) in edits.items():
        path = folder / f"{name}.csv"
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {name}.csv"
        path.write_text(text.replace(old, new), encoding="utf-8")
    return folder


def test_hubspot_folder_is_detected_and_loaded():
    data = load(FIXTURE)
    reps = data.reps.set_index("rep_id")
    # 444 owns nothing: not a rep
    assert reps["rep_name"].to_dict() == {"111": "Ann Lee", "222": "Bob Ray", "333": "Cy Ng"}
    assert reps["team"].to_dict() == {"111": "Inside Sales", "222": "Inside Sales", "333": "Field Sales"}
    opps = data.opportunities.set_index("opp_id")
    assert opps["outcome"].to_dict() == {"9001": "won", "9002": "lost", "9003": "open", "9004": "open"}
    assert str(opps.loc["9001", "created_at"]) == "2024-03-05 14:22:10"     # epoch milliseconds
    assert str(opps.loc["9002", "closed_at"]) == "2024-04-02 10:00:00"      # ISO with Z
    assert str(opps.loc["9004", "created_at"]) == "2024-03-11 08:30:00"
    assert opps.loc["9003", "account_id"] == "5002" and pd.isna(opps.loc["9003", "amount"])


def test_only_real_activity_counts_and_associations_pick_an_exported_deal():
    acts = load(FIXTURE).activities.set_index("activity_id")
    assert acts["kind"].to_dict() == {"61001": "meeting", "61002": "meeting", "61005": "meeting",
                                      "61006": "meeting", "71001": "email", "71004": "email",
                                      "81001": "call", "81002": "call"}
    # canceled / no-show meetings, incoming / forwarded emails and the email without an owner are gone
    assert acts.loc["61002", "opp_id"] == "9001"          # "9999;9001": 9999 was not exported
    assert acts.loc["61005", "opp_id"] == "9004"          # "9004;9003": the first
    assert pd.isna(acts.loc["71004", "opp_id"])
    assert str(acts.loc["61005", "occurred_at"]) == "2024-03-13 09:30:00"  # meeting start time, ISO
    assert str(acts.loc["61006", "occurred_at"]) == "2024-03-08 15:00:00"  # no start time: hs_timestamp


def test_timezone_converts_epochs():
    opps = load(FIXTURE, timezone="America/New_York").opportunities.set_index("opp_id")
    assert str(opps.loc["9001", "created_at"]) == "2024-03-05 09:22:10"


def test_source_yaml_settings(tmp_path):
    copy(tmp_path)
    (tmp_path / "source.yaml").write_text(
        "format: hubspot\nfolder: hs\nskip_meeting_outcomes: [canceled]\nemail_directions: null\n"
        "reps_when: {field: teams, pattern: '^inside'}\n")
    data = load(tmp_path / "source.yaml")
    assert data.reps["rep_id"].tolist() == ["111", "222"]
    kinds = data.activities.set_index("activity_id")["kind"]
    assert "61004" in kinds and "61003" not in kinds        # no-show counts now, canceled does not
    assert {"71002", "71003"} <= set(kinds.index)           # every email direction counts
    assert "9004" not in set(data.opportunities["opp_id"])  # Cy's deal went with Cy


def test_outcome_from_dealstage_and_pipeline_filter(tmp_path):
    copy(tmp_path, deals=("hs_is_closed,hs_is_closed_won", "closed_flag,won_flag"))
    (tmp_path / "source.yaml").write_text(
        "format: hubspot\nfolder: hs\nwon_stages: [Closed Won]\nlost_stages: [closedlost]\n"
        "pipelines: [Default]\n")
    opps = load(tmp_path / "source.yaml").opportunities.set_index("opp_id")
    assert opps["outcome"].to_dict() == {"9001": "won", "9002": "lost", "9003": "open", "9004": "open"}


def test_owner_names_instead_of_ids_are_mapped(tmp_path):
    folder = copy(tmp_path, deals=("hubspot_owner_id", "Deal owner"))
    text = (folder / "deals.csv").read_text().replace(",111,", ",Ann Lee,").replace(",333,", ",cy ng,")
    (folder / "deals.csv").write_text(text)
    opps = load(folder).opportunities.set_index("opp_id")
    assert opps["rep_id"].to_dict() == {"9001": "111", "9002": "111", "9003": "222", "9004": "333"}


DEAL_HEADER = "dealstage,amount,createdate,closedate,hubspot_owner_id,hs_is_closed,hs_is_closed_won"
BAD = {  # case: (file, text, replacement, expected message)
    "no direction": (
        "emails", "hs_email_direction", "direction",
        "emails.csv: column hs_email_direction is missing; export it or set `email_directions: null`"),
    "no outcome": ("meetings", "hs_meeting_outcome", "outcome",
                   "meetings.csv: column hs_meeting_outcome is missing"),
    "bad timestamp": ("calls", "1709982000000", "yesterday",
                      "calls.csv row 3: hs_timestamp 'yesterday' is not a date"),
    "unknown owner": ("calls", "NO_ANSWER,333", "NO_ANSWER,999",
                      "calls.csv row 3: hubspot_owner_id '999' is not in owners.csv"),
    "deal not exported": ("calls", "COMPLETED,222,9003", "COMPLETED,222,9100",
                          "calls.csv row 2: associated_deal_ids '9100' is not in deals.csv"),
    "duplicate id": ("deals", "9002,Acme upsell", "9001,Acme upsell",
                     "deals.csv row 3: Record ID '9001' appears more than once (first at row 2)"),
    "no closed flags": ("deals", DEAL_HEADER, DEAL_HEADER.replace("hs_is_", "").replace("dealstage", "stage"),
                        "deals.csv: columns hs_is_closed and hs_is_closed_won are missing"),
    "closed without date": ("deals", "2024-04-02T10:00:00.000Z", "", "deals.csv row 3: closedate is empty"),
    "no team": ("owners", "teams", "groups", "owners.csv: column team is missing"),
    "bad flag": ("deals", "true,true,5001", "true,sometimes,5001",
                 "deals.csv row 2: hs_is_closed_won 'sometimes' is not true or false"),
}


def broken(tmp_path: Path, case: str) -> Path:
    file, old, new, _ = BAD[case]
    return copy(tmp_path, **{file: (old, new)})


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_export_names_file_row_and_column(tmp_path, case):
    with pytest.raises(DataError) as err:
        load(broken(tmp_path, case))
    assert BAD[case][-1] in str(err.value)


def test_source_yaml_mistake_names_the_key(tmp_path):
    (tmp_path / "source.yaml").write_text("format: hubspot\nfiles: {deal: d.csv}\n")
    with pytest.raises(SourceError, match=r"source YAML key `files.deal`: unknown key; the known ones are deals, "
                                          r"meetings, emails, calls, owners"):
        load(tmp_path / "source.yaml")


def test_cli_reports_a_hubspot_error_in_one_line(tmp_path):
    folder = broken(tmp_path, "unknown owner")
    result = pipnb("scan", "--data", folder)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"pipnb: error: {BAD['unknown owner'][-1]}; export it there too or remove this row"]
