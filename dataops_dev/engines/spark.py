"""Spark engine over Spark Connect: one code path for a local server and a cluster.

`SparkEngine("sc://host:15002")` talks to any Spark Connect endpoint. Spark has no
`information_schema`: columns and relations come from the session catalog. Values travel as
parameters (`?` markers, Spark's positional `args`), never pasted into SQL text: Spark servers log
statements at INFO, so a literal there would be a value in somebody's log file.

`dbt-spark` has no Connect method; its `method: session` with
`server_side_parameters: {"spark.remote": "sc://…"}` reaches the same server
(`dbt_outputs.spark_session_output`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from dataops_dev.engines.base import Column, Relation, quote, redact_error, render
from dataops_dev.errors import EngineError

# Spark's error classes about names and statements: their backquoted parts are identifiers.
_NAME_ERRORS = re.compile(
    r"\[(TABLE_OR_VIEW_NOT_FOUND|SCHEMA_NOT_FOUND|UNRESOLVED_COLUMN[\w.]*|PARSE_SYNTAX_ERROR|"
    r"TABLE_OR_VIEW_ALREADY_EXISTS|SCHEMA_ALREADY_EXISTS|UNRESOLVED_ROUTINE|"
    r"NOT_SUPPORTED_COMMAND[\w.]*|UNSUPPORTED_FEATURE[\w.]*|WRONG_NUM_ARGS[\w.]*|"
    r"DATATYPE_MISMATCH[\w.]*|INCOMPATIBLE_COLUMN_TYPE|NUM_COLUMNS_MISMATCH)\]"
)


def error_text(exc: Exception) -> str:
    """A Spark error as one line with no data value in it (see `redact_error`)."""
    text = str(exc).strip()
    # Connect errors repeat the server's stack trace after the first line; the first says it all.
    about_names = bool(_NAME_ERRORS.search(text.splitlines()[0] if text else ""))
    return redact_error(text.replace("`", '"'), keep_identifiers=about_names) or type(exc).__name__


def _quiet_client_logs() -> None:
    # pyspark's client logs every failed query, with the server's message (which may quote a
    # row's value), as JSON on stdout: stdout is data here, and values must not reach logs.
    for name in ("SQLQueryContextLogger", "pyspark", "py4j"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _endpoint(remote: str) -> tuple[str, int]:
    match = re.match(r"^sc://(\[[^\]]+\]|[^:/;]+)(?::(\d+))?(?:/.*)?$", remote)
    if not match:
        raise EngineError(
            f"{remote!r} is not a Spark Connect address", "write it as sc://host:15002"
        )
    return match.group(1).strip("[]"), int(match.group(2) or 15002)


def _probe(remote: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens: the Connect client retries a refused connection for
    minutes before it gives up."""
    import socket

    host, port = _endpoint(remote)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise EngineError(
            f"cannot connect to Spark Connect at {remote}: {exc.strerror or exc}",
            "start the Spark Connect server (or fix spark.remote in the dbt profile) and retry",
        ) from exc


def connect_session(remote: str) -> Any:
    """A Spark Connect session for `remote` (`sc://host:port`)."""
    _probe(remote)
    _quiet_client_logs()
    with warnings.catch_warnings():
        # pyspark warns that pandas >= 3 is not fully supported; we never hand it pandas frames.
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql import SparkSession

        # `create`, not `getOrCreate`: the latter hands back whatever session is active in this
        # process, even one on another server.
        return SparkSession.builder.remote(remote).create()


