"""The PR comment: a Report as GitHub-flavoured markdown under a hard character budget.

Verdict first, then counts, findings, a mermaid impact graph, one `<details>` per model and the
exact next commands. Over budget it drops examples, then collapses the details, then truncates.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dataops_dev.report._graph import MORE_ID, ImpactGraph, NodeKind, impact_graph
from dataops_dev.report._summary import (
    APPROVE_PREFIX,
    MARKER,
    VERDICT_ICON,
    VERDICT_LABEL,
    Span,
    Style,
    change_label,
    failed_tests,
    fmt_int,
    fmt_key,
    fmt_match,
    fmt_pct,
    fmt_signed,
    fmt_value,
    model_order,
    next_commands,
    plural,
    reuse_words,
    rows_differing,
    short_sha,
    timing_words,
    verdict_spans,
)
from dataops_dev.report.model import Finding, ModelReport, ProfileStats, Report, Severity

__all__ = [
    "DEFAULT_BUDGET",
    "MARKER",
    "Degradation",
    "MarkdownOptions",
    "render_markdown",
    "render_markdown_with_level",
]

DEFAULT_BUDGET = 60_000
"""Characters; GitHub rejects comment bodies over 65,536 and counts differ by client."""


MAX_COMMANDS = 30
MAX_FINDINGS = 100


class Degradation(str, Enum):
    FULL = "full"
    NO_EXAMPLES = "no_examples"
    """Example values and rows dropped."""
    COLLAPSED = "collapsed"
    """Per-model details replaced by one table row each."""
    TRUNCATED = "truncated"
    """Cut at the budget with a note pointing to the full report."""


@dataclass(frozen=True)
class MarkdownOptions:
    budget: int = DEFAULT_BUDGET
    graph_nodes: int = 60
    """Mermaid nodes before the rest collapse into "+N more" (mermaid allows far more)."""
    graph_edges: int = 300
    """Mermaid's default maxEdges is 500; stay well below."""
    examples_per_column: int = 5
    row_samples: int = 5
    artifact_hint: str = "the full report (JSON/HTML artifact of this workflow run)"
    """Where the notes about left-out parts send readers."""
    artifact_url: str | None = None
    """A link for `artifact_hint` (e.g. the Actions run page); only http(s) URLs are used."""


# ----------------------------------------------------------------------------------------------
# escaping


# Enough to keep text inert (no emphasis, links, code, cell breaks, strikethrough); `<`, `>` and
# `&` become entities, so no HTML gets through either.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_SPACE = re.compile(r"\s+")


# `@team` in a finding or an exposure owner would notify people from every PR comment update:
# a word joiner after the `@` keeps it visible but stops GitHub's mention.
_MENTION = re.compile(r"(^|[^\w])@(?=\w)")


def text(value: object) -> str:
    """Arbitrary text as inert markdown inside a paragraph or table cell."""
    escaped = html.escape(_SPACE.sub(" ", str(value)), quote=False)
    escaped = _MENTION.sub("\\1@\u2060", escaped)
    return _MD_SPECIAL.sub(r"\\\1", escaped)


def code(value: object) -> str:
    # <code> rather than backticks: a value may hold backticks, and `|` must not split a cell.
    escaped = html.escape(_SPACE.sub(" ", str(value)).strip(), quote=True)
    return "<code>" + escaped.replace("|", "&#124;") + "</code>"


def spans_md(spans: Iterable[Span]) -> str:
    out = []
    for span in spans:
        if span.style is Style.CODE:
            out.append(code(span.text))
        elif span.style is Style.STRONG:
            out.append(f"**{text(span.text)}**")
        else:
            out.append(text(span.text))
    return "".join(out)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


_SAFE_URL = re.compile(r"^https?://[^\s<>()\[\]\"'`]+$")


def _artifact(options: MarkdownOptions) -> str:
    url = options.artifact_url
    if url and _SAFE_URL.match(url):
        return f"[{text(options.artifact_hint)}]({url})"
    return text(options.artifact_hint)


def _mermaid_label(value: str) -> str:
    # Mermaid entity codes inside a quoted label; nothing else is interpreted there.
    out = value.replace("#", "#35;").replace('"', "#quot;")
    return out.replace("<", "#lt;").replace(">", "#gt;").replace("`", "#96;")


