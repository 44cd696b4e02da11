"""The Engine interface: the few operations dataops_dev needs from a database.

Heavy work is SQL executed inside the engine; only counts and bounded example rows come back.
Identifiers reach SQL through `Relation.sql()` / `quote()` (sqlglot), never by string pasting.
sqlglot is imported by the first call that needs it, not by this module: a DuckDB diff of
unchanged columns builds its SQL without it (`diffing.duckdb_sql`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlglot import exp


@dataclass(frozen=True, order=True)
class Relation:
    """A table or view: `[database.]schema.name`."""

    schema: str
    name: str
    database: str | None = None

    @classmethod
    def parse(cls, text: str) -> Relation:
        """Parse `[database.]schema.table` (quoted parts allowed)."""
        import sqlglot
        from sqlglot import exp

        from dataops_dev.errors import UsageError

        hint = "write it as schema.table or database.schema.table"
        try:
            table = sqlglot.parse_one(text, into=exp.Table)
        except sqlglot.errors.SqlglotError as exc:  # ParseError and TokenError (`"`)
            raise UsageError(f"cannot read relation name {text!r}", hint) from exc
        # `a.b.c.d` parses into nested parts that the three fields would silently drop.
        parts = [table.args.get(key) for key in ("this", "db", "catalog")]
        if not all(part is None or isinstance(part, exp.Identifier) for part in parts):
            raise UsageError(f"relation name {text!r} has too many parts", hint)
        if not table.db:
            raise UsageError(
                f"relation {text!r} needs a schema", "write it as schema.table or db.schema.table"
            )
        return cls(schema=table.db, name=table.name, database=table.catalog or None)

    def to_table(self) -> exp.Table:
        from sqlglot import exp

        return exp.table_(self.name, db=self.schema, catalog=self.database, quoted=True)

    def sql(self, dialect: str) -> str:
        return self.to_table().sql(dialect=dialect)

    def __str__(self) -> str:
        parts = [p for p in (self.database, self.schema, self.name) if p]
        return ".".join(parts)


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str


def quote(identifier: str, dialect: str) -> str:
    """Quote one identifier for `dialect`."""
    from sqlglot import exp

    return exp.to_identifier(identifier, quoted=True).sql(dialect=dialect)


class Engine(Protocol):
    """A connection to DuckDB or a warehouse."""

    dialect: str
    """The sqlglot dialect name ("duckdb", "postgres")."""

    def execute(self, sql: str | exp.Expression, params: Sequence[Any] | None = None) -> None:
        """Run a statement that returns nothing we need."""

    def fetchall(
        self, sql: str | exp.Expression, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a query and return all rows (callers keep results small)."""

    def fetch_with_names(
        self, sql: str | exp.Expression, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a query and return (column names, rows)."""

    def columns(self, relation: Relation) -> list[Column]:
        """The relation's columns in order; empty when it does not exist."""

    def relation_exists(self, relation: Relation) -> bool: ...

    def list_relations(self, schema: str, database: str | None = None) -> list[Relation]: ...

    def close(self) -> None: ...


def render(sql: str | exp.Expression, dialect: str) -> str:
    return sql if isinstance(sql, str) else sql.sql(dialect=dialect)


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])", re.IGNORECASE)


def _redact_quoted(text: str, quotes: str) -> str:
    """Each quoted part of `text` as `'…'`: from an opening quote to the last quote of the same
    kind (a value may hold that quote itself), or to the end of the line when it is unclosed."""
    # An apostrophe inside a word ("can't") opens nothing; anything else does.
    opening = re.compile(f"(?<!\\w)[{quotes}]|[{quotes}](?!\\w)")
    out: list[str] = []
    position = 0
    while True:
        match = opening.search(text, position)
        if match is None:
            out.append(text[position:])
            return "".join(out)
        start, quote_char = match.start(), match.group()
        end = text.rfind(quote_char)
        closed = end > start
        out.append(f"{text[position:start]}{quote_char}…{quote_char if closed else ''}")
        if not closed:
            return "".join(out)
        position = end + 1


def redact_error(text: str, *, keep_identifiers: bool) -> str:
    """The first line of an engine's error message with the data values it may quote taken out.

    Engines quote the offending value in data errors ("Could not convert string 'alice@…' to
    INT64", `invalid input syntax for type bigint: "…"`, `duplicate key "5"`): production values
    must not reach terminals and CI logs that way. String literals are always redacted; with
    `keep_identifiers` (errors about names: unknown table, syntax) double-quoted identifiers
    stay readable, otherwise they go too, and so do bare numbers. Later lines (SQL context,
    PostgreSQL's DETAIL `Key (email)=(…)`) are dropped.
    """
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    if keep_identifiers:
        return _redact_quoted(line, "'")
    return _NUMBER.sub("…", _redact_quoted(line, "'\""))
