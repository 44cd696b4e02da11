"""Review pieces on real engines without dbt: histograms across a type change (real DuckDB
files), what counts as a change to the project since a commit (real git), model lookup."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dataops_dev.config import load_config
from dataops_dev.dbt.manifest import Manifest
from dataops_dev.diffing import profile_diff
from dataops_dev.engines.base import Relation
from dataops_dev.engines.duckdb import DuckDBEngine
from dataops_dev.review import _find, paired_histograms, project_changes_since
from tests.conftest import git

BASE_SQL = """
    create table t as
    select i as id, date '2024-01-01' + cast(i as int) as d, i * 1.5 as x, i as n, i * 2 as same
    from range(40) r(i)
"""
# Every column but `same` changes its type family: date -> text, numeric -> text,
# numeric -> date; `same` stays numeric.
HEAD_SQL = """
    create table t as
    select i as id, 'day ' || i as d, 'x' || i as x, date '2024-01-01' + cast(i as int) as n,
           i * 3 as same
    from range(40) r(i)
"""


@pytest.fixture
def engine(tmp_path: Path) -> DuckDBEngine:
    for name, sql in (("base", BASE_SQL), ("head", HEAD_SQL)):
        connection = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        connection.execute(sql)
        connection.close()
    engine = DuckDBEngine(":memory:")
    engine.attach(tmp_path / "base.duckdb", "base")
    engine.attach(tmp_path / "head.duckdb", "head")
    return engine


def test_histograms_skip_columns_whose_type_family_changed(engine: DuckDBEngine) -> None:
    base = Relation(schema="main", name="t", database="base")
    head = Relation(schema="main", name="t", database="head")
    profile = profile_diff(engine, base, head, columns=["d", "x", "n", "same"])
    families = {p.name: (p.left.family, p.right.family) for p in profile.columns}
    assert families == {
        "d": ("temporal", "text"),
        "x": ("numeric", "text"),
        "n": ("numeric", "temporal"),
        "same": ("numeric", "numeric"),
    }
    # Casting the head's text to the base's type used to raise EngineError and end the review.
    histograms = paired_histograms(engine, base, head, profile)
    assert list(histograms) == ["same"]
    bins = histograms["same"]
    assert sum(b.base for b in bins) == 40 and sum(b.head for b in bins) == 40
    engine.close()


# ----------------------------------------------------------------------------------------------
# Changes since a commit


def _repo(tmp_path: Path, config: str = "") -> Path:
    project = tmp_path / "repo" / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (project / "models" / "orders.sql").write_text("select 1 as id\n")
    if config:
        (project / "dataops_dev.yml").write_text("version: 1\n" + config)
    git(tmp_path / "repo", "init", "-q", "-b", "main")
    git(tmp_path / "repo", "add", "-A")
    git(tmp_path / "repo", "commit", "-q", "-m", "initial")
    return project


def test_state_and_approvals_are_not_changes_to_the_project(tmp_path: Path) -> None:
    # No .gitignore: the state directory shows up as untracked files.
    project = _repo(tmp_path)
    loaded = load_config(project)
    commit = git(project, "rev-parse", "HEAD")
    (project / ".dataops" / "environments").mkdir(parents=True)
    (project / ".dataops" / "environments" / "main.duckdb").write_bytes(b"x")
    (project / ".dataops" / "reports.json").write_text("{}")
    (project / "dataops.approvals.yml").write_text("version: 1\n")
    assert project_changes_since(loaded, commit) == set()
    # Look-alikes of the state directory are project files.
    (project / ".dataops_notes.md").write_text("mine")
    (project / "models" / "orders.sql").write_text("select 2 as id\n")
    assert project_changes_since(loaded, commit) == {".dataops_notes.md", "models/orders.sql"}


def test_a_configured_state_dir_is_left_out_too(tmp_path: Path) -> None:
    project = _repo(tmp_path, "backend:\n  state_dir: build/state\n")
    loaded = load_config(project)
    commit = git(project, "rev-parse", "HEAD")
    (project / "build" / "state").mkdir(parents=True)
    (project / "build" / "state" / "lock").write_text("")
    (project / "build" / "other.txt").write_text("")
    assert project_changes_since(loaded, commit) == {"build/other.txt"}


def test_a_state_dir_outside_the_project_leaves_everything(tmp_path: Path) -> None:
    project = _repo(tmp_path, "backend:\n  state_dir: ../state\n")
    loaded = load_config(project)
    commit = git(project, "rev-parse", "HEAD")
    (project / "models" / "new.sql").write_text("select 1 as id\n")
    assert project_changes_since(loaded, commit) == {"models/new.sql"}


# ----------------------------------------------------------------------------------------------
# Model lookup by name


def _node(uid: str, resource_type: str, name: str, package: str, **extra: str) -> dict:
    return {
        "unique_id": uid,
        "resource_type": resource_type,
        "name": name,
        "package_name": package,
        **extra,
    }


def test_find_returns_the_projects_own_model_only() -> None:
    manifest = Manifest(
        {
            "metadata": {"project_name": "shop"},
            "nodes": {
                # A package's model listed first under the same name as the project's own.
                "model.pkg.orders": _node("model.pkg.orders", "model", "orders", "pkg"),
                "model.shop.orders": _node("model.shop.orders", "model", "orders", "shop"),
                "seed.shop.countries": _node("seed.shop.countries", "seed", "countries", "shop"),
            },
            "sources": {
                "source.shop.raw.orders": _node(
                    "source.shop.raw.orders", "source", "orders", "shop", source_name="raw"
                )
            },
        }
    )
    found = _find(manifest, "orders")
    assert found is not None and found.unique_id == "model.shop.orders"
    assert _find(manifest, "countries") is None  # a seed, not a model
    assert _find(manifest, "raw.orders") is None  # a source
    assert _find(manifest, "missing") is None
    assert _find(None, "orders") is None
