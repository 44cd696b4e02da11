"""The light Jinja renderer: what dbt would compile, without dbt or a database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot

from dataops_dev.dbt.manifest import Manifest
from dataops_dev.dbt.render import RenderContext, Renderer, RenderError

MACROS = (
    (
        "macros/util.sql",
        "{% macro cents_to_dollars(col, scale=2) %}round({{ col }} / 100.0, {{ scale }})"
        "{% endmacro %}\n"
        "{% macro pick(x) %}{{ return(x ~ '_picked') }}{% endmacro %}\n"
        "{% macro default__thing(a) %}thing({{ a }}){% endmacro %}\n"
        "{% macro wrapped(c) %}{{ cents_to_dollars(c) }}{% endmacro %}\n",
    ),
)


def _renderer(adapter: str = "duckdb", manifest: Manifest | None = None) -> Renderer:
    context = RenderContext(
        project_name="p",
        vars={"start": "2020-01-01", "p": {"scoped": 7}},
        macro_files=MACROS,
        adapter=adapter,
        default_database="prod",
        default_schema="main",
    )
    return Renderer(context, manifest, extra_models=["stg_orders"])


def test_refs_config_vars_macros_and_is_incremental() -> None:
    rendered = _renderer().render(
        "{{ config(materialized='incremental', unique_key='id') }}\n"
        "select {{ cents_to_dollars('amount') }} as a, {{ wrapped('b') }} as b,\n"
        " {{ pick('z') }} as z, {{ adapter.dispatch('thing')('q') }} as t,\n"
        " '{{ var('start') }}' as s, {{ var('scoped') }} as k, {{ var('missing', 3) }} as m\n"
        "from {{ ref('stg_orders') }}\n"
        "{% if is_incremental() %} where x > (select max(x) from {{ this }}) {% endif %}",
        model_name="orders",
    )
    sql = " ".join(rendered.sql.split())
    assert 'from "prod"."main"."stg_orders"' in sql
    assert "round(amount / 100.0, 2) as a" in sql and "round(b / 100.0, 2) as b" in sql
    assert "z_picked as z" in sql and "thing(q) as t" in sql
    assert "'2020-01-01' as s, 7 as k, 3 as m" in sql
    assert "where" not in sql  # is_incremental() is false: a full build's SQL
    assert rendered.config == {"materialized": "incremental", "unique_key": "id"}
    assert rendered.depends_on == ("model.p.stg_orders",)


@pytest.mark.parametrize(
    ("adapter", "dialect", "needle"),
    [
        ("duckdb", "duckdb", "date_trunc('month', ordered_at)"),
        ("postgres", "postgres", "interval '1 day'"),
        ("snowflake", "snowflake", "dateadd(day, 3, ordered_at)"),
    ],
)
def test_cross_db_macros_render_parseable_sql_per_adapter(
    adapter: str, dialect: str, needle: str
) -> None:
    rendered = _renderer(adapter).render(
        "select {{ dbt.date_trunc('month', 'ordered_at') }} as m,"
        " {{ dbt.dateadd('day', 3, 'ordered_at') }} as d,"
        " cast(x as {{ dbt.type_string() }}) as s, {{ dbt.hash('x') }} as h,"
        " {{ dbt.concat(['a', 'b']) }} as c, {{ dbt.safe_cast('x', dbt.type_int()) }} as i,"
        " {{ dbt.current_timestamp() }} as now from t",
        model_name="m",
    )
    assert needle in rendered.sql
    sqlglot.parse_one(rendered.sql, read=dialect)


def test_relations_come_from_the_base_manifest(tmp_path: Path) -> None:
    manifest = Manifest(
        {
            "metadata": {"project_name": "p", "adapter_type": "duckdb"},
            "nodes": {
                "model.p.stg_orders": {
                    "unique_id": "model.p.stg_orders",
                    "resource_type": "model",
                    "name": "stg_orders",
                    "package_name": "p",
                    "database": "prod",
                    "schema": "staging",
                    "alias": "orders_v2",
                    "relation_name": '"prod"."staging"."orders_v2"',
                }
            },
            "sources": {
                "source.p.shop.orders": {
                    "unique_id": "source.p.shop.orders",
                    "resource_type": "source",
                    "name": "orders",
                    "source_name": "shop",
                    "package_name": "p",
                    "database": "prod",
                    "schema": "raw",
                    "identifier": "orders",
                    "relation_name": '"prod"."raw"."orders"',
                }
            },
        }
    )
    rendered = _renderer(manifest=manifest).render(
        "select * from {{ ref('stg_orders') }} join {{ source('shop', 'orders') }} using (id)"
        " -- {{ ref('stg_orders').identifier }}",
        model_name="x",
    )
    assert '"prod"."staging"."orders_v2"' in rendered.sql
    assert '"prod"."raw"."orders"' in rendered.sql
    assert "-- orders_v2" in rendered.sql
    assert rendered.depends_on == ("model.p.stg_orders", "source.p.shop.orders")
    json.dumps(rendered.config)


@pytest.mark.parametrize(
    "code",
    [
        "select * from {{ ref('nope') }}",
        "select * from {{ source('shop', 'nope') }}",
        "{% set r = run_query('select 1') %}select 1",
        "select {{ dbt_utils.star(ref('stg_orders')) }} from t",
        "select '{{ var('undefined_var') }}'",
        "select {{ exceptions.raise_compiler_error('boom') }}",
    ],
)
def test_what_needs_dbt_or_a_database_is_a_render_error(code: str) -> None:
    with pytest.raises(RenderError):
        _renderer().render(code, model_name="x")


@pytest.mark.parametrize(
    ("code", "author_error"),
    [
        ("select * from {{ ref('nope') }}", True),
        ("select * from {{ source('shop', 'nope') }}", True),
        ("select {{ 1 + }}", True),
        ("{% set r = run_query('select 1') %}select 1", False),
        ("select {{ dbt_utils.star(ref('stg_orders')) }} from t", False),
        ("select '{{ var('undefined_var') }}'", False),
    ],
)
def test_render_errors_say_whether_dbt_would_reject_the_model_too(
    code: str, author_error: bool
) -> None:
    with pytest.raises(RenderError) as caught:
        _renderer().render(code, model_name="x")
    assert caught.value.author_error is author_error


def test_var_with_a_none_default_is_none() -> None:
    rendered = _renderer().render(
        "select {{ var('missing', none) is none }} as a, '{{ var('missing', 'd') }}' as b",
        model_name="x",
    )
    assert rendered.sql == "select True as a, 'd' as b"


@pytest.mark.parametrize(
    ("adapter", "expected"),
    [
        ("duckdb", '"prod"."ma""in"."stg_orders"'),
        ("bigquery", '`prod`.`ma"in`.`stg_orders`'),
        ("databricks", '`prod`.`ma"in`.`stg_orders`'),
    ],
)
def test_new_relations_and_yaml_sources_quote_as_the_adapter(adapter: str, expected: str) -> None:
    from dataops_dev.hooks_sql import LenientRenderer

    context = RenderContext(
        project_name="p", adapter=adapter, default_database="prod", default_schema='ma"in'
    )
    renderer = LenientRenderer(
        context,
        None,
        extra_models=["stg_orders"],
        yaml_sources={("shop", "orders"): ("prod", 'ma"in', "stg_orders")},
    )
    rendered = renderer.render(
        "select * from {{ ref('stg_orders') }} join {{ source('shop', 'orders') }} using (id)",
        model_name="x",
    )
    assert rendered.sql == f"select * from {expected} join {expected} using (id)"


def test_backticks_in_names_are_escaped_for_backtick_adapters() -> None:
    context = RenderContext(project_name="p", adapter="databricks", default_schema="s")
    rendered = Renderer(context, None, extra_models=["we`ird"]).render(
        "select * from {{ ref('we`ird') }} -- {{ adapter.quote('a`b') }}", model_name="x"
    )
    assert rendered.sql == "select * from `s`.`we``ird` -- `a``b`"
    sqlglot.parse_one(rendered.sql, read="databricks")


DBT_BLOCKS = (
    (
        "macros/generic_tests.sql",
        "{% test is_positive(model, column_name) %}\n"
        "select * from {{ model }} where {{ column_name }} < 0\n{% endtest %}\n",
    ),
    (
        "macros/materializations.sql",
        "{% materialization audit_view, adapter='duckdb' %}\n"
        "{% call statement('main') %}create view {{ this }} as {{ sql }}{% endcall %}\n"
        "{{ return({'relations': [this]}) }}\n{% endmaterialization %}\n"
        "{% materialization noop, default %}{% endmaterialization %}\n",
    ),
    ("macros/docs.md.sql", "{% docs orders %}One row per **order**.{% enddocs %}\n"),
    (
        "macros/money.sql",
        "{% macro money(c) %}{{ return(adapter.dispatch('money')(c)) }}{% endmacro %}\n"
        "{% macro default__money(c) %}({{ c }} / 100){% endmacro %}\n"
        "{% macro duckdb__money(c) %}round({{ c }} / 100.0, 2){% endmacro %}\n"
        "{% macro audited() %}{% call statement('audit', fetch_result=True) %}select 1"
        "{% endcall %}{% set r = load_result('audit') %}{{ return('audited') }}{% endmacro %}\n",
    ),
)


def test_dbt_block_tags_load_and_dispatch_picks_the_adapter() -> None:
    context = RenderContext(project_name="p", macro_files=DBT_BLOCKS, adapter="duckdb")
    renderer = Renderer(context, None, extra_models=["orders"])
    assert renderer.macro_errors == {}
    sql = renderer.render(
        "select {{ money('amount') }} as amount, '{{ audited() }}' as a from {{ ref('orders') }}",
        model_name="m",
    ).sql
    assert sql == "select round(amount / 100.0, 2) as amount, 'audited' as a from \"orders\""
    snapshot = renderer.render(
        "{% snapshot orders_snap %}{{ config(unique_key='id', strategy='check') }}"
        "select * from {{ ref('orders') }}{% endsnapshot %}",
        model_name="orders_snap",
    )
    assert snapshot.sql.strip() == 'select * from "orders"'
    assert snapshot.config["unique_key"] == "id"


def test_a_broken_macro_file_degrades_only_the_models_that_need_it() -> None:
    files = (*DBT_BLOCKS, ("macros/broken.sql", "{% macro broken( %}oops{% endmacro %}"))
    renderer = Renderer(RenderContext(project_name="p", macro_files=files), None)
    assert list(renderer.macro_errors) == ["macros/broken.sql"]
    assert renderer.render("select {{ money('x') }} as y", model_name="ok").sql
    with pytest.raises(RenderError, match=r"broken.*macros/broken.sql"):
        renderer.render("select {{ broken() }} as y", model_name="needs_it")
