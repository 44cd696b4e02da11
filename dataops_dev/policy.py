"""Regression policy: expectations per model and column, and the findings they produce.

Findings carry a fingerprint of exactly what they are about (model, rule, the diff numbers, the
head SQL hash), so an approval recorded for one finding does not cover a later, different one.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence

from dataops_dev.config import ModelPolicy, PolicyConfig
from dataops_dev.decisions import fingerprint, sql_hash
from dataops_dev.report.model import (
    ChangeKind,
    DataDiff,
    Finding,
    FindingKind,
    ModelReport,
    ModelStatus,
    Report,
    Severity,
    TestResult,
)


def policy_for(config: PolicyConfig, model: str) -> ModelPolicy:
    """The model's expectations: an exact name beats a pattern; otherwise `default`."""
    if model in config.models:
        return config.models[model]
    for pattern in sorted(config.models):
        if fnmatch.fnmatchcase(model, pattern):
            return config.models[pattern]
    return config.default


def _finding(
    kind: FindingKind,
    severity: Severity,
    model: str,
    title: str,
    detail: str,
    *evidence: object,
) -> Finding:
    return Finding(
        fingerprint=fingerprint(kind.value, model, *evidence),
        kind=kind,
        severity=severity,
        model=model,
        title=title,
        detail=detail,
    )


def evaluate(report: ModelReport, config: PolicyConfig) -> tuple[Finding, ...]:
    """Every finding for one model of the review."""
    rules = policy_for(config, report.name)
    code = sql_hash(report.head_sql)
    findings: list[Finding] = []
    rows = report.diff.rows if report.diff else None
    numbers = (
        (rows.base, rows.head, rows.added, rows.removed, rows.changed) if rows is not None else ()
    )

    if report.change is ChangeKind.BREAKING and report.status is not ModelStatus.IMPACTED:
        blocking = config.block_on_breaking and not rules.allow_breaking
        reasons = (
            "; ".join(report.reasons)
            or "columns removed/renamed, or a filter, join or grain changed"
        )
        findings.append(
            _finding(
                FindingKind.BREAKING_CHANGE,
                Severity.BLOCKING if blocking else Severity.WARNING,
                report.name,
                f"breaking change to {report.name}",
                f"{reasons}. Impacted downstream: "
                + (", ".join(report.impacted_models[:10]) or "nothing")
                + ("" if blocking else " (allowed by policy)"),
                "breaking",
                code,
                *numbers,
            )
        )
    if report.contract_broken:
        contract_reasons = [r for r in report.reasons if "contract" in r.lower()] or [
            "a contracted column was removed or changed type"
        ]
        findings.append(
            _finding(
                FindingKind.CONTRACT_BROKEN,
                Severity.BLOCKING,
                report.name,
                f"enforced contract of {report.name} broken",
                "; ".join(contract_reasons),
                "contract",
                code,
            )
        )
    if report.exposures and report.diff is not None and _differs(report.diff):
        findings.append(
            _finding(
                FindingKind.EXPOSURE_IMPACTED,
                Severity.BLOCKING if config.block_on_exposure_impact else Severity.WARNING,
                report.name,
                f"data feeding {', '.join(report.exposures)} changes",
                f"{report.name} differs from the baseline and is read by "
                f"{', '.join(report.exposures)}",
                "exposure",
                code,
                *numbers,
            )
        )
    findings.extend(_test_findings(report.name, report.tests, config, code))
    if report.diff is not None:
        findings.extend(_diff_findings(report, report.diff, rules, code, numbers))
    if report.diff is not None and report.diff.rows.keyless:
        # Rows were compared as a multiset: changed rows show up as removed + added.
        findings.append(
            _finding(
                FindingKind.NO_KEY,
                Severity.WARNING,
                report.name,
                f"{report.name} has no primary key",
                report.diff_note
                or "rows compared as a multiset (add unique + not_null tests or diff.keys)",
                "no_key",
            )
        )
    return tuple(findings)


