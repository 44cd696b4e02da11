"""Production on Spark: the masked, referentially-closed sample built inside Spark, published in
versions behind a recorded pointer.

sample_project's production (TEST_SCALE) is generated into DuckDB and copied into Spark under a
schema of its own (the shared server is used by other tests); the same project, seed and salt
then sample both, so the rows chosen (and their masks) must be the same.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dataops_dev.config import load_config
from dataops_dev.demo import load_generator
from dataops_dev.engines.base import Relation
from dataops_dev.engines.spark import SparkEngine
from dataops_dev.errors import ConfigError
from dataops_dev.sources import (
    SPARK_POINTER,
    SampleRecord,
    _existing,
    ensure_sample,
    resolve_source_data,
)
from dataops_dev.spark_layout import (
    sample_schema,
    sample_scratch_schema,
    sample_version_of,
    sample_version_schema,
)
from tests.conftest import REPO_ROOT, SAMPLE_PROJECT, git
from tests.sampling.test_sample_project import _raw_pii

SALT_VAR = "DATAOPS_TEST_SPARK_SAMPLE_SALT"
SALT = "salt-for-spark-sample-tests"
TABLES = ("customers", "stores", "products", "orders", "order_items", "payments", "web_events")
KEYS = {
    "customers": "customer_id",
    "stores": "store_id",
    "products": "product_id",
    "orders": "order_id",
    "order_items": "order_item_id",
    "payments": "payment_id",
    "web_events": "event_id",
}


@dataclass(frozen=True)
class SparkProject:
    spark: Path
    """The project copy whose production target is Spark."""
    duck: Path
    """The same project on its DuckDB production (the reference sample)."""
    remote: str
    raw: str
    """The Spark schema holding production's `raw` tables."""
    prefix: str
    """The sandbox prefix of this module's samples."""
    engine: SparkEngine


def _copy(target: Path, prod: Path, config: str, raw: str | None = None) -> Path:
    shutil.copytree(
        SAMPLE_PROJECT,
        target,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb*", ".mypy_cache"),
    )
    shutil.copy(prod, target / "prod.duckdb")
    if raw is not None:
        sources = target / "models" / "staging" / "_shop__sources.yml"
        text = sources.read_text(encoding="utf-8")
        # The sources name their schema once (`raw`, or an env_var defaulting to it).
        renamed, count = re.subn(r"(?m)^    schema: .*$", f"    schema: {raw}", text)
        assert count == 1, "sample_project's sources no longer name one schema"
        sources.write_text(renamed)
    (target / "dataops_dev.yml").write_text(
        f"version: 1\nsample:\n  salt_env: {SALT_VAR}\n  rate: 0.1\n{config}", encoding="utf-8"
    )
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "initial")
    return target


def _spark_profile(project: Path, remote: str, schema: str) -> None:
    profiles = project / "profiles.yml"
    profiles.write_text(
        profiles.read_text(encoding="utf-8")
        + "    spark:\n"
        + "      type: spark\n"
        + "      method: session\n"
        + "      host: localhost\n"
        + f"      schema: {schema}\n"
        + "      threads: 1\n"
        + f'      server_side_parameters: {{"spark.remote": "{remote}"}}\n',
        encoding="utf-8",
    )


def _ours(engine: SparkEngine, prefix: str) -> list[str]:
    return sorted(row[0] for row in engine.fetchall(f"SHOW SCHEMAS LIKE '{prefix}__*'"))


@pytest.fixture(scope="module")
def salt_env() -> Iterator[None]:
    previous = os.environ.get(SALT_VAR)
    os.environ[SALT_VAR] = SALT
    yield
    if previous is None:
        os.environ.pop(SALT_VAR, None)
    else:
        os.environ[SALT_VAR] = previous


@pytest.fixture(scope="module")
def spark_project(
    tmp_path_factory: pytest.TempPathFactory,
    sample_project_prod: Path,
    spark_remote: str,
    salt_env: None,
) -> Iterator[SparkProject]:
    token = uuid.uuid4().hex[:8]
    raw, prefix = f"raw_{token}", f"dataops_t{token}"
    engine = SparkEngine(spark_remote)
    root = tmp_path_factory.mktemp("spark_sample")
    config = (
        f"production:\n  target: spark\nbackend:\n  type: warehouse\n  sandbox_database: {prefix}\n"
    )
    spark = _copy(root / "spark", sample_project_prod, config, raw)
    _spark_profile(spark, spark_remote, f"analytics_{token}")
    git(spark, "commit", "-qam", "spark target")
    duck = _copy(root / "duck", sample_project_prod, "")
    try:
        load_generator(SAMPLE_PROJECT).load_into_spark(sample_project_prod, spark_remote, raw)
        yield SparkProject(spark, duck, spark_remote, raw, prefix, engine)
    finally:
        for schema in [raw, *_ours(engine, prefix)]:
            engine.execute(f"DROP SCHEMA IF EXISTS `{schema}` CASCADE")
        engine.close()


