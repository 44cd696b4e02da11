"""A Spark deploy publishes a whole version or nothing: production's models become views over a
versioned build schema, published by one pointer-table row. A deploy killed anywhere leaves
production, once the next command has recovered, in the old or the new state, checked by reading
every production relation's rows; a deploy reviewed before another one was published is refused.

Real Spark (the shared local Spark Connect server), real dbt-spark (`method: session`), real
subprocess kills at named stages (the driver of test_deploy_atomic.py). Production is the tiny
project's: `raw.items` -> `a_parent` (view) -> `z_child` (table), built by dbt before the first
deploy, so the first deploy also turns the table `z_child` into a view.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dataops_dev.config import LoadedConfig, load_config
from dataops_dev.dbt.project import load_profile_target
from dataops_dev.demo import build_production
from dataops_dev.deploy import _SparkProduction, deploy, plan_deploy, with_production_rows
from dataops_dev.deploy_state import JOURNAL, file_lock
from dataops_dev.engines.spark import SparkEngine
from dataops_dev.errors import LockedError, UsageError
from dataops_dev.report.model import ModelStatus, Report
from tests.conftest import REPO_ROOT, git, run_cli
from tests.test_deploy_atomic import DRIVER, start_deploy, wait_for
from tests.test_deploy_safety import CHILD, PARENT, _write, commit_change, reviewed

pytestmark = [pytest.mark.slow, pytest.mark.spark]

PLUS_ONE = "select id, amount + 1 as amount, 'v2' as version from {{ source('raw', 'items') }}\n"
OLD = {
    "a_parent": [(i, 10) for i in range(6)],
    "z_child": [(i, 20) for i in range(6)],
}
NEW = {
    "a_parent": [(i, 11, "v2") for i in range(6)],
    "z_child": [(i, 22) for i in range(6)],
}


@dataclasses.dataclass(frozen=True)
class Prod:
    project: Path
    loaded: LoadedConfig
    schema: str
    remote: str


def _spark_project(project: Path, schema: str, remote: str) -> Path:
    output = (
        "      type: spark\n      method: session\n      host: localhost\n"
        f"      schema: {schema}\n      threads: 1\n"
        f'      server_side_parameters:\n        spark.remote: "{remote}"\n'
    )
    _write(
        project,
        {
            "dbt_project.yml": "name: tiny\nversion: '1.0.0'\nconfig-version: 2\nprofile: tiny\n"
            "models:\n  tiny:\n    +materialized: view\n",
            "profiles.yml": "tiny:\n  target: prod\n  outputs:\n    prod:\n" + output,
            "dataops_dev.yml": "version: 1\nproduction:\n  target: prod\n",
            ".gitignore": ".dataops/\ntarget/\nlogs/\n",
            "models/sources.yml": "version: 2\nsources:\n  - name: raw\n"
            f"    schema: {schema}_raw\n    tables:\n      - name: items\n",
            "models/a_parent.sql": PARENT,
            "models/z_child.sql": "{{ config(materialized='table') }}\n" + CHILD,
        },
    )
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production code")
    return project


@pytest.fixture
def prod(tmp_path: Path, spark_remote: str) -> Iterator[Prod]:
    """tiny's production on Spark, built by dbt, in schemas of its own (dropped afterwards)."""
    schema = f"sdp_{uuid.uuid4().hex[:8]}"
    engine = SparkEngine(spark_remote)
    try:
        engine.execute(f"CREATE SCHEMA `{schema}_raw`")
        engine.execute(
            f"CREATE TABLE `{schema}_raw`.items USING parquet AS "
            "SELECT CAST(id AS INT) AS id, 10 AS amount FROM range(6)"
        )
        project = _spark_project(tmp_path / "tiny", schema, spark_remote)
        loaded = load_config(project)
        build_production(loaded)
        yield Prod(project, loaded, schema, spark_remote)
    finally:
        for name in _schemas(engine, schema):
            engine.execute(f"DROP SCHEMA IF EXISTS `{name}` CASCADE")
        engine.close()


def _schemas(engine: SparkEngine, schema: str) -> list[str]:
    return sorted(
        str(r[0]) for r in engine.fetchall("SHOW SCHEMAS") if str(r[0]).startswith(schema)
    )


def _production(prod: Prod) -> dict[str, Any]:
    """Every production relation's rows (ordered), or None where the relation is missing; and
    the schemas that exist beside production."""
    with SparkEngine(prod.remote) as engine:
        rows: dict[str, Any] = {}
        for name in ("a_parent", "z_child"):
            relations = {r.name for r in engine.list_relations(prod.schema)}
            rows[name] = (
                sorted(engine.fetchall(f"SELECT * FROM `{prod.schema}`.`{name}`"))
                if name in relations
                else None
            )
        views = {str(r[1]) for r in engine.fetchall(f"SHOW VIEWS IN `{prod.schema}`")}
        rows["views"] = sorted(views)
        rows["schemas"] = _schemas(engine, prod.schema)
    return rows


