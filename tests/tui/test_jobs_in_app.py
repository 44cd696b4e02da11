"""Core jobs inside the running app: dbt's adapters create multiprocessing locks, whose resource
tracker is spawned with `sys.stderr.fileno()` — textual's captured stderr has none. The app
starts the tracker with the real stderr before a job (checked in a fresh interpreter, where no
tracker runs yet)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, multiprocessing, threading
from dataops_dev.tui.app import DataopsApp, start_resource_tracker
from dataops_dev.tui.session import ReviewSession
from tests.tui.factory import make_report

async def main() -> None:
    app = DataopsApp(ReviewSession(), report=make_report())
    async with app.run_test() as pilot:
        if {start!r}:
            start_resource_tracker()
        errors = []

        def job() -> None:
            try:
                multiprocessing.get_context("spawn").RLock()  # what dbt's adapter does
            except ValueError as error:
                errors.append(str(error))

        thread = threading.Thread(target=job)
        thread.start()
        thread.join()
        print("ERROR:" + errors[0] if errors else "OK")

asyncio.run(main())
"""


def run(start: bool) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(start=start)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_jobs_can_create_multiprocessing_locks_inside_the_app() -> None:
    assert run(start=True) == "OK"


def test_without_the_tracker_textual_capture_breaks_them() -> None:
    """The reason for `start_resource_tracker` (fails if textual ever gives stderr a descriptor:
    then the workaround can go)."""
    assert run(start=False).startswith("ERROR:bad value(s) in fds_to_keep")
