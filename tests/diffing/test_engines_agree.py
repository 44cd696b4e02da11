"""The subtle cases give the same counts on DuckDB, PostgreSQL and Spark.

NULLs swapped between two columns (Spark's hashes skip NULL arguments), +1e-9, +1 µs, '' vs NULL,
a trailing space, -0.0 vs 0.0, NaN, composite keys whose string forms collide, duplicate and NULL
keys, and the keyless multiset: one set of tables, one expected result, three real engines.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataops_dev.diffing import diff_relations, profile_diff
from dataops_dev.engines import DuckDBEngine, Relation
from dataops_dev.engines.postgres import PostgresEngine

from .conftest import pg_conninfo

TYPES = {
    "duckdb": {"d": "DOUBLE", "t": "VARCHAR"},
    "postgres": {"d": "DOUBLE PRECISION", "t": "TEXT"},
    "spark": {"d": "DOUBLE", "t": "STRING"},
}
TS = "TIMESTAMP '2024-01-01 10:00:00'"
VALUES = "id INTEGER, x {d}, ts TIMESTAMP, s {t}, t {t}, u {t}"
# (left row, right row); None: the row is missing on that side.
VALUE_ROWS = [
    (f"(1, 0.1, {TS}, 'a', 'p', 'q')", f"(1, 0.1 + 1e-9, {TS}, 'a', 'p', 'q')"),  # x
    (
        f"(2, 1.0, {TS}, 'a', 'p', 'q')",
        "(2, 1.0, TIMESTAMP '2024-01-01 10:00:00.000001', 'a', 'p', 'q')",
    ),  # ts
    (f"(3, 1.0, {TS}, NULL, 'p', 'q')", f"(3, 1.0, {TS}, '', 'p', 'q')"),  # s: NULL -> ''
    (f"(4, 1.0, {TS}, '', 'p', 'q')", f"(4, 1.0, {TS}, NULL, 'p', 'q')"),  # s: '' -> NULL
    (f"(5, 1.0, {TS}, 'b', 'p', 'q')", f"(5, 1.0, {TS}, 'b ', 'p', 'q')"),  # s: trailing space
    ("(6, CAST('NaN' AS {d}), NULL, NULL, NULL, NULL)",) * 2,  # NaN = NaN, NULL = NULL
    ("(7, CAST('-0.0' AS {d}), NULL, 'z', NULL, NULL)", "(7, 0.0, NULL, 'z', NULL, NULL)"),  # same
    ("(8, CAST('NaN' AS {d}), NULL, 'n', NULL, NULL)", "(8, 1.0, NULL, 'n', NULL, NULL)"),  # x
    ("(9, NULL, NULL, 'n', NULL, NULL)", "(9, 0.0, NULL, 'n', NULL, NULL)"),  # x
    (f"(10, 1.0, {TS}, 'a', 'w', NULL)", f"(10, 1.0, {TS}, 'a', NULL, 'w')"),  # t, u: NULL swap
    (f"(11, 1.0, {TS}, 'a', NULL, 'w')", f"(11, 1.0, {TS}, 'a', 'w', NULL)"),  # t, u: NULL swap
    (f"(12, 2.5, {TS}, 'a', 'p', 'q')",) * 2,  # same
    (f"(13, 2.5, {TS}, 'gone', 'p', 'q')", None),  # removed
    (None, f"(14, 2.5, {TS}, 'new', 'p', 'q')"),  # added
]
KEYS = "k1 {t}, k2 {t}, n1 INTEGER, n2 INTEGER, v INTEGER"
KEY_ROWS = (
    ["('a-b', 'c', 1, 23, 1)", "('a', 'b-c', 12, 3, 2)", "('x', 'y', 1, 1, 3)"],
    ["('a-b', 'c', 1, 23, 1)", "('a', 'b-c', 12, 3, 20)", "('x', 'y', 1, 1, 3)"],
)
# left: 1 twice (identical rows), 2, NULL, 3, 5 ; right: 1, 2 twice, 3 changed, NULL x2, 4
DUPLICATE_ROWS = (
    ["(1, 1)", "(1, 1)", "(2, 2)", "(NULL, 0)", "(3, 3)", "(5, 5)"],
    ["(1, 1)", "(2, 2)", "(2, 2)", "(3, 30)", "(NULL, 0)", "(NULL, 9)", "(4, 4)"],
)


@pytest.fixture(
    params=[
        "duckdb",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("spark", marks=[pytest.mark.slow, pytest.mark.spark]),
    ]
)
def engine_and_schema(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A real engine and an empty schema in it."""
    if request.param == "duckdb":
        engine: Any = DuckDBEngine(tmp_path / "agree.duckdb")
        schema = "s"
        engine.execute("CREATE SCHEMA s")
    elif request.param == "postgres":
        engine = PostgresEngine(pg_conninfo(request.getfixturevalue("pg_database")))
        schema = "s"
        engine.execute("CREATE SCHEMA s")
    else:
        from dataops_dev.engines.spark import SparkEngine

        schema = request.getfixturevalue("spark_schema")
        engine = SparkEngine(request.getfixturevalue("spark_remote"))
    try:
        yield engine, schema
    finally:
        engine.close()


