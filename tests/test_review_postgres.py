"""review + decide + deploy against a real PostgreSQL: production, sample and environments."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import psycopg
import pytest

from dataops_dev.config import load_config
from dataops_dev.demo import DEMO_EDITS, apply_edits, build_production
from tests.conftest import SAMPLE_PROJECT, git, pg_conninfo, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("review-postgres")]

SALT = {"DATAOPS_SALT": "postgres-review-salt"}


def _fingerprint(database: str) -> dict[str, str]:
    """md5 of every production table's ordered contents: changes iff the data changes."""
    with psycopg.connect(pg_conninfo(database)) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        out = {}
        for schema, table in tables:
            (digest,) = conn.execute(
                f'SELECT md5(string_agg(t::text, \'|\' ORDER BY t::text)) FROM "{schema}"."{table}" t'
            ).fetchone()  # type: ignore[misc]
            out[f"{schema}.{table}"] = digest or ""
    return out


@pytest.fixture(scope="module")
def pg_project(
    tmp_path_factory: pytest.TempPathFactory,
    sample_project_prod: Path,
    postgres_server: str,
    generator,  # type: ignore[no-untyped-def]
) -> tuple[Path, str, str]:
    import uuid

    production = f"dataops_test_prod_{uuid.uuid4().hex[:8]}"
    sandbox = f"{production}_sandbox"
    with psycopg.connect(pg_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{production}"')
        conn.execute(f'CREATE DATABASE "{sandbox}"')
    generator.load_into_postgres(sample_project_prod, pg_conninfo(production))
    project = tmp_path_factory.mktemp("pgreview") / "sample_project"
    shutil.copytree(
        SAMPLE_PROJECT,
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    (project / "dataops_dev.yml").write_text(
        "version: 1\nproduction:\n  target: pg\n"
        f"backend:\n  type: warehouse\n  sandbox_database: {sandbox}\n"
    )
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production code")
    os.environ.update(SALT)
    os.environ["DATAOPS_PG_DATABASE"] = production
    build_production(load_config(project))
    git(project, "checkout", "-q", "-b", "feature/revenue")
    apply_edits(project, DEMO_EDITS)
    git(project, "commit", "-q", "-am", "revenue on shipment")
    yield project, production, sandbox
    with psycopg.connect(pg_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{production}" WITH (FORCE)')
        conn.execute(f'DROP DATABASE IF EXISTS "{sandbox}" WITH (FORCE)')


def test_review_decide_deploy_on_postgres(pg_project: tuple[Path, str, str]) -> None:
    project, production, sandbox = pg_project
    env = {**SALT, "DATAOPS_PG_DATABASE": production}
    before = _fingerprint(production)

    first = run_cli("review", "--json", cwd=project, env=env)
    assert first.returncode == 3, first.stderr
    report = json.loads(first.stdout)
    models = {m["name"]: m for m in report["models"]}
    fct = {c["name"]: c for c in models["fct_orders"]["diff"]["columns"]}
    with psycopg.connect(pg_conninfo(sandbox)) as conn:
        base_schema = report["base"]["environment"]
        (placed,) = conn.execute(
            f'SELECT count(*) FROM "{base_schema}".fct_orders WHERE status = %s', ["placed"]
        ).fetchone()  # type: ignore[misc]
        (bucket,) = conn.execute(
            f'SELECT count(*) FROM "{base_schema}".fct_orders WHERE net_amount >= 50 AND net_amount < 75'
        ).fetchone()  # type: ignore[misc]
    assert fct["is_revenue"]["changed"] == placed > 0
    assert fct["order_size_bucket"]["changed"] == bucket > 0
    assert models["customer_segments"]["change"] == "additive"
    assert models["store_performance"]["change"] == "breaking"
    assert _fingerprint(production) == before, "review must never write production"

    (blocking,) = [
        f for m in report["models"] for f in m["findings"] if f["severity"] == "blocking"
    ]
    refused = run_cli("deploy", cwd=project, env=env)
    assert refused.returncode == 3
    assert _fingerprint(production) == before

    approved = run_cli(
        "decide", "approve", blocking["fingerprint"], "--note", "expected", cwd=project, env=env
    )
    assert approved.returncode == 0, approved.stderr
    second = run_cli("review", "--json", cwd=project, env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["base"]["reused"] is True

    deployed = run_cli("deploy", "--json", cwd=project, env=env)
    assert deployed.returncode == 0, deployed.stderr
    after = _fingerprint(production)
    assert after != before
    with psycopg.connect(pg_conninfo(production)) as conn:
        (revenue_placed,) = conn.execute(
            "SELECT count(*) FROM analytics.fct_orders WHERE status = 'placed' AND is_revenue"
        ).fetchone()  # type: ignore[misc]
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'analytics' AND table_name = 'customer_segments'"
            ).fetchall()
        }
        staging = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", ["%dataops_deploy%"]
        ).fetchall()
    assert revenue_placed == 0
    assert "is_high_value" in columns
    assert staging == []
    # Sources in production are untouched by deploy.
    assert {k: v for k, v in after.items() if k.startswith("raw.")} == {
        k: v for k, v in before.items() if k.startswith("raw.")
    }
