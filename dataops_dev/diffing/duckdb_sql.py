"""The keyed diff's statements for DuckDB as plain text, for the usual case: columns compared as
they are (no casts, tolerances or truncation). The same SQL `diffing.sql` builds with sqlglot.

Why a second builder: importing sqlglot and its DuckDB dialect costs ~0.08 CPU-s per process and
building the trees ~0.02 s more, a fifth of a whole diff of 1M rows, paid by every CLI run. This
one emits sqlglot's exact text (tests/diffing/test_duckdb_sql.py compares the two for many
schemas and odd names); every identifier goes through `_quote`, DuckDB's rule: double quotes,
an embedded double quote doubled. Anything else (casts, rules, the duplicate-key rebuild, other
dialects) goes to `diffing.sql`.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataops_dev.diffing.spec import (
    ADDED,
    CHANGED,
    EXAMPLE_OF,
    HASH,
    KIND,
    N_LEFT,
    N_RIGHT,
    RANK,
    REMOVED,
    ROW_EXAMPLES,
    DiffSpec,
    differs,
    key_alias,
    left_value,
    right_value,
)
from dataops_dev.engines.base import Relation


def handles(spec: DiffSpec) -> bool:
    """True when this module writes `spec`'s statements: DuckDB, and nothing to cast or round."""
    if spec.dialect != "duckdb" or any(k.cast for k in spec.key):
        return False
    return not any(c.cast or c.tolerance is not None or c.precision for c in spec.columns)


# --------------------------------------------------------------------------------------------
# Names and the few expression forms the statements use, written as sqlglot writes them


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _col(name: str, table: str | None = None) -> str:
    return f"{_quote(table)}.{_quote(name)}" if table else _quote(name)


def _relation(relation: Relation) -> str:
    # sqlglot leaves out empty parts (and so do we): `Relation.to_table()`.
    parts = (relation.database, relation.schema, relation.name)
    return ".".join(_quote(part) for part in parts if part)


def _as(expression: str, name: str) -> str:
    return f"{expression} AS {_quote(name)}"


def _any_of(conditions: Sequence[str]) -> str:
    return " OR ".join(f"({c})" for c in conditions) if conditions else "FALSE"


def _count_if(condition: str) -> str:
    return f"COUNT(*) FILTER(WHERE {condition})"


def _sum_if(value: str, condition: str) -> str:
    return f"COALESCE(SUM({value}) FILTER(WHERE {condition}), 0)"


def _kind_is(kind: str, table: str | None = None) -> str:
    return f"{_col(KIND, table)} = '{kind}'"


def _keys(spec: DiffSpec, table: str | None = None) -> list[str]:
    return [_col(key_alias(i), table) for i in range(len(spec.key))]


def _key_null(spec: DiffSpec, table: str | None) -> str:
    return _any_of([f"{_col(k.name, table)} IS NULL" for k in spec.key])


def _is_changed_row(spec: DiffSpec) -> str:
    return (
        f"{_kind_is(CHANGED)} AND ({_any_of([_col(differs(i)) for i in range(len(spec.columns))])})"
    )


# --------------------------------------------------------------------------------------------
# Step 0: rows and NULL keys per side


def side_counts(spec: DiffSpec) -> str:
    def side(relation: Relation, label: str) -> str:
        rows = _as("COUNT(*)", f"{label}_rows")
        nulls = _as(_count_if(_key_null(spec, None)), f"{label}_null_keys")
        return f"SELECT {rows}, {nulls} FROM {_relation(relation)}"

    left, right = side(spec.left, "left"), side(spec.right, "right")
    return f'SELECT * FROM ({left}) AS "__a" CROSS JOIN ({right}) AS "__b"'


# --------------------------------------------------------------------------------------------
# Step 1: the one pass (`sql.match_sql`)


