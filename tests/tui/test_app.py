"""Pilot tests: the real app over the real sample_project report — navigation, every tab,
decisions (the approvals file changes), filter, lineage jumps, help, theme, command palette,
deploy plan; the factory report covers the tabs the real review leaves empty."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Label, Static, TabbedContent

from dataops_dev.report.model import Decision, Report
from dataops_dev.tui.app import TABS, DataopsApp
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


def test_opens_on_the_report_and_navigates_the_tree(
    make_app: Callable[..., DataopsApp], report: Report
) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        assert app.report is not None and app.problem is None
        header = static_text(app, "#header")
        assert "BLOCKED" in header and "demo/segment-thresholds" in header
        assert "2026-11-21 10:45" in header  # the report's time, not the clock's
        tree = app.query_one(ChangeTree)
        labels = [str(node.label) for node in tree.root.children]
        assert labels[:4] == ["breaking (1)", "partial (1)", "additive (1)", "metadata (0)"]
        assert labels[4:] == ["impacted (2)", "exposures (2)"]
        # Every model of the report is reachable; impacted ones sit under what changed them.
        assert set(shown_models(app)) == {m.name for m in report.models}
        fct_orders = next(n for n in tree.model_nodes() if n.data and n.data.name == "fct_orders")
        assert [str(c.label).split(" ")[1] for c in fct_orders.children][:4] == [
            "customer_lifetime_value",
            "customer_segments",
            "daily_revenue",
            "store_performance",
        ]
        assert app.selected == "store_performance"
        assert "store_performance" in static_text(app, "#summary-text")
        # The exposure under it is not a model: the right side keeps the model.
        await press(pilot, "down")
        assert app.selected == "store_performance"
        await press(pilot, "down", "down")
        assert app.selected == "fct_orders"
        assert "partial" in static_text(app, "#summary-text")
        await press(pilot, "down")
        assert app.selected == "customer_lifetime_value"
        # The mouse works too: line 12 is customer_segments under "additive".
        await pilot.click(ChangeTree, offset=(6, 12))
        await pilot.pause()
        assert app.selected == "customer_segments"

    drive(make_app(), scenario)


def test_every_tab_of_every_model_of_the_real_report(
    make_app: Callable[..., DataopsApp], report: Report
) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        tabs = app.query_one(TabbedContent)
        tree = app.query_one(ChangeTree)
        for position, model in enumerate(report.models):
            tree.select_model(model.name)
            await pilot.pause()
            assert app.selected == model.name
            # Every tab opens (on the first model; the rest check the tabs with data).
            for index, (tab_id, _, _) in enumerate(TABS if position == 0 else (), 1):
                await press(pilot, str(index))
                assert tabs.active == tab_id
            assert model.diff is not None
            rows = model.diff.rows
            await press(pilot, "3")
            assert f"rows  {rows.base:,} → {rows.head:,}" in static_text(app, "#rows-text")
            assert app.query_one("#rows-table", DataTable).row_count == len(model.diff.row_samples)
            await press(pilot, "4")
            columns = app.query_one("#columns-table", DataTable)
            assert columns.row_count >= len(model.diff.columns)
            changed = model.diff.changed_columns
            if changed and changed[0].examples:
                assert f"{changed[0].name}: {changed[0].changed:,} of" in static_text(
                    app, "#column-examples"
                )
            await press(pilot, "6")
            assert app.query_one("#tests-table", DataTable).row_count == len(model.tests)
        # customer_segments gained a column: the Schema tab lists it.
        tree.select_model("customer_segments")
        await press(pilot, "2")
        assert "1 added" in static_text(app, "#schema-note")
        assert "is_high_value" in str(app.query_one("#schema-table", DataTable).get_row_at(0)[1])

    drive(make_app(), scenario, size=(160, 48))


def test_tabs_with_schema_tests_and_sql_on_the_factory_report(
    make_factory_app: Callable[..., DataopsApp],
) -> None:
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
        # The failing test comes first, with its SQL underneath.
        assert str(app.query_one("#tests-table", DataTable).get_row_at(0)[0]) == "fail"
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

    drive(make_factory_app(), scenario, size=(160, 48))


def test_approving_a_finding_writes_the_approvals_file(
    make_app: Callable[..., DataopsApp], project: Path
) -> None:
    approvals = project / "dataops.approvals.yml"

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        finding = app.selected_finding()
        assert finding is not None and finding.blocking
        assert finding.title == "breaking change to store_performance"
        await press(pilot, "a")
        assert isinstance(app.screen, DecideScreen)
        await press(pilot, *"cancelled orders leave the ranking on purpose", "enter")
        assert not isinstance(app.screen, DecideScreen)
        data = yaml.safe_load(approvals.read_text("utf-8"))
        [entry] = data["decisions"]
        assert entry["fingerprint"] == finding.fingerprint
        assert entry["decision"] == "approved"
        assert entry["model"] == "store_performance"
        assert entry["note"] == "cancelled orders leave the ranking on purpose"
        assert app.report is not None
        assert app.report.model("store_performance").findings[0].approval is not None
        # That was the only blocking finding: the verdict in the header turns to PASS.
        assert app.report.verdict.value == "pass"
        assert "PASS" in static_text(app, "#header")
        # Warnings can be acknowledged too (no note needed): move in the findings table.
        app.query_one("#findings", DataTable).focus()
        await press(pilot, "down", "a", "enter")
        assert len(yaml.safe_load(approvals.read_text("utf-8"))["decisions"]) == 2

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
        await press(pilot, "x", *"ranking must keep cancelled orders", "enter")
        assert app.report is not None
        approval = app.report.findings[0].approval
        assert approval is not None and approval.decision is Decision.REJECTED
        assert len(app.report.blocking) == 1
        assert "rejected" in str(app.query_one("#findings", DataTable).get_row_at(0)[2])

    drive(make_app(), scenario)
    [entry] = yaml.safe_load((project / "dataops.approvals.yml").read_text("utf-8"))["decisions"]
    assert entry["decision"] == "rejected"


def test_filter_models(make_app: Callable[..., DataopsApp]) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "slash")
        assert isinstance(app.focused, Input)
        await press(pilot, *"segments")
        # A changed model stays when one of its impacted children matches.
        assert shown_models(app) == ["fct_orders", "customer_segments", "customer_segments"]
        assert app.selected == "fct_orders"
        await press(pilot, "enter")
        assert isinstance(app.focused, ChangeTree)
        # Focusing the box selects its text: typing replaces the filter.
        await press(pilot, "slash", *"store_perf", "enter")
        assert app.query_one("#filter", Input).value == "store_perf"
        assert shown_models(app) == ["store_performance", "fct_orders", "store_performance"]
        assert app.selected == "fct_orders"  # still shown: the selection stays
        await press(pilot, "slash", "backspace", "enter")
        assert len(shown_models(app)) == 7

    drive(make_app(), scenario)


def test_lineage_rows_jump_to_the_other_model(make_app: Callable[..., DataopsApp]) -> None:
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "5")
        table = app.query_one("#lineage-table", DataTable)
        table.focus()
        rows = [
            (str(table.get_row_at(i)[1]), str(table.get_row_at(i)[3]))
            for i in range(table.row_count)
        ]
        target = rows.index(("net_revenue", "fct_orders.net_amount"))
        table.move_cursor(row=target)
        await press(pilot, "enter")
        assert app.selected == "fct_orders"
        assert static_text(app, "#lineage-title").startswith("fct_orders")
        # The cursor lands on the column we came for, upstream edges first.
        row = table.get_row_at(table.cursor_row)
        assert str(row[1]) == "net_amount" and str(row[0]) == "up"
        # Upstream of it is int_order_totals: outside the change set, still walkable here.
        other = str(row[3])
        await press(pilot, "enter")
        assert app.selected == "fct_orders"
        assert static_text(app, "#lineage-title").startswith(other.rpartition(".")[0])

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
        await press(pilot, *"Show Lineage")
        await pilot.pause(0.3)
        await press(pilot, "enter")
        assert app.query_one(TabbedContent).active == "lineage"

    drive(make_app(), scenario)


def test_deploy_plan_errors_are_shown_and_deploy_stays_disabled(
    make_app: Callable[..., DataopsApp],
) -> None:
    """Outside a dbt project the core cannot plan: the screen says why (the gated plan on a
    real project is in test_rerun.py)."""

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "p")
        assert isinstance(app.screen, DeployPlanScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "no dbt_project.yml" in str(app.screen.query_one("#plan", Static).render())
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

    for report in (small_report(), large_report(30)):
        app = DataopsApp(ReviewSession(project_dir=tmp_path), report=report)

        async def scenario(app: DataopsApp, pilot: Pilot[None], report: Report = report) -> None:
            for key in "1234567":
                await pilot.press(key)
            await pilot.press("down", "down", "down")
            for key in "1234567":
                await pilot.press(key)
            assert app.selected in {m.name for m in report.models}

        drive(app, scenario)


def test_help_screen_shows_every_key_binding(make_app: Callable[..., DataopsApp]) -> None:
    # The help box once collapsed to 0x0 (an `auto`-sized scroll container): the screen was empty.
    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        box = app.screen.query_one(Static)
        assert box.size.width > 40 and box.size.height >= 15
        shown = str(box.render())
        keys = {"question_mark": "?", "slash": "/", "escape": "esc"}
        for binding in app.BINDINGS:
            key = binding.key if hasattr(binding, "key") else binding[0]  # type: ignore[index]
            label = keys.get(key, key)
            if label.isdigit():
                label = "1–7"
            assert label in shown, f"the help does not mention {label!r}"

    drive(make_app(), scenario, size=(80, 24))
