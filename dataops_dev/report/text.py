"""The terminal report: a Report printed with rich on the console the caller passes.

Verdict first (coloured), then the change table, per-model details, failed tests and the next
commands. Width follows the console; colour follows it too (the CLI's console honours NO_COLOR).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from dataops_dev.report._summary import (
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
    rows_differing,
    short_sha,
    verdict_spans,
)
from dataops_dev.report.model import ModelReport, Report, Severity, Verdict

__all__ = ["render_text"]

VERDICT_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.BLOCKED: "bold red",
    Verdict.ERROR: "bold yellow",
}
CHANGE_STYLE = {
    "breaking": "red",
    "partial": "yellow",
    "additive": "green",
    "added": "green",
    "removed": "red",
    "metadata": "blue",
    "unknown": "magenta",
    "impacted": "dim",
}


def _spans(spans: Iterable[Span], strong_style: str) -> Text:
    # Text objects, never markup strings: model names and values are data, not rich markup.
    out = Text()
    for span in spans:
        if span.style is Style.CODE:
            out.append(span.text, style="bold cyan")
        elif span.style is Style.STRONG:
            out.append(span.text, style=strong_style)
        else:
            out.append(span.text)
    return out


def _change_text(model: ModelReport) -> Text:
    label = change_label(model)
    return Text(label, style=CHANGE_STYLE.get(label, ""))


def _change_table(report: Report) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("model", overflow="fold")
    table.add_column("change")
    table.add_column("rows base → head", justify="right")
    table.add_column("Δ%", justify="right")
    table.add_column("differ", justify="right")
    table.add_column("columns changed", overflow="fold")
    table.add_column("findings")
    for model in model_order(report):
        diff = model.diff
        blocking = sum(1 for f in model.findings if f.blocking)
        failed = sum(1 for t in model.tests if t.failed)
        flags = Text()
        if blocking:
            flags.append(f"✗ {blocking} blocking ", style="red")
        if failed:
            flags.append(f"{failed} test failed", style="red")
        if not blocking and model.findings:
            flags.append(f"{len(model.findings)} noted", style="yellow")
        table.add_row(
            Text(model.name),
            _change_text(model),
            f"{fmt_int(diff.rows.base)} → {fmt_int(diff.rows.head)}" if diff else "–",
            fmt_pct(diff.rows.delta_pct) if diff else "–",
            fmt_int(rows_differing(diff.rows)) if diff else "–",
            Text(", ".join(c.name for c in diff.changed_columns)) if diff else Text("–"),
            flags,
        )
    return table


def _examples_label(report: Report) -> str:
    return report.sample.examples_label if report.sample else "masked"


def _details(model: ModelReport, examples: int, label: str = "masked") -> RenderableType:
    parts: list[RenderableType] = []
    head = Text()
    head.append(model.name, style="bold")
    head.append("  ")
    head.append_text(_change_text(model))
    if model.reasons:
        head.append("  " + "; ".join(model.reasons), style="dim")
    parts.append(head)
    for finding in model.findings:
        mark, style = ("✗", "red") if finding.blocking else ("✓", "green")
        if not finding.blocking and finding.approval is None:
            mark, style = ("!", "yellow")
        line = Text(f"  {mark} ", style=style)
        line.append(finding.title)
        line.append(f"  {finding.fingerprint[:12]}", style="dim")
        parts.append(line)
    schema = model.schema
    if schema is not None and schema.changed:
        line = Text("  schema: ", style="dim")
        items = [f"+{c.name} {c.type}" for c in schema.added]
        items += [f"-{c.name} {c.type}" for c in schema.removed]
        items += [f"~{c.name} {c.before} → {c.after}" for c in schema.type_changed]
        items += [f"{a} → {b} (renamed)" for a, b in schema.renamed]
        line.append(", ".join(items))
        parts.append(line)
    diff = model.diff
    if diff is None:
        parts.append(Text(f"  no data diff: {model.diff_note or 'not compared'}", style="dim"))
    else:
        rows = diff.rows
        line = Text("  rows: ", style="dim")
        line.append(
            f"{fmt_int(rows.base)} → {fmt_int(rows.head)} ({fmt_signed(rows.delta)}, "
            f"{fmt_pct(rows.delta_pct)}) · +{rows.added:,} added · -{rows.removed:,} removed"
        )
        if not rows.keyless:
            line.append(f" · ~{rows.changed:,} changed")
        key = ", ".join(diff.key) if diff.key else "no key (multiset)"
        line.append(f"  key {key}", style="dim")
        parts.append(line)
        if diff.changed_columns:
            table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
            table.add_column("column", overflow="fold")
            table.add_column("changed", justify="right")
            table.add_column("match", justify="right")
            table.add_column(f"examples ({label}): key  before → after", overflow="fold")
            for column in diff.changed_columns:
                shown = Text()
                for i, example in enumerate(column.examples[:examples]):
                    if i:
                        shown.append("\n")
                    shown.append(f"{fmt_key(example.key)}  ", style="dim")
                    shown.append(fmt_value(example.before, 30), style="red")
                    shown.append(" → ")
                    shown.append(fmt_value(example.after, 30), style="green")
                table.add_row(
                    Text(column.name), fmt_int(column.changed), fmt_match(column.match_pct), shown
                )
            parts.append(Padding(table, (0, 0, 0, 2)))
        if model.diff_note:
            parts.append(Text(f"  {model.diff_note}", style="dim"))
    for test in model.tests:
        if test.failed:
            line = Text("  test failed: ", style="red")
            line.append(test.name)
            if test.failures is not None:
                line.append(f" ({plural(test.failures, 'row')})", style="dim")
            parts.append(line)
    return Group(*parts)


def render_text(report: Report, console: Console, *, examples: int = 3, details: int = 40) -> None:
    """Print `report` to `console` (the caller picks stdout/stderr, width and colour).

    The change table lists every model; details follow for the first `details` of them
    (blocking first), so a 500-model change stays readable in a terminal.
    """
    style = VERDICT_STYLE[report.verdict]
    console.print(_spans(verdict_spans(report), style), soft_wrap=False)
    head, base = report.head, report.base
    where = Text(
        f"{head.ref} ({short_sha(head.commit)}{', dirty' if head.dirty else ''}) vs "
        f"{base.ref} ({short_sha(base.commit)})",
        style="dim",
    )
    if report.sample:
        where.append(f" · sample {report.sample.identity}")
    console.print(where)
    if report.error:
        console.print(Text(f"error: {report.error}", style="yellow"))
    if report.models:
        console.print()
        console.print(_change_table(report))
        ordered = model_order(report)
        for model in ordered[:details]:
            console.print()
            console.print(_details(model, examples, _examples_label(report)))
        if len(ordered) > details:
            console.print()
            console.print(
                Text(
                    f"details of {plural(len(ordered) - details, 'more model')} left out: "
                    "`dataops-dev report --format html -o report.html` shows all",
                    style="dim",
                )
            )
    if report.exposures:
        console.print()
        line = Text("exposures affected: ", style="bold")
        line.append(", ".join(f"{e.name} ({e.type})" for e in report.exposures))
        console.print(line)
    failed = failed_tests(report)
    if failed:
        console.print()
        console.print(Text("failed tests", style="bold red"))
        for model, test in failed:
            line = Text(f"  {test.name}", style="red")
            line.append(f"  {model.name} · {test.status}", style="dim")
            if test.new:
                line.append(" · new on this branch", style="dim")
            console.print(line)
    warnings = [f for f in report.findings if f.severity is Severity.WARNING and not f.approval]
    if warnings:
        console.print()
        console.print(Text(f"{plural(len(warnings), 'warning')}", style="bold yellow"))
        for finding in warnings:
            console.print(Text(f"  ! {finding.title}", style="yellow"))
    commands = next_commands(report)
    if commands:
        console.print()
        console.print(Text("next", style="bold"))
        for command in commands:
            console.print(Text(f"  {command}", style="cyan"), soft_wrap=True)