def _side_pairs(spec: DiffSpec, relation: Relation, side: str) -> str:
    """One side's keys and row hash; the head side also carries its raw values."""
    projections = [_as(_col(k.name, "__t"), key_alias(i)) for i, k in enumerate(spec.key)]
    names = [c.left_name if side == "left" else c.name for c in spec.columns]
    values = ", ".join(_col(name, "__t") for name in names)
    projections.append(_as(f"HASH({values})" if names else "0", HASH))
    if side == "right":
        projections += [
            _as(_col(c.name, "__t"), right_value(i)) for i, c in enumerate(spec.columns)
        ]
    return (
        f"SELECT {', '.join(projections)} FROM {_relation(relation)} AS {_quote('__t')} "
        f"WHERE NOT ({_key_null(spec, '__t')})"
    )


def _joined(spec: DiffSpec) -> str:
    """Full outer join on the key; equal pairs get a NULL key, so they group into one row."""
    same = f"{_col(HASH, '__l')} = {_col(HASH, '__r')}"
    projections = [
        _as(
            f"CASE WHEN {same} THEN NULL "
            f"ELSE COALESCE({_col(key_alias(i), '__l')}, {_col(key_alias(i), '__r')}) END",
            key_alias(i),
        )
        for i in range(len(spec.key))
    ]
    projections += [_as(_col(key_alias(0), "__l"), "__lp"), _as(_col(key_alias(0), "__r"), "__rp")]
    projections += [
        _as(_col(right_value(i), "__r"), right_value(i)) for i in range(len(spec.columns))
    ]
    on = " AND ".join(
        f"{_col(key_alias(i), '__l')} = {_col(key_alias(i), '__r')}" for i in range(len(spec.key))
    )
    return (
        f"SELECT {', '.join(projections)} "
        f'FROM ({_side_pairs(spec, spec.left, "left")}) AS "__l" '
        f'FULL OUTER JOIN ({_side_pairs(spec, spec.right, "right")}) AS "__r" ON {on}'
    )


def _grouped(spec: DiffSpec) -> str:
    n_left, n_right = f"COUNT({_quote('__lp')})", f"COUNT({_quote('__rp')})"

    def both(a: int, b: int) -> str:
        return f"{n_left} = {a} AND {n_right} = {b}"

    kind = (
        f"CASE WHEN {_col(key_alias(0))} IS NULL THEN 'same' "
        f"WHEN {both(1, 1)} THEN '{CHANGED}' WHEN {both(1, 0)} THEN '{REMOVED}' "
        f"WHEN {both(0, 1)} THEN '{ADDED}' ELSE 'duplicate' END"
    )
    projections = [*_keys(spec), _as(n_left, N_LEFT), _as(n_right, N_RIGHT), _as(kind, KIND)]
    projections += [
        _as(f"ANY_VALUE({_col(right_value(i))})", right_value(i)) for i in range(len(spec.columns))
    ]
    return (
        f'SELECT {", ".join(projections)} FROM ({_joined(spec)}) AS "__j" '
        f"GROUP BY {', '.join(_keys(spec))}"
    )


def match(spec: DiffSpec) -> str:
    """The grouped join plus the base values of changed and removed keys, compared per column,
    into `spec.detail_table`."""
    projections = [*_keys(spec, "__m"), _col(N_LEFT, "__m"), _col(N_RIGHT, "__m")]
    projections.append(_col(KIND, "__m"))
    for index, column in enumerate(spec.columns):
        left, right = _col(column.left_name, "__l"), _col(right_value(index), "__m")
        projections += [_as(left, left_value(index)), _as(right, right_value(index))]
        projections.append(_as(f"{left} IS DISTINCT FROM {right}", differs(index)))
    lookup = " AND ".join(
        [
            f"{_col(KIND, '__m')} IN ('{CHANGED}', '{REMOVED}')",
            *[
                f"{_col(k.name, '__l')} = {_col(key_alias(i), '__m')}"
                for i, k in enumerate(spec.key)
            ],
        ]
    )
    query = (
        f'SELECT {", ".join(projections)} FROM ({_grouped(spec)}) AS "__m" '
        f'LEFT JOIN {_relation(spec.left)} AS "__l" ON {lookup}'
    )
    return f"CREATE TEMPORARY TABLE {_quote(spec.detail_table)} AS {query}"


