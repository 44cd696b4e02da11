"""dbt sources that are files (dbt-duckdb `external_location`, `read_csv(...)` relations): found
in the manifest, read into the sampling session like production tables, and, in environments,
pointed at the masked sample instead of the files.

Paths resolve as dbt-duckdb resolves them when dbt runs from the project directory: relative to
it. Environments never read these files: `point_sources_at_sample` removes the external location
from the sources of the manifest dbt builds with, so `source()` renders the environment's view of
the sample (the user's project is not edited).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.engines.base import Engine, Relation, quote
from dataops_dev.errors import ProjectError

FILES_ALIAS = "__dataops_files"
"""The in-memory catalog of the sampling session that holds the file sources' rows."""

EXTERNAL_KEY = "external_location"
_READERS = (
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "parquet_scan",
    "read_json",
    "read_json_auto",
    "read_ndjson",
    "read_ndjson_auto",
    "read_xlsx",
    "delta_scan",
    "iceberg_scan",
)


@dataclass(frozen=True)
class FileSource:
    """One dbt source whose rows live in files."""

    name: str
    """`source_name.table_name`."""
    unique_id: str
    relation: Relation
    """Where the sample stores it (the source's schema and identifier)."""
    expression: str
    """A DuckDB table expression reading the files, paths made absolute."""
    paths: tuple[str, ...]
    """The local paths (or globs) it reads, absolute."""

    def missing(self) -> tuple[str, ...]:
        """Paths that match no file now (globs count as present when one file matches)."""
        gone = []
        for path in self.paths:
            if "://" in path:
                continue
            if any(ch in path for ch in "*?["):
                if not any(Path("/").glob(path.lstrip("/"))):
                    gone.append(path)
            elif not Path(path).exists():
                gone.append(path)
        return tuple(gone)

    def stamps(self) -> dict[str, str]:
        """Size and mtime of each local file read (globs expanded): they change with the data."""
        found: dict[str, str] = {}
        for path in self.paths:
            if "://" in path:
                continue
            matches = (
                sorted(str(p) for p in Path("/").glob(path.lstrip("/")))
                if any(ch in path for ch in "*?[")
                else [path]
            )
            for match in matches:
                with contextlib.suppress(OSError):
                    stat = os.stat(match)
                    found[match] = f"{stat.st_size}:{stat.st_mtime_ns}"
        return found


def current_stamps(paths: Sequence[str]) -> dict[str, str | None]:
    """Size and mtime of each file now; None for a file that is gone."""
    now: dict[str, str | None] = {}
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            now[path] = None
            continue
        now[path] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return now


def _is_external(node: Node) -> bool:
    if EXTERNAL_KEY in (node.meta or {}) or EXTERNAL_KEY in (node.config or {}):
        return True
    if EXTERNAL_KEY in ((node.config or {}).get("meta") or {}):
        return True
    rendered = (node.relation_name or "").strip()
    # dbt renders table sources as quoted identifiers; anything else is an expression.
    return bool(rendered) and not rendered.startswith('"') and "(" in rendered


def _absolute(path: str, project_dir: Path) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    return str((project_dir / path).resolve())


