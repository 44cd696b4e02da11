"""dbt packages of exported trees and fresh clones, and the dbt target name of environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops_dev.config import load_config
from dataops_dev.dbt.packages import (
    declaration_fingerprint,
    declared_packages,
    ensure_packages,
    install_dir,
    is_installed,
)
from dataops_dev.environments import environment_target_name
from dataops_dev.errors import ConfigError, ProjectError

LOCAL_PACKAGES = "packages:\n  - local: packages/helpers\n"


def _tree(root: Path, packages: str = LOCAL_PACKAGES, macro: str = "select 1") -> Path:
    """A dbt project at `root` with a local package `packages/helpers`."""
    (root / "packages" / "helpers" / "macros").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        'name: shop\nversion: "1.0"\nconfig-version: 2\nprofile: shop\n'
    )
    (root / "profiles.yml").write_text(
        "shop:\n  target: prod\n  outputs:\n    prod: {type: duckdb, path: prod.duckdb}\n"
    )
    (root / "packages.yml").write_text(packages)
    (root / "packages" / "helpers" / "dbt_project.yml").write_text(
        'name: helpers\nversion: "0.1"\nconfig-version: 2\n'
    )
    (root / "packages" / "helpers" / "macros" / "one.sql").write_text(
        f"{{% macro one() %}}{macro}{{% endmacro %}}\n"
    )
    return root


def test_declared_packages_name_each_source(tmp_path: Path) -> None:
    (tmp_path / "packages.yml").write_text(
        "packages:\n"
        "  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n"
        "  - git: https://example.com/x.git\n    revision: v1\n"
        "  - local: ../shared\n"
    )
    assert declared_packages(tmp_path) == (
        "dbt-labs/dbt_utils",
        "git: https://example.com/x.git",
        "local: ../shared",
    )
    assert declared_packages(tmp_path / "nowhere") == ()


def test_install_dir_follows_packages_install_path(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: a\npackages-install-path: vendor\n")
    assert install_dir(tmp_path) == tmp_path / "vendor"


@pytest.mark.slow
def test_fresh_tree_runs_deps_and_an_export_reuses_it_with_its_own_local_code(
    tmp_path: Path,
) -> None:
    work = _tree(tmp_path / "work")
    export = _tree(tmp_path / "export", macro="select 2")
    assert not is_installed(work)

    assert ensure_packages(work, work_dir=tmp_path / "w1") == "deps"
    assert is_installed(work)
    assert not (work / "package-lock.yml").exists()  # the user's tree keeps its files
    assert ensure_packages(work, work_dir=tmp_path / "w1") == "installed"

    assert declaration_fingerprint(work) == declaration_fingerprint(export)
    assert ensure_packages(export, work_dir=tmp_path / "w2", reuse_from=work) == "reused"
    installed = export / "dbt_packages" / "helpers"
    # The export's local package is its own code at its commit, not the working tree's.
    assert installed.resolve() == (export / "packages" / "helpers").resolve()
    assert "select 2" in (installed / "macros" / "one.sql").read_text()


@pytest.mark.slow
def test_a_different_declaration_runs_deps_in_that_tree(tmp_path: Path) -> None:
    work = _tree(tmp_path / "work")
    ensure_packages(work, work_dir=tmp_path / "w1")
    other = _tree(tmp_path / "other", packages=LOCAL_PACKAGES + "  # pinned elsewhere\n")
    assert declaration_fingerprint(work) != declaration_fingerprint(other)
    assert ensure_packages(other, work_dir=tmp_path / "w2", reuse_from=work) == "deps"
    assert (other / "dbt_packages" / "helpers").resolve() == (
        other / "packages" / "helpers"
    ).resolve()


@pytest.mark.slow
def test_unreachable_package_is_an_error_naming_it_and_the_fix(tmp_path: Path) -> None:
    unreachable = "git: file:///nonexistent/dataops-rr/helpers.git"
    work = _tree(tmp_path / "work", packages=f"packages:\n  - {unreachable}\n")
    with pytest.raises(ProjectError) as error:
        ensure_packages(work, work_dir=tmp_path / "w")
    assert unreachable in error.value.message
    assert error.value.hint is not None
    assert "unreachable" in error.value.hint and "dbt deps" in error.value.hint


def test_environment_target_name(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    assert environment_target_name(load_config(tmp_path)) == "prod"
    (tmp_path / "dataops_dev.yml").write_text("version: 1\nproduction:\n  target: live\n")
    assert environment_target_name(load_config(tmp_path)) == "live"
    (tmp_path / "dataops_dev.yml").write_text("version: 1\nbackend:\n  type: warehouse\n")
    assert environment_target_name(load_config(tmp_path)) == "dataops"
    (tmp_path / "dataops_dev.yml").write_text("version: 1\nenvironments:\n  target_name: ci\n")
    assert environment_target_name(load_config(tmp_path)) == "ci"
    (tmp_path / "dataops_dev.yml").write_text("version: 1\nenvironments:\n  target_nam: ci\n")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path)
    assert error.value.hint == "did you mean `environments.target_name`?"
