"""Where an environment's dbt `source()`s read from: the seam between environments and the sample.

Environments never read production directly. DuckDB: every environment attaches one source file
read-only under `SOURCE_ALIAS` and gets views `<schema>.<table>` onto it, so `source()` resolves to
it without editing the user's project. Warehouse: the sandbox database holds the source schemas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dataops_dev.config import LoadedConfig
from dataops_dev.engines.base import Relation
from dataops_dev.reporting import NULL_REPORTER, Reporter

SOURCE_ALIAS = "dataops_source"


@dataclass(frozen=True)
class SourceData:
    kind: Literal["production", "sample"]
    identity: str
    """A fingerprint recorded in environment metadata (which sample an env was built on)."""
    relations: tuple[Relation, ...]
    """Every source table available (schema + name)."""
    duckdb_file: Path | None = None
    """DuckDB backend: the file environments attach read-only as `dataops_source`."""
    sandbox_database: str | None = None
    """Warehouse backend: the database whose source schemas hold the data."""


def resolve_source_data(
    loaded: LoadedConfig,
    *,
    reporter: Reporter = NULL_REPORTER,
    refresh: bool = False,
) -> SourceData:
    """The source data environments build on.

    Interim seam: a read-only pass-through to production's DuckDB file (the sampler replaces it
    with the masked sample).
    """
    import duckdb

    from dataops_dev.dbt.project import duckdb_path, load_profile_target
    from dataops_dev.errors import ProjectError

    output = load_profile_target(loaded)
    if output.get("type") != "duckdb":
        raise ProjectError(
            "warehouse environments read the masked sample", "run `dataops-dev sample` first"
        )
    path = duckdb_path(loaded, output)
    if not path.exists():
        raise ProjectError(f"production database {path} does not exist")
    connection = duckdb.connect(str(path), read_only=True)
    try:
        rows = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() ORDER BY 1, 2"
        ).fetchall()
    finally:
        connection.close()
    stat = path.stat()
    return SourceData(
        kind="production",
        identity=f"production:{stat.st_size}:{int(stat.st_mtime)}",
        relations=tuple(Relation(schema=s, name=t) for s, t in rows),
        duckdb_file=path,
    )
