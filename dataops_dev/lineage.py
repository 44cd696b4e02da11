"""Column-level lineage of a dbt project: each model's compiled SQL is qualified once with sqlglot,
walked scope by scope for all output columns at once, and composed over the manifest's DAG.

Edges carry a kind: value edges (pass_through, renamed, derived, aggregated) follow SELECT
expressions; row edges (filter, join_key, group_key) come from WHERE/HAVING/QUALIFY, JOIN ON/USING
and GROUP BY/DISTINCT, which sqlglot's own `lineage()` does not follow. What cannot be resolved is
an `unknown` edge, never dropped. Results are cached per model under `<state_dir>/cache/lineage/`,
keyed by the compiled SQL and the upstream schemas, so an unchanged project re-reads in milliseconds.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import multiprocessing
import multiprocessing.context
import os
import queue
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import MappingSchema

from dataops_dev import static_columns
from dataops_dev.atomic import write_text_atomic
from dataops_dev.dbt.dialects import ADAPTER_DIALECTS
from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.reporting import NULL_REPORTER, Reporter, task

# Bump when the walk below changes what it produces: it is part of every cache key.
ALGORITHM_VERSION = "6"
STAR = "*"
# Every table reference is renamed to `<_DB>.t<n>` before qualifying, so the schema has one
# nesting depth whatever the environment's database is called (see `_map_tables`).
_DB = "dataops_rel"


class EdgeKind(str, Enum):
    """How an upstream column reaches a downstream column."""

    PASS_THROUGH = "pass_through"
    """Selected as is, same name."""
    RENAMED = "renamed"
    """Selected as is under another name."""
    DERIVED = "derived"
    """Part of an expression (CASE, arithmetic, function, window)."""
    AGGREGATED = "aggregated"
    """Inside an aggregate function: the value depends on a group of rows."""
    FILTER = "filter"
    """Used in WHERE / HAVING / QUALIFY: decides which rows exist."""
    JOIN_KEY = "join_key"
    """Used in a JOIN condition: decides which rows match."""
    GROUP_KEY = "group_key"
    """Used in GROUP BY or DISTINCT: decides the grain."""
    UNKNOWN = "unknown"
    """Could not be resolved statically (unexpanded `*`, Python model, unparsable SQL)."""

    @property
    def affects_rows(self) -> bool:
        return self in _ROW_KINDS


_ROW_KINDS = frozenset({EdgeKind.FILTER, EdgeKind.JOIN_KEY, EdgeKind.GROUP_KEY})
_KINDS = {kind.value: kind for kind in EdgeKind}
_VALUE_RANK = {
    EdgeKind.PASS_THROUGH: 0,
    EdgeKind.RENAMED: 1,
    EdgeKind.DERIVED: 2,
    EdgeKind.AGGREGATED: 3,
    EdgeKind.UNKNOWN: 4,
}


@dataclass(frozen=True, order=True)
class ColumnEdge:
    """One edge between columns; nodes are manifest unique ids, columns are lower-case names
    (`*` when the column set itself is unknown)."""

    source_node: str
    source_column: str
    target_node: str
    target_column: str
    kind: EdgeKind

    def to_dict(self, names: Mapping[str, str] | None = None) -> dict[str, str]:
        names = names or {}
        source = names.get(self.source_node, self.source_node)
        target = names.get(self.target_node, self.target_node)
        return {
            "from": f"{source}.{self.source_column}",
            "to": f"{target}.{self.target_column}",
            "kind": self.kind.value,
        }


@dataclass(frozen=True)
class ModelLineage:
    """Lineage of one model: its output columns and every edge into them."""

    unique_id: str
    columns: tuple[str, ...] | None
    """Output columns in order; None when they cannot be known statically."""
    edges: tuple[ColumnEdge, ...]
    unknown_reason: str | None = None
    """Why some or all of the lineage is `unknown` (None when everything resolved)."""
    cache_key: str = ""
    row_sources: tuple[str, ...] | None = None
    """Nodes whose rows decide this model's rows (FROM / inner joins); the others are only
    LEFT-joined, so a row change there changes values here, not rows. None: unknown."""

    def to_json(self) -> dict[str, Any]:
        return {
            "unique_id": self.unique_id,
            "columns": list(self.columns) if self.columns is not None else None,
            "edges": [
                [e.source_node, e.source_column, e.target_column, e.kind.value] for e in self.edges
            ],
            "unknown_reason": self.unknown_reason,
            "cache_key": self.cache_key,
            "row_sources": list(self.row_sources) if self.row_sources is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelLineage:
        uid = data["unique_id"]
        columns = data.get("columns")
        return cls(
            unique_id=uid,
            columns=tuple(columns) if columns is not None else None,
            edges=tuple(ColumnEdge(s, sc, uid, tc, _KINDS[k]) for s, sc, tc, k in data["edges"]),
            unknown_reason=data.get("unknown_reason"),
            cache_key=data.get("cache_key", ""),
            row_sources=tuple(data["row_sources"]) if data.get("row_sources") is not None else None,
        )


@dataclass(frozen=True)
class LineageStats:
    models: int
    computed: int
    cached: int
    unknown: int


@dataclass(frozen=True)
class ProjectLineage:
    """Lineage of every model of a manifest, plus the graph walks the CLI and impact need."""

    models: Mapping[str, ModelLineage]
    schemas: Mapping[str, tuple[str, ...] | None]
    """Output columns of every node (models, seeds, sources); None when unknown."""
    names: Mapping[str, str]
    """unique id -> display name (model name, seed name, `source_name.table_name`)."""
    stats: LineageStats
    _children: dict[tuple[str, str], list[ColumnEdge]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for model in self.models.values():
            for edge in model.edges:
                self._children.setdefault((edge.source_node, edge.source_column), []).append(edge)

    def edges(self) -> Iterator[ColumnEdge]:
        for uid in sorted(self.models):
            yield from self.models[uid].edges

    def edges_into(self, node: str, column: str | None = None) -> list[ColumnEdge]:
        model = self.models.get(node)
        if model is None:
            return []
        return [e for e in model.edges if column is None or e.target_column in (column, STAR)]

    def edges_from(self, node: str, column: str | None = None) -> list[ColumnEdge]:
        if column is not None:
            return list(self._children.get((node, column), ())) + list(
                self._children.get((node, STAR), ()) if column != STAR else ()
            )
        return [e for (n, _), edges in self._children.items() if n == node for e in edges]

    def upstream(self, node: str, column: str | None = None) -> list[ColumnEdge]:
        """Every edge on the paths into `node.column` (all columns when None), transitively,
        nearest first."""

        def step(edge: ColumnEdge) -> list[ColumnEdge]:
            if edge.source_node not in self.models:
                return []
            col = None if edge.source_column == STAR else edge.source_column
            return self.edges_into(edge.source_node, col)

        return _breadth_first(self.edges_into(node, column), step)

    def downstream(self, node: str, column: str | None = None) -> list[ColumnEdge]:
        """Every edge on the paths out of `node.column` (all columns when None), transitively,
        nearest first."""

        def step(edge: ColumnEdge) -> list[ColumnEdge]:
            col = None if edge.target_column == STAR else edge.target_column
            return self.edges_from(edge.target_node, col)

        return _breadth_first(self.edges_from(node, column), step)


def _breadth_first(
    start: list[ColumnEdge], step: Callable[[ColumnEdge], list[ColumnEdge]]
) -> list[ColumnEdge]:
    seen: set[ColumnEdge] = set()
    order: list[ColumnEdge] = []
    frontier = sorted(set(start))
    while frontier:
        following: set[ColumnEdge] = set()
        for edge in frontier:
            seen.add(edge)
            order.append(edge)
        for edge in frontier:
            following.update(e for e in step(edge) if e not in seen)
        frontier = sorted(following)
    return order


# --------------------------------------------------------------------------------------------
# Relations: compiled SQL names tables by the environment's database; we map them to nodes by
# (schema, identifier) so the same code gives the same lineage in every environment.


@dataclass(frozen=True)
class RelationIndex:
    by_schema_name: Mapping[tuple[str, str], str]
    by_name: Mapping[str, str]
    """Identifier -> unique id, only for identifiers that are unique in the project."""

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> RelationIndex:
        by_schema_name: dict[tuple[str, str], str] = {}
        counts: dict[str, list[str]] = {}
        for node in manifest.relations():
            ident = node.identifier.lower()
            if node.schema:
                by_schema_name[(node.schema.lower(), ident)] = node.unique_id
            counts.setdefault(ident, []).append(node.unique_id)
        by_name = {name: uids[0] for name, uids in counts.items() if len(uids) == 1}
        return cls(by_schema_name, by_name)

    def resolve(self, table: exp.Table) -> str | None:
        name = table.name.lower()
        if table.db:
            uid = self.by_schema_name.get((table.db.lower(), name))
            if uid:
                return uid
        return self.by_name.get(name)


def dialect_for(manifest: Manifest) -> str:
    adapter = str((manifest.data.get("metadata") or {}).get("adapter_type") or "duckdb")
    return ADAPTER_DIALECTS.get(adapter, adapter)


# --------------------------------------------------------------------------------------------
# One model


@dataclass
class PreparedQuery:
    """A model's SQL parsed, mapped to manifest nodes, qualified and scoped (done once)."""

    expression: exp.Expr
    root: Scope
    table_nodes: dict[str, str]
    """Mapped table name (`t<n>`, as normalized) -> unique id (or `ext:<name>` when unmapped)."""
    dialect: str
    lower_names: bool


