"""Real edits to sample_project, classified against its dbt-compiled production manifest, with
the impacted downstream columns and exposures (the static path: no dbt, no database)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dataops_dev.impact import ChangeKind, ImpactReport, analyze_impact
from tests.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lineage_sample_project")]

HISTORY = "models/intermediate/int_customer_order_history.sql"
STG_ORDERS = "models/staging/stg_orders.sql"


def _impact(project: Path) -> ImpactReport:
    return analyze_impact(project, project / "target" / "manifest.json", state_dir=project / ".st")


def _cli(project: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(*args, cwd=project)


def _one(report: ImpactReport, name: str):  # type: ignore[no-untyped-def]
    matches = [m for m in report.models if m.name == name]
    assert len(matches) == 1, report.to_dict()
    return matches[0]


def test_unchanged_project_has_no_changes(compiled_sample_project: Path) -> None:
    report = _impact(compiled_sample_project)
    assert report.models == () and report.unchanged == ()


def test_rename_a_column_is_breaking_and_flags_the_contract(
    sample_edit: Callable[..., Path],
) -> None:
    report = _impact(sample_edit((HISTORY, "as lifetime_value", "as total_value")))
    change = _one(report, "int_customer_order_history")
    assert change.change is ChangeKind.BREAKING
    assert change.renamed_columns == (("lifetime_value", "total_value"),)
    assert change.impacted.columns == ("dim_customers.lifetime_value",)
    assert change.impacted.contracted_models == ("dim_customers",)
    assert change.impacted.exposures == ("customer_health_dashboard",)


def test_change_a_case_branch_is_partial_on_that_column(sample_edit: Callable[..., Path]) -> None:
    report = _impact(
        sample_edit(
            (
                HISTORY,
                "when orders.status in ('placed', 'shipped', 'completed')",
                "when orders.status in ('shipped', 'completed')",
            )
        )
    )
    change = _one(report, "int_customer_order_history")
    assert change.change is ChangeKind.PARTIAL
    assert change.changed_columns == ("lifetime_value",)
    assert change.impacted.models == ("dim_customers",)
    assert change.impacted.columns == ("dim_customers.lifetime_value",)
    assert change.impacted.exposures == ("customer_health_dashboard",)
    # customer_segments reads dim_customers, but none of the changed columns
    assert "customer_segments" in report.no_diff_needed


def test_add_a_column_is_additive_and_needs_no_downstream_diff(
    sample_edit: Callable[..., Path],
) -> None:
    report = _impact(
        sample_edit(
            (
                HISTORY,
                "    count(*) as order_count,",
                "    count(*) as order_count,\n    avg(order_totals.net_amount) as avg_order,",
            )
        )
    )
    change = _one(report, "int_customer_order_history")
    assert change.change is ChangeKind.ADDITIVE
    assert change.added_columns == ("avg_order",)
    assert change.impacted.models == ()
    assert {"dim_customers", "customer_segments"} <= set(report.no_diff_needed)


def test_change_a_join_type_is_breaking_but_left_join_children_only_change_joined_columns(
    sample_edit: Callable[..., Path],
) -> None:
    report = _impact(sample_edit((HISTORY, "inner join order_totals", "left join order_totals")))
    change = _one(report, "int_customer_order_history")
    assert change.change is ChangeKind.BREAKING and change.rows_affected
    # dim_customers LEFT JOINs the history: its rows stay, the history's columns change
    assert change.impacted.models == ("dim_customers",)
    assert change.impacted.row_affected_models == ()
    assert set(change.impacted.columns) == {
        "dim_customers.customer_type",
        "dim_customers.first_order_at",
        "dim_customers.last_order_at",
        "dim_customers.lifetime_value",
        "dim_customers.order_count",
    }


def test_reformat_only_is_no_change(sample_edit: Callable[..., Path]) -> None:
    report = _impact(
        sample_edit(
            (
                HISTORY,
                "group by orders.customer_id",
                "GROUP BY\n    orders.customer_id  -- per customer\n",
            ),
            (STG_ORDERS, "    order_id,\n    customer_id,", "    order_id, customer_id, -- ids"),
        )
    )
    assert report.models == ()
    assert report.unchanged == ("int_customer_order_history", "stg_orders")


def test_change_a_filter_is_breaking_and_every_downstream_row_is_affected(
    sample_edit: Callable[..., Path],
) -> None:
    report = _impact(
        sample_edit(
            (
                "models/staging/stg_web_events.sql",
                "where delivery_number = 1",
                "where delivery_number <= 2",
            )
        )
    )
    change = _one(report, "stg_web_events")
    assert change.change is ChangeKind.BREAKING and change.rows_affected
    assert change.impacted.row_affected_models == (
        "int_web_events_sessionized",
        "fct_web_sessions",
    )
    assert "fct_web_sessions.session_id" in change.impacted.columns


def test_column_change_reaches_the_revenue_dashboard(sample_edit: Callable[..., Path]) -> None:
    report = _impact(
        sample_edit(
            (STG_ORDERS, "lower(trim(channel)) as channel", "upper(trim(channel)) as channel")
        )
    )
    change = _one(report, "stg_orders")
    assert change.change is ChangeKind.PARTIAL and change.changed_columns == ("channel",)
    assert change.impacted.models == ("fct_orders", "store_performance")
    assert "fct_orders.channel" in change.impacted.columns
    assert change.impacted.exposures == ("revenue_dashboard",)
    assert "daily_revenue" in report.no_diff_needed


def test_yaml_description_change_is_metadata(sample_edit: Callable[..., Path]) -> None:
    project = sample_edit(
        (
            "models/marts/_marts__models.yml",
            "One row per customer account with contact details",
            "One row per customer, with contact details",
        )
    )
    report = _impact(project)
    assert len(report.models) == 1
    assert report.models[0].name == "dim_customers"
    assert report.models[0].change is ChangeKind.METADATA
    assert report.models[0].reasons == ("description changed",)
    assert report.models[0].impacted.models == ()
    assert "dim_customers" not in report.diff_needed


def test_cli_impact_json_and_markdown(sample_edit: Callable[..., Path], tmp_path: Path) -> None:
    project = sample_edit((HISTORY, "as lifetime_value", "as total_value"))
    result = _cli(project, "impact", "--base-manifest", "target/manifest.json", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    [model] = data["models"]
    assert model["name"] == "int_customer_order_history"
    assert model["change"] == "breaking"
    assert model["impacted"]["columns"] == ["dim_customers.lifetime_value"]
    assert model["impacted"]["exposures"] == ["customer_health_dashboard"]
    assert set(model) >= {"name", "change", "changed_columns", "impacted"}
    assert set(model["impacted"]) >= {"models", "columns", "exposures"}
    markdown = _cli(
        project, "impact", "--base-manifest", "target/manifest.json", "--format", "markdown"
    )
    assert "| `int_customer_order_history` | **breaking** |" in markdown.stdout
    failing = _cli(
        project,
        "impact",
        "--base-manifest",
        "target/manifest.json",
        "--fail-on",
        "breaking",
        "--json",
    )
    assert failing.returncode == 3


def test_cli_lineage_json(compiled_sample_project: Path) -> None:
    result = _cli(
        compiled_sample_project, "lineage", "dim_customers.lifetime_value", "--upstream", "--json"
    )
    assert result.returncode == 0, result.stderr
    edges = json.loads(result.stdout)["edges"]
    assert {
        "from": "int_customer_order_history.lifetime_value",
        "to": "dim_customers.lifetime_value",
        "kind": "derived",
    } in edges
    assert any(e["from"].startswith("shop.") for e in edges)  # down to the sources
    assert all(set(e) == {"from", "to", "kind"} for e in edges)
    down = _cli(compiled_sample_project, "lineage", "shop.orders.status", "--downstream", "--json")
    targets = {e["to"] for e in json.loads(down.stdout)["edges"]}
    assert "stg_orders.status" in targets and "fct_orders.is_revenue" in targets
    bad = _cli(compiled_sample_project, "lineage", "dim_customers.lifetime_valu")
    assert bad.returncode == 2 and "lifetime_value" in bad.stderr
