"""deploy leaves production whole: rows only in DuckDB's WAL survive, a branch that did not
build never deploys, PostgreSQL swaps views before their parents and drops every staging schema,
and dbt's database messages (which quote production values) stay out of errors and progress.

Each test builds a tiny dbt project for real (DuckDB file or PostgreSQL database) and deploys a
hand-made Report of it: the review itself is covered by test_review*.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from dataops_dev.config import LoadedConfig, load_config
from dataops_dev.demo import build_production
from dataops_dev.deploy import deploy, plan_deploy
from dataops_dev.errors import BuildError
from dataops_dev.report.model import (
    SCHEMA_VERSION,
    ChangeKind,
    ModelReport,
    ModelStatus,
    Report,
    Side,
    Verdict,
)
from dataops_dev.reporting import CaptureReporter
from tests.conftest import git, pg_conninfo

pytestmark = [pytest.mark.slow]

SECRET = "secret-value-4242"
"""A value in production data that a database error message would quote."""

PARENT = "select id, amount from {{ source('raw', 'items') }}\n"
CHILD = "select id, amount * 2 as doubled from {{ ref('a_parent') }}\n"


def _write(project: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), "utf-8")


def tiny_project(project: Path, output: str, *, child_view: bool) -> Path:
    """A dbt project `tiny`: source raw.items -> a_parent (view) -> z_child, committed on main.

    `z_child` sorts after its parent in the manifest, so a swap in manifest order would meet
    the parent first."""
    _write(
        project,
        {
            "dbt_project.yml": """\
                name: tiny
                version: "1.0.0"
                config-version: 2
                profile: tiny
                models:
                  tiny:
                    +materialized: view
            """,
            "profiles.yml": "tiny:\n  target: prod\n  outputs:\n    prod:\n" + output,
            "dataops_dev.yml": "version: 1\nproduction:\n  target: prod\n",
            ".gitignore": "*.duckdb*\n.dataops/\ntarget/\nlogs/\n",
            "models/sources.yml": """\
                version: 2
                sources:
                  - name: raw
                    tables:
                      - name: items
            """,
            "models/a_parent.sql": PARENT,
            "models/z_child.sql": ("" if child_view else "{{ config(materialized='table') }}\n")
            + CHILD,
        },
    )
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production code")
    return project


def commit_change(project: Path, files: dict[str, str], message: str = "change") -> None:
    _write(project, files)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


def reviewed(project: Path, *changes: tuple[str, ModelStatus], error: str | None = None) -> Report:
    """The Report a passing review of HEAD would give (models and their status only)."""
    head = git(project, "rev-parse", "HEAD")
    return Report(
        schema_version=SCHEMA_VERSION,
        project="tiny",
        generated_at="2024-01-01T00:00:00+00:00",
        base=Side(ref="main", commit=head),
        head=Side(ref="branch", commit=head),
        verdict=Verdict.ERROR if error else Verdict.PASS,
        models=tuple(
            ModelReport(
                name=name,
                unique_id=f"model.tiny.{name}",
                status=status,
                change=ChangeKind.NONE if status is ModelStatus.IMPACTED else ChangeKind.PARTIAL,
            )
            for name, status in changes
        ),
        error=error,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------
# DuckDB


DUCKDB_OUTPUT = (
    "      type: duckdb\n      path: prod.duckdb\n      schema: main\n      threads: 1\n"
)


@pytest.fixture
def duck_project(tmp_path: Path) -> Iterator[tuple[Path, LoadedConfig]]:
    project = tiny_project(tmp_path / "tiny", DUCKDB_OUTPUT, child_view=False)
    con = duckdb.connect(str(project / "prod.duckdb"))
    try:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.items AS SELECT range AS id, 10 AS amount FROM range(10)")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    loaded = load_config(project)
    build_production(loaded)
    yield project, loaded


def _write_without_checkpoint(database: Path, sql: str) -> None:
    """Commit `sql` in another process that dies before any checkpoint: the rows exist only in
    `<database>.wal`, as after a crashed or killed writer."""
    code = textwrap.dedent(
        f"""
        import os, duckdb
        con = duckdb.connect({str(database)!r})
        con.execute("SET wal_autocheckpoint = '1GB'")
        con.execute({sql!r})
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _count(database: Path, sql: str) -> int:
    con = duckdb.connect(str(database), read_only=True)
    try:
        row = con.execute(sql).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def test_duckdb_deploy_keeps_rows_that_are_only_in_the_wal(
    duck_project: tuple[Path, LoadedConfig],
) -> None:
    project, loaded = duck_project
    production = project / "prod.duckdb"
    wal = project / "prod.duckdb.wal"
    commit_change(
        project,
        {
            "models/a_parent.sql": "select id, amount, 'v2' as version from {{ source('raw', 'items') }}\n"
        },
    )
    _write_without_checkpoint(
        production, "INSERT INTO raw.items SELECT range, 10 FROM range(100, 105)"
    )
    assert wal.exists(), "the writer must leave its rows in the WAL for this test to mean much"
    assert _count(production, "select count(*) from raw.items") == 15

    deploy(
        loaded,
        reviewed(project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)),
    )

    assert _count(production, "select count(*) from raw.items") == 15
    # The staging build saw them too: the rebuilt child reads all 15 source rows.
    assert _count(production, "select count(*) from main.z_child") == 15
    assert _count(production, "select count(*) from main.a_parent where version = 'v2'") == 15
    assert not wal.exists()
    assert not list((loaded.state_dir / "deploy").iterdir()), "a deploy leaves no work behind"