# ----------------------------------------------------------------------------------------------
# sections


def _header(report: Report) -> list[str]:
    icon = VERDICT_ICON[report.verdict]
    head, base = report.head, report.base
    dirty = " + uncommitted changes" if head.dirty else ""
    where = (
        f"{code(head.ref)} ({code(short_sha(head.commit))}{text(dirty)}) vs "
        f"{code(base.ref)} ({code(short_sha(base.commit))})"
    )
    sample = f" · sample {code(report.sample.identity)}" if report.sample else ""
    return [
        MARKER,
        f"## {icon} dataops-dev review: {VERDICT_LABEL[report.verdict]}",
        "",
        spans_md(verdict_spans(report)),
        "",
        f"<sub>{where}{sample} · {text(report.generated_at)}</sub>",
        "",
    ]


def _counts(report: Report) -> list[str]:
    order = ["breaking", "partial", "additive", "metadata", "unknown", "added", "removed"]
    counts = report.counts
    keys = [k for k in order if k in counts] + sorted(
        k for k in counts if k not in order and k != "impacted"
    )
    if "impacted" in counts:
        keys.append("impacted")
    rows = [[text(k), fmt_int(counts[k])] for k in keys]
    findings = report.findings
    lines = table(["change", "models"], rows) if rows else ["No model changed."]
    if findings:
        blocking = len(report.blocking)
        warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
        approved = sum(1 for f in findings if f.approval is not None)
        lines += [
            "",
            f"Findings: **{blocking:,} blocking** · {plural(warnings, 'warning')} · "
            f"{approved:,} decided",
        ]
    return lines + [""]


def _finding_row(finding: Finding) -> list[str]:
    if finding.approval is not None:
        state = f"{finding.approval.decision.value} by {text(finding.approval.by)}"
    elif finding.blocking:
        state = "**needs approval**"
    else:
        state = text(finding.severity.value)
    return [
        text(finding.severity.value),
        code(finding.model) if finding.model else "–",
        text(finding.title),
        code(finding.fingerprint[:12]),
        state,
    ]


def _findings(report: Report) -> list[str]:
    findings = sorted(
        report.findings,
        key=lambda f: (not f.blocking, f.severity is not Severity.BLOCKING, f.model or ""),
    )
    if not findings:
        return []
    lines = [
        "### Findings",
        "",
        *table(
            ["severity", "model", "finding", "fingerprint", "state"],
            map(_finding_row, findings[:MAX_FINDINGS]),
        ),
        "",
    ]
    if len(findings) > MAX_FINDINGS:
        lines += [f"…and {plural(len(findings) - MAX_FINDINGS, 'more finding')}.", ""]
    return lines


def _mermaid(graph: ImpactGraph) -> list[str]:
    ids = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = ["```mermaid", "graph LR"]
    for node in graph.nodes:
        label = _mermaid_label(node.label)
        detail = _mermaid_label(node.detail)
        nid = ids[node.id]
        if node.kind is NodeKind.EXPOSURE:
            lines.append(f'  {nid}{{{{"{label}<br/>{detail}"}}}}:::exposure')
        elif node.id == MORE_ID:
            lines.append(f'  {nid}["{label}"]:::more')
        else:
            lines.append(f'  {nid}["{label}<br/>{detail}"]:::{node.kind.value}')
    for source, target in graph.edges:
        lines.append(f"  {ids[source]} --> {ids[target]}")
    lines += [
        "  classDef blocking fill:#fde2e1,stroke:#d1242f,stroke-width:3px,color:#000",
        "  classDef changed fill:#fff1d6,stroke:#bf8700,stroke-width:2px,color:#000",
        "  classDef impacted fill:#eef2f6,stroke:#8c959f,color:#000",
        "  classDef exposure fill:#ddf4ff,stroke:#0969da,color:#000",
        "  classDef more fill:#ffffff,stroke:#8c959f,stroke-dasharray:4 3,color:#000",
        "```",
    ]
    return lines