class SparkEngine:
    """A Spark Connect session. `dialect` is sqlglot's "spark"."""

    dialect = "spark"

    def __init__(self, remote: str, *, session: Any = None) -> None:
        self.remote = remote
        try:
            self.session = session if session is not None else connect_session(remote)
        except EngineError:
            raise
        except ImportError as exc:
            raise EngineError(
                "the spark backend needs pyspark",
                'install it with: pip install "dataops-dev[spark]"',
            ) from exc
        except Exception as exc:  # grpc and pyspark raise several unrelated classes
            raise EngineError(
                f"cannot connect to Spark Connect at {remote}: {error_text(exc)}",
                "start a Spark Connect server (dataops-dev uses `sc://host:15002`) and retry",
            ) from exc

    def _frame(self, sql: str | exp.Expression, params: Sequence[Any] | None) -> Any:
        text = render(sql, self.dialect)
        try:
            return self.session.sql(text, args=list(params)) if params else self.session.sql(text)
        except Exception as exc:
            raise EngineError(f"Spark: {error_text(exc)}") from exc

    def _collect(self, frame: Any) -> list[Any]:
        try:
            return list(frame.collect())
        except Exception as exc:
            raise EngineError(f"Spark: {error_text(exc)}") from exc

    def execute(self, sql: str | exp.Expression, params: Sequence[Any] | None = None) -> None:
        # Connect runs commands (DDL, INSERT) eagerly in `sql()`; a query is only planned there,
        # so anything else is collected to make it run.
        frame = self._frame(sql, params)
        if not _is_command(render(sql, self.dialect)):
            self._collect(frame)

    def fetchall(
        self, sql: str | exp.Expression, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._collect(self._frame(sql, params))]

    def fetch_with_names(
        self, sql: str | exp.Expression, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        frame = self._frame(sql, params)
        rows = self._collect(frame)
        try:
            names = list(frame.columns)
        except Exception as exc:
            raise EngineError(f"Spark: {error_text(exc)}") from exc
        return names, [tuple(row) for row in rows]

    def columns(self, relation: Relation) -> list[Column]:
        if not self.relation_exists(relation):
            return []
        try:
            fields = self.session.table(self._name(relation)).schema.fields
        except Exception as exc:
            raise EngineError(f"Spark: {error_text(exc)}") from exc
        return [Column(field.name, field.dataType.simpleString()) for field in fields]

    def relation_exists(self, relation: Relation) -> bool:
        try:
            return bool(self.session.catalog.tableExists(self._name(relation)))
        except Exception as exc:
            raise EngineError(f"Spark: {error_text(exc)}") from exc

    def schema_exists(self, schema: str) -> bool:
        try:
            return bool(self.session.catalog.databaseExists(quote(schema, self.dialect)))
        except Exception as exc:
            raise EngineError(f"Spark: {error_text(exc)}") from exc

    def list_relations(self, schema: str, database: str | None = None) -> list[Relation]:
        if not self.schema_exists(schema):
            return []
        rows = self.fetchall(f"SHOW TABLES IN {quote(schema, self.dialect)}")
        # SHOW TABLES also lists temporary views (isTemporary = true), which belong to no schema.
        names = sorted(row[1] for row in rows if not row[2])
        return [Relation(schema=schema, name=name, database=database) for name in names]

    def _name(self, relation: Relation) -> str:
        # Spark's catalog is one level (schema.table) under the session catalog.
        return Relation(relation.schema, relation.name).sql(self.dialect)

    def close(self) -> None:
        # Ends this client's session on the server (its temporary views and settings go too).
        # The server may be gone already; nothing is left to release then.
        with contextlib.suppress(Exception):
            self.session.stop()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_COMMANDS = re.compile(
    r"^\s*(CREATE|DROP|ALTER|INSERT|TRUNCATE|CACHE|UNCACHE|REFRESH|SET|USE|ANALYZE|MERGE|DELETE|"
    r"UPDATE|REPLACE)\b",
    re.IGNORECASE,
)


def _is_command(text: str) -> bool:
    return bool(_COMMANDS.match(text))


def remote_from_output(output: Mapping[str, Any]) -> str:
    """The Spark Connect URL of a dbt-spark `method: session` output."""
    parameters = output.get("server_side_parameters") or {}
    remote = parameters.get("spark.remote") if isinstance(parameters, Mapping) else None
    if not remote:
        raise EngineError(
            "the spark output has no Spark Connect address",
            'set server_side_parameters: {"spark.remote": "sc://host:15002"} with method: session',
        )
    return str(remote)
