"""`LEFT OUTER JOIN` is `LEFT JOIN`: sqlglot keeps the OUTER keyword as the join's kind, and
classification must treat both spellings alike (a changed ON condition changes the joined
columns' values, not the row set)."""

from __future__ import annotations

import pytest

from dataops_dev.impact import ChangeKind, classify_sql
from dataops_dev.lineage import RelationIndex

RELATIONS = RelationIndex(
    by_schema_name={("raw", "orders"): "orders", ("raw", "customers"): "customers"},
    by_name={"orders": "orders", "customers": "customers"},
)
SCHEMAS: dict[str, tuple[str, ...] | None] = {
    "orders": ("id", "customer_id", "amount"),
    "customers": ("id", "name", "region"),
}
BASE = "select o.id, c.name from raw.orders o {join} raw.customers c on c.id = o.customer_id"
HEAD = BASE + " and c.region = 'eu'"


def _classify(base: str, head: str, dialect: str):  # type: ignore[no-untyped-def]
    return classify_sql(base, head, dialect, relations=RELATIONS, base_schemas=SCHEMAS)


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "snowflake"])
@pytest.mark.parametrize("join", ["left join", "left outer join", "LEFT OUTER JOIN"])
def test_left_outer_join_condition_change_is_partial(join: str, dialect: str) -> None:
    change = _classify(BASE.format(join=join), HEAD.format(join=join), dialect)
    assert change.change is ChangeKind.PARTIAL
    assert change.changed_columns == ("name",)
    assert not change.rows_affected


@pytest.mark.parametrize("join", ["full join", "full outer join"])
def test_full_outer_join_condition_change_is_breaking(join: str) -> None:
    change = _classify(BASE.format(join=join), HEAD.format(join=join), "duckdb")
    assert change.change is ChangeKind.BREAKING
    assert change.rows_affected


def test_spelling_out_outer_is_no_change() -> None:
    change = _classify(BASE.format(join="left join"), BASE.format(join="left outer join"), "duckdb")
    assert change.change is None