def _graph(report: Report, options: MarkdownOptions) -> list[str]:
    graph = impact_graph(report, options.graph_nodes, options.graph_edges)
    if not graph.edges and len(graph.nodes) < 2:
        return []
    lines = ["### Impact", "", *_mermaid(graph)]
    notes = []
    if graph.omitted_nodes:
        notes.append(
            f"{plural(graph.omitted_nodes, 'node')} beyond the first {options.graph_nodes} "
            "(nearest to a change first) are collapsed into the “more” node"
        )
    if graph.omitted_edges:
        notes.append(f"{plural(graph.omitted_edges, 'edge')} left out")
    if notes:
        lines += ["", "<sub>" + text("; ".join(notes)) + ".</sub>"]
    return lines + [""]


def _rows_cell(model: ModelReport) -> str:
    if model.diff is None:
        return "–"
    rows = model.diff.rows
    return f"{fmt_int(rows.base)} → {fmt_int(rows.head)} ({fmt_pct(rows.delta_pct)})"


def _summary_cells(model: ModelReport) -> list[str]:
    diff = model.diff
    differing = fmt_int(rows_differing(diff.rows)) if diff else "–"
    cols = ", ".join(code(c.name) for c in diff.changed_columns[:4]) if diff else ""
    if diff and len(diff.changed_columns) > 4:
        cols += f" +{len(diff.changed_columns) - 4}"
    failed = sum(1 for t in model.tests if t.failed)
    blocking = sum(1 for f in model.findings if f.blocking)
    flags = []
    if blocking:
        flags.append(f"❌ {blocking}")
    if failed:
        flags.append(f"🧪 {failed} failed")
    return [
        code(model.name),
        text(change_label(model)),
        _rows_cell(model),
        differing,
        cols or "–",
        " ".join(flags) or "–",
    ]


SUMMARY_HEADERS = ["model", "change", "rows base → head", "rows differing", "columns changed", ""]


def _schema_lines(model: ModelReport) -> list[str]:
    schema = model.schema
    if schema is None or not schema.changed:
        return []
    rows = [[code(c.name), "added", "–", code(c.type)] for c in schema.added]
    rows += [[code(c.name), "removed", code(c.type), "–"] for c in schema.removed]
    rows += [
        [code(c.name), "type changed", code(c.before), code(c.after)] for c in schema.type_changed
    ]
    rows += [[code(f"{a} → {b}"), "renamed", code(a), code(b)] for a, b in schema.renamed]
    return ["**Schema**", "", *table(["column", "change", "before", "after"], rows), ""]


def _row_lines(model: ModelReport) -> list[str]:
    diff = model.diff
    if diff is None:
        return [f"_No data diff: {text(model.diff_note or 'not compared')}_", ""]
    rows = diff.rows
    key = ", ".join(code(k) for k in diff.key) if diff.key else "none (multiset of rows)"
    cells = [
        fmt_int(rows.base),
        fmt_int(rows.head),
        f"{fmt_signed(rows.delta)} ({fmt_pct(rows.delta_pct)})",
        fmt_int(rows.added),
        fmt_int(rows.removed),
        "–" if rows.keyless else fmt_int(rows.changed),
        fmt_int(rows.unchanged),
    ]
    lines = [
        f"**Rows** (key {key})",
        "",
        *table(["base", "head", "Δ", "added", "removed", "changed", "unchanged"], [cells]),
    ]
    odd = []
    if rows.null_keys_base or rows.null_keys_head:
        odd.append(f"null keys {rows.null_keys_base:,} → {rows.null_keys_head:,}")
    if rows.duplicate_keys_base or rows.duplicate_keys_head:
        odd.append(f"duplicate keys {rows.duplicate_keys_base:,} → {rows.duplicate_keys_head:,}")
    if odd:
        lines += ["", "⚠️ " + text("; ".join(odd))]
    if model.diff_note:
        lines += ["", f"_{text(model.diff_note)}_"]
    return lines + [""]


def _row_values(values: Mapping[str, Any] | None) -> str:
    if not values:
        return "–"
    items = list(values.items())[:6]
    return code(", ".join(f"{k}={fmt_value(v, 30)}" for k, v in items))