@pytest.fixture(scope="module")
def first_sample(spark_project: SparkProject) -> tuple[SampleRecord, Any, list[str]]:
    """The module's first Spark sample, production's tables and row counts before it, and the
    text of every statement the sampler sent to Spark."""
    before = _production(spark_project)
    sent: list[str] = []
    frame = SparkEngine._frame

    def recording(self: SparkEngine, sql: Any, params: Any) -> Any:
        sent.append(sql if isinstance(sql, str) else sql.sql("spark"))
        return frame(self, sql, params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SparkEngine, "_frame", recording)
        record = ensure_sample(load_config(spark_project.spark))
    return record, before, sent


def _production(project: SparkProject) -> Any:
    engine = project.engine
    counts = {
        t: engine.fetchall(f"SELECT count(*) FROM `{project.raw}`.`{t}`")[0][0] for t in TABLES
    }
    return counts, engine.list_relations(project.raw)


def _spark_rows(
    engine: SparkEngine, schema: str, table: str, columns: str
) -> list[tuple[Any, ...]]:
    return engine.fetchall(f"SELECT {columns} FROM `{schema}`.`{table}` ORDER BY 1")


@pytest.mark.slow
@pytest.mark.spark
def test_spark_sample_is_closed_masked_and_the_same_as_duckdbs(
    spark_project: SparkProject, first_sample: tuple[SampleRecord, Any, list[str]]
) -> None:
    record, before, sent = first_sample
    engine = spark_project.engine
    raw = spark_project.raw
    assert record.backend == "spark" and record.location == spark_project.prefix
    assert record.orphans == 0 and all(t.sampled_rows > 0 for t in record.tables)
    schema = record.schemas[raw]
    assert schema.startswith(sample_schema(spark_project.prefix, raw) + "__v")
    # An independent check of the closure, on what was written.
    orphans = engine.fetchall(
        f"SELECT count(*) FROM `{schema}`.orders o WHERE NOT EXISTS "
        f"(SELECT 1 FROM `{schema}`.customers c WHERE c.customer_id = o.customer_id)"
    )
    assert orphans == [(0,)]

    source = resolve_source_data(load_config(spark_project.spark))
    assert source.kind == "sample" and source.identity == record.sample_id
    assert source.sandbox_prefix == spark_project.prefix
    assert dict(source.sample_schemas) == {raw: schema}
    assert {(r.schema, r.name) for r in source.relations} == {(raw, t) for t in TABLES}

    # One seed and salt: the rows DuckDB's sample chose, masked to the same values.
    duck = ensure_sample(load_config(spark_project.duck))
    with duckdb.connect(duck.location, read_only=True) as con:
        for table, key in KEYS.items():
            query = f"select {key} from raw.{table} order by 1"
            assert [r[0] for r in _spark_rows(engine, schema, table, key)] == [
                r[0] for r in con.execute(query).fetchall()
            ], table
        columns = "customer_id, email, phone, first_name, last_name, city, zip_code, birth_date"
        duck_customers = con.execute(f"select {columns} from raw.customers order by 1").fetchall()
    assert _spark_rows(engine, schema, "customers", columns) == duck_customers
    masked = {f"{t.table}.{c}" for t in record.tables for c, _ in t.masked}
    assert {"shop.customers.email", "shop.payments.card_number"} <= masked

    # Spark logs statements: key material travelled as parameters, never in the SQL text.
    assert any("hmac(" in text.lower() for text in sent)
    assert not [text for text in sent if re.search(r"[0-9a-fA-F]{32}", text)]

    # No raw value of a masked column anywhere in the sample (every string column scanned).
    with duckdb.connect(str(spark_project.duck / "prod.duckdb"), read_only=True) as con:
        values = sorted(_raw_pii(con, duck))
    assert len(values) > 100
    engine.session.createDataFrame([(v,) for v in values], "v string").createOrReplaceTempView(
        "raw_pii"
    )
    leaks = []
    for table in TABLES:
        for column in engine.columns(Relation(schema, table)):
            if column.data_type != "string":
                continue
            found = engine.fetchall(
                f"SELECT count(*) FROM `{schema}`.`{table}` "
                f"WHERE `{column.name}` IN (SELECT v FROM raw_pii)"
            )
            if found != [(0,)]:
                leaks.append(f"{table}.{column.name}")
    assert leaks == []

    # The stable views show the current version; production was only read.
    stable = sample_schema(spark_project.prefix, raw)
    assert engine.fetchall(f"SELECT count(*) FROM `{stable}`.customers") == engine.fetchall(
        f"SELECT count(*) FROM `{schema}`.customers"
    )
    assert _production(spark_project) == before
    assert not [s for s in _ours(engine, spark_project.prefix) if "samplework" in s]


