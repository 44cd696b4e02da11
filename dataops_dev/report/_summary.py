"""What every renderer says the same way: the verdict sentence, number formats, next commands.

Pure functions over a `Report`: they pick and word what the report holds and compute nothing new.
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dataops_dev.report.model import (
    Finding,
    FindingKind,
    ModelReport,
    ModelStatus,
    Report,
    RowCounts,
    Verdict,
)

MARKER = "<!-- dataops-dev:review -->"
"""Hidden first line of the PR comment; `dataops-dev comment` finds its comment by it."""


class Style(str, Enum):
    PLAIN = "plain"
    STRONG = "strong"
    CODE = "code"


@dataclass(frozen=True)
class Span:
    """One piece of a sentence; each renderer maps the style to its own markup."""

    text: str
    style: Style = Style.PLAIN


VERDICT_LABEL = {Verdict.PASS: "Pass", Verdict.BLOCKED: "Blocked", Verdict.ERROR: "Error"}
VERDICT_ICON = {Verdict.PASS: "✅", Verdict.BLOCKED: "❌", Verdict.ERROR: "⚠️"}

KIND_LABEL: dict[FindingKind, tuple[str, str]] = {
    # (singular, plural); "to `model`" is appended where a finding names one model.
    FindingKind.BREAKING_CHANGE: ("breaking change", "breaking changes"),
    FindingKind.CONTRACT_BROKEN: ("broken contract", "broken contracts"),
    FindingKind.EXPOSURE_IMPACTED: ("impacted exposure", "impacted exposures"),
    FindingKind.POLICY: ("policy violation", "policy violations"),
    FindingKind.TEST_FAILED: ("failed test", "failed tests"),
    FindingKind.BUILD_FAILED: ("failed build", "failed builds"),
    FindingKind.NO_KEY: ("model without a key", "models without a key"),
    FindingKind.MASKING_POLICY_CHANGED: ("masking policy change", "masking policy changes"),
    FindingKind.PRODUCTION_TARGET_CHANGED: (
        "production target change",
        "production target changes",
    ),
}
_NAMED_KINDS = {FindingKind.BREAKING_CHANGE, FindingKind.CONTRACT_BROKEN, FindingKind.POLICY}


def plural(n: int, singular: str, many: str | None = None) -> str:
    return f"{n:,} {singular if n == 1 else (many or singular + 's')}"


def fmt_int(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def fmt_signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def fmt_pct(p: float | None, digits: int = 1) -> str:
    if p is None:
        return "–"
    if isinstance(p, float) and (math.isnan(p) or math.isinf(p)):
        return str(p)
    text = f"{p:+.{digits}f}%"
    return "0%" if text.lstrip("+-") == f"{0:.{digits}f}%" else text


def fmt_match(p: float | None) -> str:
    if p is None:
        return "–"
    # 99.96 must not read as "100.0%": a difference exists, so round down past two decimals.
    if p < 100 and round(p, 1) >= 100:
        return "99.9%"
    return f"{p:.1f}%"


def fmt_value(value: Any, limit: int = 60) -> str:
    """A masked sample value as one short line (never the repr of a Python object)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.6g}" if math.isfinite(value) else str(value)
    elif isinstance(value, decimal.Decimal | int):
        text = str(value)
    elif isinstance(value, datetime.datetime | datetime.date | datetime.time):
        text = value.isoformat()
    elif isinstance(value, bytes):
        text = value.hex()
    else:
        text = str(value)
    text = " ".join(text.split()) if "\n" in text or "\t" in text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_key(key: Any) -> str:
    if isinstance(key, dict) or hasattr(key, "items"):
        items = list(key.items())
        if len(items) == 1:
            return fmt_value(items[0][1], 40)
        return ", ".join(f"{k}={fmt_value(v, 24)}" for k, v in items)
    return fmt_value(key, 40)


def short_sha(commit: str) -> str:
    return commit[:8] if commit else "?"


def rows_differing(rows: RowCounts) -> int:
    """Rows added, removed or changed (the three are disjoint by construction)."""
    return rows.added + rows.removed + rows.changed


def changed_models(report: Report) -> tuple[ModelReport, ...]:
    return tuple(m for m in report.models if m.status is not ModelStatus.IMPACTED)


def impacted_models(report: Report) -> tuple[ModelReport, ...]:
    return tuple(m for m in report.models if m.status is ModelStatus.IMPACTED)


def _names(names: Iterable[str], limit: int = 3) -> list[Span]:
    names = list(dict.fromkeys(names))
    spans: list[Span] = []
    for i, name in enumerate(names[:limit]):
        if i:
            spans.append(Span(", "))
        spans.append(Span(name, Style.CODE))
    if len(names) > limit:
        spans.append(Span(f" and {len(names) - limit} more"))
    return spans


