"""Environments: naming, real dbt builds of sample_project, atomicity, locking, list/drop/gc."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from dataops_dev.config import load_config
from dataops_dev.environments import (
    Environments,
    baseline_name,
    environment_name,
    validate_name,
)
from dataops_dev.errors import ConfigError, LockedError
from tests.conftest import git, run_cli

SALT = {"DATAOPS_SALT": "test-salt-for-environments"}
HOSTILE = 'feature/Drop"; DROP TABLE x;--'


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- naming ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "branch",
    ["main", "feature/x", HOSTILE, "ÜBER-branch", "123-fix", "a" * 300, "base_abc", "---", "x y"],
)
def test_environment_names_are_sql_safe_and_bounded(branch: str) -> None:
    name = environment_name(branch)
    assert re.fullmatch(r"[a-z][a-z0-9_]*_[0-9a-f]{8}", name), name
    assert len(name) <= 49
    assert validate_name(name) == name
    assert not name.startswith("base_")
    assert environment_name(branch) == name  # deterministic


def test_branches_that_slug_alike_get_different_environments() -> None:
    names = {environment_name(b) for b in ["feat/a", "feat-a", "feat_a", "FEAT/A", "feat//a"]}
    assert len(names) == 5


def test_baseline_names_and_validation() -> None:
    assert baseline_name("0123456789abcdef0123") == "base_0123456789ab"
    with pytest.raises(ConfigError):
        baseline_name("not-a-sha")
    with pytest.raises(ConfigError):
        validate_name('x"; drop table y')


# -- builds on sample_project (real dbt) -------------------------------------------------------


def _env_file(project: Path, name: str) -> Path:
    return project / ".dataops" / "envs" / f"{name}.duckdb"


def _tables(path: Path, alias: str) -> set[str]:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS \"{alias}\" (READ_ONLY)")
        rows = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_catalog = ?",
            [alias],
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


@pytest.mark.slow
def test_build_list_drop_on_duckdb(sample_project_copy: Path) -> None:
    project = sample_project_copy
    prod_sum = sha256(project / "prod.duckdb")
    git(project, "checkout", "-q", "-b", "feature/new-thing")

    result = run_cli("build", cwd=project, env=SALT)
    assert result.returncode == 0, result.stderr
    assert "built " in result.stdout
    assert sha256(project / "prod.duckdb") == prod_sum

    listed = run_cli("env", "list", "--json", cwd=project, env=SALT)
    assert listed.returncode == 0, listed.stderr
    envs = json.loads(listed.stdout)["environments"]
    (info,) = envs
    assert info["branch"] == "feature/new-thing"
    assert info["name"] == environment_name("feature/new-thing")
    assert info["status"] == "ready"
    assert info["last_build"]["commit"] == git(project, "rev-parse", "HEAD")
    assert info["size_bytes"] > 0
    statuses = {n["unique_id"]: n["status"] for n in info["last_build"]["nodes"]}
    assert statuses["model.sample_project.dim_customers"] == "success"
    assert any(uid.startswith("test.") for uid in statuses)
    assert all(s in ("success", "pass", "no-op") for s in statuses.values()), statuses
    assert {"parse", "run", "test", "total"} <= set(info["last_build"]["timings"])

    tables = _tables(_env_file(project, info["name"]), info["name"])
    assert "main.dim_customers" in tables
    assert sha256(project / "prod.duckdb") == prod_sum

    dropped = run_cli("env", "drop", info["name"], cwd=project, env=SALT)
    assert dropped.returncode == 0, dropped.stderr
    assert not _env_file(project, info["name"]).exists()
    assert json.loads(run_cli("env", "list", "--json", cwd=project).stdout)["environments"] == []
    assert sha256(project / "prod.duckdb") == prod_sum


@pytest.mark.slow
def test_hostile_branch_name_builds_and_harms_nothing(sample_project_copy: Path) -> None:
    project = sample_project_copy
    prod_sum = sha256(project / "prod.duckdb")
    result = run_cli(
        "build", "--branch", HOSTILE, "--select", "stg_customers", cwd=project, env=SALT
    )
    assert result.returncode == 0, result.stderr
    name = environment_name(HOSTILE)
    assert _env_file(project, name).exists()
    info = json.loads(run_cli("env", "list", "--json", cwd=project).stdout)["environments"][0]
    assert info["branch"] == HOSTILE
    assert sha256(project / "prod.duckdb") == prod_sum


@pytest.mark.slow
def test_a_failed_test_holds_back_no_model_and_results_are_merged(
    sample_project_copy: Path,
) -> None:
    """One `dbt build` runs models and tests; what dbt skips because a test failed is built
    after it, so a failing test never costs the review a model's data."""
    project = sample_project_copy
    # A failing test at two levels of the DAG: the second is only reached in the re-run.
    (project / "tests" / "stg_customers_fails.sql").write_text(
        "select customer_id from {{ ref('stg_customers') }} limit 1\n"
    )
    (project / "tests" / "history_fails.sql").write_text(
        "select customer_id from {{ ref('int_customer_order_history') }} limit 1\n"
    )
    result = run_cli("build", "--select", "+dim_customers", cwd=project, env=SALT)
    assert result.returncode == 3, result.stderr  # failed tests block, the build stands
    name = environment_name("main")
    meta = json.loads((project / ".dataops" / "envs" / f"{name}.json").read_text())
    nodes = meta["last_build"]["nodes"]
    statuses = {n["unique_id"]: n["status"] for n in nodes}
    assert len(nodes) == len(statuses), "a node built twice is recorded once"
    assert statuses["test.sample_project.stg_customers_fails"] == "fail"
    assert statuses["test.sample_project.history_fails"] == "fail"
    assert statuses["model.sample_project.dim_customers"] == "success"
    assert "skipped" not in statuses.values(), statuses
    assert "main.dim_customers" in _tables(_env_file(project, name), name)

    target = project / ".dataops" / "envs" / name / "target"
    results = json.loads((target / "run_results.json").read_text())["results"]
    assert {r["unique_id"]: r["status"] for r in results} == statuses
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["nodes"]["model.sample_project.dim_customers"]["compiled_code"]
    assert manifest["nodes"]["model.sample_project.stg_customers"]["compiled_code"]


