"""Golden SQL: each input spec in fixtures/diffing/specs.json -> the SQL per dialect (DuckDB,
PostgreSQL, Spark).

Regenerate after an intended change with `DATAOPS_UPDATE_GOLDEN=1 pytest tests/diffing` and
review the diff of the .sql files like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from dataops_dev.diffing import keyless, profile, sql
from dataops_dev.diffing.model import Tolerance
from dataops_dev.diffing.schema import CompareColumn, KeyColumn
from dataops_dev.engines.base import Column, Relation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diffing"
SPECS: dict[str, Any] = json.loads((FIXTURES / "specs.json").read_text())
UPDATE = os.environ.get("DATAOPS_UPDATE_GOLDEN") == "1"


def build_spec(raw: dict[str, Any], dialect: str) -> sql.DiffSpec:
    def relation(parts: list[str]) -> Relation:
        return Relation(parts[0], parts[1], parts[2] if len(parts) > 2 else None)

    columns = tuple(
        CompareColumn(
            name=c["name"],
            left_name=c.get("left_name", c["name"]),
            data_type=c["data_type"],
            cast=c.get("cast"),
            tolerance=Tolerance(**c["tolerance"]) if "tolerance" in c else None,
            precision=c.get("precision"),
        )
        for c in raw["columns"]
    )
    return sql.DiffSpec(
        dialect=dialect,
        left=relation(raw["left"]),
        right=relation(raw["right"]),
        key=tuple(KeyColumn(k["name"], k.get("cast")) for k in raw["key"]),
        columns=columns,
        example_rows=20,
        prefix="__diff",
    )


def render_all(name: str, dialect: str) -> str:
    spec = build_spec(SPECS[name], dialect)
    steps: list[tuple[str, Any]] = [
        ("side_counts", sql.side_counts_sql(spec)),
        ("match", sql.match_sql(spec)),
        ("match_exact", sql.match_exact_sql(spec)),
        ("counts", sql.counts_sql(spec)),
        ("examples", sql.examples_sql(spec, 5)),
    ]
    if spec.columns:
        steps.append(
            (
                "keyless_groups",
                keyless.keyless_groups_sql(dialect, spec.left, spec.right, spec.columns, "__g"),
            )
        )
        table_columns = [Column(c.name, c.data_type) for c in spec.columns]
        steps.append(("profile_stats", profile.stats_sql(spec.right, table_columns, dialect)))
        steps.append(
            (
                "profile_distribution",
                profile.distribution_sql(spec.right, table_columns, {0: (0.0, 10.0)}, dialect),
            )
        )
    return "".join(
        f"-- {step}\n{query.sql(dialect=dialect, pretty=True)};\n\n" for step, query in steps
    )


CASES = [(name, dialect) for name in sorted(SPECS) for dialect in ("duckdb", "postgres", "spark")]


@pytest.mark.parametrize(("name", "dialect"), CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_golden_sql(name: str, dialect: str) -> None:
    expected_path = FIXTURES / f"{name}.{dialect}.sql"
    actual = render_all(name, dialect)
    if UPDATE or not expected_path.exists():
        expected_path.write_text(actual)
    assert actual == expected_path.read_text()
    # Every statement is valid SQL for its dialect (round-trips through sqlglot's parser).
    for statement in actual.split(";\n\n"):
        if statement.strip():
            sqlglot.parse_one(statement, read=dialect)