def _finding_groups(findings: Iterable[Finding]) -> list[Span]:
    groups: dict[FindingKind, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.kind, []).append(finding)
    spans: list[Span] = []
    for i, (kind, items) in enumerate(groups.items()):
        if i:
            spans.append(Span(", "))
        singular, many = KIND_LABEL.get(kind, (kind.value.replace("_", " "), ""))
        spans.append(Span(plural(len(items), singular, many or None)))
        models = [f.model for f in items if f.model]
        if kind in _NAMED_KINDS and models:
            spans.append(Span(" to "))
            spans.extend(_names(models))
    return spans


def verdict_spans(report: Report) -> list[Span]:
    """The verdict sentence with numbers, e.g. "Blocked: 2 blocking findings (…) — 3 models
    changed, 9 impacted, 1 exposure (`dash`) affected; 1,234 rows differ in `fct_orders`."."""
    spans = [Span(VERDICT_LABEL[report.verdict], Style.STRONG), Span(": ")]
    blocking = report.blocking
    approved = [f for f in report.findings if f.severity.value == "blocking" and not f.blocking]
    if report.verdict is Verdict.ERROR:
        spans.append(Span("the review did not finish"))
        if report.error:
            spans.append(Span(f" ({fmt_value(report.error, 160)})"))
    elif blocking:
        spans.append(Span(plural(len(blocking), "blocking finding") + " ("))
        spans.extend(_finding_groups(blocking))
        spans.append(Span(")"))
    else:
        spans.append(Span("no blocking findings"))
        if approved:
            spans.append(Span(f" ({plural(len(approved), 'approved finding')})"))
    if not report.models:
        spans.append(Span(" — no model changed."))
        return spans
    changed = changed_models(report)
    impacted = impacted_models(report)
    spans.append(Span(f" — {plural(len(changed), 'model')} changed, {len(impacted):,} impacted"))
    if report.exposures:
        spans.append(Span(f", {plural(len(report.exposures), 'exposure')} ("))
        spans.extend(_names(e.name for e in report.exposures))
        spans.append(Span(") affected"))
    with_rows = [
        (m, rows_differing(m.diff.rows)) for m in report.models if m.diff and m.diff.rows.differs
    ]
    with_rows = [(m, n) for m, n in with_rows if n]
    if with_rows:
        top, n = max(with_rows, key=lambda item: item[1])
        spans.append(Span(f"; {plural(n, 'row')} differ in "))
        spans.append(Span(top.name, Style.CODE))
        if len(with_rows) > 1:
            spans.append(Span(f" (and in {plural(len(with_rows) - 1, 'more model')})"))
    elif not any(m.diff for m in report.models):
        spans.append(Span("; no data compared"))
    else:
        spans.append(Span("; no row differs"))
    spans.append(Span("."))
    return spans


def verdict_plain(report: Report) -> str:
    return "".join(s.text for s in verdict_spans(report))


APPROVE_PREFIX = "dataops-dev decide approve "


def approve_command(finding: Finding) -> str:
    return f'{APPROVE_PREFIX}{finding.fingerprint[:12]} --note "…"'


def next_commands(report: Report) -> tuple[str, ...]:
    """What to run next, from the report as it stands (approvals applied): an approval for
    each blocking finding, then the deploy dry run and the TUI; after an error, review again.

    The one place these are decided: the review stores its result in `Report.next_commands`
    and every renderer calls this, so a saved report read back with newer approvals applied
    never offers to approve what is approved already.
    """
    if report.verdict is Verdict.ERROR:
        return ("dataops-dev review", "dataops-dev tui")
    approvals = {f.fingerprint: approve_command(f) for f in report.blocking}
    return (*approvals.values(), "dataops-dev deploy --dry-run", "dataops-dev tui")


def reuse_words(report: Report) -> str:
    """The environments this review reused instead of building, in words ("" when none)."""
    reused = [
        f"{name} reused"
        for name, side in (("baseline", report.base), ("branch build", report.head))
        if side.reused
    ]
    return ", ".join(reused)


def timing_words(report: Report) -> str:
    """`name 1.2s, ...` from the report's timings (seconds)."""
    return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in report.timings.items())


def change_label(model: ModelReport) -> str:
    if model.status is ModelStatus.IMPACTED:
        return "impacted"
    if model.status is ModelStatus.MODIFIED:
        return model.change.value
    return model.status.value


def failed_tests(report: Report) -> list[tuple[ModelReport, Any]]:
    return [(m, t) for m in report.models for t in m.tests if t.failed]


def model_order(report: Report) -> list[ModelReport]:
    """Blocking first, then edited models, then impacted; by name within each group."""
    rank = {
        ModelStatus.REMOVED: 0,
        ModelStatus.MODIFIED: 1,
        ModelStatus.ADDED: 2,
        ModelStatus.IMPACTED: 3,
    }
    return sorted(
        report.models,
        key=lambda m: (not any(f.blocking for f in m.findings), rank[m.status], m.name),
    )
