"""Keyless fallback: both relations as multisets of whole rows, plus a candidate-key suggestion.

Rows are grouped on their values (not a hash), so the counts are exact: a row present twice on the
left and once on the right counts once in `only_left`. Candidate keys are columns unique and never
NULL on both sides.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from dataops_dev.diffing import sql
from dataops_dev.diffing.model import DiffMode, DiffOptions, RowDiff, TableDiff
from dataops_dev.diffing.schema import CompareColumn, ComparePlan
from dataops_dev.diffing.sqltypes import parse_type, type_family
from dataops_dev.engines.base import Column, Engine, Relation
from dataops_dev.errors import UsageError
from dataops_dev.reporting import Stopwatch

MAX_KEY_PROBE_COLUMNS = 30


def _side(
    dialect: str, relation: Relation, columns: Sequence[CompareColumn], side: str, marker: int
) -> exp.Select:
    projections: list[exp.Expr] = []
    for index, column in enumerate(columns):
        name = column.left_name if side == "left" else column.name
        value = sql.cast(sql.col(name), column.cast, dialect)
        projections.append(sql.alias(value, sql.value_alias(index)))
    projections.append(sql.alias(sql.lit(marker), sql.SIDE))
    return exp.select(*projections).from_(relation.to_table())


def keyless_groups_sql(
    dialect: str,
    left: Relation,
    right: Relation,
    columns: Sequence[CompareColumn],
    table: str,
) -> exp.Expression:
    """Groups of identical rows whose copies differ between the sides (or repeat on one side)."""
    union = exp.union(
        _side(dialect, left, columns, "left", 0),
        _side(dialect, right, columns, "right", 1),
        distinct=False,
        copy=False,
    )
    values = [sql.col(sql.value_alias(i)) for i in range(len(columns))]
    n, n_right = sql.count_star(), exp.Sum(this=sql.col(sql.SIDE))
    one_each = exp.and_(
        exp.EQ(this=n.copy(), expression=sql.lit(2)),
        exp.EQ(this=n_right.copy(), expression=sql.lit(1)),
    )
    query = (
        exp.select(
            *values,
            sql.alias(exp.Sub(this=n.copy(), expression=n_right.copy()), sql.N_LEFT),
            sql.alias(n_right.copy(), sql.N_RIGHT),
        )
        .from_(union.subquery(sql.ident("__u"), copy=False))
        .group_by(*[v.copy() for v in values])
        .having(exp.not_(exp.paren(one_each)))
    )
    return sql.create_temp(table, query, dialect)


def keyless_counts_sql(table: str) -> exp.Select:
    n_left, n_right = sql.col(sql.N_LEFT), sql.col(sql.N_RIGHT)
    gap_left = exp.Sub(this=n_left.copy(), expression=n_right.copy())
    gap_right = exp.Sub(this=n_right.copy(), expression=n_left.copy())
    return exp.select(
        sql.alias(
            sql.sum_if(gap_left.copy(), exp.GT(this=gap_left, expression=sql.lit(0))), "only_left"
        ),
        sql.alias(
            sql.sum_if(gap_right.copy(), exp.GT(this=gap_right, expression=sql.lit(0))),
            "only_right",
        ),
        sql.alias(
            sql.sum_if(
                exp.Sub(this=n_left.copy(), expression=sql.lit(1)),
                exp.GT(this=n_left.copy(), expression=sql.lit(1)),
            ),
            "duplicate_left",
        ),
        sql.alias(
            sql.sum_if(
                exp.Sub(this=n_right.copy(), expression=sql.lit(1)),
                exp.GT(this=n_right.copy(), expression=sql.lit(1)),
            ),
            "duplicate_right",
        ),
    ).from_(exp.table_(sql.ident(table)))


def keyless_examples_sql(table: str, width: int, side: str, limit: int) -> exp.Select:
    more, less = (sql.N_LEFT, sql.N_RIGHT) if side == "left" else (sql.N_RIGHT, sql.N_LEFT)
    values = [sql.col(sql.value_alias(i)) for i in range(width)]
    return (
        exp.select(*values)
        .from_(exp.table_(sql.ident(table)))
        .where(exp.GT(this=sql.col(more), expression=sql.col(less)))
        .order_by(*[exp.Ordered(this=v.copy()) for v in values])
        .limit(limit)
    )


def row_counts_sql(left: Relation, right: Relation) -> exp.Select:
    def count(relation: Relation) -> exp.Subquery:
        return exp.select(sql.count_star()).from_(relation.to_table()).subquery()

    return exp.select(sql.alias(count(left), "left_rows"), sql.alias(count(right), "right_rows"))


def keyless_diff(
    engine: Engine,
    left: Relation,
    right: Relation,
    plan: ComparePlan,
    options: DiffOptions,
    watch: Stopwatch,
    *,
    left_columns: Sequence[Column],
    right_columns: Sequence[Column],
) -> TableDiff:
    """The multiset comparison of `plan`'s columns, plus candidate keys among the relations'
    columns (`left_columns`, `right_columns`, as the caller read them for the plan)."""
    columns = plan.columns
    if not columns:
        raise UsageError(
            f"{left} and {right} share no comparable column",
            "pass --key, or compare relations with at least one common column",
        )
    table = f"__dataops_keyless_{uuid.uuid4().hex[:10]}"
    try:
        with watch.measure("match"):
            totals = engine.fetchall(sql.text(row_counts_sql(left, right), engine.dialect))[0]
            engine.execute(
                sql.text(
                    keyless_groups_sql(engine.dialect, left, right, columns, table), engine.dialect
                )
            )
            names, rows = engine.fetch_with_names(
                sql.text(keyless_counts_sql(table), engine.dialect)
            )
            counts = {n: int(v or 0) for n, v in zip(names, rows[0], strict=True)}
        with watch.measure("examples"):
            examples: dict[str, tuple[dict[str, Any], ...]] = {}
            for side in ("left", "right"):
                fetched = (
                    engine.fetchall(
                        keyless_examples_sql(table, len(columns), side, options.example_rows)
                    )
                    if options.example_rows
                    else []
                )
                examples[side] = tuple(
                    {c.name: value for c, value in zip(columns, row, strict=False)}
                    for row in fetched
                )
    finally:
        sql.drop_temp_tables(engine, (table,))
    with watch.measure("candidate_keys"):
        candidates = suggest_keys(
            engine, left, right, left_columns=left_columns, right_columns=right_columns
        )
    return TableDiff(
        left=str(left),
        right=str(right),
        dialect=engine.dialect,
        schema=plan.schema,
        rows=RowDiff(
            mode=DiffMode.KEYLESS,
            left=int(totals[0]),
            right=int(totals[1]),
            only_left=counts["only_left"],
            only_right=counts["only_right"],
            duplicate_left=counts["duplicate_left"],
            duplicate_right=counts["duplicate_right"],
        ),
        key=None,
        only_left_examples=examples["left"],
        only_right_examples=examples["right"],
        candidate_keys=candidates,
        timings=dict(watch.timings),
    )


def uniqueness_sql(relation: Relation, columns: Sequence[str]) -> exp.Select:
    projections: list[exp.Expr] = [sql.alias(sql.count_star(), "rows")]
    for index, name in enumerate(columns):
        projections.append(sql.alias(exp.Count(this=sql.col(name)), f"n{index}"))
        projections.append(
            sql.alias(exp.Count(this=exp.Distinct(expressions=[sql.col(name)])), f"d{index}")
        )
    return exp.select(*projections).from_(relation.to_table())


def suggest_keys(
    engine: Engine,
    left: Relation,
    right: Relation,
    *,
    limit: int = 5,
    left_columns: Sequence[Column] | None = None,
    right_columns: Sequence[Column] | None = None,
) -> tuple[tuple[str, ...], ...]:
    """Columns that are unique and never NULL on both sides (single columns, table order).

    `left_columns`/`right_columns` are the relations' columns, read from the engine if omitted."""
    if left_columns is None:
        left_columns = engine.columns(left)
    if right_columns is None:
        right_columns = engine.columns(right)
    left_names = {c.name for c in left_columns}
    probe = [
        c.name
        for c in right_columns
        if c.name in left_names
        and type_family(c.data_type, engine.dialect) in ("numeric", "text", "temporal", "other")
        and not _is_float(c, engine.dialect)
    ][:MAX_KEY_PROBE_COLUMNS]
    if not probe:
        return ()
    unique: list[set[str]] = []
    for relation in (left, right):
        names, rows = engine.fetch_with_names(
            sql.text(uniqueness_sql(relation, probe), engine.dialect)
        )
        record = dict(zip(names, rows[0], strict=True))
        total = record["rows"]
        unique.append(
            {
                name
                for index, name in enumerate(probe)
                if total and record[f"n{index}"] == total and record[f"d{index}"] == total
            }
        )
    both = [name for name in probe if name in unique[0] and name in unique[1]]
    return tuple((name,) for name in both[:limit])


def _is_float(column: Column, dialect: str) -> bool:
    parsed = parse_type(column.data_type, dialect)
    return parsed is not None and parsed.this in (exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE)
