"""Exporting a commit's files: the destination is replaced whole, with no staging left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataops_dev import gitrepo
from dataops_dev.errors import GitError
from tests.conftest import git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "project" / "models").mkdir(parents=True)
    (root / "project" / "dbt_project.yml").write_text("name: one\n")
    (root / "project" / "models" / "a.sql").write_text("select 1\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    return root


def test_export_replaces_the_previous_tree(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "project" / "models" / "a.sql").unlink()
    (repo / "project" / "dbt_project.yml").write_text("name: two\n")
    git(repo, "commit", "-q", "-am", "two")
    second = git(repo, "rev-parse", "HEAD")
    destination = tmp_path / "code" / "x"

    code = gitrepo.export_tree(repo, first, "project", destination)
    assert code == destination / "project"
    assert (code / "models" / "a.sql").read_text() == "select 1\n"
    (destination / "stale.txt").write_text("not in any commit")

    code = gitrepo.export_tree(repo, second, "project", destination)
    assert (code / "dbt_project.yml").read_text() == "name: two\n"
    assert not (code / "models" / "a.sql").exists()
    assert not (destination / "stale.txt").exists()
    assert sorted(p.name for p in destination.parent.iterdir()) == ["x"]


def test_failed_export_keeps_the_previous_tree(repo: Path, tmp_path: Path) -> None:
    destination = tmp_path / "code" / "x"
    gitrepo.export_tree(repo, git(repo, "rev-parse", "HEAD"), ".", destination)
    with pytest.raises(GitError):
        gitrepo.export_tree(repo, "0" * 40, ".", destination)
    assert (destination / "project" / "dbt_project.yml").read_text() == "name: one\n"
    assert sorted(os.listdir(tmp_path / "code")) == ["x"]
