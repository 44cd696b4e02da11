"""Runs a diff of two relations inside their engine: schema, rows by key and columns in one pass.

Only counts and bounded example rows leave the engine; without a key it falls back to the keyless
multiset comparison (`diffing.keyless`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dataops_dev.diffing import duckdb_sql
from dataops_dev.diffing.model import (
    ColumnDiff,
    DiffMode,
    DiffOptions,
    KeyStats,
    Rename,
    RenameReason,
    RowChange,
    RowDiff,
    RowExample,
    SchemaDiff,
    TableDiff,
    ValueExample,
)
from dataops_dev.diffing.schema import CompareColumn, ComparePlan, plan_comparison
from dataops_dev.diffing.spec import (
    EXAMPLE_OF,
    KIND,
    ROW_EXAMPLES,
    DiffSpec,
    KeyedStatements,
    differs,
    drop_quietly,
    key_alias,
    left_value,
    right_value,
)
from dataops_dev.engines.base import Engine, Relation
from dataops_dev.errors import UsageError
from dataops_dev.reporting import NULL_REPORTER, Reporter, Stopwatch, task


def diff_relations(
    engine: Engine,
    left: Relation,
    right: Relation,
    *,
    key: Sequence[str] | None,
    options: DiffOptions | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> TableDiff:
    """Compare `left` (base) with `right` (head), both readable through `engine`.

    With `key`, rows are matched by the (typed, possibly composite) key; without it the relations
    are compared as multisets of whole rows and candidate keys are suggested.
    """
    options = options or DiffOptions()
    watch = Stopwatch()
    with task(reporter, f"diff:{right}", f"diff {left} -> {right}"):
        with watch.measure("schema"):
            left_columns = engine.columns(left)
            right_columns = engine.columns(right)
            for relation, columns in ((left, left_columns), (right, right_columns)):
                if not columns:
                    raise UsageError(
                        f"relation {relation} does not exist or has no columns",
                        "check the name with `schema.table` (and the --database it lives in)",
                    )
            plan = plan_comparison(left_columns, right_columns, key, options, engine.dialect)
        if not plan.key:
            from dataops_dev.diffing.keyless import keyless_diff  # only the keyless path needs it

            result = keyless_diff(
                engine,
                left,
                right,
                plan,
                options,
                watch,
                left_columns=left_columns,
                right_columns=right_columns,
            )
        else:
            result = _keyed(engine, left, right, plan, options, watch)
    return replace(result, notes=plan.notes) if plan.notes else result


def _keyed(
    engine: Engine,
    left: Relation,
    right: Relation,
    plan: ComparePlan,
    options: DiffOptions,
    watch: Stopwatch,
) -> TableDiff:
    prefix = f"__dataops_diff_{uuid.uuid4().hex[:10]}"
    spec = DiffSpec(
        dialect=engine.dialect,
        left=left,
        right=right,
        key=plan.key,
        columns=plan.columns,
        example_rows=options.example_rows,
        prefix=prefix,
    )
    schema = plan.schema
    if engine.dialect == "postgres":
        # The row hash reads float text: make it shortest-exact whatever the session said.
        engine.execute("SET extra_float_digits = 3")
    if plan.rename_candidates:
        with watch.measure("renames"):
            schema, spec = _detect_renames(engine, spec, plan, schema)
    statements = _statements(spec)
    try:
        sides, counts = _match(engine, spec, statements, watch)
        with watch.measure("examples"):
            listed = counts["changed"] + counts["added"] + counts["removed"]
            columns, examples = _examples(
                engine, spec, statements, counts, options, listed=bool(listed)
            )
    finally:
        drop_quietly(engine, statements.drop(spec.detail_table, engine.dialect))

    left_rows, right_rows = int(sides["left_rows"]), int(sides["right_rows"])
    null_left, null_right = int(sides["left_null_keys"]), int(sides["right_null_keys"])
    changed = counts["changed"]
    unchanged = (left_rows - null_left - counts["mismatch_left"]) + (counts["candidates"] - changed)
    rows_diff = RowDiff(
        mode=DiffMode.KEYED,
        left=left_rows,
        right=right_rows,
        added=counts["added"],
        removed=counts["removed"],
        changed=changed,
        unchanged=unchanged,
    )
    keys = KeyStats(
        columns=tuple(k.name for k in spec.key),
        null_left=null_left,
        null_right=null_right,
        duplicate_left=counts["duplicate_left"],
        duplicate_right=counts["duplicate_right"],
        duplicate_rows_left=counts["duplicate_rows_left"],
        duplicate_rows_right=counts["duplicate_rows_right"],
        excluded_left=null_left + counts["excluded_left"],
        excluded_right=null_right + counts["excluded_right"],
    )
    return TableDiff(
        left=str(left),
        right=str(right),
        dialect=engine.dialect,
        schema=schema,
        rows=rows_diff,
        key=keys.columns,
        keys=keys,
        columns=tuple(replace(c, compared=rows_diff.compared) for c in columns),
        examples=examples,
        timings=dict(watch.timings),
    )


def _statements(spec: DiffSpec) -> KeyedStatements:
    """Plain text for the usual DuckDB diff (no sqlglot import), sqlglot's trees otherwise."""
    if duckdb_sql.handles(spec):
        return duckdb_sql
    from dataops_dev.diffing import sql

    return sql.SQLGLOT_TEXT


