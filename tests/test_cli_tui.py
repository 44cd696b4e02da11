"""`dataops-dev tui`: the session loads the CLI's own configuration (--config, overrides) when
first needed, and a bare --report outside any project still opens."""

from __future__ import annotations

import json
from pathlib import Path

from dataops_dev.cli import AppContext
from dataops_dev.cli.tui import make_session
from tests.conftest import run_cli
from tests.report.factory import small_report


def test_session_uses_the_cli_config_with_project_dir_and_report(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\n", "utf-8")
    config = tmp_path / "elsewhere" / "custom.yml"
    config.parent.mkdir()
    config.write_text("version: 1\nenvironments:\n  ttl_days: 3\n", "utf-8")
    report = tmp_path / "report.json"
    report.write_text(small_report().to_json(), "utf-8")
    app = AppContext(
        project_dir=project,
        config_file=config,
        debug=False,
        quiet=False,
        overrides={"environments.keep": ["release"]},
    )

    session = make_session(app, report)
    session.load_report()
    assert app._loaded is None  # browsing a report with --project-dir loads no config
    loaded = session.loaded
    assert loaded is app.loaded
    assert loaded.source == str(config.resolve())
    assert loaded.config.environments.ttl_days == 3
    assert tuple(loaded.config.environments.keep) == ("release",)


def test_a_bare_report_outside_a_project_opens(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(small_report().to_json(), "utf-8")
    result = run_cli(
        "tui", "--report", str(report), "--headless", "--exit-after-first-paint", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1])["first_paint"] > 0


def test_without_a_report_a_missing_project_is_a_command_error(tmp_path: Path) -> None:
    result = run_cli("tui", "--headless", "--exit-after-first-paint", cwd=tmp_path)
    assert result.returncode == 2
    assert "no dbt_project.yml" in result.stderr
