"""The build stages of an environment, each on its own (plain manifests, no dbt run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dataops_dev.engines.base import Relation
from dataops_dev.environments import (
    BuildRequest,
    EnvironmentInfo,
    _BuildProgress,
    _comparison_state,
    _seeds_kept_as_source_views,
    _seeds_replacing_source_views,
    _Stage,
)
from dataops_dev.sources import SourceData

SOURCE = SourceData(
    kind="sample",
    identity="s1",
    relations=(Relation("raw", "raw_customers"), Relation("raw", "raw_orders")),
)


def _seed(name: str, schema: str, checksum: str, path: str) -> dict[str, Any]:
    return {
        "resource_type": "seed",
        "name": name,
        "alias": name,
        "schema": schema,
        "package_name": "shop",
        "original_file_path": path,
        "checksum": {"name": "sha256", "checksum": checksum},
    }


def _manifest(**seeds: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"project_name": "shop"},
        "nodes": {f"seed.shop.{name}": node for name, node in seeds.items()},
        "sources": {},
    }


def test_seeds_the_sample_holds_are_kept_as_views_unless_the_branch_edits_them(
    tmp_path: Path,
) -> None:
    head = _manifest(
        raw_customers=_seed("raw_customers", "raw", "c2", "seeds/raw/raw_customers.csv"),
        raw_orders=_seed("raw_orders", "raw", "o1", "seeds/raw/raw_orders.csv"),
        countries=_seed("countries", "main", "x1", "seeds/countries.csv"),
    )
    base = _manifest(
        raw_customers=_seed("raw_customers", "raw", "c1", "seeds/raw/raw_customers.csv"),
        raw_orders=_seed("raw_orders", "raw", "o1", "seeds/raw/raw_orders.csv"),
    )
    (tmp_path / "manifest.json").write_text(json.dumps(base))

    kept = _seeds_kept_as_source_views(head, SOURCE, tmp_path)

    assert kept == ("path:seeds/raw/raw_orders.csv",)
    assert _seeds_replacing_source_views(head, SOURCE, kept) == (Relation("raw", "raw_customers"),)
    # Without a baseline (the baseline itself): every colliding seed is the sample's.
    assert _seeds_kept_as_source_views(head, SOURCE, None) == (
        "path:seeds/raw/raw_customers.csv",
        "path:seeds/raw/raw_orders.csv",
    )


def test_comparison_state_repoints_sources_at_this_environment(tmp_path: Path) -> None:
    def source(database: str, schema: str = "raw") -> dict[str, Any]:
        return {
            "database": database,
            "schema": schema,
            "identifier": "orders",
            "relation_name": f'"{database}"."{schema}"."orders"',
        }

    base = {
        "nodes": {"model.shop.a": {"database": "base_1"}},
        "sources": {
            "source.shop.raw.orders": source("base_1"),
            "source.shop.raw.moved": source("base_1"),
        },
    }
    state = tmp_path / "base"
    state.mkdir()
    (state / "manifest.json").write_text(json.dumps(base))
    head = {
        "sources": {
            "source.shop.raw.orders": source("feature_2"),
            "source.shop.raw.moved": source("feature_2", schema="landing"),
        }
    }

    written = json.loads(
        (_comparison_state(state, head, tmp_path / "state") / "manifest.json").read_text()
    )

    assert written["sources"]["source.shop.raw.orders"] == source("feature_2")
    # A source the branch moved stays as it was: dbt should see that change.
    assert written["sources"]["source.shop.raw.moved"] == source("base_1")
    # Models keep the baseline's relations: they are what unbuilt parents defer to.
    assert written["nodes"]["model.shop.a"]["database"] == "base_1"


def test_tests_are_deferred_without_favor_state(tmp_path: Path) -> None:
    info = EnvironmentInfo(
        name="feature_2", branch="feature", kind="branch", backend="duckdb", created_at="now"
    )
    request = BuildRequest(code_dir=tmp_path, commit="c" * 40, select=("state:modified+",))
    stage = _Stage(
        dbt=None,
        info=info,
        request=request,
        staging_target=tmp_path / "target.building",
        state=tmp_path / "state",
        exclude=("path:seeds/raw/raw_orders.csv",),
        progress=_BuildProgress(request=request, source=SOURCE),
    )
    assert stage.defer_args(favor_state=True)[-1] == "--favor-state"
    assert "--favor-state" not in stage.defer_args(favor_state=False)
    assert stage.select_args() == [
        "--select",
        "state:modified+",
        "--exclude",
        "path:seeds/raw/raw_orders.csv",
    ]
    assert stage.select_args(exclude=False) == ["--select", "state:modified+"]


def test_a_build_with_another_dbt_target_name_is_not_reused(tmp_path: Path) -> None:
    from dataops_dev.config import load_config
    from dataops_dev.environments import BuildRecord, Environments
    from dataops_dev.review import _still_current

    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    loaded = load_config(tmp_path)
    envs = Environments(loaded)
    envs.manifest_path("base_0123456789ab").parent.mkdir(parents=True)
    envs.manifest_path("base_0123456789ab").write_text("{}")
    commit = "0123456789ab" + "0" * 28

    def info(target: str | None) -> EnvironmentInfo:
        record = BuildRecord(
            commit=commit,
            dirty=False,
            started_at="2026-01-01T00:00:00+00:00",
            finished_at="2026-01-01T00:00:01+00:00",
            status="success",
            timings={},
            source="s1",
            target=target,
        )
        return EnvironmentInfo(
            name="base_0123456789ab",
            branch="main",
            kind="baseline",
            backend="duckdb",
            created_at="2026-01-01T00:00:00+00:00",
            last_build=record,
        )

    assert _still_current(loaded, envs, info("prod"), commit, SOURCE)
    # Built before environments took production's target name (or with another one).
    assert not _still_current(loaded, envs, info("dataops"), commit, SOURCE)
    assert not _still_current(loaded, envs, info(None), commit, SOURCE)


def test_readers_of_a_seed_loaded_over_a_source_view_are_selected() -> None:
    from dataops_dev.environments import _readers_of

    manifest = {
        "sources": {
            "source.shop.raw.raw_customers": {
                "source_name": "raw",
                "name": "raw_customers",
                "schema": "raw",
                "identifier": "raw_customers",
            },
            "source.shop.raw.raw_orders": {
                "source_name": "raw",
                "name": "raw_orders",
                "schema": "raw",
                "identifier": "raw_orders",
            },
        }
    }
    assert _readers_of(manifest, (Relation("raw", "raw_customers"),)) == (
        "source:raw.raw_customers+",
    )
    assert _readers_of(manifest, ()) == ()


def test_an_extending_build_measures_changes_against_its_last_build(tmp_path: Path) -> None:
    """`state:modified` against the branch's last build; deferral to the baseline only for
    what the environment does not hold (no --favor-state: what it kept is read from it)."""
    info = EnvironmentInfo(
        name="feature_2", branch="feature", kind="branch", backend="duckdb", created_at="now"
    )
    request = BuildRequest(code_dir=tmp_path, commit="c" * 40, select=("state:modified+",))
    stage = _Stage(
        dbt=None,
        info=info,
        request=request,
        staging_target=tmp_path / "target.building",
        state=tmp_path / "state",
        exclude=(),
        progress=_BuildProgress(request=request, source=SOURCE),
        previous=tmp_path / "target",
    )
    expected = [
        "--defer",
        "--defer-state",
        str(tmp_path / "state"),
        "--state",
        str(tmp_path / "target"),
    ]
    assert stage.defer_args(favor_state=True) == expected
    assert stage.defer_args(favor_state=False) == expected


def test_project_inputs_change_with_macros_and_project_files(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from dataops_dev.environments import _project_inputs

    (tmp_path / "dbt_project.yml").write_text("name: shop\nvars: {x: 1}\n")
    request = BuildRequest(code_dir=tmp_path, commit="c" * 40)
    macro = SimpleNamespace(macro_sql="{% macro m() %}1{% endmacro %}")
    parsed = SimpleNamespace(macros={"macro.shop.m": macro})
    first = _project_inputs(parsed, request)
    assert _project_inputs(parsed, request) == first
    edited = SimpleNamespace(macros={"macro.shop.m": SimpleNamespace(macro_sql="2")})
    assert _project_inputs(edited, request) != first
    (tmp_path / "dbt_project.yml").write_text("name: shop\nvars: {x: 2}\n")
    assert _project_inputs(parsed, request) != first
