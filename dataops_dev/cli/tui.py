"""`dataops-dev tui`: the keyboard-driven review over the current branch's last report.

textual is imported only when the command runs, so other commands keep their fast start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dataops_dev.cli import AppContext

if TYPE_CHECKING:
    from dataops_dev.tui.session import ReviewSession


def make_session(app: AppContext, report_path: Path | None) -> ReviewSession:
    """The TUI's session over the CLI's own configuration loader: it honours --config and the
    flags' overrides, and loads when first needed (browsing a --report needs none; a bare
    --report outside a project still browses)."""
    from dataops_dev.tui.session import ReviewSession

    return ReviewSession(
        project_dir=app.project_dir, report_path=report_path, load=lambda: app.loaded
    )


@click.command()
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A saved report.json to open (default: the current branch's last report).",
)
@click.option(
    "--theme",
    type=click.Choice(["dark", "light"]),
    default="dark",
    show_default=True,
    help="Colour theme (`t` toggles it in the app).",
)
@click.option("--exit-after-first-paint", is_flag=True, hidden=True)
@click.option("--headless", is_flag=True, hidden=True, help="Run without a terminal (benchmarks).")
@click.pass_obj
def tui(
    app: AppContext,
    report_path: Path | None,
    theme: str,
    exit_after_first_paint: bool,
    headless: bool,
) -> None:
    """Review the last report in a terminal UI: browse, decide, re-run, see the deploy plan."""
    from dataops_dev.tui.app import DataopsApp

    if report_path is None:
        # The last report is found through the project: a missing one fails here, as a
        # command error, rather than inside the app.
        app.loaded  # noqa: B018
    tui_app = DataopsApp(
        make_session(app, report_path),
        theme=f"textual-{theme}",
        exit_after_first_paint=exit_after_first_paint,
    )
    tui_app.run(headless=headless)
    if exit_after_first_paint:
        # For benchmarks/tui_startup.py: when the first frame was painted (epoch seconds).
        click.echo(json.dumps({"first_paint": tui_app.first_paint_at}), err=True)
