"""Nothing leaks, nothing mixes, text stays text (cases 4, 5 and 6 of issue 12), through the real command line.

* one folder and one plan file per rep, even where file names ignore case;
* a database password never shows: every URL parsed once, secrets masked however they are spelled, an
  unparseable URL never printed; a whole demo run from a database URL leaves the password in no file;
* text from the data never becomes a link, math, a spreadsheet formula or a terminal command.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest
from cliproc import pipnb

from pipnb.demo import DEMO_CASES
from pipnb.errors import SourceError
from pipnb.redact import Redactor, parse_url, show_url
from pipnb.workdir import plan_path, rep_dir, safe_name

pytestmark = pytest.mark.slow(34)       # seconds on a quiet machine: scheduled first (conftest.py)

PASSWORD = "Pl@nted S3cr3t/ü:%x"       # every character that has defeated a redactor


def cli(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return pipnb(*args, cwd=cwd, env={**os.environ, **(env or {})})


def spellings(secret: str) -> set[str]:
    """The ways a file may spell a secret."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], html.escape(secret),
            repr(secret.encode())[2:-1]}


# -- case 4: one folder per rep ----------------------------------------------------------------------------
ADVERSARIAL = ["R07", "r07", "R07.", "R07 ", "abc", "ABC", "aBc", "../../etc/x", safe_name("../../etc/x"),
               safe_name("../../etc/x").upper(), "etc-x", "CON", "con", "NUL.txt", "index.html", "team-scan",
               "005Ab000001xYzQ", "005AB000001XYZQ", "005ab000001xyzq", "a b", "a-b", "é", "e", "Ωmega", ".pipnb"]


def test_the_id_to_folder_mapping_is_one_to_one_even_where_case_is_ignored(tmp_path):
    names = [safe_name(rep_id) for rep_id in ADVERSARIAL]
    assert len({n.casefold() for n in names}) == len(ADVERSARIAL)
    assert safe_name("R07") == "R07" and safe_name("005AB000001XYZQ") == "005AB000001XYZQ"    # plain ids kept
    for rep_id, name in zip(ADVERSARIAL, names):
        assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
        assert rep_dir(tmp_path, rep_id).parent == tmp_path.resolve()
        assert plan_path(tmp_path, rep_id).name == f"{name}.yaml"                           # plans follow it
    assert safe_name(safe_name("../../etc/x")) != safe_name("../../etc/x")                # an id equal to a slug


@pytest.fixture(scope="module")
def twins(tmp_path_factory, demo) -> tuple[Path, dict[str, str]]:
    """The demo team with ids that collide under the old mapping: R03 and r03; ../../etc/x and its old slug."""
    root = tmp_path_factory.mktemp("twins")
    renamed = {"R05": "r03", "R06": "../../etc/x", "R08": "etc-x-56da1a2e"}
    data = type(demo)(demo.reps.replace({"rep_id": renamed}), demo.opportunities.replace({"rep_id": renamed}),
                      demo.activities.replace({"rep_id": renamed}))
    data.write(root / "data")
    ids = ["R03", "r03", "../../etc/x", "etc-x-56da1a2e"]
    result = cli(root, "run", "--data", "data", "--stage", "plan", "--reps", ",".join(ids), "--jobs", "2",
                 "--reason", "the ids under test, whatever their diagnosis finds")     # no plan without one
    assert result.returncode == 0, result.stdout + result.stderr
    return root, dict(zip(data.reps["rep_id"], data.reps["rep_name"]))


def test_reps_whose_ids_collided_get_their_own_folder_and_plan(twins):
    root, names = twins
    ids = ["R03", "r03", "../../etc/x", "etc-x-56da1a2e"]
    plans = sorted((root / "params" / "plans").glob("*.yaml"))
    folders = sorted(p for p in (root / "reports").iterdir() if p.is_dir())
    assert len(plans) == len(folders) == len(ids)
    assert len({p.name.casefold() for p in plans}) == len({p.name.casefold() for p in folders}) == len(ids)
    for rep_id in ids:
        plan = plan_path(root / "params", rep_id)
        assert re.search(rf"^rep_id: {re.escape(json.dumps(rep_id))}$|^rep_id: {re.escape(rep_id)}$|"
                         rf"^rep_id: '{re.escape(rep_id)}'$", plan.read_text(), re.M), plan
        folder = rep_dir(root / "reports", rep_id)
        assert json.loads((folder / "rep.json").read_text())["rep_id"] == rep_id
        page = (folder / "plan.html").read_text()
        assert html.escape(names[rep_id]) in page
        assert not [n for r, n in names.items() if r != rep_id and html.escape(n) in page]
    index = (root / "reports" / "index.html").read_text()
    for rep_id in ids:                                      # each name links to that rep's own plan
        folder = rep_dir(root / "reports", rep_id).name
        row = next(r for r in re.findall(r"<tr>.*?</tr>", index, re.S) if f"({html.escape(rep_id)})" in r and
                   ">plan<" in r)
        assert quote(folder, safe="/#.-_~") + "/plan.html" in row


