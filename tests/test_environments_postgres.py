"""Warehouse environments on a real PostgreSQL: schemas per environment in a sandbox database."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from dataops_dev.config import load_config
from dataops_dev.engines.base import Relation
from dataops_dev.environments import BuildRequest, Environments, environment_name
from dataops_dev.errors import BuildError, ConfigError
from dataops_dev.sources import SourceData
from tests.conftest import git, pg_conninfo

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _schemas(database: str) -> set[str]:
    with psycopg.connect(pg_conninfo(database)) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
            "AND nspname <> 'information_schema'"
        ).fetchall()
    return {r[0] for r in rows}


def _count(database: str, relation: str) -> int:
    with psycopg.connect(pg_conninfo(database)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {relation}").fetchone()[0])  # type: ignore[index]


@pytest.fixture
def warehouse_project(
    sample_project_copy: Path,
    sample_project_prod: Path,
    pg_database_factory: Callable[[], str],
    generator,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, str, str]:
    """sample_project configured for the warehouse backend: (project, production db, sandbox db).

    The sandbox's `raw` schema is loaded directly with generated data, standing in for the sample
    so this test exercises the environment mechanics alone.
    """
    production, sandbox = pg_database_factory(), pg_database_factory()
    generator.load_into_postgres(sample_project_prod, pg_conninfo(production))
    generator.load_into_postgres(sample_project_prod, pg_conninfo(sandbox))
    monkeypatch.setenv("DATAOPS_PG_DATABASE", production)
    project = sample_project_copy
    (project / "dataops_dev.yml").write_text(
        "version: 1\n"
        "production:\n  target: pg\n"
        f"backend:\n  type: warehouse\n  sandbox_database: {sandbox}\n"
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "warehouse config")
    return project, production, sandbox


def _source(sandbox: str) -> SourceData:
    return SourceData(
        kind="sample",
        identity="test-sample",
        relations=(Relation("raw", "customers"),),
        sandbox_database=sandbox,
    )


def test_build_into_schemas_atomically_and_drop(warehouse_project: tuple[Path, str, str]) -> None:
    project, production, sandbox = warehouse_project
    production_schemas = _schemas(production)
    production_rows = _count(production, "raw.orders")
    loaded = load_config(project)
    envs = Environments(loaded)
    info = envs.create('feature/Drop"; DROP TABLE x;--')
    assert info.name == environment_name('feature/Drop"; DROP TABLE x;--')
    commit = git(project, "rev-parse", "HEAD")

    record = envs.build(info, BuildRequest(code_dir=project, commit=commit), _source(sandbox))
    assert record.status == "success"
    assert record.models_failed == 0 and record.tests_failed == 0
    info = envs.get(info.name)
    assert info.name in info.schemas
    assert _count(sandbox, f'"{info.name}".dim_customers') > 0
    assert envs.size_bytes(info) > 0
    # production is never written
    assert _schemas(production) == production_schemas
    assert _count(production, "raw.orders") == production_rows

    # A failing build restores the previous schemas exactly.
    before = _count(sandbox, f'"{info.name}".dim_customers')
    model = project / "models" / "marts" / "dim_customers.sql"
    model.write_text(model.read_text() + "\nnot valid sql )))\n")
    with pytest.raises(BuildError, match="still in place"):
        envs.build(info, BuildRequest(code_dir=project, commit=commit), _source(sandbox))
    assert _count(sandbox, f'"{info.name}".dim_customers') == before
    assert not any("__prev" in s for s in _schemas(sandbox))

    envs.drop(info.name)
    assert not any(s.startswith(info.name) for s in _schemas(sandbox))
    assert "raw" in _schemas(sandbox)
    assert _schemas(production) == production_schemas


def test_killed_build_is_recovered(warehouse_project: tuple[Path, str, str]) -> None:
    """A build killed after setting the previous schemas aside is rolled back by `recover`."""
    project, _production, sandbox = warehouse_project
    loaded = load_config(project)
    envs = Environments(loaded)
    info = envs.create("main")
    commit = git(project, "rev-parse", "HEAD")
    envs.build(
        info,
        BuildRequest(code_dir=project, commit=commit, select=("+dim_customers",)),
        _source(sandbox),
    )
    info = envs.get(info.name)
    rows = _count(sandbox, f'"{info.name}".dim_customers')
    # Simulate the state a SIGKILL leaves between "set aside" and "publish".
    with psycopg.connect(pg_conninfo(sandbox), autocommit=True) as conn:
        conn.execute(f'ALTER SCHEMA "{info.name}" RENAME TO "{info.name}__prev"')
        conn.execute(f'CREATE SCHEMA "{info.name}"')
        conn.execute(f'CREATE TABLE "{info.name}".half_built (x int)')
    assert envs.recover() == [info.name]
    assert _count(sandbox, f'"{info.name}".dim_customers') == rows
    with psycopg.connect(pg_conninfo(sandbox)) as conn:
        leftovers = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'half_built'",
            [info.name],
        ).fetchall()
    assert leftovers == []


def test_sandbox_must_not_be_production(warehouse_project: tuple[Path, str, str]) -> None:
    project, production, _sandbox = warehouse_project
    (project / "dataops_dev.yml").write_text(
        "version: 1\nproduction:\n  target: pg\n"
        f"backend:\n  type: warehouse\n  sandbox_database: {production}\n"
    )
    with pytest.raises(ConfigError, match="production"):
        Environments(load_config(project)).create("main")


def test_cli_env_list_on_warehouse(warehouse_project: tuple[Path, str, str]) -> None:
    project, _production, _sandbox = warehouse_project
    loaded = load_config(project)
    Environments(loaded).create("main")
    import json
    import os
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "dataops_dev", "env", "list", "--json"],
        cwd=project,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["environments"]
    assert row["backend"] == "warehouse" and row["size_bytes"] == 0