def test_duckdb_deploy_with_nothing_to_build_keeps_the_wal_rows(
    duck_project: tuple[Path, LoadedConfig],
) -> None:
    project, loaded = duck_project
    production = project / "prod.duckdb"
    _write_without_checkpoint(production, "INSERT INTO raw.items VALUES (200, 1)")
    deploy(loaded, reviewed(project))
    assert _count(production, "select count(*) from raw.items") == 11
    assert not (project / "prod.duckdb.wal").exists()


def test_duckdb_deploy_stops_when_dbt_parse_fails(
    duck_project: tuple[Path, LoadedConfig],
) -> None:
    project, loaded = duck_project
    production = project / "prod.duckdb"
    state = loaded.state_dir / "production" / "manifest.json"
    commit_change(project, {"models/broken.sql": "select {{ ref( }}\n"})
    before, state_before = sha256(production), sha256(state)

    with pytest.raises(BuildError, match="production is unchanged: dbt parse failed"):
        deploy(loaded, reviewed(project))

    assert sha256(production) == before
    assert sha256(state) == state_before
    assert not list((loaded.state_dir / "deploy").iterdir()), "a failed deploy leaves no work"


def test_duckdb_failed_build_names_the_node_but_quotes_no_value(
    duck_project: tuple[Path, LoadedConfig],
) -> None:
    project, loaded = duck_project
    production = project / "prod.duckdb"
    con = duckdb.connect(str(production))
    try:
        con.execute("INSERT INTO raw.items VALUES (300, 0), (301, 0)")
        con.execute(f"CREATE TABLE raw.secrets AS SELECT '{SECRET}' AS code")
    finally:
        con.close()
    commit_change(
        project,
        {
            "models/z_child.sql": "{{ config(materialized='table') }}\n"
            "select cast(s.code as integer) as code, p.id\n"
            "from {{ ref('a_parent') }} p cross join raw.secrets s\n"
        },
    )
    before = sha256(production)
    reporter = CaptureReporter()
    with pytest.raises(BuildError) as raised:
        deploy(
            loaded,
            reviewed(project, ("z_child", ModelStatus.MODIFIED)),
            reporter=reporter,
        )
    error = raised.value
    assert "z_child: error" in error.message
    everything = "\n".join(
        [error.message, error.hint or "", *(" ".join(e) for e in reporter.events)]
    )
    assert SECRET not in everything
    assert sha256(production) == before
    # dbt's log had the database's message, the staging copy the value: neither is kept.
    assert not list((loaded.state_dir / "deploy").iterdir())