def _rewrite_paths(rendered: str, project_dir: Path) -> tuple[str, tuple[str, ...]]:
    """`rendered` (dbt-duckdb's source relation) with its file paths made absolute."""
    text = rendered.strip()
    if text.startswith("'") and text.endswith("'") and "'" not in text[1:-1]:
        path = _absolute(text[1:-1], project_dir)
        return exp.Literal.string(path).sql("duckdb"), (path,)
    try:
        query = sqlglot.parse_one(f"SELECT * FROM {text}", read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise ProjectError(
            f"cannot read the external location {text!r}",
            "write it as a path or a read_csv(...)/read_parquet(...) call",
        ) from exc
    source = query.find(exp.Table)
    call = source.this if source is not None else None
    if not isinstance(call, exp.Func) or _reader_name(call) not in _READERS:
        raise ProjectError(
            f"the external location {text!r} is not a file reader",
            f"use one of {', '.join(_READERS)} (or a plain path)",
        )
    # Only literals and `option = literal` pairs: what reaches SQL is a file reader, no query.
    if any(not isinstance(node, _ARGUMENT_NODES) for node in _arguments(call)):
        raise ProjectError(
            f"the external location {text!r} holds more than a file reader's arguments",
            "give the reader literal paths and options only",
        )
    arguments = list(call.expressions)
    if not isinstance(call, exp.Anonymous) and call.this is not None:
        arguments.insert(0, call.this)
    first = arguments[0] if arguments else None
    literals: list[exp.Literal] = []
    if isinstance(first, exp.Literal) and first.is_string:
        literals = [first]
    elif isinstance(first, exp.Array):
        literals = [e for e in first.expressions if isinstance(e, exp.Literal) and e.is_string]
    paths = []
    for literal in literals:
        path = _absolute(literal.this, project_dir)
        literal.replace(exp.Literal.string(path))
        paths.append(path)
    return call.sql("duckdb"), tuple(paths)


_ARGUMENT_NODES = (
    exp.Literal,
    exp.Array,
    exp.EQ,
    exp.PropertyEQ,
    exp.Column,
    exp.Identifier,
    exp.Boolean,
    exp.Struct,
    exp.Tuple,
    exp.Neg,
    exp.Null,
)


def _arguments(call: exp.Func) -> list[Any]:
    """Every expression inside the call's arguments."""
    return [node for child in call.iter_expressions() for node in child.walk()]


def _reader_name(call: exp.Func) -> str:
    if isinstance(call, exp.Anonymous):
        return str(call.name).lower()
    return call.sql_name().lower()


def discover(manifest: Manifest, project_dir: Path) -> dict[str, FileSource]:
    """The manifest's file-backed sources by `source_name.table_name`.

    `manifest` must come from a parse with the production target (dbt-duckdb renders the
    external location into `relation_name`, `{name}` placeholders filled in).
    """
    found: dict[str, FileSource] = {}
    for node in manifest.sources.values():
        if not _is_external(node) or not node.relation_name:
            continue
        expression, paths = _rewrite_paths(node.relation_name, project_dir)
        found[node.display_name] = FileSource(
            name=node.display_name,
            unique_id=node.unique_id,
            relation=Relation(node.schema or "main", node.identifier),
            expression=expression,
            paths=paths,
        )
    return found


def load(engine: Engine, sources: Mapping[str, FileSource]) -> dict[Relation, Relation]:
    """Read each file source once into the in-memory `FILES_ALIAS` catalog of `engine` (a DuckDB
    session): one snapshot, like production's tables. Returns sample relation -> loaded table."""
    if not sources:
        return {}
    engine.execute(f"ATTACH ':memory:' AS {quote(FILES_ALIAS, 'duckdb')}")
    loaded: dict[Relation, Relation] = {}
    for schema in sorted({s.relation.schema for s in sources.values()}):
        engine.execute(
            f"CREATE SCHEMA IF NOT EXISTS {quote(FILES_ALIAS, 'duckdb')}.{quote(schema, 'duckdb')}"
        )
    for name in sorted(sources):
        source = sources[name]
        missing = source.missing()
        if missing:
            raise ProjectError(
                f"source {name} reads {', '.join(missing)}, which does not exist",
                "restore the file, or fix the source's external_location",
            )
        table = Relation(source.relation.schema, source.relation.name, FILES_ALIAS)
        engine.execute(f"CREATE TABLE {table.sql('duckdb')} AS SELECT * FROM {source.expression}")
        loaded[Relation(source.relation.schema, source.relation.name)] = table
    return loaded


def _quoted_relation(database: Any, schema: Any, identifier: Any) -> str:
    parts = (database, schema, identifier)
    return ".".join('"' + str(p).replace('"', '""') + '"' for p in parts if p)


def as_tables(manifest: Manifest) -> Manifest:
    """`manifest` with its file sources rendered as tables (`"db"."schema"."identifier"`), as
    environments see them: model SQL rendered from it traces keys back to those sources."""
    sources = dict(manifest.data.get("sources") or {})
    changed = False
    for uid, node in manifest.sources.items():
        if _is_external(node):
            relation = _quoted_relation(node.database, node.schema, node.identifier)
            sources[uid] = {**sources[uid], "relation_name": relation}
            changed = True
    if not changed:
        return manifest
    return Manifest({**manifest.data, "sources": sources}, manifest.path)


def point_sources_at_sample(dbt_manifest: Any) -> int:
    """Remove dbt-duckdb's external location from every source of a parsed dbt `Manifest`
    (dbt's own object, before a build), so `source()` renders `database.schema.identifier`:
    the environment's view of the sample. Returns how many sources changed."""
    changed = 0
    for source in dbt_manifest.sources.values():
        holders: Sequence[Any] = (
            source.meta,
            source.source_meta,
            getattr(source.config, "_extra", {}),
            getattr(source.config, "meta", {}),
        )
        if not any(EXTERNAL_KEY in h for h in holders if isinstance(h, dict)):
            continue
        for holder in holders:
            if isinstance(holder, dict):
                holder.pop(EXTERNAL_KEY, None)
        source.relation_name = _quoted_relation(source.database, source.schema, source.identifier)
        changed += 1
    return changed


__all__: Sequence[str] = (
    "FILES_ALIAS",
    "FileSource",
    "as_tables",
    "current_stamps",
    "discover",
    "load",
    "point_sources_at_sample",
)