def _versions(state: dict[str, Any], prod: Prod) -> list[str]:
    return [s for s in state["schemas"] if s.startswith(f"{prod.schema}__v")]


def _report(prod: Prod, generated_at: str | None = None) -> Report:
    report = reviewed(
        prod.project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)
    )
    if generated_at is not None:
        report = dataclasses.replace(report, generated_at=generated_at)
    return report


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _is_old(state: dict[str, Any]) -> bool:
    return state["a_parent"] == OLD["a_parent"] and state["z_child"] == OLD["z_child"]


def _is_new(state: dict[str, Any]) -> bool:
    return state["a_parent"] == NEW["a_parent"] and state["z_child"] == NEW["z_child"]


# Before the pointer row: the old state. From it on: the new state, once recovered.
KILL_POINTS = [
    ("advance:deploy-build", "SIGKILL", "old"),
    # Journaled, the version built whole, its pointer row not written: recovery drops it.
    ("start:deploy-pointer", "SIGKILL", "old"),
    ("finish:deploy-pointer", "SIGKILL", "new"),
    # The first step of the views: production's table z_child dropped, its view not yet made.
    ("advance:deploy-views", "SIGKILL", "new"),
    ("finish:deploy-swap", "SIGKILL", "new"),
]


@pytest.mark.parametrize(("event", "sig", "expected"), KILL_POINTS)
def test_a_killed_spark_deploy_leaves_production_old_or_new_after_recovery(
    prod: Prod, tmp_path: Path, event: str, sig: str, expected: str
) -> None:
    assert _is_old(_production(prod))
    commit_change(prod.project, {"models/a_parent.sql": PLUS_ONE})
    process = start_deploy(prod.project, _report(prod), event, sig, tmp_path / "kill")
    _, err = process.communicate(timeout=600)
    assert process.returncode == -getattr(signal, sig), f"not killed at {event}: {err}"
    if event == "advance:deploy-views":
        # What a reader sees mid-migration: the one relation being turned into a view is gone.
        assert _production(prod)["z_child"] is None

    listed = run_cli("env", "list", "--json", cwd=prod.project)
    assert listed.returncode == 0, listed.stderr

    state = _production(prod)
    journal = prod.loaded.state_dir / "deploy" / JOURNAL
    assert not journal.exists(), "recovery settles the journal"
    manifest = (prod.loaded.state_dir / "production" / "manifest.json").read_text()
    records = prod.loaded.state_dir / "deployments"
    if expected == "new":
        assert _is_new(state), state
        assert state["views"] == ["a_parent", "z_child"]
        assert len(_versions(state, prod)) == 1, "one version, and only one, is production's"
        assert "'v2'" in manifest
        (record,) = records.iterdir()
        assert json.loads(record.read_text())["commit"] == git(prod.project, "rev-parse", "HEAD")
        return
    assert _is_old(state), state
    assert "'v2'" not in manifest
    assert not records.exists()
    if event == "start:deploy-pointer":
        assert _versions(state, prod) == [], "recovery drops the unpublished version"
        with SparkEngine(prod.remote) as engine:
            log = engine.fetchall(f"SELECT version, state FROM `{prod.schema}__dataops`.deploys")
        assert log == [(1, "aborted")], "and marks it so that its pointer row never counts"
        return
    # A killed build's version is never published; the next deploy publishes its own, whole,
    # and drops the dead one.
    assert len(_versions(state, prod)) == 1
    deploy(prod.loaded, _report(prod))
    state = _production(prod)
    assert _is_new(state), state
    assert len(_versions(state, prod)) == 1


