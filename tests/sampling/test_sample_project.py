"""sample_project end to end: a closed, masked, deterministic sample that environments build on.

DuckDB and PostgreSQL; real dbt parses and builds. Production is only read, never written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dataops_dev.config import load_config
from dataops_dev.errors import ConfigError
from dataops_dev.sources import SampleRecord, ensure_sample, resolve_source_data
from tests.conftest import SAMPLE_PROJECT, git, pg_conninfo, run_cli

SALT_VAR = "DATAOPS_TEST_SAMPLE_SALT"
SALT = "salt-for-sample-project-tests"
OTHER_SALT = "a-rotated-salt"

pytestmark = pytest.mark.slow


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_project(target: Path, prod: Path, config: str = "") -> Path:
    shutil.copytree(
        SAMPLE_PROJECT,
        target,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb*", ".mypy_cache"),
    )
    shutil.copy(prod, target / "prod.duckdb")
    (target / "dataops_dev.yml").write_text(
        f"version: 1\nsample:\n  salt_env: {SALT_VAR}\n  rate: 0.1\n{config}", encoding="utf-8"
    )
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "initial")
    return target


@pytest.fixture
def salt_env() -> Iterator[None]:
    previous = os.environ.get(SALT_VAR)
    os.environ[SALT_VAR] = SALT
    yield
    if previous is None:
        os.environ.pop(SALT_VAR, None)
    else:
        os.environ[SALT_VAR] = previous


@pytest.fixture(scope="module")
def duck_project(tmp_path_factory: pytest.TempPathFactory, sample_project_prod: Path) -> Path:
    return _copy_project(tmp_path_factory.mktemp("duck") / "project", sample_project_prod)


def _checksums(con: duckdb.DuckDBPyConnection, relations: Any) -> dict[str, tuple[int, str]]:
    out = {}
    for relation in relations:
        table = f'"{relation.schema}"."{relation.name}"'
        count, digest = con.execute(
            f"select count(*), md5(string_agg(r, '|' order by r)) "
            f"from (select t::varchar as r from {table} t)"
        ).fetchone()  # type: ignore[misc]
        out[str(relation)] = (count, digest)
    return out


def _raw_pii(prod: duckdb.DuckDBPyConnection, record: SampleRecord) -> set[str]:
    """Every raw value of every masked text column (and its trimmed / lower-cased forms)."""
    values: set[str] = set()
    schema = {r.name: r.schema for r in record.relations}
    for coverage in record.tables:
        table = coverage.table.split(".", 1)[1]
        for column, _transformer in coverage.masked:
            dtype = prod.execute(
                "select data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? and column_name = ?",
                [schema[table], table, column],
            ).fetchone()
            if not dtype or dtype[0] != "VARCHAR":
                continue
            for (value,) in prod.execute(
                f'select distinct "{column}" from "{schema[table]}"."{table}" '
                f'where "{column}" is not null'
            ).fetchall():
                values.update({value, value.strip(), value.strip().lower()})
    values.discard("")
    return values


def _leaks(con: duckdb.DuckDBPyConnection, raw: set[str], catalog: str) -> list[str]:
    """Every string column of every table and view of `catalog` scanned for raw values."""
    con.execute("create or replace temp table raw_pii (v varchar)")
    con.executemany("insert into raw_pii values (?)", [(v,) for v in sorted(raw)])
    columns = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_catalog = ? and data_type = 'VARCHAR'",
        [catalog],
    ).fetchall()
    assert columns, f"nothing to scan in {catalog}"
    leaks = []
    for schema, table, column in columns:
        found = con.execute(
            f'select count(*) from "{catalog}"."{schema}"."{table}" '
            f'where "{column}" in (select v from raw_pii)'
        ).fetchone()[0]  # type: ignore[index]
        if found:
            leaks.append(f"{schema}.{table}.{column}: {found}")
    return leaks


def test_duckdb_sample_is_closed_masked_and_deterministic(
    duck_project: Path, salt_env: None
) -> None:
    loaded = load_config(duck_project)
    prod = duck_project / "prod.duckdb"
    before = _sha256(prod)
    record = ensure_sample(loaded)
    assert not record.reused and record.orphans == 0
    assert {t.table for t in record.tables} == {
        f"shop.{t}"
        for t in (
            "customers",
            "stores",
            "products",
            "orders",
            "order_items",
            "payments",
            "web_events",
        )
    }
    assert all(t.sampled_rows > 0 and t.orphans == 0 for t in record.tables)
    customers = next(t for t in record.tables if t.table == "shop.customers")
    assert 0.05 < customers.sampled_rows / customers.production_rows < 0.15
    masked = {f"{t.table}.{c}": r for t in record.tables for c, r in t.masked}
    assert masked["shop.customers.email"] == "email"
    assert masked["shop.payments.card_number"] == "card"
    assert masked["shop.web_events.ip_address"] == "ip"

    document = (loaded.state_dir / "samples" / f"{record.sample_id}.json").read_text()
    assert SALT not in document
    data = json.loads(document)
    assert data["salt_fingerprint"] and data["versions"]["sampling"] and data["snapshot_time"]

    sample_file = Path(record.location)
    with duckdb.connect(str(sample_file), read_only=True) as con:
        first = _checksums(con, record.relations)
        # at-least-once duplicates of an event are sampled together (keyed on event_id)
        con.execute(f"attach '{prod}' as prod (read_only)")
        split = con.execute(
            "select count(*) from (select event_id, count(*) n from raw.web_events group by 1) s "
            "join (select event_id, count(*) n from prod.raw.web_events group by 1) p "
            "using (event_id) where s.n <> p.n"
        ).fetchone()
        assert split == (0,)
    assert ensure_sample(loaded).reused
    again = ensure_sample(loaded, refresh=True)
    assert again.sample_id == record.sample_id and not again.reused
    with duckdb.connect(str(sample_file), read_only=True) as con:
        assert _checksums(con, record.relations) == first

    os.environ[SALT_VAR] = OTHER_SALT
    rotated = ensure_sample(loaded)
    assert rotated.sample_id != record.sample_id
    with (
        duckdb.connect(str(sample_file), read_only=True) as a,
        duckdb.connect(rotated.location, read_only=True) as b,
    ):
        for table, key in (("customers", "customer_id"), ("orders", "order_id")):
            query = f"select {key} from raw.{table} order by 1"
            assert a.execute(query).fetchall() == b.execute(query).fetchall()
        query = "select customer_id, email from raw.customers where email is not null order by 1"
        pairs = zip(a.execute(query).fetchall(), b.execute(query).fetchall(), strict=True)
        assert all(x[1] != y[1] for x, y in pairs)
    assert _sha256(prod) == before, "production was written"


def test_environments_build_on_the_sample_without_raw_pii_and_pass_prod_tests(
    duck_project: Path, salt_env: None, tmp_path: Path
) -> None:
    from dataops_dev.dbt.runner import run_dbt
    from dataops_dev.environments import Environments, build_branch

    loaded = load_config(duck_project)
    prod = duck_project / "prod.duckdb"
    before = _sha256(prod)
    source = resolve_source_data(loaded)
    assert source.kind == "sample" and source.duckdb_file is not None
    assert source.duckdb_file.parent == loaded.state_dir / "samples"
    info, build = build_branch(loaded)
    assert build.source == source.identity
    profile = Environments(loaded).work_dir(info.name) / "profile" / "profiles.yml"
    assert (
        str(source.duckdb_file) in profile.read_text() and "prod.duckdb" not in profile.read_text()
    )
    sample_passed = {n.unique_id for n in build.nodes if n.status == "pass"}
    assert build.status == "success" and build.tests_failed == 0, build.error

    # every dbt test that passes on (a copy of) production passes on the sample
    copy = tmp_path / "prod_copy.duckdb"
    shutil.copy(prod, copy)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "sample_project:\n  target: copy\n  outputs:\n    copy:\n      type: duckdb\n"
        f"      path: {copy}\n      schema: main\n      threads: 2\n",
        encoding="utf-8",
    )
    prod_run = run_dbt(
        "build",
        [],
        project_dir=duck_project,
        profiles_dir=profiles,
        target_path=tmp_path / "target",
        target="copy",
        cwd=duck_project,
    )
    prod_passed = {n.unique_id for n in prod_run.nodes if n.status == "pass"}
    assert len(prod_passed) > 50
    assert prod_passed - sample_passed == set()

    # no raw value of a PII column in the sample or in the environment built from it
    record = ensure_sample(loaded)
    with duckdb.connect(str(prod), read_only=True) as con:
        raw = _raw_pii(con, record)
    assert len(raw) > 1000
    con = duckdb.connect()
    con.execute(f"attach '{source.duckdb_file}' as dataops_source (read_only)")
    env_db = Environments(loaded).database_path(info.name)
    con.execute(f"attach '{env_db}' as env (read_only)")
    assert _leaks(con, raw, "dataops_source") == []
    assert _leaks(con, raw, "env") == []
    con.close()
    assert _sha256(prod) == before


def test_cli_sample_and_init(tmp_path: Path, sample_project_prod: Path) -> None:
    project = _copy_project(tmp_path / "project", sample_project_prod)
    (project / "dataops_dev.yml").unlink()
    missing = run_cli("sample", cwd=project, env={"DATAOPS_SALT": ""})
    assert missing.returncode == 2
    assert "DATAOPS_SALT" in missing.stderr and missing.stdout == ""

    init = run_cli("init", "--json", cwd=project)
    assert init.returncode == 0, init.stderr
    proposal = json.loads(init.stdout)
    assert proposal["config_written"] and proposal["anchors"] == ["shop.customers"]
    assert (project / "dataops_dev.yml").exists() and (project / "dataops.lock.yml").exists()
    lock = (project / "dataops.lock.yml").read_text()
    assert "shop.web_events.customer_id" in lock and "partial: true" in lock
    load_config(project)  # the proposed config is valid

    env = {"DATAOPS_SALT": "cli-salt"}
    built = run_cli("sample", "--json", cwd=project, env=env)
    assert built.returncode == 0, built.stderr
    data = json.loads(built.stdout)
    assert "cli-salt" not in built.stdout + built.stderr
    assert all(t["orphans"] == 0 for t in data["tables"]) and data["reused"] is False
    # text and markdown renderings of the (reused) sample, in-process
    from click.testing import CliRunner

    from dataops_dev.cli import cli

    runner = CliRunner()
    config = ["--config", str(project / "dataops_dev.yml")]
    shown = runner.invoke(cli, [*config, "sample"], env=env, catch_exceptions=False)
    assert shown.exit_code == 0 and "shop.customers" in shown.stdout and "orphans" in shown.stdout
    assert "reused" in shown.stdout and "rows/s" not in shown.stdout
    markdown = runner.invoke(cli, [*config, "sample", "--format", "markdown"], env=env)
    assert markdown.stdout.startswith("| table |")

    # a new source column the lock file does not know: reported; fatal with masking.strict
    with duckdb.connect(str(project / "prod.duckdb")) as con:
        con.execute("alter table raw.customers add column nickname varchar default 'Bobby'")
    warned = run_cli("sample", cwd=project, env=env)
    assert warned.returncode == 0 and "shop.customers.nickname" in warned.stderr
    # a built sample says where its time went and how fast masking ran
    assert "mask " in warned.stdout and "rows/s" in warned.stdout
    strict = run_cli("sample", cwd=project, env={**env, "DATAOPS_DEV_MASKING__STRICT": "true"})
    assert strict.returncode == 2 and "nickname" in strict.stderr


@pytest.mark.postgres
def test_postgres_sample_matches_duckdb_and_never_writes_production(
    pg_database: str, sample_project_prod: Path, generator: Any, tmp_path: Path, salt_env: None
) -> None:
    import psycopg

    generator.load_into_postgres(sample_project_prod, pg_conninfo(pg_database))
    project = _copy_project(tmp_path / "project", sample_project_prod)
    sandbox = f"{pg_database}_sandbox"
    os.environ["DATAOPS_PG_DATABASE"] = pg_database
    try:
        overrides = {
            "production.target": "pg",
            "backend.type": "warehouse",
            "backend.sandbox_database": sandbox,
        }
        loaded = load_config(project, overrides=overrides)
        with psycopg.connect(pg_conninfo(pg_database)) as conn:
            tables_before = conn.execute(
                "select count(*) from pg_tables where schemaname not in "
                "('pg_catalog', 'information_schema')"
            ).fetchone()
        record = ensure_sample(loaded)
        assert record.backend == "warehouse" and record.location == sandbox
        assert record.orphans == 0 and all(t.sampled_rows > 0 for t in record.tables)
        source = resolve_source_data(loaded)
        assert source.sandbox_database == sandbox and source.kind == "sample"

        duck = ensure_sample(load_config(project))
        query = "select customer_id, email, phone, city from raw.customers order by 1"
        with duckdb.connect(duck.location, read_only=True) as con:
            duck_rows = con.execute(query).fetchall()
        with psycopg.connect(pg_conninfo(sandbox)) as conn:
            pg_rows = conn.execute(query).fetchall()
            orphans = conn.execute(
                "select count(*) from raw.orders o where not exists "
                "(select 1 from raw.customers c where c.customer_id = o.customer_id)"
            ).fetchone()
        assert orphans == (0,)
        assert pg_rows == duck_rows, "one seed and salt: the same sample on both engines"

        with psycopg.connect(pg_conninfo(pg_database)) as conn:
            raw_emails = {
                r[0]
                for r in conn.execute(
                    "select email from raw.customers where email is not null"
                ).fetchall()
            }
            assert (
                conn.execute(
                    "select count(*) from pg_tables where schemaname not in "
                    "('pg_catalog', 'information_schema')"
                ).fetchone()
                == tables_before
            )
        assert not raw_emails & {r[1] for r in pg_rows}
        with duckdb.connect(str(sample_project_prod), read_only=True) as con:
            raw = _raw_pii(con, record)
        with psycopg.connect(pg_conninfo(sandbox)) as conn:
            conn.execute("create temp table raw_pii (v text)")
            with conn.cursor().copy("copy raw_pii (v) from stdin") as copy:
                for value in sorted(raw):
                    copy.write_row((value,))
            columns = conn.execute(
                "select table_schema, table_name, column_name from information_schema.columns "
                "where table_schema = 'raw' and data_type = 'text'"
            ).fetchall()
            assert len(columns) > 10
            leaks = [
                f"{t}.{c}"
                for s, t, c in columns
                if conn.execute(
                    f'select count(*) from "{s}"."{t}" where "{c}" in (select v from raw_pii)'
                ).fetchone()
                != (0,)
            ]
        assert leaks == []

        with pytest.raises(ConfigError):
            ensure_sample(
                load_config(
                    project_dir=project,
                    overrides={**overrides, "backend.sandbox_database": pg_database},
                ),
                refresh=True,
            )
    finally:
        os.environ.pop("DATAOPS_PG_DATABASE", None)
        with psycopg.connect(pg_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{sandbox}" WITH (FORCE)')


def test_init_reports_the_pyproject_it_read(tmp_path: Path, sample_project_prod: Path) -> None:
    """Config in pyproject.toml: init names that file and proposes no dataops_dev.yml."""
    from dataops_dev.init import run_init

    project = _copy_project(tmp_path / "project", sample_project_prod)
    (project / "dataops_dev.yml").unlink()
    (project / "pyproject.toml").write_text("[tool.dataops_dev]\nversion = 1\n", encoding="utf-8")
    loaded = load_config(project)
    result = run_init(loaded)
    assert result.config_path == project / "pyproject.toml"
    assert result.config_written is False
    assert not (project / "dataops_dev.yml").exists()
