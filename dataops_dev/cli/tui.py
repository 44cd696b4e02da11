"""`dataops-dev tui`: the keyboard-driven review over the current branch's last report.

textual is imported only when the command runs, so other commands keep their fast start-up.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from dataops_dev.cli import AppContext


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
    from dataops_dev.errors import DataopsError
    from dataops_dev.tui.app import DataopsApp
    from dataops_dev.tui.session import ReviewSession

    project_dir = app.project_dir
    if report_path is None or project_dir is None:
        # A project is needed to find the last report and to record decisions; a bare
        # --report outside a project still browses (decisions then say where to run).
        try:
            loaded = app.loaded
        except DataopsError:
            if report_path is None:
                raise
            loaded = None
    else:
        loaded = None
    session = ReviewSession(project_dir=project_dir, report_path=report_path, loaded=loaded)
    tui_app = DataopsApp(
        session,
        theme=f"textual-{theme}",
        exit_after_first_paint=exit_after_first_paint,
    )
    tui_app.run(headless=headless)
    if exit_after_first_paint:
        # For benchmarks/tui_startup.py: when the first frame was painted (epoch seconds).
        click.echo(json.dumps({"first_paint": tui_app.first_paint_at}), err=True)