def _differs(diff: DataDiff) -> bool:
    return diff.rows.differs or bool(diff.changed_columns)


def _test_findings(
    model: str, tests: Sequence[TestResult], config: PolicyConfig, code: str
) -> list[Finding]:
    findings = []
    for test in tests:
        if not test.failed:
            continue
        blocking = config.block_on_test_failures and test.new
        findings.append(
            _finding(
                FindingKind.TEST_FAILED,
                Severity.BLOCKING if blocking else Severity.WARNING,
                model,
                f"dbt test {test.name} {'fails' if test.status == 'fail' else 'errors'}"
                + ("" if test.new else " (also on the baseline)"),
                test.message or "",
                "test",
                test.unique_id,
                test.failures,
                code,
            )
        )
    return findings


def _diff_findings(
    report: ModelReport,
    diff: DataDiff,
    rules: ModelPolicy,
    code: str,
    numbers: tuple[int, ...],
) -> list[Finding]:
    findings = []
    rows = diff.rows

    def violation(rule: str, title: str, detail: str) -> None:
        findings.append(
            _finding(
                FindingKind.POLICY,
                Severity.BLOCKING,
                report.name,
                title,
                detail,
                rule,
                code,
                *numbers,
            )
        )

    if rules.unchanged and _differs(diff):
        violation(
            "unchanged",
            f"{report.name} must not change",
            f"{rows.added} added, {rows.removed} removed, {rows.changed} changed rows",
        )
    changed = {c.name: c for c in diff.columns if c.changed}
    for column in rules.unchanged_columns:
        if column in changed:
            violation(
                f"unchanged_column:{column}",
                f"{report.name}.{column} must not change",
                f"{changed[column].changed} values changed",
            )
    limit = rules.max_row_delta_pct
    if limit is not None and rows.delta_pct is not None and abs(rows.delta_pct) > limit:
        violation(
            "max_row_delta_pct",
            f"{report.name} row count changes by {rows.delta_pct:+.1f}%",
            f"{rows.base} -> {rows.head} rows; the policy allows ±{limit:g}%",
        )
    if rules.no_removed_keys and rows.removed and not rows.keyless:
        violation(
            "no_removed_keys",
            f"{rows.removed} keys of {report.name} disappear",
            "the policy forbids removing keys",
        )
    return findings


_STRICTNESS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.BLOCKING: 2}


def rederive(report: Report, config: PolicyConfig) -> Report:
    """The report's findings judged again from its evidence (each model's change, diff and test
    results) by `config`, approvals cleared and the verdict redone.

    Deploy's verdict comes from here, not from the stored findings. The result never judges
    less than the stored report did: a stored finding the policy does not produce again (a
    failed build, a finding made outside `evaluate`) is kept, and where both have the same
    finding the stricter severity wins.
    """
    from dataops_dev.decisions import verdict_of

    models = tuple(
        dataclasses.replace(model, findings=_merged(model.findings, _recomputed(model, config)))
        for model in report.models
    )
    return dataclasses.replace(report, models=models, verdict=verdict_of(models, report.error))


def _recomputed(model: ModelReport, config: PolicyConfig) -> tuple[Finding, ...]:
    if model.unique_id == "build":
        return ()  # the review's stand-in for a branch that did not build: no evidence to judge
    return evaluate(model, config)


def _merged(stored: Sequence[Finding], recomputed: Sequence[Finding]) -> tuple[Finding, ...]:
    by_fingerprint = {f.fingerprint: f for f in stored}
    merged: dict[str, Finding] = {}
    for finding in recomputed:
        old = by_fingerprint.get(finding.fingerprint)
        if old is not None and _STRICTNESS.get(old.severity, 2) > _STRICTNESS[finding.severity]:
            finding = dataclasses.replace(finding, severity=old.severity)
        merged[finding.fingerprint] = dataclasses.replace(finding, approval=None)
    for finding in stored:
        merged.setdefault(finding.fingerprint, dataclasses.replace(finding, approval=None))
    return tuple(merged.values())
