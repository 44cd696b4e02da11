"""Relationships declared on models map back to source columns through the project's lineage:
compiled SQL when the manifest has it, else the model's Jinja rendered (not stripped)."""

from __future__ import annotations

import copy
from typing import Any

from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.fkgraph import build_graph
from tests.sampling.test_fkgraph import COLUMNS, PKG, _manifest, _model, _shop, _source, _test

TRACED = "shop.orders(cust) -> shop.customers(customer_id)"


def _with_models(manifest: Manifest, **changes: dict[str, Any]) -> Manifest:
    """A copy of `manifest` with fields of some models replaced (keyed by model name)."""
    data = copy.deepcopy(dict(manifest.data))
    for name, fields in changes.items():
        data["nodes"][f"model.{PKG}.{name}"].update(fields)
    return Manifest(data)


def _labels(manifest: Manifest, **kwargs: Any) -> tuple[set[str], dict[str, str]]:
    graph = build_graph(manifest, source_columns=COLUMNS, **kwargs)
    return {e.label for e in graph.edges}, {u.declared_on: u.reason for u in graph.unmapped}


def test_compiled_code_maps_like_the_rendered_model() -> None:
    # A compiled manifest (`dbt compile`): the raw Jinja (a package macro here) is not needed.
    compiled = _with_models(
        _shop(),
        stg_orders={
            "raw_code": "select {{ dbt_utils.star(source('shop', 'orders')) }}",
            "compiled_code": 'with src as (select * from "prod"."raw"."orders")\n'
            "select id as order_id, cast(cust as bigint) as customer_id, lower(status) as status\n"
            "from src",
        },
        stg_customers={
            "raw_code": "{{ dbt_utils.deduplicate(source('shop', 'customers')) }}",
            "compiled_code": 'select customer_id, upper(name) as name from "prod"."raw"."customers"',
        },
    )
    graph = build_graph(compiled, source_columns=COLUMNS)
    traced = {e.label: e for e in graph.edges}[TRACED]
    assert traced.via == ("stg_customers", "stg_orders")
    assert [u.declared_on for u in graph.unmapped] == [f"test.{PKG}.rel_stg_orders_status"]
    assert _labels(compiled)[0] == _labels(_shop())[0]


JINJA_ORDERS = """{{ config(materialized='incremental', unique_key='order_id') }}
{# the old system renamed `cust` once; a var switches back to it #}
with src as (
    select * from {{ source('shop', 'orders') }}
    {% if is_incremental() %}
    where id > (select max(order_id) from {{ this }})
    {% endif %}
)
select
    {{ key_column('id') }} as order_id,
    {% if var('legacy_customers', false) %}
    legacy_cust as customer_id,
    {% else %}
    cast(cust as bigint) as customer_id,
    {% endif %}
    {% for column in ['status', 'store'] %}
    lower({{ column }}) as {{ column }}{{ ',' if not loop.last }}
    {% endfor %}
from src
"""


def test_jinja_model_is_rendered_then_mapped() -> None:
    macro = {
        "unique_id": f"macro.{PKG}.key_column",
        "name": "key_column",
        "package_name": PKG,
        "original_file_path": "macros/keys.sql",
        "macro_sql": "{% macro key_column(name) %}{{ return(name) }}{% endmacro %}",
    }
    manifest = _with_models(_shop(), stg_orders={"raw_code": JINJA_ORDERS})
    data = dict(manifest.data)
    data["macros"] = {macro["unique_id"]: macro}
    labels, unmapped = _labels(Manifest(data))
    assert TRACED in labels
    assert list(unmapped) == [f"test.{PKG}.rel_stg_orders_status"]
    assert "stg_orders.status is computed" in unmapped[f"test.{PKG}.rel_stg_orders_status"]


def _orders_to_customers(orders_sql: str, **extra: Any) -> Manifest:
    sources = [_source("orders"), _source("customers")]
    stg_orders = _model("stg_orders", orders_sql, [f"source.{PKG}.shop.orders"], **extra)
    test = _test(
        "rel_stg_orders_customers",
        "relationships",
        f"model.{PKG}.stg_orders",
        "customer_id",
        {"column_name": "customer_id", "to": "source('shop', 'customers')", "field": "customer_id"},
        [f"source.{PKG}.shop.customers", f"model.{PKG}.stg_orders"],
    )
    return _manifest([stg_orders, test], sources)


def test_a_model_that_cannot_be_rendered_is_reported_with_the_reason() -> None:
    manifest = _orders_to_customers(
        "select cust as customer_id from {{ source('shop', 'orders') }}"
        " where region = '{{ var('region') }}'"
    )
    labels, unmapped = _labels(manifest)
    assert labels == set()
    assert "var('region')" in unmapped[f"test.{PKG}.rel_stg_orders_customers"]
    # the project's renderer (with its vars) can be passed in
    labels, unmapped = _labels(
        manifest,
        sql_for=lambda node: "select cust as customer_id from raw.orders where region = 'eu'",
    )
    assert labels == {"shop.orders(cust) -> shop.customers(customer_id)"} and not unmapped
    # or just the project's vars (dbt_project.yml), for the default renderer
    labels, unmapped = _labels(manifest, project_vars={"region": "eu"})
    assert labels == {"shop.orders(cust) -> shop.customers(customer_id)"} and not unmapped


def test_python_models_and_missing_sql_do_not_map() -> None:
    python = _orders_to_customers("def model(dbt, session): ...", language="python")
    assert "Python model" in _labels(python)[1][f"test.{PKG}.rel_stg_orders_customers"]

    def no_sql(node: Node) -> str | None:
        return None

    plain = _orders_to_customers("select cust as customer_id from {{ source('shop', 'orders') }}")
    assert "no SQL" in _labels(plain, sql_for=no_sql)[1][f"test.{PKG}.rel_stg_orders_customers"]


def test_source_column_keeps_its_production_spelling() -> None:
    manifest = _orders_to_customers(
        "select CUST as customer_id from {{ source('shop', 'orders') }}"
    )
    graph = build_graph(
        manifest,
        source_columns={"shop.orders": ["ID", "CUST"], "shop.customers": ["customer_id"]},
    )
    assert [e.label for e in graph.edges] == ["shop.orders(CUST) -> shop.customers(customer_id)"]
