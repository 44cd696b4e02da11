"""The Spark engine against a real local Spark Connect server."""

from __future__ import annotations

import pytest

from dataops_dev.engines.base import Column, Relation
from dataops_dev.engines.spark import SparkEngine
from dataops_dev.errors import EngineError

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_spark_engine_reads_catalog_and_binds_parameters(
    spark_remote: str, spark_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = SparkEngine(spark_remote)
    table = Relation(spark_schema, "people")
    engine.execute(f"CREATE TABLE {table.sql('spark')} (id INT, email STRING) USING parquet")
    engine.execute(
        f"INSERT INTO {table.sql('spark')} VALUES (?, ?), (?, ?)", [1, "a@x.io", 2, None]
    )

    names, rows = engine.fetch_with_names(
        f"SELECT id, email FROM {table.sql('spark')} WHERE id >= ? ORDER BY id", [1]
    )
    assert names == ["id", "email"]
    assert rows == [(1, "a@x.io"), (2, None)]
    assert engine.columns(table) == [Column("id", "int"), Column("email", "string")]
    assert engine.relation_exists(table)
    assert not engine.relation_exists(Relation(spark_schema, "missing"))
    assert engine.columns(Relation(spark_schema, "missing")) == []
    assert engine.list_relations(spark_schema) == [table]
    assert engine.list_relations("no_such_schema_here") == []


def test_spark_errors_name_the_problem_without_the_value(
    spark_remote: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = SparkEngine(spark_remote)
    with pytest.raises(EngineError) as failed:
        engine.fetchall("SELECT CAST(? AS INT)", ["alice@example.com"])
    assert "CAST_INVALID_INPUT" in str(failed.value)
    assert "alice" not in str(failed.value)
    with pytest.raises(EngineError) as missing:
        engine.fetchall("SELECT * FROM no_such_schema_x.no_such_table")
    assert "TABLE_OR_VIEW_NOT_FOUND" in str(missing.value)
    assert "no_such_table" in str(missing.value)
    # pyspark's client logs failed queries on stdout: that must be silenced.
    captured = capsys.readouterr()
    assert "alice" not in captured.out + captured.err


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(EngineError) as failed:
        SparkEngine("sc://127.0.0.1:9").fetchall("SELECT 1")
    assert "Spark" in str(failed.value)
