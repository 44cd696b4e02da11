"""`impact` and `lineage` on fresh clones of small real-shaped dbt projects, as a new user runs
them: no target/, no .dataops/, nothing prepared. Each change must mark the models it changes
(none missed) and no more than dbt's own `state:modified+` selects."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.real_projects import ProjectRepo, make_project_repo

pytestmark = pytest.mark.slow


def dbt_state_modified(repo: ProjectRepo, state: Path, tmp: Path) -> set[str]:
    """Models, seeds and snapshots that dbt itself selects with `state:modified+` against
    `state` (dbt in-process: one import for the whole module)."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [
            "--quiet",
            "ls",
            "--select",
            "state:modified+",
            "--state",
            str(state),
            "--resource-type",
            "model",
            "--resource-type",
            "seed",
            "--resource-type",
            "snapshot",
            "--output",
            "name",
            "--project-dir",
            str(repo.project),
            "--profiles-dir",
            str(repo.project),
            "--target-path",
            str(tmp / "dbt-ls-target"),
            "--log-path",
            str(tmp / "dbt-ls-logs"),
        ]
    )
    assert result.success, result.exception
    return {str(name).strip() for name in result.result or ()}


def flagged(report: dict[str, Any]) -> set[str]:
    """Every model `impact` says may change: the changed ones and their impact radius."""
    names = {m["name"] for m in report["models"]}
    for model in report["models"]:
        names |= set(model["impacted"]["models"])
    return names


