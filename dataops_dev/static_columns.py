"""A query's output column names from its parsed SQL and its parents' columns, without sqlglot's
`qualify` (most of the cost of an ancestor that is computed only for its columns).

The answer is exactly the one `lineage.prepare` + `lineage.output_columns` give: the stars
expanded from the parents' columns as `qualify` expands them, a star left when a source's columns
are unknown, and every case where `qualify` fails (a column its source does not have: a parent
dropped it) left to `qualify`. Anything beyond plain SELECT / CTE / join / set-operation shapes
is `UNSURE`, and the caller qualifies: this module only ever answers where it answers the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import normalize_name


class Unsure:
    """The query uses something this module does not follow: ask `qualify`."""

    def __repr__(self) -> str:
        return "UNSURE"


UNSURE: Final = Unsure()
STAR = "*"

Names = list[str]
"""A scope's output names as `qualify` leaves them; `*` where a star stays unexpanded."""

# Nodes whose handling in `qualify` changes names or sources in ways not followed here.
_UNFOLLOWED = (
    exp.UDTF,  # LATERAL, UNNEST, VALUES, table functions
    exp.Pivot,
    exp.Comprehension,
    exp.QueryTransform,
    exp.Parameter,
    exp.Placeholder,
    exp.TableColumn,
    exp.Columns,
    exp.Aliases,
    exp.Dot,
    exp.Explode,
    exp.Into,
)


def supported_dialect(dialect: Dialect) -> bool:
    """Dialects whose `qualify` settings are the plain ones followed here (DuckDB, PostgreSQL,
    Redshift, Spark, Databricks, Trino, T-SQL: not Snowflake, BigQuery, ClickHouse)."""
    return not (
        dialect.PSEUDOCOLUMNS
        or dialect.FORCE_EARLY_ALIAS_REF_EXPANSION
        or dialect.PREFER_CTE_ALIAS_COLUMN
        or dialect.ANNOTATE_ALL_SCOPES
        or dialect.SUPPORTS_STRUCT_STAR_EXPANSION
        or dialect.SUPPORTS_POSITIONAL_COLUMN_REFS
        or dialect.UNNEST_COLUMN_ONLY
    )


# --------------------------------------------------------------------------------------------
# Screening: before anything is changed, so `qualify` can still run on the same expression


def followed(expression: exp.Expr, dialect: Dialect) -> bool:
    """Whether every node of the query is of a shape followed here (no change to it)."""
    if not supported_dialect(dialect) or not isinstance(expression, exp.Select | exp.SetOperation):
        return False
    for node in expression.walk():
        if isinstance(node, _CHECKED):
            if isinstance(node, _UNFOLLOWED) or not _followed_node(node):
                return False
        elif isinstance(node, _UNFOLLOWED):
            return False
    return True


# The node types `_followed_node` looks at (most nodes are none of these: one check each).
_CHECKED = (
    exp.Query,
    exp.Subquery,
    exp.Join,
    exp.Table,
    exp.Star,
    exp.Column,
    exp.Alias,
    exp.TableAlias,
    exp.With,
    exp.Distinct,
)


def _followed_node(node: exp.Expr) -> bool:
    if isinstance(node, exp.Column):
        this = node.this
        plain = node.args.get("db") is None and node.args.get("catalog") is None
        # A column named `*` (quoted) would read as a star.
        return plain and (isinstance(this, exp.Star) or this.name != STAR)
    if isinstance(node, exp.Alias):
        return node.alias != STAR
    if isinstance(node, exp.Query):
        return _followed_query(node)
    if isinstance(node, exp.Subquery):
        return _followed_subquery(node)
    if isinstance(node, exp.Join):
        return not (
            node.args.get("using") or node.method or node.is_semi_or_anti_join
        ) and not node.args.get("match_condition")
    if isinstance(node, exp.Table):
        return _followed_table(node)
    if isinstance(node, exp.Star):
        return not any(node.args.get(k) for k in ("except_", "replace", "rename", "ilike"))
    if isinstance(node, exp.TableAlias):
        return not node.columns
    if isinstance(node, exp.With):
        return not node.recursive
    return not node.args.get("on")  # DISTINCT ON


def _followed_query(query: exp.Query) -> bool:
    parent = query.parent
    placed = (
        parent is None
        or isinstance(parent, exp.CTE | exp.SetOperation)
        or (isinstance(parent, exp.Subquery) and _followed_subquery(parent))
    )
    if not placed:
        return False
    if isinstance(query, exp.SetOperation):
        return not any(query.args.get(k) for k in ("by_name", "side", "kind", "on", "order"))
    return isinstance(query, exp.Select) and not query.args.get("kind")