# -- case 5: redaction that cannot be defeated --------------------------------------------------------------
SECRETS = ["p@ssW0rd!x", "pa:ss:word", "pa/ss/word", "100%sure%41", "pass word here", "pässwörd✓ünï", PASSWORD]


@pytest.mark.parametrize("secret", SECRETS)
def test_a_password_never_shows_however_it_is_written(secret):
    for url in (f"postgresql+psycopg://analyst:{secret}@db.internal:5432/crm",
                f"postgresql+psycopg://analyst:{quote(secret, safe='')}@db.internal:5432/crm",
                f"snowflake://analyst@acct/db/schema?warehouse=WH&pwd={quote_plus(secret)}"):
        shown = show_url(url)
        assert not any(form in shown for form in spellings(secret)), (url, shown)
        assert shown.startswith(url.split("://")[0] + "://")
        if parse_url(url) is None:                 # never printed, never connected to: nothing to redact
            assert shown.endswith("://***")
            continue
        redact = Redactor()
        redact.add_url(url)
        for form in spellings(secret):
            message = f"FATAL: login failed (password={form}; dsn={url})"
            assert not any(s in redact(message) for s in spellings(secret)), (form, redact(message))


def test_query_values_are_masked_unless_harmless_and_odbc_strings_whole():
    shown = show_url("snowflake://analyst@acct/db?warehouse=WH&role=ANALYST&pwd=Hunter22&private_key=abc%2Fdef")
    assert shown == "snowflake://analyst@acct/db?warehouse=WH&role=ANALYST&pwd=***&private_key=***"
    odbc = "mssql+pyodbc:///?odbc_connect=" + quote_plus("DRIVER={ODBC Driver 18};SERVER=db;UID=analyst;PWD=S3cret;")
    assert show_url(odbc) == "mssql+pyodbc:///?odbc_connect=***"
    redact = Redactor()
    redact.add_url(odbc)
    assert "S3cret" not in redact("[Microsoft][ODBC Driver 18] Login failed; PWD=S3cret;Trusted=no")
    assert show_url("postgresql://analyst:pa ss@db host/crm") == "postgresql://***"            # never printed
    assert show_url("not a url at all") == "***"


DRIVER_ERRORS = {                      # what drivers print, with the password where some of them put it
    "psycopg": 'connection to server at "db.internal" (10.0.0.1), port 5432 failed: FATAL:  password authentication '
               'failed for user "analyst" (dsn: host=db.internal user=analyst password={raw} dbname=crm)',
    "pymysql": "(1045, \"Access denied for user 'analyst'@'10.0.0.2' (using password: YES)\") {quoted}",
    "pyodbc": "('28000', \"[28000] [Microsoft][ODBC Driver 18][SQL Server]Login failed for user 'analyst'. (18456) "
              "(SQLDriverConnect); DRIVER={{ODBC Driver 18}};SERVER=db;UID=analyst;PWD={raw};\")",
    "snowflake": "250001 (08001): Failed to connect to DB: acct.snowflakecomputing.com:443, "
                 "url=snowflake://analyst:{quoted}@acct/db. Incorrect username or password was specified.",
    "bytes": "authentication failed for b'{bytes}'",
}


@pytest.mark.parametrize("driver", sorted(DRIVER_ERRORS))
@pytest.mark.parametrize("secret", ["p@ssW0rd!x", "pässwörd✓ünï", PASSWORD])
def test_each_drivers_error_text_is_redacted(monkeypatch, driver, secret):
    from sqlalchemy.dialects import registry
    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

    from pipnb.sources import load

    text = DRIVER_ERRORS[driver].format(raw=secret, quoted=quote(secret, safe=""), bytes=repr(secret.encode())[2:-1])

    class Failing(SQLiteDialect_pysqlite):
        supports_statement_cache = True

        def create_connect_args(self, url):
            return [], {}

        def connect(self, *args, **kwargs):
            raise self.loaded_dbapi.OperationalError(text)

    registry.impls["failing"] = lambda: Failing
    monkeypatch.setenv("PIPNB_DB_PASSWORD", secret)
    with pytest.raises(SourceError) as err:
        load("failing://analyst:${PIPNB_DB_PASSWORD}@db.internal/crm?sslmode=require")
    message = str(err.value)
    assert "cannot read the database" in message and "failing://analyst:***@db.internal/crm" in message
    assert not any(form in message for form in spellings(secret)), message


