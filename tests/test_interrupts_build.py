"""A signal during a real dbt run inside `build`: dbt catches the KeyboardInterrupt and returns a
result, but the environment is not published — the previous build stays and the attempt is
recorded as interrupted. In-process, with our handlers installed, signals sent to this process
at fixed points of the build (so each case is deterministic).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from dataops_dev import interrupts
from dataops_dev.config import load_config
from dataops_dev.environments import Environments, build_branch
from dataops_dev.reporting import NullReporter
from dataops_dev.sources import ensure_sample
from tests.real_projects import TEST_SALT, make_project_repo

pytestmark = [pytest.mark.slow]

MODEL = "models/customer_totals.sql"


class SignalAt(NullReporter):
    """Sends `signum` to this process when the build first starts a node whose name starts with
    one of `prefixes` (any node when empty): models and tests run in one dbt build."""

    def __init__(self, prefixes: tuple[str, ...], signum: int) -> None:
        self.prefixes = prefixes
        self.signum = signum
        self.sent = False

    def task_advanced(self, key: str, advance: float = 1.0, description: str | None = None) -> None:
        node = (description or "").partition(": ")[2]
        if key != "build" or self.sent or not node:
            return
        if not self.prefixes or node.startswith(self.prefixes):
            self.sent = True
            os.kill(os.getpid(), self.signum)


@pytest.fixture
def handlers() -> Iterator[None]:
    interrupts.reset()
    restore = interrupts.install()
    try:
        yield
    finally:
        restore()
        interrupts.reset()


def _version(database: Path, schema: str) -> list[str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute(f'select distinct version from "{schema}".main.customer_totals')
        return [str(r[0]) for r in rows.fetchall()]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("phase", "signum"),
    [
        (("stg_", "customer_"), signal.SIGINT),
        (("unique_", "not_null_", "relationships_"), signal.SIGTERM),
    ],
    ids=["model", "test"],
)
def test_a_signal_during_dbt_publishes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    handlers: None,
    phase: tuple[str, ...],
    signum: int,
) -> None:
    monkeypatch.setenv("DATAOPS_SALT", TEST_SALT)
    repo = make_project_repo("ss_tiny", tmp_path)
    loaded = load_config(repo.project)
    ensure_sample(loaded)
    info, _ = build_branch(loaded, branch="main")
    envs = Environments(loaded)
    database = envs.database_path(info.name)
    before = envs.get(info.name).last_build
    assert _version(database, info.name) == ["v0"]

    repo.replace(MODEL, "'v0'", "'v1'")
    reporter = SignalAt(phase, signum)
    with pytest.raises(KeyboardInterrupt) as caught:
        build_branch(loaded, branch="main", reporter=reporter)

    assert reporter.sent
    assert isinstance(caught.value, interrupts.Interrupted)
    assert caught.value.signum == signum
    assert _version(database, info.name) == ["v0"]  # the previous build, still readable
    after = envs.get(info.name)
    assert after.last_build == before
    assert after.last_attempt is not None and after.last_attempt.status == "interrupted"
    assert not (envs.root / f"{info.name}.building.duckdb").exists()
