"""The foreign-key graph between a dbt project's sources, read from `manifest.json`.

Edges come from `relationships` tests and contract `foreign_key` constraints; edges declared on
models are mapped back to the source columns they pass through (the project's column lineage).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from sqlglot import exp

from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.dbt.render import Renderer, RenderError, context_for
from dataops_dev.engines.base import Relation
from dataops_dev.lineage import (
    STAR,
    EdgeKind,
    LineageError,
    ModelLineage,
    RelationIndex,
    lineage_of_prepared,
    node_columns,
    prepare,
    topological_models,
)

# Part of every sample id: bump when the same project can give a different graph.
GRAPH_VERSION = "fkgraph-2"


class EdgeOrigin(str, Enum):
    RELATIONSHIPS_TEST = "relationships_test"
    CONSTRAINT = "foreign_key_constraint"
    CONFIG = "config"


class KeyOrigin(str, Enum):
    CONSTRAINT = "primary_key_constraint"
    META = "meta"
    TESTS = "unique_not_null_tests"
    CONFIG = "config"


@dataclass(frozen=True)
class SourceTable:
    """One dbt source table: the unit the sampler reads from production."""

    name: str
    """`source_name.table_name`, how users name it in the config."""
    unique_id: str
    relation: Relation
    primary_key: tuple[str, ...] | None = None
    key_origin: KeyOrigin | None = None
    event_time: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    """`child.child_columns` references `parent.parent_columns` (both source tables)."""

    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    origin: EdgeOrigin
    declared_on: str
    """The test or node that declares it (a model's edge mapped back to its sources says so)."""
    partial: bool = False
    """Declared with a `where`: rows outside it (e.g. NULL foreign keys) are not checked."""
    via: tuple[str, ...] = ()
    """Models the edge was declared on before being mapped back to sources."""

    @property
    def label(self) -> str:
        cols = ", ".join(self.child_columns)
        pcols = ", ".join(self.parent_columns)
        return f"{self.child}({cols}) -> {self.parent}({pcols})"


@dataclass(frozen=True)
class UnmappedEdge:
    """A relationship the graph could not place on source columns (reported, not used)."""

    declared_on: str
    reason: str


@dataclass(frozen=True)
class FkGraph:
    tables: Mapping[str, SourceTable]
    edges: tuple[ForeignKey, ...]
    unmapped: tuple[UnmappedEdge, ...] = ()

    def parents_of(self, table: str) -> tuple[ForeignKey, ...]:
        return tuple(e for e in self.edges if e.child == table)

    def children_of(self, table: str) -> tuple[ForeignKey, ...]:
        return tuple(e for e in self.edges if e.parent == table)

    def key_columns(self, table: str) -> set[str]:
        """Columns that are a key or a foreign key of `table` in the graph."""
        cols = set(self.tables[table].primary_key or ())
        for edge in self.edges:
            if edge.child == table:
                cols.update(edge.child_columns)
            if edge.parent == table:
                cols.update(edge.parent_columns)
        return cols

    def descendants(self, tables: Iterable[str]) -> set[str]:
        """Tables reachable from `tables` by following edges from parent to child."""
        seen: set[str] = set()
        stack = list(tables)
        while stack:
            current = stack.pop()
            for edge in self.children_of(current):
                if edge.child not in seen:
                    seen.add(edge.child)
                    stack.append(edge.child)
        return seen

    def strongly_connected(self) -> list[list[str]]:
        """Tarjan's SCCs in topological order (parents first); cycles form one component."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        components: list[list[str]] = []
        counter = [0]

        def visit(node: str) -> None:
            index[node] = low[node] = counter[0]
            counter[0] += 1
            stack.append(node)
            on_stack.add(node)
            for edge in self.children_of(node):
                child = edge.child
                if child not in index:
                    visit(child)
                    low[node] = min(low[node], low[child])
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
            if low[node] == index[node]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                components.append(sorted(component))

        for name in sorted(self.tables):
            if name not in index:
                visit(name)
        components.reverse()  # Tarjan emits sinks (children) first
        return components

    def auto_anchors(self) -> tuple[str, ...]:
        """The root table with the most descendants: the entity a sample is drawn around."""
        roots = [
            name
            for name in sorted(self.tables)
            if not [e for e in self.parents_of(name) if e.parent != name]
        ]
        ranked = sorted(
            ((len(self.descendants([r])), r) for r in roots if self.tables[r].primary_key),
            key=lambda item: (-item[0], item[1]),
        )
        if ranked and ranked[0][0] > 0:
            return (ranked[0][1],)
        return ()


# --------------------------------------------------------------------------------------------
# Building the graph from the manifest


_SOURCE_CALL = re.compile(r"source\(\s*['\"]([^'\"]+)['\"]\s*,\s*['\"]([^'\"]+)['\"]\s*\)")
_REF_CALL = re.compile(r"ref\(\s*(?:['\"][^'\"]+['\"]\s*,\s*)?['\"]([^'\"]+)['\"]\s*(?:,[^)]*)?\)")


def _source_tables(manifest: Manifest) -> dict[str, SourceTable]:
    tables: dict[str, SourceTable] = {}
    for uid, node in sorted(manifest.sources.items()):
        key = manifest.primary_key(uid)
        tables[node.display_name] = SourceTable(
            name=node.display_name,
            unique_id=uid,
            relation=Relation(
                schema=node.schema or "main", name=node.identifier, database=node.database
            ),
            primary_key=key,
            key_origin=_key_origin(manifest, node, key),
            event_time=(node.config.get("event_time") or node.raw.get("event_time") or None),
        )
    return tables


def _key_origin(manifest: Manifest, node: Node, key: tuple[str, ...] | None) -> KeyOrigin | None:
    if key is None:
        return None
    if any(c.get("type") == "primary_key" for c in node.constraints) or any(
        any(c.get("type") == "primary_key" for c in col.constraints)
        for col in node.columns.values()
    ):
        return KeyOrigin.CONSTRAINT
    if node.meta.get("primary_key") or any(
        col.meta.get("primary_key") for col in node.columns.values()
    ):
        return KeyOrigin.META
    return KeyOrigin.TESTS


def _resolve_target(manifest: Manifest, text: str) -> str | None:
    """The unique id a `to:` names: `source('a', 'b')`, `ref('m')` or a relation name."""
    match = _SOURCE_CALL.search(text)
    if match:
        name = f"{match.group(1)}.{match.group(2)}"
        for uid, node in manifest.sources.items():
            if node.display_name == name:
                return uid
        return None
    match = _REF_CALL.search(text)
    if match:
        for node in manifest.nodes.values():
            if node.name == match.group(1) and node.resource_type in ("model", "seed", "snapshot"):
                return node.unique_id
        return None
    wanted = text.replace('"', "").replace("`", "").lower()
    for node in (*manifest.nodes.values(), *manifest.sources.values()):
        if node.relation_name and node.relation_name.replace('"', "").lower() == wanted:
            return node.unique_id
    return None


@dataclass(frozen=True)
class _RawEdge:
    child_uid: str
    child_columns: tuple[str, ...]
    parent_uid: str
    parent_columns: tuple[str, ...]
    origin: EdgeOrigin
    declared_on: str
    partial: bool


def _declared_edges(manifest: Manifest) -> tuple[list[_RawEdge], list[UnmappedEdge]]:
    edges: list[_RawEdge] = []
    unmapped: list[UnmappedEdge] = []
    for test in manifest.tests:
        if test.test_name != "relationships" or not test.attached_node:
            continue
        column = test.column_name or test.kwargs.get("column_name")
        field_name = test.kwargs.get("field")
        to = str(test.kwargs.get("to") or "")
        parents = [uid for uid in test.depends_on_nodes if uid != test.attached_node]
        parent_uid = (
            parents[0] if parents else (_resolve_target(manifest, to) or test.attached_node)
        )
        if not column or not field_name or not parent_uid:
            unmapped.append(UnmappedEdge(test.unique_id, "relationships test without column/field"))
            continue
        edges.append(
            _RawEdge(
                test.attached_node,
                (_unquote(str(column)),),
                parent_uid,
                (_unquote(str(field_name)),),
                EdgeOrigin.RELATIONSHIPS_TEST,
                test.unique_id,
                partial=bool(test.where),
            )
        )
    for node in (*manifest.nodes.values(), *manifest.sources.values()):
        if node.resource_type not in ("model", "source", "snapshot", "seed"):
            continue
        candidates: list[tuple[tuple[str, ...], Mapping[str, Any]]] = [
            (tuple(c.get("columns") or ()), c) for c in node.constraints
        ]
        for col in node.columns.values():
            candidates.extend(((col.name,), c) for c in col.constraints)
        for columns, constraint in candidates:
            if constraint.get("type") != "foreign_key" or not columns:
                continue
            target, to_columns = _constraint_target(manifest, node, constraint)
            if target is None or len(to_columns) != len(columns):
                unmapped.append(
                    UnmappedEdge(node.unique_id, f"cannot read foreign_key constraint {constraint}")
                )
                continue
            edges.append(
                _RawEdge(
                    node.unique_id,
                    columns,
                    target,
                    to_columns,
                    EdgeOrigin.CONSTRAINT,
                    node.unique_id,
                    partial=False,
                )
            )
    return edges, unmapped


def _unquote(name: str) -> str:
    return name.strip().strip('"').strip("`")


def _constraint_target(
    manifest: Manifest, node: Node, constraint: Mapping[str, Any]
) -> tuple[str | None, tuple[str, ...]]:
    to = constraint.get("to")
    to_columns = tuple(constraint.get("to_columns") or ())
    if to:
        return _resolve_target(manifest, str(to)), to_columns
    # Before dbt 1.9: `expression: "schema.table (column)"`.
    expression = str(constraint.get("expression") or "")
    match = re.match(r"^\s*(?:references\s+)?([\w.\"`]+)\s*\(([^)]*)\)", expression, re.I)
    if not match:
        return None, ()
    relation = match.group(1)
    cols = tuple(_unquote(c) for c in match.group(2).split(",") if c.strip())
    wanted = relation.replace('"', "").lower()
    for candidate in (*manifest.nodes.values(), *manifest.sources.values()):
        rel = (candidate.relation_name or "").replace('"', "").lower()
        if rel == wanted or rel.endswith("." + wanted):
            return candidate.unique_id, cols
    return None, cols


# -- mapping model columns back to source columns ------------------------------------------------

# A key keeps its identity through these steps only: anything computed is another value.
_CARRIED = frozenset({EdgeKind.PASS_THROUGH, EdgeKind.RENAMED})


class _ManifestSql:
    """A model's SQL: its compiled code, else its Jinja rendered by the light renderer with the
    project's own macros from the manifest (a `dbt parse` manifest has no compiled code)."""

    def __init__(self, manifest: Manifest, project_vars: Mapping[str, Any] | None = None) -> None:
        self.manifest = manifest
        self.project_vars = dict(project_vars or {})
        self._renderer: Renderer | None = None

    def __call__(self, node: Node) -> str | None:
        if node.compiled_code:
            return node.compiled_code
        if self._renderer is None:
            self._renderer = self._new_renderer()
        return self._renderer.render(node.raw_code, model_name=node.name).sql

    def _new_renderer(self) -> Renderer:
        project = self.manifest.project_name
        macros = tuple(
            (str(raw.get("original_file_path") or uid), str(raw.get("macro_sql") or ""))
            for uid, raw in sorted((self.manifest.data.get("macros") or {}).items())
            if raw.get("package_name") == project
        )
        # No project directory here: macros come from the manifest, vars from the caller.
        context = context_for(
            Path(), self.manifest, project_name=project, vars=self.project_vars, macro_paths=()
        )
        return Renderer(replace(context, macro_files=macros), self.manifest)


def _see_through_casts(expression: exp.Expr) -> None:
    """Replace `cast(col as t)` and `(col)` by `col`: a cast key is still the same key."""
    for node in list(expression.find_all(exp.Cast, exp.Paren)):
        inner = node.this
        while isinstance(inner, exp.Cast | exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Column) and node.parent is not None:
            node.replace(inner)


class _KeyLineage:
    """Follows model columns upstream along pass-through and renamed edges to a source column.

    Each model needed is prepared (parsed, qualified, scoped) once with the shared lineage module,
    in dependency order so `select *` expands over its parents' columns.
    """

    def __init__(
        self,
        manifest: Manifest,
        models: Iterable[str],
        source_columns: Mapping[str, Sequence[str]],
        dialect: str,
        sql_for: Callable[[Node], str | None],
    ) -> None:
        self.manifest = manifest
        self.source_columns = source_columns
        self.models: dict[str, ModelLineage] = {}
        wanted = _with_ancestors(manifest, models)
        if not wanted:
            return
        relations = RelationIndex.from_manifest(manifest)
        catalog = {
            node.unique_id: tuple(c.lower() for c in source_columns[node.display_name])
            for node in manifest.sources.values()
            if source_columns.get(node.display_name)
        }
        schemas: dict[str, tuple[str, ...] | None] = {}
        types: dict[str, dict[str, str]] = {}
        for node in (*manifest.nodes.values(), *manifest.sources.values()):
            if node.resource_type in ("seed", "source"):
                schemas[node.unique_id] = node_columns(node, catalog)
            declared = {c.lower(): str(i.data_type) for c, i in node.columns.items() if i.data_type}
            if declared:
                types[node.unique_id] = declared
        for node in topological_models(manifest):
            if node.unique_id in wanted:
                result = _model_lineage(node, dialect, relations, schemas, types, sql_for)
                self.models[node.unique_id] = result
                schemas[node.unique_id] = result.columns

    def origin(self, uid: str, column: str) -> tuple[str, str] | str:
        """(source unique id, column) that `uid.column` carries unchanged, or why there is none."""
        seen: set[tuple[str, str]] = set()
        while uid not in self.manifest.sources:
            node = self.manifest.get(uid)
            name = node.name if node is not None else uid
            model = self.models.get(uid)
            if model is None:
                return f"{name} is not a SQL model that reads from sources"
            if model.columns is None:
                return f"{name}: columns unknown ({model.unknown_reason or 'unexpanded *'})"
            out = _column_named(model.columns, column)
            if out is None:
                return f"{name} has no column {column}"
            values = [
                e for e in model.edges if e.target_column in (out, STAR) and not e.kind.affects_rows
            ]
            if len(values) != 1 or values[0].kind not in _CARRIED:
                return f"{name}.{out} is computed, not passed through from one source column"
            uid, column = values[0].source_node, values[0].source_column
            if (uid, column) in seen:
                return f"{name}.{out} is part of a dependency cycle"
            seen.add((uid, column))
        return uid, self._source_column(uid, column)

    def _source_column(self, uid: str, column: str) -> str:
        """The column as production (or the source's YAML) spells it."""
        source = self.manifest.sources[uid]
        names = self.source_columns.get(source.display_name) or list(source.columns)
        return _column_named(names, column) or column


def _column_named(columns: Iterable[str], name: str) -> str | None:
    columns = list(columns)
    if name in columns:
        return name
    wanted = _unquote(name).lower()
    return next((c for c in columns if c.lower() == wanted), None)


def _model_lineage(
    node: Node,
    dialect: str,
    relations: RelationIndex,
    schemas: Mapping[str, tuple[str, ...] | None],
    types: Mapping[str, Mapping[str, str]],
    sql_for: Callable[[Node], str | None],
) -> ModelLineage:
    if node.language != "sql":
        return ModelLineage(node.unique_id, None, (), "Python model")
    try:
        sql = sql_for(node)
        if sql is None:
            return ModelLineage(node.unique_id, None, (), "no SQL for the model")
        prepared = prepare(sql, dialect, relations, schemas, types)
    except (RenderError, LineageError) as exc:
        return ModelLineage(node.unique_id, None, (), str(exc))
    _see_through_casts(prepared.expression)
    return lineage_of_prepared(node.unique_id, prepared)


def _with_ancestors(manifest: Manifest, uids: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(uids)
    while stack:
        uid = stack.pop()
        node = manifest.get(uid)
        if uid in seen or node is None:
            continue
        seen.add(uid)
        stack.extend(node.depends_on_nodes)
    return seen


def build_graph(
    manifest: Manifest,
    *,
    source_columns: Mapping[str, Sequence[str]] | None = None,
    dialect: str = "duckdb",
    extra_edges: Sequence[ForeignKey] = (),
    primary_keys: Mapping[str, Sequence[str]] | None = None,
    sql_for: Callable[[Node], str | None] | None = None,
    project_vars: Mapping[str, Any] | None = None,
) -> FkGraph:
    """The FK graph between source tables.

    Args:
        source_columns: `source.table` -> column names as they are in production (expands
            `select *` when sources declare no columns).
        extra_edges: edges written in the config (`sample.foreign_keys`).
        primary_keys: `source.table` -> key columns from the config (win over the manifest).
        sql_for: a model's SQL, None when there is none (default: its compiled code, else its
            Jinja rendered with the manifest's macros); may raise `RenderError`.
        project_vars: `vars:` of dbt_project.yml, for the default renderer's `var()`.
    """
    tables = _source_tables(manifest)
    for name, columns in (primary_keys or {}).items():
        if name in tables:
            table = tables[name]
            tables[name] = SourceTable(
                table.name,
                table.unique_id,
                table.relation,
                tuple(columns),
                KeyOrigin.CONFIG,
                table.event_time,
            )
    raw_edges, unmapped = _declared_edges(manifest)
    tracer = _KeyLineage(
        manifest,
        {
            uid
            for raw in raw_edges
            for uid in (raw.child_uid, raw.parent_uid)
            if uid not in manifest.sources
        },
        source_columns or {},
        dialect,
        sql_for or _ManifestSql(manifest, project_vars),
    )
    edges: dict[tuple[str, tuple[str, ...], str, tuple[str, ...]], ForeignKey] = {}
    for raw in raw_edges:
        child = _map_columns(tracer, raw.child_uid, raw.child_columns)
        parent = _map_columns(tracer, raw.parent_uid, raw.parent_columns)
        if isinstance(child, str) or isinstance(parent, str):
            reason = child if isinstance(child, str) else parent
            unmapped.append(UnmappedEdge(raw.declared_on, str(reason)))
            continue
        (child_uid, child_cols), (parent_uid, parent_cols) = child, parent
        if child_uid == parent_uid and child_cols == parent_cols:
            continue  # both ends trace to the same source column: nothing to follow
        child_name = manifest.sources[child_uid].display_name
        parent_name = manifest.sources[parent_uid].display_name
        via = tuple(
            sorted(
                {
                    manifest.get(u).name  # type: ignore[union-attr]
                    for u in (raw.child_uid, raw.parent_uid)
                    if u not in manifest.sources
                }
            )
        )
        key = (child_name, child_cols, parent_name, parent_cols)
        previous = edges.get(key)
        edge = ForeignKey(
            child=child_name,
            child_columns=child_cols,
            parent=parent_name,
            parent_columns=parent_cols,
            origin=raw.origin,
            declared_on=raw.declared_on,
            partial=raw.partial,
            via=via,
        )
        # A strict declaration anywhere beats a partial one; a direct one beats a mapped one.
        if (
            previous is None
            or (previous.partial and not edge.partial)
            or (previous.partial == edge.partial and previous.via and not edge.via)
        ):
            edges[key] = edge
    for extra in extra_edges:
        edges[(extra.child, extra.child_columns, extra.parent, extra.parent_columns)] = extra
    # A parent column referenced by an edge is the parent's key when nothing else says.
    for edge in edges.values():
        target = tables.get(edge.parent)
        if target is not None and target.primary_key is None:
            tables[edge.parent] = SourceTable(
                target.name,
                target.unique_id,
                target.relation,
                edge.parent_columns,
                None,
                target.event_time,
            )
    ordered = tuple(sorted(edges.values(), key=lambda e: (e.child, e.child_columns, e.parent)))
    return FkGraph(tables=tables, edges=ordered, unmapped=tuple(unmapped))


def _map_columns(
    tracer: _KeyLineage, uid: str, columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...]] | str:
    """(source unique id, its columns) the columns pass through from, or why they do not."""
    mapped: list[tuple[str, str]] = []
    for column in columns:
        origin = tracer.origin(uid, column)
        if isinstance(origin, str):
            return origin
        mapped.append(origin)
    if len({source for source, _ in mapped}) != 1:
        return "its columns pass through from different sources"
    return mapped[0][0], tuple(column for _, column in mapped)


def graph_to_dict(graph: FkGraph) -> dict[str, Any]:
    """A plain, stable mapping of the graph (for the lock file and `--format json`)."""
    return {
        "tables": {
            name: {
                "relation": str(table.relation),
                "primary_key": list(table.primary_key) if table.primary_key else None,
                "key_from": table.key_origin.value if table.key_origin else "foreign_key_target",
                **({"event_time": table.event_time} if table.event_time else {}),
            }
            for name, table in sorted(graph.tables.items())
        },
        "foreign_keys": [
            {
                "child": f"{e.child}({', '.join(e.child_columns)})",
                "parent": f"{e.parent}({', '.join(e.parent_columns)})",
                "from": e.origin.value,
                "declared_on": e.declared_on,
                **({"partial": True} if e.partial else {}),
                **({"via_models": list(e.via)} if e.via else {}),
            }
            for e in graph.edges
        ],
        "unmapped": [{"declared_on": u.declared_on, "reason": u.reason} for u in graph.unmapped],
    }


_EDGE_TEXT = re.compile(r"^\s*([\w]+\.[\w]+)\s*\(([^)]*)\)\s*$")


def parse_edge_text(child: str, parent: str) -> ForeignKey:
    """`shop.orders(customer_id)` -> `shop.customers(customer_id)` from the config."""
    from dataops_dev.errors import ConfigError

    parts = []
    for text in (child, parent):
        match = _EDGE_TEXT.match(text)
        if not match:
            raise ConfigError(
                f"cannot read foreign key end {text!r}", "write it as source.table(column, ...)"
            )
        parts.append((match.group(1), tuple(c.strip() for c in match.group(2).split(","))))
    (c_table, c_cols), (p_table, p_cols) = parts
    if len(c_cols) != len(p_cols):
        raise ConfigError(f"foreign key {child} -> {parent}: column counts differ")
    return ForeignKey(c_table, c_cols, p_table, p_cols, EdgeOrigin.CONFIG, "dataops_dev.yml")


__all__ = [
    "EdgeOrigin",
    "FkGraph",
    "ForeignKey",
    "KeyOrigin",
    "SourceTable",
    "UnmappedEdge",
    "build_graph",
    "graph_to_dict",
    "parse_edge_text",
]
