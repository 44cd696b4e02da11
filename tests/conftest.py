"""Shared fixtures: real engines only (DuckDB files, a real PostgreSQL, real dbt runs).

PostgreSQL: the `postgres_server` fixture starts the local cluster itself (as CI does) and creates
the `root` superuser; `pg_database` hands each test a fresh database and drops it afterwards.
sample_project: `sample_project_prod` generates production data once per session at a small scale;
`sample_project_copy` gives a test its own copy of the project (with a git repository) to change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Tests commit in throw-away repositories: a new machine has no git identity configured.
for _var, _value in (
    ("GIT_AUTHOR_NAME", "dataops tests"),
    ("GIT_AUTHOR_EMAIL", "tests@dataops.invalid"),
    ("GIT_COMMITTER_NAME", "dataops tests"),
    ("GIT_COMMITTER_EMAIL", "tests@dataops.invalid"),
):
    os.environ.setdefault(_var, _value)
# Every command runs in a process of its own, as in CI (where `CI` turns the resident worker off
# too); tests/test_worker.py turns the worker on for its own commands.
os.environ.setdefault("DATAOPS_WORKER", "0")

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PROJECT = REPO_ROOT / "sample_project"
PG_HOST = os.environ.get("DATAOPS_PG_HOST", "/var/run/postgresql")
PG_USER = os.environ.get("DATAOPS_PG_USER", "root")
TEST_SCALE = float(os.environ.get("DATAOPS_TEST_SCALE", "0.01"))


def _pg_ready() -> bool:
    import psycopg

    try:
        with psycopg.connect(host=PG_HOST, user=PG_USER, dbname="postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _as_postgres(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command as the `postgres` OS user with no shell in between: arguments reach psql
    verbatim (a `$$` in SQL passed through `su -c` is expanded to a process id)."""
    runner = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else None
    if runner is None:
        import shlex

        runner = ["su", "postgres", "-s", "/bin/sh", "-c"]
        argv = (shlex.join(argv),)
    return subprocess.run(
        [*runner, *argv], input=stdin, capture_output=True, text=True, check=False
    )


def _server_accepts() -> bool:
    """The server answers its own superuser over the socket (whatever roles exist)."""
    return _as_postgres("psql", "-h", PG_HOST, "-tAc", "select 1").returncode == 0


def _create_role(name: str) -> str:
    """Create the login superuser `name` unless it exists; returns psql's error text, if any."""
    if not name.replace("_", "").isalnum():
        return f"refusing to create role {name!r}: letters, digits and _ only"
    # psql substitutes :'role' as a quoted literal and %I quotes the identifier; variables
    # and \\gexec work only in a script, so the SQL goes through stdin.
    sql = (
        "SELECT format('CREATE ROLE %I SUPERUSER LOGIN', :'role')\n"
        "WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \\gexec\n"
    )
    result = _as_postgres(
        "psql", "-h", PG_HOST, "-v", "ON_ERROR_STOP=1", "-v", f"role={name}", "-f", "-", stdin=sql
    )
    return "" if result.returncode == 0 else (result.stderr or result.stdout).strip()


