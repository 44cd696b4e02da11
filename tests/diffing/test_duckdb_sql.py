"""The plain-text DuckDB builder (`diffing.duckdb_sql`) writes exactly the SQL that sqlglot builds
(`diffing.sql`), for many schemas and odd identifiers, and a plain DuckDB diff runs without sqlglot.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import dataops_dev
from dataops_dev.diffing import DiffOptions, Tolerance, diff_relations, duckdb_sql, sql
from dataops_dev.diffing.schema import CompareColumn, KeyColumn
from dataops_dev.diffing.spec import DiffSpec
from dataops_dev.engines import DuckDBEngine, Relation

# Identifiers that quoting must survive: quotes of both kinds, spaces, dots, keywords, unicode,
# backslashes, SQL comment and statement characters, our own alias names.
ODD_NAMES = [
    "id",
    "Order ID",
    'say "hi"',
    '"',
    '""',
    "it's",
    "a.b",
    "select",
    "FROM",
    "Ünïcødé",
    "日付",
    "back\\slash",
    "semi;colon -- x",
    "/* c */",
    "tab\there",
    "new\nline",
    "__k0",
    "__kind",
    "__r1",
    "x",
]


def _names(rng: random.Random, count: int) -> list[str]:
    return rng.sample(ODD_NAMES, count)


def _relation(rng: random.Random) -> Relation:
    schema, name = _names(rng, 2)
    return Relation(schema, name, rng.choice([None, "warehouse", 'my "db"']))


def _spec(rng: random.Random) -> DiffSpec:
    names = _names(rng, rng.randint(1, 9))
    n_keys = rng.randint(1, min(3, len(names)))
    keys = tuple(KeyColumn(n) for n in names[:n_keys])
    columns = tuple(
        CompareColumn(
            name=n,
            left_name=rng.choice([n, n, f"old {n}", f'old "{n}"']),
            data_type=rng.choice(["INTEGER", "VARCHAR", "DOUBLE", "TIMESTAMP"]),
        )
        for n in names[n_keys:]
    )
    return DiffSpec(
        dialect="duckdb",
        left=_relation(rng),
        right=_relation(rng),
        key=keys,
        columns=columns,
        example_rows=rng.choice([0, 1, 20]),
        prefix=rng.choice(["__dataops_diff_0123456789", 'odd "prefix"']),
    )


SPECS = [_spec(random.Random(seed)) for seed in range(300)]


@pytest.mark.parametrize("spec", SPECS, ids=[f"spec{i}" for i in range(len(SPECS))])
def test_text_equals_sqlglot(spec: DiffSpec) -> None:
    reference = sql.SQLGLOT_TEXT
    assert duckdb_sql.handles(spec)
    assert duckdb_sql.side_counts(spec) == reference.side_counts(spec)
    assert duckdb_sql.match(spec) == reference.match(spec)
    assert duckdb_sql.match_exact(spec) == reference.match_exact(spec)
    assert duckdb_sql.counts(spec) == reference.counts(spec)
    for column_examples in (0, 5):
        if spec.example_rows or (column_examples and spec.columns):
            expected = reference.examples(spec, column_examples)
            assert duckdb_sql.examples(spec, column_examples) == expected
    table = spec.detail_table
    assert duckdb_sql.drop(table, "duckdb") == reference.drop(table, "duckdb")


def test_the_specs_cover_the_shapes() -> None:
    """The generated specs include composite keys, key-only tables, renamed columns, three-part
    names and no row examples (so the equality above covers each form)."""
    assert any(len(s.key) == 3 for s in SPECS)
    assert any(not s.columns for s in SPECS)
    assert any(c.left_name != c.name for s in SPECS for c in s.columns)
    assert any(s.left.database for s in SPECS)
    assert any(not s.example_rows for s in SPECS)


def _plain_spec(
    dialect: str = "duckdb",
    *,
    cast: str | None = None,
    tolerance: Tolerance | None = None,
    precision: str | None = None,
) -> DiffSpec:
    column = CompareColumn("v", "v", "DOUBLE", cast, tolerance, precision)
    return DiffSpec(dialect, Relation("s", "a"), Relation("s", "b"), (KeyColumn("id"),), (column,))


@pytest.mark.parametrize(
    "spec",
    [
        _plain_spec("postgres"),
        _plain_spec("spark"),
        _plain_spec(cast="DECIMAL(18, 2)"),
        _plain_spec(tolerance=Tolerance(abs=0.01)),
        _plain_spec(precision="second"),
        DiffSpec(
            "duckdb", Relation("s", "a"), Relation("s", "b"), (KeyColumn("id", "BIGINT"),), ()
        ),
    ],
    ids=["postgres", "spark", "cast", "tolerance", "precision", "key-cast"],
)
def test_what_needs_sqlglot_is_left_to_it(spec: DiffSpec) -> None:
    assert not duckdb_sql.handles(spec)


def _odd_tables(path: Path) -> None:
    with DuckDBEngine(path) as engine:
        engine.execute('CREATE SCHEMA "my ""schema"""')
        columns = '"Order ID" INTEGER, "it\'s" VARCHAR, "say ""hi""" DOUBLE, "__kind" INTEGER'
        for table, rows in (
            ("a", "(1, 'x', 1.0, 1), (2, 'y', 2.0, 2), (3, 'z', NULL, 3)"),
            ("b", "(1, 'x', 1.0, 1), (2, 'y''', 2.0, 2), (4, 'w', 4.0, 4)"),
        ):
            engine.execute(f'CREATE TABLE "my ""schema"""."{table}" ({columns})')
            engine.execute(f'INSERT INTO "my ""schema"""."{table}" VALUES {rows}')


