"""PostgreSQL deploys are exclusive through an advisory lock in the production database, build
into per-process staging schemas, and a deploy killed after its COMMIT has its metadata
completed by the next command (the journal asks the server how the transaction ended)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psycopg
import pytest

from dataops_dev.config import LoadedConfig
from dataops_dev.deploy import advisory_key, deploy
from dataops_dev.errors import LockedError
from dataops_dev.report.model import ModelStatus
from tests.conftest import git, pg_conninfo, run_cli
from tests.test_deploy_atomic import start_deploy, wait_for
from tests.test_deploy_safety import (  # noqa: F401 - pg_project is a fixture
    _pg,
    _staging_schemas,
    commit_change,
    pg_project,
    reviewed,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PLUS_ONE = "select id, amount + 1 as amount from {{ source('raw', 'items') }}\n"


def _change(project: Path) -> None:
    commit_change(project, {"models/a_parent.sql": PLUS_ONE})


def _report(project: Path):  # type: ignore[no-untyped-def]
    return reviewed(project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED))


def test_a_held_advisory_lock_refuses_the_deploy_and_names_its_holder(
    pg_project: tuple[Path, LoadedConfig, str],  # noqa: F811
) -> None:
    project, loaded, database = pg_project
    _change(project)
    before = _pg(database, "SELECT sum(doubled) FROM analytics.z_child")
    holder = psycopg.connect(
        pg_conninfo(database) + " application_name=other-deployer", autocommit=True
    )
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [advisory_key("analytics")])
        with pytest.raises(LockedError, match="being deployed by other-deployer") as refused:
            deploy(loaded, _report(project))
        assert f"server pid {holder.info.backend_pid}" in refused.value.message
        assert _pg(database, "SELECT sum(doubled) FROM analytics.z_child") == before
    finally:
        holder.close()
    deploy(loaded, _report(project))
    assert _pg(database, "SELECT sum(doubled) FROM analytics.z_child") == [(220,)]
    assert _staging_schemas(database) == []


def test_concurrent_deploy_is_refused_and_a_killed_ones_staging_schemas_are_dropped(
    pg_project: tuple[Path, LoadedConfig, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    project, loaded, database = pg_project
    _change(project)
    marker = tmp_path / "first"
    first = start_deploy(project, _report(project), "start:deploy-swap", "pause", marker)
    try:
        wait_for(marker.with_suffix(".ready"), first)
        # Its staging schema carries its pid: two deploys never share one.
        assert _staging_schemas(database) == [f"analytics__dataops_deploy_p{first.pid}"]
        with pytest.raises(LockedError) as refused:
            deploy(loaded, _report(project))
        assert f"dataops-dev deploy pid {first.pid}" in refused.value.message
    finally:
        first.kill()
        first.communicate()
    # Killed before its swap: production is as it was, its staging schema is left...
    assert _pg(database, "SELECT sum(doubled) FROM analytics.z_child") == [(200,)]
    assert _staging_schemas(database) == [f"analytics__dataops_deploy_p{first.pid}"]
    # ...until the next deploy, which holds the lock (the server released the dead one's).
    deploy(loaded, _report(project))
    assert _pg(database, "SELECT sum(doubled) FROM analytics.z_child") == [(220,)]
    assert _staging_schemas(database) == []


def test_a_deploy_killed_after_its_commit_has_its_metadata_completed(
    pg_project: tuple[Path, LoadedConfig, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    project, loaded, database = pg_project
    _change(project)
    manifest = loaded.state_dir / "production" / "manifest.json"
    process = start_deploy(
        project, _report(project), "finish:deploy-swap", "SIGKILL", tmp_path / "kill"
    )
    _, err = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, err
    assert _pg(database, "SELECT sum(doubled) FROM analytics.z_child") == [(220,)]
    assert "amount + 1" not in manifest.read_text()
    assert (loaded.state_dir / "deploy" / "journal.json").exists()

    listed = run_cli("env", "list", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert "amount + 1" in manifest.read_text()
    (record,) = (loaded.state_dir / "deployments").iterdir()
    assert json.loads(record.read_text())["commit"] == git(project, "rev-parse", "HEAD")
    assert sorted(p.name for p in (loaded.state_dir / "deploy").iterdir()) == []
    assert _staging_schemas(database) == []
