"""Recorded decisions: a reviewer's approval or rejection of a finding, bound to its fingerprint.

Approvals live in `dataops.approvals.yml` next to the dbt project (reviewable, committed with the
branch). A finding's fingerprint covers what was judged (model, rule, diff numbers, head SQL
hash), so any later change produces a new fingerprint and the old approval no longer applies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dataops_dev.atomic import write_text_atomic
from dataops_dev.errors import ConfigError, UsageError
from dataops_dev.report.model import (
    Approval,
    Decision,
    Finding,
    FindingKind,
    ModelReport,
    Report,
    Severity,
    Verdict,
)

APPROVALS_FILE = "dataops.approvals.yml"


def fingerprint(*parts: Any) -> str:
    """A stable 16-hex fingerprint of the parts (kind, model, rule, numbers, SQL hash...)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:16]


def sql_hash(sql: str | None) -> str:
    """Hash of SQL text with whitespace normalised (formatting alone keeps approvals valid)."""
    if not sql:
        return ""
    return hashlib.sha256(" ".join(sql.split()).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class RecordedDecision:
    fingerprint: str
    decision: Decision
    by: str
    at: str
    note: str = ""
    model: str | None = None
    kind: str | None = None
    title: str | None = None

    def approval(self) -> Approval:
        return Approval(decision=self.decision, by=self.by, at=self.at, note=self.note)


def approvals_path(project_dir: Path) -> Path:
    return project_dir / APPROVALS_FILE


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def load_decisions(project_dir: Path) -> dict[str, RecordedDecision]:
    """fingerprint -> the recorded decision (the latest one wins)."""
    path = approvals_path(project_dir)
    if not path.exists():
        return {}
    from dataops_dev.statefiles import load_yaml

    fix = "fix or delete the file, then record decisions with `dataops-dev decide`"
    data = load_yaml(path, what="approvals file", fix=fix, empty={}, error=ConfigError)
    entries = data.get("decisions")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ConfigError(f"{path.name}: `decisions` must be a list", fix, path=str(path))
    decisions: dict[str, RecordedDecision] = {}
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise TypeError(f"a mapping is needed, not {type(entry).__name__}")
            decision = RecordedDecision(
                fingerprint=str(entry["fingerprint"]),
                decision=Decision(entry["decision"]),
                by=str(entry.get("by", "")),
                at=str(entry.get("at", "")),
                note=str(entry.get("note") or ""),
                model=_optional_text(entry.get("model")),
                kind=_optional_text(entry.get("kind")),
                title=_optional_text(entry.get("title")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"{path.name}: entry {index + 1} is malformed ({exc})",
                "each entry needs fingerprint and decision (approved|rejected)",
                path=str(path),
            ) from exc
        decisions[decision.fingerprint] = decision
    return decisions


def _save(project_dir: Path, decisions: Iterable[RecordedDecision]) -> Path:
    path = approvals_path(project_dir)
    entries = []
    for decision in sorted(decisions, key=lambda d: (d.model or "", d.fingerprint)):
        entry: dict[str, Any] = {
            "fingerprint": decision.fingerprint,
            "decision": decision.decision.value,
            "model": decision.model,
            "kind": decision.kind,
            "title": decision.title,
            "by": decision.by,
            "at": decision.at,
            "note": decision.note,
        }
        entries.append({k: v for k, v in entry.items() if v not in (None, "")})
    header = (
        "# Decisions on dataops_dev findings (`dataops-dev decide`). Commit this file with the\n"
        "# branch: an approval applies only to the exact finding (fingerprint) it was made for.\n"
    )
    body = yaml.safe_dump({"version": 1, "decisions": entries}, sort_keys=False, allow_unicode=True)
    write_text_atomic(path, header + body)
    return path


IDENTITY = re.compile(r"[^<>\s][^<>]*? <[^<>\s@]+@[^<>\s@]+>")
"""A git identity as `decide` records it: `Name <email>`."""


def reviewer_identity(project_dir: Path) -> str:
    """The git author identity (`Name <email>`, from git config or GIT_AUTHOR_* variables)."""
    try:
        result = subprocess.run(
            ["git", "var", "GIT_AUTHOR_IDENT"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        result = None
    # `Name <email> <timestamp> <timezone>`: the identity is everything up to the `>`.
    ident = result.stdout.strip() if result is not None and result.returncode == 0 else ""
    identity = ident[: ident.rfind(">") + 1] if ">" in ident else ""
    if not IDENTITY.fullmatch(identity):
        raise UsageError(
            "git has no author identity: an approval records who made it as `Name <email>`",
            'set it with `git config user.name "Your Name"` and '
            '`git config user.email "you@example.com"`',
        )
    return identity


TRUST_KINDS = frozenset({FindingKind.MASKING_POLICY_CHANGED, FindingKind.PRODUCTION_TARGET_CHANGED})
"""Findings about the trust boundary: only someone who did not write the change may approve."""


def identity_email(identity: str) -> str:
    """The e-mail of `Name <email>` (lower case), or "" when there is none."""
    match = re.search(r"<([^<>\s]+)>\s*$", identity.strip())
    return match.group(1).lower() if match else ""


def change_authors(project_dir: Path, report: Report) -> frozenset[str]:
    """E-mails of whoever wrote the reviewed change: authors and committers of the commits
    between the report's base and head, and the current git identity when the review included
    uncommitted files. Empty when git cannot say (no repository, unknown commits)."""
    from dataops_dev import gitrepo
    from dataops_dev.errors import GitError

    try:
        authors = set(gitrepo.change_authors(project_dir, report.base.commit, report.head.commit))
    except GitError:
        return frozenset()
    if report.head.dirty:
        with contextlib.suppress(UsageError):
            authors.add(identity_email(reviewer_identity(project_dir)))
    return frozenset(a for a in authors if a)


def approval_problem(
    finding: Finding,
    decision: Decision,
    *,
    by: str,
    note: str,
    authors: frozenset[str] = frozenset(),
) -> tuple[str, str] | None:
    """Why this decision cannot count, with the hint to fix it, or None when it can.

    The one rule set: `decide` refuses to record such a decision, and deploy ignores one found
    in the approvals file (hand-written or recorded for a finding whose severity changed).
    `authors` are the e-mails of who wrote the change (`change_authors`): a branch is untrusted
    input, so its author cannot approve its own change to masking or to production's target.
    """
    if decision is not Decision.APPROVED:
        return None  # a rejection keeps the finding blocking: nothing to guard
    if finding.kind is FindingKind.BUILD_FAILED:
        # Nothing of the branch was checked: approving it would wave through unreviewed code.
        return (
            "a failed build cannot be approved: the review checked nothing of the branch",
            "fix the build, then run `dataops-dev review` again",
        )
    if finding.severity is not Severity.BLOCKING:
        return None
    if not note.strip():
        return (
            "approving a blocking finding needs a note saying why it is acceptable",
            'add --note "why this change is expected"',
        )
    if not IDENTITY.fullmatch(by.strip()):
        return (
            f"approving a blocking finding needs the reviewer's git identity `Name <email>`, "
            f"not {by.strip()[:60]!r}",
            'record it with `dataops-dev decide approve FINGERPRINT --note "..."`',
        )
    if finding.kind in TRUST_KINDS and identity_email(by) in authors:
        return (
            f"{finding.kind.value} changes the trust boundary: it needs a reviewer who did not "
            f"write the change, not {by.strip()[:60]!r}",
            "ask someone who did not author the branch to run `dataops-dev decide approve`",
        )
    return None


@dataclass(frozen=True)
class InvalidDecision:
    """A recorded approval that does not count, and why."""

    fingerprint: str
    title: str
    reason: str


def record_decision(
    project_dir: Path,
    finding: Finding,
    decision: Decision,
    *,
    note: str = "",
    by: str | None = None,
    authors: frozenset[str] = frozenset(),
) -> RecordedDecision:
    """Write (or replace) the decision on `finding` in the approvals file."""
    reviewer = by if by is not None else reviewer_identity(project_dir)
    problem = approval_problem(finding, decision, by=reviewer, note=note, authors=authors)
    if problem is not None:
        raise UsageError(*problem)
    recorded = RecordedDecision(
        fingerprint=finding.fingerprint,
        decision=decision,
        by=reviewer,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        note=note.strip(),
        model=finding.model,
        kind=finding.kind.value,
        title=finding.title,
    )
    decisions = load_decisions(project_dir)
    decisions[recorded.fingerprint] = recorded
    _save(project_dir, decisions.values())
    return recorded


def verdict_of(models: Iterable[ModelReport], error: str | None = None) -> Verdict:
    if error:
        return Verdict.ERROR
    blocked = any(f.blocking for m in models for f in m.findings)
    return Verdict.BLOCKED if blocked else Verdict.PASS


def _attach(
    finding: Finding, decisions: Mapping[str, RecordedDecision], authors: frozenset[str]
) -> Finding:
    """`finding` with its recorded decision as approval, if there is one that counts."""
    decision = decisions.get(finding.fingerprint)
    if decision is not None and approval_problem(
        finding, decision.decision, by=decision.by, note=decision.note, authors=authors
    ):
        decision = None
    return dataclasses.replace(finding, approval=decision.approval() if decision else None)


def apply_decisions(
    report: Report,
    decisions: Mapping[str, RecordedDecision],
    authors: frozenset[str] = frozenset(),
) -> Report:
    """The report with recorded decisions attached to its findings and the verdict redone.
    A decision that breaks the rules (`approval_problem`) is not attached: it does not count."""
    models = tuple(
        dataclasses.replace(
            model,
            findings=tuple(_attach(f, decisions, authors) for f in model.findings),
        )
        for model in report.models
    )
    return dataclasses.replace(report, models=models, verdict=verdict_of(models, report.error))


def invalid_decisions(
    report: Report,
    decisions: Mapping[str, RecordedDecision],
    authors: frozenset[str] = frozenset(),
) -> list[InvalidDecision]:
    """Recorded decisions on the report's findings that do not count, with the reason."""
    invalid = []
    for finding in report.findings:
        decision = decisions.get(finding.fingerprint)
        if decision is None:
            continue
        problem = approval_problem(
            finding, decision.decision, by=decision.by, note=decision.note, authors=authors
        )
        if problem is not None:
            invalid.append(InvalidDecision(finding.fingerprint, finding.title, problem[0]))
    return invalid


def stale_decisions(
    report: Report, decisions: Mapping[str, RecordedDecision]
) -> list[RecordedDecision]:
    """Recorded decisions that match no finding of the report (the evidence changed)."""
    current = {f.fingerprint for f in report.findings}
    return [d for d in decisions.values() if d.fingerprint not in current]


def find_finding(report: Report, prefix: str) -> Finding:
    """The finding whose fingerprint starts with `prefix` (at least 6 characters)."""
    if len(prefix) < 6:
        raise UsageError("give at least 6 characters of the fingerprint")
    matches = [f for f in report.findings if f.fingerprint.startswith(prefix)]
    if not matches:
        raise UsageError(
            f"no finding {prefix} in the last report",
            "list findings with `dataops-dev decide list`, or run `dataops-dev review` again",
        )
    if len({m.fingerprint for m in matches}) > 1:
        raise UsageError(f"{prefix} matches several findings", "give more characters")
    return matches[0]
