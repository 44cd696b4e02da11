"""`init` and the first `review` as a new user meets them: a fresh clone whose default branch is
not `main`, and a profiles.yml without the production target."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.real_projects import make_project_repo


def test_first_review_on_a_repo_whose_main_line_is_not_main_says_which_branch(
    tmp_path: Path,
) -> None:
    repo = make_project_repo("nc_shop", tmp_path, branch="duckdb")
    result = repo.run("review")
    assert result.returncode == 2, result.stderr
    assert "the base branch 'main' does not exist" in result.stderr
    assert "main_branch: duckdb" in result.stderr


@pytest.mark.slow
def test_init_detects_the_default_branch_and_the_review_then_passes(tmp_path: Path) -> None:
    repo = make_project_repo("nc_shop", tmp_path, branch="duckdb")
    init = repo.run("init")
    assert init.returncode == 0, init.stderr
    config = yaml.safe_load(repo.path("dataops_dev.yml").read_text())
    assert config["production"]["main_branch"] == "duckdb"
    repo.commit("dataops_dev: init")
    review = repo.run("review", "--json")
    assert review.returncode == 0, review.stderr
    assert '"verdict": "pass"' in review.stdout


def test_init_offers_the_profiles_lines_of_a_missing_production_target(tmp_path: Path) -> None:
    repo = make_project_repo("nc_shop", tmp_path)
    profiles = yaml.safe_load(repo.path("profiles.yml").read_text())
    del profiles["nc_shop"]["outputs"]["prod"]
    repo.write("profiles.yml", yaml.safe_dump(profiles))

    result = repo.run("init")
    assert result.returncode == 2, result.stderr
    assert "the production target 'prod' is not in profile 'nc_shop'" in result.stderr
    assert "its targets: `dev`" in result.stderr
    assert not repo.path("dataops_dev.yml").exists()

    # The offered lines are valid YAML for `outputs:`: pasted in (pointed at production), init runs.
    lines = result.stderr.split("point it at production):\n", 1)[1].split("\nor, if one of")[0]
    offered = yaml.safe_load("\n".join(line[4:] for line in lines.splitlines()))
    assert offered == {"prod": {"type": "duckdb", "path": "dev.duckdb", "threads": 1}}
    offered["prod"]["path"] = "prod.duckdb"
    profiles["nc_shop"]["outputs"].update(offered)
    repo.write("profiles.yml", yaml.safe_dump(profiles))
    again = repo.run("init")
    assert again.returncode == 0, again.stderr