def _column_lines(
    model: ModelReport, options: MarkdownOptions, examples: bool, label: str = "masked"
) -> list[str]:
    diff = model.diff
    if diff is None or not diff.columns:
        return []
    changed = diff.changed_columns
    lines = []
    if changed:
        rows = [
            [code(c.name), fmt_int(c.changed), fmt_int(c.compared), fmt_match(c.match_pct)]
            for c in changed
        ]
        same = len(diff.columns) - len(changed)
        lines += ["**Columns**", "", *table(["column", "changed", "compared", "match"], rows)]
        if same:
            lines += ["", f"{plural(same, 'other column')} identical."]
        lines.append("")
    else:
        lines += [f"All {plural(len(diff.columns), 'compared column')} identical.", ""]
    if examples:
        rows = []
        for column in changed:
            for example in column.examples[: options.examples_per_column]:
                rows.append(
                    [
                        code(column.name),
                        code(fmt_key(example.key)),
                        code(fmt_value(example.before)),
                        code(fmt_value(example.after)),
                    ]
                )
        if rows:
            lines += [
                (
                    "<sub>Examples (masked sample values)</sub>"
                    if label == "masked"
                    else f"<sub>Examples ({label})</sub>"
                ),
                "",
                *table(["column", "key", "before", "after"], rows),
                "",
            ]
        # Changed rows repeat the column examples above; added/removed rows are new evidence.
        samples = [s for s in diff.row_samples if s.change != "changed" or not rows][
            : options.row_samples
        ]
        if samples:
            sample_rows = [
                [text(s.change), code(fmt_key(s.key)), _row_values(s.before), _row_values(s.after)]
                for s in samples
            ]
            lines += [
                f"<sub>Example rows ({label})</sub>",
                "",
                *table(["row", "key", "before", "after"], sample_rows),
                "",
            ]
    return lines


def _pair(before: object, after: object) -> str:
    # None in a profile means "not applicable" (no mean of text), not a NULL value.
    a = "–" if before is None else fmt_value(before, 20)
    b = "–" if after is None else fmt_value(after, 20)
    return (code(a) if a != "–" else a) if a == b else f"{code(a)} → {code(b)}"


def _top_changes(base: ProfileStats, head: ProfileStats, limit: int = 3) -> str:
    """The most frequent values whose counts moved, e.g. `loyal 300 → 290`."""
    before = {fmt_value(v, 20): n for v, n in base.top_values}
    after = {fmt_value(v, 20): n for v, n in head.top_values}
    moved = [
        (value, before.get(value), after.get(value))
        for value in dict.fromkeys([*before, *after])
        if before.get(value) != after.get(value)
    ]
    moved.sort(key=lambda m: -abs((m[2] or 0) - (m[1] or 0)))
    cells = [
        f"{code(value)} {fmt_int(b) if b is not None else '–'} → {fmt_int(a) if a is not None else '–'}"
        for value, b, a in moved[:limit]
    ]
    if len(moved) > limit:
        cells.append(f"+{len(moved) - limit}")
    return "<br>".join(cells) or "–"


def _profile_lines(model: ModelReport) -> list[str]:
    diff = model.diff
    if diff is None:
        return []
    rows = []
    for p in diff.profile:
        if not p.changed or p.base is None or p.head is None:
            continue
        b, h = p.base, p.head
        rows.append(
            [
                code(p.name),
                _pair(b.nulls, h.nulls),
                _pair(b.distinct, h.distinct),
                _pair(b.min, h.min),
                _pair(b.max, h.max),
                _pair(b.mean, h.mean),
                # Numeric columns have bins; their top values are mostly singletons (noise).
                "–" if p.histogram else _top_changes(b, h),
            ]
        )
    if not rows:
        return []
    return [
        "**Profile**",
        "",
        *table(["column", "nulls", "distinct", "min", "max", "mean", "top values"], rows),
        "",
    ]


def _test_lines(model: ModelReport) -> list[str]:
    failed = [t for t in model.tests if t.failed]
    if not model.tests:
        return []
    if not failed:
        return [f"Tests: {plural(len(model.tests), 'test')} passed.", ""]
    rows = [
        [
            code(t.name),
            text(t.status),
            fmt_int(t.failures),
            "new" if t.new else "also on base",
            text(fmt_value(t.message or "", 120)),
        ]
        for t in failed
    ]
    return [
        "**Failed tests**",
        "",
        *table(["test", "status", "failures", "since", "message"], rows),
        "",
    ]


