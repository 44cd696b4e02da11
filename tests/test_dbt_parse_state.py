"""dbt.parse_state: the stand-in database name environments parse under, and its replacement."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from dataops_dev.dbt.parse_state import (
    PARSE_DATABASE,
    PARTIAL_PARSE_FILE,
    rename_database,
    seed_partial_parse,
)


def _node(database: str, schema: str, relation_name: str | None) -> SimpleNamespace:
    return SimpleNamespace(database=database, schema=schema, relation_name=relation_name)


def test_the_stand_in_name_becomes_the_environments_quoted_or_not() -> None:
    model = _node(PARSE_DATABASE, "main", f'"{PARSE_DATABASE}"."main"."orders"')
    unquoted = _node(PARSE_DATABASE, "main", f"{PARSE_DATABASE}.main.orders")
    # A custom schema macro that used the database's name; a source with its own database.
    custom = _node(
        PARSE_DATABASE,
        f"{PARSE_DATABASE}_marts",
        f'"{PARSE_DATABASE}"."{PARSE_DATABASE}_marts"."revenue"',
    )
    own = _node("warehouse", "raw", '"warehouse"."raw"."customers"')
    # A relation whose name merely contains the stand-in's letters is not it.
    lookalike = _node(PARSE_DATABASE, "main", f'"{PARSE_DATABASE}"."main"."x{PARSE_DATABASE}"')
    relation = SimpleNamespace(database=PARSE_DATABASE, schema="main", relation_name=None)
    manifest = SimpleNamespace(
        nodes={
            "model.a.orders": model,
            "model.a.u": unquoted,
            "model.a.c": custom,
            "model.a.l": lookalike,
        },
        sources={"source.a.raw.customers": own},
        semantic_models={"semantic_model.a.s": SimpleNamespace(node_relation=relation)},
    )

    rename_database(manifest, "feature_x_1a2b3c4d")

    assert (model.database, model.relation_name) == (
        "feature_x_1a2b3c4d",
        '"feature_x_1a2b3c4d"."main"."orders"',
    )
    assert unquoted.relation_name == "feature_x_1a2b3c4d.main.orders"
    assert custom.schema == "feature_x_1a2b3c4d_marts"
    assert custom.relation_name == '"feature_x_1a2b3c4d"."feature_x_1a2b3c4d_marts"."revenue"'
    assert (own.database, own.relation_name) == ("warehouse", '"warehouse"."raw"."customers"')
    assert lookalike.relation_name == f'"feature_x_1a2b3c4d"."main"."x{PARSE_DATABASE}"'
    assert relation.database == "feature_x_1a2b3c4d"


def test_only_a_plain_name_replaces_the_stand_in() -> None:
    manifest = SimpleNamespace(nodes={}, sources={})
    with pytest.raises(ValueError):
        rename_database(manifest, 'x"; drop table y; --')


def test_a_parse_state_is_copied_only_into_a_target_without_one(tmp_path: Path) -> None:
    empty, baseline, other = tmp_path / "empty", tmp_path / "baseline", tmp_path / "other"
    for directory, content in ((baseline, b"baseline"), (other, b"other")):
        directory.mkdir()
        (directory / PARTIAL_PARSE_FILE).write_bytes(content)
    target = tmp_path / "branch" / "target.building"

    assert seed_partial_parse(target, [empty, baseline, other]) == baseline / PARTIAL_PARSE_FILE
    assert (target / PARTIAL_PARSE_FILE).read_bytes() == b"baseline"
    # Its own state (the last build of this environment) is never replaced.
    assert seed_partial_parse(target, [other]) is None
    assert (target / PARTIAL_PARSE_FILE).read_bytes() == b"baseline"
    assert seed_partial_parse(tmp_path / "nothing", [empty]) is None
    assert not (tmp_path / "nothing").exists()