def impact_json(repo: ProjectRepo, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    result = repo.run("impact", "--base", "main", "--json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# --------------------------------------------------------------------------------------------
# Change detection beyond model SQL (ir_changes)


@dataclass(frozen=True)
class Case:
    edit: Callable[[ProjectRepo], object]
    changed: dict[str, str]
    """Models (or seeds/sources) that must be reported, with their change kind."""
    impacted: set[str]
    """Downstream models that must be in the impact radius."""
    dbt_sees_it: bool = True
    """False where dbt's state comparison cannot see the change (a data file behind a source)."""
    reason: str = ""
    """Said in the reasons of the changed model."""


CASES: dict[str, Case] = {
    "macro": Case(
        lambda r: r.replace("macros/money.sql", "{{ scale }}", "{{ scale + 1 }}"),
        {"stg_events": "partial"},
        {"big_events", "customer_totals", "currency_report", "customer_labels"},
        reason="macro changed: to_dollars",
    ),
    "seed_csv": Case(
        lambda r: r.replace("seeds/country_codes.csv", "NL,Netherlands\n", "NL,Nederland\n"),
        {"country_codes": "unknown"},
        {"stg_countries", "customers_by_country"},
        reason="seed data changed (seeds/country_codes.csv)",
    ),
    "external_source_file": Case(
        lambda r: r.replace("data/raw_events.csv", "4,3,purchase,120\n", "4,3,purchase,121\n"),
        {"raw.raw_events": "unknown"},
        {"stg_events", "big_events", "customer_totals", "currency_report", "customer_labels"},
        dbt_sees_it=False,
        reason="external file changed: data/raw_events.csv",
    ),
    "read_csv_file": Case(
        lambda r: r.replace("data/fx_rates.csv", "USD,1.08", "USD,1.09"),
        {"stg_fx_rates": "unknown"},
        {"currency_report"},
        dbt_sees_it=False,
        reason="reads a changed file: data/fx_rates.csv",
    ),
    "vars": Case(
        # dbt's state:modified does not compare vars used in SQL: it selects nothing here.
        lambda r: r.replace("dbt_project.yml", "min_amount: 10", "min_amount: 20"),
        {"big_events": "breaking"},
        set(),
        dbt_sees_it=False,
        reason="vars changed in dbt_project.yml: min_amount",
    ),
    "duplicate_column_removed": Case(
        lambda r: r.replace(
            "models/marts/customer_labels.sql",
            ",\n    cast(total_usd as varchar) as label\n",
            "\n",
        ),
        {"customer_labels": "breaking"},
        set(),
        reason="removed columns: label_1",
    ),
    "unrenderable_macro_file": Case(
        # One macro file the renderer cannot load: only the model that needs it is unknown.
        lambda r: (
            r.write("macros/broken.sql", "{% macro shout(c) %}upper({{ c }}{% endmacro\n"),
            r.replace("models/staging/stg_customers.sql", "    name,", "    {{ shout('name') }},"),
        ),
        {"stg_customers": "unknown"},
        {"customer_totals", "customers_by_country", "currency_report", "customer_labels"},
        dbt_sees_it=False,  # dbt cannot parse this branch at all
        reason="macros/broken.sql",
    ),
    "column_order": Case(
        lambda r: r.replace(
            "models/staging/stg_countries.sql",
            "code as country_code,\n    name as country_name",
            "name as country_name,\n    code as country_code",
        ),
        {"stg_countries": "metadata"},
        set(),
        reason="column order changed",
    ),
}


@pytest.fixture(scope="module")
def changes_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectRepo]:
    repo = make_project_repo("ir_changes", tmp_path_factory.mktemp("ir_changes"))
    repo.checkout_new_branch("feature")
    yield repo


@pytest.mark.parametrize("name", list(CASES))
def test_each_change_marks_its_models_and_no_more_than_dbt(
    changes_repo: ProjectRepo, name: str, tmp_path: Path
) -> None:
    case = CASES[name]
    repo = changes_repo
    try:
        case.edit(repo)
        report = impact_json(repo)
        kinds = {m["name"]: m["change"] for m in report["models"]}
        assert kinds == case.changed, report["models"]
        reasons = [r for m in report["models"] for r in m["reasons"]]
        assert any(case.reason in r for r in reasons), reasons
        impacted = flagged(report) - set(case.changed)
        assert case.impacted <= impacted, f"missed: {case.impacted - impacted}"
        if case.dbt_sees_it:
            dbt = dbt_state_modified(repo, Path(report["base_manifest"]).parent, tmp_path)
            assert set(case.changed) <= dbt
            assert flagged(report) <= dbt, f"beyond dbt's state:modified+: {flagged(report) - dbt}"
        else:
            # dbt cannot see it (a data file, a var in SQL): exactly the expected models.
            assert flagged(report) == set(case.changed) | case.impacted
    finally:
        repo.git("checkout", "-q", "--", ".")
        repo.git("clean", "-fdq")


def test_a_second_run_reuses_the_parsed_base(changes_repo: ProjectRepo) -> None:
    changes_repo.git("checkout", "-q", "--", ".")
    first = impact_json(changes_repo)
    again = changes_repo.run("impact", "--base", "main", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["base_manifest"] == first["base_manifest"]
    assert "dbt parse" not in again.stderr and "parsed once, cached" in again.stderr
    assert first["models"] == []


# --------------------------------------------------------------------------------------------
# Every dbt construct renders (ir_blocks)


def test_blocks_project_renders_everything_from_a_fresh_clone(tmp_path: Path) -> None:
    repo = make_project_repo("ir_blocks", tmp_path)
    repo.checkout_new_branch("feature")
    repo.replace(
        "macros/cents.sql", "round({{ column_name }} / 100.0, 2)", "({{ column_name }} / 100.0)"
    )
    repo.replace("models/staging/stg_orders.sql", "status,", "upper(status) as status,")
    report = impact_json(repo)
    kinds = {m["name"]: m["change"] for m in report["models"]}
    assert kinds == {"stg_orders": "partial", "stg_payments": "partial"}, report["models"]
    assert not any("unknown" in m["change"] for m in report["models"])
    dbt = dbt_state_modified(repo, Path(report["base_manifest"]).parent, tmp_path)
    assert set(kinds) <= dbt and flagged(report) <= dbt

    lineage = repo.run("lineage", "orders.amount", "--json")
    assert lineage.returncode == 0, lineage.stderr
    data = json.loads(lineage.stdout)
    assert data["unknown_reason"] is None
    assert {"from": "stg_payments.amount", "to": "orders.amount", "kind": "aggregated"} in data[
        "upstream"
    ]
    assert "parsed from the working tree" in lineage.stderr


def test_lineage_never_reads_a_stale_manifest(tmp_path: Path) -> None:
    repo = make_project_repo("ir_blocks", tmp_path)
    first = repo.run("lineage", "orders", "--json")
    assert first.returncode == 0, first.stderr
    # An unknown model is a usage error, like an unknown column.
    unknown = repo.run("lineage", "ordrs")
    assert unknown.returncode == 2, unknown.stderr
    assert "did you mean orders" in unknown.stderr
    # A manifest left from an older build: lineage must not read it once files changed.
    stale = repo.path("target/manifest.json")
    stale.parent.mkdir()
    stale.write_text(Path(json.loads(first.stdout)["manifest"]).read_text())
    repo.replace("models/marts/orders.sql", "as payment_count", "as payments")
    after = repo.run("lineage", "orders", "--json")
    assert after.returncode == 0, after.stderr
    data = json.loads(after.stdout)
    assert data["manifest"] != str(stale)
    assert "payments" in data["columns"] and "payment_count" not in data["columns"]
    assert "older than the project files" in after.stderr


# --------------------------------------------------------------------------------------------
# A project in a subfolder, with a Python model (ir_transform)


def test_python_model_change_marks_all_downstream_from_the_repo_root(tmp_path: Path) -> None:
    repo = make_project_repo("ir_transform", tmp_path, project_subdir="transform")
    repo.checkout_new_branch("feature")
    repo.replace("models/customer_scores.py", "* 10", "* 12")
    report = impact_json(repo, cwd=repo.root)
    assert [m["name"] for m in report["models"]] == ["customer_scores"]
    change = report["models"][0]
    assert change["change"] == "unknown" and change["rows_affected"]
    downstream = {"customer_segments", "top_customers", "segment_summary", "score_history"}
    assert downstream <= set(change["impacted"]["models"])
    assert not downstream & set(report["no_diff_needed"])
    dbt = dbt_state_modified(repo, Path(report["base_manifest"]).parent, tmp_path)
    assert flagged(report) == dbt

    from_project = impact_json(repo, cwd=repo.project)
    assert flagged(from_project) == flagged(report)
    explicit = impact_json(repo, "--project-dir", "transform", cwd=repo.root)
    assert flagged(explicit) == flagged(report)


def test_lineage_from_the_repo_root_finds_the_subfolder_project(tmp_path: Path) -> None:
    repo = make_project_repo("ir_transform", tmp_path, project_subdir="transform")
    for cwd in (repo.root, repo.project):
        result = repo.run("lineage", "segment_summary", "--json", cwd=cwd)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["node"] == "segment_summary"
        assert any(e["from"].startswith("customer_segments.") for e in data["upstream"])
    # `select *` over a seed: its columns come from the CSV header, not `seed.* --unknown-->`.
    star = repo.run("lineage", "customers_raw", "--upstream", "--json", cwd=repo.root)
    assert star.returncode == 0, star.stderr
    data = json.loads(star.stdout)
    assert data["columns"] == ["customer_id", "name", "orders", "returns"]
    assert {"from": "customers.name", "to": "customers_raw.name", "kind": "pass_through"} in data[
        "upstream"
    ]


def test_missing_prerequisites_are_usage_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    repo = make_project_repo("ir_blocks", tmp_path)
    no_project = repo.run("impact", "--base", "main", cwd=empty)
    assert no_project.returncode == 2, no_project.stderr
    assert "hint:" in no_project.stderr
    unknown_ref = repo.run("impact", "--base", "no-such-branch")
    assert unknown_ref.returncode == 2, unknown_ref.stderr
    assert "--base-manifest" in unknown_ref.stderr
    no_git = tmp_path / "no_git"
    shutil.copytree(repo.project, no_git, ignore=shutil.ignore_patterns(".git", "*.duckdb"))
    outside_git = repo.run("impact", "--base", "main", cwd=no_git)
    assert outside_git.returncode == 2, outside_git.stderr
    assert "not inside a git repository" in outside_git.stderr