def test_a_review_that_did_not_build_cannot_deploy(
    duck_project: tuple[Path, LoadedConfig],
) -> None:
    project, loaded = duck_project
    production = project / "prod.duckdb"
    before = sha256(production)
    report = reviewed(
        project, ("a_parent", ModelStatus.MODIFIED), error="dbt could not build the branch"
    )
    plan = plan_deploy(loaded, report)
    assert plan.allowed is False
    assert plan.blocked_by == ()
    assert plan.error is not None and "did not finish" in plan.error
    assert plan.to_dict()["error"] == plan.error
    with pytest.raises(BuildError, match="deploy refused: the review did not finish") as raised:
        deploy(loaded, report)
    assert "dataops-dev review" in (raised.value.hint or "")
    assert sha256(production) == before

    # `deploy --dry-run` says so too, and exits with the build error's code
    from click.testing import CliRunner

    from dataops_dev.cli import cli
    from dataops_dev.environments import environment_name
    from dataops_dev.exit_codes import ExitCode
    from dataops_dev.gitrepo import state
    from dataops_dev.review import save_report

    branch = state(project).branch or "main"
    head = dataclasses.replace(report.head, environment=environment_name(branch))
    save_report(loaded, dataclasses.replace(report, head=head))
    shown = CliRunner().invoke(cli, ["--project-dir", str(project), "deploy", "--dry-run"])
    assert "refused: the review did not finish" in shown.stdout
    assert shown.exit_code == ExitCode.RUNTIME_ERROR
    assert sha256(production) == before


# ----------------------------------------------------------------------------------------------
# PostgreSQL


PG_OUTPUT = (
    "      type: postgres\n"
    "      host: \"{{ env_var('DATAOPS_PG_HOST', '/var/run/postgresql') }}\"\n"
    "      user: \"{{ env_var('DATAOPS_PG_USER', 'root') }}\"\n"
    "      password: ''\n"
    "      port: 5432\n"
    "      dbname: {dbname}\n"
    "      schema: analytics\n"
    "      threads: 1\n"
)


@pytest.fixture
def pg_project(tmp_path: Path, pg_database: str) -> Iterator[tuple[Path, LoadedConfig, str]]:
    project = tiny_project(
        tmp_path / "tiny", PG_OUTPUT.replace("{dbname}", pg_database), child_view=True
    )
    with psycopg.connect(pg_conninfo(pg_database), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA raw")
        conn.execute(
            "CREATE TABLE raw.items AS SELECT g AS id, 10 AS amount FROM generate_series(1, 10) g"
        )
    loaded = load_config(project)
    build_production(loaded)
    yield project, loaded, pg_database


def _pg(database: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_conninfo(database)) as conn:
        return conn.execute(sql).fetchall()


def _staging_schemas(database: str) -> list[str]:
    return [
        name
        for (name,) in _pg(database, "SELECT nspname FROM pg_namespace ORDER BY 1")
        if "dataops_deploy" in name
    ]


@pytest.mark.postgres
def test_postgres_deploy_swaps_a_view_before_the_view_it_reads(
    pg_project: tuple[Path, LoadedConfig, str],
) -> None:
    project, loaded, database = pg_project
    commit_change(
        project,
        {
            "models/a_parent.sql": "select id, amount + 1 as amount from {{ source('raw', 'items') }}\n"
        },
    )
    deploy(
        loaded,
        reviewed(project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)),
    )
    assert _pg(database, "SELECT sum(doubled) FROM analytics.z_child") == [(220,)]
    assert _staging_schemas(database) == []


@pytest.mark.postgres
def test_postgres_failed_build_drops_custom_staging_schemas_and_quotes_no_value(
    pg_project: tuple[Path, LoadedConfig, str],
) -> None:
    project, loaded, database = pg_project
    with psycopg.connect(pg_conninfo(database), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE raw.secrets AS SELECT '{SECRET}'::text AS code")
    commit_change(
        project,
        {
            # Built first, into `analytics__dataops_deploy_extra`; then its child fails.
            "models/a_parent.sql": "{{ config(schema='extra') }}\n" + PARENT,
            "models/z_child.sql": "{{ config(materialized='table') }}\n"
            "select s.code::integer as code, p.id\n"
            "from {{ ref('a_parent') }} p cross join raw.secrets s\n",
        },
    )
    before = _pg(database, "SELECT count(*) FROM analytics.z_child")
    reporter = CaptureReporter()
    with pytest.raises(BuildError, match="production is unchanged") as raised:
        deploy(
            loaded,
            reviewed(
                project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.MODIFIED)
            ),
            reporter=reporter,
        )
    error = raised.value
    assert "z_child: error" in error.message
    assert SECRET not in "\n".join(
        [error.message, error.hint or "", *(" ".join(e) for e in reporter.events)]
    )
    assert _staging_schemas(database) == []
    assert _pg(database, "SELECT count(*) FROM analytics.z_child") == before
    assert not list((loaded.state_dir / "deploy").iterdir()), "a failed deploy leaves no work"
