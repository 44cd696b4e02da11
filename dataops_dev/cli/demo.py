"""`dataops-dev demo`: the whole flow on sample_project, from nothing."""

from __future__ import annotations

from pathlib import Path

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dataops-demo"),
    show_default=True,
    help="Where to put the demo project.",
)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Production size: 1.0 is about 1M orders.",
)
@click.option("--fresh", is_flag=True, help="Start over: delete the demo directory first.")
@click.option(
    "--backend",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="Where production, sample and environments live. spark: the Spark Connect server at "
    "$DATAOPS_SPARK_REMOTE, else a local one started under <dir>/.dataops/spark.",
)
@format_options(choices=("text", "json"))
@click.pass_obj
def demo(
    app: AppContext,
    directory: Path,
    scale: float,
    fresh: bool,
    backend: str,
    output_format: str,
    as_json: bool,
) -> None:
    """Generate sample_project's production, build it, and build a demo branch's environment."""
    from dataops_dev.demo import DEMO_SALT, run_demo

    with app.reporter() as reporter:
        result = run_demo(directory, scale=scale, fresh=fresh, reporter=reporter, backend=backend)
    from dataops_dev.cli.report import print_text
    from dataops_dev.cli.review import write_artifacts

    assert result.report is not None
    paths = write_artifacts(app.loaded_for(result.directory), result.report)
    if resolve_format(output_format, as_json) == "json":
        emit_json(
            {
                "verdict": result.report.verdict.value,
                "backend": result.backend,
                "spark_remote": result.spark_remote,
                "directory": str(result.directory),
                "production": str(result.production),
                "production_rows": result.production_rows,
                "branch": result.branch,
                "environment": result.environment,
                "environment_path": result.environment_path,
                "timings": {k: round(v, 3) for k, v in result.timings.items()},
                "reports": {k: str(v) for k, v in paths.items()},
            }
        )
        return
    print_text(result.report)
    rows = ", ".join(f"{table} {count:,}" for table, count in result.production_rows.items())
    click.echo("")
    click.echo(f"demo project      {result.directory}")
    where = f"Spark at {result.spark_remote}" if result.spark_remote else str(result.production)
    click.echo(f"production        {where}  ({rows})")
    click.echo(f"demo branch       {result.branch}:")
    for edit in result.edits:
        click.echo(f"                  - {edit.path}: {edit.why}")
    click.echo(f"environment       {result.environment}  ({result.environment_path})")
    for fmt, path in paths.items():
        click.echo(f"report ({fmt}){' ' * (10 - len(fmt))}{path}")
    click.echo(
        "timings           "
        + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.timings.items())
    )
    click.echo("")
    click.echo("next, in the demo project (the demo's masking salt is not a secret):")
    click.echo(f"  cd {directory} && export DATAOPS_SALT={DEMO_SALT}")
    click.echo("  dataops-dev tui                       # browse the review")
    click.echo("  dataops-dev decide list               # findings to approve or reject")
    click.echo("  dataops-dev deploy --dry-run          # what deploy would do")
