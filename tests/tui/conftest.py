"""Fixtures for the TUI tests: a project directory holding a saved report, and a runner that
drives the real app headless at a fixed terminal size."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from dataops_dev.report.model import Report
from dataops_dev.tui.app import DataopsApp
from dataops_dev.tui.session import ReviewSession
from tests.tui.factory import make_report

Scenario = Callable[[DataopsApp, Pilot[None]], Awaitable[None]]


@pytest.fixture
def report() -> Report:
    return make_report()


@pytest.fixture
def project(tmp_path: Path, report: Report) -> Path:
    """A directory with a saved report.json (decisions are written next to it)."""
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "report.json").write_text(report.to_json(), "utf-8")
    return directory


@pytest.fixture
def make_app(project: Path) -> Callable[..., DataopsApp]:
    def make(**kwargs: object) -> DataopsApp:
        session = ReviewSession(project_dir=project, report_path=project / "report.json")
        return DataopsApp(session, **kwargs)  # type: ignore[arg-type]

    return make


def drive(app: DataopsApp, scenario: Scenario, size: tuple[int, int] = (80, 24)) -> None:
    """Run `scenario` against the app under textual's Pilot (headless, fixed size)."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(app, pilot)

    asyncio.run(main())