def _versions(engine: SparkEngine, prefix: str) -> list[str]:
    return [s for s in _ours(engine, prefix) if re.search(r"__v[0-9a-f]+$", s)]


@pytest.mark.slow
@pytest.mark.spark
def test_a_killed_spark_sample_leaves_the_previous_one_whole(
    spark_project: SparkProject, first_sample: tuple[SampleRecord, Any, list[str]]
) -> None:
    engine = spark_project.engine
    prefix = spark_project.prefix
    loaded = load_config(spark_project.spark)
    current = ensure_sample(loaded)
    assert current.reused
    pointer = (loaded.state_dir / "samples" / SPARK_POINTER).read_text()
    schema = current.schemas[spark_project.raw]
    counts = {t.table: t.sampled_rows for t in current.tables}

    # Killed while it writes its version: the pointer and the previous version stay.
    process = subprocess.Popen(
        [sys.executable, "-m", "dataops_dev", "sample", "--refresh"],
        cwd=spark_project.spark,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while process.poll() is None:
            if [s for s in _versions(engine, prefix) if not s.endswith("__v" + schema[-12:])]:
                break
            time.sleep(0.2)
        assert process.poll() is None, "the sample finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert (loaded.state_dir / "samples" / SPARK_POINTER).read_text() == pointer
    again = ensure_sample(loaded)
    assert again.reused and again.schemas == current.schemas
    for table in TABLES:
        rows = engine.fetchall(f"SELECT count(*) FROM `{schema}`.`{table}`")[0][0]
        assert rows == counts[f"shop.{table}"]
    assert len(_versions(engine, prefix)) > 1, "the killed run's version is left behind"

    # The next sample publishes a new version and removes every other one (and the scratch).
    fresh = ensure_sample(loaded, refresh=True)
    assert fresh.sample_id == current.sample_id and fresh.schemas != current.schemas
    assert {t.table: t.sampled_rows for t in fresh.tables} == counts
    new_schema = fresh.schemas[spark_project.raw]
    assert _versions(engine, prefix) == [new_schema]
    assert not engine.schema_exists(schema)
    stable = sample_schema(prefix, spark_project.raw)
    assert engine.fetchall(f"SELECT count(*) FROM `{stable}`.orders") == [(counts["shop.orders"],)]

    # A version dropped behind our back is not reused: the sample would be built again.
    assert _existing(loaded, fresh.sample_id) is not None
    engine.execute(f"DROP TABLE `{new_schema}`.`payments`")
    assert _existing(loaded, fresh.sample_id) is None


@pytest.mark.slow
@pytest.mark.spark
def test_spark_production_needs_the_warehouse_backend(spark_project: SparkProject) -> None:
    loaded = load_config(spark_project.spark, overrides={"backend.type": "duckdb"})
    with pytest.raises(ConfigError, match="backend.type: warehouse"):
        ensure_sample(loaded, refresh=True)
    clash = load_config(
        spark_project.spark, overrides={"backend.sandbox_database": spark_project.raw}
    )
    with pytest.raises(ConfigError, match="would cover production schema"):
        ensure_sample(clash, refresh=True)


def test_sample_versions_are_named_under_the_prefix_and_recognised() -> None:
    schema = sample_version_schema("dataops", "raw", "0a1b2c")
    assert schema == "dataops__sample__raw__v0a1b2c"
    assert sample_version_of("dataops", schema) == "0a1b2c"
    scratch = sample_scratch_schema("dataops", "0a1b2c")
    assert sample_version_of("dataops", scratch) == "0a1b2c"
    # The stable schema (views), environments and other prefixes are no versions.
    for other in ("dataops__sample__raw", "dataops__feature_x", "other__sample__raw__v0a1b2c"):
        assert sample_version_of("dataops", other) is None
    with pytest.raises(ConfigError):
        sample_version_schema("dataops", "raw", "Not-A-Version")


def test_the_work_session_places_temporary_tables_in_its_scratch_schema() -> None:
    from sqlglot import exp

    from dataops_dev.sampling import SparkWorkSession, _create_temp, _drop, _work_name

    session = SparkWorkSession(None, "dataops__samplework__v1")
    query = exp.select(exp.Star()).from_(exp.table_("orders", db="raw", quoted=True))
    created = session._placed(_create_temp(_work_name(0), query))
    assert created.sql("spark") == (
        "CREATE TABLE `dataops__samplework__v1`.`__dataops_w0` USING PARQUET AS "
        "SELECT * FROM `raw`.`orders`"
    )
    assert session._placed(_drop(_work_name(3))).sql("spark") == (
        "DROP TABLE IF EXISTS `dataops__samplework__v1`.`__dataops_w3`"
    )
