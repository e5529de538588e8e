"""A database reached by a SQLAlchemy URL: credentials from the environment, redacted in every message.

Both the ``format: sql`` source (:mod:`pipnb.sources.sql`) and the vendor formats synced to a warehouse
(``url:`` in a Salesforce or HubSpot source YAML, :mod:`pipnb.sources.vendor`) read their tables through
:class:`Database`. SQLAlchemy and the drivers are imported when a database is opened (they are heavy).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipnb.errors import DataError, PipnbError, SourceError
from pipnb.ledger import row_column
from pipnb.limits import check_fields
from pipnb.progress import one_line
from pipnb.redact import Redactor, parse_url, show_url
from pipnb.schema import OPTIONAL, REQUIRED, TABLES
from pipnb.sources.files import columns_shown
from pipnb.validate import ROW, RawTable

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: pip packages of common SQLAlchemy drivers, for "the driver is not installed" messages
DRIVERS = {
    "psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pg8000": "pg8000", "asyncpg": "asyncpg",
    "pymysql": "pymysql", "mysqldb": "mysqlclient", "pyodbc": "pyodbc", "oracledb": "oracledb",
    "snowflake": "snowflake-sqlalchemy", "bigquery": "sqlalchemy-bigquery", "redshift": "sqlalchemy-redshift",
    "redshift_connector": "sqlalchemy-redshift redshift_connector", "duckdb": "duckdb-engine",
    "databricks": "databricks-sqlalchemy", "trino": "trino[sqlalchemy]",
}


class SqlTable(BaseModel):
    """Where one canonical table comes from: a ``table`` (with renamed ``columns``) or a ``query``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    table: str | None = None
    db_schema: str | None = Field(None, alias="schema")
    query: str | None = None
    columns: dict[str, str] = {}

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlTable:
        if (self.table is None) == (self.query is None):
            raise ValueError("give either `table:` or `query:`")
        return self


def database_for(url: str | None, url_env: str | None, *, base: Path, schema: str | None = None) -> Database:
    """The database a source YAML names by ``url:`` (credentials as ``${VARIABLE}``) or ``url_env:``."""
    if url_env is not None:
        url = os.environ.get(url_env)
        if not url:
            raise SourceError(f"environment variable {url_env} (url_env in the source YAML) is not set; "
                              "set it to the database URL")
    else:
        _refuse_literal_password(url)
    return Database(url, base=base, schema=schema)


def _refuse_literal_password(url: str) -> None:
    """A YAML's URL may name credentials (``${VARIABLE}``) but never hold them."""
    parsed = parse_url(url)
    if parsed is not None and parsed.credentials:
        raise SourceError("source YAML key `url`: holds a password; keep credentials out of the YAML: "
                          "write it as ${PIPNB_DB_PASSWORD} (taken from the environment) or use `url_env:`")


