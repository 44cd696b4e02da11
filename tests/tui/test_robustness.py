"""What the TUI must survive and show right: error text with brackets (data, never markup),
failures that are not `DataopsError` in a deploy, a match of 99.96% (never "100.0%"), and a
lineage jump whose column is on the first row."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Static
from textual.widgets._toast import Toast

from dataops_dev.report.model import ColumnChange, Report
from dataops_dev.tui.app import DataopsApp
from dataops_dev.tui.panes import LineagePane
from dataops_dev.tui.progress import JobStatus
from dataops_dev.tui.screens import DeployPlanScreen
from dataops_dev.tui.session import ReviewSession
from tests.tui.conftest import drive
from tests.tui.factory import make_report


def _saved(directory: Path, report: Report) -> ReviewSession:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.json"
    path.write_text(report.to_json(), "utf-8")
    return ReviewSession(project_dir=directory, report_path=path)


def _message(app: DataopsApp) -> str:
    return str(app.query_one("#message", Static).render())


def test_job_errors_with_brackets_are_shown_literally(tmp_path: Path) -> None:
    # The path reads `…/x[/y]`: as markup, `[/y]` is a closing tag that raises MarkupError.
    project = tmp_path / "x[" / "y]"
    app = DataopsApp(_saved(project, make_report()))

    async def main() -> None:
        # Notifications on (run_test turns them off by default): the toast shows the error.
        async with app.run_test(size=(120, 30), notifications=True) as pilot:
            await pilot.pause()
            await pilot.press("i")  # impact needs the project: there is no dbt_project.yml
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.pause()
            expected = f"no dbt_project.yml in {project}"
            assert expected in _message(app)
            assert not app.query_one(JobStatus).has_class("-running")
            toasts = [str(toast.render()) for toast in app.screen.query(Toast)]
            assert any(expected in toast for toast in toasts), toasts
            assert app.is_running

    asyncio.run(main())


class LoaderBug(RuntimeError):
    """Stands for a bug in a library under the session: an error outside the `DataopsError` tree."""


def _broken_session(directory: Path) -> ReviewSession:
    def load() -> Any:
        raise LoaderBug("the configuration loader crashed")

    session = _saved(directory, make_report())
    return ReviewSession(project_dir=directory, report_path=session.report_path, load=load)


def test_deploy_plan_survives_errors_outside_the_error_tree(tmp_path: Path) -> None:
    app = DataopsApp(_broken_session(tmp_path / "project"))

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await pilot.press("p")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, DeployPlanScreen)
        assert "LoaderBug" in str(app.screen.query_one("#plan", Static).render())
        assert app.screen.query_one("#confirm", Button).disabled
        await pilot.press("escape")
        assert app.is_running

    drive(app, scenario)


def test_deploy_survives_errors_outside_the_error_tree(tmp_path: Path) -> None:
    app = DataopsApp(_broken_session(tmp_path / "project"))

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        assert app.report is not None
        app.run_deploy(app.report)  # what confirming the plan starts
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "LoaderBug" in _message(app)
        assert not app.query_one(JobStatus).has_class("-running")
        assert app.is_running

    drive(app, scenario)


def test_a_near_match_never_reads_100_percent(tmp_path: Path) -> None:
    report = make_report()
    stg_orders = report.model("stg_orders")
    assert stg_orders.diff is not None
    near = ColumnChange("amount", 1, 2500, 99.96)
    diff = dataclasses.replace(
        stg_orders.diff,
        columns=tuple(near if c.name == "amount" else c for c in stg_orders.diff.columns),
    )
    models = tuple(
        dataclasses.replace(m, diff=diff) if m.name == "stg_orders" else m for m in report.models
    )
    app = DataopsApp(_saved(tmp_path / "project", dataclasses.replace(report, models=models)))

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        app.show_model("stg_orders")
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one("#columns-table", DataTable)
        row = table.get_row("amount")
        assert str(row[1]) == "1"
        assert str(row[2]) == "99.9%"

    drive(app, scenario, size=(160, 48))


def test_lineage_jump_to_a_column_on_the_first_row_stays_there(tmp_path: Path) -> None:
    app = DataopsApp(_saved(tmp_path / "project", make_report()))

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await pilot.press("5")
        await pilot.pause()
        app.query_one(LineagePane).show_node("fct_orders", "order_total")
        await pilot.pause()
        table = app.query_one("#lineage-table", DataTable)
        columns = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        # order_total is upstream (row 0) and downstream (a later row): the first one wins.
        assert columns[0] == "order_total" and columns.count("order_total") == 2
        assert table.cursor_row == 0

    drive(app, scenario, size=(160, 48))
