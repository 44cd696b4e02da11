"""One dbt parse shared by every environment: environments parse under a stand-in database name,
so that dbt's partial-parse state of one (the baseline) serves the parse of another (the branch).

dbt keeps a parse of the project (`partial_parse.msgpack` in the target directory) and re-parses
only the files that changed, but only when the profile's connection settings equal the ones the
state was made with. Each DuckDB environment has its own database name, so a branch's first
build parsed the whole project again although it differs from the baseline by a few files.
Parsing under `PARSE_DATABASE` instead makes the settings the same for every environment; the
parsed manifest then gets the environment's own name (`rename_database`) before anything runs
on it. The partial-parse state itself keeps the stand-in name, never an environment's.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PARSE_DATABASE = "dataops_parsed_env"
"""The database name environments are parsed under; never a real database."""
PARTIAL_PARSE_FILE = "partial_parse.msgpack"

_IN_SCHEMA = re.compile(rf"(?<![A-Za-z0-9_]){PARSE_DATABASE}(?![A-Za-z0-9])")
_VALID_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def rename_database(manifest: Any, database: str) -> None:
    """Give dbt's parsed `manifest` the environment's `database` wherever the parse put
    `PARSE_DATABASE`: the nodes' and sources' database, their schema (a custom schema macro
    may build it from the database's name) and their rendered relation name, quoted or not."""
    if not _VALID_DATABASE.match(database):
        raise ValueError(f"not a plain database name: {database!r}")
    for item in _relations_of(manifest):
        if getattr(item, "database", None) == PARSE_DATABASE:
            item.database = database
        schema = getattr(item, "schema", None)
        renamed = _IN_SCHEMA.sub(database, schema) if isinstance(schema, str) else schema
        if renamed != schema:
            item.schema = renamed
        relation = getattr(item, "relation_name", None)
        if isinstance(relation, str):
            item.relation_name = _renamed_relation(relation, database, schema, renamed)


def _renamed_relation(relation: str, database: str, schema: Any, renamed: Any) -> str:
    """`"db"."schema"."name"` (or unquoted) with the stand-in database, and the schema made of
    it, replaced."""
    for quote in ('"', ""):
        prefix = f"{quote}{PARSE_DATABASE}{quote}."
        if relation.startswith(prefix):
            relation = f"{quote}{database}{quote}." + relation[len(prefix) :]
        if isinstance(schema, str) and renamed != schema:
            relation = relation.replace(
                f".{quote}{schema}{quote}.", f".{quote}{renamed}{quote}.", 1
            )
    return relation


def _relations_of(manifest: Any) -> Iterable[Any]:
    """Everything in a parsed manifest that names a relation."""
    for collection in ("nodes", "sources", "functions"):
        yield from (getattr(manifest, collection, None) or {}).values()
    for model in (getattr(manifest, "semantic_models", None) or {}).values():
        relation = getattr(model, "node_relation", None)
        if relation is not None:
            yield relation


def seed_partial_parse(target: Path, candidates: Iterable[Path]) -> Path | None:
    """Start `target`'s parse from the first of `candidates` (other environments' target
    directories) that holds a partial-parse state, when `target` has none of its own.

    Safe with any candidate: dbt checks the state against the profile, the project files, vars
    and dbt's version and re-parses every file whose contents differ, so a state that does not
    fit costs a full parse, as without it. Returns the state copied, if any."""
    own = target / PARTIAL_PARSE_FILE
    if own.exists():
        return None
    for directory in candidates:
        state = directory / PARTIAL_PARSE_FILE
        if state.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(state, own)
            return state
    return None
