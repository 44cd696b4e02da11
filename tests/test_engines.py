"""Engine errors never quote production values: a real DuckDB and a real PostgreSQL refuse."""

from __future__ import annotations

import psycopg
import pytest
from sqlglot import exp

from dataops_dev.engines import Column, DuckDBEngine, Relation
from dataops_dev.engines.base import redact_error
from dataops_dev.engines.postgres import PostgresEngine
from dataops_dev.errors import EngineError
from dataops_dev.sampling import PostgresSampleWriter, Role, TablePlan
from tests.conftest import pg_conninfo

SECRET = "alice@example.com"

# Values as an engine would quote them: with the quote inside, across lines, as a number.
VALUES = ("'alice@example.com'", "'O''Brien'", "'first' || chr(10) || 'second'")


@pytest.mark.parametrize("literal", VALUES)
def test_duckdb_cast_error_does_not_quote_the_value(literal: str) -> None:
    with DuckDBEngine() as engine:
        engine.execute(f"CREATE TABLE users AS SELECT {literal} AS email")
        with pytest.raises(EngineError) as caught:
            engine.execute("SELECT CAST(email AS BIGINT) FROM users")
    text = str(caught.value)
    assert text.startswith("DuckDB: Conversion Error: Could not convert string '…")
    for fragment in ("alice", "example", "Brien", "first", "second"):
        assert fragment not in text


def test_duckdb_constraint_and_range_errors_do_not_quote_values() -> None:
    with DuckDBEngine() as engine:
        engine.execute("CREATE TABLE t (ssn BIGINT PRIMARY KEY)")
        engine.execute("INSERT INTO t VALUES (123456789)")
        with pytest.raises(EngineError) as duplicate:
            engine.execute("INSERT INTO t VALUES (123456789)")
        with pytest.raises(EngineError) as out_of_range:
            engine.execute("SELECT CAST(ssn * 1000 AS INTEGER) FROM t")
    assert "Constraint Error" in str(duplicate.value)
    assert "Conversion Error" in str(out_of_range.value)
    for error in (duplicate.value, out_of_range.value):
        assert "123456789" not in str(error)


def test_duckdb_name_errors_keep_identifiers() -> None:
    with DuckDBEngine() as engine, pytest.raises(EngineError) as caught:
        engine.execute("SELECT nope FROM (SELECT 1 AS one)")
    assert '"nope"' in str(caught.value)
    with DuckDBEngine() as engine, pytest.raises(EngineError) as missing:
        engine.execute("SELECT * FROM missing_table")
    assert "missing_table" in str(missing.value)


def test_redaction_of_one_line() -> None:
    assert redact_error("value can't be 'x'", keep_identifiers=False) == "value can't be '…'"
    assert redact_error("string 'unclosed\nrest'", keep_identifiers=True) == "string '…"
    assert redact_error('key "5" (3 * 4)', keep_identifiers=False) == 'key "…" (… * …)'
    assert redact_error('relation "a.b" at 3', keep_identifiers=True) == 'relation "a.b" at 3'
    assert redact_error("", keep_identifiers=True) == ""


@pytest.mark.postgres
def test_postgres_errors_do_not_quote_values(pg_database: str) -> None:
    with PostgresEngine(pg_conninfo(pg_database)) as engine:
        engine.execute("CREATE TABLE users (email text UNIQUE)")
        engine.execute("INSERT INTO users VALUES (%s)", [SECRET])
        with pytest.raises(EngineError) as cast:
            engine.execute("SELECT CAST(email AS bigint) FROM users")
        with pytest.raises(EngineError) as duplicate:
            engine.execute("INSERT INTO users VALUES (%s)", [SECRET])
        with pytest.raises(EngineError) as missing:
            engine.execute("SELECT * FROM no_such_table")
    assert "invalid input syntax for type bigint" in str(cast.value)
    # The constraint violation's DETAIL line (`Key (email)=(alice@…) already exists`) is dropped.
    assert "duplicate key value violates unique constraint" in str(duplicate.value)
    for error in (cast.value, duplicate.value):
        assert "alice" not in str(error) and "example" not in str(error)
    assert '"no_such_table"' in str(missing.value)


@pytest.mark.postgres
def test_postgres_sample_copy_error_names_the_table_only(pg_database: str) -> None:
    with (
        PostgresEngine(pg_conninfo(pg_database)) as work,
        PostgresEngine(pg_conninfo(pg_database)) as sandbox,
    ):
        work.execute("CREATE SCHEMA app")
        work.execute("CREATE TABLE app.users (email text)")
        work.execute("INSERT INTO app.users VALUES (%s)", [SECRET])
        source = exp.table_("users", db="app", quoted=True)
        plan = TablePlan("app.users", Role.FULL, source, (Column("email", "bigint"),))
        writer = PostgresSampleWriter(work, sandbox, {"app.users": Relation("app", "users")})
        query = exp.select(
            exp.cast(exp.column("email", "t", quoted=True), "BIGINT").as_("email")
        ).from_(source.as_("t"))
        with pytest.raises(EngineError) as caught:
            writer.write(plan, query)
        assert not isinstance(caught.value, psycopg.Error)
        text = str(caught.value)
        assert "app.users" in text and "invalid input syntax" in text
        assert "alice" not in text and "example" not in text
        # The sessions stay usable after the failed COPY.
        assert work.fetchall("SELECT 1") == [(1,)]
        assert sandbox.fetchall("SELECT 1") == [(1,)]
