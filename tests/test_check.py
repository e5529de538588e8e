"""No input crashes pipnb: random mutations of a valid folder, fed to ``pipnb check`` and ``pipnb scan``.

Each example damages a small valid folder a few times at random (a cell emptied or replaced by garbage, a
negative or non-numeric amount, an impossible or far-off date, an unknown id, a repeated or dropped row, a
missing column or file, a header-only table ...) and runs the real command line. Whatever the damage, the
command ends with exit 0 or 2 and never a traceback; and with ``--bad-rows skip`` every row of every file
is either kept or listed: rows read (counted here, from the file) = rows kept + rows listed as left out.
"""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pipnb.cli import main

EXAMPLES = 40
START = pd.Timestamp("2024-01-01")


def valid_folder(folder: Path) -> Path:
    """Six reps over ten weeks: deals won, lost and open, emails, calls and meetings on them."""
    rng = np.random.default_rng(7)
    reps = [["R1", "Ann", "East", "Maria", "SMB", "2022-01-03"], ["R2", "Bob", "East", "Maria", "SMB", "2023-05-08"],
            ["R3", "Cy", "East", "Maria", "MM", "2023-11-06"], ["R4", "Dee", "West", "Omar", "SMB", "2021-03-01"],
            ["R5", "Eli", "West", "Omar", "MM", "2022-08-15"], ["R6", "Fay", "West", "Omar", "MM", "2024-01-08"]]
    opps, acts = [], []
    for i in range(30):
        rep = reps[i % 6][0]
        created = START + pd.Timedelta(hours=int(rng.integers(0, 24 * 50)))
        outcome = ["won", "lost", "open"][i % 3]
        closed = "" if outcome == "open" else f"{created + pd.Timedelta(days=int(rng.integers(1, 20))):%Y-%m-%d}"
        opps.append([f"O{i}", rep, f"{created:%Y-%m-%dT%H:%M:%S}", closed, outcome, str(int(rng.integers(1, 90)) * 100),
                     f"A{i % 7}"])
        for k, kind in enumerate(("email", "call", "meeting")):
            at = created + pd.Timedelta(hours=int(rng.integers(1, 24 * 14)))
            acts.append([f"X{i}-{k}", rep, kind, f"{at:%Y-%m-%dT%H:%M:%S}", f"O{i}" if k != 1 or i % 2 else ""])
    write(folder / "reps.csv", ["rep_id", "rep_name", "team", "manager", "segment", "hire_date"], reps)
    write(folder / "opportunities.csv", ["opp_id", "rep_id", "created_at", "closed_at", "outcome", "amount",
                                         "account_id"], opps)
    write(folder / "activities.csv", ["activity_id", "rep_id", "kind", "occurred_at", "opp_id"], acts)
    return folder


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


GARBAGE = ["", " ", "n/a", "-1", "-250.5", "abc", "1e400", "2024-13-45", "31/12/2024", "1900-01-01", "2099-12-31",
           "2024-02-30T25:00:00", "1709816400000", "2024-03-05T14:22:10+05:30", "  R1  ", "r1", "WON", "Closed  Won",
           "pending", "sms", "=HYPERLINK(\"x\")", "☃", "\"quoted, comma\"", "O999", "R99", "true", "0"]


