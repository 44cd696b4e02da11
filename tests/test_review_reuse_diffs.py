"""Diff-level reuse: when a review must run but both builds are the ones it last compared, each
model's diff comes from the cache (`review_reuse.DiffCache`) with the same numbers; a diff
whose own inputs changed runs again.

One cold review of sample_project (real dbt, real DuckDB) is shared by the module; the tests run
in order and each leaves the project as it found it (or says what it changed).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dataops_dev.config import load_config
from dataops_dev.reporting import CaptureReporter
from tests.conftest import run_cli
from tests.test_review_reuse import SALT, demo_branch_repo, review

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("review-reuse-diffs")]

REUSED = "data diffs: both environments' builds are the ones they compared"
"""The end of the line a review prints when it reused diffs."""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sample_project_prod: Path) -> Path:
    """sample_project on a branch with the demo change (as test_review_reuse sets it up)."""
    return demo_branch_repo(tmp_path_factory.mktemp("reuse-diffs"), sample_project_prod)


@pytest.fixture(scope="module")
def cold(project: Path) -> dict[str, Any]:
    return review(project)


def diffs(report: dict[str, Any]) -> list[Any]:
    """Every model's data diff as the report holds it."""
    return [(m["name"], m["diff"], m["schema"], m["diff_note"]) for m in report["models"]]


def ran_diffs(report: dict[str, Any]) -> list[str]:
    return [m["name"] for m in report["models"] if m["diff"] is not None]


def entries(project: Path) -> dict[Path, int]:
    """The diff cache's files and when each was last written."""
    root = project / ".dataops" / "reuse" / "diffs"
    return {path: path.stat().st_mtime_ns for path in sorted(root.rglob("*.json"))}


@contextmanager
def environ(**values: str) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def review_in_process(project: Path, **overrides: Any) -> tuple[Any, CaptureReporter]:
    """`run_review` as the CLI calls it, with the events it reported. A variable of its own
    keeps the whole report from being reused (the environment is part of its key, not of the
    builds'), so the review runs and its diffs are looked up one by one."""
    from dataops_dev.review import run_review

    captured = CaptureReporter()
    with environ(**SALT, DATAOPS_REUSE_TEST_RUN=uuid.uuid4().hex):
        report = run_review(load_config(project, overrides=overrides), reporter=captured)
    return report, captured


def reused_events(captured: CaptureReporter) -> list[str]:
    return [e[2] for e in captured.events if e[0] == "advanced" and e[2].endswith("(reused)")]


def test_a_review_keeps_each_diff_it_ran(project: Path, cold: dict[str, Any]) -> None:
    assert ran_diffs(cold), "the demo change has data diffs"
    assert REUSED not in cold["_stderr"]
    stored = entries(project)
    assert len(stored) >= len(ran_diffs(cold))
    # What a cache entry holds of a diff is what the report holds, and nothing else.
    report_diffs = {m["name"]: m["diff"] for m in cold["models"]}
    for path in stored:
        entry = json.loads(path.read_text())
        model = entry["key"]["model"]
        assert entry["outcome"]["data"] == report_diffs[model]


def test_an_approval_reruns_the_review_but_reuses_every_diff(
    project: Path, cold: dict[str, Any]
) -> None:
    before = entries(project)
    blocking = [f for m in cold["models"] for f in m["findings"] if f["severity"] == "blocking"]
    assert blocking, "the demo change has a blocking finding to approve"
    approved = run_cli(
        "decide", "approve", blocking[0]["fingerprint"][:10], "--note", "ok", cwd=project, env=SALT
    )
    assert approved.returncode == 0, approved.stderr
    after = review(project)
    assert after["reused_from"] is None, "the approval defeats whole-report reuse"
    assert after["base"]["reused"] and after["head"]["reused"]
    count = len(before)
    assert f"reused {count} of {count} {REUSED}" in after["_stderr"]
    assert entries(project) == before, "no diff ran, so no entry was written again"
    assert diffs(after) == diffs(cold)


def test_a_changed_diff_option_reruns_only_that_diff(project: Path, cold: dict[str, Any]) -> None:
    changed = next(m for m in cold["models"] if m["diff"] and m["diff"]["columns"])
    column = changed["diff"]["columns"][0]["name"]
    option = {"diff.timestamp_precision": {f"{changed['name']}.{column}": "day"}}
    report, captured = review_in_process(project, **option)
    assert report.reused_from is None
    reran = {m.name for m in report.models if m.diff is not None} - {
        e.removeprefix("diff ").removesuffix(" (reused)") for e in reused_events(captured)
    }
    assert reran == {changed["name"]}
    unchanged = [d for d in diffs(cold) if d[0] != changed["name"]]
    now = [d for d in diffs(json.loads(report.to_json())) if d[0] != changed["name"]]
    assert now == unchanged
    # The option's diff is kept too: the same option again reuses every diff.
    _, again = review_in_process(project, **option)
    assert len(reused_events(again)) == len(entries(project))
    # Back to the configured options: only that model's diff runs again.
    _, back = review_in_process(project)
    assert len(reused_events(back)) == len(entries(project)) - 1


def test_a_corrupt_entry_is_no_entry(project: Path, cold: dict[str, Any]) -> None:
    path = next(p for p in entries(project) if json.loads(p.read_text())["outcome"]["data"])
    good = path.read_text()
    try:
        path.write_text(good[: len(good) // 2])
        _, captured = review_in_process(project)
        assert any("ignored the stored diff" in m for m in captured.messages("warning"))
        assert len(reused_events(captured)) == len(entries(project)) - 1
        # Valid JSON with an edited count: its tag no longer matches, so it is not trusted.
        edited = json.loads(good)
        edited["outcome"]["data"]["rows"]["changed"] += 1
        path.write_text(json.dumps(edited))
        report, captured = review_in_process(project)
        assert any("integrity tag" in m for m in captured.messages("warning"))
        assert diffs(json.loads(report.to_json())) == diffs(cold)
    finally:
        path.write_text(good)


def test_no_reuse_and_the_switch_turn_it_off(project: Path, cold: dict[str, Any]) -> None:
    before = entries(project)
    off = review(project, env={"DATAOPS_REVIEW_REUSE": "0"})
    assert off["reused_from"] is None and REUSED not in off["_stderr"]
    assert diffs(off) == diffs(cold)
    assert entries(project) == before, "reuse off: nothing read, nothing kept"
    forced = review(project, "--no-reuse")
    assert forced["reused_from"] is None and REUSED not in forced["_stderr"]
    assert diffs(forced) == diffs(cold)
    # The diffs --no-reuse ran were kept: every entry was written again, and is reused next.
    rewritten = entries(project)
    assert rewritten.keys() == before.keys()
    assert all(rewritten[path] != before[path] for path in before)
    again = review(project, env={"DATAOPS_REUSE_TEST_RUN": uuid.uuid4().hex})
    assert REUSED in again["_stderr"]
    assert diffs(again) == diffs(cold)


def test_dropping_the_environment_drops_its_kept_diffs(project: Path, cold: dict[str, Any]) -> None:
    assert entries(project), "the reviews above kept diffs"
    listed = json.loads(run_cli("env", "list", "--json", cwd=project, env=SALT).stdout)
    branch = next(e["name"] for e in listed["environments"] if e["kind"] == "branch")
    dropped = run_cli("env", "drop", branch, cwd=project, env=SALT)
    assert dropped.returncode == 0, dropped.stderr
    assert entries(project) == {}, "the branch's kept diffs went with it"
