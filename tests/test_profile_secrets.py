"""Generated profiles (`.dataops/envs/<env>/profile/profiles.yml`, deploy's work profile) carry no
rendered credential: `env_var()` references stay references, and a plain-text password reaches
dbt through a DBT_ENV_SECRET_ variable. dbt really connects to PostgreSQL with each profile.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from dataops_dev.config import load_config
from dataops_dev.dbt.project import load_profile_target
from dataops_dev.dbt.runner import run_dbt
from dataops_dev.environments import (
    BuildRequest,
    Environments,
    _WarehouseBackend,
    write_profile,
)
from dataops_dev.sources import SourceData
from tests.conftest import PG_HOST, PG_USER, git

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "pg-pass-7781-do-not-leak"
LITERAL = "literal-pass-3302-do-not-leak"


@pytest.fixture
def pg_project(
    tmp_path: Path, pg_database_factory: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("DATAOPS_PG_PASSWORD", PASSWORD)
    monkeypatch.delenv("DBT_ENV_SECRET_DATAOPS_PASSWORD", raising=False)
    pg_database, sandbox = pg_database_factory(), pg_database_factory()
    project = tmp_path / "ss_pg"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: ss_pg\nversion: '1.0.0'\nconfig-version: 2\nprofile: ss_pg\n"
    )
    (project / "models" / "one.sql").write_text("select 1 as id\n")
    (project / "profiles.yml").write_text(
        textwrap.dedent(
            f"""\
            ss_pg:
              target: pg
              outputs:
                pg:
                  type: postgres
                  host: "{{{{ env_var('SS_PG_HOST', '{PG_HOST}') }}}}"
                  user: {PG_USER}
                  password: "{{{{ env_var('DATAOPS_PG_PASSWORD') }}}}"
                  port: 5432
                  dbname: {pg_database}
                  schema: analytics
                  threads: 1
                plain:
                  type: postgres
                  host: {PG_HOST}
                  user: {PG_USER}
                  password: {LITERAL}
                  port: 5432
                  dbname: {pg_database}
                  schema: analytics
                  threads: 1
            """
        )
    )
    (project / "dataops_dev.yml").write_text(
        "version: 1\nproduction:\n  target: pg\n"
        f"backend:\n  type: warehouse\n  sandbox_database: {sandbox}\n"
    )
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "init")
    return project


def _dbt_run(project: Path, profiles_dir: Path) -> None:
    run = run_dbt(
        "run",
        [],
        project_dir=project,
        profiles_dir=profiles_dir,
        target_path=profiles_dir.parent / "target",
        target="dataops",
        cwd=project,
    )
    assert run.success, run.error


def test_environment_profile_keeps_env_var_references(pg_project: Path) -> None:
    loaded = load_config(pg_project)
    envs = Environments(loaded)
    info = envs.create("feature")
    backend = _WarehouseBackend(loaded, envs, info)
    source = SourceData(kind="sample", identity="x", relations=())
    profiles_dir = backend.write_profile(source, BuildRequest(code_dir=pg_project, commit="0" * 40))

    text = (profiles_dir / "profiles.yml").read_text()
    assert PASSWORD not in text
    output = yaml.safe_load(text)["ss_pg"]["outputs"]["dataops"]
    assert output["password"] == "{{ env_var('DATAOPS_PG_PASSWORD') }}"
    assert output["host"].startswith("{{ env_var('SS_PG_HOST'")
    assert output["schema"] == info.name  # what we change is written as itself
    assert PASSWORD not in "".join(
        p.read_text(errors="replace") for p in loaded.state_dir.rglob("*") if p.is_file()
    )
    _dbt_run(pg_project, profiles_dir)


def test_plain_text_password_reaches_dbt_through_a_secret_variable(
    pg_project: Path, tmp_path: Path
) -> None:
    loaded = load_config(pg_project)
    output = load_profile_target(loaded, "plain")
    profiles_dir = write_profile(loaded, tmp_path / "work" / "profile", output)

    text = (profiles_dir / "profiles.yml").read_text()
    assert LITERAL not in text
    dataops = yaml.safe_load(text)["ss_pg"]["outputs"]["dataops"]
    assert dataops["password"] == "{{ env_var('DBT_ENV_SECRET_DATAOPS_PASSWORD') }}"
    assert os.environ["DBT_ENV_SECRET_DATAOPS_PASSWORD"] == LITERAL
    _dbt_run(pg_project, profiles_dir)