def mutate(folder: Path, rng: np.random.Generator) -> list[str]:
    """Damage the folder 1 to 4 times; returns what was done (shown when a property fails)."""
    done = []
    for _ in range(int(rng.integers(1, 5))):
        names = sorted(p.name for p in folder.glob("*.csv"))
        if not names:
            break
        path = folder / names[int(rng.integers(len(names)))]
        header, rows = read(path)
        op = rng.choice(["cell", "cell", "cell", "cell", "duplicate", "drop row", "drop column", "empty",
                         "delete file", "extra column", "swap ids"])
        if op == "cell" and rows:
            r, c = int(rng.integers(len(rows))), int(rng.integers(len(header)))
            rows[r][c] = str(rng.choice(GARBAGE))
            done.append(f"{path.name} row {r + 2} {header[c]} = {rows[r][c]!r}")
        elif op == "duplicate" and rows:
            r = int(rng.integers(len(rows)))
            rows.insert(int(rng.integers(len(rows) + 1)), list(rows[r]))
            done.append(f"{path.name}: row {r + 2} repeated")
        elif op == "drop row" and rows:
            r = int(rng.integers(len(rows)))
            del rows[r]
            done.append(f"{path.name}: row {r + 2} dropped")
        elif op == "drop column":
            c = int(rng.integers(len(header)))
            done.append(f"{path.name}: column {header[c]} dropped")
            header = header[:c] + header[c + 1:]
            rows = [row[:c] + row[c + 1:] for row in rows]
        elif op == "empty":
            rows = []
            done.append(f"{path.name}: header only")
        elif op == "delete file":
            path.unlink()
            done.append(f"{path.name} deleted")
            continue
        elif op == "extra column":
            header = [*header, "notes"]
            rows = [[*row, str(rng.choice(GARBAGE))] for row in rows]
            done.append(f"{path.name}: a notes column")
        elif op == "swap ids" and len(rows) > 1:
            a, b = (int(x) for x in rng.choice(len(rows), 2, replace=False))
            rows[a][0] = rows[b][0]
            done.append(f"{path.name}: row {a + 2} takes the id of row {b + 2}")
        write(path, header, rows)
    return done


def invoke(*args) -> object:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) >= 1 and lines[-1].startswith(("pipnb: error:", "Error:")), result.stderr
    return result


def data_rows(path: Path) -> int:
    """The data rows of a CSV, counted independently of pipnb."""
    return len(pd.read_csv(path, dtype=str, keep_default_na=False))


@pytest.mark.parametrize("seed", range(EXAMPLES))
def test_random_damage_never_crashes_and_loses_no_row(tmp_path, seed):
    rng = np.random.default_rng(seed)
    folder = valid_folder(tmp_path / "data")
    done = mutate(folder, rng)
    check = invoke("check", "--data", folder, "--format", "json")
    if check.exit_code == 0:
        report = json.loads(check.stdout)
        assert {f["file"] for f in report["files"]} == {p.name for p in folder.glob("*.csv")}, done
        for f in report["files"]:
            assert f["rows_read"] == data_rows(folder / f["file"]), (done, f)
            assert f["rows_read"] == f["rows_kept"] + f["set_aside"] + f["filtered"] + f["duplicates"], (done, f)
        listed = pd.read_csv(io.StringIO(invoke("check", "--data", folder, "--format", "csv").stdout), dtype=str)
        removed = listed[listed["action"].isin(["set aside", "filtered", "duplicate"])]
        assert not removed.duplicated(["file", "row"]).any(), done          # each row listed once
        assert len(removed) == sum(f["set_aside"] + f["filtered"] + f["duplicates"] for f in report["files"])
    invoke("scan", "--data", folder, "--bad-rows", "skip", "--format", "csv")
    invoke("scan", "--data", folder)


