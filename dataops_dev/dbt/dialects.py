"""Which sqlglot dialect speaks each dbt adapter's SQL: the lowest layer, imported by the
renderer (quoting), lineage (parsing) and hooks alike."""

from __future__ import annotations

from collections.abc import Mapping

ADAPTER_DIALECTS: Mapping[str, str] = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "redshift": "redshift",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "databricks": "databricks",
    "spark": "spark",
    "trino": "trino",
    "athena": "athena",
    "sqlserver": "tsql",
    "fabric": "tsql",
    "clickhouse": "clickhouse",
}


def dialect_of_adapter(adapter: str) -> str:
    """The sqlglot dialect for a dbt adapter type (the adapter's own name when unknown)."""
    return ADAPTER_DIALECTS.get(adapter, adapter)