def _followed_subquery(subquery: exp.Subquery) -> bool:
    """A derived table with a name in FROM/JOIN, or a parenthesised set-operation operand."""
    parent = subquery.parent
    if not isinstance(subquery.this, exp.Query | exp.Subquery):
        return False
    if isinstance(parent, exp.SetOperation):
        return True
    return isinstance(parent, exp.From | exp.Join) and bool(subquery.alias)


def _followed_table(table: exp.Table) -> bool:
    return isinstance(table.this, exp.Identifier) and not any(
        table.args.get(k) for k in ("pivots", "joins", "laterals", "version", "when", "changes")
    )


# --------------------------------------------------------------------------------------------
# Resolution, scope by scope as `qualify_columns` walks them (sources first)


class _Resolution:
    """Output names per scope of one normalized query."""

    def __init__(
        self,
        dialect: Dialect,
        table_columns: Mapping[str, Sequence[str] | None],
    ) -> None:
        self.dialect = dialect
        self.table_columns = table_columns
        self.names: dict[int, Names] = {}

    def source_columns(self, source: exp.Table | Scope) -> Sequence[str]:
        """What `Resolver.get_source_columns` gives (empty: unknown)."""
        if isinstance(source, exp.Table):
            return self.table_columns.get(source.name) or ()
        return self.names[id(source.expression)]

    def scope_names(self, scope: Scope) -> Names | Unsure:
        expression = scope.expression
        if scope.can_be_correlated or scope.is_udtf or scope.is_subquery:
            return UNSURE
        if isinstance(expression, exp.SetOperation):
            return self.names[id(_leftmost(expression))]
        if not isinstance(expression, exp.Select):
            return UNSURE
        # Raises on an alias used twice in one FROM, as `qualify` fails there.
        scope.selected_sources  # noqa: B018
        if not _fails_nowhere(self, scope) or not _alias_refs_harmless(self, scope, expression):
            return UNSURE
        projections = _expanded(self, scope, expression)
        if isinstance(projections, Unsure) or not _positions_in_range(expression, projections):
            return UNSURE
        return [_output_name(self.dialect, p, i) for i, p in enumerate(projections)]


def _leftmost(expression: exp.Expr) -> exp.Expr:
    while isinstance(expression, exp.SetOperation):
        expression = expression.this.unnest()
    return expression


def _fails_nowhere(resolution: _Resolution, scope: Scope) -> bool:
    """No column of the scope makes `_qualify_columns` fail or rewrite it: a qualified column
    names a source that has it (or whose columns are unknown), and no bare column names a
    table (some dialects read that as the whole row)."""
    for column in scope.columns:
        table = column.table
        if not table:
            if column.name in scope.selected_sources:
                return False
            continue
        source = scope.sources.get(table)
        if source is None:
            return False  # a struct field or an outer column: `qualify` rewrites it
        columns = resolution.source_columns(source)
        if columns and STAR not in columns and column.name not in columns:
            return False  # "Unknown column": `qualify` fails; let it say so
    return True


def _unknown_sources(resolution: _Resolution, scope: Scope) -> bool:
    return any(
        not columns or STAR in columns
        for columns in (resolution.source_columns(s) for _, s in scope.selected_sources.values())
    )


def _alias_refs_harmless(resolution: _Resolution, scope: Scope, select: exp.Select) -> bool:
    """`_expand_alias_refs` neither renames a projection (a bare column naming an earlier
    projection's alias) nor fails (a clause naming an alias while a source is unknown)."""
    if resolution.dialect.DISABLES_ALIAS_REF_EXPANSION:
        return True
    aliases: set[str] = set()
    for projection in select.selects:
        if _bare_column_names(projection) & aliases:
            return False
        if isinstance(projection, exp.Alias):
            aliases.add(projection.alias)
    clauses = [select.args.get(k) for k in ("where", "group", "having", "qualify")]
    if resolution.dialect.SUPPORTS_ALIAS_REFS_IN_JOIN_CONDITIONS:
        clauses += select.args.get("joins") or []
    named = any(_bare_column_names(c) & aliases for c in clauses if c is not None)
    return not (named and _unknown_sources(resolution, scope))


def _bare_column_names(node: exp.Expr) -> set[str]:
    return {
        c.name
        for c in node.find_all(exp.Column)
        if not c.table and not c.is_star and c.find_ancestor(exp.Star) is None
    }


