"""Finding the dbt project: nearest upward, else the one project in a subfolder of the
repository root; several are a usage error that names them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops_dev.config import load_config
from dataops_dev.errors import ConfigError


def _project(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "dbt_project.yml").write_text(f"name: {name}\nprofile: {name}\n")
    return directory


def test_the_one_project_in_a_subfolder_is_found_from_the_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    project = _project(tmp_path / "transform", "analytics")
    (tmp_path / "transform" / "dataops_dev.yml").write_text("version: 1\n")
    _project(tmp_path / "transform" / "dbt_packages" / "utils", "utils")  # not a candidate
    loaded = load_config(tmp_path)
    assert loaded.project_dir == project.resolve()
    assert loaded.source == str((project / "dataops_dev.yml").resolve())


def test_the_nearest_project_upward_wins_over_subfolders(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo", "outer")
    _project(root / "nested", "inner")
    assert load_config(root).project_dir == root.resolve()


def test_several_projects_below_are_a_usage_error_naming_them(tmp_path: Path) -> None:
    _project(tmp_path / "a", "a")
    _project(tmp_path / "b" / "dbt", "b")
    with pytest.raises(ConfigError, match=r"several dbt projects.*a, b/dbt") as raised:
        load_config(tmp_path)
    assert raised.value.hint is not None and "--project-dir a" in raised.value.hint
