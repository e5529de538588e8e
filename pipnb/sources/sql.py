"""SQL databases: ``--data`` a database URL, or a source YAML with ``format: sql``.

Any database SQLAlchemy reaches works: ``sqlite:///crm.db``, ``duckdb:///warehouse.duckdb`` (package
``duckdb-engine``), ``postgresql+psycopg://analyst:${PIPNB_DB_PASSWORD}@db.internal/crm`` (``psycopg``),
Snowflake, BigQuery, Redshift ... through their SQLAlchemy drivers. With a bare URL the tables are expected
under their canonical names (``reps``, ``opportunities`` and optionally ``activities``).

.. code-block:: yaml

    format: sql
    url_env: PIPNB_DB_URL               # or url: postgresql+psycopg://analyst:${PIPNB_DB_PASSWORD}@host/crm
    schema: sales                       # default schema of `table:` entries
    tables:
      reps: {table: sales_reps, columns: {rep_id: id, rep_name: full_name, team: team_name}}
      opportunities:
        query: >
          select id as opp_id, owner_id as rep_id, created_at, closed_at, amount,
                 case when stage = 'Closed Won' then 'won' when stage = 'Closed Lost' then 'lost'
                      else 'open' end as outcome
          from crm.deals
      activities: {table: activities}

Credentials come from the environment, never from the YAML: ``${NAME}`` in a URL is replaced by the
environment variable ``NAME``, and ``url_env`` names a variable holding the whole URL. Passwords (and
query parameters that look like secrets) are replaced by ``***`` in every message and in
``SalesData.source``. SQLite and DuckDB files are opened read-only and never created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipnb.sources.database import Database, SqlTable, database_for
from pipnb.sources.registry import register
from pipnb.sources.vendor import config_model
from pipnb.validate import RawTable


class SqlSource(BaseModel):
    """The ``format: sql`` source YAML."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    format: Literal["sql"]
    bad_rows: Literal["stop", "skip"] = "stop"
    url: str | None = None
    url_env: str | None = None
    db_schema: str | None = Field(None, alias="schema")
    tables: dict[Literal["reps", "opportunities", "activities"], SqlTable] | None = None

    @model_validator(mode="after")
    def _one_url(self) -> SqlSource:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give either `url:` (credentials as ${VARIABLE}) or `url_env:` (a variable "
                             "holding the URL)")
        return self


def read_url(url: str, *, base: Path | None = None) -> tuple[dict[str, RawTable], str]:
    """Read the canonically named tables of the database at ``url``.

    Parameters
    ----------
    url
        A SQLAlchemy URL; ``${NAME}`` parts are taken from the environment.
    base
        Folder relative SQLite / DuckDB file paths start from (default: the working directory).

    Returns
    -------
    tables, shown
        The raw tables, and the URL with its password replaced by ``***`` (for ``SalesData.source``).

    Raises
    ------
    SourceError
        The URL, the driver or the connection fails; the message never holds the password.
    """
    database = Database(url, base=base or Path.cwd())
    return database.read(None), database.shown


@register("sql")
def read_sql(config: dict, base: Path) -> dict[str, RawTable]:
    """Read the tables a ``format: sql`` source YAML describes (see :class:`SqlSource`)."""
    spec = config_model(SqlSource, config)
    tables = spec.tables
    if tables is not None and spec.db_schema is not None:
        tables = {name: table.model_copy(update={"db_schema": table.db_schema or spec.db_schema})
                  for name, table in tables.items()}
    return database_for(spec.url, spec.url_env, base=base, schema=spec.db_schema).read(tables)
