"""A branch is untrusted input: whoever wrote a change to masking or to production's target
cannot approve it. Other findings may still be approved by their author (one-person projects)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dataops_dev import gitrepo
from dataops_dev.decisions import (
    RecordedDecision,
    apply_decisions,
    approval_problem,
    change_authors,
    invalid_decisions,
    record_decision,
)
from dataops_dev.errors import UsageError
from dataops_dev.report.model import (
    SCHEMA_VERSION,
    ChangeKind,
    Decision,
    Finding,
    FindingKind,
    ModelReport,
    ModelStatus,
    Report,
    SampleInfo,
    Severity,
    Side,
    Verdict,
)

EVE = "Eve Author <eve@example.com>"
RITA = "Rita Reviewer <rita@example.com>"


def _git(repo: Path, *args: str, who: str = EVE) -> str:
    name, email = who[: who.index(" <")], who[who.index("<") + 1 : -1]
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _finding(kind: FindingKind) -> Finding:
    return Finding(
        fingerprint=f"{kind.value[:6]}0123456789",
        kind=kind,
        severity=Severity.BLOCKING,
        model=None,
        title=f"a {kind.value} finding",
        detail="",
    )


@pytest.fixture
def repo_and_report(tmp_path: Path) -> tuple[Path, Report]:
    """main by Rita, then a branch commit by Eve that unmasks a column; its review report."""
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main", who=RITA)
    (repo / "sources.yml").write_text("email: {meta: {pii: true}}\n")
    _git(repo, "add", "-A", who=RITA)
    _git(repo, "commit", "-q", "-m", "main", who=RITA)
    base = _git(repo, "rev-parse", "HEAD", who=RITA)
    _git(repo, "checkout", "-q", "-b", "feature/unmask", who=EVE)
    (repo / "sources.yml").write_text("email: {meta: {pii: false}}\n")
    _git(repo, "commit", "-qam", "unmask", who=EVE)
    head = _git(repo, "rev-parse", "HEAD", who=EVE)
    trust = ModelReport(
        name="(trust boundary)",
        unique_id="trust",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.UNKNOWN,
        findings=(
            _finding(FindingKind.MASKING_POLICY_CHANGED),
            _finding(FindingKind.BREAKING_CHANGE),
        ),
    )
    report = Report(
        schema_version=SCHEMA_VERSION,
        project="project",
        generated_at="2026-12-04T00:00:00+00:00",
        base=Side(ref="main", commit=base, environment="base_x"),
        head=Side(ref="feature/unmask", commit=head, environment="feature_x"),
        verdict=Verdict.BLOCKED,
        models=(trust,),
        lineage=(),
        exposures=(),
        sample=SampleInfo(identity="s", kind="sample"),
        timings={},
    )
    return repo, report


def test_the_change_authors_are_the_branch_commits_authors(
    repo_and_report: tuple[Path, Report],
) -> None:
    repo, report = repo_and_report
    assert gitrepo.change_authors(repo, report.base.commit, report.head.commit) == {
        "eve@example.com"
    }
    assert change_authors(repo, report) == frozenset({"eve@example.com"})


def test_the_author_cannot_approve_a_trust_boundary_change(
    repo_and_report: tuple[Path, Report],
) -> None:
    repo, report = repo_and_report
    authors = change_authors(repo, report)
    trust, breaking = report.findings
    problem = approval_problem(trust, Decision.APPROVED, by=EVE, note="fine", authors=authors)
    assert problem is not None and "did not write the change" in problem[0]
    # An ordinary finding may still be approved by its author; someone else may approve both.
    assert approval_problem(breaking, Decision.APPROVED, by=EVE, note="ok", authors=authors) is None
    assert approval_problem(trust, Decision.APPROVED, by=RITA, note="ok", authors=authors) is None

    with pytest.raises(UsageError, match="did not write the change"):
        record_decision(repo, trust, Decision.APPROVED, note="fine", by=EVE, authors=authors)


def test_a_self_approval_in_the_approvals_file_does_not_count(
    repo_and_report: tuple[Path, Report],
) -> None:
    repo, report = repo_and_report
    authors = change_authors(repo, report)
    trust = report.findings[0]

    def approved_by(who: str) -> dict[str, RecordedDecision]:
        return {
            trust.fingerprint: RecordedDecision(
                fingerprint=trust.fingerprint,
                decision=Decision.APPROVED,
                by=who,
                at="2026-12-04T00:00:00+00:00",
                note="looks fine",
            )
        }

    self_approved = apply_decisions(report, approved_by(EVE), authors)
    assert self_approved.findings[0].approval is None
    assert self_approved.verdict is Verdict.BLOCKED
    assert [d.fingerprint for d in invalid_decisions(report, approved_by(EVE), authors)] == [
        trust.fingerprint
    ]
    reviewed = apply_decisions(report, approved_by(RITA), authors)
    assert reviewed.findings[0].approval is not None
