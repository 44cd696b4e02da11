"""Profiles, key discovery, config -> options, and the `diff-tables` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dataops_dev.cli import cli
from dataops_dev.config import Config, _build
from dataops_dev.dbt.manifest import Manifest
from dataops_dev.diffing import (
    discover_key,
    options_for_model,
    profile_diff,
    profile_relation,
    suggest_keys,
)
from dataops_dev.engines import DuckDBEngine, Relation

from .conftest import load


def test_profile_one_scan_stats_and_distributions(engine: Any) -> None:
    t = "TEXT" if engine.dialect == "postgres" else "VARCHAR"
    rows = [
        f"({i}, {i % 4}, 'v{i % 3}', DATE '2024-01-01' + {i}, {'NULL' if i % 5 == 0 else i})"
        for i in range(1, 21)
    ]
    load(engine, "a", f"id INTEGER, m INTEGER, t {t}, d DATE, n INTEGER", rows)
    profile = profile_relation(engine, Relation("s", "a"))
    assert profile.rows == 20
    n = profile.column("n")
    assert (n.nulls, n.distinct, n.min, n.max) == (4, 16, 1, 19)
    assert n.mean == pytest.approx(sum(i for i in range(1, 21) if i % 5) / 16)
    assert [q for q, _ in n.quantiles] == [0.25, 0.5, 0.75]
    assert sum(b.count for b in n.histogram) == 16 and len(n.histogram) == 10
    m = profile.column("m")
    assert [(v.value, v.count) for v in m.top_values][:1] in ([("0", 5)], [("1", 5)])
    assert sum(v.count for v in m.top_values) == 20
    text = profile.column("t")
    assert text.family == "text" and text.distinct == 3 and text.min == "v0"
    d = profile.column("d")
    assert d.family == "temporal" and sum(b.count for b in d.histogram) == 20


def test_profile_timestamps(engine: Any) -> None:
    rows = [f"({i}, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '{i} hours')" for i in range(10)]
    load(engine, "a", "id INTEGER, ts TIMESTAMP", rows)
    ts = profile_relation(engine, Relation("s", "a")).column("ts")
    assert ts.family == "temporal"
    assert str(ts.min).startswith("2024-01-01 00:00") and str(ts.max).startswith("2024-01-01 09:00")
    assert sum(b.count for b in ts.histogram) == 10 and len(ts.quantiles) == 3


def test_profile_diff_pairs_columns(engine: Any) -> None:
    load(engine, "a", "id INTEGER, v INTEGER, gone INTEGER", ["(1, 1, 1)", "(2, NULL, 1)"])
    load(engine, "b", "id INTEGER, v INTEGER", ["(1, 1)", "(2, 2)", "(3, 3)"])
    diff = profile_diff(engine, Relation("s", "a"), Relation("s", "b"))
    v = next(c for c in diff.columns if c.name == "v")
    assert v.null_delta == -1 and v.distinct_delta == 2
    gone = next(c for c in diff.columns if c.name == "gone")
    assert gone.right is None and gone.changed_stats
    json.dumps(diff.to_dict())


def test_suggest_keys(tmp_path: Path) -> None:
    with DuckDBEngine(tmp_path / "k.duckdb") as engine:
        engine.execute("CREATE SCHEMA s")
        load(
            engine,
            "a",
            "id INTEGER, code VARCHAR, f DOUBLE, dup INTEGER",
            ["(1, 'a', 1.0, 1)", "(2, 'b', 2.0, 1)"],
        )
        load(
            engine,
            "b",
            "id INTEGER, code VARCHAR, f DOUBLE, dup INTEGER",
            ["(1, 'a', 1.0, 1)", "(2, NULL, 2.0, 2)"],
        )
        assert suggest_keys(engine, Relation("s", "a"), Relation("s", "b")) == (("id",),)


def _manifest(model: dict[str, Any], tests: list[dict[str, Any]] | None = None) -> Manifest:
    nodes = {
        "model.p.m": {
            "unique_id": "model.p.m",
            "resource_type": "model",
            "name": "m",
            "package_name": "p",
            **model,
        }
    }
    for test in tests or []:
        nodes[test["unique_id"]] = {
            "resource_type": "test",
            "name": test["unique_id"],
            "package_name": "p",
            "attached_node": "model.p.m",
            **test,
        }
    return Manifest({"metadata": {}, "nodes": nodes, "sources": {}, "child_map": {}})


def _test(uid: str, name: str, column: str | None = None, **kwargs: Any) -> dict[str, Any]:
    return {
        "unique_id": uid,
        "column_name": column,
        "test_metadata": {"name": name, "kwargs": kwargs},
    }


def test_discover_key_order() -> None:
    both = [_test("test.p.u", "unique", "id"), _test("test.p.n", "not_null", "id")]
    manifest = _manifest({"columns": {"id": {"name": "id"}}}, both)
    assert discover_key(manifest, "model.p.m") == ("id",)
    assert discover_key(manifest, "model.p.m", {"m": ["a", "b"]}) == ("a", "b")
    assert discover_key(manifest, "model.p.m", {"model.p.m": "x"}) == ("x",)
    constraint = _manifest(
        {"constraints": [{"type": "primary_key", "columns": ["k1", "k2"]}]}, both
    )
    assert discover_key(constraint, "model.p.m") == ("k1", "k2")
    combo = _manifest(
        {}, [_test("test.p.c", "unique_combination_of_columns", combination_of_columns=["a", "b"])]
    )
    assert discover_key(combo, "model.p.m") == ("a", "b")
    assert discover_key(_manifest({}), "model.p.m") is None
    assert discover_key(None, "model.p.m") is None


def test_options_from_config() -> None:
    config: Config = _build(
        Config,
        {
            "diff": {
                "examples": 2,
                "tolerance": {"orders.amount": {"abs": 0.01}, "*.amount": {"rel": 1}},
                "timestamp_precision": {"*.updated_at": "second"},
            }
        },
        "",
        "test",
    )
    options = options_for_model(config.diff, "orders")
    assert options.examples == 2
    assert options.tolerance["amount"].abs == 0.01 and options.tolerance["amount"].rel == 0.0
    assert options.timestamp_precision == {"updated_at": "second"}
    assert options_for_model(config.diff, "other").tolerance["amount"].rel == 1.0


def _cli_tables(engine: Any) -> None:
    load(engine, "a", "id INTEGER, k INTEGER, v INTEGER", ["(1, 1, 1)", "(2, 1, 2)", "(3, 1, 3)"])
    load(engine, "b", "id INTEGER, k INTEGER, v INTEGER", ["(1, 1, 1)", "(2, 1, 20)", "(4, 1, 4)"])


def _check_cli_json(data: dict[str, Any]) -> None:
    assert list(data)[:9] == [
        "left",
        "right",
        "mode",
        "key",
        "schema",
        "rows",
        "keys",
        "columns",
        "examples",
    ]
    assert data["rows"] == {
        "left": 3,
        "right": 3,
        "added": 1,
        "removed": 1,
        "changed": 1,
        "unchanged": 1,
    }
    assert {
        k: data["keys"][k] for k in ("null_left", "null_right", "duplicate_left", "duplicate_right")
    } == dict.fromkeys(("null_left", "null_right", "duplicate_left", "duplicate_right"), 0)
    assert set(data["schema"]) >= {"added", "removed", "type_changed"}
    v = next(c for c in data["columns"] if c["name"] == "v")
    assert list(v)[:4] == ["name", "changed", "match_pct", "examples"]
    assert v["changed"] == 1 and v["match_pct"] == 50.0
    assert v["examples"] == [{"key": [2], "before": 2, "after": 20}]


def test_cli_duckdb_file(tmp_path: Path) -> None:
    path = tmp_path / "cli.duckdb"
    with DuckDBEngine(path) as engine:
        engine.execute("CREATE SCHEMA s")
        _cli_tables(engine)
    runner = CliRunner()
    # A file that is neither the sample nor an environment: examples only with --show-values.
    args = ["diff-tables", "s.a", "s.b", "--key", "id", "--database", str(path), "--show-values"]
    args += ["--format", "json"]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    _check_cli_json(json.loads(result.stdout))
    keyless = runner.invoke(cli, [*args[:3], "--database", str(path), "--json", "--profile"])
    data = json.loads(keyless.stdout)
    assert data["rows"]["only_left"] == 2 and data["rows"]["only_right"] == 2
    assert data["candidate_keys"] == [["id"], ["v"]] and "profile" in data
    text = runner.invoke(cli, args[:-2])
    assert "changed" in text.stdout


@pytest.mark.postgres
def test_cli_postgres_dsn(pg_database: str) -> None:
    from dataops_dev.engines.postgres import PostgresEngine

    from .conftest import pg_conninfo

    conninfo = pg_conninfo(pg_database)
    with PostgresEngine(conninfo) as engine:
        engine.execute("CREATE SCHEMA s")
        _cli_tables(engine)
    result = CliRunner().invoke(
        cli,
        [
            "diff-tables",
            "s.a",
            "s.b",
            "--key",
            "id",
            "--database",
            conninfo,
            "--json",
            "--show-values",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    _check_cli_json(json.loads(result.stdout))


def test_cli_missing_database_is_a_usage_error(tmp_path: Path) -> None:
    from dataops_dev.cli import main

    with pytest.raises(SystemExit) as info:
        main(["diff-tables", "s.a", "s.b", "--database", str(tmp_path / "nope.duckdb")])
    assert info.value.code == 2


def test_cli_two_duckdb_files_through_attach(tmp_path: Path) -> None:
    """Environments are one DuckDB file each: base and branch are compared by attaching."""
    for name, rows in (("base", ["(1, 1)", "(2, 2)"]), ("head", ["(1, 1)", "(2, 3)", "(3, 3)"])):
        with DuckDBEngine(tmp_path / f"{name}.duckdb") as engine:
            load_main(engine, rows)
    args = ["diff-tables", "base.main.t", "head.main.t", "--key", "id", "--json"]
    args += [
        "--database",
        str(tmp_path / "head.duckdb"),
        "--attach",
        f"base={tmp_path / 'base.duckdb'}",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert (rows["added"], rows["changed"], rows["unchanged"]) == (1, 1, 1)


def load_main(engine: Any, rows: list[str]) -> None:
    engine.execute("CREATE TABLE main.t (id INTEGER, v INTEGER)")
    engine.execute("INSERT INTO main.t VALUES " + ", ".join(rows))
