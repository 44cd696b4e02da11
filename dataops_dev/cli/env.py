"""`dataops-dev env create|list|drop|gc` and `dataops-dev build`."""

from __future__ import annotations

from typing import Any

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def _human_age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


@click.group()
def env() -> None:
    """Per-branch environments: create, list, drop, gc."""


@env.command("create")
@click.option("--branch", help="Branch to create the environment for (default: current).")
@format_options()
@click.pass_obj
def create(app: AppContext, branch: str | None, output_format: str, as_json: bool) -> None:
    """Create the environment of the current branch (nothing is built yet)."""
    from dataops_dev import gitrepo
    from dataops_dev.environments import Environments

    loaded = app.loaded
    branch = branch or gitrepo.state(loaded.project_dir).branch
    info = Environments(loaded).create(branch)
    if resolve_format(output_format, as_json) == "json":
        emit_json(info.to_dict())
    else:
        click.echo(
            f"environment {info.name} for branch {branch!r} ({info.backend}: {info.database})"
        )


@env.command("list")
@format_options()
@click.pass_obj
def list_(app: AppContext, output_format: str, as_json: bool) -> None:
    """Branch, environment, backend, last build, status, age and size of every environment."""
    from dataops_dev.environments import Environments

    envs = Environments(app.loaded)
    rows: list[dict[str, Any]] = []
    for info in envs.all():
        data = info.to_dict()
        data["size_bytes"] = envs.size_bytes(info)
        data["age_seconds"] = round(info.age_seconds, 1)
        rows.append(data)
    fmt = resolve_format(output_format, as_json)
    if fmt == "json":
        emit_json({"environments": rows})
        return
    headers = ["branch", "environment", "backend", "last build", "status", "age", "size"]
    table = [
        [
            r["branch"],
            r["name"],
            r["backend"],
            (r["last_build"] or {}).get("commit", "")[:8] or "-",
            r["status"],
            _human_age(r["age_seconds"]),
            _human_size(r["size_bytes"]),
        ]
        for r in rows
    ]
    if fmt == "markdown":
        click.echo("| " + " | ".join(headers) + " |")
        click.echo("|" + "---|" * len(headers))
        for row in table:
            click.echo("| " + " | ".join(str(c) for c in row) + " |")
        return
    from rich.table import Table
    from rich.text import Text

    from dataops_dev.cli.console import stdout_console

    rich_table = Table(*headers, box=None, header_style="bold")
    for row in table:
        # Cells are data (a branch may be named `[/]`), never rich markup.
        rich_table.add_row(*[Text(str(c)) for c in row])
    if not table:
        click.echo("no environments yet: `dataops-dev build` creates the current branch's")
        return
    stdout_console().print(rich_table)


@env.command("drop")
@click.argument("names", nargs=-1)
@click.option("--branch", help="Drop the environment of this branch.")
@click.pass_obj
def drop(app: AppContext, names: tuple[str, ...], branch: str | None) -> None:
    """Drop environments by name (or the one of --branch)."""
    from dataops_dev.environments import Environments, environment_name
    from dataops_dev.errors import UsageError

    envs = Environments(app.loaded)
    targets = list(names) + ([environment_name(branch)] if branch else [])
    if not targets:
        raise UsageError("name the environment(s) to drop", "see `dataops-dev env list`")
    for name in targets:
        info = envs.drop(name)
        click.echo(f"dropped {info.name} (branch {info.branch!r})", err=True)


@env.command("gc")
@click.option(
    "--ttl-days",
    type=click.FloatRange(min=0),
    help="Override environments.ttl_days (0 drops every environment not kept).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be dropped.")
@format_options()
@click.pass_obj
def gc(
    app: AppContext, ttl_days: float | None, dry_run: bool, output_format: str, as_json: bool
) -> None:
    """Drop environments of deleted branches and those older than the TTL.

    Production and the main branch's baseline are never touched.
    """
    from dataops_dev import gitrepo
    from dataops_dev.environments import Environments, main_baseline_name

    loaded = app.loaded
    envs = Environments(loaded)
    # Recovery undoes killed builds (deletes staging files, renames schemas back): a dry run
    # must change nothing, so it only runs for real.
    recovered = [] if dry_run else envs.recover()
    dropped = envs.gc(
        existing_branches=gitrepo.branches(loaded.project_dir),
        protected_baseline=main_baseline_name(loaded),
        ttl_days=ttl_days,
        dry_run=dry_run,
    )
    if resolve_format(output_format, as_json) == "json":
        emit_json(
            {
                "dry_run": dry_run,
                "dropped": [{"name": i.name, "branch": i.branch, "reason": r} for i, r in dropped],
                "recovered": recovered,
            }
        )
        return
    for name in recovered:
        click.echo(f"recovered {name} (removed what an interrupted build left)")
    verb = "would drop" if dry_run else "dropped"
    for info, reason in dropped:
        click.echo(f"{verb} {info.name} ({reason})")
    if not dropped:
        click.echo("nothing to drop")


@click.command()
@click.option("--branch", help="Build into this branch's environment (default: current).")
@click.option("--select", "-s", multiple=True, help="dbt selectors (default: everything).")
@format_options()
@click.pass_obj
def build(
    app: AppContext,
    branch: str | None,
    select: tuple[str, ...],
    output_format: str,
    as_json: bool,
) -> None:
    """dbt build (models, then tests) of the working tree into the branch's environment.

    Exit code 3 when dbt tests fail (the environment is built and usable).
    """
    from dataops_dev.environments import build_branch
    from dataops_dev.errors import BlockingFindings
    from dataops_dev.report._summary import short_sha

    with app.reporter() as reporter:
        info, record = build_branch(app.loaded, branch=branch, select=select, reporter=reporter)
    failed_tests = [
        n.unique_id
        for n in record.nodes
        if n.unique_id.startswith("test.") and n.status in ("fail", "error")
    ]
    if resolve_format(output_format, as_json) == "json":
        emit_json({"environment": info.to_dict(), "build": info.to_dict()["last_build"]})
    else:
        nodes = len([n for n in record.nodes if not n.unique_id.startswith("test.")])
        tests = len(record.nodes) - nodes
        click.echo(
            f"built {info.name} (branch {info.branch!r}, commit {short_sha(record.commit)}"
            f"{' + uncommitted changes' if record.dirty else ''}): {nodes} nodes, {tests} tests "
            f"in {record.timings.get('total', 0):.1f}s "
            f"(parse {record.timings.get('parse', 0):.1f}s, run {record.timings.get('run', 0):.1f}s, "
            f"test {record.timings.get('test', 0):.1f}s)"
        )
        click.echo(f"database: {info.database}")
    if failed_tests:
        raise BlockingFindings(
            f"{len(failed_tests)} dbt test(s) failed: {', '.join(t.split('.')[-2] for t in failed_tests[:5])}",
            "inspect them with `dbt test` against the environment, or run `dataops-dev review`",
        )
