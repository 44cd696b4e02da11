"""Recording decisions: what may be approved, and what is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops_dev.decisions import approvals_path, load_decisions, record_decision
from dataops_dev.errors import UsageError
from dataops_dev.report.model import Decision, Finding, FindingKind, Severity


def _build_failed() -> Finding:
    return Finding(
        fingerprint="0123456789abcdef",
        kind=FindingKind.BUILD_FAILED,
        severity=Severity.BLOCKING,
        model=None,
        title="the branch did not build",
        detail="dbt could not build the branch",
    )


def test_a_failed_build_cannot_be_approved(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="failed build cannot be approved") as error:
        record_decision(tmp_path, _build_failed(), Decision.APPROVED, note="ship it", by="me")
    assert "dataops-dev review" in (error.value.hint or "")
    assert not approvals_path(tmp_path).exists()


def test_a_failed_build_can_be_rejected(tmp_path: Path) -> None:
    recorded = record_decision(tmp_path, _build_failed(), Decision.REJECTED, by="me")
    assert load_decisions(tmp_path)[recorded.fingerprint].decision is Decision.REJECTED
