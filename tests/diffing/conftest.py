"""Fixtures for the diff engine tests: the same cases run on a DuckDB file and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataops_dev.engines import DuckDBEngine
from dataops_dev.engines.postgres import PostgresEngine


def pg_conninfo(database: str) -> str:
    """Same server and role as the root conftest's `pg_database` fixture."""
    host = os.environ.get("DATAOPS_PG_HOST", "/var/run/postgresql")
    user = os.environ.get("DATAOPS_PG_USER", "root")
    return f"host={host} user={user} dbname={database}"


@pytest.fixture(
    params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A real engine with an empty schema `s`."""
    if request.param == "duckdb":
        eng: Any = DuckDBEngine(tmp_path / "diff.duckdb")
    else:
        database = request.getfixturevalue("pg_database")
        eng = PostgresEngine(pg_conninfo(database))
    eng.execute("CREATE SCHEMA s")
    try:
        yield eng
    finally:
        eng.close()


def load(engine: Any, table: str, columns: str, rows: list[str]) -> None:
    """CREATE TABLE s.<table> (<columns>) and insert `rows` (SQL tuples valid on both engines)."""
    engine.execute(f"CREATE TABLE s.{table} ({columns})")
    if rows:
        engine.execute(f"INSERT INTO s.{table} VALUES " + ", ".join(rows))
