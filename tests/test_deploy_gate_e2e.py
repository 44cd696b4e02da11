"""The deploy gate end to end, as a user meets it: a fresh clone of the `dg_shop` fixture, a
branch with a breaking change, `init`, `review`, `decide`, `deploy` run by the CLI with real dbt
builds on DuckDB. A newcomer's uncommitted tool files never trap them in a refusal loop; an
edited report or a hand-written approval never reaches production; a proper approval does.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.real_projects import ProjectRepo, make_project_repo

pytestmark = [pytest.mark.slow]

BRANCH = "feature/drop-tiny-sales"


def branch_repo(tmp_path: Path) -> ProjectRepo:
    """dg_shop cloned, on a branch whose staging model drops sales under 2 (a breaking filter)."""
    repo = make_project_repo("dg_shop", tmp_path)
    repo.checkout_new_branch(BRANCH)
    repo.replace(
        "models/sales_clean.sql",
        "from {{ source('raw', 'sales') }}",
        "from {{ source('raw', 'sales') }}\nwhere amount >= 2",
    )
    repo.commit("drop tiny sales")
    return repo


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr)
    return result


def blocking_fingerprint(review: subprocess.CompletedProcess[str]) -> str:
    report = json.loads(review.stdout)
    (finding,) = [f for m in report["models"] for f in m["findings"] if f["severity"] == "blocking"]
    assert finding["kind"] == "breaking_change"
    return str(finding["fingerprint"])


def dry_run(repo: ProjectRepo, code: int) -> dict[str, Any]:
    return dict(json.loads(ok(repo.run("deploy", "--dry-run", "--json"), code).stdout))


def production_rows(repo: ProjectRepo) -> int:
    with duckdb.connect(str(repo.path("prod.duckdb")), read_only=True) as connection:
        row = connection.execute("select count(*) from main.sales_clean").fetchone()
    assert row is not None
    return int(row[0])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tool_written_files_cause_no_refusal_loop_and_an_approved_change_deploys(
    tmp_path: Path,
) -> None:
    repo = branch_repo(tmp_path)
    ok(repo.run("init"))  # a newcomer's first command: writes dataops.lock.yml, not committed
    assert "?? dataops.lock.yml" in repo.git("status", "--porcelain")
    review = ok(repo.run("review", "--json"), 3)
    fingerprint = blocking_fingerprint(review)
    assert json.loads(review.stdout)["head"]["dirty"] is False

    # Refused for the right reason only: the unapproved breaking change, not "changed since".
    plan = dry_run(repo, 3)
    assert plan["stale"] is None and plan["unverified"] is None
    assert [f["fingerprint"] for f in plan["blocked_by"]] == [fingerprint]

    # `init` again rewrites its files with the same content: still nothing stale.
    ok(repo.run("init"))
    assert dry_run(repo, 3)["stale"] is None
    # A tool file that really changed after the review: stale, naming it; one review clears it.
    repo.write("dataops_dev.yml", repo.path("dataops_dev.yml").read_text() + "# confirmed\n")
    refused = ok(repo.run("deploy", "--dry-run"), 2)
    assert "dataops_dev.yml" in refused.stdout and "dataops-dev review" in refused.stderr
    ok(repo.run("review", "--json"), 3)
    assert dry_run(repo, 3)["stale"] is None

    # `decide approve` records the git identity and a note; the approvals file stales nothing.
    decided = ok(repo.run("decide", "approve", fingerprint[:10], "--note", "tiny sales are noise"))
    assert "by Test <test@example.com>" in decided.stdout
    plan = dry_run(repo, 0)
    assert plan["allowed"] is True and plan["invalid_approvals"] == []

    assert production_rows(repo) == 6
    deployed = ok(repo.run("deploy", "--json"))
    assert json.loads(deployed.stdout)["plan"]["allowed"] is True
    assert production_rows(repo) == 5
    record = json.loads(Path(json.loads(deployed.stdout)["record"]).read_text())
    assert record["approvals"] == [
        {
            "fingerprint": fingerprint,
            "by": "Test <test@example.com>",
            "note": "tiny sales are noise",
        }
    ]


def _severity_to_warning(data: dict[str, Any]) -> None:
    for model in data["models"]:
        for finding in model["findings"]:
            finding["severity"] = "warning"
    data["verdict"] = "pass"


def _findings_emptied(data: dict[str, Any]) -> None:
    for model in data["models"]:
        model["findings"] = []
    data["verdict"] = "pass"


def _tag_removed(data: dict[str, Any]) -> None:
    _severity_to_warning(data)
    del data["integrity"]


FORGERIES: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_severity_to_warning, "modified after the review"),
    (_findings_emptied, "modified after the review"),
    (_tag_removed, "no integrity tag"),
]


def test_forged_reports_and_approvals_never_reach_production(tmp_path: Path) -> None:
    repo = branch_repo(tmp_path)
    fingerprint = blocking_fingerprint(ok(repo.run("review", "--json"), 3))
    (path,) = repo.path(".dataops/reports").rglob("report.json")
    original = path.read_text("utf-8")
    production = repo.path("prod.duckdb")
    before = sha256(production)

    for index, (forge, reason) in enumerate(FORGERIES):
        data = json.loads(original)
        forge(data)
        path.write_text(json.dumps(data, indent=2), "utf-8")
        dry = ok(repo.run("deploy", "--dry-run"), 2)
        assert reason in dry.stderr and "dataops-dev review" in dry.stderr, dry.stderr
        if index == 0:
            real = ok(repo.run("deploy"), 2)
            assert reason in real.stderr
            # `report` still reads it, and says it is unverified.
            shown = ok(repo.run("report", "--json"))
            assert json.loads(shown.stdout)["verdict"] == "pass"
            assert "unverified report" in shown.stderr
    assert sha256(production) == before

    path.write_text(original, "utf-8")
    for index, (entry, reason) in enumerate(
        (
            ("by: Test <test@example.com>\n", "needs a note"),
            ("by: the boss\n    note: ship it\n", "git identity"),
        )
    ):
        repo.write(
            "dataops.approvals.yml",
            f"version: 1\ndecisions:\n  - fingerprint: {fingerprint}\n    decision: approved\n"
            f"    {entry}",
        )
        dry = ok(repo.run("deploy", "--dry-run"), 3)
        assert f"approval of {fingerprint} does not count" in dry.stdout and reason in dry.stdout
        if index == 0:
            real = ok(repo.run("deploy"), 3)
            assert "does not count" in real.stderr and reason in real.stderr
            listed = json.loads(ok(repo.run("decide", "list", "--json")).stdout)
            assert listed["verdict"] == "blocked"
            assert [d["fingerprint"] for d in listed["invalid_decisions"]] == [fingerprint]
    assert sha256(production) == before
