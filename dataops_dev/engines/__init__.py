"""Database engines: DuckDB (embedded default) and PostgreSQL (the warehouse tested here)."""

from __future__ import annotations

from dataops_dev.engines.base import Column, Engine, Relation, quote
from dataops_dev.engines.duckdb import DuckDBEngine

__all__ = ["Column", "DuckDBEngine", "Engine", "Relation", "quote"]
