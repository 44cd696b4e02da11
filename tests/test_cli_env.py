"""`dataops-dev env gc`: a dry run changes nothing, not even the clean-up of killed builds."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from dataops_dev.config import load_config
from dataops_dev.environments import Environments
from tests.conftest import git, run_cli


def test_gc_dry_run_leaves_what_a_killed_build_left(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\n", "utf-8")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    envs = Environments(load_config(project))
    info = envs.create("main")
    # What a build killed mid-way leaves: its staging database (a real DuckDB file).
    staging = envs.root / f"{info.name}.building.duckdb"
    duckdb.connect(str(staging)).close()

    dry = run_cli("env", "gc", "--dry-run", "--json", cwd=project)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {"dry_run": True, "dropped": [], "recovered": []}
    assert staging.exists()

    real = run_cli("env", "gc", "--json", cwd=project)
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["recovered"] == [info.name]
    assert not staging.exists()
    assert envs.find(info.name) is not None  # main's environment is kept