def match_exact(spec: DiffSpec) -> str:
    """Keys repeat (rare): the exact aggregate, built by `diffing.sql` (sqlglot loads here)."""
    from dataops_dev.diffing import sql

    return sql.SQLGLOT_TEXT.match_exact(spec)


# --------------------------------------------------------------------------------------------
# Step 2: counts and examples from the mismatch set (`sql.counts_sql`, `sql.examples_sql`)


def counts(spec: DiffSpec) -> str:
    n_left, n_right, other = _col(N_LEFT), _col(N_RIGHT), f"{_col(KIND)} <> 'same'"
    gt1_left, gt1_right = f"{other} AND {n_left} > 1", f"{other} AND {n_right} > 1"
    projections = [
        _as(_count_if(_kind_is(ADDED)), "added"),
        _as(_count_if(_kind_is(REMOVED)), "removed"),
        _as(_count_if(_kind_is(CHANGED)), "candidates"),
        _as(_count_if(_is_changed_row(spec)), "changed"),
        _as(_count_if(gt1_left), "duplicate_left"),
        _as(_count_if(gt1_right), "duplicate_right"),
        _as(_sum_if(n_left, gt1_left), "duplicate_rows_left"),
        _as(_sum_if(n_right, gt1_right), "duplicate_rows_right"),
        _as(_sum_if(n_left, _kind_is("duplicate")), "excluded_left"),
        _as(_sum_if(n_right, _kind_is("duplicate")), "excluded_right"),
        _as(_sum_if(n_left, other), "mismatch_left"),
        _as(_sum_if(n_left, "TRUE"), "pairs_left"),
        _as(_sum_if(n_right, "TRUE"), "pairs_right"),
    ]
    projections += [
        _as(_count_if(f"{_kind_is(CHANGED)} AND {_col(differs(i))}"), f"c{i}")
        for i in range(len(spec.columns))
    ]
    return f"SELECT {', '.join(projections)} FROM {_quote(spec.detail_table)}"


def examples(spec: DiffSpec, column_examples: int) -> str:
    """Each list picked on the key columns alone, then joined back to its rows."""
    keys = ", ".join(_keys(spec))
    table = _quote(spec.detail_table)

    def tagged(tag: int, rank: str, wanted: str, limit: int, name: str) -> str:
        picked = f"SELECT {keys} FROM {table} WHERE {wanted} ORDER BY {keys} LIMIT {limit}"
        return (
            f"SELECT {_as(str(tag), EXAMPLE_OF)}, {_as(rank, RANK)}, {keys} "
            f"FROM ({picked}) AS {_quote(name)}"
        )

    parts: list[str] = []
    if spec.example_rows:
        rank = f"ROW_NUMBER() OVER (ORDER BY {keys})"
        for kind in (CHANGED, REMOVED, ADDED):
            wanted = _is_changed_row(spec) if kind == CHANGED else _kind_is(kind)
            parts.append(tagged(ROW_EXAMPLES, rank, wanted, spec.example_rows, f"__{kind}"))
    if column_examples:
        for index in range(len(spec.columns)):
            wanted = f"{_kind_is(CHANGED)} AND {_col(differs(index))}"
            parts.append(tagged(index, "0", wanted, column_examples, f"__x{len(parts)}"))
    assert parts, "the caller asks for row or column examples, or does not call"
    on = " AND ".join(
        f"{_col(key_alias(i), '__p')} = {_col(key_alias(i), '__d')}" for i in range(len(spec.key))
    )
    order = [_col(EXAMPLE_OF, "__p"), _col(RANK, "__p"), _col(KIND, "__d"), *_keys(spec, "__d")]
    return (
        f'SELECT {_col(EXAMPLE_OF, "__p")}, {_col(RANK, "__p")}, "__d".* '
        f'FROM ({" UNION ALL ".join(parts)}) AS "__p" INNER JOIN {table} AS "__d" ON {on} '
        f"ORDER BY {', '.join(order)}"
    )


def drop(table: str, dialect: str) -> list[str]:
    return [f"DROP TABLE IF EXISTS {_quote(table)}"]
