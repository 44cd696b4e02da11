"""Jobs from the TUI run the real core: the static `impact` of an edited working tree of
sample_project runs in a thread worker and lands in the view, and the deploy plan (`deploy
--dry-run`) is gated by approvals made in the UI. No mocks: real dbt manifest, git, files."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Static

from dataops_dev.report.model import ChangeKind, Report
from dataops_dev.tui.app import DataopsApp
from dataops_dev.tui.progress import JobStatus
from dataops_dev.tui.screens import DeployPlanScreen
from dataops_dev.tui.session import Job, ReviewSession
from dataops_dev.tui.tree import ChangeTree
from tests.conftest import git
from tests.tui.conftest import drive


def parse_manifest(project: Path) -> Path:
    """dbt's own manifest of the project as production's (`dbt parse`: no database)."""
    dbt = Path(sys.executable).parent / "dbt"
    result = subprocess.run(
        [str(dbt), "parse", "--project-dir", str(project), "--profiles-dir", str(project), "-q"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    production = project / ".dataops" / "production" / "manifest.json"
    production.parent.mkdir(parents=True)
    shutil.copy(project / "target" / "manifest.json", production)
    return production


@pytest.mark.slow
def test_rerun_impact_runs_in_a_worker_and_updates_the_view(
    sample_project_copy: Path, report: Report, tmp_path: Path
) -> None:
    project = sample_project_copy
    parse_manifest(project)
    git(project, "checkout", "-q", "-b", "feature/stores")
    model = project / "models" / "staging" / "stg_stores.sql"
    model.write_text(model.read_text("utf-8").replace("    city,\n", ""), "utf-8")
    saved = tmp_path / "report.json"
    saved.write_text(report.to_json(), "utf-8")
    assert "stg_stores" not in {m.name for m in report.models}
    app = DataopsApp(ReviewSession(project_dir=project, report_path=saved))

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        await pilot.press("i")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.last_job is not None and app.last_job.job is Job.IMPACT
        assert "1 changed model" in app.last_job.summary
        assert app.report is not None
        stores = app.report.model("stg_stores")
        assert stores.change is ChangeKind.BREAKING
        assert any("city" in reason for reason in stores.reasons)
        assert not app.query_one(JobStatus).has_class("-running")
        assert "run `review`" in (stores.diff_note or "")
        # The review's own models stay; the new change joined the breaking group.
        assert app.report.model("store_performance").diff is not None
        tree = app.query_one(ChangeTree)
        breaking = tree.root.children[0]
        assert str(breaking.label) == "breaking (2)"
        assert [c.data.name for c in breaking.children if c.data] == [
            "store_performance",
            "stg_stores",
        ]
        assert "impact: 1 changed model" in str(app.query_one("#message", Static).render())

    drive(app, scenario)


@pytest.mark.slow
def test_deploy_plan_from_the_core_gates_on_approvals(
    sample_project_copy: Path, report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataops_dev.integrity import IntegrityKey, signed
    from dataops_dev.masking import Salt

    project = sample_project_copy
    # The review describes this very commit (deploy refuses a stale review).
    head = dataclasses.replace(report.head, commit=git(project, "rev-parse", "HEAD"))
    saved = tmp_path / "report.json"
    # Tagged as `review` saves it (deploy refuses an untagged report).
    monkeypatch.setenv("DATAOPS_SALT", "tui-rerun-test-salt")
    data = signed(
        dataclasses.replace(report, head=head).to_dict(), IntegrityKey.from_salt(Salt.from_env())
    )
    saved.write_text(json.dumps(data), "utf-8")
    app = DataopsApp(ReviewSession(project_dir=project, report_path=saved))

    async def open_plan(pilot: Pilot[None]) -> DeployPlanScreen:
        await pilot.press("p")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, DeployPlanScreen)
        return app.screen

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        screen = await open_plan(pilot)
        plan = str(screen.query_one("#plan", Static).render())
        assert "target prod (duckdb)" in plan
        assert "5 models in build order" in plan
        assert "blocked by 1 finding" in plan
        assert screen.query_one("#confirm", Button).disabled
        await pilot.press("escape")
        await pilot.press("a", *"expected: the ranking changes on purpose", "enter")
        await pilot.pause()
        assert (project / "dataops.approvals.yml").is_file()
        screen = await open_plan(pilot)
        assert "blocked" not in str(screen.query_one("#plan", Static).render())
        assert not screen.query_one("#confirm", Button).disabled
        await pilot.press("escape")

    drive(app, scenario)


@pytest.mark.slow
def test_review_and_model_diff_rerun_through_run_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo project (sample_project, a branch, production) with no saved report yet: the app
    says so, `r` runs `review.run_review` in a worker with live progress and the report lands;
    `d` re-diffs the selected model only."""
    from dataops_dev.demo import DEMO_SALT
    from tests.conftest import run_cli

    demo = tmp_path / "demo"
    result = run_cli("demo", "--dir", str(demo), "--scale", "0.01", "--json", cwd=tmp_path)
    assert result.returncode in (0, 3), result.stderr
    shutil.rmtree(demo / ".dataops" / "reports", ignore_errors=True)
    monkeypatch.setenv("DATAOPS_SALT", DEMO_SALT)
    app = DataopsApp(ReviewSession(project_dir=demo))

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        assert app.report is None and "no review report" in (app.problem or "")
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.last_job is not None and app.last_job.job is Job.REVIEW
        assert app.report is not None and app.problem is None
        assert app.report.head.ref == "demo/segment-thresholds"
        # Progress came from the core's reporter, through textual messages.
        assert any(event[0] == "started" for event in app.job_events)
        assert app.selected == "store_performance"
        assert "store_performance" in str(app.query_one("#summary-text", Static).render())
        # The saved report is what the next start opens.
        assert ReviewSession(project_dir=demo).load_report().generated_at == (
            app.report.generated_at
        )
        before = app.report
        await pilot.press("d")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.last_job.job is Job.DIFF
        assert "diff of store_performance" in app.last_job.summary
        assert [m.name for m in app.report.models] == [m.name for m in before.models]
        assert app.report.model("store_performance").diff is not None

    drive(app, scenario)


