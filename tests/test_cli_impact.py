"""`dataops-dev impact --fail-on`: the failure names what it found, by kind and model, and the
command to run next (not the one just run)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.gen_project import apply_edits, generate_project
from dataops_dev.exit_codes import ExitCode
from tests.conftest import run_cli


def test_fail_on_breaking_names_the_models_and_the_next_command(tmp_path: Path) -> None:
    project = generate_project(tmp_path / "bench", n_models=40, n_columns=8, seed=3)
    apply_edits(project, 40)  # a partial, an additive and a breaking (filter) change
    args = ("impact", "--base-manifest", "target/manifest.json", "--json")

    report = run_cli(*args, cwd=project)
    assert report.returncode == ExitCode.OK, report.stderr
    assert run_cli(*args, "--fail-on", "never", cwd=project).returncode == ExitCode.OK

    failing = run_cli(*args, "--fail-on", "breaking", cwd=project, env={"NO_COLOR": "1"})
    assert failing.returncode == ExitCode.BLOCKING_FINDINGS
    assert "error: the change set has breaking: m_00" in failing.stderr
    assert "hint: `dataops-dev review` diffs their data" in failing.stderr
    assert "`dataops-dev impact`" not in failing.stderr


def test_fail_on_unknown_says_unknown_not_breaking(tmp_path: Path) -> None:
    project = generate_project(tmp_path / "bench", n_models=40, n_columns=8, seed=3)
    model = next(project.glob("models/*/m_0010.sql"))
    model.write_text("select from from where\n", encoding="utf-8")  # sqlglot cannot parse it
    args = ("impact", "--base-manifest", "target/manifest.json", "--json")

    assert run_cli(*args, "--fail-on", "breaking", cwd=project).returncode == ExitCode.OK
    failing = run_cli(*args, "--fail-on", "unknown", cwd=project, env={"NO_COLOR": "1"})
    assert failing.returncode == ExitCode.BLOCKING_FINDINGS
    assert "error: the change set has unknown: m_0010" in failing.stderr
    assert "breaking" not in failing.stderr
    assert "each model's reasons say why it is unknown" in failing.stderr
