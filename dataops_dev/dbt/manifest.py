"""Typed reads of dbt's `manifest.json`: the stable interface to a dbt project (no dbt imports).

Only what dataops_dev needs is lifted into frozen dataclasses; everything else stays in `raw`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from dataops_dev.errors import ProjectError


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str | None = None
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    constraints: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Node:
    """A model, seed, snapshot, source table, test or exposure of the manifest."""

    unique_id: str
    resource_type: str
    name: str
    package_name: str
    database: str | None
    schema: str | None
    alias: str | None
    relation_name: str | None
    original_file_path: str
    raw_code: str
    compiled_code: str | None
    checksum: str
    materialized: str | None
    depends_on_nodes: tuple[str, ...]
    depends_on_macros: tuple[str, ...]
    columns: Mapping[str, ColumnInfo]
    meta: Mapping[str, Any]
    tags: tuple[str, ...]
    config: Mapping[str, Any]
    constraints: tuple[Mapping[str, Any], ...]
    contract_enforced: bool
    language: str
    source_name: str | None
    """For sources: the `sources:` entry name (the node is `source_name.name`)."""
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def display_name(self) -> str:
        """How users name the node: `model_name`, or `source_name.table_name` for sources."""
        if self.resource_type == "source":
            return f"{self.source_name}.{self.name}"
        return self.name

    @property
    def identifier(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class GenericTest:
    """A generic data test (unique, not_null, relationships, ...) attached to a node."""

    unique_id: str
    test_name: str
    """e.g. "unique", "relationships", "unique_combination_of_columns"."""
    namespace: str | None
    attached_node: str | None
    column_name: str | None
    kwargs: Mapping[str, Any]
    where: str | None
    severity: str
    depends_on_nodes: tuple[str, ...]


def _node_from_raw(raw: Mapping[str, Any]) -> Node:
    config = raw.get("config") or {}
    columns = {
        name: ColumnInfo(
            name=col.get("name", name),
            data_type=col.get("data_type"),
            description=col.get("description") or "",
            meta=col.get("meta") or {},
            tags=tuple(col.get("tags") or ()),
            constraints=tuple(col.get("constraints") or ()),
        )
        for name, col in (raw.get("columns") or {}).items()
    }
    depends = raw.get("depends_on") or {}
    contract = raw.get("contract") or config.get("contract") or {}
    return Node(
        unique_id=raw["unique_id"],
        resource_type=raw["resource_type"],
        name=raw["name"],
        package_name=raw.get("package_name", ""),
        database=raw.get("database"),
        schema=raw.get("schema"),
        alias=raw.get("alias") or raw.get("identifier"),
        relation_name=raw.get("relation_name"),
        original_file_path=raw.get("original_file_path", ""),
        raw_code=raw.get("raw_code") or raw.get("raw_sql") or "",
        compiled_code=raw.get("compiled_code") or raw.get("compiled_sql"),
        checksum=(raw.get("checksum") or {}).get("checksum", ""),
        materialized=config.get("materialized"),
        depends_on_nodes=tuple(depends.get("nodes") or ()),
        depends_on_macros=tuple(depends.get("macros") or ()),
        columns=columns,
        meta=raw.get("meta") or config.get("meta") or {},
        tags=tuple(raw.get("tags") or ()),
        config=config,
        constraints=tuple(raw.get("constraints") or ()),
        contract_enforced=bool(contract.get("enforced")),
        language=raw.get("language") or "sql",
        source_name=raw.get("source_name"),
        raw=raw,
    )


def _test_from_raw(raw: Mapping[str, Any]) -> GenericTest | None:
    metadata = raw.get("test_metadata")
    if not metadata:
        return None
    kwargs = dict(metadata.get("kwargs") or {})
    # dbt >= 1.10.5 may nest test arguments under `arguments:`; flatten both forms.
    arguments = kwargs.pop("arguments", None)
    if isinstance(arguments, dict):
        kwargs.update(arguments)
    config = raw.get("config") or {}
    return GenericTest(
        unique_id=raw["unique_id"],
        test_name=metadata.get("name", ""),
        namespace=metadata.get("namespace"),
        attached_node=raw.get("attached_node"),
        column_name=raw.get("column_name") or kwargs.get("column_name"),
        kwargs=kwargs,
        where=config.get("where"),
        severity=str(config.get("severity", "ERROR")).upper(),
        depends_on_nodes=tuple((raw.get("depends_on") or {}).get("nodes") or ()),
    )


class NodeMap(Mapping[str, Node]):
    """The manifest's nodes by unique id, each lifted from its raw entry when first read: a
    question about one model does not pay for the thousands of tests beside it."""

    def __init__(self, raw: Mapping[str, Mapping[str, Any]]) -> None:
        self._raw = raw
        self._built: dict[str, Node] = {}

    def __getitem__(self, unique_id: str) -> Node:
        node = self._built.get(unique_id)
        if node is None:
            node = self._built[unique_id] = _node_from_raw(self._raw[unique_id])
        return node

    def __contains__(self, unique_id: object) -> bool:
        return unique_id in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def of_type(self, *resource_types: str) -> Iterator[Node]:
        """The nodes of these resource types, in manifest order (the others are not built)."""
        for unique_id, raw in self._raw.items():
            if raw.get("resource_type") in resource_types:
                yield self[unique_id]


RELATION_TYPES = ("model", "seed", "snapshot", "source")
"""Resource types that are relations a model can read."""


class Manifest:
    """A loaded manifest with lookups by unique id, by name and the child map."""

    def __init__(self, data: Mapping[str, Any], path: Path | None = None) -> None:
        self.data = data
        self.path = path

    @classmethod
    def load(cls, path: Path) -> Manifest:
        from dataops_dev.statefiles import load_json

        fix = "build it again: `dataops-dev build` (or `dbt parse`)"
        try:
            data = load_json(Path(path), what="dbt manifest", fix=fix, error=ProjectError)
        except FileNotFoundError as exc:
            raise ProjectError(
                f"no manifest at {path}", "run `dataops-dev build` (or `dbt parse`) first"
            ) from exc
        return cls(data, Path(path))

    @property
    def schema_version(self) -> str:
        return str((self.data.get("metadata") or {}).get("dbt_schema_version", ""))

    @property
    def project_name(self) -> str:
        return str((self.data.get("metadata") or {}).get("project_name", ""))

    @cached_property
    def nodes(self) -> NodeMap:
        """Models, seeds, snapshots, analyses and tests, keyed by unique id."""
        return NodeMap(self.data.get("nodes") or {})

    @cached_property
    def sources(self) -> NodeMap:
        return NodeMap(self.data.get("sources") or {})

    def relations(self) -> Iterator[Node]:
        """Models, seeds, snapshots and sources (what SQL can read), tests left unbuilt."""
        yield from self.nodes.of_type(*RELATION_TYPES)
        yield from self.sources.of_type(*RELATION_TYPES)

    @cached_property
    def exposures(self) -> dict[str, Mapping[str, Any]]:
        return dict(self.data.get("exposures") or {})

    @cached_property
    def tests(self) -> list[GenericTest]:
        tests = []
        for raw in (self.data.get("nodes") or {}).values():
            if raw.get("resource_type") in ("test", "data_test"):
                test = _test_from_raw(raw)
                if test is not None and test.attached_node is None:
                    # dbt leaves `attached_node` empty for tests on sources: recover it.
                    test = replace(test, attached_node=self._tested_node(test))
                if test is not None:
                    tests.append(test)
        return tests

    def _tested_node(self, test: GenericTest) -> str | None:
        """The node a test's `model` kwarg names (`source('a', 'b')` or `ref('m')`)."""
        import re

        text = str(test.kwargs.get("model") or "")
        source = re.search(r"source\(\s*['\"]([^'\"]+)['\"]\s*,\s*['\"]([^'\"]+)['\"]", text)
        ref = re.search(r"ref\(\s*['\"]([^'\"]+)['\"]", text)
        for uid in test.depends_on_nodes:
            node = self.get(uid)
            if node is None:
                continue
            if source and node.resource_type == "source":
                if (node.source_name, node.name) == (source.group(1), source.group(2)):
                    return uid
            elif ref and node.resource_type != "source" and node.name == ref.group(1):
                return uid
        return None

    def models(self, *, own_project: bool = True) -> Iterator[Node]:
        for node in self.nodes.of_type("model"):
            if own_project and self.project_name and node.package_name != self.project_name:
                continue
            yield node

    def get(self, unique_id: str) -> Node | None:
        return self.nodes.get(unique_id) or self.sources.get(unique_id)

    @cached_property
    def _by_name(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for node in self.relations():
            index.setdefault(node.display_name, node.unique_id)
        return index

    def lookup(self, name: str) -> Node | None:
        """A model/seed/snapshot by name, a source by `source_name.table_name`, or a unique
        id; None when nothing has that name (`find` says what is close)."""
        uid = self._by_name.get(name) or name
        return self.get(uid)

    def find(self, name: str) -> Node:
        """A model/seed/snapshot by name, or a source by `source_name.table_name`."""
        uid = self._by_name.get(name) or (name if self.get(name) else None)
        if uid is None:
            import difflib

            close = difflib.get_close_matches(name, list(self._by_name), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "list models with `dbt ls`"
            raise ProjectError(f"no model or source named {name!r} in the project", hint)
        node = self.get(uid)
        assert node is not None
        return node

    @cached_property
    def child_map(self) -> dict[str, tuple[str, ...]]:
        if self.data.get("child_map"):
            return {k: tuple(v) for k, v in self.data["child_map"].items()}
        children: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for parent in node.depends_on_nodes:
                children.setdefault(parent, []).append(node.unique_id)
        for uid, exposure in self.exposures.items():
            for parent in (exposure.get("depends_on") or {}).get("nodes") or ():
                children.setdefault(parent, []).append(uid)
        return {k: tuple(v) for k, v in children.items()}

    @cached_property
    def dependency_order(self) -> tuple[Node, ...]:
        """Models and snapshots in dependency order (parents first); cycles are broken by name
        order. Computed once per manifest: impact, lineage and deploy all walk it."""
        models = {n.unique_id: n for n in self.nodes.of_type("model", "snapshot")}
        order: list[Node] = []
        state: dict[str, int] = {}
        for start in sorted(models):
            if state.get(start):
                continue
            stack: list[tuple[str, Iterator[str]]] = [(start, iter(models[start].depends_on_nodes))]
            state[start] = 1
            while stack:
                uid, parents = stack[-1]
                parent = next(parents, None)
                if parent is None:
                    stack.pop()
                    state[uid] = 2
                    order.append(models[uid])
                elif parent in models and not state.get(parent):
                    state[parent] = 1
                    stack.append((parent, iter(models[parent].depends_on_nodes)))
        return tuple(order)

    def descendants(self, unique_ids: Iterable[str]) -> set[str]:
        """All nodes downstream of `unique_ids` (exclusive), exposures included."""
        seen: set[str] = set()
        stack = list(unique_ids)
        while stack:
            for child in self.child_map.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    @cached_property
    def _tests_by_node(self) -> dict[str, tuple[GenericTest, ...]]:
        index: dict[str, list[GenericTest]] = {}
        for test in self.tests:
            if test.attached_node:
                index.setdefault(test.attached_node, []).append(test)
        return {uid: tuple(tests) for uid, tests in index.items()}

    def tests_on(self, unique_id: str) -> list[GenericTest]:
        """The generic tests attached to a node (an index built once per manifest)."""
        return list(self._tests_by_node.get(unique_id, ()))

    def primary_key(self, unique_id: str) -> tuple[str, ...] | None:
        """The node's key, in discovery order: `primary_key` constraint, `meta`, tests.

        Order: model-level or column-level `primary_key` constraint; `meta.primary_key` (or
        `primary-key`) on the node or a column; a column with both `unique` and `not_null` tests;
        a `unique_combination_of_columns` test.
        """
        node = self.get(unique_id)
        if node is None:
            return None
        for constraint in node.constraints:
            if constraint.get("type") == "primary_key" and constraint.get("columns"):
                return tuple(constraint["columns"])
        for column in node.columns.values():
            if any(c.get("type") == "primary_key" for c in column.constraints):
                return (column.name,)
        for key in ("primary_key", "primary-key"):
            declared = node.meta.get(key) or node.config.get("meta", {}).get(key)
            if declared:
                return tuple(declared) if isinstance(declared, list) else (str(declared),)
        for column in node.columns.values():
            if column.meta.get("primary_key") or column.meta.get("primary-key"):
                return (column.name,)
        tests = [t for t in self.tests_on(unique_id) if not t.where]
        unique = {t.column_name for t in tests if t.test_name == "unique" and t.column_name}
        not_null = {t.column_name for t in tests if t.test_name == "not_null" and t.column_name}
        both = sorted(c for c in unique & not_null if c)
        if both:
            return (both[0],)
        for test in tests:
            if test.test_name == "unique_combination_of_columns":
                columns = test.kwargs.get("combination_of_columns")
                if columns:
                    return tuple(columns)
        return None
