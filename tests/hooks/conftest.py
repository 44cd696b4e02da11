"""Fixtures for the pre-commit hook tests: sample_project with a production manifest made by a
real `dbt parse` (once per session), copied into a fresh git repository per test — at the root
or in a subfolder — and a runner for the real `pre-commit` on a local-repo config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PROJECT = REPO_ROOT / "sample_project"
BIN = Path(sys.executable).parent


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


@pytest.fixture(scope="session")
def parsed_sample_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sample_project with `.dataops/production/manifest.json` from a real `dbt parse`."""
    project = tmp_path_factory.mktemp("hooks_sample") / "sample_project"
    shutil.copytree(
        SAMPLE_PROJECT,
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    result = subprocess.run(
        [str(BIN / "dbt"), "parse", "--project-dir", ".", "--profiles-dir", ".", "-q"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    production = project / ".dataops" / "production"
    production.mkdir(parents=True)
    shutil.copy(project / "target" / "manifest.json", production / "manifest.json")
    shutil.rmtree(project / "target")
    shutil.rmtree(project / "logs", ignore_errors=True)
    # Warm the lineage cache once: every copy starts where a developer's second commit would.
    from dataops_dev.impact import analyze_impact

    analyze_impact(project, production / "manifest.json", state_dir=project / ".dataops")
    return project


@dataclass
class HookRepo:
    """A git repository holding a copy of sample_project at `project` (maybe a subfolder)."""

    root: Path
    project: Path

    def path(self, relative: str) -> Path:
        return self.project / relative

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.path(relative)
        text = path.read_text(encoding="utf-8")
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    def write(self, relative: str, text: str) -> None:
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def stage(self) -> None:
        git(self.root, "add", "-A")

    def rel(self, relative: str) -> str:
        """A project file's path relative to the repository root (as pre-commit passes it)."""
        return self.path(relative).relative_to(self.root).as_posix()

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PRE_COMMIT_HOME": str(self.root.parent / ".pre-commit-home"),
            "NO_COLOR": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        return subprocess.run(
            [str(BIN / "pre-commit"), *args, "--color", "never"],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )


def local_hooks_config() -> dict[str, object]:
    """`.pre-commit-config.yaml` with `repo: local` hooks mirroring `.pre-commit-hooks.yaml`,
    run with this virtualenv's `dataops-dev` (a `repo:` URL would pip-install dbt afresh)."""
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    local = []
    for hook in hooks:
        entry = dict(hook)
        entry["entry"] = str(BIN / "dataops-dev") + entry["entry"].removeprefix("dataops-dev")
        entry["language"] = "system"
        local.append(entry)
    return {"repos": [{"repo": "local", "hooks": local}]}


@pytest.fixture
def hook_repo(tmp_path: Path, parsed_sample_project: Path) -> Callable[..., HookRepo]:
    """make(subfolder="analytics") -> a git repo (branch main, one commit) with sample_project
    in `subfolder` ("" for the root) and the local pre-commit config."""

    def make(subfolder: str = "analytics") -> HookRepo:
        root = tmp_path / "repo"
        project = root / subfolder if subfolder else root
        shutil.copytree(parsed_sample_project, project)
        (root / ".gitignore").write_text(".dataops/\ntarget/\nlogs/\n*.duckdb\n", "utf-8")
        (root / ".pre-commit-config.yaml").write_text(
            yaml.safe_dump(local_hooks_config(), sort_keys=False), "utf-8"
        )
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "initial")
        return HookRepo(root, project)

    return make