class Database:
    """A database URL with its credentials expanded from the environment, and a redactor for messages.

    Parameters
    ----------
    url
        A SQLAlchemy URL, possibly holding ``${NAME}`` references.
    base
        Folder relative SQLite / DuckDB paths start from.
    schema
        Default schema for canonical table names.
    """

    def __init__(self, url: str, *, base: Path, schema: str | None = None):
        from sqlalchemy.engine import make_url  # sqlalchemy (230 ms): only when a database is read
        from sqlalchemy.exc import ArgumentError  # sqlalchemy (230 ms): only when a database is read

        self.redactor = Redactor()
        self.schema = schema
        try:
            template = make_url(url)
        except (ArgumentError, ValueError):
            raise SourceError(f"'{show_url(url)}' is not a database URL (use e.g. "
                              "sqlite:///crm.db or postgresql+psycopg://user:${PIPNB_DB_PASSWORD}@host/db)"
                              ) from None
        parsed = parse_url(url)
        if parsed is None or not parsed.agrees(template.username, template.password, template.host, template.port):
            raise SourceError(f"'{show_url(url)}' cannot be read without guessing where its password ends: "
                              "percent-encode @ / ? # % and spaces in it (@ as %40), or keep it in an "
                              "environment variable and write ${PIPNB_DB_PASSWORD}")
        self.url = self._expand(template)
        self.shown = self._show(self.url)
        self.url, self.connect_args = self._local_file(self.url, base)

    # -- credentials ------------------------------------------------------------------------------
    def _expand(self, url):
        def expand(text):
            return None if text is None else _VARIABLE.sub(self._variable, text)

        query = {key: tuple(expand(x) for x in value) if isinstance(value, tuple) else expand(value)
                 for key, value in url.query.items()}
        url = url.set(username=expand(url.username), password=expand(url.password), host=expand(url.host),
                      database=expand(url.database), query=query)
        self.redactor.add(url.password)
        self.redactor.add_url(url.render_as_string(hide_password=False))
        return url

    @staticmethod
    def _variable(match: re.Match) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            raise SourceError(f"environment variable {match.group(1)} is not set (the database URL uses "
                              f"${{{match.group(1)}}}); export it before running pipnb")
        return value

    def _show(self, url) -> str:
        return show_url(url.render_as_string(hide_password=False))

    def redact(self, message: str) -> str:
        """``message`` with every secret of this URL replaced by ``***``."""
        return self.redactor(message)

    # -- files --------------------------------------------------------------------------------------
    def _local_file(self, url, base: Path):
        """Open SQLite / DuckDB files read-only, relative to ``base``; never create one."""
        backend = url.get_backend_name()
        if backend not in ("sqlite", "duckdb") or url.database in (None, "", ":memory:"):
            return url, {}
        path = Path(url.database)
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise SourceError(f"{self.shown}: no such database file {path}")
        if backend == "duckdb":
            return url.set(database=str(path)), {"read_only": True}
        return url.set(database=f"file:{path}", query={**url.query, "mode": "ro", "uri": "true"}), {}

    # -- reading ------------------------------------------------------------------------------------
    def read(self, tables: dict[str, SqlTable] | None) -> dict[str, RawTable]:
        """Read each canonical table (default: the tables named like them)."""
        engine = self._engine()
        try:
            with engine.connect() as conn:
                raws = {name: self._read_one(conn, name, (tables or {}).get(name))
                        for name in TABLES if tables is None or name in tables}
        except PipnbError:
            raise
        except Exception as err:  # noqa: BLE001 - whatever a driver raises, its message is redacted
            raise self._error(err) from None
        finally:
            engine.dispose()
        return {name: raw for name, raw in raws.items() if raw is not None}

    def read_whole(self, wanted: set[str], key) -> dict[str, pd.DataFrame]:
        """Every column of the tables whose ``key(name)`` is in ``wanted`` (a CRM's objects synced to a
        warehouse), by their names in the database."""
        import sqlalchemy as sa  # sqlalchemy (230 ms): only when a database is read

        engine = self._engine()
        try:
            with engine.connect() as conn:
                names = [t for t in sa.inspect(conn).get_table_names(schema=self.schema) if key(t) in wanted]
                return {t: pd.read_sql_query(sa.select(sa.text("*")).select_from(sa.table(t, schema=self.schema)),
                                             conn) for t in names}
        except PipnbError:
            raise
        except Exception as err:  # noqa: BLE001 - whatever a driver raises, its message is redacted
            raise self._error(err) from None
        finally:
            engine.dispose()

    def _engine(self):
        import sqlalchemy as sa  # sqlalchemy (230 ms): only when a database is read
        from sqlalchemy.exc import NoSuchModuleError  # sqlalchemy (230 ms): only when a database is read

        try:
            return sa.create_engine(self.url, connect_args=self.connect_args)
        except NoSuchModuleError:
            raise SourceError(f"{self.shown}: SQLAlchemy has no dialect '{self.url.drivername}'; install the "
                              "package that provides it") from None
        except ImportError as err:
            raise SourceError(f"{self.shown}: the database driver is not installed ({err.name or err}); "
                              f"pip install {self._package()}") from None
        except Exception as err:  # noqa: BLE001 - e.g. a URL SQLAlchemy cannot use: its message is redacted
            raise SourceError(self.redact(f"{self.shown}: SQLAlchemy cannot open it ({type(err).__name__}: "
                                          f"{one_line(self.redact(str(err)), 400)})")) from None

    def _package(self) -> str:
        driver, backend = self.url.get_driver_name(), self.url.get_backend_name()
        package = DRIVERS.get(driver) or DRIVERS.get(backend)
        if package is None:
            return f"the SQLAlchemy driver for {backend}"
        return f'"{package}"' if "[" in package else package

    def _error(self, err: Exception) -> Exception:
        from sqlalchemy.exc import DBAPIError  # sqlalchemy (230 ms): only when a database is read

        if isinstance(err, ImportError):
            return SourceError(f"{self.shown}: the database driver is not installed ({err.name or err}); "
                               f"pip install {self._package()}")
        if isinstance(err, pd.errors.DatabaseError) and err.__cause__ is not None:
            err = err.__cause__                                  # pandas wraps the database's error
        detail = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
        text = one_line(self.redact(str(detail)), 400) or type(detail).__name__     # redacted, then cut
        return SourceError(self.redact(f"{self.shown}: cannot read the database ({text})"))

    def _read_one(self, conn, name: str, spec: SqlTable | None) -> RawTable | None:
        if spec is not None and spec.query is not None:
            return self._read_query(conn, name, spec)
        optional = spec is None and name == "activities"        # a bare URL may lack activities
        return self._read_table(conn, name, spec or SqlTable(table=name, db_schema=self.schema), optional)

    def _read_table(self, conn, name: str, spec: SqlTable, optional: bool = False) -> RawTable | None:
        import sqlalchemy as sa  # sqlalchemy (230 ms): only when a database is read

        label = f"sql:{spec.table}"
        inspector = sa.inspect(conn)
        if not inspector.has_table(spec.table, schema=spec.db_schema):
            if optional:
                return None
            present = ", ".join(inspector.get_table_names(schema=spec.db_schema)[:12]) or "none"
            raise DataError(f"table '{spec.table}' is not in {self.shown} (tables: {present}); create it "
                            f"or map {name} to a table or a query in a source YAML (format: sql)", file=label)
        table = sa.table(spec.table, schema=spec.db_schema)
        # column names from an empty select: works where a dialect's inspector does not (duckdb-engine)
        available = list(conn.execute(sa.select(sa.text("*")).select_from(table).limit(0)).keys())
        chosen = _choose_columns(name, spec.columns, available, label)
        table = sa.table(spec.table, *[sa.column(c) for c in available], schema=spec.db_schema)
        statement = sa.select(*[table.c[source].label(canonical) for canonical, source in chosen.items()])
        id_column = {"reps": "rep_id", "opportunities": "opp_id", "activities": "activity_id"}[name]
        if id_column in chosen:
            statement = statement.order_by(table.c[chosen[id_column]])
        return _raw(pd.read_sql_query(statement, conn), name, label)

    def _read_query(self, conn, name: str, spec: SqlTable) -> RawTable:
        import sqlalchemy as sa  # sqlalchemy (230 ms): only when a database is read

        label = f"sql:{name} query"
        try:
            frame = pd.read_sql_query(sa.text(spec.query), conn)
        except (sa.exc.DBAPIError, pd.errors.DatabaseError) as err:
            cause = err.__cause__ or err                         # pandas wraps the database's error
            detail = one_line(self.redact(str(getattr(cause, "orig", None) or cause)), 400)
            raise SourceError(self.redact(f"{label} (tables.{name}.query in the source YAML) failed: "
                                          f"{detail}")) from None
        chosen = _choose_columns(name, spec.columns, list(frame.columns), label)
        frame = frame[list(chosen.values())].set_axis(list(chosen), axis=1)
        return _raw(frame, name, label)


