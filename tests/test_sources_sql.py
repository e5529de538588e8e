"""SQL databases load by URL or through a ``format: sql`` YAML; credentials never show in any message.

The databases are real files built here: a SQLite file (dates as text, as SQLite stores them) and a
DuckDB file (typed TIMESTAMP columns, upper-case names as a warehouse may answer).
"""

import sqlite3
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from cliproc import pipnb
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

from pipnb.errors import DataError, SourceError
from pipnb.sources import load

REPS = pd.DataFrame({"rep_id": ["A", "B"], "rep_name": ["Ann", "Bob"], "team": ["East", "East"],
                     "hire_date": ["2022-01-03", "2022-01-03"]})
OPPS = pd.DataFrame({"opp_id": ["o1", "o2", "o3"], "rep_id": ["A", "A", "B"],
                     "created_at": ["2024-01-01 09:00:00", "2024-01-02 10:00:00", "2024-01-03 11:00:00"],
                     "closed_at": ["2024-01-20 00:00:00", None, "2024-01-10 00:00:00"],
                     "outcome": ["won", "open", "lost"], "amount": [100.0, None, 20.0]})
ACTS = pd.DataFrame({"activity_id": [1, 2, 3], "rep_id": ["A", "A", "B"],
                     "kind": ["email", "meeting", "call"],
                     "occurred_at": ["2024-01-02 08:00:00", "2024-01-03 08:00:00", "2024-01-04 12:00:00"],
                     "opp_id": ["o1", "o2", None]})
SECRET = "S3cr3t-p@ss/w:rd"


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "crm.db"
    with sqlite3.connect(path) as con:
        REPS.to_sql("reps", con, index=False)
        OPPS.to_sql("opportunities", con, index=False)
        ACTS.to_sql("activities", con, index=False)
        # a CRM's own layout, for mappings and queries
        OPPS.rename(columns={"opp_id": "id", "rep_id": "owner", "outcome": "stage"}).assign(
            stage=lambda f: f["stage"].map({"won": "Closed Won", "lost": "Closed Lost", "open": "Demo"})
        ).to_sql("deals", con, index=False)
        REPS.rename(columns={"rep_id": "id", "rep_name": "full_name", "team": "squad"}).to_sql(
            "sales_reps", con, index=False)
    con.close()
    return path


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema sales")
    for name, frame in (("reps", REPS), ("opportunities", OPPS)):
        typed = frame.copy()
        for column in ("hire_date", "created_at", "closed_at"):
            if column in typed:
                typed[column] = pd.to_datetime(typed[column])
        typed.columns = [c.upper() for c in typed.columns]      # a warehouse answering in upper case
        con.register("frame", typed)
        con.execute(f"create table sales.{name} as select * from frame")
        con.unregister("frame")
    con.close()
    return path


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return pipnb(*args, env=env)


# -- loading ---------------------------------------------------------------------------------------
def test_bare_sqlite_url_reads_canonical_tables(sqlite_file, monkeypatch):
    monkeypatch.chdir(sqlite_file.parent)
    data = load("sqlite:///crm.db")                       # relative to the working directory
    assert data.source == "sqlite:///crm.db"
    assert data.opportunities["outcome"].tolist() == ["won", "open", "lost"]
    assert data.activities["activity_id"].tolist() == ["1", "2", "3"]   # integer ids become text
    assert str(data.activities.loc[1, "occurred_at"]) == "2024-01-03 08:00:00"
    assert data.fingerprint() == load(f"sqlite:///{sqlite_file}").fingerprint()


def test_sql_yaml_with_table_mapping_query_and_schema(sqlite_file, duckdb_file, tmp_path):
    (tmp_path / "source.yaml").write_text(
        f"format: sql\nurl: sqlite:///{sqlite_file}\ntables:\n"
        "  reps: {table: sales_reps, columns: {rep_id: id, rep_name: full_name, team: squad}}\n"
        "  opportunities:\n"
        "    query: >\n"
        "      select id as opp_id, owner as rep_id, created_at, closed_at, amount,\n"
        "             case stage when 'Closed Won' then 'won' when 'Closed Lost' then 'lost'\n"
        "                        else 'open' end as outcome\n"
        "      from deals\n")
    data = load(tmp_path / "source.yaml")
    assert data.activities is None                         # not mapped: unavailable, not empty
    assert data.reps["rep_name"].tolist() == ["Ann", "Bob"]
    assert data.opportunities["outcome"].tolist() == ["won", "open", "lost"]

    # DuckDB, a schema, typed timestamps and upper-case column names; relative to the YAML's folder
    (tmp_path / "wh").mkdir()
    (tmp_path / "wh" / "warehouse.duckdb").write_bytes(duckdb_file.read_bytes())
    (tmp_path / "duck.yaml").write_text("format: sql\nurl: duckdb:///wh/warehouse.duckdb\nschema: sales\n")
    duck = load(tmp_path / "duck.yaml")
    assert duck.opportunities["closed_at"].tolist()[0] == pd.Timestamp("2024-01-20")
    assert duck.reps["rep_id"].tolist() == ["A", "B"]


def test_database_files_are_never_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite:///missing.db", "duckdb:///missing.duckdb"):
        with pytest.raises(SourceError, match="no such database file"):
            load(url)
    assert list(tmp_path.iterdir()) == []


