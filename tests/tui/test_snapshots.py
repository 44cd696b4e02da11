"""Snapshots of the main screens at 80x24 and 160x48 (pytest-textual-snapshot).

The report is fixed (factory values, its own timestamp), the cursor does not blink and no clock is
shown, so a difference is a change of the UI. Update with `pytest tests/tui --snapshot-update`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from dataops_dev.tui.app import DataopsApp
from dataops_dev.tui.session import ReviewSession

SMALL = (80, 24)
LARGE = (160, 48)
SnapCompare = Callable[..., bool]


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
@pytest.mark.parametrize(
    "keys",
    [(), ("3",), ("4",), ("5",), ("6",)],
    ids=["summary", "rows", "columns", "lineage", "tests"],
)
def test_tabs(
    snap_compare: SnapCompare,
    make_app: Callable[..., DataopsApp],
    size: tuple[int, int],
    keys: tuple[str, ...],
) -> None:
    assert snap_compare(make_app(), press=keys, terminal_size=size)


def test_impacted_model_160x48(
    snap_compare: SnapCompare, make_app: Callable[..., DataopsApp]
) -> None:
    assert snap_compare(
        make_app(), press=("down", "down", "down", "down", "3"), terminal_size=LARGE
    )


@pytest.mark.parametrize(
    "keys", [("2",), ("6",), ("7",)], ids=["schema", "failing-test", "sql-unified"]
)
def test_factory_tabs_80x24(
    snap_compare: SnapCompare,
    make_factory_app: Callable[..., DataopsApp],
    keys: tuple[str, ...],
) -> None:
    """What the real review leaves empty: schema changes, a failing test, compiled SQL."""
    assert snap_compare(make_factory_app(), press=keys, terminal_size=SMALL)


def test_sql_side_by_side_160x48(
    snap_compare: SnapCompare, make_factory_app: Callable[..., DataopsApp]
) -> None:
    async def split(pilot: Pilot[Any]) -> None:
        await pilot.press("7")
        pilot.app.query_one("#pane-sql").focus()
        await pilot.press("s")

    assert snap_compare(make_factory_app(), run_before=split, terminal_size=LARGE)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_light_theme(
    snap_compare: SnapCompare, make_app: Callable[..., DataopsApp], size: tuple[int, int]
) -> None:
    assert snap_compare(make_app(theme="textual-light"), terminal_size=size)


def test_help_80x24(snap_compare: SnapCompare, make_app: Callable[..., DataopsApp]) -> None:
    assert snap_compare(make_app(), press=("question_mark",), terminal_size=SMALL)


def test_decide_dialog_80x24(
    snap_compare: SnapCompare, make_app: Callable[..., DataopsApp]
) -> None:
    assert snap_compare(make_app(), press=("a", *"expected"), terminal_size=SMALL)


def test_filter_80x24(snap_compare: SnapCompare, make_app: Callable[..., DataopsApp]) -> None:
    assert snap_compare(make_app(), press=("slash", *"segments"), terminal_size=SMALL)


def test_no_report_80x24(snap_compare: SnapCompare) -> None:
    # A fixed path: the error names the directory, and the snapshot must not change per run.
    directory = Path(tempfile.gettempdir()) / "dataops-tui-snapshot-no-project"
    directory.mkdir(exist_ok=True)
    app = DataopsApp(ReviewSession(project_dir=directory))
    assert snap_compare(app, terminal_size=SMALL)
