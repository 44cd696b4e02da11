"""PostgreSQL engine: the warehouse backend tested here (psycopg 3, autocommit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from dataops_dev.engines.base import Column, Relation, redact_error, render
from dataops_dev.errors import EngineError


def conninfo_from_credentials(credentials: Mapping[str, Any], database: str | None = None) -> str:
    """A libpq connection string from a dbt postgres output (host, port, user, password, dbname)."""
    from psycopg.conninfo import make_conninfo

    params = {
        "host": credentials.get("host"),
        "port": credentials.get("port"),
        "user": credentials.get("user"),
        "password": credentials.get("password") or credentials.get("pass"),
        "dbname": database or credentials.get("dbname") or credentials.get("database"),
        "sslmode": credentials.get("sslmode"),
    }
    return make_conninfo(**{k: str(v) for k, v in params.items() if v not in (None, "")})


# SQLSTATE classes of errors about names, sessions and resources: their double-quoted parts are
# identifiers, kept readable. Data exceptions (22), constraint violations (23) and anything else
# may quote a row's value.
_NAME_CLASSES = frozenset({"08", "25", "3D", "3F", "40", "42", "53", "55", "57"})


def error_text(exc: Exception) -> str:
    """A psycopg error as one line with no data value in it (see `redact_error`)."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    about_names = sqlstate[:2] in _NAME_CLASSES
    return redact_error(str(exc), keep_identifiers=about_names) or type(exc).__name__


class PostgresEngine:
    dialect = "postgres"

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.conninfo = conninfo
        try:
            self.connection = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise EngineError(
                f"cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0]}",
                "check the dbt profile's host/user/dbname and that the server is running",
            ) from exc

    def _run(self, sql: str | exp.Expression, params: Sequence[Any] | None) -> Any:
        import psycopg

        text = render(sql, self.dialect)
        try:
            cursor = self.connection.execute(text.replace("?", "%s") if params else text, params)
        except psycopg.Error as exc:
            raise EngineError(f"PostgreSQL: {error_text(exc)}") from exc
        return cursor

    def execute(self, sql: str | exp.Expression, params: Sequence[Any] | None = None) -> None:
        self._run(sql, params)

    def fetchall(
        self, sql: str | exp.Expression, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return list(self._run(sql, params).fetchall())

    def fetch_with_names(
        self, sql: str | exp.Expression, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = self._run(sql, params)
        names = [d.name for d in cursor.description or []]
        return names, list(cursor.fetchall())

    def columns(self, relation: Relation) -> list[Column]:
        rows = self.fetchall(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            [relation.schema, relation.name],
        )
        return [Column(name, dtype) for name, dtype in rows]

    def relation_exists(self, relation: Relation) -> bool:
        rows = self.fetchall(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            [relation.schema, relation.name],
        )
        return bool(rows)

    def list_relations(self, schema: str, database: str | None = None) -> list[Relation]:
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name",
            [schema],
        )
        return [Relation(schema=schema, name=name, database=database) for (name,) in rows]

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> PostgresEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
