"""A database as a data source and as the scores' destination: DuckDB and SQLite files, and PostgreSQL.

The PostgreSQL tests need a server: ``.ci/run`` starts one on 127.0.0.1 and sets
``WINMODEL_TEST_POSTGRES_URL``. In CI (``CI`` set) a missing URL fails the tests instead of
skipping them, so they cannot silently stop running.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy

from winmodel.data import database
from winmodel.data.database import (
    DatabaseSource,
    TableQuery,
    read_database_tables,
    shown_url,
    write_database_table,
)
from winmodel.data.dataset import data_digest, load_crm_data
from winmodel.errors import InputError
from winmodel.settings import DataSource

POSTGRES_ENV = "WINMODEL_TEST_POSTGRES_URL"


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(
            f"{POSTGRES_ENV} is not set in CI: .ci/run must start PostgreSQL and set it "
            "(these tests may not be skipped there)"
        )
    pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV} (.ci/run does)")


@pytest.fixture(params=["duckdb", "sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'crm.duckdb'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    url = _postgres_url()
    # Each test gets its own schema, dropped afterwards.
    schema = f"t_{os.getpid()}_{abs(hash(request.node.name)) % 10**8}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    request.addfinalizer(lambda: _drop_schema(engine, schema))
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def _drop_schema(engine: sqlalchemy.Engine, schema: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def _tables(url: str) -> list[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "duckdb":
                rows = connection.exec_driver_sql(
                    "SELECT table_name FROM information_schema.tables"
                )
                return sorted(row[0] for row in rows)
            return sorted(sqlalchemy.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_the_demo_history_round_trips_through_a_database(database_url, small_history, tmp_path):
    """Files and a database give the same canonical tables (the same digest)."""
    deals = small_history.opportunities
    opportunities = pd.concat([deals.head(500), deals[deals["status"] == "open"].head(100)])
    snapshots = small_history.snapshots[
        small_history.snapshots["opportunity_id"].isin(opportunities["opportunity_id"])
    ]
    folder = tmp_path / "files"
    folder.mkdir()
    opportunities.to_parquet(folder / "opportunities.parquet")
    snapshots.to_parquet(folder / "snapshots.parquet")
    write_database_table(opportunities, f"{database_url}#opportunities")
    write_database_table(snapshots, f"{database_url}#snapshots")

    from_files = load_crm_data(folder)
    from_database = load_crm_data(DatabaseSource(database_url))
    assert len(from_database.opportunities) == 600 and from_database.has_snapshots
    assert data_digest(from_database) == data_digest(from_files)
    assert from_database.files["opportunities"].endswith("(table opportunities)")

    only_open = DatabaseSource(
        database_url,
        {
            "opportunities": TableQuery(query="SELECT * FROM opportunities WHERE status = 'open'"),
            "snapshots": TableQuery(table="snapshots"),
        },
        snapshots_optional=False,
    )
    frames = read_database_tables(only_open)
    assert set(frames["opportunities"]["status"]) == {"open"}


def test_a_missing_table_or_a_bad_query_is_named(database_url):
    write_database_table(pd.DataFrame({"opportunity_id": ["a"]}), f"{database_url}#deals")
    source = DatabaseSource(
        database_url,
        {
            "opportunities": TableQuery(table="opportunity"),
            "snapshots": TableQuery(query="SELECT * FROM nowhere"),
        },
        snapshots_optional=False,
    )
    with pytest.raises(InputError) as raised:
        read_database_tables(source)
    text = str(raised.value)
    assert "the opportunities table 'opportunity' does not exist (it has: deals)" in text
    assert "query SELECT * FROM nowhere" in text and "cannot be read" in text


def test_scores_replace_a_table_at_once_and_a_failed_write_keeps_the_old_one(
    database_url, monkeypatch
):
    target = f"{database_url}#scores"
    write_database_table(pd.DataFrame({"opportunity_id": ["a", "b"], "score": [10, 20]}), target)
    write_database_table(pd.DataFrame({"opportunity_id": ["c"], "score": [30]}), target)
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        assert pd.read_sql_query(sqlalchemy.text("SELECT * FROM scores"), connection).to_dict(
            "list"
        ) == {"opportunity_id": ["c"], "score": [30]}
    engine.dispose()

    real_insert = database._insert

    def fail_half_way(frame, connection, name, quoted, schema):
        real_insert(frame.head(1), connection, name, quoted, schema)
        raise RuntimeError("the connection dropped")

    monkeypatch.setattr(database, "_insert", fail_half_way)
    with pytest.raises(RuntimeError, match="dropped"):
        write_database_table(pd.DataFrame({"opportunity_id": ["d", "e"], "score": [1, 2]}), target)
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        kept = pd.read_sql_query(sqlalchemy.text("SELECT * FROM scores"), connection)
    engine.dispose()
    assert kept["opportunity_id"].tolist() == ["c"]
    assert _tables(database_url) == ["scores"]  # no staging table left behind


def test_urls_are_shown_without_password_and_checked():
    shown = shown_url("postgresql+psycopg://revops:s3cret@warehouse:5432/crm#scores")
    assert "s3cret" not in shown and shown.endswith("@warehouse:5432/crm#scores")
    with pytest.raises(InputError, match="needs a table name after '#'"):
        database.split_table_url("duckdb:///x.duckdb")
    with pytest.raises(InputError, match="not a plain table name"):
        database.split_table_url("duckdb:///x.duckdb#scores; DROP TABLE x")
    with pytest.raises(InputError, match="cannot be used"):
        read_database_tables(DatabaseSource("nosuchdialect://host/db"))
    with pytest.raises(InputError, match="cannot connect to the database") as raised:
        read_database_tables(
            DatabaseSource("postgresql+psycopg://revops:s3cret@127.0.0.1:9/crm?connect_timeout=2")
        )
    assert "s3cret" not in str(raised.value)


def test_the_config_names_a_source_with_a_table_or_a_query_per_table():
    section = DataSource.model_validate(
        {
            "source": "duckdb:///data/demo.duckdb",
            "tables": {"opportunities": "crm.deals", "snapshots": {"query": "SELECT 1"}},
        }
    )
    location = section.location()
    assert isinstance(location, DatabaseSource)
    assert location.tables["opportunities"] == TableQuery(table="crm.deals")
    assert location.tables["snapshots"] == TableQuery(query="SELECT 1")
    assert section.location("data/other") == Path("data/other")
    assert isinstance(section.location("sqlite:///x.db"), DatabaseSource)
    with pytest.raises(ValueError, match="SQLAlchemy URL"):
        DataSource.model_validate({"source": "data/demo.duckdb"})
    with pytest.raises(ValueError, match="needs a database source"):
        DataSource.model_validate({"tables": {"opportunities": "deals"}})
