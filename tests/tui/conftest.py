"""Fixtures for the TUI tests: a project directory holding a saved report, and a runner that
drives the real app headless at a fixed terminal size.

`fixtures/sample_project_report.json` is a real report: `dataops-dev demo` (sample_project at
scale 0.01, branch demo/segment-thresholds) reviewed by `run_review`; its values are masked sample
values. `factory.make_report()` adds what that review lacks (schema changes, a failing dbt test
with its SQL, compiled SQL of both sides) for the tabs that show them.
"""

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


REAL_REPORT = Path(__file__).parent / "fixtures" / "sample_project_report.json"


@pytest.fixture
def report() -> Report:
    """The real review report of sample_project."""
    return Report.load(REAL_REPORT)


def _project(directory: Path, report_json: str) -> Path:
    directory.mkdir()
    (directory / "report.json").write_text(report_json, "utf-8")
    return directory


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with the real report saved in it (decisions are written next to it)."""
    return _project(tmp_path / "project", REAL_REPORT.read_text("utf-8"))


@pytest.fixture
def factory_project(tmp_path: Path) -> Path:
    return _project(tmp_path / "factory_project", make_report().to_json())


def _maker(project: Path) -> Callable[..., DataopsApp]:
    def make(**kwargs: object) -> DataopsApp:
        session = ReviewSession(project_dir=project, report_path=project / "report.json")
        return DataopsApp(session, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_app(project: Path) -> Callable[..., DataopsApp]:
    """The app over the real sample_project report."""
    return _maker(project)


@pytest.fixture
def make_factory_app(factory_project: Path) -> Callable[..., DataopsApp]:
    """The app over the factory report (schema changes, failing tests, compiled SQL)."""
    return _maker(factory_project)


def drive(app: DataopsApp, scenario: Scenario, size: tuple[int, int] = (80, 24)) -> None:
    """Run `scenario` against the app under textual's Pilot (headless, fixed size)."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(app, pilot)

    asyncio.run(main())
