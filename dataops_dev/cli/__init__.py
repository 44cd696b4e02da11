"""The `dataops-dev` command line: thin click commands over the core.

Commands live in their own modules and are imported only when run (start-up stays fast for
pre-commit). Errors from the core become one red line plus a hint on stderr and the documented
exit code (`dataops_dev.exit_codes`); `--debug` shows tracebacks.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from dataops_dev.exit_codes import ExitCode, exit_code_for

# name -> "module:attribute" of a click command; imported lazily.
COMMANDS: dict[str, str] = {
    "config": "dataops_dev.cli.config_cmd:config",
    "env": "dataops_dev.cli.env:env",
    "build": "dataops_dev.cli.env:build",
    "demo": "dataops_dev.cli.demo:demo",
    "diff-tables": "dataops_dev.cli.diff_tables:diff_tables",
    "lineage": "dataops_dev.cli.lineage:lineage",
    "impact": "dataops_dev.cli.lineage:impact",
    "hook": "dataops_dev.cli.hook:hook",
    "sample": "dataops_dev.cli.sample:sample",
    "init": "dataops_dev.cli.sample:init",
    "review": "dataops_dev.cli.review:review",
    "decide": "dataops_dev.cli.review:decide",
    "deploy": "dataops_dev.cli.review:deploy",
    "tui": "dataops_dev.cli.tui:tui",
    "comment": "dataops_dev.cli.comment:comment",
    "report": "dataops_dev.cli.report:report",
    "worker": "dataops_dev.cli.worker_cmd:worker",
}
RESIDENT_COMMANDS = frozenset({"review", "build"})
"""Commands the resident worker may run (`cli/resident.py`): those whose time is dominated by
dbt's start-up. `deploy` is never among them: what touches production runs in its own process."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module_name, attribute = COMMANDS[name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    return None
                raise
            command = getattr(module, attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, name)


@dataclass
class AppContext:
    project_dir: Path | None
    config_file: Path | None
    debug: bool
    quiet: bool
    overrides: dict[str, Any] = field(default_factory=dict)
    _loaded: Any = None

    @property
    def loaded(self) -> Any:
        """The validated configuration (loaded on first use)."""
        if self._loaded is None:
            from dataops_dev.config import load_config

            self._loaded = load_config(
                config_file=self.config_file,
                project_dir=self.project_dir,
                overrides=self.overrides,
            )
            # A killed deploy's metadata is completed and its copy of production removed
            # before any command reads state.
            from dataops_dev.deploy_state import recover_at_start

            recover_at_start(self._loaded)
        return self._loaded

    def loaded_for(self, project_dir: Path) -> Any:
        """The configuration of another project (e.g. the demo's)."""
        from dataops_dev.config import load_config

        return load_config(project_dir, overrides=self.overrides)

    @contextlib.contextmanager
    def reporter(self) -> Iterator[Any]:
        """Progress on stderr for the `with` block; the bars are gone when it ends (also on
        errors, so the error line is not drawn under a live bar)."""
        from dataops_dev.cli.console import TerminalReporter

        reporter = TerminalReporter(quiet=self.quiet)
        try:
            yield reporter
        finally:
            reporter.close()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The dbt project (default: found from the current directory).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A dataops_dev.yml to use instead of the nearest one.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour on stderr/stdout (NO_COLOR is honoured).",
)
@click.version_option(package_name="dataops-dev")
@click.pass_context
def cli(
    ctx: click.Context,
    project_dir: Path | None,
    config_file: Path | None,
    debug: bool,
    quiet: bool,
    color: str,
) -> None:
    """Preview, decide and deploy dbt changes with evidence.

    Per-branch environments built on a masked sample of production, column lineage, data diffs.
    """
    from dataops_dev.cli.console import set_color

    set_color(color)
    ctx.obj = AppContext(project_dir=project_dir, config_file=config_file, debug=debug, quiet=quiet)


