"""run_dbt on a real (tiny) dbt project: results are this invocation's own, and with
`redact_errors` dbt's database messages reach neither the error nor the progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops_dev.dbt.runner import run_dbt
from dataops_dev.reporting import CaptureReporter

pytestmark = [pytest.mark.slow]

SECRET = "secret-value-4242"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "tiny"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        'name: tiny\nversion: "1.0.0"\nconfig-version: 2\nprofile: tiny\n'
    )
    (project / "profiles.yml").write_text(
        "tiny:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {tmp_path / 'dev.duckdb'}\n      threads: 1\n"
    )
    (project / "models" / "ok.sql").write_text("select 1 as id\n")
    return project


def test_a_run_never_reports_the_previous_runs_results(project: Path) -> None:
    built = run_dbt(
        "build", [], project_dir=project, profiles_dir=project, target_path=project / "target"
    )
    assert built.success and [n.name for n in built.nodes] == ["ok"]
    # The same target, and a command that fails before it runs anything.
    (project / "models" / "broken.sql").write_text("select {{ ref( }}\n")
    tested = run_dbt(
        "test", [], project_dir=project, profiles_dir=project, target_path=project / "target"
    )
    assert not tested.success
    assert tested.nodes == ()
    assert tested.error


def test_redact_errors_names_the_node_and_quotes_no_value(project: Path) -> None:
    (project / "models" / "bad.sql").write_text(
        "{{ config(materialized='table') }}\n"
        f"select cast(code as integer) as code from (select '{SECRET}' as code)\n"
    )
    plain = run_dbt(
        "build", [], project_dir=project, profiles_dir=project, target_path=project / "target"
    )
    assert not plain.success
    assert SECRET in (plain.error or "") + "".join(n.message or "" for n in plain.nodes), (
        "without redaction the database's message (and the value) comes through: "
        "the redacted run below must be the one that hides it"
    )

    reporter = CaptureReporter()
    redacted = run_dbt(
        "build",
        [],
        project_dir=project,
        profiles_dir=project,
        target_path=project / "target",
        reporter=reporter,
        redact_errors=True,
    )
    assert not redacted.success
    assert redacted.error is not None and "bad: error" in redacted.error
    log = project / "logs" / "dbt.log"
    assert redacted.log_file == log
    assert all(n.message is None for n in redacted.nodes)
    shown = [redacted.error, *(" ".join(e) for e in reporter.events)]
    assert not [line for line in shown if SECRET in line]
    assert SECRET in log.read_text("utf-8"), "dbt's log keeps the detail for whoever debugs"
