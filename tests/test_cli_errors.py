"""The CLI's error path: messages are data (brackets print as written, never as rich markup),
exit codes follow `ExitCode` also for `ctx.exit(n)`, and each failure names what to run next."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from dataops_dev.cli import cli, main
from dataops_dev.exit_codes import ExitCode
from tests.conftest import run_cli
from tests.report.factory import small_report


@pytest.mark.parametrize("name", ["stg[orders]", "x[/y]"])
def test_error_messages_with_brackets_print_as_written(tmp_path: Path, name: str) -> None:
    # `stg[orders]` used to lose `[orders]` (a style tag); `[/y]` raised MarkupError inside the
    # error handler: a traceback instead of the exit code.
    missing = tmp_path / name / "report.json"
    result = run_cli("report", "--report", str(missing), cwd=tmp_path, env={"NO_COLOR": "1"})
    assert result.returncode == ExitCode.USAGE_ERROR
    assert f"error: no report file {missing}" in result.stderr
    assert "hint: run `dataops-dev review`" in result.stderr
    assert "Traceback" not in result.stderr


def test_brackets_also_print_as_written_in_colour(tmp_path: Path) -> None:
    missing = tmp_path / "x[" / "y]" / "report.json"
    result = run_cli("--color", "always", "report", "--report", str(missing), cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE_ERROR
    assert str(missing) in result.stderr
    assert "\x1b[" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["report", "comment"])
def test_a_budget_too_small_for_the_verdict_is_a_usage_error(tmp_path: Path, command: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(small_report().to_json(), "utf-8")
    extra = ["--dry-run"] if command == "comment" else []
    result = run_cli(command, "--report", str(path), "--budget", "100", *extra, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE_ERROR
    assert "--budget 100 leaves no room for the verdict" in result.stderr
    assert "hint: pass --budget 2000 or more" in result.stderr
    assert result.stdout == ""


def test_version_comes_from_the_installed_package(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == ExitCode.OK
    assert importlib.metadata.version("dataops-dev") in result.stdout
    import dataops_dev

    assert dataops_dev.__version__ == importlib.metadata.version("dataops-dev")


@pytest.fixture
def exiting_command() -> Iterator[str]:
    """A command that ends with `ctx.exit(3)`, registered on the real group for one test."""

    @click.command("exit-three")
    @click.pass_context
    def exit_three(ctx: click.Context) -> None:
        ctx.exit(3)

    cli.add_command(exit_three)
    try:
        yield "exit-three"
    finally:
        cli.commands.pop("exit-three")


def test_ctx_exit_code_is_the_process_exit_code(exiting_command: str) -> None:
    # Outside standalone mode click returns the code of ctx.exit instead of raising Exit.
    with pytest.raises(SystemExit) as exited:
        main([exiting_command])
    assert exited.value.code == 3


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == ExitCode.OK
    assert "Usage: dataops-dev" in capsys.readouterr().out
