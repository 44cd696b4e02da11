"""`diff-tables` shows no raw value from production: example values (and min/max/top values of
--profile) are withheld unless every database is the sample or an environment, or
--show-values is given. Real DuckDB files, the CLI in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from dataops_dev.config import load_config
from dataops_dev.environments import Environments
from tests.conftest import run_cli
from tests.real_projects import make_project_repo

EMAILS = ("GEORGE.NELSON@MAIL.TEST", "ADA.LOVELACE@MAIL.TEST")
CHANGED = ("george.nelson@mail.test", "ada.lovelace@mail.test")


def _tables(path: Path) -> None:
    """Two versions of a customers table whose e-mails differ (case) and one row is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists shop")
        con.execute("create or replace table shop.before (id int, email varchar, score int)")
        con.execute("create or replace table shop.after (id int, email varchar, score int)")
        con.execute("insert into shop.before values (1, ?, 10), (2, ?, 20)", list(EMAILS))
        con.execute(
            "insert into shop.after values (1, ?, 10), (2, ?, 21), (3, 'NEW.PERSON@MAIL.TEST', 5)",
            list(CHANGED),
        )


def _leaks(text: str) -> list[str]:
    values = (*EMAILS, *CHANGED, "NEW.PERSON@MAIL.TEST")
    return [v for v in values if v.lower() in text.lower()]


def _diff(cwd: Path, database: Path, *extra: str) -> tuple[str, str]:
    result = run_cli(
        "diff-tables",
        "shop.before",
        "shop.after",
        "--key",
        "id",
        "--database",
        str(database),
        *extra,
        cwd=cwd,
        env={"NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


@pytest.mark.parametrize("output", [(), ("--json",), ("--format", "markdown")])
def test_an_unknown_database_is_treated_as_production(
    tmp_path: Path, output: tuple[str, ...]
) -> None:
    database = tmp_path / "warehouse_export.duckdb"
    _tables(database)

    stdout, stderr = _diff(tmp_path, database, "--profile", *output)

    assert _leaks(stdout + stderr) == []
    assert "withheld" in stderr and "--show-values" in stderr
    if output == ("--json",):
        data = json.loads(stdout)
        assert data["values_withheld"]
        assert data["rows"]["added"] == 1  # the diff itself is still there
        email = next(c for c in data["columns"] if c["name"] == "email")
        assert email["changed"] == 2 and email["examples"] == []


def test_show_values_shows_them(tmp_path: Path) -> None:
    database = tmp_path / "warehouse_export.duckdb"
    _tables(database)
    stdout, stderr = _diff(tmp_path, database, "--show-values")
    assert "'GEORGE.NELSON@MAIL.TEST' -> 'george.nelson@mail.test'" in stdout
    assert "withheld" not in stderr


@pytest.mark.slow
def test_production_is_masked_and_environments_are_not(tmp_path: Path) -> None:
    repo = make_project_repo("ss_tiny", tmp_path)
    production = repo.project / "prod.duckdb"
    _tables(production)
    stdout, stderr = _diff(repo.project, production, "--json", "--profile")
    assert _leaks(stdout + stderr) == []
    assert "production target" in json.loads(stdout)["values_withheld"]

    # An environment's file (masked data built by dataops) shows its examples.
    loaded = load_config(repo.project)
    environment = Environments(loaded).database_path("feature_0a1b2c3d")
    _tables(environment)
    stdout, stderr = _diff(repo.project, environment)
    assert "'GEORGE.NELSON@MAIL.TEST' -> 'george.nelson@mail.test'" in stdout
    assert "withheld" not in stderr

    # Attaching production to an environment's file withholds them again.
    stdout, stderr = _diff(repo.project, environment, "--attach", f"prod={production}")
    assert _leaks(stdout + stderr) == []


@pytest.mark.slow
@pytest.mark.spark
def test_spark_connect_address_diffs_and_withholds_values_outside_the_sandbox(
    tmp_path: Path, spark_remote: str, spark_schema: str
) -> None:
    """`--database sc://…`: the diff runs on Spark; a schema outside the sandbox prefix is
    treated as production (values withheld), and --show-values shows them."""
    from dataops_dev.engines.spark import SparkEngine

    with SparkEngine(spark_remote) as engine:
        for table in ("before", "after"):
            engine.execute(f"CREATE TABLE `{spark_schema}`.`{table}` (id INT, email STRING)")
        engine.execute(f"INSERT INTO `{spark_schema}`.`before` VALUES (1, ?), (2, ?)", EMAILS)
        engine.execute(
            f"INSERT INTO `{spark_schema}`.`after` VALUES (1, ?), (2, ?), (3, 'x@mail.test')",
            CHANGED,
        )
    names = (f"{spark_schema}.before", f"{spark_schema}.after")
    common = ("--key", "id", "--database", spark_remote, "--json")
    withheld = run_cli("diff-tables", *names, *common, cwd=tmp_path, env={"NO_COLOR": "1"})
    assert withheld.returncode == 0, withheld.stderr
    data = json.loads(withheld.stdout)
    assert (data["rows"]["added"], data["rows"]["changed"]) == (1, 2)
    assert "sandbox prefix" in data["values_withheld"]
    assert _leaks(withheld.stdout + withheld.stderr) == []

    shown = run_cli("diff-tables", *names, *common, "--show-values", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    email = next(c for c in json.loads(shown.stdout)["columns"] if c["name"] == "email")
    assert {e["after"] for e in email["examples"]} == set(CHANGED)