def test_a_second_spark_deploy_replaces_the_version_and_a_stale_review_is_refused(
    prod: Prod,
) -> None:
    commit_change(prod.project, {"models/a_parent.sql": PLUS_ONE})
    reviewed_before = _now()
    # One deploy at a time: another holding production's lock is named, nothing is built.
    production = _SparkProduction(prod.loaded, load_profile_target(prod.loaded))
    with (
        file_lock(production.lock_file(), "another deploy (pid 4242)"),
        pytest.raises(LockedError, match=r"another deploy \(pid 4242\)"),
    ):
        deploy(prod.loaded, _report(prod, reviewed_before))
    assert _production(prod)["schemas"] == [prod.schema, f"{prod.schema}_raw"]

    deploy(prod.loaded, _report(prod, reviewed_before))
    first = _production(prod)
    assert _is_new(first)
    # The dry run reads production's rows through its views.
    plan = with_production_rows(prod.loaded, plan_deploy(prod.loaded, _report(prod, _now())))
    assert {m.name: m.production_rows for m in plan.models} == {"a_parent": 6, "z_child": 6}
    (first_version,) = _versions(first, prod)
    # Production's manifest names production's relations (the next deploy defers to them).
    manifest = json.loads((prod.loaded.state_dir / "production" / "manifest.json").read_text())
    parent = manifest["nodes"]["model.tiny.a_parent"]
    assert (parent["schema"], parent["relation_name"]) == (prod.schema, f"{prod.schema}.a_parent")
    assert f"{prod.schema}__v1_" in first_version

    # Someone else's deploy published version 1 after this review: it reviewed another
    # production, so it is refused before anything is built.
    commit_change(
        prod.project, {"models/a_parent.sql": PLUS_ONE.replace("amount + 1", "amount + 2")}
    )
    with pytest.raises(UsageError, match="moved to version 1"):
        deploy(prod.loaded, _report(prod, "2024-01-01T00:00:00+00:00"))
    assert _production(prod) == first

    deploy(prod.loaded, _report(prod, _now()))
    second = _production(prod)
    assert second["a_parent"] == [(i, 12, "v2") for i in range(6)]
    assert second["z_child"] == [(i, 24) for i in range(6)]
    (second_version,) = _versions(second, prod)
    assert f"{prod.schema}__v2_" in second_version, "the old version is dropped"

    # Only the child changes: it reads its parent through production's view (deferred), the
    # parent stays on version 2, and version 2's copy of the child is dropped.
    commit_change(prod.project, {"models/z_child.sql": CHILD.replace("* 2", "* 3")})
    deploy(
        prod.loaded,
        dataclasses.replace(
            reviewed(prod.project, ("z_child", ModelStatus.MODIFIED)), generated_at=_now()
        ),
    )
    third = _production(prod)
    assert third["a_parent"] == second["a_parent"]
    assert third["z_child"] == [(i, 36) for i in range(6)]
    second_again, third_version = _versions(third, prod)
    assert second_again == second_version and f"{prod.schema}__v3_" in third_version
    with SparkEngine(prod.remote) as engine:
        assert [r.name for r in engine.list_relations(second_version)] == ["a_parent"]
        assert [r.name for r in engine.list_relations(third_version)] == ["z_child"]

    # A removed model's view goes, and the version holding only it.
    (prod.project / "models" / "z_child.sql").unlink()
    commit_change(prod.project, {})
    removal = dataclasses.replace(
        reviewed(prod.project, ("z_child", ModelStatus.REMOVED)), generated_at=_now()
    )
    deploy(prod.loaded, removal)
    fourth = _production(prod)
    assert fourth["z_child"] is None
    assert fourth["a_parent"] == second["a_parent"]
    assert _versions(fourth, prod) == [second_version]
    with SparkEngine(prod.remote) as engine:
        log = engine.fetchall(f"SELECT version, state FROM `{prod.schema}__dataops`.deploys")
    assert sorted(log) == [(v, "published") for v in (1, 2, 3, 4)]


def test_a_spark_deploy_aborts_when_another_publishes_while_it_builds(
    prod: Prod, tmp_path: Path
) -> None:
    commit_change(prod.project, {"models/a_parent.sql": PLUS_ONE})
    marker = tmp_path / "pause"
    process = start_deploy(prod.project, _report(prod), "finish:deploy-build", "pause", marker)
    try:
        wait_for(marker.with_suffix(".ready"), process)
        # Another machine's deploy publishes version 1 (a pointer row of its own) meanwhile.
        with SparkEngine(prod.remote) as engine:
            engine.execute(
                f"INSERT INTO `{prod.schema}__dataops`.deploys VALUES (?, ?, ?, ?, ?, ?, ?)",
                [1, "0a0b0c", _now(), "f" * 40, "[]", "[]", "published"],
            )
        built = _production(prod)
        assert len(_versions(built, prod)) == 1, "this deploy's build exists, unpublished"
    finally:
        marker.with_suffix(".go").write_text("go")
    _, err = process.communicate(timeout=600)
    assert process.returncode == 1, err
    assert "moved to version 1 while this deploy built" in err
    state = _production(prod)
    assert _is_old(state), state
    assert _versions(state, prod) == [], "its version is dropped, never published"


# The driver with the CLI's signal handling: a SIGTERM is an exception that unwinds the deploy.
HANDLED_DRIVER = DRIVER.replace(
    "deploy(load_config(Path(project))",
    "from dataops_dev import interrupts\n"
    "interrupts.install()\n"
    "try:\n"
    "    deploy(load_config(Path(project))",
).replace(
    'print("deployed")',
    'except interrupts.Interrupted as stop:\n    sys.exit(stop.exit_code)\nprint("deployed")',
)


def test_a_sigterm_during_the_spark_build_drops_its_version_at_once(
    prod: Prod, tmp_path: Path
) -> None:
    commit_change(prod.project, {"models/a_parent.sql": PLUS_ONE})
    pickled = tmp_path / "report.pickle"
    pickled.write_bytes(pickle.dumps(_report(prod)))
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HANDLED_DRIVER,
            str(prod.project),
            str(pickled),
            "finish:deploy-build",
            "SIGTERM",
            str(tmp_path / "term"),
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = process.communicate(timeout=600)
    assert process.returncode == 143, err
    # No recovery needed: the deploy itself dropped the version it had built.
    state = _production(prod)
    assert _is_old(state), state
    assert _versions(state, prod) == []
    assert not (prod.loaded.state_dir / "deploy" / JOURNAL).exists()