def _choose_columns(name: str, mapping: dict[str, str], available: list[str], label: str) -> dict[str, str]:
    """Canonical column → database column; names match in any case (Snowflake answers in upper case)."""
    known = (*REQUIRED[name], *OPTIONAL[name])
    by_lower = {c.lower(): c for c in available}
    chosen = {}
    for canonical in known:
        source = mapping.get(canonical, canonical)
        if source.lower() in by_lower:
            chosen[canonical] = by_lower[source.lower()]
        elif canonical in mapping:
            raise DataError(f"column '{source}' (mapped to {canonical}) is missing; columns present: "
                            f"{columns_shown(available)}", file=label, column=source)
    for canonical in mapping:
        if canonical not in known:
            raise SourceError(f"source YAML tables.{name}.columns: '{canonical}' is not a column of {name} "
                              f"(use one of {', '.join(known)})")
    return chosen


def _raw(frame: pd.DataFrame, name: str, label: str) -> RawTable:
    frame = frame.reset_index(drop=True)
    frame[ROW] = row_column(frame.index, first=1)
    check_fields(frame, label)               # no value over the limit reaches validation or a report
    hints = {c: f"select it as {c} or map it under tables.{name}.columns in a source YAML (format: sql)"
             for c in REQUIRED[name]}
    return RawTable(frame, label, hints)
