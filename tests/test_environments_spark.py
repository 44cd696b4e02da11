"""Environments on a real Spark (Spark Connect): versioned schemas under the sandbox prefix,
`source()` re-pointed at the masked sample, atomic rebuilds, drop and recover."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataops_dev.config import load_config
from dataops_dev.engines.base import Relation
from dataops_dev.engines.spark import SparkEngine
from dataops_dev.environments import BuildRequest, Environments
from dataops_dev.errors import BuildError
from dataops_dev.sources import SourceData
from dataops_dev.spark_layout import sample_schema
from tests.conftest import SAMPLE_PROJECT, TEST_SCALE, git

# dbt-spark asks a Connect session for a static setting on every connection; harmless.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:Failed to set spark.sql:UserWarning"),
]

COMMIT = "0" * 40


@dataclass(frozen=True)
class SparkProject:
    project: Path
    engine: SparkEngine
    prefix: str
    production_raw: str
    production_orders: int
    sample_orders: int


def _schemas(engine: SparkEngine) -> set[str]:
    return {str(row[0]) for row in engine.fetchall("SHOW SCHEMAS")}


def _count(engine: SparkEngine, schema: str, table: str) -> int:
    return int(
        engine.fetchall(f"SELECT count(*) FROM {Relation(schema, table).sql('spark')}")[0][0]
    )


@pytest.fixture(scope="module")
def spark_project(
    spark_remote: str,
    sample_project_prod: Path,
    generator,  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SparkProject]:
    """sample_project with its production on Spark (`<tag>_raw`) and, standing in for the masked
    sample, a *smaller* generated data set in the sample's schema: counts tell which one a build
    read. Everything is dropped afterwards."""
    tag = f"se{uuid.uuid4().hex[:8]}"
    prefix, production_raw = f"{tag}_sandbox", f"{tag}_raw"
    project = tmp_path_factory.mktemp("spark_env") / "sample_project"
    shutil.copytree(SAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "dataops_dev.yml").write_text(
        "version: 1\n"
        "production:\n  target: spark\n"
        f"backend:\n  type: warehouse\n  sandbox_database: {prefix}\n"
        "environments:\n  threads: 2\n"
    )
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "sample_project on spark")
    smaller = tmp_path_factory.mktemp("spark_sample") / "sample.duckdb"
    generator.generate(smaller, scale=TEST_SCALE / 2, seed=7)
    engine = SparkEngine(spark_remote)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATAOPS_SPARK_REMOTE", spark_remote)
        patch.setenv("SAMPLE_PROJECT_RAW_SCHEMA", production_raw)
        patch.setenv("SAMPLE_PROJECT_SPARK_SCHEMA", f"{tag}_analytics")
        try:
            production = generator.load_into_spark(
                sample_project_prod, spark_remote, production_raw
            )
            sample = generator.load_into_spark(
                smaller, spark_remote, sample_schema(prefix, production_raw)
            )
            assert production["orders"] != sample["orders"]
            yield SparkProject(
                project, engine, prefix, production_raw, production["orders"], sample["orders"]
            )
        finally:
            for schema in sorted(_schemas(engine)):
                if schema.startswith(tag):
                    engine.execute(f"DROP SCHEMA IF EXISTS `{schema}` CASCADE")
            engine.close()


def _source(sp: SparkProject) -> SourceData:
    return SourceData(
        kind="sample",
        identity="test-sample",
        relations=(Relation(sp.production_raw, "stores"), Relation(sp.production_raw, "orders")),
    )


def _request(code_dir: Path) -> BuildRequest:
    return BuildRequest(code_dir=code_dir, commit=COMMIT, select=("+dim_stores",))


def test_builds_versions_on_the_sample_atomically_and_drops(
    spark_project: SparkProject, tmp_path: Path
) -> None:
    sp, engine = spark_project, spark_project.engine
    envs = Environments(load_config(sp.project))
    assert envs.backend == "spark"
    info = envs.create("feature/spark`; DROP SCHEMA x;--")
    assert info.backend == "spark" and info.database == sp.prefix

    # 1. A build writes a version schema; `source()` read the sample, never production.
    first = envs.build(info, _request(sp.project), _source(sp))
    assert first.status == "success" and first.models_failed == 0
    (v1,) = envs.get(info.name).schemas
    assert v1.startswith(f"{sp.prefix}__{info.name}__v")
    assert _count(engine, v1, "stg_orders") == sp.sample_orders != sp.production_orders
    assert engine.relation_exists(Relation(v1, "dim_stores"))

    # 2. A rebuild writes a new version and the record moves to it; the old one is kept for
    #    readers still on it until the next build.
    envs.build(envs.get(info.name), _request(sp.project), _source(sp))
    (v2,) = envs.get(info.name).schemas
    assert v2 != v1 and {v1, v2} <= _schemas(engine)
    assert _count(engine, v2, "dim_stores") == _count(engine, v1, "dim_stores")

    # 3. A failing build leaves the record and version 2 as they were, and drops its own
    #    partial version (and version 1, which nothing points at any more).
    broken = tmp_path / "broken"
    shutil.copytree(sp.project, broken, ignore=shutil.ignore_patterns("target", "logs"))
    model = broken / "models" / "marts" / "dim_stores.sql"
    model.write_text(model.read_text().replace("from stores", "from no_such_cte", 1))
    with pytest.raises(BuildError):
        envs.build(envs.get(info.name), _request(broken), _source(sp))
    after = envs.get(info.name)
    assert after.schemas == (v2,) and after.last_attempt is not None
    assert after.last_build is not None and after.last_build.status == "success"
    assert engine.relation_exists(Relation(v2, "dim_stores"))
    ours = {s for s in _schemas(engine) if s.startswith(f"{sp.prefix}__{info.name}")}
    assert ours == {v2}

    # 4. What a killed build leaves (a version nothing points at) is dropped by recover.
    orphan = f"{sp.prefix}__{info.name}__vdeadbeef"
    engine.execute(f"CREATE SCHEMA `{orphan}`")
    assert info.name in envs.recover()
    assert orphan not in _schemas(engine) and v2 in _schemas(engine)

    # 5. Drop removes every version; production and the sample are untouched.
    envs.drop(info.name)
    assert not {s for s in _schemas(engine) if s.startswith(f"{sp.prefix}__{info.name}")}
    assert {sp.production_raw, sample_schema(sp.prefix, sp.production_raw)} <= _schemas(engine)
    assert _count(engine, sp.production_raw, "orders") == sp.production_orders