def _match(
    engine: Engine, spec: DiffSpec, statements: KeyedStatements, watch: Stopwatch
) -> tuple[dict[str, Any], dict[str, int]]:
    """Row counts per side, then the one pass that writes the mismatch set and its counts (the
    exact aggregate instead when keys repeat)."""
    with watch.measure("counts"):
        names, rows = engine.fetch_with_names(statements.side_counts(spec))
        sides = dict(zip(names, rows[0], strict=True))
    with watch.measure("match"):
        engine.execute(statements.match(spec))
        counts = _counts(engine, spec, statements)
        left_keyed = int(sides["left_rows"]) - int(sides["left_null_keys"])
        right_keyed = int(sides["right_rows"]) - int(sides["right_null_keys"])
        if _has_duplicates(counts, left_keyed, right_keyed):
            # The join multiplied duplicated keys; rebuild the set with the exact aggregate.
            drop_quietly(engine, statements.drop(spec.detail_table, engine.dialect))
            engine.execute(statements.match_exact(spec))
            counts = _counts(engine, spec, statements)
    return sides, counts


def _counts(engine: Engine, spec: DiffSpec, statements: KeyedStatements) -> dict[str, int]:
    names, rows = engine.fetch_with_names(statements.counts(spec))
    return {n: int(v or 0) for n, v in zip(names, rows[0], strict=True)}


def _has_duplicates(counts: dict[str, int], left_keyed: int, right_keyed: int) -> bool:
    """A key with a left and b right rows yields a*b join pairs: the pair totals equal the row
    counts on both sides only if no matched key repeats; unmatched repeats show as groups > 1.
    (The base-value lookup can only add rows for a repeated base key, never hide one.)"""
    return bool(
        counts["duplicate_left"]
        or counts["duplicate_right"]
        or counts["pairs_left"] != left_keyed
        or counts["pairs_right"] != right_keyed
    )


def _detect_renames(
    engine: Engine, spec: DiffSpec, plan: ComparePlan, schema: SchemaDiff
) -> tuple[SchemaDiff, DiffSpec]:
    from dataops_dev.diffing import sql  # rename candidates are rare: the probe uses sqlglot

    pairs = [(old.name, new.name) for old, new in plan.rename_candidates]
    names, rows = engine.fetch_with_names(sql.text(sql.rename_probe_sql(spec, pairs), spec.dialect))
    found = dict(zip(names, rows[0], strict=True))
    if not found["matched"]:
        return schema, spec
    taken_old: set[str] = set()
    taken_new: set[str] = set()
    renames: list[Rename] = []
    extra: list[CompareColumn] = []
    for index, (old, new) in enumerate(plan.rename_candidates):
        if found[f"p{index}"] or old.name in taken_old or new.name in taken_new:
            continue
        taken_old.add(old.name)
        taken_new.add(new.name)
        renames.append(Rename(old.name, new.name, RenameReason.VALUES))
        extra.append(CompareColumn(name=new.name, left_name=old.name, data_type=new.data_type))
    if not renames:
        return schema, spec
    schema = replace(
        schema,
        added=tuple(c for c in schema.added if c.name not in taken_new),
        removed=tuple(c for c in schema.removed if c.name not in taken_old),
        renamed=schema.renamed + tuple(renames),
    )
    return schema, replace(spec, columns=spec.columns + tuple(extra))


def _examples(
    engine: Engine,
    spec: DiffSpec,
    statements: KeyedStatements,
    counts: dict[str, int],
    options: DiffOptions,
    *,
    listed: bool,
) -> tuple[list[ColumnDiff], tuple[RowExample, ...]]:
    """Per-column diffs with their value examples, and the row examples, from one query
    (`listed`: some row was added, removed or changed)."""
    per_column = options.examples if counts["changed"] else 0
    records: list[dict[str, Any]] = []
    if listed and (per_column or spec.example_rows):
        names, rows = engine.fetch_with_names(statements.examples(spec, per_column))
        records = [dict(zip(names, row, strict=True)) for row in rows]
    lists: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        lists.setdefault(int(record[EXAMPLE_OF]), []).append(record)
    columns = []
    for index, column in enumerate(spec.columns):
        columns.append(
            ColumnDiff(
                name=column.name,
                changed=counts[f"c{index}"],
                compared=0,
                examples=tuple(
                    ValueExample(
                        key=_key(spec, r),
                        before=r[left_value(index)],
                        after=r[right_value(index)],
                    )
                    for r in lists.get(index, [])
                ),
                left_name=column.left_name if column.left_name != column.name else None,
                compared_as=column.cast,
                tolerance=column.tolerance,
                timestamp_precision=column.precision,
            )
        )
    # The query returns up to example_rows per kind, in the order of the final list.
    picked = lists.get(ROW_EXAMPLES, [])[: spec.example_rows]
    return columns, tuple(_row_example(spec, r) for r in picked)


def _key(spec: DiffSpec, record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record[key_alias(i)] for i in range(len(spec.key)))


def _row_example(spec: DiffSpec, record: dict[str, Any]) -> RowExample:
    kind = RowChange(record[KIND])
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for index, column in enumerate(spec.columns):
        if kind is RowChange.CHANGED and not record[differs(index)]:
            continue
        before[column.name] = record[left_value(index)]
        after[column.name] = record[right_value(index)]
    return RowExample(
        kind=kind,
        key=_key(spec, record),
        before=None if kind is RowChange.ADDED else before,
        after=None if kind is RowChange.REMOVED else after,
    )