def _model_details(
    model: ModelReport, options: MarkdownOptions, examples: bool, label: str = "masked"
) -> list[str]:
    blocking = any(f.blocking for f in model.findings)
    cells = _summary_cells(model)
    summary = f"<b>{html.escape(model.name)}</b> · {html.escape(change_label(model))}"
    if model.diff is not None:
        n = rows_differing(model.diff.rows)
        summary += f" · {n:,} rows differ" if n else " · no row differs"
    if cells[-1] != "–":
        summary += " · " + cells[-1]
    lines = [f"<details{' open' if blocking else ''}><summary>{summary}</summary>", ""]
    facts = []
    if model.reasons:
        facts.append("Why: " + text("; ".join(model.reasons)))
    if model.changed_columns:
        facts.append("Changed columns: " + ", ".join(code(c) for c in model.changed_columns))
    if model.impacted_columns:
        facts.append("Impacted columns: " + ", ".join(code(c) for c in model.impacted_columns[:20]))
    if model.rows_affected:
        facts.append("The change can add or remove rows here.")
    if model.impacted_models:
        names = model.impacted_models
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        facts.append("Reaches: " + ", ".join(code(n) for n in names[:10]) + text(more))
    if model.exposures:
        facts.append("Exposures: " + ", ".join(code(e) for e in model.exposures))
    if model.contract_enforced:
        facts.append("Contract enforced.")
    lines += [f"- {fact}" for fact in facts]
    if facts:
        lines.append("")
    for finding in model.findings:
        mark = "❌" if finding.blocking else ("✅" if finding.approval else "⚠️")
        detail = f" — {text(finding.detail)}" if finding.detail else ""
        lines.append(f"{mark} {text(finding.title)}{detail} ({code(finding.fingerprint[:12])})")
    if model.findings:
        lines.append("")
    lines += _schema_lines(model)
    lines += _row_lines(model)
    lines += _column_lines(model, options, examples, label)
    lines += _profile_lines(model)
    lines += _test_lines(model)
    lines += ["</details>", ""]
    return lines


def _models(
    report: Report,
    options: MarkdownOptions,
    level: Degradation,
    detailed: int | None = None,
    cache: dict[tuple[int, bool], list[str]] | None = None,
) -> list[str]:
    """Details for the first `detailed` models (blocking first), one table row for the rest."""
    cache = {} if cache is None else cache
    models = model_order(report)
    if not models:
        return []
    if level is Degradation.FULL or level is Degradation.NO_EXAMPLES:
        detailed = len(models)
    detailed = len(models) if detailed is None else max(0, min(detailed, len(models)))
    examples = level is Degradation.FULL
    lines = ["### Models", ""]
    for i, model in enumerate(models[:detailed]):
        # The budget search renders the same details many times: render each once.
        if (i, examples) not in cache:
            label = report.sample.examples_label if report.sample else "masked"
            cache[(i, examples)] = _model_details(model, options, examples, label)
        lines += cache[(i, examples)]
    notes = []
    shown = models[:detailed]
    had_examples = any(c.examples for m in shown if m.diff for c in m.diff.columns) or any(
        m.diff and m.diff.row_samples for m in shown
    )
    if not examples and had_examples:
        notes.append("example values")
    rest = models[detailed:]
    if rest:
        if detailed:
            lines += [f"{plural(len(rest), 'more model')}:", ""]
        lines += table(SUMMARY_HEADERS, (_summary_cells(m) for m in rest))
        lines.append("")
        notes.append(f"details of {plural(len(rest), 'model')}")
    if notes:
        lines += [
            f"<sub>Left out to fit the comment: {text(' and '.join(notes))}; "
            f"see {_artifact(options)}.</sub>",
            "",
        ]
    return lines


def _failed_tests(report: Report) -> list[str]:
    failed = failed_tests(report)
    if not failed:
        return []
    rows = [
        [
            code(t.name),
            code(m.name),
            text(t.status),
            fmt_int(t.failures),
            "new" if t.new else "also on base",
        ]
        for m, t in failed
    ]
    return [
        "### Failed tests",
        "",
        *table(["test", "model", "status", "failures", "since"], rows),
        "",
    ]