def test_missing_table_and_column_are_named(sqlite_file, tmp_path):
    (tmp_path / "a.yaml").write_text(f"format: sql\nurl: sqlite:///{sqlite_file}\ntables:\n"
                                     "  reps: {table: people}\n  opportunities: {table: deals}\n")
    with pytest.raises(DataError, match=r"sql:people: table 'people' is not in sqlite:///\S*crm.db "
                                        r"\(tables: activities, deals, opportunities, reps, sales_reps\)"):
        load(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text(f"format: sql\nurl: sqlite:///{sqlite_file}\ntables:\n"
                                     "  reps: {table: reps}\n  opportunities: {table: deals}\n")
    with pytest.raises(DataError, match="sql:deals: column 'opp_id' is missing .* map it under "
                                        "tables.opportunities.columns"):
        load(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text(f"format: sql\nurl: sqlite:///{sqlite_file}\ntables:\n"
                                     "  reps: {table: reps}\n  opportunities: {query: select nope from deals}\n")
    with pytest.raises(SourceError, match=r"sql:opportunities query \(tables.opportunities.query in the source "
                                          r"YAML\) failed: no such column: nope"):
        load(tmp_path / "c.yaml")


# -- credentials -----------------------------------------------------------------------------------
class PasswordSqliteDialect(SQLiteDialect_pysqlite):
    """SQLite behind a login, as a server database would be: the password is checked, then dropped."""

    supports_statement_cache = True

    def create_connect_args(self, url):
        assert url.password == SECRET, "the password reaches the driver, expanded"
        return super().create_connect_args(url._replace(username=None, password=None, host=None))


def test_password_comes_from_the_environment_and_is_redacted(sqlite_file, monkeypatch):
    registry.impls["pwsqlite"] = lambda: PasswordSqliteDialect
    monkeypatch.setenv("PIPNB_DB_PASSWORD", SECRET)
    monkeypatch.setenv("PIPNB_DB_DIR", str(sqlite_file.parent))
    data = load("pwsqlite://analyst:${PIPNB_DB_PASSWORD}@localhost/${PIPNB_DB_DIR}/crm.db")
    assert len(data.reps) == 2
    assert data.source == f"pwsqlite://analyst:***@localhost/{sqlite_file.parent}/crm.db"


def test_yaml_refuses_a_literal_password_and_needs_its_variables(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text("format: sql\nurl: postgresql+psycopg://analyst:hunter2@db/crm\n")
    with pytest.raises(SourceError) as err:
        load(tmp_path / "s.yaml")
    assert "holds a password" in str(err.value) and "hunter2" not in str(err.value)
    (tmp_path / "q.yaml").write_text("format: sql\nurl: snowflake://analyst@acct/db?token=abc123\n")
    with pytest.raises(SourceError, match="holds a password"):
        load(tmp_path / "q.yaml")
    monkeypatch.delenv("PIPNB_DB_URL", raising=False)
    (tmp_path / "e.yaml").write_text("format: sql\nurl_env: PIPNB_DB_URL\n")
    with pytest.raises(SourceError, match="environment variable PIPNB_DB_URL"):
        load(tmp_path / "e.yaml")
    (tmp_path / "both.yaml").write_text("format: sql\nurl: sqlite://\nurl_env: X\ntable: {}\n")
    with pytest.raises(SourceError, match="source YAML key `table`"):
        load(tmp_path / "both.yaml")


class LeakyDialect(SQLiteDialect_pysqlite):
    """A driver whose connection error quotes its password, as some do."""

    supports_statement_cache = True

    def create_connect_args(self, url):
        return [], {"password": url.password, "host": url.host}

    def connect(self, *args, **kwargs):
        raise self.loaded_dbapi.OperationalError(
            f"FATAL: password authentication failed (password={kwargs['password']}, "
            f"dsn=leaky://analyst:{kwargs['password']}@{kwargs['host']}/crm)")


def test_a_failing_connection_never_shows_the_password(monkeypatch):
    registry.impls["leaky"] = lambda: LeakyDialect
    monkeypatch.setenv("PIPNB_DB_PASSWORD", SECRET)
    with pytest.raises(SourceError) as err:
        load("leaky://analyst:${PIPNB_DB_PASSWORD}@db.internal/crm")
    message = str(err.value)
    assert "password authentication failed" in message and "leaky://analyst:***@db.internal/crm" in message
    assert SECRET not in message and "S3cr3t" not in message


def test_cli_missing_driver_error_without_the_password(tmp_path):
    result = run_cli("scan", "--data", "postgresql+psycopg://analyst:S3cr3tPass@db.invalid/crm")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "S3cr3t" not in result.stderr
    assert "postgresql+psycopg://analyst:***@db.invalid/crm" in lines[0]
    assert 'pip install "psycopg[binary]"' in lines[0]


def test_cli_scans_a_duckdb_url(tmp_path):
    db = tmp_path / "canonical.duckdb"
    con = duckdb.connect(str(db))
    for name, frame in (("reps", REPS), ("opportunities", OPPS), ("activities", ACTS)):
        con.register("frame", frame)
        con.execute(f"create table {name} as select * from frame")
        con.unregister("frame")
    con.close()
    result = run_cli("scan", "--data", f"duckdb:///{db}", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert {line.split(",")[0] for line in result.stdout.splitlines()[1:] if line} == {"A", "B"}
