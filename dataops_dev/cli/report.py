"""`dataops-dev report`: re-render the last saved review report (or a report JSON file).

Formats: text (rich), json (the contract, `schema_version`), markdown (the PR comment), html.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import click

from dataops_dev.cli import AppContext, format_options, resolve_format

FORMATS = ("text", "json", "markdown", "html")
MIN_BUDGET = 2_000
"""Below this a markdown body has no room for the verdict and the next commands."""


def check_budget(budget: int | None) -> None:
    """`--budget` of `report` and `comment`: a UsageError when too small to say anything."""
    if budget is not None and budget < MIN_BUDGET:
        from dataops_dev.errors import UsageError

        raise UsageError(
            f"--budget {budget:,} leaves no room for the verdict (the minimum is {MIN_BUDGET:,})",
            f"pass --budget {MIN_BUDGET} or more, or leave it out (60,000 by default)",
        )


def load_report(app: AppContext, report_path: Path | None) -> Any:
    """`--report PATH` as written, else the current branch's last review with approvals applied.
    Either may be read when its integrity tag is missing or wrong: stderr says it is unverified."""
    if report_path is not None:
        if not report_path.exists():
            from dataops_dev.errors import UsageError

            raise UsageError(
                f"no report file {report_path}",
                "run `dataops-dev review`; it writes .dataops/reports/<env>/report.json",
            )
        report = _read_report_file(app, report_path)
    else:
        from dataops_dev.review import load_last_report

        report = load_last_report(app.loaded)
    if report.integrity.problem:
        click.echo(
            f"warning: unverified report: {report.integrity.problem}; "
            "`dataops-dev deploy` will refuse it (run `dataops-dev review`)",
            err=True,
        )
    return report


def _read_report_file(app: AppContext, path: Path) -> Any:
    """The report at `path`, its tag checked when a project (and its salt) is at hand."""
    from dataops_dev.errors import DataopsError
    from dataops_dev.report.model import Report
    from dataops_dev.review import load_report_file

    try:
        loaded = app.loaded
    except DataopsError:
        return Report.load(path)  # outside a project: read, unchecked
    return load_report_file(loaded, path)


def actions_run_url(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The current GitHub Actions run page (where the workflow uploads the full report)."""
    server = environ.get("GITHUB_SERVER_URL")
    repo = environ.get("GITHUB_REPOSITORY")
    run = environ.get("GITHUB_RUN_ID")
    if server and repo and run:
        return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"
    return None


def markdown_options(budget: int | None) -> Any:
    from dataops_dev.report.markdown import DEFAULT_BUDGET, MarkdownOptions

    url = actions_run_url(os.environ)
    return MarkdownOptions(
        budget=budget or DEFAULT_BUDGET,
        artifact_hint=(
            "the full report in this workflow run's artifacts"
            if url
            else "the full report (`dataops-dev report --format html`)"
        ),
        artifact_url=url,
    )


def render_string(report: Any, fmt: str, *, budget: int | None = None, width: int = 120) -> str:
    """The report as a string in `fmt` (text without colour: it is going to a file)."""
    if fmt == "json":
        return str(report.to_json()) + "\n"
    if fmt == "markdown":
        from dataops_dev.report.markdown import render_markdown

        return render_markdown(report, markdown_options(budget))
    if fmt == "html":
        from dataops_dev.report.html import render_html

        return render_html(report)
    from rich.console import Console

    from dataops_dev.report.text import render_text

    buffer = io.StringIO()
    render_text(report, Console(file=buffer, width=width, no_color=True, force_terminal=False))
    return buffer.getvalue()


@click.command()
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A report JSON file (default: the current branch's last review).",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@click.option("--budget", type=int, help="Markdown: maximum characters (default 60,000).")
@format_options(choices=FORMATS)
@click.pass_obj
def report(
    app: AppContext,
    report_path: Path | None,
    output: Path | None,
    budget: int | None,
    output_format: str,
    as_json: bool,
) -> None:
    """Show the last review report again, as text, json, markdown or html."""
    check_budget(budget)
    fmt = resolve_format(output_format, as_json)
    emit(load_report(app, report_path), fmt, output, budget=budget)


def print_text(report: Any) -> None:
    """The text report on stdout, in colour when it is a terminal."""
    from dataops_dev.cli.console import stdout_console
    from dataops_dev.report.text import render_text

    render_text(report, stdout_console())


def emit(report: Any, fmt: str, output: Path | None, *, budget: int | None = None) -> None:
    """The report in `fmt` to `output` (atomically) or to stdout."""
    if output is not None:
        from dataops_dev.atomic import write_text_atomic

        text = render_string(report, fmt, budget=budget)
        try:
            write_text_atomic(output, text)
        except OSError as exc:  # /proc/version, a directory we cannot write, a full disk
            from dataops_dev.errors import UsageError

            raise UsageError(
                f"cannot write --output {output}: {exc.strerror or exc}",
                "pass --output a file in a directory you can write, or leave it out for stdout",
            ) from None
        click.echo(f"wrote {output}", err=True)
    elif fmt == "text":
        print_text(report)
    else:
        click.echo(render_string(report, fmt, budget=budget), nl=False)
