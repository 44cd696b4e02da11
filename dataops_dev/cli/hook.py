"""`dataops-dev hook sql-check | impact-guard | keys-and-tests | review [FILES...]`: the pre-commit
entry points (`.pre-commit-hooks.yaml`). Silent on success; `path:line:col: message` on failure."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format

_format_options = format_options(choices=("text", "json"))


def render_text(result: Any) -> str:
    """The hook's problems as `path:line:col: message`, snippet, impact and next command."""
    blocks: list[str] = []
    for problem in result.problems:
        lines = [f"{problem.path}:{problem.line}:{problem.column}: {problem.message}"]
        if problem.snippet:
            lines.extend("    " + s for s in problem.snippet.split("\n"))
        lines.extend("    " + d for d in problem.details)
        if problem.hint:
            lines.append(f"    next: {problem.hint}")
        blocks.append("\n".join(lines))
    for problem in result.acknowledged:
        lines = [
            f"{problem.path}:{problem.line}:{problem.column}: (acknowledged: "
            f"{problem.acknowledged_by}) {problem.message}"
        ]
        lines.extend("    " + d for d in problem.details)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _run(
    app: AppContext,
    hook_id: str,
    files: tuple[Path, ...],
    fmt: str,
    all_models: bool,
    base_manifest: Path | None = None,
) -> None:
    from dataops_dev.errors import BlockingFindings
    from dataops_dev.hooks import HookId, run_hook
    from dataops_dev.report._summary import plural
    from dataops_dev.reporting import NULL_REPORTER

    # Only the full review is slow enough for progress; the pre-commit checks stay silent.
    reporting = app.reporter() if hook_id == "review" else contextlib.nullcontext(NULL_REPORTER)
    with reporting as reporter:
        result = run_hook(
            HookId(hook_id),
            list(files),
            config_file=app.config_file,
            project_dir=app.project_dir,
            all_models=all_models,
            overrides=app.overrides,
            base_manifest=base_manifest,
            reporter=reporter,
        )
    for note in result.notes:
        # A check that could not run is said, never passed in silence (stderr: not the data).
        click.echo(f"dataops-dev: {note}", err=True)
    if fmt == "json":
        emit_json(result.to_dict())
    elif result.problems or result.acknowledged:
        click.echo(render_text(result))
    if result.problems:
        sys.stdout.flush()
        # The findings above are the message: the error line only names the hook.
        raise BlockingFindings(f"{hook_id}: {plural(len(result.problems), 'problem')}", None)


@click.group()
def hook() -> None:
    """pre-commit checks: fast (no dbt, no database) sql-check, impact-guard, keys-and-tests;
    and review (pre-push). Pass the staged files; the dbt project is found above each one."""


def _files_command(name: str, help_text: str) -> click.Command:
    @click.command(name=name, help=help_text)
    @click.argument("files", nargs=-1, type=click.Path(path_type=Path))
    @click.option(
        "--all-models", is_flag=True, help="Check every model of the project (no FILES needed)."
    )
    @_format_options
    @click.pass_obj
    def command(
        app: AppContext,
        files: tuple[Path, ...],
        all_models: bool,
        output_format: str,
        as_json: bool,
        missing_manifest: str | None = None,
        base_manifest: Path | None = None,
    ) -> None:
        if missing_manifest:
            app.overrides["hooks.missing_manifest"] = missing_manifest
        fmt = resolve_format(output_format, as_json)
        _run(app, name, files, fmt, all_models, base_manifest)

    return command


hook.add_command(
    _files_command(
        "sql-check",
        "Each staged model renders (light Jinja) and parses with sqlglot in the project's dialect.",
    )
)
_guard = _files_command(
    "impact-guard",
    "Fail on unacknowledged breaking changes to contracted, exposure-feeding or protected "
    "models (against the main branch's manifest); print what they impact. Before the first "
    "`dataops-dev impact --base main` on a fresh clone it is skipped, with a note.",
)
_guard.params.append(
    click.Option(
        ["--missing-manifest"],
        type=click.Choice(["fail", "skip"]),
        default=None,
        help="When there is no base manifest yet: skip with a note on stderr, or fail "
        "(default: config hooks.missing_manifest, skip).",
    )
)
_guard.params.append(
    click.Option(
        ["--base-manifest"],
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The manifest.json to compare with (default: the production manifest, the main "
        "branch's review baseline, or its parse cached by `dataops-dev impact`).",
    )
)
hook.add_command(_guard)
hook.add_command(
    _files_command(
        "keys-and-tests",
        "Changed or new models have a discoverable primary key and the tests "
        "`hooks.require_tests` names.",
    )
)


@hook.command()
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The dbt project (default: found from the current directory, or the one subfolder "
    "holding a dbt_project.yml).",
)
@_format_options
@click.pass_obj
def review(app: AppContext, project_dir: Path | None, output_format: str, as_json: bool) -> None:
    """Run the full review (sample, environments, diffs, tests); fail on blocking findings."""
    if project_dir is not None:
        app.project_dir = project_dir
    _run(app, "review", (), resolve_format(output_format, as_json), False)