def start_postgres() -> None:
    """Start the local PostgreSQL cluster if it is down and create the test role if it is
    missing; fail with what actually went wrong (server down, or role missing) otherwise."""
    if _pg_ready():
        return
    problem = ""
    if shutil.which("pg_ctlcluster") and os.geteuid() == 0:
        if not _server_accepts():
            clusters = subprocess.run(
                ["pg_lsclusters", "-h"], capture_output=True, text=True, check=False
            ).stdout.split()
            version = clusters[0] if clusters else "15"
            subprocess.run(["pg_ctlcluster", version, "main", "start"], check=False)
            for _ in range(100):
                if _server_accepts():
                    break
                time.sleep(0.2)
        if _server_accepts():
            problem = _create_role(PG_USER)
        else:
            problem = "the server did not start: see /var/log/postgresql/"
    for _ in range(50):
        if _pg_ready():
            return
        time.sleep(0.2)
    if _server_accepts() or problem.startswith("refusing"):
        pytest.fail(
            f"PostgreSQL is running but role {PG_USER!r} cannot connect "
            f"({problem or 'peer authentication needs the OS user of the same name'}): "
            f"create it with `runuser -u postgres -- createuser --superuser {PG_USER}`"
        )
    pytest.fail(
        "PostgreSQL is not reachable and could not be started: warehouse tests must run "
        f"({problem or 'not root, or no pg_ctlcluster'}; as root: `pg_ctlcluster 15 main start`)"
    )


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The libpq host of a running PostgreSQL (started here if needed)."""
    start_postgres()
    return PG_HOST


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def pg_database(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database; yields its name and drops it after the test."""
    name = f"dataops_test_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database_factory(postgres_server: str) -> Iterator[Callable[[], str]]:
    """Creates as many fresh databases as a test needs; all are dropped afterwards."""
    created: list[str] = []

    def create() -> str:
        name = f"dataops_test_{uuid.uuid4().hex[:10]}"
        _admin_execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return name

    try:
        yield create
    finally:
        for name in created:
            _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_conninfo(database: str) -> str:
    return f"host={PG_HOST} user={PG_USER} dbname={database}"


# Spark: one local Spark Connect server for the whole run. `./dev test` starts it before pytest
# and stops it afterwards (DATAOPS_SPARK_REMOTE); run without it, the first test that needs Spark
# starts one under SPARK_HOME_DIR (both xdist workers share it through a file lock) and it is
# left running for the next run.
SPARK_HOME_DIR = Path(
    os.environ.get("DATAOPS_SPARK_HOME", f"/tmp/dataops-test-spark-{os.getuid()}")
)


@pytest.fixture(scope="session")
def spark_remote() -> str:
    """The `sc://` address of a running Spark Connect server (started here if needed)."""
    remote = os.environ.get("DATAOPS_SPARK_REMOTE")
    if remote:
        return remote
    import fcntl

    from dataops_dev.engines import spark_server

    SPARK_HOME_DIR.mkdir(parents=True, exist_ok=True)
    with open(SPARK_HOME_DIR / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return spark_server.ensure_local(SPARK_HOME_DIR).remote


@pytest.fixture
def spark_schema(spark_remote: str) -> Iterator[str]:
    """A fresh, empty Spark schema; yields its name and drops it (with its tables) afterwards."""
    from dataops_dev.engines.spark import SparkEngine

    engine = SparkEngine(spark_remote)
    name = f"dataops_test_{uuid.uuid4().hex[:10]}"
    engine.execute(f"CREATE SCHEMA `{name}`")
    try:
        yield name
    finally:
        engine.execute(f"DROP SCHEMA IF EXISTS `{name}` CASCADE")


def _load_generator():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sample_project_generator", SAMPLE_PROJECT / "generator" / "generate.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def generator():  # type: ignore[no-untyped-def]
    """sample_project's production-data generator module."""
    return _load_generator()


@pytest.fixture(scope="session")
def sample_project_prod(tmp_path_factory: pytest.TempPathFactory, generator) -> Path:  # type: ignore[no-untyped-def]
    """A production DuckDB file of sample_project at TEST_SCALE, generated once per session."""
    path = tmp_path_factory.mktemp("prod") / "prod.duckdb"
    generator.generate(path, scale=TEST_SCALE, seed=42)
    return path


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def sample_project_repo(directory: Path, prod: Path, message: str = "initial") -> Path:
    """sample_project copied into `directory` as its own git repo (branch main, one commit
    with `message`), with the production file `prod` copied in as prod.duckdb."""
    project = directory / "sample_project"
    shutil.copytree(
        SAMPLE_PROJECT,
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    shutil.copy(prod, project / "prod.duckdb")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)
    return project


@pytest.fixture
def sample_project_copy(tmp_path: Path, sample_project_prod: Path) -> Path:
    """A private copy of sample_project in its own git repo (branch main, one commit),
    with the session's production file copied in as prod.duckdb."""
    return sample_project_repo(tmp_path, sample_project_prod)


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m dataops_dev ARGS` as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "dataops_dev", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