def _load(engine: Any, schema: str, table: str, columns: str, rows: list[str]) -> Relation:
    types = TYPES[engine.dialect]
    engine.execute(f"CREATE TABLE {schema}.{table} ({columns.format(**types)})")
    if rows:
        values = ", ".join(row.format(**types) for row in rows)
        engine.execute(f"INSERT INTO {schema}.{table} VALUES {values}")
    return Relation(schema, table)


def _pair(engine: Any, schema: str, columns: str, left: list[str], right: list[str]) -> Any:
    name = uuid.uuid4().hex[:6]
    return (
        _load(engine, schema, f"l_{name}", columns, left),
        _load(engine, schema, f"r_{name}", columns, right),
    )


def _counts(result: Any) -> dict[str, Any]:
    return {
        "rows": result.rows.to_dict(),
        "columns": {c.name: c.changed for c in result.columns},
        "keys": None if result.keys is None else result.keys.to_dict(),
    }


def test_subtle_cases_count_the_same_on_every_engine(engine_and_schema: tuple[Any, str]) -> None:
    engine, schema = engine_and_schema
    a, b = _pair(
        engine,
        schema,
        VALUES,
        [left for left, *_ in VALUE_ROWS if left],
        [pair[-1] for pair in VALUE_ROWS if pair[-1]],
    )
    values = diff_relations(engine, a, b, key=["id"])
    assert values.rows.to_dict() == {
        "left": 13,
        "right": 13,
        "added": 1,
        "removed": 1,
        "changed": 9,
        "unchanged": 3,
    }
    assert {c.name: c.changed for c in values.columns} == {"x": 3, "ts": 1, "s": 3, "t": 2, "u": 2}
    assert {e.key[0] for e in values.column("t").examples} == {10, 11}
    assert {e.key[0]: (e.before, e.after) for e in values.column("s").examples} == {
        3: (None, ""),
        4: ("", None),
        5: ("b", "b "),
    }

    c, d = _pair(engine, schema, KEYS, *KEY_ROWS)
    by_text = diff_relations(engine, c, d, key=["k1", "k2"])
    by_int = diff_relations(engine, c, d, key=["n1", "n2"])
    for result in (by_text, by_int):
        assert (result.rows.changed, result.rows.unchanged) == (1, 2)
        assert result.column("v").changed == 1
    assert by_text.column("v").examples[0].key == ("a", "b-c")

    e, f = _pair(engine, schema, "id INTEGER, v INTEGER", *DUPLICATE_ROWS)
    duplicates = diff_relations(engine, e, f, key=["id"])
    assert _counts(duplicates) == {
        "rows": {"left": 6, "right": 7, "added": 1, "removed": 1, "changed": 1, "unchanged": 0},
        "columns": {"v": 1},
        "keys": duplicates.keys.to_dict()
        | {  # type: ignore[union-attr]
            "null_left": 1,
            "null_right": 2,
            "duplicate_left": 1,
            "duplicate_right": 1,
            "duplicate_rows_left": 2,
            "duplicate_rows_right": 2,
            "excluded_left": 4,
            "excluded_right": 5,
        },
    }
    keyless = diff_relations(engine, e, f, key=None)
    assert keyless.rows.to_dict() == {
        "left": 6,
        "right": 7,
        "only_left": 3,
        "only_right": 4,
        "duplicate_left": 1,
        "duplicate_right": 1,
    }

    profile = profile_diff(engine, a, b)
    after = {p.name: p.right for p in profile.columns}
    assert {n: (c.rows, c.nulls, c.distinct) for n, c in after.items() if c} == {
        "id": (13, 0, 13),
        "x": (13, 0, 5),  # NaN is a value, not a NULL
        "ts": (13, 4, 2),
        "s": (13, 2, 6),
        "t": (13, 5, 2),
        "u": (13, 5, 2),
    }
