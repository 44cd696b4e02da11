"""The foreign-key graph between a dbt project's sources, read from `manifest.json`.

Edges come from `relationships` tests and contract `foreign_key` constraints; edges declared on
models are mapped back to the source columns they pass through (sqlglot lineage).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import sqlglot
from sqlglot import exp

from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.engines.base import Relation

GRAPH_VERSION = "fkgraph-1"


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

_JINJA_BLOCK = re.compile(r"{%.*?%}", re.S)
_JINJA_COMMENT = re.compile(r"{#.*?#}", re.S)
_JINJA_EXPR = re.compile(r"{{(.*?)}}", re.S)


def _placeholder(kind: str, *names: str) -> str:
    return "__dataops_" + kind + "__" + "__".join(re.sub(r"\W", "_", n) for n in names)


def _render_for_lineage(node: Node) -> tuple[str, dict[str, str]]:
    """The node's SQL with `source()`/`ref()` replaced by placeholder tables (no Jinja run)."""
    if node.compiled_code:
        return node.compiled_code, {}
    tables: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        source = _SOURCE_CALL.fullmatch(body)
        if source:
            name = _placeholder("source", source.group(1), source.group(2))
            tables[name] = f"source:{source.group(1)}.{source.group(2)}"
            return name
        ref = _REF_CALL.fullmatch(body)
        if ref:
            name = _placeholder("ref", ref.group(1))
            tables[name] = f"ref:{ref.group(1)}"
            return name
        if body.startswith("config("):
            return ""
        return "NULL"

    text = _JINJA_COMMENT.sub("", node.raw_code)
    text = _JINJA_BLOCK.sub("", text)
    return _JINJA_EXPR.sub(replace, text), tables


class _Lineage:
    """Follows a model column through pass-through selects (aliases, casts) to a source column."""

    def __init__(
        self, manifest: Manifest, source_columns: Mapping[str, Sequence[str]], dialect: str
    ) -> None:
        self.manifest = manifest
        self.source_columns = source_columns
        self.dialect = dialect
        self._memo: dict[tuple[str, str], tuple[str, str] | None] = {}

    def origin(self, uid: str, column: str, depth: int = 0) -> tuple[str, str] | None:
        """(source unique id, column) the model column passes through from, or None."""
        node = self.manifest.get(uid)
        if node is None or depth > 20:
            return None
        if node.resource_type == "source":
            return uid, column
        memo_key = (uid, column.lower())
        if memo_key not in self._memo:
            self._memo[memo_key] = None  # guards against cycles while resolving
            self._memo[memo_key] = self._resolve(node, column, depth)
        return self._memo[memo_key]

    def _columns_of(self, kind_name: str) -> list[str]:
        kind, _, name = kind_name.partition(":")
        if kind == "source":
            for node in self.manifest.sources.values():
                if node.display_name == name:
                    return list(self.source_columns.get(node.display_name) or node.columns)
            return []
        for node in self.manifest.nodes.values():
            if node.name == name and node.resource_type in ("model", "seed", "snapshot"):
                return list(node.columns)
        return []

    def _uid_of(self, kind_name: str) -> str | None:
        kind, _, name = kind_name.partition(":")
        if kind == "source":
            for uid, node in self.manifest.sources.items():
                if node.display_name == name:
                    return uid
            return None
        for node in self.manifest.nodes.values():
            if node.name == name and node.resource_type in ("model", "seed", "snapshot"):
                return node.unique_id
        return None

    def _resolve(self, node: Node, column: str, depth: int) -> tuple[str, str] | None:
        from sqlglot.lineage import lineage

        sql, tables = _render_for_lineage(node)
        if not tables:
            return None
        schema = {
            placeholder: {c: "TEXT" for c in self._columns_of(kind_name)}
            for placeholder, kind_name in tables.items()
        }
        try:
            root = lineage(column, sql, schema=schema, dialect=self.dialect)
        except (sqlglot.errors.SqlglotError, KeyError, ValueError, AttributeError):
            return None
        leaves = []
        for item in root.walk():
            projected = item.expression
            if isinstance(projected, exp.Alias):
                projected = projected.this
            while isinstance(projected, exp.Cast | exp.Paren):
                projected = projected.this
            if not item.downstream:
                leaves.append(item)
            elif not isinstance(projected, exp.Column | exp.Star):
                return None  # a computed value is not the same key any more
        if len(leaves) != 1 or not isinstance(leaves[0].source, exp.Table):
            return None
        leaf = leaves[0]
        table_name = leaf.source.name
        if table_name not in tables:
            return None
        parent_uid = self._uid_of(tables[table_name])
        if parent_uid is None:
            return None
        return self.origin(parent_uid, leaf.name.split(".")[-1], depth + 1)


def build_graph(
    manifest: Manifest,
    *,
    source_columns: Mapping[str, Sequence[str]] | None = None,
    dialect: str = "duckdb",
    extra_edges: Sequence[ForeignKey] = (),
    primary_keys: Mapping[str, Sequence[str]] | None = None,
) -> FkGraph:
    """The FK graph between source tables.

    Args:
        source_columns: `source.table` -> column names as they are in production (expands
            `select *` when sources declare no columns).
        extra_edges: edges written in the config (`sample.foreign_keys`).
        primary_keys: `source.table` -> key columns from the config (win over the manifest).
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
    tracer = _Lineage(manifest, source_columns or {}, dialect)
    edges: dict[tuple[str, tuple[str, ...], str, tuple[str, ...]], ForeignKey] = {}
    for raw in raw_edges:
        child = _map_columns(tracer, raw.child_uid, raw.child_columns)
        parent = _map_columns(tracer, raw.parent_uid, raw.parent_columns)
        if child is None or parent is None:
            unmapped.append(
                UnmappedEdge(raw.declared_on, "its columns do not pass through from one source")
            )
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
    tracer: _Lineage, uid: str, columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...]] | None:
    mapped = [tracer.origin(uid, column) for column in columns]
    if any(m is None for m in mapped):
        return None
    uids = {m[0] for m in mapped if m}
    if len(uids) != 1:
        return None
    return uids.pop(), tuple(m[1] for m in mapped if m)


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
