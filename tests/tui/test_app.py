"""Pilot tests: the real app over a saved report — navigation, every tab, decisions (the
approvals file changes), filter, lineage jumps, help, theme, command palette, deploy plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Label, Static, TabbedContent

from dataops_dev.report.model import Decision, Report
from dataops_dev.tui.app import DataopsApp
from dataops_dev.tui.screens import DecideScreen, DeployPlanScreen, HelpScreen
from dataops_dev.tui.session import ReviewSession
from dataops_dev.tui.tree import ChangeTree
from tests.tui.conftest import drive


async def press(pilot: Pilot[None], *keys: str) -> None:
    """Press keys, then let the messages they cause settle."""
    await pilot.press(*keys)
    await pilot.pause()


def static_text(app: DataopsApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def shown_models(app: DataopsApp) -> list[str]:
    return [n.data.name for n in app.query_one(ChangeTree).model_nodes() if n.data]


def test_opens_on_the_report_and_navigates_the_tree(make_app: Callable[..., DataopsApp]) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        assert app.report is not None and app.problem is None
        assert "BLOCKED" in static_text(app, "#header")
        assert shown_models(app)[:4] == [
            "stg_orders",
            "fct_orders",
            "dim_customers",
            "daily_revenue",
        ]
        assert app.selected == "stg_orders"
        assert "stg_orders" in static_text(app, "#summary-text")
        await press(pilot, "down")
        assert app.selected == "fct_orders"
        assert "fct_orders" in static_text(app, "#summary-text")
        # Exposures are not models: the right side keeps the last model.
        await press(pilot, "down", "down", "down")
        assert app.selected == "daily_revenue"
        await press(pilot, "down")
        assert app.selected == "daily_revenue"
        await pilot.click(ChangeTree, offset=(4, 9))
        assert app.selected == "dim_products"

    drive(make_app(), scenario)


def test_every_tab_shows_the_selected_model(make_app: Callable[..., DataopsApp]) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        tabs = app.query_one(TabbedContent)
        expected = {
            "1": ("summary", "#summary-text", "rows can change"),
            "2": ("schema", "#schema-note", "1 added"),
            "3": ("rows", "#rows-text", "1,200 → 1,164"),
            "4": ("columns", "#column-examples", "398 of 1,164 changed"),
            "5": ("lineage", "#lineage-title", "4 upstream"),
            "6": ("tests", "#test-sql", "where status not in ('placed'"),
            "7": ("sql", "#sql-unified", "+    channel"),
        }
        for key, (tab, selector, needle) in expected.items():
            await press(pilot, key)
            assert tabs.active == tab
            assert needle in static_text(app, selector), (tab, static_text(app, selector))
        assert app.query_one("#schema-table", DataTable).row_count == 2
        assert app.query_one("#rows-table", DataTable).row_count == 3
        assert app.query_one("#columns-table", DataTable).row_count == 3
        assert app.query_one("#tests-table", DataTable).row_count == 2
        # The SQL tab switches to side by side.
        app.query_one("#pane-sql").focus()
        await press(pilot, "s")
        assert app.query_one("#pane-sql").has_class("-split")
        assert "channel" in static_text(app, "#sql-head")
        # A model without a diff says why instead of an empty table.
        await press(pilot, "3")
        app.query_one(ChangeTree).select_model("stg_stores")
        await pilot.pause()
        assert "metadata only" in static_text(app, "#rows-text")

    drive(make_app(), scenario, size=(160, 48))


def test_approving_a_finding_writes_the_approvals_file(
    make_app: Callable[..., DataopsApp], project: Path
) -> None:
    approvals = project / "dataops.approvals.yml"

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        finding = app.selected_finding()
        assert finding is not None and finding.blocking
        await press(pilot, "a")
        assert isinstance(app.screen, DecideScreen)
        await press(pilot, *"cancelled orders are out of scope")
        await press(pilot, "enter")
        assert not isinstance(app.screen, DecideScreen)
        data = yaml.safe_load(approvals.read_text("utf-8"))
        [entry] = data["decisions"]
        assert entry["fingerprint"] == finding.fingerprint
        assert entry["decision"] == "approved"
        assert entry["note"] == "cancelled orders are out of scope"
        assert app.report is not None
        assert app.report.findings[0].approval is not None
        assert len(app.report.blocking) == 2
        # Approve the remaining blocking findings: the verdict in the header turns to PASS.
        app.query_one("#findings", DataTable).focus()
        await press(pilot, "down", "a", *"known bad values, fixed upstream", "enter")
        app.query_one(ChangeTree).select_model("fct_orders")
        await pilot.pause()
        await press(pilot, "a", *"expected drop", "enter")
        assert app.report.verdict.value == "pass", app.report.blocking
        assert "PASS" in static_text(app, "#header")
        assert len(yaml.safe_load(approvals.read_text("utf-8"))["decisions"]) == 3

    drive(make_app(), scenario)
    # A fresh start reads the same decisions back from the file.
    session = ReviewSession(project_dir=project, report_path=project / "report.json")
    assert session.load_report().verdict.value == "pass"


def test_approving_a_blocking_finding_needs_a_note(
    make_app: Callable[..., DataopsApp], project: Path
) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "a", "enter")
        assert isinstance(app.screen, DecideScreen)
        assert "needs a note" in str(app.screen.query_one("#decide-error", Label).render())
        await press(pilot, "escape")
        assert not isinstance(app.screen, DecideScreen)

    drive(make_app(), scenario)
    assert not (project / "dataops.approvals.yml").exists()


def test_rejecting_a_finding_keeps_it_blocking(
    make_app: Callable[..., DataopsApp], project: Path
) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "x", *"filter must keep cancelled orders", "enter")
        assert app.report is not None
        approval = app.report.findings[0].approval
        assert approval is not None and approval.decision is Decision.REJECTED
        assert len(app.report.blocking) == 3

    drive(make_app(), scenario)
    [entry] = yaml.safe_load((project / "dataops.approvals.yml").read_text("utf-8"))["decisions"]
    assert entry["decision"] == "rejected"


def test_filter_models(make_app: Callable[..., DataopsApp]) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "slash")
        assert isinstance(app.focused, Input)
        await press(pilot, *"dim_")
        # Changed models stay when one of their impacted children matches.
        assert shown_models(app) == ["stg_orders", "dim_customers", "dim_products"]
        await press(pilot, "enter")
        assert isinstance(app.focused, ChangeTree)
        # Focusing the box selects its text: typing replaces the filter.
        await press(pilot, "slash", *"products", "enter")
        assert app.query_one("#filter", Input).value == "products"
        assert shown_models(app) == ["dim_products"]
        assert app.selected == "dim_products"
        await press(pilot, "slash", "backspace", "enter")
        assert len(shown_models(app)) == 6

    drive(make_app(), scenario)


def test_lineage_rows_jump_to_the_other_model(make_app: Callable[..., DataopsApp]) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "5")
        table = app.query_one("#lineage-table", DataTable)
        table.focus()
        rows = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
        assert "fct_orders.status" in rows
        table.move_cursor(row=rows.index("fct_orders.status"))
        await press(pilot, "enter")
        assert app.selected == "fct_orders"
        assert "fct_orders" in static_text(app, "#lineage-title")
        # The cursor lands on the column we came for; its upstream is walkable back.
        row = table.get_row_at(table.cursor_row)
        assert str(row[1]) == "status" and str(row[3]) == "stg_orders.status"
        # A node outside the change set (a source) is shown in the lineage tab alone.
        await press(pilot, "enter")
        assert app.selected == "stg_orders"
        table.move_cursor(row=0)
        await press(pilot, "enter")
        assert app.selected == "stg_orders"
        assert static_text(app, "#lineage-title").startswith("shop.orders")

    drive(make_app(), scenario, size=(160, 48))


def test_help_theme_and_command_palette(make_app: Callable[..., DataopsApp]) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await press(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)
        assert app.theme == "textual-dark"
        await press(pilot, "t")
        assert app.theme == "textual-light"
        await press(pilot, "ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await press(pilot, *"Show SQL")
        await pilot.pause(0.3)
        await press(pilot, "enter")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "sql"

    drive(make_app(), scenario)


def test_deploy_plan_screen_is_blocked_by_unapproved_findings(
    make_app: Callable[..., DataopsApp],
) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "p")
        assert isinstance(app.screen, DeployPlanScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one("#confirm", Button).disabled
        await press(pilot, "escape")
        assert not isinstance(app.screen, DeployPlanScreen)

    drive(make_app(), scenario)


def test_without_a_report_the_app_says_what_to_run(tmp_path: Path) -> None:
    app = DataopsApp(ReviewSession(project_dir=tmp_path))

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        assert app.report is None and app.problem
        assert app.problem in static_text(app, "#header")
        assert "press r" in static_text(app, "#message")

    drive(app, scenario)


def test_renders_hostile_and_large_reports(tmp_path: Path) -> None:
    from tests.report.factory import large_report, small_report

    for report in (small_report(), large_report(120)):
        app = DataopsApp(ReviewSession(project_dir=tmp_path), report=report)

        async def scenario(app: DataopsApp, pilot: Pilot[None], report: Report = report) -> None:
            for key in "1234567":
                await press(pilot, key)
            await press(pilot, "down", "down", "down")
            for key in "1234567":
                await press(pilot, key)
            assert app.selected in {m.name for m in report.models}

        drive(app, scenario)