@pytest.mark.parametrize("url, secret", [
    ("postgresql+psycopg://analyst:p@ssW0rd!x@db.internal:5432/crm", "ssW0rd"),      # '@' in the password
    ("postgresql+psycopg://analyst:pa ss word@db internal/crm", "ss word"),           # unparseable, spaces
    ("postgresql+psycopg://analyst@db.internal/crm?pwd=Hunter22", "Hunter22"),         # not on a deny-list
    ("mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BUID%3Du%3BPWD%3DS3cretOdbc%3B", "S3cretOdbc"),
    ("postgresql:/analyst:Hunter22@db/crm", "Hunter22"),                               # a typo: not even a URL
])
def test_the_command_line_never_prints_a_password(tmp_path, url, secret):
    result = cli(tmp_path, "scan", "--data", url)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pipnb: error: ") and secret not in line and "***" in line, line


def test_a_source_yaml_refuses_a_literal_secret_in_any_query_parameter(tmp_path):
    from pipnb.sources import load

    (tmp_path / "s.yaml").write_text("format: sql\nurl: postgresql+psycopg://analyst@db/crm?pwd=Hunter22\n")
    with pytest.raises(SourceError, match="holds a password") as err:
        load(tmp_path / "s.yaml")
    assert "Hunter22" not in str(err.value)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, demo) -> Path:
    """The whole demo lifecycle from a database URL whose query carries a planted password, plus the team scan
    as CSV and JSON saved beside it."""
    root = tmp_path_factory.mktemp("fullrun")
    with sqlite3.connect(root / "crm.db") as con:
        for table in ("reps", "opportunities", "activities"):
            getattr(demo, table).to_sql(table, con, index=False)
    con.close()
    url = f"sqlite:///{root / 'crm.db'}?pwd=${{PIPNB_DB_PASSWORD}}"
    env = {"PIPNB_DB_PASSWORD": PASSWORD}
    result = cli(root, "demo", "--data", url, "--jobs", "2", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    (root / "console.txt").write_text(result.stdout + result.stderr)
    for fmt in ("csv", "json"):
        scan = cli(root, "scan", "--data", url, "--format", fmt, env=env)
        assert scan.returncode == 0, scan.stderr
        (root / f"scan.{fmt}").write_text(scan.stdout + scan.stderr)
    return root


def test_no_file_of_a_full_run_holds_the_password(full_run):
    import pyarrow.parquet as pq

    files = [p for p in full_run.rglob("*") if p.is_file() and p.name != "crm.db"]
    kinds = {p.suffix for p in files}
    assert {".html", ".ipynb", ".yaml", ".json", ".parquet", ".csv", ".txt"} <= kinds, kinds
    forms = [form.encode() for form in spellings(PASSWORD)]
    for path in files:
        content = path.read_bytes()
        if path.suffix == ".parquet":
            meta = pq.read_metadata(path)
            content += repr(meta.metadata).encode() + str(meta.schema).encode()
        assert not any(form in content for form in forms), path
    assert "pwd=***" in (full_run / "params" / "plans" / f"{DEMO_CASES['responder']}.yaml").read_text()


def test_a_reps_files_name_no_other_rep(full_run, demo):
    names = dict(zip(demo.reps["rep_id"], demo.reps["rep_name"]))
    folders = [p for p in (full_run / "reports").iterdir() if p.is_dir()]
    assert len(folders) >= 3                 # the reps the demo diagnoses and plans (those short beyond noise)
    for folder in folders:
        own = json.loads((folder / "rep.json").read_text())["rep_id"]
        mine = [*folder.iterdir(), plan_path(full_run / "params", own)]
        for path in (p for p in mine if p.exists()):
            text = re.sub(r'"image/png": "[^"]*"|src="data:[^"]*"', "", path.read_text(encoding="utf-8"))
            others = [n for r, n in names.items() if r != own and n in text]
            assert not others, (path, others)


# -- case 6: data text stays text ----------------------------------------------------------------------------
MATH_NAME = r"Bob $\nosuchcommand{x}$ Smith https://evil.example/x"
TERMINAL_NAME = "\x1b]0;pwned\x07\x1b[2J\x1b[31mMallory\u202eyrollaM"      # retitle, clear, recolour, reverse
FORMULAS = {"R01": '=HYPERLINK("http://evil.example","x")', "R02": "+1+1", "R04": "-2-2", "R05": "@SUM(A1)"}


@pytest.fixture(scope="module")
def evil(tmp_path_factory, demo) -> Path:
    root = tmp_path_factory.mktemp("evil")
    names = {DEMO_CASES["article"]: MATH_NAME, DEMO_CASES["stale"]: TERMINAL_NAME, **FORMULAS}   # listed by the scan
    reps = demo.reps.assign(rep_name=demo.reps["rep_id"].map(names).fillna(demo.reps["rep_name"]))
    type(demo)(reps, demo.opportunities, demo.activities).write(root / "data", format="parquet")
    return root


def test_dollar_signs_and_urls_in_names_and_plan_text_stay_text_in_html(evil):
    from pipnb.batch import draft_plans, prepare
    from pipnb.plan import Plan

    scan = cli(evil, "run", "--data", "data", "--stage", "scan")
    assert scan.returncode == 0, scan.stdout + scan.stderr                     # no math error breaks the scan
    batch = prepare(str(evil / "data"), reports=evil / "reports", params=evil / "params")
    [path] = draft_plans(batch, [DEMO_CASES["article"]])
    plan = Plan.from_yaml(path)
    plan.model_copy(update={"coaching": ["Read https://evil.example/coach and $x^2$ first"]}).to_yaml(path)
    plan_run = cli(evil, "run", "--data", "data", "--stage", "plan", "--reps", DEMO_CASES["article"])
    assert plan_run.returncode == 0, plan_run.stdout + plan_run.stderr
    for page in (evil / "reports" / "team-scan.html", evil / "reports" / DEMO_CASES["article"] / "plan.html"):
        text = page.read_text()
        assert "evil.example" in text and not re.search(r"<a [^>]*evil\.example", text), page
        body = html.unescape(re.sub(r"<[^>]+>", "", text.split("<main>")[1]))
        assert r"$\nosuchcommand{x}$" in body, page                           # shown as typed, not as math
    plan_text = html.unescape(re.sub(r"<[^>]+>", "", (evil / "reports" / DEMO_CASES["article"] / "plan.html")
                                     .read_text()))
    assert "Read https://evil.example/coach and $x^2$ first" in plan_text


def test_csv_cells_that_a_spreadsheet_would_run_start_with_a_quote(evil):
    result = cli(evil, "scan", "--data", "data", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    for rep_id, name in FORMULAS.items():
        cells = {r["rep_name"] for r in rows if r["rep_id"] == rep_id}
        assert cells == {"'" + name}, (rep_id, cells)
    assert all(not r["rep_name"].startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows)
    values = [r["value"] for r in rows if r["value"].startswith("-")]
    assert all(re.fullmatch(r"-[0-9.e-]+", v) for v in values)                   # numbers stay numbers


def test_tab_and_carriage_return_starts_are_quoted_too():
    from pipnb.io import safe_csv as scan_csv

    text = scan_csv(pd.DataFrame({"rep_name": ["\tTabby", "\rCarriage", "Ann", "-1"], "value": [-1.5, 2, 3, 4]}))
    assert text.endswith("rep_name,value\n'\tTabby,-1.5\n'\rCarriage,2.0\nAnn,3.0\n'-1,4.0\n")


def in_a_terminal(cwd: Path, *args: str) -> str:
    """What ``pipnb ARGS`` shows on a terminal (a pseudo-terminal): escape sequences are not stripped there."""
    import os
    import pty

    main, child = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "pipnb", *args], cwd=cwd, stdout=child, stderr=subprocess.DEVNULL,
                          stdin=subprocess.DEVNULL) as proc:
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:                      # the terminal closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait()
    os.close(main)
    return b"".join(chunks).decode()


def test_control_characters_are_shown_escaped_in_the_terminal(evil):
    shown = in_a_terminal(evil, "scan", "--data", "data")
    assert f"{DEMO_CASES['stale']}  \\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mMallory\\u202eyrollaM (" in shown, shown
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    piped = cli(evil, "scan", "--data", "data")
    assert piped.returncode == 0, piped.stderr
    assert "\\x1b]0;pwned\\x07" in piped.stdout and "\x1b" not in piped.stdout and "\x07" not in piped.stdout
    error = cli(evil, "diagnose", "--data", "data", "--rep", "\x1b[31mX\x07")
    assert error.returncode == 2 and "\\x1b[31mX\\x07" in error.stderr and "\x1b" not in error.stderr
