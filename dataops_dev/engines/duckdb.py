"""DuckDB engine: the embedded default. One file per environment; attach others by alias."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from dataops_dev.engines.base import Column, Relation, quote, redact_error, render
from dataops_dev.errors import EngineError, LockedError

if TYPE_CHECKING:
    from sqlglot import exp

_LOCK_PATTERN = re.compile(r"(Could not set lock|Conflicting lock|lock on file)", re.IGNORECASE)

# Errors about names and statements (unknown table, syntax, files), which quote identifiers, not
# data: their identifiers stay readable. Every other error may quote a row's value.
_NAME_ERRORS = (
    duckdb.CatalogException,
    duckdb.BinderException,
    duckdb.ParserException,
    duckdb.IOException,
    duckdb.TransactionException,
    duckdb.NotImplementedException,
    duckdb.PermissionException,
)


def _translate(exc: duckdb.Error, path: str) -> Exception:
    text = str(exc)
    if _LOCK_PATTERN.search(text):
        pid = re.search(r"PID (\d+)", text)
        holder = f" (held by process {pid.group(1)})" if pid else ""
        return LockedError(
            f"database file {path} is in use by another process{holder}",
            "wait for the other dataops-dev/dbt command to finish, then retry",
        )
    about_names = isinstance(exc, _NAME_ERRORS)
    return EngineError(
        f"DuckDB: {redact_error(text, keep_identifiers=about_names) or type(exc).__name__}"
    )


class DuckDBEngine:
    """A DuckDB connection, optionally with other files attached under aliases."""

    dialect = "duckdb"

    def __init__(
        self,
        path: Path | str = ":memory:",
        *,
        read_only: bool = False,
        threads: int | None = None,
    ) -> None:
        self.path = str(path)
        try:
            self.connection = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from exc
        # DuckDB draws its own progress bar on stdout for long queries: stdout is data here.
        self.connection.execute("SET enable_progress_bar = false")
        if threads:
            self.connection.execute(f"SET threads = {int(threads)}")

    def attach(self, path: Path | str, alias: str, *, read_only: bool = True) -> None:
        """Attach another database file under `alias` (read-only unless asked)."""
        from sqlglot import exp

        mode = " (READ_ONLY)" if read_only else ""
        literal = exp.Literal.string(str(path)).sql("duckdb")
        try:
            self.connection.execute(f"ATTACH {literal} AS {quote(alias, 'duckdb')}{mode}")
        except duckdb.Error as exc:
            raise _translate(exc, str(path)) from exc

    def execute(self, sql: str | exp.Expression, params: Sequence[Any] | None = None) -> None:
        try:
            self.connection.execute(render(sql, self.dialect), params)
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def fetchall(
        self, sql: str | exp.Expression, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        try:
            return self.connection.execute(render(sql, self.dialect), params).fetchall()
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def fetch_with_names(
        self, sql: str | exp.Expression, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            cursor = self.connection.execute(render(sql, self.dialect), params)
            names = [d[0] for d in cursor.description or []]
            return names, cursor.fetchall()
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def columns(self, relation: Relation) -> list[Column]:
        database = relation.database or self._current_database()
        rows = self.fetchall(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [database, relation.schema, relation.name],
        )
        return [Column(name, dtype) for name, dtype in rows]

    def relation_exists(self, relation: Relation) -> bool:
        database = relation.database or self._current_database()
        rows = self.fetchall(
            "SELECT 1 FROM information_schema.tables "
            "WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
            [database, relation.schema, relation.name],
        )
        return bool(rows)

    def list_relations(self, schema: str, database: str | None = None) -> list[Relation]:
        database = database or self._current_database()
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = ? AND table_schema = ? ORDER BY table_name",
            [database, schema],
        )
        return [Relation(schema=schema, name=name, database=database) for (name,) in rows]

    def _current_database(self) -> str:
        return str(self.fetchall("SELECT current_database()")[0][0])

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