@pytest.mark.slow
def test_rerun_impact_on_a_fresh_clone_parses_main_once(report: Report, tmp_path: Path) -> None:
    """`i` on a fresh clone (ir_transform, dbt project in `transform/`, nothing prepared) takes
    the CLI's path: main's tree parsed by dbt in the worker, then reused from the cache."""
    from tests.real_projects import make_project_repo

    repo = make_project_repo("ir_transform", tmp_path, project_subdir="transform")
    repo.checkout_new_branch("feature/segments")
    repo.replace("models/customer_segments.sql", "    name,\n", "")
    saved = tmp_path / "report.json"
    saved.write_text(report.to_json(), "utf-8")
    app = DataopsApp(ReviewSession(project_dir=repo.project, report_path=saved))

    async def rerun(app: DataopsApp, pilot: Pilot[None]) -> str:
        await pilot.press("i")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.last_job is not None and app.last_job.job is Job.IMPACT
        return app.last_job.summary

    async def scenario(app: DataopsApp, pilot: Pilot[None]) -> None:
        commit = repo.git("rev-parse", "main")[:12]
        first = await rerun(app, pilot)
        assert first == (
            f"impact: 1 changed model in the working tree (base: main at {commit}, parsed now)"
        )
        assert app.report is not None
        segments = app.report.model("customer_segments")
        assert segments.change is ChangeKind.BREAKING
        assert any("name" in reason for reason in segments.reasons)
        second = await rerun(app, pilot)
        assert second.endswith(f"(base: main at {commit}, parsed once, cached)")
        assert "impact: 1 changed model" in str(app.query_one("#message", Static).render())

    drive(app, scenario)
