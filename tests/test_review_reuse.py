"""A no-op review reuses the last report; each change it depends on forces the real review.

One cold review of sample_project (real dbt, real DuckDB) is shared by the module; the tests run
in order and each leaves the project as it found it (or says what it changed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dataops_dev import review_reuse
from dataops_dev.config import load_config
from dataops_dev.demo import DEMO_EDITS, apply_edits
from dataops_dev.reporting import CaptureReporter
from tests.conftest import git, run_cli, sample_project_repo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("review-reuse")]

SALT = {"DATAOPS_SALT": "reuse-test-salt"}
BRANCH = "feature/reuse"
REUSE_KEYS = ("generated_at", "timings", "reused_from")


def demo_branch_repo(directory: Path, prod: Path) -> Path:
    """sample_project in its own git repo, on BRANCH with the demo change committed."""
    project = sample_project_repo(directory, prod, "production code")
    git(project, "checkout", "-q", "-b", BRANCH)
    apply_edits(project, DEMO_EDITS)
    git(project, "commit", "-q", "-am", "demo change")
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sample_project_prod: Path) -> Path:
    """sample_project_copy's set-up, once for the module: a branch with the demo change."""
    return demo_branch_repo(tmp_path_factory.mktemp("reuse"), sample_project_prod)


def review(project: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_cli("review", "--json", *args, cwd=project, env={**SALT, **(env or {})})
    assert result.returncode in (0, 3), result.stderr
    report = json.loads(result.stdout)
    report["_stderr"] = result.stderr
    report["_exit"] = result.returncode
    return report


def body(report: dict[str, Any]) -> dict[str, Any]:
    """What a review found: everything but when, how long, and whether it (or an environment
    build) was reused."""
    found = {k: v for k, v in report.items() if k not in REUSE_KEYS and not k.startswith("_")}
    for side in ("base", "head"):
        found[side] = {k: v for k, v in found[side].items() if k != "reused"}
    return found


def lookup(project: Path, **overrides: Any) -> tuple[review_reuse.Lookup, list[str]]:
    """The in-process lookup the CLI and `run_review` make, with its warnings."""
    captured = CaptureReporter()
    saved = dict(os.environ)
    os.environ.update(SALT)
    try:
        found = review_reuse.lookup(load_config(project, **overrides), reporter=captured)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return found, captured.messages("warning")


@pytest.fixture(scope="module")
def cold(project: Path) -> dict[str, Any]:
    return review(project)


def test_a_no_op_review_reuses_the_report(project: Path, cold: dict[str, Any]) -> None:
    assert cold["reused_from"] is None
    assert {"diffs", "branch_build"} <= set(cold["timings"])
    again = review(project)
    assert again["reused_from"] == cold["generated_at"]
    assert set(again["timings"]) == {"reuse", "total"}
    assert "reused the review of" in again["_stderr"]
    assert again["_exit"] == cold["_exit"]
    assert body(again) == body(cold)
    # A no-op writes nothing: report.json is still the review that ran.
    saved = json.loads(next((project / ".dataops" / "reports").rglob("report.json")).read_text())
    assert saved["generated_at"] == cold["generated_at"]


def test_the_reuse_path_imports_no_engine(project: Path, cold: dict[str, Any]) -> None:
    code = (
        "import sys, os; from dataops_dev.config import load_config;"
        "from dataops_dev.review_reuse import lookup;"
        "found = lookup(load_config()); assert found.report is not None, found.reason;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'dbt', 'duckdb', 'sqlglot', 'rich', 'git', 'textual'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={**os.environ, **SALT},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_edit_forces_the_review_and_gives_the_same_result_back(
    project: Path, cold: dict[str, Any]
) -> None:
    model = project / "models" / "marts" / "fct_orders.sql"
    original = model.read_text()
    model.write_text(original + "\n-- a comment\n")
    try:
        found, _ = lookup(project)
        assert found.report is None and "worktree" in found.reason
    finally:
        model.write_text(original)
    # An untracked file the project could read is a change as well.
    extra = project / "models" / "scratch.sql"
    extra.write_text("select 1 as x\n")
    try:
        found, _ = lookup(project)
        assert found.report is None and "worktree" in found.reason
    finally:
        extra.unlink()
    # The same state as the stored review: reused again, and the real path agrees with it.
    found, _ = lookup(project)
    assert found.report is not None, found.reason
    forced = review(project, "--no-reuse")
    assert forced["reused_from"] is None and "diffs" in forced["timings"]
    assert body(forced) == body(cold)


def test_a_new_commit_on_main_invalidates(project: Path, cold: dict[str, Any]) -> None:
    main = git(project, "rev-parse", "main")
    config = project / "dataops_dev.yml"
    git(project, "checkout", "-q", "main")
    try:
        # The base's masking policy changes: the trust side of the review must be judged again.
        config.write_text("version: 1\nmasking:\n  rules: []\n")
        git(project, "add", "dataops_dev.yml")
        git(project, "commit", "-q", "-m", "policy on main")
    finally:
        git(project, "checkout", "-q", BRANCH)
    try:
        found, _ = lookup(project)
        assert found.report is None and "git" in found.reason
    finally:
        git(project, "update-ref", "refs/heads/main", main)
    found, _ = lookup(project)
    assert found.report is not None, found.reason


def test_a_config_change_invalidates(project: Path, cold: dict[str, Any]) -> None:
    found, _ = lookup(project, environ={**os.environ, "DATAOPS_DEV_DIFF__EXAMPLES": "2"})
    assert found.report is None and "config" in found.reason
    found, _ = lookup(project, overrides={"diff.example_rows": 3})
    assert found.report is None and "config" in found.reason


def test_an_approval_forces_the_review_and_is_reflected(
    project: Path, cold: dict[str, Any]
) -> None:
    blocking = [f for m in cold["models"] for f in m["findings"] if f["severity"] == "blocking"]
    assert blocking, "the demo change has a blocking finding to approve"
    approved = run_cli(
        "decide",
        "approve",
        blocking[0]["fingerprint"][:10],
        "--note",
        "expected",
        cwd=project,
        env=SALT,
    )
    assert approved.returncode == 0, approved.stderr
    found, _ = lookup(project)
    assert found.report is None and "approvals" in found.reason
    after = review(project)
    assert after["reused_from"] is None
    decided = {f["fingerprint"]: f["approval"] for m in after["models"] for f in m["findings"]}
    assert decided[blocking[0]["fingerprint"]]["decision"] == "approved"
    # And the review after it reuses the judged report, approval included.
    again = review(project)
    assert again["reused_from"] == after["generated_at"]
    assert body(again) == body(after)


def test_a_corrupt_or_edited_cache_is_ignored_with_a_warning(
    project: Path, cold: dict[str, Any]
) -> None:
    found, _ = lookup(project)
    assert found.report is not None and found.inputs is not None, found.reason
    path = review_reuse.cache_path(load_config(project), found.inputs)
    good = path.read_text()
    try:
        path.write_text(good[: len(good) // 2])
        found, warnings = lookup(project)
        assert found.report is None
        assert warnings and "ignored the stored review" in warnings[0]
        # Valid JSON, edited: the tag no longer matches, so it is not trusted.
        edited = json.loads(good)
        edited["report"]["models"] = edited["report"]["models"][1:]
        path.write_text(json.dumps(edited))
        found, warnings = lookup(project)
        assert found.report is None
        assert warnings and "integrity tag" in warnings[0]
        result = run_cli("review", "--json", cwd=project, env=SALT)
        assert "ignored the stored review" in result.stderr
        assert json.loads(result.stdout)["reused_from"] is None
    finally:
        if not path.exists():
            path.write_text(good)
    found, _ = lookup(project)
    assert found.report is not None, found.reason  # the real path stored a good entry again


def test_a_deleted_environment_invalidates(project: Path, cold: dict[str, Any]) -> None:
    dropped = run_cli("env", "drop", cold["head"]["environment"], cwd=project, env=SALT)
    assert dropped.returncode == 0, dropped.stderr
    found, _ = lookup(project)
    assert found.report is None and "environment" in found.reason
    rebuilt = review(project)
    assert rebuilt["reused_from"] is None and rebuilt["head"]["reused"] is False

    def diffs(report: dict[str, Any]) -> list[Any]:
        return [(m["name"], m["diff"], m["schema"]) for m in report["models"]]

    assert diffs(rebuilt) == diffs(cold)


def test_layout_assumptions_match_their_owners(project: Path) -> None:
    from dataops_dev.decisions import APPROVALS_FILE
    from dataops_dev.environments import Environments

    assert review_reuse._APPROVALS_FILE == APPROVALS_FILE
    loaded = load_config(project)
    envs = Environments(loaded)
    state = review_reuse._environment_state(loaded, "x")
    assert set(state) == {"metadata", "database", "manifest", "run_results"}
    assert envs.meta_path("x") == loaded.state_dir / "envs" / "x.json"
    assert envs.database_path("x") == loaded.state_dir / "envs" / "x.duckdb"
    assert envs.manifest_path("x") == loaded.state_dir / "envs" / "x" / "target" / "manifest.json"
