"""Real exports load with every problem counted, and no input crashes pipnb.

The fixtures in tests/data/exports mimic what a new user brings: ``crm/`` a CSV export mapped by a source
YAML (several files per table, versions of a deal, stages in any case and spacing, a negative and a
non-numeric amount, forecast close dates, a close before the creation, an inactive seller, timestamps
mixed with dates, a call before the seller's hire, an email before its deal); ``salesforce-sync/`` and
``hubspot-sync/`` the same CRMs synced to a warehouse (snake_case names, ``property_`` prefixes,
soft-delete flags). Every count asserted below was worked out by hand from those files.
"""

import io
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from cliproc import pipnb

from pipnb.cli import main
from pipnb.errors import DataError, SourceError
from pipnb.quality import quality_report, quality_section, summary_line, write_quality_csv
from pipnb.sources import load

EXPORTS = Path(__file__).parent / "data" / "exports"
CRM = EXPORTS / "crm" / "source.yaml"
T = pd.Timestamp


def cli(*args: str):
    """The real command line, in this process (``exit_code``, ``stdout``, ``stderr``, ``exception``)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def run(*args: str) -> subprocess.CompletedProcess:
    """The real command line, in its own process."""
    return pipnb(*args)


def copy_crm(tmp_path: Path, yaml_edit=None, **files: tuple[str, str]) -> Path:
    folder = tmp_path / "crm"
    shutil.copytree(EXPORTS / "crm", folder)
    if yaml_edit is not None:
        (folder / "source.yaml").write_text(yaml_edit((folder / "source.yaml").read_text()))
    for name, (old, new) in files.items():
        path = folder / f"{name}.csv"
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new))
    return folder / "source.yaml"


def files_of(report) -> dict[str, tuple]:
    return {r["file"]: (r["rows_read"], r["rows_kept"], r["set_aside"], r["filtered"], r["duplicates"],
                        r["blanked"], r["corrected"]) for r in report["files"]}


# -- the mapping YAML ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def crm():
    return load(CRM)


def test_check_counts_every_row_of_a_messy_export():
    result = cli("check", "--data", CRM, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["bad_rows"] == "skip"
    #                       read kept aside filtered duplicates blanked corrected
    assert files_of(report) == {"sellers.csv": (5, 5, 0, 0, 0, 1, 0),             # is_active 'maybe'
                                "opportunities.csv": (11, 7, 2, 0, 2, 2, 1),
                                "calls.csv": (8, 5, 1, 2, 0, 1, 0),
                                "emails.csv": (6, 5, 1, 0, 0, 0, 0)}
    reasons = {(r["action"], r["table"], r["column"], r["reason"]): (r["count"], r["first"])
               for r in report["reasons"]}
    assert reasons[("duplicate", "opportunities", "opp_id", "an older version of the record (the latest by "
                    "last_modified_ts is kept)")] == (2, "opportunities.csv row 3 'O2', opportunities.csv row 10 'O3'")
    assert reasons[("filtered", "activities", "status", "not kept by where: status in [Held, Completed]")] == (
        2, "calls.csv row 4 'Scheduled', calls.csv row 9 'No answer'")            # 'held' matched any case
    assert reasons[("set aside", "opportunities", "closed_at", "is empty on a closed (won or lost) deal")][0] == 1
    assert reasons[("set aside", "activities", "occurred_at", "is not a date")] == (1, "emails.csv row 5 'not a date'")
    assert reasons[("blanked", "opportunities", "amount", "is negative")] == (1, "opportunities.csv row 7 '-500.0'")
    assert reasons[("blanked", "opportunities", "amount", "is not a number")] == (1, "opportunities.csv row 11 'abc'")
    assert reasons[("blanked", "activities", "opp_id", "is not in opportunities.csv (or was set aside there)")] == (
        1, "calls.csv row 8 'O9'")                                               # O9 was set aside
    assert reasons[("corrected", "opportunities", "closed_at", "is before created_at: closed when created")][0] == 1
    facts = {f["fact"]: (f["count"], f["first"]) for f in report["facts"]}
    assert facts == {
        "activities before the rep's hire date": (1, "calls.csv row 6 '2024-02-01 10:00:00'"),
        "activities before their deal was created": (1, "emails.csv row 2 '2024-03-03 08:00:00'"),  # not E3
        "open deals without a touch": (1, "opportunities.csv row 9 'O7'"),
        "deals without an owner": (1, "opportunities.csv row 8"),
        "inactive reps without an end date": (1, "sellers.csv row 5 '2024-03-14'"),
    }
    assert report["notes"] == {"open_close_dates_ignored": 2}


def test_mapping_yaml_loads_the_numbers_by_hand(crm):
    opps = crm.opportunities.set_index("opp_id")
    assert opps["outcome"].to_dict() == {"O1": "won", "O2": "open", "O3": "lost", "O4": "won", "O5": "won",
                                         "O7": "open", "O8": "lost"}
    # the latest version wins, wherever it sits in the file: O3's later row is older
    assert opps.loc["O3", "closed_at"] == T("2024-03-28")
    # forecast close dates of open deals are ignored
    assert opps.loc[["O2", "O7"], "closed_at"].isna().all()
    # a close *date* on the day of a timestamped creation is not before it; the close is the creation
    assert opps.loc["O4", "closed_at"] == opps.loc["O4", "created_at"] == T("2024-03-07 15:00")
    # a close before the creation: closed when created
    assert opps.loc["O5", "closed_at"] == T("2024-03-11 10:00")
    assert pd.isna(opps.loc["O5", "amount"]) and pd.isna(opps.loc["O8", "amount"])
    assert opps.loc["O1", "amount"] == 1200.0
    acts = crm.activities.set_index("activity_id")
    assert sorted(acts.index) == ["C1", "C2", "C4", "C5", "C7", "E1", "E2", "E3", "E5", "E6"]
    assert acts.loc["C1", "kind"] == "call" and acts.loc["E1", "kind"] == "email"
    assert pd.isna(acts.loc["C7", "opp_id"])
    reps = crm.reps.set_index("rep_id")
    assert reps["active"].iloc[:4].tolist() == [True, True, True, False] and pd.isna(reps["active"].iloc[4])
    assert reps.loc["S4", "end_date"] == T("2024-03-14")                        # their last record
    assert crm.inactive("2024-03-15").tolist() == [False, False, False, True, False]
    assert not crm.inactive("2024-03-14").any()


def test_mapping_options_need_no_skip_when_the_data_is_clean(tmp_path):
    """Versions, where, constants and any-case stages are not bad rows: they load with bad_rows: stop."""
    def clean(text: str) -> str:
        return text.replace("bad_rows: skip", "bad_rows: stop")
    source = copy_crm(tmp_path, clean, sellers=(",maybe", ",no"),
                      opportunities=("O5,S3,closed won,2024-03-11T10:00:00,2024-03-01,-500", "O5,S3,closed won,"
                                     "2024-03-11T10:00:00,2024-03-01,500"))
    for old, new in ((",abc,", ",,"), ("O6,,", "O6,S1,"), ("O9,S1,Closed Won,2024-03-18T09:00:00,,",
                                                            "O9,S1,Closed Won,2024-03-18T09:00:00,2024-03-25,")):
        path = source.parent / "opportunities.csv"
        path.write_text(path.read_text().replace(old, new))
    (source.parent / "calls.csv").write_text((source.parent / "calls.csv").read_text().replace(",S9,", ",S1,"))
    (source.parent / "emails.csv").write_text((source.parent / "emails.csv").read_text().replace("not a date",
                                                                                                 "2024-03-13"))
    data = load(source)
    assert data.quality.bad_rows == "stop"
    counts = data.quality.files.set_index("file")
    assert counts.loc["opportunities.csv", "duplicates"] == 2 and counts.loc["calls.csv", "filtered"] == 2
    assert counts["set_aside"].sum() == 0 and counts["rows_kept"].sum() == 30 - 2 - 2


def test_without_skip_the_first_bad_row_stops_the_load(tmp_path):
    source = copy_crm(tmp_path, lambda t: t.replace("bad_rows: skip", "bad_rows: stop"))
    result = run("scan", "--data", source)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "pipnb: error: sellers.csv row 6: active 'maybe' is not true or false (use true/false, yes/no, 1/0)"]
    # --bad-rows skip on the command line sets the rows aside again, and says so in one line
    result = run("scan", "--data", source, "--bad-rows", "skip")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "pipnb: data: 4 files, 30 rows read, 22 kept; 4 set aside, 2 filtered, 2 duplicates resolved, 4 values "
        "blanked, 1 corrected; facts: 1 activity before the rep's hire date, 1 activity before its deal was "
        "created, 1 open deal without a touch, 1 deal without an owner, 1 inactive rep without an end date "
        "(pipnb check --data SRC lists them)"]
    assert "note: inactive (left before the window ended; neither judged nor a peer): S4" in result.stdout


def test_bad_rows_flag_overrides_the_yaml():
    assert cli("check", "--data", CRM, "--bad-rows", "stop").exit_code == 2
    with pytest.raises(DataError, match="sellers.csv row 6: active 'maybe'"):
        load(CRM, bad_rows="stop")
    with pytest.raises(SourceError, match="bad_rows must be stop or skip"):
        load(CRM, bad_rows="sometimes")


def test_an_unmapped_value_is_one_error_listing_every_such_value(tmp_path):
    source = copy_crm(tmp_path, lambda t: t.replace("negotiation: open", "qualification: open"))
    result = cli("scan", "--data", source)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.stderr.strip().splitlines() == [
        "pipnb: error: opportunities.csv row 4: stage 'Negotiation' has no entry in "
        "tables.opportunities.values.outcome.map; values of opportunities.csv with no entry: 'Negotiation' (row 4, "
        "3 rows); add them to the map (or give it a `default:`); known: closed won, closed lost, prospecting, "
        "qualification"]


def test_an_empty_map_with_a_default_loads(tmp_path):
    source = copy_crm(tmp_path, lambda t: t.replace(
        "{closed won: won, closed lost: lost, prospecting: open, negotiation: open}", "{}, default: open"))
    data = load(source)
    assert set(data.opportunities["outcome"]) == {"open"}
    assert data.notes["open_close_dates_ignored"] == 7        # every close date is a forecast now (O9 has none)


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.replace("latest_by: last_modified_ts", "latest_by: modified"),
     "opportunities.csv: column 'modified' (latest_by) is missing"),
    (lambda t: t.replace("where: {status: [Held, Completed]}", "where: {state: [Held]}"),
     "calls.csv: column 'state' (tables.activities.0.where) is missing"),
    (lambda t: t.replace("values: {kind: email}", "values: {kind: [email]}"),
     "source YAML key `tables.activities.1.values.kind[0]`: Input should be a valid dictionary"),  # a list: rules
    (lambda t: t.replace("latest_by: last_modified_ts", "latest_by: last_modified_ts\n    sheet: 1"),
     "source YAML key `tables.opportunities.sheet`: Extra inputs are not permitted"),
    (lambda t: t.replace("bad_rows: skip", "bad_rows: often"),
     "source YAML key `bad_rows`: Input should be 'stop' or 'skip'"),
])
def test_mapping_mistakes_name_the_key(tmp_path, edit, expected):
    result = cli("check", "--data", copy_crm(tmp_path, edit))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert expected in result.stderr, result.stderr


def test_nothing_left_still_reports_why(tmp_path):
    source = copy_crm(tmp_path, lambda t: t.replace("rep_id: seller_id, created_at", "rep_id: stage, created_at"))
    result = cli("check", "--data", source)
    assert result.exit_code == 2
    assert "opportunities.csv: no opportunities row is left: every one was set aside" in result.stderr
    assert "      9  opportunities rep_id: is not in sellers.csv (or was set aside there)" in result.stdout


# -- what the data quality goes on to ---------------------------------------------------------------
def test_quality_csv_section_and_snapshot(crm, tmp_path):
    path = write_quality_csv(crm, tmp_path / "reports")
    listed = pd.read_csv(path, dtype=str)
    assert list(listed.columns) == ["table", "file", "row", "column", "value", "action", "reason"]
    assert len(listed) == len(crm.quality.issues) == 4 + 2 + 2 + 4 + 1 + 4   # the ownerless deal: set aside
    assert (listed.loc[listed["value"] == "'-500.0", "reason"] == "is negative").all()   # safe in a spreadsheet
    section = quality_section(crm)
    assert section.startswith("30 rows read from 4 files, 22 kept (bad rows: skip).")
    assert "Ana" not in section and "'abc'" not in section and "1 activity before its deal was created" in section
    again = load(crm.write_snapshot(tmp_path / "snap"))
    pd.testing.assert_frame_equal(again.quality.issues, crm.quality.issues)
    assert quality_report(again).to_dict() == quality_report(crm).to_dict()
    assert summary_line(again) == summary_line(crm)


def test_check_csv_lists_every_row_not_kept():
    result = cli("check", "--data", CRM, "--format", "csv")
    listed = pd.read_csv(io.StringIO(result.stdout), dtype=str)
    removed = listed[listed["action"].isin(["set aside", "filtered", "duplicate"])]
    assert len(removed) == 8 and not removed.duplicated(["file", "row"]).any()


def test_every_command_with_data_takes_bad_rows():
    for command in ("scan", "diagnose", "plan", "review", "run", "check"):
        assert "--bad-rows [stop|skip]" in cli(command, "--help").stdout, command


# -- warehouse syncs -------------------------------------------------------------------------------
def test_a_salesforce_warehouse_sync_loads_and_counts_deleted_rows():
    data = load(EXPORTS / "salesforce-sync", bad_rows="stop")    # nothing invalid: filtered rows never stop
    files = data.quality.files.set_index("file")
    assert files[["rows_read", "rows_kept", "filtered", "blanked", "corrected"]].to_dict("index") == {
        "user.csv": {"rows_read": 5, "rows_kept": 3, "filtered": 2, "blanked": 0, "corrected": 0},
        "opportunity.csv": {"rows_read": 7, "rows_kept": 5, "filtered": 2, "blanked": 0, "corrected": 1},
        "task.csv": {"rows_read": 5, "rows_kept": 3, "filtered": 2, "blanked": 1, "corrected": 0},
        "event.csv": {"rows_read": 3, "rows_kept": 2, "filtered": 1, "blanked": 0, "corrected": 0}}
    reasons = set(data.quality.issues["reason"])
    assert {"deleted in the CRM (is_deleted is set)", "deleted in the CRM (_fivetran_deleted is set)",
            "not a rep: owns no opportunity, task or event", "an invitee's copy of an event (IsChild)"} <= reasons
    reps = data.reps.set_index("rep_name")
    assert reps["team"].to_dict() == {"Ann Lee": "Enterprise", "Bob Ray": "Enterprise", "Cy Ng": "Mid-Market"}
    assert reps.loc["Cy Ng", "active"] == False and reps.loc["Cy Ng", "end_date"] == T("2024-03-11")  # noqa: E712
    assert reps.loc["Bob Ray", "manager"] == "Ann Lee"
    opps = data.opportunities.set_index("opp_id")
    assert opps["outcome"].value_counts().to_dict() == {"won": 2, "open": 2, "lost": 1}
    assert opps.loc["0065g00000Op1aD", "closed_at"] == opps.loc["0065g00000Op1aD", "created_at"]
    assert str(opps.loc["0065g00000Op1aA", "created_at"]) == "2024-03-05 14:22:10"
    acts = data.activities.set_index("activity_id")
    assert acts["kind"].to_dict() == {"00T5g00000Tk1aA": "email", "00T5g00000Tk1aB": "call",
                                      "00T5g00000Tk1aE": "email", "00U5g00000Ev1aA": "meeting",
                                      "00U5g00000Ev1aB": "meeting"}
    assert pd.isna(acts.loc["00T5g00000Tk1aE", "opp_id"])          # its opportunity was deleted


def test_a_salesforce_sync_in_a_database_loads_the_same(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("create schema salesforce")
    for path in (EXPORTS / "salesforce-sync").glob("*.csv"):    # typed columns, as a sync writes them
        con.execute(f"""create table salesforce."{path.stem.upper()}" as select * from read_csv_auto('{path}')""")
    con.close()
    (tmp_path / "source.yaml").write_text("format: salesforce\nurl: duckdb:///wh.duckdb\nschema: salesforce\n")
    data, files = load(tmp_path / "source.yaml"), load(EXPORTS / "salesforce-sync")
    for table in ("reps", "opportunities", "activities"):
        pd.testing.assert_frame_equal(getattr(data, table), getattr(files, table), check_dtype=False)
    assert data.quality.files["file"].tolist() == ["sql:USER", "sql:OPPORTUNITY", "sql:TASK", "sql:EVENT"]
    assert data.quality.files["filtered"].tolist() == [2, 2, 2, 1]
    (tmp_path / "both.yaml").write_text("format: salesforce\nurl: duckdb:///wh.duckdb\nfolder: sf\n")
    with pytest.raises(SourceError, match="give either `folder:`"):
        load(tmp_path / "both.yaml")


def test_a_hubspot_sync_with_property_prefixes_loads():
    data = load(EXPORTS / "hubspot-sync")
    files = data.quality.files.set_index("file")[["rows_read", "rows_kept", "filtered", "blanked"]]
    assert files.to_dict("index") == {
        "owner.csv": {"rows_read": 3, "rows_kept": 3, "filtered": 0, "blanked": 0},
        "deal.csv": {"rows_read": 6, "rows_kept": 4, "filtered": 2, "blanked": 0},
        "engagement_meetings.csv": {"rows_read": 4, "rows_kept": 3, "filtered": 1, "blanked": 1}}
    opps = data.opportunities.set_index("opp_id")
    assert opps["outcome"].to_dict() == {"9001": "won", "9002": "lost", "9003": "open", "9006": "open"}
    assert opps.loc["9002", "closed_at"] == T("2024-04-02 10:00") and pd.isna(opps.loc["9003", "closed_at"])
    assert data.reps.set_index("rep_id")["active"].tolist() == [True, True, False]      # 333 is archived
    report = quality_report(data)
    assert report.facts.set_index("fact")["count"]["deals without an owner"] == 1
    acts = data.activities.set_index("activity_id")
    assert str(acts.loc["61001", "occurred_at"]) == "2024-03-07 13:00:00" and pd.isna(acts.loc["61004", "opp_id"])


# -- one rule for every source ---------------------------------------------------------------------
REPS = "rep_id,rep_name,team,hire_date\nA,Ann,East,2022-01-03\nB,Bob,East,2022-01-03\n"


def folder_of(tmp_path: Path, opps: str, acts: str | None, reps: str = REPS) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / "reps.csv").write_text(reps)
    (folder / "opportunities.csv").write_text(opps)
    if acts is not None:
        (folder / "activities.csv").write_text(acts)
    return folder


def test_every_source_closes_a_deal_logged_after_it_closed_at_its_creation(tmp_path):
    folder = folder_of(tmp_path, "opp_id,rep_id,created_at,closed_at,outcome\n"
                                 "o1,A,2024-01-03T10:00:00,2023-12-10,won\n"      # before: corrected
                                 "o2,A,2024-01-04T10:00:00,2024-01-04,lost\n"     # the same day: not before
                                 "o3,B,2024-01-05,2024-03-01,open\n", None)
    data = load(folder)
    opps = data.opportunities.set_index("opp_id")
    assert opps["closed_at"].tolist() == [T("2024-01-03 10:00"), T("2024-01-04 10:00"), pd.NaT]
    corrected = data.quality.issues[data.quality.issues["action"] == "corrected"]
    assert corrected[["file", "row", "value"]].values.tolist() == [["opportunities.csv", 2, "2023-12-10"]]
    assert data.notes["open_close_dates_ignored"] == 1


def test_no_activity_linked_to_a_deal_scans(tmp_path):
    """``IndexError`` in the touch gaps once: activities with no opp_id at all."""
    opps = "opp_id,rep_id,created_at,closed_at,outcome\no1,A,2024-01-03,,open\no2,B,2024-01-04,2024-01-20,won\n"
    acts = "activity_id,rep_id,kind,occurred_at,opp_id\na1,A,email,2024-01-05,\na2,B,call,2024-01-22,\n"
    result = cli("scan", "--data", folder_of(tmp_path, opps, acts), "--format", "csv")
    assert result.exit_code == 0, result.output
    data = load(tmp_path / "data")
    assert "open deals without a touch" not in summary_line(data)     # not "2 untouched": it cannot be known
    facts = quality_report(data).facts.set_index("fact")
    assert facts.loc["open deals without a touch", "count"] is None
    assert "not linked to opportunities" in facts.loc["open deals without a touch", "first"]


def test_a_window_ends_with_the_data_and_counts_a_short_last_week(tmp_path):
    """Data ending on Monday 29 January: the window ends that day, and its last week counts one working day."""
    days = pd.bdate_range("2024-01-01", "2024-01-29")                   # 21 working days, one email each
    acts = "activity_id,rep_id,kind,occurred_at\n" + "".join(
        f"{rep}{i},{rep},email,{day:%Y-%m-%d}T10:00:00\n" for i, day in enumerate(days) for rep in "AB")
    opps = "opp_id,rep_id,created_at,closed_at,outcome\no1,A,2024-01-02,,open\n"
    folder = folder_of(tmp_path, opps, acts)
    result = cli("scan", "--data", folder, "--weeks", 12, "--format", "json")
    assert result.exit_code == 0, result.output
    scan = json.loads(result.stdout)
    assert scan["window"] == {"start": "2024-01-01", "end": "2024-01-29", "weeks": 5}      # what the rows cover
    assert scan["as_of"] == "2024-01-29" and scan["basis"]["win_rate_basis"] == "closed"
    rows = pd.DataFrame(scan["rows"]).set_index(["rep_id", "metric"])
    assert rows.loc[("A", "emails_per_week"), "value"] == pytest.approx(21 / 4.2)    # 5 a week, not 4.2
    assert rows.loc[("A", "emails_per_week"), "denominator"] == pytest.approx(4.2)
    header = cli("scan", "--data", folder).stdout.splitlines()[0]
    assert header.startswith("Team scan — 5 weeks 2024-01-01 to 2024-01-29;")     # never to 4 February
    since = cli("scan", "--data", folder, "--since", "2024-01-15").stdout.splitlines()[0]
    assert since.startswith("Team scan — 3 weeks 2024-01-15 to 2024-01-29;")       # the weeks actually used
    later = cli("scan", "--data", folder, "--as-of", "2024-01-31").stdout.splitlines()[0]
    assert later == header


@pytest.mark.parametrize("args, expected", [
    (("--as-of", "2030-01-01"), "no data in the window 2029-10-15 to 2030-01-01: the data runs from 2024-01-02 "
                                "to 2024-01-29; choose an as-of date in between"),
    (("--as-of", "2020-01-01"), "no data in the window ending 2020-01-01"),
    (("--since", "2024-06-01"), "no data from the week of 2024-05-27 on"),
    (("--weeks", "-3"), "Invalid value for '--weeks': -3 is not in the range x>=1"),
])
def test_a_window_without_data_is_one_clear_error(tmp_path, args, expected):
    opps = "opp_id,rep_id,created_at,closed_at,outcome\no1,A,2024-01-02,2024-01-29,won\n"
    result = run("scan", "--data", folder_of(tmp_path, opps, None), *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert expected in result.stderr, result.stderr


def test_diagnose_after_the_data_is_a_data_error(crm):
    import pipnb as pn

    with pytest.raises(DataError, match="no data in the window"):
        pn.diagnose(crm, "S1", as_of="2030-01-01")
    with pytest.raises(pn.PipnbError):
        pn.scorecard(crm, weeks=0)


def test_a_rep_who_left_has_no_weeks_after_leaving(tmp_path):
    reps = ("rep_id,rep_name,team,hire_date,active,end_date\nA,Ann,East,2022-01-03,true,\n"
            "B,Bob,East,2022-01-03,yes,2024-01-10\nC,Cy,East,2022-01-03,false,\n")
    opps = ("opp_id,rep_id,created_at,closed_at,outcome\no1,A,2024-01-02,,open\no2,B,2024-01-03,,open\n"
            "o3,C,2024-01-16,,open\no4,A,2024-01-29,,open\n")
    data = load(folder_of(tmp_path, opps, None, reps))
    assert data.reps["end_date"].tolist() == [pd.NaT, T("2024-01-10"), T("2024-01-16")]
    assert data.inactive("2024-01-29").tolist() == [False, True, True]
    from pipnb.metrics import weekly_panel

    weeks = weekly_panel(data).groupby("rep_id")["week"].max()
    assert weeks.to_dict() == {"A": T("2024-01-29"), "B": T("2024-01-08"), "C": T("2024-01-15")}


# -- every source takes bad_rows -------------------------------------------------------------------
def test_skip_sets_aside_rows_of_every_vendor_source(tmp_path):
    folder = tmp_path / "sf"
    shutil.copytree(EXPORTS / "salesforce-sync", folder)
    text = (folder / "opportunity.csv").read_text()
    (folder / "opportunity.csv").write_text(text.replace("true,true,2024-03-05", "true,maybe,2024-03-05")
                                            .replace(",12000,", ",-12000,"))
    with pytest.raises(DataError, match="opportunity.csv row 2: is_won 'maybe' is not true or false"):
        load(folder)
    data = load(folder, bad_rows="skip")
    assert len(data.opportunities) == 4 and "0065g00000Op1aA" not in set(data.opportunities["opp_id"])
    aside = data.quality.issues.query("action == 'set aside'")
    assert aside[["file", "row", "column", "value"]].values.tolist() == [["opportunity.csv", 2, "is_won", "maybe"]]
    # the tasks and events of the opportunity set aside keep their rows, without the link
    assert pd.isna(data.activities.set_index("activity_id").loc["00T5g00000Tk1aA", "opp_id"])

    hs = tmp_path / "hs"
    shutil.copytree(EXPORTS / "hubspot-sync", hs)
    text = (hs / "engagement_meetings.csv").read_text()
    (hs / "engagement_meetings.csv").write_text(text.replace("2024-03-15T13:00:00Z", "soon"))
    with pytest.raises(DataError, match="engagement_meetings.csv row 4: property_hs_timestamp 'soon' is not a date"):
        load(hs)
    assert len(load(hs, bad_rows="skip").activities) == 2


def test_skip_on_a_database_url(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "crm.db") as con:
        pd.read_csv(io.StringIO(REPS)).to_sql("reps", con, index=False)
        pd.DataFrame({"opp_id": ["o1", "o2", "o2"], "rep_id": ["A", "A", "B"], "created_at": ["2024-01-02"] * 3,
                      "closed_at": [None, "2024-01-09", None], "outcome": ["open", "won", "open"],
                      "amount": ["1", "-5", "x"]}).to_sql("opportunities", con, index=False)
    con.close()
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with pytest.raises(DataError, match="sql:opportunities row 3: amount 'x' is not a number"):
        load(url)
    data = load(url, bad_rows="skip")
    assert data.opportunities["opp_id"].tolist() == ["o1", "o2"]
    assert data.quality.files[["file", "rows_read", "rows_kept", "set_aside", "blanked"]].values.tolist() == [
        ["sql:reps", 2, 2, 0, 0], ["sql:opportunities", 3, 2, 1, 2]]


def test_a_command_line_mistake_is_one_line_and_exit_2(tmp_path):

    for args in (["scan", "--data", str(tmp_path), "--weeks", "-3"], ["scan", "--bogus"], ["nosuch"]):
        done = pipnb(*args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith("pipnb: error: ") and "--help" in done.stderr