class LineageError(Exception):
    """The SQL could not be parsed or scoped; the model's lineage becomes `unknown`."""


def _lower_names(dialect: str) -> bool:
    # Snowflake folds unquoted names to upper case; dbt projects name columns in lower case.
    return Dialect.get_or_raise(dialect).NORMALIZATION_STRATEGY == NormalizationStrategy.UPPERCASE


def prepare(
    sql: str,
    dialect: str,
    relations: RelationIndex,
    schemas: Mapping[str, tuple[str, ...] | None],
    types: Mapping[str, Mapping[str, str]] | None = None,
) -> PreparedQuery:
    """Parse, map table references to nodes, qualify against `schemas` and build the scope tree."""
    expression = _parse(sql, dialect)
    table_nodes, mapping = _map_tables(expression, relations)
    return _qualified(expression, dialect, table_nodes, mapping, schemas, types)


def _parse(sql: str, dialect: str) -> exp.Query:
    try:
        expression = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.SqlglotError as exc:
        raise LineageError(f"cannot parse: {str(exc).splitlines()[0]}") from exc
    if not isinstance(expression, exp.Query):
        raise LineageError(f"not a query: {type(expression).__name__}")
    return expression


def _qualified(
    expression: exp.Query,
    dialect: str,
    table_nodes: dict[str, str],
    mapping: Mapping[str, str],
    schemas: Mapping[str, tuple[str, ...] | None],
    types: Mapping[str, Mapping[str, str]] | None,
) -> PreparedQuery:
    """A mapped query (`_map_tables`) qualified against its tables' columns, and scoped."""
    lower = _lower_names(dialect)
    schema: dict[str, dict[str, str]] = {}
    for key, uid in mapping.items():
        columns = schemas.get(uid)
        if columns is not None:
            known = (types or {}).get(uid, {})
            schema[key] = {c: known.get(c, "UNKNOWN") for c in columns}
    try:
        mapping_schema = MappingSchema({_DB: schema} if schema else None, dialect=dialect)
        qualified = qualify(
            expression,
            dialect=dialect,
            schema=mapping_schema,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
        root = build_scope(qualified)
    except (sqlglot.errors.SqlglotError, ValueError, KeyError, AssertionError) as exc:
        # AssertionError: sqlglot asserts a projection is aliased where a star stayed
        # unexpanded (`SELECT * ... GROUP BY 1` over a parent of unknown columns).
        raise LineageError(f"cannot qualify: {str(exc).splitlines()[0]}") from exc
    if root is None:
        raise LineageError("no query scope")
    normalized = {(k.upper() if lower else k): v for k, v in table_nodes.items()}
    return PreparedQuery(qualified, root, normalized, dialect, lower)


def columns_of(
    sql: str,
    dialect: str,
    relations: RelationIndex,
    schemas: Mapping[str, tuple[str, ...] | None],
    types: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[str, ...] | None:
    """`output_columns(prepare(...))` (None also when `prepare` fails), read without qualifying
    where `static_columns` follows the query (an ancestor computed only for its columns)."""
    try:
        expression = _parse(sql, dialect)
        table_nodes, mapping = _map_tables(expression, relations)
        read = Dialect.get_or_raise(dialect)
        if static_columns.followed(expression, read):
            names = static_columns.output_names(expression, read, table_nodes, schemas)
            if not isinstance(names, static_columns.Unsure):
                return _as_output_columns(names, _lower_names(dialect))
            # The static reading normalized the query in place: qualify a fresh one.
            expression = _parse(sql, dialect)
            table_nodes, mapping = _map_tables(expression, relations)
        return output_columns(_qualified(expression, dialect, table_nodes, mapping, schemas, types))
    except LineageError:
        return None


def _as_output_columns(names: list[str], lower: bool) -> tuple[str, ...] | None:
    if static_columns.STAR in names:
        return None
    return tuple(output_names(name.lower() if lower else name for name in names))


_EPHEMERAL_PREFIX = "__dbt__cte__"


def _map_tables(expression: exp.Expr, relations: RelationIndex) -> tuple[dict[str, str], dict]:
    # dbt inlines ephemeral models as `__dbt__cte__<name>` CTEs: drop those CTEs and read the
    # ephemeral model as a relation, so edges point at it (its own lineage comes from its SQL).
    ephemeral: dict[str, str] = {}
    for cte in list(expression.find_all(exp.CTE)):
        alias = cte.alias_or_name.lower()
        if alias.startswith(_EPHEMERAL_PREFIX):
            uid = relations.by_name.get(alias[len(_EPHEMERAL_PREFIX) :])
            if uid is not None:
                ephemeral[alias] = uid
                with_ = cte.parent
                cte.pop()
                if isinstance(with_, exp.With) and not with_.expressions:
                    with_.pop()
    cte_names = {cte.alias_or_name.lower() for cte in expression.find_all(exp.CTE)}
    table_nodes: dict[str, str] = {}
    by_uid: dict[str, str] = {}
    for table in list(expression.find_all(exp.Table)):
        if not table.name or isinstance(table.this, exp.Func):
            continue
        if not table.db and table.name.lower() in cte_names:
            continue
        uid = (
            ephemeral.get(table.name.lower())
            or relations.resolve(table)
            or f"ext:{'.'.join(p.name for p in table.parts).lower()}"
        )
        key = by_uid.get(uid)
        if key is None:
            key = f"t{len(by_uid)}"
            by_uid[uid] = key
            table_nodes[key] = uid
        if not table.alias:
            # Keep the original name as alias so `stg_orders.col` still finds its table.
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
        table.set("catalog", None)
        table.set("db", exp.to_identifier(_DB))
        table.set("this", exp.to_identifier(key))
    return table_nodes, {key: uid for uid, key in by_uid.items()}


def referenced_nodes(sql: str, dialect: str, relations: RelationIndex) -> set[str]:
    """The project nodes a query reads (tables and inlined ephemeral models), as `prepare`
    maps them; empty when the SQL does not parse (its lineage is then unknown anyway)."""
    try:
        expression = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return set()
    _names, mapping = _map_tables(expression, relations)
    return {uid for uid in mapping.values() if not uid.startswith("ext:")}


# (node, column, is_row): a value input or a row input (filter/join/group) of a column.
Leaf = tuple[str, str, bool]
Leaves = dict[Leaf, EdgeKind]


class _Walker:
    """All-columns lineage over one prepared query, memoized per (scope, column).

    A column's map holds its value inputs and the row inputs that decide *its* values only
    (the ON condition of a LEFT JOIN it reads through, a scalar subquery's filter). Row inputs
    of a whole scope (WHERE, inner-join ON, GROUP BY) are in `rows()`.
    """

    def __init__(self, prepared: PreparedQuery) -> None:
        self.p = prepared
        self.value_memo: dict[tuple[int, str | int], Leaves] = {}
        self.rows_memo: dict[int, Leaves] = {}
        self.row_sources_memo: dict[int, set[str]] = {}
        self.scope_of: dict[int, Scope] = {}
        for scope in prepared.root.traverse():
            self.scope_of[id(scope.expression)] = scope
        self.unknown: list[str] = []

    def name(self, identifier: str) -> str:
        return _named(self.p, identifier)

    def leaf_table(self, table: exp.Table) -> str:
        return self.p.table_nodes.get(table.name, f"ext:{table.name}")

    # value lineage ------------------------------------------------------------------------

    def value(self, scope: Scope, column: str | int) -> Leaves:
        key = (id(scope), column)
        memo = self.value_memo.get(key)
        if memo is None:
            self.value_memo[key] = {}  # guards against recursive CTE cycles
            memo = self._value(scope, column)
            self.value_memo[key] = memo
        return memo

    def _value(self, scope: Scope, column: str | int) -> Leaves:
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            index = column if isinstance(column, int) else output_index(expression, column)
            result: Leaves = {}
            if index is None:
                return self._unknown_all(scope, f"column {column} not found in set operation")
            for branch in scope.set_operation_scopes:
                _merge(result, self.value(branch, index))
            return result
        if scope.is_udtf:
            return self._udtf(scope)
        if not isinstance(expression, exp.Select):
            return self._unknown_all(scope, f"unsupported scope {type(expression).__name__}")
        selects = expression.selects
        if isinstance(column, int):
            if column >= len(selects):
                return {}
            projection = selects[column]
            name = projection.alias_or_name
        else:
            name = column
            found = next((s for s in selects if s.alias_or_name == column), None)
            if found is None:
                if any(s.is_star for s in selects):
                    return self._star_sources(scope)
                return {}
            projection = found
        if projection.is_star:
            return self._star_sources(scope)
        return self._expression(scope, projection.unalias(), name)

    def _expression(self, scope: Scope, node: exp.Expr, name: str) -> Leaves:
        result: Leaves = {}
        if isinstance(node, exp.Column):
            step = EdgeKind.PASS_THROUGH if node.name == name else EdgeKind.RENAMED
            _merge(result, _composed(step, self.resolve(scope, node)))
            return result
        step = EdgeKind.AGGREGATED if has_aggregate(node) else EdgeKind.DERIVED
        for item in _columns_and_subqueries(node):
            if isinstance(item, exp.Column):
                _merge(result, _composed(step, self.resolve(scope, item)))
                continue
            sub = self._scope_for(item)
            if sub is None:
                continue
            _merge(result, _composed(step, self.value(sub, 0)))
            # The rows of a scalar subquery decide its value: row inputs of this column only.
            _merge(result, self.rows(sub))
        return result

    def _scope_for(self, node: exp.Expr) -> Scope | None:
        if isinstance(node, exp.Subquery):
            return self.scope_of.get(id(node.this)) or self.scope_of.get(id(node))
        return self.scope_of.get(id(node))

    def _udtf(self, scope: Scope) -> Leaves:
        expression = scope.expression
        inner = expression.this if isinstance(expression, exp.Lateral) else None
        result: Leaves = {}
        if isinstance(inner, exp.Subquery):
            sub = self.scope_of.get(id(inner.this))
            if sub is not None:
                for i in range(len(first_select(sub.expression).selects)):
                    _merge(result, self.value(sub, i))
                _merge(result, self.rows(sub))
                return result
        for col in expression.find_all(exp.Column):
            _merge(result, _composed(EdgeKind.DERIVED, self.resolve(scope, col)))
        return result

    def _star_sources(self, scope: Scope) -> Leaves:
        result: Leaves = {}
        for source in scope.sources.values():
            if isinstance(source, exp.Table):
                result[(self.leaf_table(source), STAR, False)] = EdgeKind.UNKNOWN
            else:
                _merge(result, self._unknown_all(source, "unexpanded *"))
        self.unknown.append("SELECT * over a relation with unknown columns")
        return result

    def _unknown_all(self, scope: Scope, reason: str) -> Leaves:
        self.unknown.append(reason)
        result: Leaves = {}
        for table in scope.expression.find_all(exp.Table):
            result[(self.leaf_table(table), STAR, False)] = EdgeKind.UNKNOWN
        return result

    def resolve(self, scope: Scope, column: exp.Column, *, plain: bool = False) -> Leaves:
        """Leaves behind a column reference, looking through outer scopes for correlation."""
        table = column.table
        current: Scope | None = scope
        while current is not None:
            source = current.sources.get(table) if table else None
            if source is not None:
                return self._from_source(current, table, source, column.name, plain=plain)
            current = current.parent
        if not table:
            named = [(k, s) for k, s in scope.sources.items() if k]
            if len(named) == 1:
                return self._from_source(scope, named[0][0], named[0][1], column.name, plain=plain)
        self.unknown.append(f"unresolved column {column.sql()}")
        return {("?", self.name(column.name), False): EdgeKind.UNKNOWN}

    def _from_source(
        self, scope: Scope, alias: str, source: exp.Table | Scope, column: str, *, plain: bool
    ) -> Leaves:
        if isinstance(source, exp.Table):
            result: Leaves = {
                (self.leaf_table(source), self.name(column), False): EdgeKind.PASS_THROUGH
            }
        else:
            result = dict(self.value(source, column))
        join = None if plain else outer_join(scope, alias)
        if join is not None:
            # Through a LEFT/FULL JOIN, the join condition and the joined rows decide this
            # column's values, not the row set of the query.
            on = join.args.get("on")
            if on is not None:
                self._clause(scope, on, EdgeKind.JOIN_KEY, result, plain=True)
            for using in join.args.get("using") or ():
                for other_alias, other in scope.sources.items():
                    if other_alias and isinstance(other, exp.Table | Scope):
                        _merge(
                            result,
                            _as_rows(self._from_source_plain(other, using.name), EdgeKind.JOIN_KEY),
                        )
            if isinstance(source, Scope):
                _merge(result, self.rows(source))
        return result

    def _from_source_plain(self, source: exp.Table | Scope, column: str) -> Leaves:
        if isinstance(source, exp.Table):
            return {(self.leaf_table(source), self.name(column), False): EdgeKind.PASS_THROUGH}
        return self.value(source, column)

    # row lineage --------------------------------------------------------------------------

    def rows(self, scope: Scope) -> Leaves:
        memo = self.rows_memo.get(id(scope))
        if memo is None:
            self.rows_memo[id(scope)] = {}
            memo = self._rows(scope)
            self.rows_memo[id(scope)] = memo
        return memo

    def _rows(self, scope: Scope) -> Leaves:
        result: Leaves = {}
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            for branch in scope.set_operation_scopes:
                _merge(result, self.rows(branch))
            if expression.args.get("distinct"):
                for i in range(len(first_select(expression).selects)):
                    _merge(result, _as_rows(self.value(scope, i), EdgeKind.GROUP_KEY))
            return result
        if not isinstance(expression, exp.Select):
            return result
        for arg, kind in (
            ("where", EdgeKind.FILTER),
            ("having", EdgeKind.FILTER),
            ("qualify", EdgeKind.FILTER),
            ("group", EdgeKind.GROUP_KEY),
        ):
            clause = expression.args.get(arg)
            if clause is not None:
                self._clause(scope, clause, kind, result)
        outer = set()
        for join in expression.args.get("joins") or ():
            if is_outer_join(join):
                outer.add(join.alias_or_name)
                continue
            for arg in ("on", "match_condition"):
                clause = join.args.get(arg)
                if clause is not None:
                    self._clause(scope, clause, EdgeKind.JOIN_KEY, result)
            for using in join.args.get("using") or ():
                for alias, source in scope.sources.items():
                    if alias and alias not in outer:
                        _merge(
                            result,
                            _as_rows(
                                self._from_source_plain(source, using.name), EdgeKind.JOIN_KEY
                            ),
                        )
        if expression.args.get("distinct"):
            for projection in expression.selects:
                if not projection.is_star:
                    leaves = self._expression(scope, projection.unalias(), projection.alias_or_name)
                    _merge(result, _as_rows(leaves, EdgeKind.GROUP_KEY))
        for alias, source in scope.sources.items():
            if isinstance(source, Scope) and alias not in outer and _is_selected(scope, alias):
                _merge(result, self.rows(source))
        return result

    def row_sources(self, scope: Scope) -> set[str]:
        """Nodes whose rows decide this scope's row set (FROM and inner joins, transitively)."""
        memo = self.row_sources_memo.get(id(scope))
        if memo is not None:
            return memo
        self.row_sources_memo[id(scope)] = set()
        found: set[str] = set()
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            for branch in scope.set_operation_scopes:
                found |= self.row_sources(branch)
        elif isinstance(expression, exp.Select):
            outer = {
                j.alias_or_name for j in expression.args.get("joins") or () if is_outer_join(j)
            }
            for alias, source in scope.sources.items():
                if alias in outer or not _is_selected(scope, alias):
                    continue
                if isinstance(source, exp.Table):
                    found.add(self.leaf_table(source))
                else:
                    found |= self.row_sources(source)
        elif scope.is_udtf:
            for source in scope.sources.values():
                if isinstance(source, Scope):
                    found |= self.row_sources(source)
        self.row_sources_memo[id(scope)] = found
        return found

    def _clause(
        self, scope: Scope, clause: exp.Expr, kind: EdgeKind, result: Leaves, *, plain: bool = False
    ) -> None:
        for item in _columns_and_subqueries(clause):
            if isinstance(item, exp.Column):
                _merge(result, _as_rows(self.resolve(scope, item, plain=plain), kind))
                continue
            sub = self._scope_for(item)
            if sub is not None:
                for i in range(len(first_select(sub.expression).selects)):
                    _merge(result, _as_rows(self.value(sub, i), kind))
                _merge(result, self.rows(sub))


def is_outer_join(join: exp.Join) -> bool:
    """LEFT or FULL join, with or without the OUTER keyword (sqlglot keeps it as the kind)."""
    side = (join.side or "").upper()
    kind = (join.kind or "").upper()
    return side in ("LEFT", "FULL") and kind in ("", "OUTER")


def outer_join(scope: Scope, alias: str) -> exp.Join | None:
    """The LEFT/FULL join that brings source `alias` into the scope's SELECT, if any."""
    select = scope.expression
    if not isinstance(select, exp.Select):
        return None
    for join in select.args.get("joins") or ():
        if join.alias_or_name == alias and is_outer_join(join):
            return join
    return None


def _is_selected(scope: Scope, alias: str) -> bool:
    """Whether `alias` is a FROM/JOIN source of the scope (not a lateral/UDTF helper)."""
    return alias in scope.selected_sources or scope.is_udtf


def output_index(expression: exp.Expr, column: str) -> int | None:
    select = first_select(expression)
    for i, projection in enumerate(select.selects):
        if projection.alias_or_name == column:
            return i
    return None


def first_select(expression: exp.Expr) -> exp.Select:
    while isinstance(expression, exp.SetOperation | exp.Subquery):
        expression = expression.this
    assert isinstance(expression, exp.Select)
    return expression


def _composed(step: EdgeKind, leaves: Leaves) -> Leaves:
    result: Leaves = {}
    for leaf, kind in leaves.items():
        if leaf[2] or kind is EdgeKind.UNKNOWN:
            result[leaf] = kind
        else:
            result[leaf] = step if _VALUE_RANK[step] >= _VALUE_RANK[kind] else kind
    return result


def _as_rows(leaves: Leaves, kind: EdgeKind) -> Leaves:
    """Turn the value inputs of an expression into row inputs of `kind` (row inputs stay)."""
    result: Leaves = {}
    for (node, column, is_row), leaf_kind in leaves.items():
        if is_row:
            _merge(result, {(node, column, True): leaf_kind})
        else:
            new = EdgeKind.UNKNOWN if leaf_kind is EdgeKind.UNKNOWN else kind
            _merge(result, {(node, column, True): new})
    return result


_ROW_PRIORITY = {
    EdgeKind.JOIN_KEY: 0,
    EdgeKind.GROUP_KEY: 1,
    EdgeKind.FILTER: 2,
    EdgeKind.UNKNOWN: 3,
}


def _merge(into: Leaves, other: Mapping[Leaf, EdgeKind]) -> None:
    for leaf, kind in other.items():
        current = into.get(leaf)
        if current is None:
            into[leaf] = kind
        elif leaf[2]:
            if _ROW_PRIORITY.get(kind, 9) < _ROW_PRIORITY.get(current, 9):
                into[leaf] = kind
        elif _VALUE_RANK.get(kind, 0) > _VALUE_RANK.get(current, 0):
            into[leaf] = kind


def has_aggregate(node: exp.Expr) -> bool:
    for agg in node.find_all(exp.AggFunc):
        # An aggregate inside a window keeps the row grain; only a bare aggregate aggregates.
        if not isinstance(agg.parent, exp.Window) and agg.find_ancestor(exp.Subquery) is None:
            return True
    return False


def _columns_and_subqueries(node: exp.Expr) -> Iterator[exp.Column | exp.Expr]:
    """Columns of this scope inside `node`, plus nested subqueries (not descended into)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, exp.Column):
            yield current
            continue
        if isinstance(current, exp.Subquery | exp.Query) and current is not node:
            yield current
            continue
        stack.extend(current.iter_expressions())


def model_lineage_from_sql(
    unique_id: str,
    sql: str,
    dialect: str,
    relations: RelationIndex,
    schemas: Mapping[str, tuple[str, ...] | None],
    *,
    types: Mapping[str, Mapping[str, str]] | None = None,
    cache_key: str = "",
) -> ModelLineage:
    """All-columns lineage of one model from its compiled SQL (never raises on bad SQL)."""
    try:
        prepared = prepare(sql, dialect, relations, schemas, types)
    except LineageError as exc:
        return _opaque(unique_id, (), str(exc), cache_key)
    return lineage_of_prepared(unique_id, prepared, cache_key=cache_key)


def output_columns(prepared: PreparedQuery) -> tuple[str, ...] | None:
    """The query's output columns, as `lineage_of_prepared` gives them (None: a `*` is left),
    without walking its lineage."""
    selects = first_select(prepared.root.expression).selects
    if any(p.is_star for p in selects):
        return None
    return tuple(output_names(_named(prepared, p.alias_or_name) for p in selects))


def _named(prepared: PreparedQuery, identifier: str) -> str:
    return identifier.lower() if prepared.lower_names else identifier


def lineage_of_prepared(
    unique_id: str, prepared: PreparedQuery, cache_key: str = ""
) -> ModelLineage:
    walker = _Walker(prepared)
    root = prepared.root
    select = first_select(root.expression)
    edges: set[ColumnEdge] = set()
    columns: list[str] | None = []
    names = output_names(_named(prepared, p.alias_or_name) for p in select.selects)
    for index, projection in enumerate(select.selects):
        leaves = walker.value(root, index)
        if projection.is_star:
            columns = None
            for (node, col, _row), kind in leaves.items():
                edges.add(ColumnEdge(node, col, unique_id, STAR, kind))
            continue
        out = names[index]
        if columns is not None:
            columns.append(out)
        for (node, col, is_row), kind in leaves.items():
            if not is_row and kind in (EdgeKind.PASS_THROUGH, EdgeKind.RENAMED):
                kind = EdgeKind.PASS_THROUGH if col == out else EdgeKind.RENAMED
            edges.add(ColumnEdge(node, col, unique_id, out, kind))
    targets = columns if columns is not None else [STAR]
    for (node, col, _row), kind in walker.rows(root).items():
        for out in targets:
            edges.add(ColumnEdge(node, col, unique_id, out, kind))
    reason = "; ".join(sorted(set(walker.unknown))) or None
    return ModelLineage(
        unique_id,
        tuple(columns) if columns is not None else None,
        tuple(sorted(edges, key=_edge_key)),
        reason,
        cache_key,
        row_sources=tuple(sorted(walker.row_sources(root))),
    )


def output_names(names: Iterable[str]) -> list[str]:
    """A query's output column names as the table gets them: a repeated name is suffixed
    `_1`, `_2`, ... (DuckDB's rule; other engines refuse the duplicate), so two columns never
    collapse into one."""
    seen: set[str] = set()
    result: list[str] = []
    for name in names:
        unique, n = name, 0
        while unique in seen:
            n += 1
            unique = f"{name}_{n}"
        seen.add(unique)
        result.append(unique)
    return result


def _edge_key(edge: ColumnEdge) -> tuple[str, str, str, str, str]:
    # The dataclass order, without its slow generated __lt__.
    return (
        edge.source_node,
        edge.source_column,
        edge.target_node,
        edge.target_column,
        edge.kind.value,
    )


def _opaque(uid: str, parents: Iterable[str], reason: str, cache_key: str = "") -> ModelLineage:
    edges = tuple(sorted(ColumnEdge(p, STAR, uid, STAR, EdgeKind.UNKNOWN) for p in parents))
    return ModelLineage(uid, None, edges, reason, cache_key)


# --------------------------------------------------------------------------------------------
# The project


def node_columns(
    node: Node, catalog: Mapping[str, tuple[str, ...]] | None = None
) -> tuple[str, ...] | None:
    """Columns of a root node (source, seed): the catalog's, else those declared in YAML."""
    if catalog and node.unique_id in catalog:
        return catalog[node.unique_id]
    if node.columns:
        return tuple(c.lower() for c in node.columns)
    return None


def load_catalog(path: Path) -> dict[str, tuple[str, ...]]:
    """Column names per node from dbt's `catalog.json` (missing file: empty)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    result: dict[str, tuple[str, ...]] = {}
    for section in ("nodes", "sources"):
        for uid, entry in (data.get(section) or {}).items():
            cols = sorted((entry.get("columns") or {}).values(), key=lambda c: c.get("index", 0))
            result[uid] = tuple(str(c["name"]).lower() for c in cols)
    return result


def topological_models(manifest: Manifest) -> list[Node]:
    """Models in dependency order (parents first); cycles are broken by name order."""
    return list(manifest.dependency_order)


def cache_key_for(
    sql: str,
    dialect: str,
    parents: Iterable[tuple[str, str, tuple[str, ...] | None]],
) -> str:
    """sha256 of everything a model's lineage depends on: its SQL, dialect, and for each
    referenced node its relation and output columns."""
    digest = hashlib.sha256()
    for part in (ALGORITHM_VERSION, sqlglot.__version__, dialect, sql):
        digest.update(part.encode())
        digest.update(b"\0")
    for uid, relation, columns in sorted(parents, key=lambda p: p[0]):
        digest.update(
            f"{uid}|{relation}|{','.join(columns) if columns is not None else '?'}\n".encode()
        )
    return digest.hexdigest()


def _well_typed(lineage: ModelLineage) -> bool:
    """Every name is text, as a computed result's are (a cache file is not trusted)."""
    names: list[object] = [
        lineage.unique_id,
        *(lineage.columns or ()),
        *(lineage.row_sources or ()),
    ]
    for edge in lineage.edges:
        names += [edge.source_node, edge.source_column, edge.target_column]
    reason_ok = lineage.unknown_reason is None or isinstance(lineage.unknown_reason, str)
    return reason_ok and all(isinstance(name, str) for name in names)


@dataclass(frozen=True)
class ColumnsOnly:
    """A model computed for its output columns only (its children need them, nobody asked for
    its edges): qualified like a full result, not walked."""

    unique_id: str
    columns: tuple[str, ...] | None
    cache_key: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "unique_id": self.unique_id,
            "columns": list(self.columns) if self.columns is not None else None,
            "cache_key": self.cache_key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnsOnly:
        columns = data.get("columns")
        return cls(
            data["unique_id"],
            tuple(columns) if columns is not None else None,
            data.get("cache_key", ""),
        )


Computed = ModelLineage | ColumnsOnly


class LineageCache:
    """One JSON file per model result, named by its cache key (`.columns.json` for a columns-only
    result). Written by rename, without fsync: a cache entry lost or torn by a crash reads as
    missing and is computed again, so durability would only cost time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str, suffix: str = "") -> Path:
        return self.directory / key[:2] / f"{key}{suffix}.json"

    def _read(self, key: str, suffix: str = "") -> dict[str, Any] | None:
        from dataops_dev.statefiles import read_cache_json

        data = read_cache_json(self._path(key, suffix))
        if data is None or data.get("cache_key") != key:
            return None
        return data

    def get(self, key: str) -> ModelLineage | None:
        """The cached result, or None when missing or unusable (it is then recomputed and
        written again: a corrupt cache costs time, never a wrong answer or a crash)."""
        data = self._read(key)
        if data is None:
            return None
        try:
            lineage = ModelLineage.from_json(data)
        except (KeyError, TypeError, ValueError):
            return None
        return lineage if _well_typed(lineage) else None

    def get_columns(self, key: str) -> ColumnsOnly | None:
        """The output columns under `key`: from a full result, else from a columns-only one."""
        full = self.get(key)
        if full is not None:
            return ColumnsOnly(full.unique_id, full.columns, key)
        data = self._read(key, ".columns")
        if data is None:
            return None
        try:
            found = ColumnsOnly.from_json(data)
        except (KeyError, TypeError, ValueError):
            return None
        names: list[object] = [found.unique_id, *(found.columns or ())]
        return found if all(isinstance(name, str) for name in names) else None

    def put(self, result: Computed) -> None:
        suffix = "" if isinstance(result, ModelLineage) else ".columns"
        target = self._path(result.cache_key, suffix)
        text = json.dumps(result.to_json(), separators=(",", ":"))
        write_text_atomic(target, text)


def _relation_label(node: Node | None) -> str:
    if node is None:
        return ""
    return f"{(node.schema or '').lower()}.{node.identifier.lower()}"


# Below this many models left to compute, a pool's start-up costs more than it saves.
PARALLEL_MIN_MODELS = 64
_WORKERS_ENV = "DATAOPS_LINEAGE_WORKERS"


def lineage_workers(requested: int | None = None) -> int:
    """How many processes compute lineage: `requested`, else `$DATAOPS_LINEAGE_WORKERS`,
    else the cores this process may use. 1 means serial, in this process."""
    if requested is None:
        env = os.environ.get(_WORKERS_ENV, "").strip()
        if env.isdigit():
            requested = int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, requested if requested is not None else cores)


def downstream_closure(manifest: Manifest, uids: Iterable[str]) -> set[str]:
    """`uids` and every model or snapshot downstream of them: with `compute_lineage(only=…)`
    (which adds the ancestors) the smallest set whose lineage answers both directions."""
    wanted = set(uids)
    models = {n.unique_id for n in manifest.dependency_order}
    return wanted | (manifest.descendants(wanted) & models)


def compute_lineage(
    manifest: Manifest,
    *,
    dialect: str | None = None,
    cache_dir: Path | None = None,
    sql_for: Callable[[Node], str | None] | None = None,
    catalog: Mapping[str, tuple[str, ...]] | None = None,
    only: Iterable[str] | None = None,
    reporter: Reporter = NULL_REPORTER,
    workers: int | None = None,
    full_ancestors: bool = True,
) -> ProjectLineage:
    """Column lineage of every model of `manifest`, in topological order.

    Args:
        dialect: sqlglot dialect (default: from the manifest's adapter type).
        cache_dir: where per-model results are cached (None: no cache).
        sql_for: the SQL of a model (default: its `compiled_code`); return None for "unknown".
        catalog: columns per node from catalog.json, preferred over YAML-declared columns.
        only: restrict to these models and their ancestors (the rest is not computed); each
            model's result is the same as in the full computation.
        workers: processes for the models not in the cache (default: `lineage_workers()`);
            a pool starts only when at least `PARALLEL_MIN_MODELS` models are left, and the
            result is the same edge for edge as the serial computation.
        full_ancestors: False: the ancestors of `only` outside it are computed for their
            columns (in `schemas`) without their edges (not in `models`).
    """
    targets = [n.unique_id for n in manifest.dependency_order] if only is None else only
    total = len(_ancestors(manifest, set(targets)))
    with (
        LineageRun(manifest, dialect, cache_dir, sql_for, catalog, reporter, workers) as run,
        task(reporter, "lineage", "column lineage", total=total),
    ):
        run.ensure(targets, full_ancestors=full_ancestors)
    return run.result()


def column_lineage(
    manifest: Manifest,
    unique_id: str,
    column: str | None = None,
    *,
    downstream: bool = True,
    dialect: str | None = None,
    cache_dir: Path | None = None,
    sql_for: Callable[[Node], str | None] | None = None,
    catalog: Mapping[str, tuple[str, ...]] | None = None,
    reporter: Reporter = NULL_REPORTER,
    workers: int | None = None,
) -> ProjectLineage:
    """What `lineage MODEL[.COLUMN]` walks, computed on demand: the edges of the models the
    column's upstream reaches, then, level by level while the column reaches further, the
    children of every node reached; every other ancestor of those only for its columns (a
    model's edges depend on its parents' columns, not on their edges), and only where those
    depend on its own ancestors (`_StaticReading`: the others are read from their SQL alone).
    `upstream()` and `downstream()` of the result for `unique_id.column` equal the full
    computation's; so does every model in it, and every column set in `schemas`."""
    models = {n.unique_id for n in manifest.dependency_order}
    with (
        LineageRun(
            manifest, dialect, cache_dir, sql_for, catalog, reporter, workers, prune=True
        ) as run,
        task(reporter, "lineage", "column lineage"),
    ):
        _ensure_upstream(run, models, unique_id, column)
        frontier: set[tuple[str, str | None]] = {(unique_id, column)} if downstream else set()
        seen: set[tuple[str, str | None]] = set()
        while frontier:
            seen |= frontier
            nodes = {node for node, _ in frontier}
            children = {c for n in nodes for c in manifest.child_map.get(n, ()) if c in models}
            run.ensure(children, full_ancestors=False)
            asked: dict[str, set[str | None]] = {}
            for node, col in frontier:
                asked.setdefault(node, set()).add(col)
            following: set[tuple[str, str | None]] = set()
            for child in children:
                for edge in run.results[child].edges:
                    if _follows(edge, asked.get(edge.source_node)):
                        reached = None if edge.target_column == STAR else edge.target_column
                        following.add((edge.target_node, reached))
            frontier = following - seen
    return run.result()


def _ensure_upstream(run: LineageRun, models: set[str], unique_id: str, column: str | None) -> None:
    """Compute the edges of every model `ProjectLineage.upstream(unique_id, column)` steps
    into, level by level (each level's models on the pool together)."""
    # A source or seed has no edges into it: its upstream is empty.
    frontier: set[tuple[str, str | None]] = {(unique_id, column)} if unique_id in models else set()
    seen: set[tuple[str, str | None]] = set()
    while frontier:
        seen |= frontier
        run.ensure({node for node, _ in frontier}, full_ancestors=False)
        following: set[tuple[str, str | None]] = set()
        for node, col in frontier:
            for edge in run.results[node].edges:
                if col is not None and edge.target_column not in (col, STAR):
                    continue
                if edge.source_node in models:
                    reached = None if edge.source_column == STAR else edge.source_column
                    following.add((edge.source_node, reached))
        frontier = following - seen


def _follows(edge: ColumnEdge, asked: set[str | None] | None) -> bool:
    """Whether `ProjectLineage.edges_from(node, column)` holds `edge` for one of the columns
    asked of its source node (None: the whole node)."""
    if not asked:
        return False
    if None in asked or edge.source_column in asked:
        return True
    return edge.source_column == STAR and any(c != STAR for c in asked)


class LineageRun:
    """One lineage computation over a manifest, extended on demand (`ensure`): each model is
    computed once, after its parents, from its parents' and the roots' columns only. A model
    whose edges nobody asked for is computed for its columns only (`ColumnsOnly`).

    A context manager: the process pool, once started, serves every later `ensure` (a caller
    that asks level by level pays its start-up once) and is stopped on leaving."""

    def __init__(
        self,
        manifest: Manifest,
        dialect: str | None,
        cache_dir: Path | None,
        sql_for: Callable[[Node], str | None] | None,
        catalog: Mapping[str, tuple[str, ...]] | None,
        reporter: Reporter,
        workers: int | None,
        *,
        prune: bool = False,
    ) -> None:
        self.manifest = manifest
        self.dialect = dialect or dialect_for(manifest)
        self.relations = RelationIndex.from_manifest(manifest)
        self.cache = LineageCache(cache_dir) if cache_dir is not None else None
        self.sql_for = sql_for or (lambda node: node.compiled_code)
        self._sql: dict[str, str | None] = {}
        self.reporter = reporter
        self.workers = workers
        self.roots: dict[str, tuple[str, ...] | None] = {}
        self.types: dict[str, dict[str, str]] = {}
        self.names: dict[str, str] = {}
        # Only relations: the types and names are looked up for what SQL reads.
        for node in manifest.relations():
            self.names[node.unique_id] = node.display_name
            if node.resource_type in ("seed", "source"):
                self.roots[node.unique_id] = node_columns(node, catalog)
            declared = {c.lower(): i.data_type for c, i in node.columns.items() if i.data_type}
            if declared:
                self.types[node.unique_id] = {c: str(t) for c, t in declared.items()}
        self.order = topological_models(manifest)
        self.position = {n.unique_id: i for i, n in enumerate(self.order)}
        self.schemas: dict[str, tuple[str, ...] | None] = dict(self.roots)
        self.results: dict[str, ModelLineage] = {}
        self.full: set[str] = set()
        """Models whose edges are asked for (the others need only their columns)."""
        self.computed = self.cached = self.unknown = 0
        self.setup = _WorkerSetup(self.dialect, self.relations, self.roots, self.types, cache_dir)
        self.static = _StaticReading(self) if prune else None
        """With it, `ensure(..., full_ancestors=False)` computes only the ancestors whose columns
        depend on their own ancestors (`_StaticReading`)."""
        self._pool: Any = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> LineageRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the pool (terminating its workers), if one was started."""
        self._pool = None
        self._stack.close()

    def _pool_for(self, left: int, n_workers: int) -> Any:
        # Started once enough is left to compute; then kept for every later batch.
        if self._pool is None and left >= PARALLEL_MIN_MODELS and n_workers >= 2:
            # Frozen objects are never scanned by the workers' collector, so the parent's
            # heap stays shared instead of being copied page by page.
            gc.freeze()
            self._stack.callback(gc.unfreeze)
            self._pool = self._stack.enter_context(
                _pool_context().Pool(n_workers, _worker_init, (self.setup,))
            )
        return self._pool

    def inputs_of(self, parents: Iterable[str]) -> dict[str, tuple[str, ...] | None]:
        # A model sees its parents' columns and the roots' (seeds, sources), nothing else: the
        # cache key covers exactly that, and the result cannot depend on which other models
        # happen to be done (serial, parallel and `only=` give the same edges).
        return {p: self.schemas[p] for p in parents if p in self.schemas and p not in self.roots}

    def start(self, node: Node) -> Computed | tuple[str, str]:
        """A result when there is nothing to parse (cache hit, no SQL), else (sql, key)."""
        parents = node.depends_on_nodes
        sql = self.sql_of(node)
        if sql is None:
            reason = "Python model" if node.language != "sql" else "no compiled SQL for the model"
            return _opaque(node.unique_id, parents, reason)
        key = cache_key_for(
            sql,
            self.dialect,
            ((p, _relation_label(self.manifest.get(p)), self.schemas.get(p)) for p in parents),
        )
        hit: Computed | None = None
        if self.cache is not None:
            full = node.unique_id in self.full
            hit = self.cache.get(key) if full else self.cache.get_columns(key)
        if hit is not None and hit.unique_id == node.unique_id:
            self.cached += 1
            return hit
        return sql, key

    def sql_of(self, node: Node) -> str | None:
        """The model's SQL (None for a Python model), rendered once per run: the static
        reading and the computation may both ask for it."""
        if node.language != "sql":
            return None
        if node.unique_id not in self._sql:
            self._sql[node.unique_id] = self.sql_for(node)
        return self._sql[node.unique_id]

    def finish(self, node: Node, result: Computed, fresh: bool) -> None:
        self.computed += fresh
        self.reporter.task_advanced("lineage")
        if isinstance(result, ColumnsOnly):
            self.schemas[node.unique_id] = result.columns
            return
        parents = node.depends_on_nodes
        if result.columns is None and not result.edges and parents:
            # Unparsable SQL still reads its parents: keep the edges, as unknown.
            result = _opaque(node.unique_id, parents, result.unknown_reason or "", result.cache_key)
        if result.unknown_reason:
            self.unknown += 1
        self.results[node.unique_id] = result
        self.schemas[node.unique_id] = result.columns

    def compute_here(self, node: Node, sql: str, key: str) -> Computed:
        inputs = self.inputs_of(node.depends_on_nodes)
        return _compute(self.setup, node.unique_id, sql, inputs, key, node.unique_id in self.full)

    def ensure(
        self, uids: Iterable[str], *, full_ancestors: bool = True, edges: bool = True
    ) -> None:
        """Compute the lineage of `uids` (only their columns when not `edges`), and of their
        ancestors (only their columns when not `full_ancestors`), those not computed yet."""
        asked = set(uids)
        if self.static is not None and edges and not full_ancestors:
            wanted = asked | self._needed_ancestors(asked)
        else:
            wanted = _ancestors(self.manifest, asked)
        if edges:
            self.full |= wanted if full_ancestors else asked
        order = [
            n
            for n in self.order
            if n.unique_id in wanted
            and n.unique_id not in self.results
            and (n.unique_id in self.full or n.unique_id not in self.schemas)
        ]
        n_workers = min(lineage_workers(self.workers), max(1, len(order) // 8))
        if self._pool is None and (n_workers < 2 or len(order) < PARALLEL_MIN_MODELS):
            for node in order:
                started = self.start(node)
                if isinstance(started, tuple):
                    self.finish(node, self.compute_here(node, *started), fresh=True)
                else:
                    self.finish(node, started, fresh=False)
            return
        _schedule(
            order,
            self.start,
            self.finish,
            self.compute_here,
            lambda node, sql, key: (
                sql,
                self.inputs_of(node.depends_on_nodes),
                key,
                node.unique_id in self.full,
            ),
            lambda left: self._pool_for(left, n_workers),
        )

    def _needed_ancestors(self, asked: set[str]) -> set[str]:
        """The ancestors of `asked` to compute for their columns: every parent of what is
        computed, except those whose columns `self.static` reads whatever their own ancestors
        give (set here, their ancestors are not needed for them)."""
        assert self.static is not None
        needed: set[str] = set()
        stack = [p for uid in asked for p in self._parents_of(uid)]
        while stack:
            uid = stack.pop()
            if uid in asked or uid in needed or uid in self.schemas or uid not in self.position:
                continue
            columns = self.static.columns(uid)
            if columns is not None:
                self.schemas[uid] = columns
                self.computed += 1
                continue
            needed.add(uid)
            stack.extend(self._parents_of(uid))
        return needed

    def _parents_of(self, uid: str) -> tuple[str, ...]:
        node = self.manifest.get(uid)
        return node.depends_on_nodes if node is not None else ()

    def result(self) -> ProjectLineage:
        ordered = {
            uid: self.results[uid] for uid in sorted(self.results, key=self.position.__getitem__)
        }
        stats = LineageStats(len(ordered), self.computed, self.cached, self.unknown)
        return ProjectLineage(ordered, dict(self.schemas), self.names, stats)


_PARSED_KEPT = 256
"""Parsed queries `_StaticReading` keeps (a parse is ~1 ms, a tree ~0.15 MB: at most ~40 MB)."""


class _StaticReading:
    """Output columns of models that hold whatever their parents' own parents are.

    A parent's columns are either the names it gives when it qualifies, or None when it does
    not (it reads a column its source lacks). When a model's SQL reads the same names with
    every such parent unknown (None) and with every parent at the names it gives (its `own`
    columns, read with its own parents unknown), no mix of the two can change it: unknown
    sources only leave stars unexpanded (the names read had none) and check no column, and
    the known ones hold every column the model reads. Then its columns are those names,
    exactly as qualifying it would give, without computing its ancestors; otherwise (None)
    they are computed from the parents' computed columns."""

    def __init__(self, run: LineageRun) -> None:
        self.run = run
        self.read = Dialect.get_or_raise(run.dialect)
        self.lower = _lower_names(run.dialect)
        self._parsed: dict[str, tuple[exp.Query, dict[str, str]] | None] = {}
        self._own: dict[str, tuple[str, ...] | None] = {}

    def columns(self, uid: str) -> tuple[str, ...] | None:
        """The model's columns when they hold whatever its ancestors are, else None."""
        node = self.run.manifest.get(uid)
        if node is None:
            return None
        known = self._known_parents(node)
        unknown_parents = self._names(uid, known)
        if unknown_parents is None:
            return None
        with_parents = dict(known)
        for parent in node.depends_on_nodes:
            if parent in with_parents or parent not in self.run.position:
                continue
            own = self.own(parent)
            if own is None:
                return None
            with_parents[parent] = own
        return unknown_parents if self._names(uid, with_parents) == unknown_parents else None

    def own(self, uid: str) -> tuple[str, ...] | None:
        """The names the model gives whenever it qualifies (its parents not computed yet read
        as unknown), or None when those depend on them."""
        if uid not in self._own:
            node = self.run.manifest.get(uid)
            self._own[uid] = self._names(uid, self._known_parents(node)) if node else None
        return self._own[uid]

    def _known_parents(self, node: Node) -> dict[str, tuple[str, ...] | None]:
        return self.run.inputs_of(node.depends_on_nodes)

    def _names(
        self, uid: str, parents: Mapping[str, tuple[str, ...] | None]
    ) -> tuple[str, ...] | None:
        """`columns_of` with these parents' columns (None: not read without qualifying, or a
        star left)."""
        parsed = self._parse(uid)
        if parsed is None:
            return None
        expression, table_nodes = parsed
        schemas = {**self.run.roots, **parents}
        names = static_columns.output_names(expression, self.read, table_nodes, schemas)
        if isinstance(names, static_columns.Unsure):
            return None
        return _as_output_columns(names, self.lower)

    def _parse(self, uid: str) -> tuple[exp.Query, dict[str, str]] | None:
        if uid not in self._parsed:
            if len(self._parsed) >= _PARSED_KEPT:
                # A model is read as a parent and as itself, close together in the walk: the
                # oldest trees go, so a walk over thousands of ancestors keeps little memory.
                del self._parsed[next(iter(self._parsed))]
            self._parsed[uid] = self._parsed_query(uid)
        return self._parsed[uid]

    def _parsed_query(self, uid: str) -> tuple[exp.Query, dict[str, str]] | None:
        node = self.run.manifest.get(uid)
        sql = self.run.sql_of(node) if node is not None else None
        if sql is None:
            return None
        try:
            expression = _parse(sql, self.run.dialect)
        except LineageError:
            return None
        table_nodes, _mapping = _map_tables(expression, self.run.relations)
        if not static_columns.followed(expression, self.read):
            return None
        return expression, table_nodes


# --------------------------------------------------------------------------------------------
# The process pool: models go to the workers as soon as their parents are done (the DAG's
# layers, without waiting for a whole layer); the parent keeps the schemas and the order, the
# workers compute and write the cache, so the pool changes when a model is computed, never
# what it gives.


@dataclass(frozen=True)
class _WorkerSetup:
    dialect: str
    relations: RelationIndex
    roots: Mapping[str, tuple[str, ...] | None]
    types: Mapping[str, Mapping[str, str]]
    cache_dir: Path | None = None


def _compute(
    setup: _WorkerSetup,
    uid: str,
    sql: str,
    parent_schemas: Mapping[str, tuple[str, ...] | None],
    key: str,
    full: bool,
) -> Computed:
    """One model from its SQL and its parents' columns, written to the cache when there is one."""
    schemas = {**setup.roots, **parent_schemas}
    result: Computed
    if full:
        result = model_lineage_from_sql(
            uid, sql, setup.dialect, setup.relations, schemas, types=setup.types, cache_key=key
        )
    else:
        columns = columns_of(sql, setup.dialect, setup.relations, schemas, setup.types)
        result = ColumnsOnly(uid, columns, key)
    if setup.cache_dir is not None:
        LineageCache(setup.cache_dir).put(result)
    return result


_WORKER: list[_WorkerSetup] = []


def _worker_init(setup: _WorkerSetup) -> None:
    # Ctrl-C is the parent's to handle: it terminates the pool, the workers just stop. The
    # pool terminates a worker with SIGTERM: die at once, not in the inherited Python handler,
    # whose exception would unwind (and print) through locks forked in a held state.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _WORKER[:] = [setup]


def _worker_run(
    uid: str, sql: str, parent_schemas: dict[str, tuple[str, ...] | None], key: str, full: bool
) -> tuple[bool, dict[str, Any]]:
    result = _compute(_WORKER[0], uid, sql, parent_schemas, key, full)
    return isinstance(result, ModelLineage), result.to_json()


def _from_worker(answer: tuple[bool, dict[str, Any]]) -> Computed:
    full, data = answer
    return ModelLineage.from_json(data) if full else ColumnsOnly.from_json(data)


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork: the workers inherit the relations and roots instead of importing and unpickling
    # them (spawn would cost ~0.5 s of imports per worker); elsewhere the platform default.
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _schedule(
    order: list[Node],
    start: Callable[[Node], Computed | tuple[str, str]],
    finish: Callable[[Node, Computed, bool], None],
    compute_here: Callable[[Node, str, str], Computed],
    task_of: Callable[[Node, str, str], tuple[Any, ...]],
    pool_for: Callable[[int], Any],
) -> None:
    """Compute `order` on the pool `pool_for(models left to compute)` gives (None: here; cache
    hits do not count); `task_of(node, sql, key)` is the rest of a `_worker_run` call after the
    unique id. An error or Ctrl-C propagates; the owner of the pool stops it."""
    by_uid = {n.unique_id: n for n in order}
    waiting = {
        uid: {p for p in node.depends_on_nodes if p in by_uid and p != uid}
        for uid, node in by_uid.items()
    }
    children: dict[str, list[str]] = {}
    for uid, parents in waiting.items():
        for parent in parents:
            children.setdefault(parent, []).append(uid)
    position = {uid: i for i, uid in enumerate(by_uid)}
    ready = [uid for uid in by_uid if not waiting[uid]]
    done: queue.SimpleQueue[tuple[str, Any, BaseException | None]] = queue.SimpleQueue()
    left = len(order)
    in_flight = 0

    def complete(uid: str, result: Computed, fresh: bool) -> None:
        nonlocal left
        finish(by_uid[uid], result, fresh)
        left -= 1
        for child in children.get(uid, ()):
            waiting[child].discard(uid)
            if not waiting[child]:
                ready.append(child)

    while ready or in_flight:
        # Topological position first, so the run is reproducible whatever finishes first.
        ready.sort(key=position.__getitem__, reverse=True)
        while ready:
            uid = ready.pop()
            node = by_uid[uid]
            started = start(node)
            if not isinstance(started, tuple):
                complete(uid, started, False)
                continue
            pool = pool_for(left)
            if pool is None:
                complete(uid, compute_here(node, *started), True)
                continue
            pool.apply_async(
                _worker_run,
                (uid, *task_of(node, *started)),
                callback=lambda data, uid=uid: done.put((uid, data, None)),
                error_callback=lambda error, uid=uid: done.put((uid, None, error)),
            )
            in_flight += 1
        if in_flight:
            uid, data, error = _next_done(done)
            in_flight -= 1
            if error is not None:
                raise error
            complete(uid, _from_worker(data), True)


def _next_done(
    done: queue.SimpleQueue[tuple[str, Any, BaseException | None]],
) -> tuple[str, Any, BaseException | None]:
    while True:
        try:
            # A timeout keeps the wait interruptible by Ctrl-C on every platform.
            return done.get(timeout=0.5)
        except queue.Empty:
            continue


def _ancestors(manifest: Manifest, uids: set[str]) -> set[str]:
    seen = set(uids)
    stack = list(uids)
    while stack:
        node = manifest.get(stack.pop())
        if node is None:
            continue
        for parent in node.depends_on_nodes:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def seed_headers(manifest: Manifest, project_dir: Path) -> dict[str, tuple[str, ...]]:
    """Seed columns from each seed CSV's header row (the columns dbt loads), by unique id."""
    import csv

    result: dict[str, tuple[str, ...]] = {}
    for node in manifest.nodes.of_type("seed"):
        if not node.original_file_path:
            continue
        try:
            with (project_dir / node.original_file_path).open(encoding="utf-8", newline="") as f:
                header = next(csv.reader(f), [])
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        if header:
            result[node.unique_id] = tuple(c.strip().lower() for c in header)
    return result


class RenderMemo:
    """Rendered SQL of a manifest's models, kept per (manifest, project files) when both are
    immutable (a parsed git tree, a parse cached by content): a manifest without compiled code
    renders each model once, not on every run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        self.sql: dict[str, str | None] = loaded if isinstance(loaded, dict) else {}
        self.dirty = False

    @classmethod
    def beside(cls, manifest: Path) -> RenderMemo:
        """For a manifest whose project files are fixed by its own cache key."""
        return cls(manifest.parent / "rendered_sql.json")

    @classmethod
    def for_base(
        cls, state_dir: Path | None, manifest: Path, code_dir: Path | None
    ) -> RenderMemo | None:
        if state_dir is None or code_dir is None:
            return None  # without the base's own files the base renders with the working tree's
        stat = manifest.stat()
        identity = f"{manifest.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{code_dir.resolve()}"
        key = hashlib.sha256(identity.encode()).hexdigest()[:32]
        return cls(state_dir / "cache" / "rendered" / f"{key}.json")

    def wrap(self, sql_for: Callable[[Node], str | None]) -> Callable[[Node], str | None]:
        def cached(node: Node) -> str | None:
            if node.compiled_code:
                return node.compiled_code
            if node.unique_id in self.sql:
                return self.sql[node.unique_id]
            found = self.sql[node.unique_id] = sql_for(node)
            self.dirty = True
            return found

        return cached

    def save(self) -> None:
        if self.dirty:
            from dataops_dev.atomic import write_text_atomic

            write_text_atomic(self.path, json.dumps(self.sql, separators=(",", ":")))


def default_cache_dir(state_dir: Path) -> Path:
    return state_dir / "cache" / "lineage"


@dataclass(frozen=True)
class Focus:
    """What a `lineage MODEL[.COLUMN]` question asks: only that is computed (`column_lineage`)."""

    unique_id: str
    column: str | None = None
    downstream: bool = True


def load_project_lineage(
    manifest_path: Path,
    *,
    project_dir: Path | None = None,
    state_dir: Path | None = None,
    reporter: Reporter = NULL_REPORTER,
    render_memo: RenderMemo | None = None,
    focus: Callable[[Manifest], Focus] | None = None,
    workers: int | None = None,
) -> tuple[Manifest, ProjectLineage]:
    """Lineage of the project behind `manifest_path`: compiled SQL when the manifest has it, else
    the model rendered by the light renderer (a `dbt parse` manifest; `render_memo` keeps those
    renders when the manifest and the project files are fixed); the catalog.json next to the
    manifest, when present, and the seed CSV headers give source and seed columns.

    `focus`: the question, given the manifest; only what answers it is computed (None: every
    model)."""
    manifest = Manifest.load(manifest_path)
    asked = focus(manifest) if focus is not None else None
    catalog = load_catalog(manifest_path.parent / "catalog.json")
    if project_dir is not None:
        catalog = {**seed_headers(manifest, project_dir), **catalog}
    renderers: list[Any] = []

    def renderer() -> Any:
        # Made on the first model without compiled SQL: a compiled manifest never pays for it.
        if not renderers:
            from dataops_dev.dbt.project import read_project
            from dataops_dev.dbt.render import Renderer

            assert project_dir is not None
            project = read_project(project_dir)
            renderers.append(
                Renderer.for_project(
                    project_dir,
                    manifest,
                    project_name=project.name,
                    vars=project.vars,
                    macro_paths=project.macro_paths,
                )
            )
        return renderers[0]

    def sql_for(node: Node) -> str | None:
        if node.compiled_code:
            return node.compiled_code
        if project_dir is None:
            return None
        from dataops_dev.dbt.render import RenderError

        try:
            return str(renderer().render(node.raw_code, model_name=node.name).sql)
        except RenderError:
            return None

    common: dict[str, Any] = {
        "cache_dir": default_cache_dir(state_dir) if state_dir is not None else None,
        "sql_for": render_memo.wrap(sql_for) if render_memo is not None else sql_for,
        "catalog": catalog,
        "reporter": reporter,
        "workers": workers,
    }
    if asked is None:
        lineage = compute_lineage(manifest, **common)
    else:
        lineage = column_lineage(
            manifest, asked.unique_id, asked.column, downstream=asked.downstream, **common
        )
    if render_memo is not None:
        render_memo.save()
    return manifest, lineage