def test_a_branch_parses_from_another_environments_state_under_its_own_name(
    sample_project_copy: Path,
) -> None:
    """Environments parse under one stand-in database name, so a branch's first build starts
    from the main environment's partial parse (dbt re-parses only the edited file); what it
    builds and records still names the branch's own database, never the stand-in."""
    project = sample_project_copy
    assert run_cli("build", cwd=project, env=SALT).returncode == 0
    git(project, "checkout", "-q", "-b", "feature/parse-once")
    model = project / "models" / "marts" / "dim_customers.sql"
    model.write_text(model.read_text() + "\n-- a comment: the model's file changed\n")

    result = run_cli("build", cwd=project, env=SALT)

    assert result.returncode == 0, result.stderr
    name = environment_name("feature/parse-once")
    target = project / ".dataops" / "envs" / name / "target"
    log = (project / ".dataops" / "envs" / name / "logs" / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log
    parsed = json.loads((target / "perf_info.json").read_text())
    main_parse = project / ".dataops" / "envs" / environment_name("main") / "target"
    everything = json.loads((main_parse / "perf_info.json").read_text())
    assert everything["parsed_path_count"] == everything["path_count"] > 100  # a full parse
    # The edited model, and the files dbt re-reads with it (its schema file, its tests).
    assert 1 <= parsed["parsed_path_count"] < 20
    text = (target / "manifest.json").read_text()
    assert "dataops_parsed_env" not in text
    manifest = json.loads(text)
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert models and {n["database"] for n in models} == {name}
    assert all(n["relation_name"].startswith(f'"{name}".') for n in models)
    assert {s["database"] for s in manifest["sources"].values()} == {name}
    assert "main.dim_customers" in _tables(_env_file(project, name), name)
    assert not list((project / ".dataops" / "envs").glob("dataops_parsed_env*"))


@pytest.mark.slow
def test_failed_build_keeps_previous_state(sample_project_copy: Path) -> None:
    project = sample_project_copy
    first = run_cli("build", "--select", "+dim_customers", cwd=project, env=SALT)
    assert first.returncode == 0, first.stderr
    name = environment_name("main")
    before = _tables(_env_file(project, name), name)
    assert "main.dim_customers" in before

    model = project / "models" / "marts" / "dim_customers.sql"
    model.write_text(model.read_text() + "\n this is not sql )))\n")
    broken = run_cli("build", "--select", "+dim_customers", cwd=project, env=SALT)
    assert broken.returncode == 1
    assert "previous build" in broken.stderr and "still in place" in broken.stderr
    assert _tables(_env_file(project, name), name) == before
    listed = json.loads(run_cli("env", "list", "--json", cwd=project).stdout)["environments"][0]
    assert listed["last_build"]["status"] == "success"
    assert listed["last_attempt"]["status"] == "failed"
    assert listed["status"].startswith("failed (previous build kept)")
    assert not (project / ".dataops" / "envs" / f"{name}.building.duckdb").exists()


@pytest.mark.slow
def test_killed_build_leaves_previous_environment_intact(sample_project_copy: Path) -> None:
    project = sample_project_copy
    first = run_cli("build", "--select", "+dim_customers", cwd=project, env=SALT)
    assert first.returncode == 0, first.stderr
    name = environment_name("main")
    final = _env_file(project, name)
    before_tables = _tables(final, name)
    before_sum = sha256(final)

    staging = final.with_name(f"{name}.building.duckdb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dataops_dev", "build"],
        cwd=project,
        env={**os.environ, **SALT},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not staging.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the build finished before it could be killed"
    time.sleep(0.5)  # let dbt get into the middle of the build
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    assert sha256(final) == before_sum
    assert _tables(final, name) == before_tables
    listed = json.loads(run_cli("env", "list", "--json", cwd=project).stdout)["environments"][0]
    assert listed["status"] == "ready"
    # The next build cleans up what the killed one left and succeeds.
    again = run_cli("build", "--select", "+dim_customers", cwd=project, env=SALT)
    assert again.returncode == 0, again.stderr
    assert not staging.exists()


@pytest.mark.slow
def test_concurrent_build_is_refused(sample_project_copy: Path) -> None:
    project = sample_project_copy
    loaded = load_config(project)
    envs = Environments(loaded)
    info = envs.create("main")
    with envs.lock(info.name):
        result = run_cli("build", cwd=project, env=SALT)
        with pytest.raises(LockedError), envs.lock(info.name):
            pass
    assert result.returncode == 1
    assert "being written by another process" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_gc_drops_gone_branches_and_keeps_main_baseline(sample_project_copy: Path) -> None:
    project = sample_project_copy
    loaded = load_config(project)
    envs = Environments(loaded)
    git(project, "branch", "short-lived")
    envs.create("short-lived")
    envs.create("main")
    kept_branch = envs.create("still-here")
    git(project, "branch", "still-here")
    main_sha = git(project, "rev-parse", "main")
    envs.create("main", kind="baseline", name=baseline_name(main_sha))
    git(project, "branch", "-D", "short-lived")

    dry = run_cli("env", "gc", "--dry-run", "--json", cwd=project)
    assert dry.returncode == 0, dry.stderr
    assert [d["branch"] for d in json.loads(dry.stdout)["dropped"]] == ["short-lived"]
    assert envs.find(environment_name("short-lived")) is not None

    real = run_cli("env", "gc", "--json", cwd=project)
    assert [d["branch"] for d in json.loads(real.stdout)["dropped"]] == ["short-lived"]
    assert envs.find(environment_name("short-lived")) is None

    # Past the TTL everything goes except main's environment and main's baseline.
    expired = run_cli("env", "gc", "--ttl-days", "0", "--json", cwd=project)
    dropped = {d["name"] for d in json.loads(expired.stdout)["dropped"]}
    assert dropped == {kept_branch.name}
    remaining = {e.name for e in envs.all()}
    assert remaining == {environment_name("main"), baseline_name(main_sha)}


# -- the warehouse sandbox database ------------------------------------------------------------


def _warehouse_config(tmp_path: Path, prod_dbname: str, config: str = "") -> Path:
    (tmp_path / "dbt_project.yml").write_text("name: p\nversion: '1'\nprofile: p\n")
    prod = f"      dbname: {prod_dbname}\n" if prod_dbname else ""
    (tmp_path / "profiles.yml").write_text(
        "p:\n  target: prod\n  outputs:\n"
        f"    prod:\n      type: postgres\n      host: h\n      user: u\n{prod}"
        "    conn:\n      type: postgres\n      host: h\n      user: u\n      dbname: postgres\n"
    )
    (tmp_path / "dataops_dev.yml").write_text(
        f"version: 1\nbackend:\n  type: warehouse\n  target: conn\n{config}"
    )
    return tmp_path


def test_sample_and_environments_agree_on_the_sandbox(tmp_path: Path) -> None:
    """One rule: named after (and never equal to) the production target's database, even when
    `backend.target` connects through another target."""
    from dataops_dev.environments import _WarehouseBackend
    from dataops_dev.sources import sandbox_database

    loaded = load_config(_warehouse_config(tmp_path, "shop"))
    assert sandbox_database(loaded) == "shop_dataops"
    assert _WarehouseBackend(loaded).sandbox_database() == "shop_dataops"
    assert Environments(loaded).create("main").database == "shop_dataops"

    clash = load_config(_warehouse_config(tmp_path, "shop", "  sandbox_database: shop\n"))
    with pytest.raises(ConfigError, match="production's database"):
        sandbox_database(clash)

    nameless = load_config(_warehouse_config(tmp_path, ""))
    with pytest.raises(ConfigError, match="names no database") as caught:
        _WarehouseBackend(nameless).sandbox_database()
    assert "None" not in caught.value.message
    named = load_config(_warehouse_config(tmp_path, "", "  sandbox_database: box\n"))
    assert sandbox_database(named) == "box"