def test_the_valid_folder_is_valid(tmp_path):
    folder = valid_folder(tmp_path / "data")
    result = invoke("check", "--data", folder, "--bad-rows", "stop", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert [(f["rows_read"], f["rows_kept"]) for f in report["files"]] == [(6, 6), (30, 30), (90, 90)]
    assert not [r for r in report["reasons"] if r["action"] != "fact"]


def test_without_activities_check_says_an_untouched_deal_cannot_be_known_not_zero(tmp_path):
    folder = valid_folder(tmp_path / "data")
    (folder / "activities.csv").unlink()
    report = json.loads(invoke("check", "--data", folder, "--format", "json").stdout)
    facts = {f["fact"]: f for f in report["facts"]}
    assert facts["open deals without a touch"]["count"] is None
    assert "no activities table" in facts["open deals without a touch"]["first"]
    assert facts["deals without an owner"]["count"] == 0            # a fact the source can tell stays a count
    text = invoke("check", "--data", folder).stdout
    assert "0  open deals without a touch" not in text
    assert "open deals without a touch: cannot be known: the source has no activities table" in text


def test_with_activities_the_untouched_deals_are_counted(tmp_path):
    folder = valid_folder(tmp_path / "data")
    report = json.loads(invoke("check", "--data", folder, "--format", "json").stdout)
    facts = {f["fact"]: f for f in report["facts"]}
    opps = pd.read_csv(folder / "opportunities.csv")
    acts = pd.read_csv(folder / "activities.csv")
    untouched = opps[(opps["outcome"] == "open") & ~opps["opp_id"].isin(acts["opp_id"])]
    assert facts["open deals without a touch"]["count"] == len(untouched)


def deleted_salesforce_sync(folder: Path) -> Path:
    """A Fivetran Salesforce sync under its own file names whose opportunities are all soft-deleted."""
    folder.mkdir(parents=True)
    write(folder / "sf_user_data.csv", ["id", "name", "department", "is_active", "_fivetran_deleted"],
          [["0055000000AAAAA", "Ann Lee", "Sales", "true", "false"], ["0055000000BBBBB", "Bob Ray", "Sales", "true",
                                                                     "false"],
           ["0055000000CCCCC", "Old User", "Sales", "false", "true"]])
    write(folder / "sf_opportunity_data.csv",
          ["id", "owner_id", "stage_name", "is_closed", "is_won", "created_date", "close_date", "_fivetran_deleted"],
          [[f"0065000000A000{i}", owner, "Closed Won", "true", "true", "2024-03-01T10:00:00Z", "2024-03-20", "true"]
           for i, owner in enumerate(["0055000000AAAAA", "0055000000BBBBB", "0055000000BBBBB"])])
    (folder / "source.yaml").write_text("format: salesforce\n"
                                        "files: {User: sf_user_data.csv, Opportunity: sf_opportunity_data.csv}\n")
    return folder


WHY = ("sf_user_data.csv: the table is empty; it needs at least one row of reps — why: sf_user_data.csv: 3 rows "
       "read, 2 not a rep: owns no opportunity, task or event, 1 deleted in the CRM (_fivetran_deleted is set); "
       "sf_opportunity_data.csv: 3 rows read, 3 deleted in the CRM (_fivetran_deleted is set)")


def test_check_explains_a_sync_whose_rows_are_all_deleted(tmp_path):
    source = deleted_salesforce_sync(tmp_path / "sync") / "source.yaml"
    result = invoke("check", "--data", source)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"pipnb: error: {WHY}"]
    out = result.stdout
    assert "sf_opportunity_data.csv" in out and "Rows filtered, by reason: 6" in out
    assert "3  opportunities _fivetran_deleted: deleted in the CRM (_fivetran_deleted is set)" in out
    assert "2  reps id: not a rep: owns no opportunity, task or event" in out
    assert "0  deals without an owner" not in out                 # a stopped load claims no fact
    report = json.loads(invoke("check", "--data", source, "--format", "json").stdout)
    assert [(f["file"], f["rows_read"], f["rows_kept"], f["filtered"]) for f in report["files"]] == [
        ("sf_user_data.csv", 3, 0, 3), ("sf_opportunity_data.csv", 3, 0, 3)]
    scan = invoke("scan", "--data", source)
    assert scan.exit_code == 2 and scan.stderr.strip().splitlines()[-1] == f"pipnb: error: {WHY}"


@pytest.mark.parametrize(("files", "expected"), [
    ({"sf_user_data.csv": "id,name,department", "sf_opportunity_data.csv": "id,owner_id,stage_name,is_won"},
     "these files look like a Salesforce export: write a source YAML with `format: salesforce` and `files: "
     "{Opportunity: sf_opportunity_data.csv, User: sf_user_data.csv}`"),
    ({"hs_deal.csv": "deal_id,owner_id,deal_pipeline_stage_id", "hs_owner.csv": "owner_id,email",
      "hs_engagement.csv": "id,type,owner_id,timestamp"},
     "these files look like a HubSpot export: write a source YAML with `format: hubspot` and `files: "
     "{deals: hs_deal.csv, owners: hs_owner.csv, engagement: hs_engagement.csv}`"),
])
def test_a_crm_folder_without_a_yaml_is_told_which_format(tmp_path, files, expected):
    for name, header in files.items():
        (tmp_path / name).write_text(header + "\n")
    result = invoke("check", "--data", tmp_path)
    assert result.exit_code == 2 and result.stdout == ""
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"pipnb: error: {tmp_path}: reps.csv (or reps.parquet) is missing; {expected}"), line
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.csv").write_text("a,b\n")
    assert invoke("check", "--data", plain).stderr.strip().endswith(
        "reps.csv (or reps.parquet) is missing; export the reps table there")