def _next(report: Report) -> list[str]:
    commands = list(next_commands(report))
    if not commands:
        return []
    if len(commands) > MAX_COMMANDS:
        # Too many approvals to list: keep the first ones and every other command.
        approvals = [c for c in commands if c.startswith(APPROVE_PREFIX)]
        others = [c for c in commands if not c.startswith(APPROVE_PREFIX)]
        kept = max(0, MAX_COMMANDS - len(others) - 1)
        more = len(approvals) - kept
        commands = [
            *approvals[:kept],
            f"# … {more:,} more approvals: dataops-dev decide list",
            *others,
        ]
    # A fenced block shows the commands verbatim (no escaping needed), ready to copy.
    fence = "````" if any("```" in c for c in commands) else "```"
    return ["### Next", "", fence + "sh", *commands, fence, ""]


def _footer(report: Report) -> list[str]:
    facts = "".join(
        f" · {text(words)}" for words in (reuse_words(report), timing_words(report)) if words
    )
    return [f"<sub>dataops-dev · report schema v{report.schema_version}{facts}</sub>"]


class _Assembler:
    """The comment's sections; only the models section changes between degradation levels."""

    def __init__(self, report: Report, options: MarkdownOptions) -> None:
        self.report = report
        self.options = options
        self.head = [
            *_header(report),
            *_counts(report),
            *_findings(report),
            *_graph(report, options),
        ]
        self.failed = _failed_tests(report)
        self.next = _next(report)
        self.footer = _footer(report)
        self.cache: dict[tuple[int, bool], list[str]] = {}

    def lines(
        self, level: Degradation, detailed: int | None = None, with_next: bool = True
    ) -> list[str]:
        models = _models(self.report, self.options, level, detailed, self.cache)
        return [
            *self.head,
            *models,
            *self.failed,
            *(self.next if with_next else []),
            *self.footer,
        ]

    def body(self, level: Degradation, detailed: int | None = None) -> str:
        return "\n".join(self.lines(level, detailed)) + "\n"


def _truncate(lines: list[str], budget: int, note: str) -> str:
    """Whole lines up to the budget, closing an open code fence and open <details>."""
    reserve = len(note) + 200
    kept: list[str] = []
    size = 0
    fence: str | None = None
    open_details = 0
    for line in lines:
        if size + len(line) + 1 > budget - reserve:
            break
        kept.append(line)
        size += len(line) + 1
        stripped = line.strip()
        if stripped.startswith("```"):
            ticks = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            fence = None if fence and ticks.startswith(fence) else (fence or ticks)
        elif fence is None:
            open_details += stripped.count("<details") - stripped.count("</details>")
    if fence:
        kept.append(fence)
    kept += ["", "</details>"] * max(0, open_details)
    kept += ["", note]
    return "\n".join(kept) + "\n"


def render_markdown_with_level(
    report: Report, options: MarkdownOptions | None = None
) -> tuple[str, Degradation]:
    """The comment body and how far it had to degrade to fit `options.budget` characters.

    Order: everything; without example values; details for as many models as fit (blocking
    first) and one table row for the rest; finally cut at the budget with a note.
    """
    options = options or MarkdownOptions()
    parts = _Assembler(report, options)
    smallest = parts.body(Degradation.COLLAPSED, detailed=0)
    if len(smallest) <= options.budget:
        for level in (Degradation.FULL, Degradation.NO_EXAMPLES):
            body = parts.body(level)
            if len(body) <= options.budget:
                return body, level
        low, high, best = 1, len(report.models), smallest
        while low <= high:
            middle = (low + high) // 2
            body = parts.body(Degradation.COLLAPSED, detailed=middle)
            if len(body) <= options.budget:
                best, low = body, middle + 1
            else:
                high = middle - 1
        return best, Degradation.COLLAPSED
    # Keep the exact next commands visible: they stay whole after the cut.
    head_lines = parts.lines(Degradation.COLLAPSED, detailed=0, with_next=False)
    note = (
        f"> ✂️ Truncated to fit GitHub's comment limit: {plural(len(report.models), 'model')} "
        f"in total; see {_artifact(options)}."
    )
    budget = options.budget - sum(len(line) + 1 for line in parts.next) - 1
    body = _truncate(head_lines, budget, note)
    return body + "\n" + "\n".join(parts.next) + "\n", Degradation.TRUNCATED


def render_markdown(report: Report, options: MarkdownOptions | None = None) -> str:
    """The PR comment for `report`: starts with `MARKER`, never longer than the budget."""
    return render_markdown_with_level(report, options)[0]
