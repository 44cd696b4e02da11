"""deploy is exclusive and leaves nothing half-done: a second deploy is refused while one runs
(naming it), a deploy killed anywhere leaves production whole and no copy of it behind once the
next command starts, a kill after the swap has its metadata completed by the next command, no
WAL is carried over, and only the reviewed commit's files ever reach production.

Deploys run for real (dbt on a tiny DuckDB project, see test_deploy_safety.py); kills are sent
by a reporter in a subprocess at a named stage of the deploy, so each kill point is exact.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from dataops_dev.config import LoadedConfig, load_config
from dataops_dev.demo import build_production
from dataops_dev.deploy import deploy
from dataops_dev.deploy_state import (
    JOURNAL,
    Journal,
    file_lock,
    lock_path,
    read_journal,
    recover,
    work_dir,
    write_journal,
)
from dataops_dev.errors import LockedError, UsageError
from dataops_dev.report.model import ModelStatus, Report
from tests.conftest import REPO_ROOT, git, run_cli
from tests.test_deploy_safety import (
    DUCKDB_OUTPUT,
    _count,
    _write_without_checkpoint,
    commit_change,
    reviewed,
    sha256,
    tiny_project,
)

pytestmark = [pytest.mark.slow]

V2 = "select id, amount, 'v2' as version from {{ source('raw', 'items') }}\n"

DRIVER = """
import os, pickle, signal, sys, time
from pathlib import Path
from dataops_dev.config import load_config
from dataops_dev.deploy import deploy

project, report, event, action, marker = sys.argv[1:6]


class Stop:
    def hit(self, name):
        if name != event:
            return
        if action == "pause":
            Path(marker + ".ready").write_text(str(os.getpid()))
            while not Path(marker + ".go").exists():
                time.sleep(0.05)
            return
        os.kill(os.getpid(), getattr(signal, action))
        time.sleep(30)

    def task_started(self, key, description, total):
        self.hit("start:" + key)

    def task_advanced(self, key, advance=1.0, description=None):
        if advance:
            self.hit("advance:" + key)

    def task_finished(self, key, status="ok"):
        self.hit("finish:" + key)

    def message(self, level, text):
        pass


