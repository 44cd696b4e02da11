"""`dataops-dev sample` (build or reuse the masked sample) and `dataops-dev init` (propose config)."""

from __future__ import annotations

from typing import Any

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format


def _coverage_rows(record: Any) -> list[list[str]]:
    rows = []
    for t in record.tables:
        masked = ", ".join(f"{c}: {r}" for c, r in t.masked) or "-"
        rows.append(
            [
                t.table,
                t.role.value,
                f"{t.production_rows:,}",
                f"{t.sampled_rows:,}",
                f"{t.pct:.1f}%",
                str(t.orphans),
                masked,
            ]
        )
    return rows


_HEADERS = ["table", "role", "production", "sampled", "%", "orphans", "masked (transformer)"]


@click.command()
@click.option("--refresh", is_flag=True, help="Rebuild even when a sample of this snapshot exists.")
@format_options()
@click.pass_obj
def sample(app: AppContext, refresh: bool, output_format: str, as_json: bool) -> None:
    """Build (or reuse) the masked, FK-closed sample of production's sources.

    Ends with a coverage table: rows in production, rows sampled, orphans (always 0) and the
    masked columns with their transformer.
    """
    from dataops_dev.sources import ensure_sample

    with app.reporter() as reporter:
        record = ensure_sample(app.loaded, refresh=refresh, reporter=reporter)
    fmt = resolve_format(output_format, as_json)
    if fmt == "json":
        emit_json({**record.to_json(), "reused": record.reused, "notes": list(record.notes)})
        return
    footer = [
        f"sample {record.sample_id} ({'reused' if record.reused else 'built'}) at {record.location}",
        f"snapshot {record.snapshot_time}; salt {record.salt_env} "
        f"(fingerprint {record.salt_fingerprint}); "
        + ", ".join(f"{k} {v}" for k, v in sorted(record.versions.items())),
    ]
    if not record.reused and record.timings:
        line = ", ".join(f"{k} {v:.1f}s" for k, v in record.timings.items())
        if record.mask_rows_per_s is not None:
            rate = record.mask_rows_per_s / 1e6
            line += f"; masked and stored {record.masked_rows:,} rows at {rate:.2f}M rows/s"
        footer.append(line)
    if record.files:
        footer.append(f"read from files and sampled like tables: {', '.join(record.files)}")
    footer.extend(record.notes)
    footer.append(f"masking policy: {record.policy}")
    for column, transformer, why in record.decided:
        footer.append(f"decided {column}: {transformer} ({why})")
    if record.new_columns:
        footer.append(
            f"{len(record.new_columns)} column(s) not in the lock file: run `dataops-dev init`"
        )
    rows = _coverage_rows(record)
    if fmt == "markdown":
        click.echo("| " + " | ".join(_HEADERS) + " |")
        click.echo("|" + "---|" * len(_HEADERS))
        for row in rows:
            click.echo("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        click.echo("")
        for line in footer:
            click.echo(f"- {line}")
        return
    from rich.table import Table

    from dataops_dev.cli.console import stdout_console

    table = Table(*_HEADERS, box=None, header_style="bold")
    for column in ("production", "sampled", "%", "orphans"):
        table.columns[_HEADERS.index(column)].justify = "right"
    for row in rows:
        style = "red" if row[5] != "0" else None
        table.add_row(*row, style=style)
    console = stdout_console()
    console.print(table)
    for line in footer:
        console.print(line, style="dim")


@click.command()
@click.option(
    "--force", is_flag=True, help="Propose every decision afresh (ignore the current lock file)."
)
@format_options()
@click.pass_obj
def init(app: AppContext, force: bool, output_format: str, as_json: bool) -> None:
    """Propose a commented dataops_dev.yml (if absent) and write dataops.lock.yml.

    The lock file holds the FK graph between sources (and where each edge came from), keys,
    anchors and every column's PII classification with its reason, for review.
    """
    from dataops_dev.init import run_init

    with app.reporter() as reporter:
        result = run_init(app.loaded, force=force, reporter=reporter)
    fmt = resolve_format(output_format, as_json)
    data = result.to_dict()
    if fmt == "json":
        emit_json(data)
        return
    verb = "wrote" if result.config_written else "kept"
    lines = [
        f"{verb} {result.config_path}",
        f"wrote {result.lock_path}: {data['tables']} source tables, "
        f"{data['foreign_keys']} foreign keys, anchors: {', '.join(data['anchors']) or 'none'}",
        *(
            [f"read from files and sampled like tables: {', '.join(data['file_sources'])}"]
            if data["file_sources"]
            else []
        ),
        *data["notes"],
    ]
    if fmt == "markdown":
        for line in lines:
            click.echo(f"- {line}")
        click.echo("")
        click.echo("| column | transformer | kind | reason |")
        click.echo("|---|---|---|---|")
        for c in data["masked_columns"]:
            click.echo(
                f"| {c['column']} | {c['transformer']} | {c['kind'] or ''} | {c['reason']} |"
            )
        return
    from rich.table import Table

    from dataops_dev.cli.console import stdout_console

    console = stdout_console()
    for line in lines:
        console.print(line)
    table = Table("masked column", "transformer", "kind", "reason", box=None, header_style="bold")
    for c in data["masked_columns"]:
        table.add_row(c["column"], c["transformer"], c["kind"] or "", c["reason"])
    console.print(table)
    console.print("review the proposal, then commit both files", style="dim")
