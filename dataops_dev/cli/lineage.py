"""`dataops-dev lineage MODEL[.COLUMN]` and `dataops-dev impact`: column lineage and the static
change set (classification, impacted models/columns/exposures) as text, JSON or markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format


def _split_target(manifest: Any, target: str) -> tuple[Any, str | None]:
    """`MODEL`, `MODEL.COLUMN`, `SOURCE.TABLE` or `SOURCE.TABLE.COLUMN` -> (node, column).

    An unknown name is a usage error (exit 2), like an unknown column."""
    from dataops_dev.errors import ProjectError, UsageError

    if manifest.lookup(target) is None and "." in target:
        # Looked up without `find`'s did-you-mean, which costs a fuzzy match over every name.
        name, column = target.rsplit(".", 1)
        node = manifest.lookup(name)
        if node is not None:
            return node, column
    try:
        return manifest.find(target), None
    except ProjectError as whole_error:
        raise UsageError(whole_error.message, whole_error.hint) from None


def _project_dir_option(function: Any) -> Any:
    """`--project-dir` after the command too (`dataops-dev impact --project-dir transform`)."""
    return click.option(
        "--project-dir",
        "project_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="The dbt project (default: found from the current directory).",
    )(function)


def _for_project(app: AppContext, project_dir: Path | None) -> AppContext:
    if project_dir is None:
        return app
    import dataclasses

    return dataclasses.replace(app, project_dir=project_dir, _loaded=None)


def _working_manifest(app: AppContext, reporter: Any) -> tuple[Path, str, bool]:
    """The manifest of the working tree as it is now: target/manifest.json when it was written
    after every project file changed, else a `dbt parse` of the tree (cached by content)."""
    from dataops_dev.dbt import parse

    loaded = app.loaded
    local = loaded.project_dir / "target" / "manifest.json"
    if local.is_file():
        newest = parse.newest_change(loaded.project_dir, skip=(loaded.state_dir,))
        if local.stat().st_mtime >= newest:
            return local, "up to date with the working tree", False
    parsed = parse.working_manifest(loaded, reporter=reporter)
    why = "parsed from the working tree"
    if local.is_file():
        why += " (target/manifest.json is older than the project files)"
    return parsed.path, why + (", cached" if parsed.reused else ""), True


@click.command()
@click.argument("target", metavar="MODEL[.COLUMN]")
@click.option("--upstream", "direction", flag_value="upstream", help="Only what feeds it.")
@click.option("--downstream", "direction", flag_value="downstream", help="Only what it feeds.")
@click.option(
    "--manifest",
    "manifest_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="manifest.json to read (default: the working tree's, parsed when it changed).",
)
@format_options(choices=("text", "json"))
@_project_dir_option
@click.pass_obj
def lineage(
    app: AppContext,
    target: str,
    direction: str | None,
    manifest_path: Path | None,
    output_format: str,
    as_json: bool,
    project_dir: Path | None,
) -> None:
    """Column lineage of MODEL (or one column of it), upstream and/or downstream."""
    from dataops_dev.lineage import STAR, Focus, load_project_lineage

    app = _for_project(app, project_dir)
    loaded = app.loaded
    from dataops_dev.lineage import RenderMemo

    def focus(manifest: Any) -> Focus:
        # Only what the answer walks: the node's ancestors, and unless --upstream what its
        # column reaches downstream; an unknown name fails before any parsing.
        node, column = _split_target(manifest, target)
        return Focus(node.unique_id, column, downstream=direction != "upstream")

    with app.reporter() as reporter:
        fixed = False
        if manifest_path is None:
            manifest_path, why, fixed = _working_manifest(app, reporter)
        else:
            why = "given with --manifest"
        if not app.quiet:
            click.echo(f"lineage from {manifest_path} ({why})", err=True)
        manifest, project_lineage = load_project_lineage(
            manifest_path,
            project_dir=loaded.project_dir,
            state_dir=loaded.state_dir,
            reporter=reporter,
            # A parse cached by content hash is fixed with its files: keep its renders.
            render_memo=RenderMemo.beside(manifest_path) if fixed else None,
            focus=focus,
        )
    node, column = _split_target(manifest, target)
    from dataops_dev.errors import UsageError

    columns = project_lineage.schemas.get(node.unique_id)
    if column is not None and columns is not None and column not in columns and column != STAR:
        import difflib

        close_matches = difflib.get_close_matches(column, list(columns), n=3)
        raise UsageError(
            f"{node.display_name} has no column {column!r}",
            f"did you mean {', '.join(close_matches)}?"
            if close_matches
            else f"its columns: {', '.join(columns)}",
        )
    up = project_lineage.upstream(node.unique_id, column) if direction != "downstream" else []
    down = project_lineage.downstream(node.unique_id, column) if direction != "upstream" else []
    names = project_lineage.names
    model = project_lineage.models.get(node.unique_id)
    data = {
        "manifest": str(manifest_path),
        "node": node.display_name,
        "column": column,
        "direction": direction or "both",
        "columns": list(columns) if columns is not None else None,
        "unknown_reason": model.unknown_reason if model else None,
        "edges": [e.to_dict(names) for e in (*up, *down)],
        "upstream": [e.to_dict(names) for e in up],
        "downstream": [e.to_dict(names) for e in down],
        "stats": {
            "models": project_lineage.stats.models,
            "computed": project_lineage.stats.computed,
            "cached": project_lineage.stats.cached,
        },
    }
    if resolve_format(output_format, as_json) == "json":
        emit_json(data)
        return
    title = node.display_name + (f".{column}" if column else "")
    click.echo(title)
    if data["unknown_reason"]:
        click.echo(f"  (partly unknown: {data['unknown_reason']})")
    for label, edges in (("upstream", data["upstream"]), ("downstream", data["downstream"])):
        if direction and direction != label:
            continue
        click.echo(f"{label}: {len(edges) if edges else 'none'}")
        for edge in edges:
            click.echo(f"  {edge['from']}  --{edge['kind']}-->  {edge['to']}")


@click.command()
@click.option("--base", "base_ref", help="Git ref whose baseline manifest to compare against.")
@click.option(
    "--base-manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The production manifest.json to compare the working tree against.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["never", "breaking", "unknown"]),
    default="never",
    show_default=True,
    help="Exit 3 when a change is breaking (or, with `unknown`, breaking or unknown).",
)
@format_options()
@_project_dir_option
@click.pass_obj
def impact(
    app: AppContext,
    base_ref: str | None,
    base_manifest: Path | None,
    fail_on: str,
    output_format: str,
    as_json: bool,
    project_dir: Path | None,
) -> None:
    """Static change set of the working tree against a base: its manifest, or the base ref's
    tree parsed by dbt once (cached). No database."""
    from dataops_dev.errors import BlockingFindings
    from dataops_dev.impact import ChangeKind, analyze_impact, resolve_base

    app = _for_project(app, project_dir)
    loaded = app.loaded
    from dataops_dev.dbt.parse import ensure_packages

    with app.reporter() as reporter:
        base = resolve_base(loaded, base_manifest, base_ref=base_ref, reporter=reporter)
        if not app.quiet:
            click.echo(f"base: {base.manifest} ({base.origin})", err=True)
        ensure_packages(loaded, reporter=reporter)
        report = analyze_impact(
            loaded.project_dir,
            base.manifest,
            state_dir=loaded.state_dir,
            reporter=reporter,
            base_code_dir=base.code_dir,
        )
    fmt = resolve_format(output_format, as_json)
    if fmt == "json":
        emit_json(report.to_dict())
    elif fmt == "markdown":
        click.echo(render_markdown(report))
    else:
        click.echo(render_text(report))
    blocking = {ChangeKind.BREAKING} | ({ChangeKind.UNKNOWN} if fail_on == "unknown" else set())
    flagged = [m for m in report.models if m.change in blocking] if fail_on != "never" else []
    if flagged:
        raise BlockingFindings(*_fail_on_message(flagged))


def _fail_on_message(flagged: list[Any]) -> tuple[str, str]:
    """What `--fail-on` found (by kind, with the models) and what to run next."""
    from dataops_dev.impact import ChangeKind

    parts = []
    for kind in (ChangeKind.BREAKING, ChangeKind.UNKNOWN):
        names = [m.name for m in flagged if m.change is kind]
        if names:
            parts.append(f"{kind.value}: {_columns(names, 5)}")
    message = "the change set has " + "; ".join(parts)
    if any(m.change is ChangeKind.UNKNOWN for m in flagged):
        # Unknown: the SQL could not be classified statically; only the data diff tells.
        hint = "`dataops-dev review` diffs their data; each model's reasons say why it is unknown"
    else:
        hint = "`dataops-dev review` diffs their data and lists the findings to approve"
    return message, hint


def _columns(values: Any, limit: int = 8) -> str:
    values = list(values)
    if len(values) > limit:
        return ", ".join(values[:limit]) + f", … (+{len(values) - limit})"
    return ", ".join(values)


def _changed(model: Any) -> str:
    if model.rows_affected:
        return "all (rows may differ)"
    return _columns(model.changed_columns) or "—"


def render_text(report: Any) -> str:
    lines: list[str] = []
    if not report.models:
        lines.append("no model changes")
    for model in report.models:
        flags = []
        if model.contract_enforced:
            flags.append("contract BROKEN" if model.contract_broken else "contracted")
        if model.exposures:
            flags.append("exposures: " + ", ".join(model.exposures))
        suffix = f"  [{'; '.join(flags)}]" if flags else ""
        lines.append(f"{model.change.value:<9} {model.name} ({model.status.value}){suffix}")
        for reason in model.reasons:
            lines.append(f"          - {reason}")
        impacted = model.impacted
        if impacted.models:
            lines.append(
                f"          impacts {len(impacted.models)} models: {_columns(impacted.models)}"
            )
            lines.append(f"          columns: {_columns(impacted.columns)}")
        if impacted.contracted_models:
            lines.append(
                "          contracted downstream: " + ", ".join(impacted.contracted_models)
            )
    if report.unchanged:
        lines.append("no change (formatting/comments only): " + ", ".join(report.unchanged))
    if report.no_diff_needed:
        lines.append(f"no data diff needed: {_columns(report.no_diff_needed, 12)}")
    return "\n".join(lines)


def render_markdown(report: Any) -> str:
    lines = [
        "| model | change | changed columns | impacted models | impacted exposures |",
        "|---|---|---|---|---|",
    ]
    for model in report.models:
        name = f"`{model.name}`" + (" 🔒" if model.contract_enforced else "")
        lines.append(
            f"| {name} | **{model.change.value}** | {_changed(model)} | "
            f"{_columns(model.impacted.models) or '—'} | {', '.join(model.impacted.exposures) or '—'} |"
        )
    if not report.models:
        lines.append("| — | no model changes | | | |")
    details = [m for m in report.models if m.reasons]
    if details:
        lines.append("")
        lines.append("<details><summary>Why</summary>")
        lines.append("")
        for model in details:
            lines.append(f"- `{model.name}`: " + "; ".join(model.reasons))
        lines.append("")
        lines.append("</details>")
    if report.unchanged:
        lines.append("")
        lines.append(
            "Formatting/comment-only edits (no change): "
            + ", ".join(f"`{n}`" for n in report.unchanged)
        )
    return "\n".join(lines)