deploy(load_config(Path(project)), pickle.loads(Path(report).read_bytes()), reporter=Stop())
print("deployed")
"""


def start_deploy(
    project: Path, report: Report, event: str, action: str, marker: Path
) -> subprocess.Popen[str]:
    """`deploy(report)` in another process that stops at `event` ("start:<task key>",
    "advance:<task key>", "finish:<task key>"): `action` is a signal name to kill itself with,
    or "pause" to wait there until `<marker>.go` exists."""
    pickled = marker.with_suffix(".report")
    pickled.write_bytes(pickle.dumps(report))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(project), str(pickled), event, action, str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the deploy ended (code {process.returncode}) before {path.name}: {err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {path.name}")
        time.sleep(0.05)


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[tuple[Path, LoadedConfig, Path]]:
    """tiny on DuckDB with a production file outside the project (as two clones share it)."""
    production = tmp_path / "warehouse" / "prod.duckdb"
    production.parent.mkdir()
    project = tiny_project(
        tmp_path / "tiny",
        DUCKDB_OUTPUT.replace("prod.duckdb", str(production)),
        child_view=False,
    )
    con = duckdb.connect(str(production))
    try:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.items AS SELECT range AS id, 10 AS amount FROM range(10)")
    finally:
        con.close()
    loaded = load_config(project)
    build_production(loaded)
    yield project, loaded, production


def _versions(production: Path) -> set[str]:
    con = duckdb.connect(str(production), read_only=True)
    try:
        columns = {r[0] for r in con.execute("describe main.a_parent").fetchall()}
        if "version" not in columns:
            return {"v1"}
        return {r[0] for r in con.execute("select distinct version from main.a_parent").fetchall()}
    finally:
        con.close()


def _leftovers(state_dir: Path) -> list[str]:
    root = state_dir / "deploy"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _copies_of_production(state_dir: Path) -> list[Path]:
    root = state_dir / "deploy"
    return sorted(root.rglob("*.duckdb*")) if root.exists() else []


# ----------------------------------------------------------------------------------------------
# Concurrent deploys


def test_a_second_deploy_is_refused_while_one_runs_and_names_it(
    duck: tuple[Path, LoadedConfig, Path], tmp_path: Path
) -> None:
    project, loaded, production = duck
    # A second clone of the project deploys its own change to the same production file.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(project), str(other))
    commit_change(project, {"models/a_parent.sql": V2})
    commit_change(
        other,
        {"models/a_parent.sql": V2.replace("'v2'", "'v3'")},
    )
    other_loaded = load_config(other)
    # Its own record of production's manifest, as every clone has.
    shutil.copytree(loaded.state_dir / "production", other_loaded.state_dir / "production")
    marker = tmp_path / "first"
    first = start_deploy(
        project,
        reviewed(project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)),
        "start:deploy-build",
        "pause",
        marker,
    )
    try:
        wait_for(marker.with_suffix(".ready"), first)
        with pytest.raises(LockedError) as refused:
            deploy(
                other_loaded,
                reviewed(
                    other, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)
                ),
            )
    finally:
        marker.with_suffix(".go").write_text("go")
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert f"pid {first.pid}" in refused.value.message
    assert "dataops-dev deploy" in (refused.value.hint or "")
    # Production holds the deploy that ran, whole: not a mix, not the refused one.
    assert _versions(production) == {"v2"}
    assert _count(production, "select count(*) from main.z_child") == 10
    assert not (other_loaded.state_dir / "deployments").exists()
    assert len(list((loaded.state_dir / "deployments").iterdir())) == 1
    # The lock is free again: the refused clone can deploy now (its change wins, whole).
    deploy(
        other_loaded,
        reviewed(other, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)),
    )
    assert _versions(production) == {"v3"}
    assert not lock_path(production).exists(), "the lock file goes with the lock"
    assert not (production.parent / "prod.duckdb.wal").exists()


def test_two_deploys_in_one_project_use_separate_work_dirs(
    duck: tuple[Path, LoadedConfig, Path],
) -> None:
    _, loaded, _ = duck
    with work_dir(loaded.state_dir) as first, work_dir(loaded.state_dir) as second:
        assert first != second
        assert f"-p{os.getpid()}" in first.name
        owner = json.loads((first / "owner.json").read_text())
        assert owner["pid"] == os.getpid()
        # A live owner's work is never swept, even by another command in the same second.
        assert recover(loaded.state_dir) == []
        assert first.exists() and second.exists()
    assert not first.exists() and not second.exists()


def test_the_lock_names_its_holder_and_outlives_no_process(tmp_path: Path) -> None:
    production = tmp_path / "prod.duckdb"
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from dataops_dev.deploy_state import file_lock\n"
        "with file_lock(Path(sys.argv[1]), 'deploy of ' + str(os.getpid())):\n"
        "    Path(sys.argv[2]).write_text('held')\n"
        "    time.sleep(60)\n"
    )
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(lock_path(production)), str(ready)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])},
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with (
            pytest.raises(LockedError, match=f"deployed by deploy of {holder.pid}"),
            file_lock(lock_path(production), "me"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    # SIGKILL left the file (and the dead holder's name in it) but not the lock.
    assert lock_path(production).exists()
    with file_lock(lock_path(production), "me"):
        assert lock_path(production).read_text() == "me"
    assert not lock_path(production).exists()


# ----------------------------------------------------------------------------------------------
# Kills


KILL_POINTS = [
    ("start:deploy-lock", "SIGKILL"),
    ("finish:deploy-lock", "SIGTERM"),
    ("start:deploy-export", "SIGKILL"),
    ("finish:deploy-copy", "SIGKILL"),
    ("start:deploy-build", "SIGTERM"),
    ("advance:deploy-build", "SIGKILL"),
    ("finish:deploy-build", "SIGTERM"),
    ("start:deploy-swap", "SIGKILL"),
    ("finish:deploy-swap", "SIGKILL"),
    ("start:deploy-metadata", "SIGTERM"),
]
AFTER_SWAP = {"finish:deploy-swap", "start:deploy-metadata"}
BEFORE_CHECKPOINT = {"start:deploy-lock", "finish:deploy-lock", "start:deploy-export"}


@pytest.mark.parametrize(("event", "sig"), KILL_POINTS)
def test_a_killed_deploy_leaves_production_whole_and_no_copy_after_the_next_command(
    duck: tuple[Path, LoadedConfig, Path], tmp_path: Path, event: str, sig: str
) -> None:
    project, loaded, production = duck
    manifest = loaded.state_dir / "production" / "manifest.json"
    commit_change(project, {"models/a_parent.sql": V2})
    # Rows only in production's WAL must survive any kill, and never be carried over.
    _write_without_checkpoint(production, "INSERT INTO raw.items VALUES (500, 5)")
    before = sha256(production)
    process = start_deploy(
        project,
        reviewed(project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)),
        event,
        sig,
        tmp_path / "kill",
    )
    _, err = process.communicate(timeout=300)
    assert process.returncode == -getattr(signal, sig), f"not killed at {event}: {err}"

    # Production opens (no WAL left behind its swap) and has every row, old or new code whole.
    if event not in BEFORE_CHECKPOINT:
        assert not (production.parent / "prod.duckdb.wal").exists()
    assert _count(production, "select count(*) from raw.items") == 11
    if event in AFTER_SWAP:
        assert _versions(production) == {"v2"}
        assert _count(production, "select count(*) from main.z_child") == 11
        assert "'v2'" not in manifest.read_text(), "metadata is only written after the swap"
        assert (loaded.state_dir / "deploy" / JOURNAL).exists()
    elif event in BEFORE_CHECKPOINT:
        assert sha256(production) == before
    else:
        assert _versions(production) == {"v1"}
    if event == "finish:deploy-copy":
        # Production was checkpointed first: the file alone is copied, no WAL with it.
        assert [p.name for p in _copies_of_production(loaded.state_dir)] == ["prod.duckdb"]

    # The next command (any) completes the metadata and removes the dead deploy's work.
    command = ("env", "gc") if sig == "SIGTERM" else ("env", "list", "--json")
    nxt = run_cli(*command, cwd=project)
    assert nxt.returncode == 0, nxt.stderr
    assert _copies_of_production(loaded.state_dir) == []
    assert _leftovers(loaded.state_dir) == []
    if event in AFTER_SWAP:
        assert "'v2'" in manifest.read_text()
        (record,) = (loaded.state_dir / "deployments").iterdir()
        assert json.loads(record.read_text())["commit"] == git(project, "rev-parse", "HEAD")
    else:
        assert not (loaded.state_dir / "deployments").exists()
    if event == "finish:deploy-build":
        # The lock died with the process: the next deploy runs.
        deploy(
            loaded,
            reviewed(
                project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)
            ),
        )
        assert _versions(production) == {"v2"}
        assert _count(production, "select count(*) from raw.items") == 11


def test_journal_decides_by_the_production_file_whether_the_swap_happened(
    tmp_path: Path,
) -> None:
    """Between the journal and the rename: dropped; after the rename: rolled forward."""
    state = tmp_path / ".dataops"
    production = tmp_path / "prod.duckdb"
    production.write_bytes(b"old")
    staging = tmp_path / "staging.duckdb"
    staging.write_bytes(b"new")
    stat = os.stat(staging)
    record = state / "deployments" / "r.json"
    journal = Journal(
        backend="duckdb",
        production=str(production),
        swapped_when={"inode": [stat.st_dev, stat.st_ino]},
        record_path=str(record),
        record={"commit": "abc"},
    )
    write_journal(state, journal, b'{"new": true}')
    assert read_journal(state) == journal
    assert recover(state) == [
        "dropped the journal of a deploy interrupted before its swap (production unchanged)"
    ]
    assert read_journal(state) is None
    assert not record.exists() and not (state / "production" / "manifest.json").exists()

    write_journal(state, journal, b'{"new": true}')
    os.replace(staging, production)
    with file_lock(lock_path(production), "a live deploy"):
        # A live deploy holds the lock: the journal is its own, left alone.
        assert recover(state) == []
        assert read_journal(state) == journal
    (done,) = recover(state)
    assert done.startswith("completed the interrupted deploy's metadata")
    assert json.loads(record.read_text()) == {"commit": "abc"}
    assert json.loads((state / "production" / "manifest.json").read_text()) == {"new": True}
    assert read_journal(state) is None


# ----------------------------------------------------------------------------------------------
# Only the reviewed commit


def test_ignored_and_assume_unchanged_files_are_never_deployed(
    duck: tuple[Path, LoadedConfig, Path],
) -> None:
    project, loaded, production = duck
    commit_change(project, {"models/a_parent.sql": V2})
    # A model git ignores through .git/info/exclude (not .gitignore: nothing shows it)...
    (project / ".git" / "info" / "exclude").write_text("models/unreviewed.sql\n")
    (project / "models" / "unreviewed.sql").write_text("select 42 as leaked\n")
    # ...and a tracked model whose edit git is told not to look at.
    (project / "models" / "z_child.sql").write_text(
        "{{ config(materialized='table') }}\nselect 'unreviewed' as doubled\n"
    )
    git(project, "update-index", "--assume-unchanged", "models/z_child.sql")
    assert git(project, "status", "--porcelain") == ""

    deploy(
        loaded,
        reviewed(
            project,
            ("a_parent", ModelStatus.MODIFIED),
            ("unreviewed", ModelStatus.ADDED),
            ("z_child", ModelStatus.IMPACTED),
        ),
    )
    con = duckdb.connect(str(production), read_only=True)
    try:
        tables = {
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        }
        doubled = con.execute("select distinct doubled from main.z_child").fetchall()
    finally:
        con.close()
    assert "unreviewed" not in tables
    assert doubled == [(20,)]
    assert _versions(production) == {"v2"}


def test_deploy_refuses_a_commit_that_is_not_the_code_the_review_built(
    duck: tuple[Path, LoadedConfig, Path],
) -> None:
    """The review built the working tree (with an ignored model): its commit is not that."""
    import dataclasses

    from dataops_dev.environments import environment_name

    project, loaded, production = duck
    salt = {"DATAOPS_SALT": "deploy-atomic-tests"}
    commit_change(project, {"models/a_parent.sql": V2})
    git(project, "checkout", "-q", "-b", "feature")
    name = environment_name("feature")

    built = run_cli("build", cwd=project, env=salt)
    assert built.returncode == 0, built.stderr
    report = reviewed(
        project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)
    )
    report = dataclasses.replace(report, head=dataclasses.replace(report.head, environment=name))
    # Built from exactly the commit: the check passes and the deploy goes through.
    deploy(loaded, report)
    assert _versions(production) == {"v2"}

    (project / ".git" / "info" / "exclude").write_text("models/unreviewed.sql\n")
    (project / "models" / "unreviewed.sql").write_text("select 42 as leaked\n")
    rebuilt = run_cli("build", cwd=project, env=salt)
    assert rebuilt.returncode == 0, rebuilt.stderr
    before = sha256(production)
    with pytest.raises(UsageError, match="is not the code the review built") as refused:
        deploy(loaded, report)
    assert "model.tiny.unreviewed" in refused.value.message
    assert "dataops-dev review" in (refused.value.hint or "")
    assert sha256(production) == before
    assert _copies_of_production(loaded.state_dir) == []


# ----------------------------------------------------------------------------------------------
# deploy --dry-run


def test_dry_run_shows_production_row_counts_not_the_samples(
    duck: tuple[Path, LoadedConfig, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from click.testing import CliRunner

    from dataops_dev.cli import cli
    from dataops_dev.environments import environment_name
    from dataops_dev.report.model import DataDiff, RowCounts
    from dataops_dev.review import save_report

    project, loaded, production = duck
    # The report is saved tagged, as review saves it: deploy refuses an untagged one.
    monkeypatch.setenv("DATAOPS_SALT", "deploy-atomic-tests")
    con = duckdb.connect(str(production))
    try:
        con.execute("INSERT INTO raw.items SELECT range, 1 FROM range(100, 1100)")  # 1,010 rows
    finally:
        con.close()
    commit_change(project, {"models/a_parent.sql": V2})
    report = reviewed(
        project, ("a_parent", ModelStatus.MODIFIED), ("z_child", ModelStatus.IMPACTED)
    )
    sample = DataDiff(key=("id",), rows=RowCounts(base=7, head=7, changed=7))
    models = (dataclasses.replace(report.models[0], diff=sample), report.models[1])
    head = dataclasses.replace(report.head, environment=environment_name("main"))
    save_report(loaded, dataclasses.replace(report, models=models, head=head))
    before = sha256(production)

    runner = CliRunner()
    as_json = runner.invoke(cli, ["--project-dir", str(project), "deploy", "--dry-run", "--json"])
    assert as_json.exit_code == 0, as_json.output
    planned = {m["name"]: m for m in json.loads(as_json.stdout)["models"]}
    # a_parent is a view over all 1,010 source rows; z_child a table built before the insert.
    assert planned["a_parent"]["production_rows"] == 1010
    assert planned["z_child"]["production_rows"] == 10
    assert planned["a_parent"]["expected_rows"] == 7  # the sample's, named as such

    text = runner.invoke(cli, ["--project-dir", str(project), "deploy", "--dry-run"])
    assert text.exit_code == 0, text.output
    (line,) = [row for row in text.stdout.splitlines() if "a_parent" in row]
    assert "production: 1,010 rows" in line
    assert "sample: 7 -> 7 rows" in line
    assert sha256(production) == before
