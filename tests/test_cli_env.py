"""`dataops-dev env gc`: a dry run changes nothing, not even the clean-up of killed builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from dataops_dev.config import load_config
from dataops_dev.environments import Environments
from tests.conftest import git, run_cli


def _project(tmp_path: Path) -> Path:
    """A committed one-file dbt project on branch main."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\n", "utf-8")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    return project


def test_gc_dry_run_leaves_what_a_killed_build_left(tmp_path: Path) -> None:
    project = _project(tmp_path)
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


def _project_with_env(tmp_path: Path, branch: str) -> tuple[Path, str]:
    project = _project(tmp_path)
    return project, Environments(load_config(project)).create(branch).name


def test_env_list_into_a_pipe_keeps_whole_names(tmp_path: Path) -> None:
    # Not a terminal: rich used to lay the table out in 80 columns and cut the names.
    project, name = _project_with_env(tmp_path, "feature/" + "very-long-branch-name-" * 4)
    env = {"NO_COLOR": "1"}
    env_without_columns = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    listed = subprocess.run(
        [sys.executable, "-m", "dataops_dev", "env", "list"],
        cwd=project,
        env={**env_without_columns, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if name in line]
    assert len(rows) == 1, listed.stdout
    assert "…" not in listed.stdout

    narrow = run_cli("env", "list", cwd=project, env={**env, "COLUMNS": "40"})
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 40
