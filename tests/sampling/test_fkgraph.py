"""The FK graph between sources, from manifest.json: tests, constraints, keys, lineage, cycles."""

from __future__ import annotations

from typing import Any

import pytest

from dataops_dev.dbt.manifest import Manifest
from dataops_dev.errors import ConfigError
from dataops_dev.fkgraph import (
    EdgeOrigin,
    KeyOrigin,
    build_graph,
    graph_to_dict,
    parse_edge_text,
)

PKG = "shop_project"


def _source(
    table: str, columns: dict[str, dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "unique_id": f"source.{PKG}.shop.{table}",
        "resource_type": "source",
        "name": table,
        "source_name": "shop",
        "package_name": PKG,
        "database": "prod",
        "schema": "raw",
        "identifier": table,
        "relation_name": f'"prod"."raw"."{table}"',
        "columns": {n: {"name": n, **c} for n, c in (columns or {}).items()},
        "config": extra.pop("config", {}),
        **extra,
    }


def _model(name: str, sql: str, depends: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "unique_id": f"model.{PKG}.{name}",
        "resource_type": "model",
        "name": name,
        "package_name": PKG,
        "database": "dev",
        "schema": "main",
        "alias": name,
        "relation_name": f'"dev"."main"."{name}"',
        "raw_code": sql,
        "depends_on": {"nodes": depends},
        "columns": extra.pop("columns", {}),
        "config": {"materialized": "view"},
        **extra,
    }


def _test(
    name: str,
    test_name: str,
    attached: str | None,
    column: str | None,
    kwargs: dict[str, Any],
    depends: list[str],
    where: str | None = None,
) -> dict[str, Any]:
    return {
        "unique_id": f"test.{PKG}.{name}",
        "resource_type": "test",
        "name": name,
        "package_name": PKG,
        "attached_node": attached,
        "column_name": column,
        "test_metadata": {"name": test_name, "kwargs": kwargs, "namespace": None},
        "depends_on": {"nodes": depends},
        "config": {"where": where, "severity": "ERROR"},
    }


def _src(table: str) -> str:
    return f"source.{PKG}.shop.{table}"


def _keys(table: str, column: str) -> list[dict[str, Any]]:
    model = f"{{{{ get_where_subquery(source('shop', '{table}')) }}}}"
    return [
        _test(
            f"unique_{table}_{column}",
            "unique",
            None,
            column,
            {"column_name": column, "model": model},
            [_src(table)],
        ),
        _test(
            f"not_null_{table}_{column}",
            "not_null",
            None,
            column,
            {"column_name": column, "model": model},
            [_src(table)],
        ),
    ]


def _manifest(nodes: list[dict[str, Any]], sources: list[dict[str, Any]]) -> Manifest:
    return Manifest(
        {
            "metadata": {"project_name": PKG},
            "nodes": {n["unique_id"]: n for n in nodes},
            "sources": {s["unique_id"]: s for s in sources},
        }
    )


def _shop() -> Manifest:
    sources = [
        _source("customers"),
        _source("orders", config={"event_time": "ordered_at"}),
        _source(
            "stores",
            {"store_no": {"constraints": [{"type": "primary_key"}]}},
        ),
        _source("order_items", meta={"primary_key": ["order_id", "line_no"]}),
        _source("web_events"),
        _source("refunds"),
    ]
    stg_orders = _model(
        "stg_orders",
        "with src as (select * from {{ source('shop', 'orders') }})\n"
        "select id as order_id, cast(cust as bigint) as customer_id, lower(status) as status\n"
        "from src",
        [_src("orders")],
    )
    stg_customers = _model(
        "stg_customers",
        "{{ config(materialized='view') }}\nselect customer_id, upper(name) as name "
        "from {{ source('shop', 'customers') }}",
        [_src("customers")],
    )
    model_uid = f"model.{PKG}"
    tests = [
        *_keys("customers", "customer_id"),
        *_keys("orders", "id"),
        # the old form: kwargs straight under the test
        _test(
            "rel_items_orders",
            "relationships",
            None,
            "order_id",
            {
                "column_name": "order_id",
                "to": "source('shop', 'orders')",
                "field": "id",
                "model": "{{ get_where_subquery(source('shop', 'order_items')) }}",
            },
            [_src("orders"), _src("order_items")],
        ),
        # the `arguments:` form with a `where`: a partial edge
        _test(
            "rel_events_customers",
            "relationships",
            None,
            "customer_id",
            {
                "column_name": "customer_id",
                "arguments": {"to": "source('shop', 'customers')", "field": "customer_id"},
                "model": "{{ get_where_subquery(source('shop', 'web_events')) }}",
            },
            [_src("customers"), _src("web_events")],
            where="customer_id is not null",
        ),
        # declared on staging models: traced back through the renaming select
        _test(
            "rel_stg_orders_customers",
            "relationships",
            f"{model_uid}.stg_orders",
            "customer_id",
            {"column_name": "customer_id", "to": "ref('stg_customers')", "field": "customer_id"},
            [f"{model_uid}.stg_customers", f"{model_uid}.stg_orders"],
        ),
        # a computed column does not map back: reported, not used
        _test(
            "rel_stg_orders_status",
            "relationships",
            f"{model_uid}.stg_orders",
            "status",
            {"column_name": "status", "to": "ref('stg_customers')", "field": "name"},
            [f"{model_uid}.stg_customers", f"{model_uid}.stg_orders"],
        ),
    ]
    # a contract FK constraint on a model (dbt >= 1.9 form) and on a source (old expression form)
    stg_orders["columns"] = {
        "order_id": {"name": "order_id"},
        "customer_id": {"name": "customer_id"},
    }
    refunds = sources[5]
    refunds["columns"] = {
        "order_id": {
            "name": "order_id",
            "constraints": [{"type": "foreign_key", "expression": "raw.orders (id)"}],
        }
    }
    sources[1]["constraints"] = [
        {
            "type": "foreign_key",
            "columns": ["store"],
            "to": "source('shop', 'stores')",
            "to_columns": ["store_no"],
        }
    ]
    return _manifest([stg_orders, stg_customers, *tests], sources)


COLUMNS = {
    "shop.orders": ["id", "cust", "status", "store"],
    "shop.customers": ["customer_id", "name"],
}


def test_edges_from_tests_constraints_and_models() -> None:
    graph = build_graph(_shop(), source_columns=COLUMNS)
    edges = {e.label: e for e in graph.edges}
    assert set(edges) == {
        "shop.order_items(order_id) -> shop.orders(id)",
        "shop.web_events(customer_id) -> shop.customers(customer_id)",
        "shop.orders(cust) -> shop.customers(customer_id)",
        "shop.orders(store) -> shop.stores(store_no)",
        "shop.refunds(order_id) -> shop.orders(id)",
    }
    assert edges["shop.web_events(customer_id) -> shop.customers(customer_id)"].partial
    traced = edges["shop.orders(cust) -> shop.customers(customer_id)"]
    assert traced.via == ("stg_customers", "stg_orders") and not traced.partial
    assert edges["shop.orders(store) -> shop.stores(store_no)"].origin is EdgeOrigin.CONSTRAINT
    assert edges["shop.refunds(order_id) -> shop.orders(id)"].origin is EdgeOrigin.CONSTRAINT
    assert [u.declared_on for u in graph.unmapped] == [f"test.{PKG}.rel_stg_orders_status"]


def test_keys_and_their_origin() -> None:
    graph = build_graph(
        _shop(), source_columns=COLUMNS, primary_keys={"shop.refunds": ["refund_id"]}
    )
    tables = graph.tables
    assert (tables["shop.customers"].primary_key, tables["shop.customers"].key_origin) == (
        ("customer_id",),
        KeyOrigin.TESTS,
    )
    assert tables["shop.stores"].key_origin is KeyOrigin.CONSTRAINT
    assert tables["shop.order_items"].primary_key == ("order_id", "line_no")
    assert tables["shop.order_items"].key_origin is KeyOrigin.META
    assert tables["shop.refunds"].key_origin is KeyOrigin.CONFIG
    assert tables["shop.web_events"].primary_key is None
    assert tables["shop.orders"].event_time == "ordered_at"
    assert graph.auto_anchors() == ("shop.customers",)
    document = graph_to_dict(graph)
    assert document["tables"]["shop.customers"]["key_from"] == "unique_not_null_tests"
    assert {e["from"] for e in document["foreign_keys"]} == {
        "relationships_test",
        "foreign_key_constraint",
    }


def test_cycles_are_one_component_in_topological_order() -> None:
    sources = [_source("a"), _source("b"), _source("c"), _source("people")]

    def rel(name: str, child: str, column: str, parent: str, field: str) -> dict[str, Any]:
        return _test(
            name,
            "relationships",
            None,
            column,
            {
                "column_name": column,
                "to": f"source('shop', '{parent}')",
                "field": field,
                "model": f"{{{{ get_where_subquery(source('shop', '{child}')) }}}}",
            },
            [_src(child), _src(parent)] if child != parent else [_src(child)],
        )

    tests = [
        rel("ab", "b", "a_id", "a", "id"),
        rel("bc", "c", "b_id", "b", "id"),
        rel("cb", "b", "c_id", "c", "id"),
        rel("manager", "people", "manager_id", "people", "person_id"),
    ]
    graph = build_graph(_manifest(tests, sources))
    components = graph.strongly_connected()
    assert ["b", "c"] in [[n.split(".")[1] for n in comp] for comp in components]
    order = [n for comp in components for n in comp]
    assert order.index("shop.a") < order.index("shop.b")
    self_ref = [e for e in graph.edges if e.child == e.parent]
    assert [e.label for e in self_ref] == ["shop.people(manager_id) -> shop.people(person_id)"]
    assert graph.descendants(["shop.a"]) == {"shop.b", "shop.c"}


def test_config_edges() -> None:
    edge = parse_edge_text("shop.orders(customer_id)", "shop.customers(id)")
    assert edge.origin is EdgeOrigin.CONFIG and edge.parent_columns == ("id",)
    graph = build_graph(
        _shop(), extra_edges=[parse_edge_text("shop.refunds(store)", "shop.stores(store_no)")]
    )
    assert any(e.label == "shop.refunds(store) -> shop.stores(store_no)" for e in graph.edges)
    with pytest.raises(ConfigError):
        parse_edge_text("orders.customer_id", "shop.customers(id)")
    with pytest.raises(ConfigError):
        parse_edge_text("shop.a(x, y)", "shop.b(z)")
