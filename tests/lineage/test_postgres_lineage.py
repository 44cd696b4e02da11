"""sample_project compiled by dbt for PostgreSQL: lineage is identical to DuckDB's, and the same
edit is classified the same way (relations map by schema and name, never by database)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataops_dev.impact import ChangeKind, analyze_impact
from dataops_dev.lineage import load_project_lineage
from tests.conftest import PG_HOST, PG_USER

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.xdist_group("lineage_sample_project"),
]


def test_postgres_compiled_lineage_matches_duckdb(
    compiled_sample_project: Path, pg_database: str, tmp_path: Path
) -> None:
    project = tmp_path / "pg_project"
    shutil.copytree(
        compiled_sample_project, project, ignore=shutil.ignore_patterns("target", "*.duckdb")
    )
    env = {
        **os.environ,
        "DATAOPS_PG_HOST": PG_HOST,
        "DATAOPS_PG_USER": PG_USER,
        "DATAOPS_PG_DATABASE": pg_database,
    }
    dbt = Path(sys.executable).parent / "dbt"
    result = subprocess.run(
        [str(dbt), "compile", "--project-dir", ".", "--profiles-dir", ".", "--target", "pg", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pg_manifest, pg = load_project_lineage(project / "target" / "manifest.json")
    assert pg_manifest.data["metadata"]["adapter_type"] == "postgres"
    _, duck = load_project_lineage(compiled_sample_project / "target" / "manifest.json")

    def named(lineage):  # type: ignore[no-untyped-def]
        return sorted(
            (
                lineage.names[e.source_node],
                e.source_column,
                lineage.names[e.target_node],
                e.target_column,
                e.kind.value,
            )
            for e in lineage.edges()
        )

    assert pg.stats.unknown == 0
    assert named(pg) == named(duck)

    history = project / "models" / "intermediate" / "int_customer_order_history.sql"
    history.write_text(history.read_text().replace("as lifetime_value", "as total_value"))
    report = analyze_impact(project, project / "target" / "manifest.json")
    [change] = report.models
    assert report.dialect == "postgres"
    assert change.change is ChangeKind.BREAKING
    assert change.renamed_columns == (("lifetime_value", "total_value"),)
    assert change.impacted.columns == ("dim_customers.lifetime_value",)