def format_options(
    default: str = "text", choices: tuple[str, ...] = ("text", "json", "markdown")
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--format text|json|markdown` plus the `--json` shorthand, merged into `output_format`."""

    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option(
            "--json", "as_json", is_flag=True, help="Shorthand for --format json."
        )(function)
        function = click.option(
            "--format",
            "output_format",
            type=click.Choice(list(choices)),
            default=default,
            show_default=True,
            help="Output format on stdout.",
        )(function)
        return function

    return decorator


def resolve_format(output_format: str, as_json: bool) -> str:
    return "json" if as_json else output_format


def emit_json(data: Any) -> None:
    """Write `data` as JSON to stdout (stable key order)."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _report_error(error: BaseException, debug: bool) -> None:
    """One red line plus a hint on stderr, through click rather than rich: importing rich
    would be a third of a no-op review that ends blocked."""
    from dataops_dev.cli.console import click_color, stderr_console
    from dataops_dev.errors import DataopsError

    def show(label: str, message: str = "", **style: Any) -> None:
        # The message is data (model names, paths, SQL), printed as written.
        text = click.style(label, **style) + (f" {message}" if message else "")
        click.echo(text, err=True, color=click_color())

    if debug:
        stderr_console().print_exception()
    if isinstance(error, DataopsError):
        show("error:", error.message, fg="red", bold=True)
        if error.hint:
            show("hint:", error.hint, dim=True)
    elif isinstance(error, KeyboardInterrupt | click.exceptions.Abort):
        show("interrupted", fg="yellow")
    else:
        show("unexpected error:", f"{type(error).__name__}: {error}", fg="red", bold=True)
        if not debug:
            show("hint:", "run again with --debug for the traceback, and report it", dim=True)


def _interrupted_exit(error: BaseException | None, debug: bool) -> ExitCode | None:
    """The exit code when the run was interrupted: a signal was recorded (even if dbt or DuckDB
    turned it into their own error or result), or a KeyboardInterrupt reached us."""
    from dataops_dev import interrupts

    if isinstance(error, KeyboardInterrupt | click.exceptions.Abort):
        interrupts.note_keyboard_interrupt()
    signum = interrupts.requested()
    if signum is None:
        return None
    _report_error(KeyboardInterrupt(), debug and error is not None)
    return ExitCode(interrupts.exit_code(signum))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and exit with the documented code.

    SIGTERM is handled like Ctrl-C (clean up, then exit 143); an interrupt is never swallowed:
    whatever a library made of it, the exit code is 130 (SIGINT) or 143 (SIGTERM)."""
    from dataops_dev import interrupts

    args = sys.argv[1:] if argv is None else argv
    # A process of its own (not a call from Python) running review or build may be served by
    # the resident worker (`cli/resident.py`); other commands never import it.
    own_process = argv is None and bool(args) and args[0] in RESIDENT_COMMANDS
    if own_process:
        from dataops_dev.cli import resident

        if (served := resident.dispatch(args)) is not None:
            if served.problem is not None:
                _report_error(served.problem, debug="--debug" in args)
            sys.exit(served.code)
    debug = "--debug" in args
    # A log handler that cannot write (full disk) must not print "--- Logging error ---"
    # tracebacks over the one error line.
    logging.raiseExceptions = debug
    interrupts.reset()  # a fresh run (main can be called more than once in one process)
    restore = interrupts.install()
    try:
        try:
            code = _run(args, debug)
        finally:
            interrupts.finish()
    except KeyboardInterrupt:
        # A signal in the instant between the run's end and `finish()`.
        code = interrupts.exit_code(interrupts.requested())
    finally:
        restore()
    signum = interrupts.requested()
    if signum is not None:
        # A signal while the process was finishing: still an interruption.
        code = interrupts.exit_code(signum)
        if not debug:
            # What the interrupt left half done (a git blob stream half read) fails in its
            # finaliser as the interpreter exits: noise after the one `interrupted` line.
            sys.unraisablehook = _ignore_unraisable
    elif own_process:
        from dataops_dev.cli import resident

        resident.start_in_background(args)  # the next review or build skips dbt's start-up
    sys.exit(code)


def _ignore_unraisable(_unraisable: Any) -> None:
    return None


def _run(args: list[str], debug: bool) -> int:
    try:
        # Outside standalone mode click returns the code of `ctx.exit(n)` (and of --help and
        # --version) instead of raising Exit; otherwise the command's return value.
        code = cli.main(args=args, prog_name="dataops-dev", standalone_mode=False)
    except click.UsageError as exc:
        if (interrupted := _interrupted_exit(exc, debug)) is not None:
            return interrupted
        exc.show()
        return ExitCode.USAGE_ERROR
    except click.ClickException as exc:
        if (interrupted := _interrupted_exit(exc, debug)) is not None:
            return interrupted
        exc.show()
        return ExitCode.RUNTIME_ERROR
    except BaseException as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        if isinstance(exc, SystemExit):
            raise
        if (interrupted := _interrupted_exit(exc, debug)) is not None:
            return interrupted
        error: BaseException = exc
        from dataops_dev.errors import disk_error, is_disk_full

        if isinstance(exc, OSError):  # a full disk, a read-only directory: one clear line
            error = disk_error(exc)
        elif isinstance(exc, Exception) and is_disk_full(str(exc)):  # DuckDB's IOException
            error = disk_error(OSError(28, "No space left on device"))
        _report_error(error, debug)
        return exit_code_for(error)
    if (interrupted := _interrupted_exit(None, debug)) is not None:
        # Finished, but a signal arrived (and something swallowed it): still an interruption.
        return interrupted
    return code if isinstance(code, int) and not isinstance(code, bool) else ExitCode.OK
