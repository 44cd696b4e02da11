"""Deploy ships only what was reviewed: the report's integrity tag, the verdict judged again from
its evidence, approvals held to the rules `decide` enforces, and staleness by content.

No dbt here: a real git repository holds a small project and the report a review of it would
save (built in-process from a breaking change, judged by the real policy); the end-to-end path
with real dbt builds is in test_deploy_gate_e2e.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from dataops_dev import gitrepo
from dataops_dev.config import LoadedConfig, load_config
from dataops_dev.decisions import (
    IDENTITY,
    approvals_path,
    load_decisions,
    record_decision,
)
from dataops_dev.deploy import deploy, plan_deploy
from dataops_dev.environments import environment_name
from dataops_dev.errors import BlockingFindings, UsageError
from dataops_dev.integrity import TAG_KEY, IntegrityStatus
from dataops_dev.policy import evaluate, rederive
from dataops_dev.report.model import (
    SCHEMA_VERSION,
    ChangeKind,
    DataDiff,
    Decision,
    FindingKind,
    ModelReport,
    ModelStatus,
    Report,
    RowCounts,
    Severity,
    Side,
    Verdict,
)
from dataops_dev.review import load_last_report, save_report, worktree_state
from tests.conftest import git

SALT = "deploy-gate-test-salt"
BRANCH = "feature/drop-small-orders"


@pytest.fixture
def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedConfig:
    """A committed dbt project on a feature branch, the salt set."""
    monkeypatch.setenv("DATAOPS_SALT", SALT)
    project = tmp_path / "shop"
    (project / "models").mkdir(parents=True)
    files = {
        "dbt_project.yml": "name: shop\nversion: '1.0.0'\nconfig-version: 2\nprofile: shop\n",
        "profiles.yml": "shop:\n  target: prod\n  outputs:\n    prod:\n      type: duckdb\n"
        "      path: prod.duckdb\n      schema: main\n",
        "dataops_dev.yml": "version: 1\n",
        ".gitignore": "*.duckdb\n.dataops/\ntarget/\n",
        "models/orders.sql": "select id, amount from {{ source('raw', 'orders') }}\n",
    }
    for name, text in files.items():
        (project / name).write_text(text)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production code")
    git(project, "checkout", "-q", "-b", BRANCH)
    (project / "models" / "orders.sql").write_text(
        "select id, amount from {{ source('raw', 'orders') }} where amount > 5\n"
    )
    git(project, "commit", "-q", "-am", "drop small orders")
    return load_config(project)


def reviewed(loaded: LoadedConfig) -> Report:
    """What a review of HEAD saves: a breaking change to `orders`, judged by the policy."""
    commit = git(loaded.project_dir, "rev-parse", "HEAD")
    model = ModelReport(
        name="orders",
        unique_id="model.shop.orders",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.BREAKING,
        reasons=("a filter was added",),
        materialized="table",
        diff=DataDiff(key=("id",), rows=RowCounts(base=10, head=8, removed=2, unchanged=8)),
        head_sql="select id, amount from raw.orders where amount > 5",
    )
    model = dataclasses.replace(model, findings=evaluate(model, loaded.config.policy))
    return Report(
        schema_version=SCHEMA_VERSION,
        project="shop",
        generated_at="2026-01-01T00:00:00+00:00",
        base=Side(ref="main", commit=commit, environment="base_x"),
        head=Side(ref=BRANCH, commit=commit, environment=environment_name(BRANCH)),
        verdict=Verdict.BLOCKED,
        models=(model,),
        worktree=worktree_state(loaded, commit),
    )


def saved(loaded: LoadedConfig) -> Path:
    return save_report(loaded, reviewed(loaded))


def edit_report(path: Path, edit: object) -> None:
    data = json.loads(path.read_text("utf-8"))
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data, indent=2), "utf-8")


def the_finding(report: Report) -> str:
    (finding,) = report.findings
    assert finding.kind is FindingKind.BREAKING_CHANGE and finding.severity is Severity.BLOCKING
    return finding.fingerprint


# ----------------------------------------------------------------------------------------------
# The integrity tag


def test_saved_report_is_tagged_and_verifies(loaded: LoadedConfig) -> None:
    path = saved(loaded)
    data = json.loads(path.read_text("utf-8"))
    assert list(data)[-1] == TAG_KEY and data[TAG_KEY].startswith("hmac-sha256:")
    assert SALT not in path.read_text("utf-8")
    report = load_last_report(loaded)
    assert report.integrity is IntegrityStatus.VERIFIED
    plan = plan_deploy(loaded, report)
    assert plan.unverified is None
    assert [f.fingerprint for f in plan.blocked_by] == [the_finding(report)]


def _lower_severity(data: dict) -> None:
    for finding in data["models"][0]["findings"]:
        finding["severity"] = "warning"
    data["verdict"] = "pass"


def _empty_findings(data: dict) -> None:
    data["models"][0]["findings"] = []
    data["verdict"] = "pass"


@pytest.mark.parametrize("forge", [_lower_severity, _empty_findings], ids=["severity", "emptied"])
def test_an_edited_report_is_refused(loaded: LoadedConfig, forge: object) -> None:
    path = saved(loaded)
    edit_report(path, forge)
    report = load_last_report(loaded)
    # Still readable (report, tui), and its own verdict says pass: deploy must not believe it.
    assert report.verdict is Verdict.PASS and report.integrity is IntegrityStatus.MISMATCH
    plan = plan_deploy(loaded, report)
    assert not plan.allowed
    assert plan.unverified is not None and "modified after the review" in plan.unverified
    with pytest.raises(UsageError, match="modified after the review") as refused:
        deploy(loaded, report)
    assert "dataops-dev review" in (refused.value.hint or "")


def test_a_report_whose_tag_was_removed_is_refused(loaded: LoadedConfig) -> None:
    path = saved(loaded)
    edit_report(path, lambda data: data.pop(TAG_KEY))
    report = load_last_report(loaded)
    assert report.integrity is IntegrityStatus.MISSING
    with pytest.raises(UsageError, match="no integrity tag") as refused:
        deploy(loaded, report)
    assert "dataops-dev review" in (refused.value.hint or "")


def test_a_report_cannot_be_verified_without_the_salt(
    loaded: LoadedConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved(loaded)
    monkeypatch.delenv("DATAOPS_SALT")
    report = load_last_report(loaded)
    assert report.integrity is IntegrityStatus.NO_KEY
    assert "salt" in (plan_deploy(loaded, report).unverified or "")


def test_a_tag_made_with_another_salt_does_not_verify(
    loaded: LoadedConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved(loaded)
    monkeypatch.setenv("DATAOPS_SALT", "someone-elses-salt")
    assert load_last_report(loaded).integrity is IntegrityStatus.MISMATCH


# ----------------------------------------------------------------------------------------------
# The verdict judged again from the evidence


def test_deploy_judges_the_evidence_not_the_stored_findings(loaded: LoadedConfig) -> None:
    # A report made in-process (no file to tag) whose findings were lowered and removed: the
    # policy applied to its evidence finds the breaking change again.
    honest = reviewed(loaded)
    fingerprint = the_finding(honest)
    model = dataclasses.replace(honest.models[0], findings=())
    forged = dataclasses.replace(honest, models=(model,), verdict=Verdict.PASS)
    assert forged.blocking == ()
    plan = plan_deploy(loaded, forged)
    assert [f.fingerprint for f in plan.blocked_by] == [fingerprint]
    with pytest.raises(BlockingFindings, match="breaking change to orders"):
        deploy(loaded, forged)


def test_rederive_keeps_the_stricter_severity_and_findings_it_cannot_recompute(
    loaded: LoadedConfig,
) -> None:
    honest = reviewed(loaded)
    (finding,) = honest.findings
    # The policy now allows breaking changes, but the review judged this one blocking; and a
    # finding no policy rule makes (a failed build, say) stays as stored.
    from dataops_dev.config import PolicyConfig

    lenient = PolicyConfig(block_on_breaking=False)
    extra = dataclasses.replace(finding, fingerprint="f" * 16, kind=FindingKind.BUILD_FAILED)
    model = dataclasses.replace(honest.models[0], findings=(finding, extra))
    judged = rederive(dataclasses.replace(honest, models=(model,)), lenient)
    assert {f.fingerprint: f.severity for f in judged.findings} == {
        finding.fingerprint: Severity.BLOCKING,
        "f" * 16: Severity.BLOCKING,
    }
    assert judged.verdict is Verdict.BLOCKED


# ----------------------------------------------------------------------------------------------
# Approvals


def write_approvals(loaded: LoadedConfig, fingerprint: str, **entry: str) -> None:
    lines = [f"  - fingerprint: {fingerprint}", "    decision: approved"]
    lines += [f"    {key}: {json.dumps(value)}" for key, value in entry.items()]
    approvals_path(loaded.project_dir).write_text("version: 1\ndecisions:\n" + "\n".join(lines))


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"by": "Ana <ana@example.com>"}, "needs a note"),
        ({"by": "Ana <ana@example.com>", "note": "   "}, "needs a note"),
        ({"note": "looks fine"}, "git identity"),
        ({"by": "the boss", "note": "looks fine"}, "git identity"),
        ({"by": "<ana@example.com>", "note": "looks fine"}, "git identity"),
    ],
    ids=["no-note", "blank-note", "no-reviewer", "made-up-reviewer", "no-name"],
)
def test_a_hand_written_approval_that_breaks_the_rules_does_not_count(
    loaded: LoadedConfig, entry: dict[str, str], reason: str
) -> None:
    saved(loaded)
    fingerprint = the_finding(load_last_report(loaded))
    write_approvals(loaded, fingerprint, **entry)
    report = load_last_report(loaded)
    assert report.blocking and report.findings[0].approval is None
    plan = plan_deploy(loaded, report)
    assert [f.fingerprint for f in plan.blocked_by] == [fingerprint]
    assert [(d.fingerprint, reason in d.reason) for d in plan.invalid_approvals] == [
        (fingerprint, True)
    ]
    assert plan.to_dict()["invalid_approvals"][0]["reason"] == plan.invalid_approvals[0].reason
    with pytest.raises(BlockingFindings, match=f"does not count: .*{reason}"):
        deploy(loaded, report)


def test_decide_refuses_what_deploy_would_not_count(loaded: LoadedConfig) -> None:
    saved(loaded)
    finding = load_last_report(loaded).findings[0]
    with pytest.raises(UsageError, match="needs a note"):
        record_decision(loaded.project_dir, finding, Decision.APPROVED, note="")
    with pytest.raises(UsageError, match="git identity"):
        record_decision(loaded.project_dir, finding, Decision.APPROVED, note="ok", by="boss")
    assert not approvals_path(loaded.project_dir).exists()


def test_decide_records_the_git_identity_and_deploy_counts_it(loaded: LoadedConfig) -> None:
    saved(loaded)
    report = load_last_report(loaded)
    recorded = record_decision(
        loaded.project_dir, report.findings[0], Decision.APPROVED, note="small orders go"
    )
    assert IDENTITY.fullmatch(recorded.by)
    assert re.search(r"<[^>]+@[^>]+>$", recorded.by)
    assert load_decisions(loaded.project_dir)[recorded.fingerprint].by == recorded.by
    plan = plan_deploy(loaded, load_last_report(loaded))
    assert plan.allowed, plan.to_dict()
    assert [f.fingerprint for f in plan.approved] == [recorded.fingerprint]
    assert plan.invalid_approvals == ()


def test_an_approval_does_not_survive_a_changed_finding(loaded: LoadedConfig) -> None:
    saved(loaded)
    report = load_last_report(loaded)
    record_decision(loaded.project_dir, report.findings[0], Decision.APPROVED, note="fine")
    # The same change with other diff numbers is another finding: the approval does not cover it.
    honest = reviewed(loaded)
    rows = RowCounts(base=10, head=5, removed=5, unchanged=5)
    model = dataclasses.replace(
        honest.models[0], diff=DataDiff(key=("id",), rows=rows), findings=()
    )
    save_report(loaded, dataclasses.replace(honest, models=(model,)))
    assert not plan_deploy(loaded, load_last_report(loaded)).allowed


# ----------------------------------------------------------------------------------------------
# Staleness by content, not by git cleanliness


TOOL_FILES = {
    "dataops_dev.yml": "version: 1\nsample:\n  rate: 0.5\n",
    "dataops.lock.yml": "version: 1\ntables: {}\n",
}


def test_tool_written_files_seen_by_the_review_do_not_make_it_stale(loaded: LoadedConfig) -> None:
    # A newcomer ran `init` (dataops_dev.yml rewritten, dataops.lock.yml new) and never committed.
    for name, text in TOOL_FILES.items():
        (loaded.project_dir / name).write_text(text)
    assert not gitrepo.state(loaded.project_dir).dirty
    saved(loaded)
    plan = plan_deploy(loaded, load_last_report(loaded))
    assert plan.stale is None and plan.unverified is None
    # Committing them afterwards changes nothing the review saw.
    git(loaded.project_dir, "add", "-A")
    git(loaded.project_dir, "commit", "-q", "-m", "config")
    assert plan_deploy(loaded, load_last_report(loaded)).stale is None


def test_a_file_written_after_the_review_makes_it_stale_until_the_next_review(
    loaded: LoadedConfig,
) -> None:
    saved(loaded)
    (loaded.project_dir / "dataops_dev.yml").write_text(TOOL_FILES["dataops_dev.yml"])
    stale = plan_deploy(loaded, load_last_report(loaded)).stale
    assert stale is not None and "dataops_dev.yml" in stale
    saved(loaded)  # the next review records what it saw
    assert plan_deploy(loaded, load_last_report(loaded)).stale is None


def test_decisions_never_make_the_review_stale(loaded: LoadedConfig) -> None:
    saved(loaded)
    report = load_last_report(loaded)
    record_decision(loaded.project_dir, report.findings[0], Decision.APPROVED, note="fine")
    assert plan_deploy(loaded, load_last_report(loaded)).stale is None
    git(loaded.project_dir, "add", "-A")
    git(loaded.project_dir, "commit", "-q", "-m", "approve")
    assert plan_deploy(loaded, load_last_report(loaded)).allowed


def test_a_model_edited_after_the_review_is_stale(loaded: LoadedConfig) -> None:
    saved(loaded)
    (loaded.project_dir / "models" / "orders.sql").write_text("select 1 as id\n")
    assert gitrepo.state(loaded.project_dir).dirty
    stale = plan_deploy(loaded, load_last_report(loaded)).stale
    assert stale is not None and "models/orders.sql" in stale


def test_a_model_edited_before_the_review_and_kept_is_not_stale(loaded: LoadedConfig) -> None:
    (loaded.project_dir / "models" / "orders.sql").write_text("select 1 as id\n")
    saved(loaded)
    assert plan_deploy(loaded, load_last_report(loaded)).stale is None
    # ...but reverting it is a change the review did not see.
    git(loaded.project_dir, "checkout", "--", "models/orders.sql")
    stale = plan_deploy(loaded, load_last_report(loaded)).stale
    assert stale is not None and "models/orders.sql" in stale


def test_a_review_that_did_not_build_stays_refused_whatever_the_approvals_say(
    loaded: LoadedConfig,
) -> None:
    from dataops_dev.decisions import fingerprint as make_fingerprint
    from dataops_dev.report.model import Finding

    error = "dbt could not build orders"
    build = ModelReport(
        name="(build)",
        unique_id="build",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.UNKNOWN,
        findings=(
            Finding(
                fingerprint=make_fingerprint("build_failed", error),
                kind=FindingKind.BUILD_FAILED,
                severity=Severity.BLOCKING,
                model=None,
                title="the branch did not build",
                detail=error,
            ),
        ),
    )
    honest = reviewed(loaded)
    report = dataclasses.replace(
        honest, models=(build, *honest.models), error=error, verdict=Verdict.ERROR
    )
    save_report(loaded, report)
    (failed,) = [f for f in report.findings if f.kind is FindingKind.BUILD_FAILED]
    write_approvals(loaded, failed.fingerprint, by="Ana <ana@example.com>", note="ship it")
    plan = plan_deploy(loaded, load_last_report(loaded))
    assert plan.error is not None and "did not finish" in plan.error
    assert failed.fingerprint in {f.fingerprint for f in plan.blocked_by}
    assert [d.reason for d in plan.invalid_approvals if d.fingerprint == failed.fingerprint] == [
        "a failed build cannot be approved: the review checked nothing of the branch"
    ]


def test_the_tui_reads_an_edited_report_but_its_deploy_plan_refuses_it(
    loaded: LoadedConfig,
) -> None:
    from dataops_dev.tui.app import header_text
    from dataops_dev.tui.session import ReviewSession

    path = saved(loaded)
    edit_report(path, _lower_severity)
    last = ReviewSession(project_dir=loaded.project_dir)
    report = last.load_report()
    assert "unverified: modified after review" in header_text(report).plain
    assert "modified after the review" in (last.plan_deploy(report).unverified or "")
    # A report opened by path is browsed unchecked; its tag is checked for the deploy plan.
    by_path = ReviewSession(project_dir=loaded.project_dir, report_path=path)
    report = by_path.load_report()
    assert report.verdict is Verdict.PASS
    assert "modified after the review" in (by_path.plan_deploy(report).unverified or "")