def test_odd_names_diff_on_duckdb_without_sqlglot(tmp_path: Path) -> None:
    """A real diff over odd identifiers, in a fresh process: right counts, and sqlglot is never
    imported (the import is the cost this builder exists to avoid)."""
    path = tmp_path / "odd.duckdb"
    _odd_tables(path)
    probe = (
        "import sys, json\n"
        "from dataops_dev.diffing import diff_relations\n"
        "from dataops_dev.engines import DuckDBEngine, Relation\n"
        f"with DuckDBEngine({str(path)!r}, read_only=True) as engine:\n"
        "    result = diff_relations(engine, Relation('my \"schema\"', 'a'),\n"
        "                            Relation('my \"schema\"', 'b'), key=['Order ID'])\n"
        "print(json.dumps({'rows': result.rows.to_dict(),\n"
        "    'columns': {c.name: c.changed for c in result.columns},\n"
        "    'examples': len(result.examples),\n"
        "    'sqlglot': sorted(m for m in sys.modules if m.split('.')[0] == 'sqlglot')}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(dataops_dev.__file__).parents[1],
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["rows"] == {
        "left": 3,
        "right": 3,
        "added": 1,
        "removed": 1,
        "changed": 1,
        "unchanged": 1,
    }
    assert outcome["columns"] == {"it's": 1, 'say "hi"': 0, "__kind": 0}
    assert outcome["examples"] == 3
    assert outcome["sqlglot"] == []


def test_odd_names_give_the_same_diff_through_sqlglot(tmp_path: Path) -> None:
    """The same tables through the sqlglot builder (a declared cast sends the diff there) agree
    with the text builder's result, examples included."""
    path = tmp_path / "odd.duckdb"
    _odd_tables(path)
    left, right = Relation('my "schema"', "a"), Relation('my "schema"', "b")
    with DuckDBEngine(path, read_only=True) as engine:
        text = diff_relations(engine, left, right, key=["Order ID"])
        through_sqlglot = diff_relations(
            engine, left, right, key=["Order ID"], options=DiffOptions(casts={"__kind": "BIGINT"})
        )
    assert through_sqlglot.rows == text.rows
    assert [(c.name, c.changed, c.examples) for c in through_sqlglot.columns] == [
        (c.name, c.changed, c.examples) for c in text.columns
    ]
    assert through_sqlglot.examples == text.examples
