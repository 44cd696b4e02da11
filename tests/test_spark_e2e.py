"""The demo's review on Spark says what it says on DuckDB: same verdict, same findings, same
changed/added/removed rows per model, for the same production data and salt (one review per
engine: a Spark build of sample_project takes minutes)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataops_dev.demo import prepare_project, run_demo
from dataops_dev.report.model import Report
from tests.conftest import SAMPLE_PROJECT, TEST_SCALE, run_cli

# dbt-spark asks a Connect session for a static setting on every connection; harmless.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:Failed to set spark.sql:UserWarning"),
    pytest.mark.xdist_group("spark-e2e"),
]


def _summary(report: Report) -> dict[str, Any]:
    """What must not depend on the engine: verdict, findings, rows changed per model."""
    models = {}
    for model in report.models:
        rows = model.diff.rows if model.diff is not None else None
        models[model.name] = {
            "change": str(model.change),
            "status": str(model.status),
            "rows": None if rows is None else (rows.changed, rows.added, rows.removed),
            "findings": sorted((str(f.kind), str(f.severity)) for f in model.findings),
        }
    return {"verdict": str(report.verdict), "models": models}


@pytest.fixture(scope="module")
def reviews(
    spark_remote: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Report, Report]]:
    """The demo reviewed once on DuckDB and once on the shared Spark server, under schema names
    of its own there (dropped afterwards)."""
    from dataops_dev.engines.spark import SparkEngine

    tag = f"e2e{uuid.uuid4().hex[:8]}"
    duck = tmp_path_factory.mktemp("e2e_duckdb") / "demo"
    spark = tmp_path_factory.mktemp("e2e_spark") / "demo"
    shutil.copytree(SAMPLE_PROJECT, spark, ignore=shutil.ignore_patterns("target", "logs"))
    (spark / "dataops_dev.yml").write_text(
        "version: 1\nproduction:\n  target: spark\n"
        f"backend:\n  type: warehouse\n  sandbox_database: {tag}_sandbox\n"
    )
    engine = SparkEngine(spark_remote)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATAOPS_SALT", "spark-e2e-salt")
        try:
            on_duckdb = run_demo(duck, scale=TEST_SCALE)
            # On the shared server, production goes to schemas of this test's own.
            patch.setenv("DATAOPS_SPARK_REMOTE", spark_remote)
            patch.setenv("SAMPLE_PROJECT_RAW_SCHEMA", f"{tag}_raw")
            patch.setenv("SAMPLE_PROJECT_SPARK_SCHEMA", f"{tag}_analytics")
            on_spark = run_demo(spark, scale=TEST_SCALE, backend="spark")
            assert on_duckdb.report is not None and on_spark.report is not None
            yield on_duckdb.report, on_spark.report
        finally:
            for (schema,) in engine.fetchall("SHOW SCHEMAS"):
                if str(schema).startswith(tag):
                    engine.execute(f"DROP SCHEMA IF EXISTS `{schema}` CASCADE")
            engine.close()


def test_review_on_spark_matches_duckdb(reviews: tuple[Report, Report]) -> None:
    on_duckdb, on_spark = reviews
    duck, spark = _summary(on_duckdb), _summary(on_spark)
    # The demo's change is caught at all (not two empty reports agreeing).
    assert any(m["rows"] and any(m["rows"]) for m in duck["models"].values())
    assert spark["verdict"] == duck["verdict"]
    assert spark["models"] == duck["models"]


def test_demo_directory_keeps_its_backend(tmp_path: Path) -> None:
    """A demo set up on DuckDB is not silently reviewed on Spark (or the reverse): the error says
    to start over. Nothing is generated or started before that check."""
    prepare_project(tmp_path / "demo")
    result = run_cli("demo", "--dir", "demo", "--backend", "spark", "--json", cwd=tmp_path)
    assert result.returncode == 1
    assert "set up for duckdb, not spark" in result.stderr and "--fresh" in result.stderr
    assert not (tmp_path / "demo" / "prod.duckdb").exists()
    wrong = run_cli("demo", "--dir", "demo", "--backend", "trino", cwd=tmp_path)
    assert wrong.returncode == 2