def _expanded(
    resolution: _Resolution, scope: Scope, select: exp.Select
) -> list[exp.Expr | str] | Unsure:
    """The projections after `_expand_stars`: a star becomes its sources' column names, unless
    one of them is unknown or repeats a name; then every star of the scope stays."""
    result: list[exp.Expr | str] = []
    for projection in select.selects:
        if not projection.is_star:
            result.append(projection)
            continue
        if isinstance(projection, exp.Star):
            sources = [source for _, source in scope.selected_sources.values()]
        else:
            source = scope.sources.get(projection.text("table"))
            if source is None:
                return UNSURE  # an outer or unknown table: `qualify` looks further, or fails
            sources = [source]
        for source in sources:
            columns = resolution.source_columns(source)
            if not columns or STAR in columns or len(columns) != len(set(columns)):
                return list(select.selects)
            result.extend(columns)
    return result


def _positions_in_range(select: exp.Select, projections: list[exp.Expr | str]) -> bool:
    """GROUP BY / ORDER BY positions name an existing, non-star projection (else `qualify`
    fails)."""
    group = select.args.get("group")
    order = select.args.get("order")
    positions = [*(group.expressions if group else ()), *(o.this for o in order or ())]
    for node in positions:
        if isinstance(node, exp.Literal) and node.is_int:
            index = int(node.this) - 1
            if not 0 <= index < len(projections) or _is_star(projections[index]):
                return False
    return True


def _is_star(projection: exp.Expr | str) -> bool:
    return projection == STAR if isinstance(projection, str) else projection.is_star


def _output_name(dialect: Dialect, projection: exp.Expr | str, index: int) -> str:
    """The name `qualify_outputs` gives a projection (a star keeps `*`)."""
    if isinstance(projection, str):
        return projection
    if isinstance(projection, exp.Alias) or projection.is_star:
        return projection.output_name
    name = projection.output_name or f"_col_{index}"
    if isinstance(projection.unnest(), exp.Column):
        return name
    identifier = exp.to_identifier(name)
    dialect.normalize_identifier(identifier)
    return identifier.name


# --------------------------------------------------------------------------------------------
# The entry point


_NORMALIZED: dict[tuple[str, str, bool], str] = {}


def _normalized_column(name: str, dialect: Dialect) -> str:
    """A schema column name as `MappingSchema` normalizes it (memoized: names repeat)."""
    key = (name, type(dialect).__name__, True)
    found = _NORMALIZED.get(key)
    if found is None:
        found = _NORMALIZED[key] = normalize_name(name, dialect=dialect, is_table=False).name
    return found


def _table_columns(
    table_nodes: Mapping[str, str],
    schemas: Mapping[str, Sequence[str] | None],
    dialect: Dialect,
) -> dict[str, Sequence[str] | None]:
    """Normalized table name -> its columns as `qualify`'s schema holds them."""
    result: dict[str, Sequence[str] | None] = {}
    for key, uid in table_nodes.items():
        identifier = exp.to_identifier(key)
        dialect.normalize_identifier(identifier)
        columns = schemas.get(uid)
        if columns is not None:
            raw = dict.fromkeys(columns)
            columns = list(dict.fromkeys(_normalized_column(c, dialect) for c in raw))
        result[identifier.name] = columns
    return result


def output_names(
    expression: exp.Expr,
    dialect: Dialect,
    table_nodes: Mapping[str, str],
    schemas: Mapping[str, Sequence[str] | None],
) -> list[str] | Unsure:
    """The outer query's column names as `qualify` would leave them (`*` for a star it cannot
    expand), or UNSURE. `expression` has passed `followed` (it is normalized in place here:
    after an UNSURE, parse again before qualifying); `table_nodes`: mapped table name -> node,
    as `lineage._map_tables` gives it."""
    try:
        columns = _table_columns(table_nodes, schemas, dialect)
        normalize_identifiers(expression, dialect=dialect)
        root = build_scope(expression)
    except (SqlglotError, ValueError, KeyError):
        return UNSURE
    if root is None:
        return UNSURE
    resolution = _Resolution(dialect, columns)
    names: Names | Unsure = UNSURE
    try:
        for scope in root.traverse():
            names = resolution.scope_names(scope)
            if isinstance(names, Unsure):
                return UNSURE
            resolution.names[id(scope.expression)] = names
    except (SqlglotError, ValueError, KeyError):
        return UNSURE  # e.g. an alias used twice in one FROM: `qualify` says what is wrong
    return names
