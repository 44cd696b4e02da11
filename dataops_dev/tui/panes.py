"""The tabs on the right of the TUI, one widget per view of the selected model.

Each pane formats fields of the typed Report (`ModelReport`, `DataDiff`, lineage edges) and never
recomputes them; report text is shown through rich `Text`, never parsed as markup.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from dataops_dev.report._summary import fmt_int, fmt_key, fmt_match, fmt_value, plural
from dataops_dev.report.model import (
    ColumnProfileChange,
    Finding,
    LineageEdge,
    ModelReport,
    Report,
    Severity,
    TestResult,
)

SPARK = "▁▂▃▄▅▆▇█"
CHANGE_STYLE = {
    "breaking": "bold red",
    "partial": "yellow",
    "additive": "green",
    "metadata": "cyan",
    "unknown": "magenta",
    "none": "dim",
}


CELL_LIMIT = 200
"""Longer values are cut (with …): a cell is one line, the full value is in the report."""


def cell(value: Any, style: str = "") -> Text:
    """A table cell that shows `value` literally (report values are data, not markup), written
    as every renderer writes it (`report._summary`); ∅ is the TUI's NULL."""
    if value is None:
        return Text("∅", style="dim")
    if isinstance(value, int) and not isinstance(value, bool):
        return Text(fmt_int(value), style=style)
    return Text(fmt_value(value, CELL_LIMIT), style=style)


def before_after(before: Any, after: Any) -> Text:
    if before == after:
        return cell(before, "dim")
    text = cell(before)
    text.append(" → ")
    text.append_text(cell(after, "bold"))
    return text


def sparkline(values: Sequence[int], peak: int) -> str:
    """Bars scaled to `peak` so two series (base and head) compare at a glance."""
    if not values or peak <= 0:
        return ""
    return "".join(SPARK[min(len(SPARK) - 1, round(v / peak * (len(SPARK) - 1)))] for v in values)


def verdict_text(report: Report) -> Text:
    style = {"pass": "bold green", "blocked": "bold red", "error": "bold magenta"}
    text = Text(report.verdict.value.upper(), style=style.get(report.verdict.value, "bold"))
    blocking = len(report.blocking)
    if blocking:
        text.append(f"  {plural(blocking, 'blocking finding')}", "red")
    return text


def _table(table: DataTable[Any], columns: Iterable[str]) -> DataTable[Any]:
    table.clear(columns=True)
    table.add_columns(*columns)
    return table


class Pane(VerticalScroll):
    """A tab's content: `show(report, model)` redraws it for the selected model."""

    DEFAULT_CSS = """
    Pane { padding: 0 1; }
    Pane DataTable { height: auto; max-height: 20; margin: 1 0 0 0; }
    Pane .note { color: $text-muted; }
    """

    version: int | None = None
    """The app's view version this pane shows (see `DataopsApp.ensure_pane`)."""

    def on_mount(self) -> None:
        ensure = getattr(self.app, "ensure_pane", None)
        if ensure is not None:
            ensure(self)

    def show(self, report: Report, model: ModelReport | None) -> None:
        raise NotImplementedError


class SummaryPane(Pane):
    """Verdict, the model's change, why, and its findings (approve / reject act on the row)."""

    def compose(self) -> ComposeResult:
        yield Static(id="summary-text")
        table: DataTable[Any] = DataTable(id="findings", cursor_type="row", zebra_stripes=True)
        yield table

    def show(self, report: Report, model: ModelReport | None) -> None:
        self._findings: tuple[Finding, ...] = model.findings if model else report.findings
        text = Text()
        text.append("verdict    ")
        text.append_text(verdict_text(report))
        text.append("\n")
        if model is None:
            text.append("no model selected", "dim")
        else:
            text.append("model      ")
            text.append(model.name, "bold")
            text.append(f"  {model.status.value} · ")
            text.append(model.change.value, CHANGE_STYLE.get(model.change.value, ""))
            if model.materialized:
                text.append(f" · {model.materialized}", "dim")
            if getattr(model, "contract_broken", False):
                text.append(" · contract BROKEN", "bold red")
            elif model.contract_enforced:
                text.append(" · contract enforced", "cyan")
            if model.rows_affected:
                text.append(" · rows can change", "yellow")
            for label, values in (
                ("changed", model.changed_columns),
                ("impacted", model.impacted_columns),
                ("downstream", model.impacted_models),
                ("exposures", model.exposures),
            ):
                if values:
                    text.append(f"\n{label:<11}", "dim")
                    text.append(", ".join(values))
            for reason in model.reasons:
                text.append("\n  • ")
                text.append(reason)
            if model.diff_note:
                text.append("\n")
                text.append(model.diff_note, "dim italic")
        self.query_one("#summary-text", Static).update(text)
        table = _table(self.query_one("#findings", DataTable), ("", "finding", "decision", "kind"))
        for finding in self._findings:
            mark = {"blocking": ("✗", "bold red"), "warning": ("!", "yellow")}.get(
                finding.severity.value, ("·", "dim")
            )
            if finding.approval is not None:
                decision = Text(finding.approval.decision.value, "green")
                if finding.approval.decision.value == "rejected":
                    decision.stylize("red")
                if finding.approval.note:
                    decision.append(f" ({finding.approval.note})", "dim")
            elif finding.severity is Severity.BLOCKING:
                decision = Text("needs approval", "bold red")
            else:
                decision = Text("—", "dim")
            table.add_row(
                Text(mark[0], mark[1]),
                cell(finding.title),
                decision,
                cell(finding.kind.value, "dim"),
                key=finding.fingerprint,
            )
        table.display = bool(self._findings)

    def selected_finding(self) -> Finding | None:
        findings = getattr(self, "_findings", ())
        if not findings:
            return None
        row = self.query_one("#findings", DataTable).cursor_row
        return findings[row] if 0 <= row < len(findings) else findings[0]


class SchemaPane(Pane):
    def compose(self) -> ComposeResult:
        yield Static(id="schema-note", classes="note")
        yield DataTable(id="schema-table", cursor_type="row", zebra_stripes=True)

    def show(self, report: Report, model: ModelReport | None) -> None:
        note = self.query_one("#schema-note", Static)
        table = _table(self.query_one("#schema-table", DataTable), ("change", "column", "type"))
        schema = model.schema if model else None
        if schema is None or not schema.changed:
            note.update(
                "no schema change" if schema is not None else "no schema diff in the report"
            )
            table.display = False
            return
        note.update(
            f"{len(schema.added)} added · {len(schema.removed)} removed · "
            f"{len(schema.type_changed)} type changed · {len(schema.renamed)} renamed"
        )
        for column in schema.added:
            table.add_row(Text("+ added", "green"), cell(column.name), cell(column.type))
        for column in schema.removed:
            table.add_row(Text("- removed", "red"), cell(column.name), cell(column.type))
        for change in schema.type_changed:
            table.add_row(
                Text("~ type", "yellow"),
                cell(change.name),
                before_after(change.before, change.after),
            )
        for old, new in schema.renamed:
            table.add_row(Text("→ renamed", "cyan"), before_after(old, new), Text(""))
        table.display = True


class RowsPane(Pane):
    def compose(self) -> ComposeResult:
        yield Static(id="rows-text")
        yield DataTable(id="rows-table", cursor_type="row", zebra_stripes=True)

    def show(self, report: Report, model: ModelReport | None) -> None:
        text_widget = self.query_one("#rows-text", Static)
        diff = model.diff if model else None
        table: DataTable[Any] = self.query_one("#rows-table", DataTable)
        if diff is None:
            text_widget.update(Text((model.diff_note if model else None) or "no data diff", "dim"))
            table.display = False
            return
        rows = diff.rows
        text = Text()
        text.append(f"rows  {rows.base:,} → {rows.head:,}")
        if rows.delta:
            text.append(f"  ({rows.delta:+,}", "yellow")
            text.append(
                f", {rows.delta_pct:+.1f}%)" if rows.delta_pct is not None else ")", "yellow"
            )
        text.append("\n")
        text.append(f"+{rows.added:,} added", "green")
        text.append("  ")
        text.append(f"-{rows.removed:,} removed", "red")
        text.append("  ")
        text.append(f"~{rows.changed:,} changed", "yellow")
        text.append(f"  ={rows.unchanged:,} unchanged", "dim")
        text.append(
            "\nkey   " + (", ".join(diff.key) if diff.key else "none (multiset of row hashes)"),
            "dim",
        )
        for label, base, head in (
            ("null keys", rows.null_keys_base, rows.null_keys_head),
            ("duplicate keys", rows.duplicate_keys_base, rows.duplicate_keys_head),
        ):
            if base or head:
                text.append(f"\n{label}: {base:,} → {head:,}", "magenta")
        if diff.row_samples:
            label = report.sample.examples_label if report.sample else "masked"
            text.append(f"\nexamples ({label} sample values): {len(diff.row_samples)}", "dim")
        text_widget.update(text)
        value_columns: list[str] = []
        for sample in diff.row_samples:
            for side in (sample.before, sample.after):
                for name in side or {}:
                    if name not in value_columns:
                        value_columns.append(name)
        _table(table, ("change", "key", *value_columns))
        styles = {"added": "green", "removed": "red", "changed": "yellow"}
        for sample in diff.row_samples:
            before, after = sample.before or {}, sample.after or {}
            values = []
            for name in value_columns:
                if sample.change == "changed" and name in before and name in after:
                    values.append(before_after(before[name], after[name]))
                elif name in after or name in before:
                    values.append(cell(after.get(name, before.get(name))))
                else:
                    values.append(Text(""))
            table.add_row(
                Text(sample.change, styles.get(sample.change, "")),
                cell(fmt_key(sample.key)),
                *values,
            )
        table.display = bool(diff.row_samples)


class ColumnsPane(Pane):
    """Per-column changed counts, match %, profile and distribution sparklines (base / head)."""

    def compose(self) -> ComposeResult:
        yield DataTable(id="columns-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="column-examples")

    def show(self, report: Report, model: ModelReport | None) -> None:
        table: DataTable[Any] = self.query_one("#columns-table", DataTable)
        examples = self.query_one("#column-examples", Static)
        diff = model.diff if model else None
        self._diff = diff
        self._label = report.sample.examples_label if report.sample else "masked"
        _table(
            table,
            ("column", "changed", "match", "base", "head", "nulls", "distinct", "mean"),
        )
        if diff is None:
            examples.update(Text("no data diff", "dim"))
            table.display = False
            return
        table.display = True
        profiles: dict[str, ColumnProfileChange] = {p.name: p for p in diff.profile}
        names = [c.name for c in diff.columns] + [
            p for p in profiles if p not in {c.name for c in diff.columns}
        ]
        changes = {c.name: c for c in diff.columns}
        self._names = names
        for name in names:
            change = changes.get(name)
            profile = profiles.get(name)
            base, head = (profile.base, profile.head) if profile else (None, None)
            peak = (
                max((max(b.base, b.head) for b in profile.histogram), default=0) if profile else 0
            )
            bins = profile.histogram if profile else ()
            table.add_row(
                cell(name, "bold" if change and change.changed else ""),
                cell(
                    change.changed if change else None,
                    "yellow" if change and change.changed else "",
                ),
                cell(fmt_match(change.match_pct) if change else "—"),
                Text(sparkline([b.base for b in bins], peak), "cyan"),
                Text(sparkline([b.head for b in bins], peak), "magenta"),
                *(
                    (
                        before_after(base.nulls if base else None, head.nulls if head else None),
                        before_after(
                            base.distinct if base else None, head.distinct if head else None
                        ),
                        before_after(base.mean if base else None, head.mean if head else None),
                    )
                    if profile is not None
                    else (Text(""), Text(""), Text(""))
                ),
                key=name,
            )
        first_changed = next((c.name for c in diff.columns if c.changed), None)
        self._show_examples(first_changed)
        if first_changed is not None:
            table.move_cursor(row=names.index(first_changed))

    def _show_examples(self, name: str | None) -> None:
        examples = self.query_one("#column-examples", Static)
        diff = getattr(self, "_diff", None)
        change = next((c for c in diff.columns if c.name == name), None) if diff else None
        if change is None or not change.examples:
            examples.update("")
            return
        text = Text(f"{change.name}: {change.changed:,} of {change.compared:,} changed", "bold")
        text.append(f"  ({getattr(self, '_label', 'masked')} examples)\n", "dim")
        for example in change.examples:
            text.append(f"  {fmt_key(example.key)}  ", "dim")
            text.append_text(before_after(example.before, example.after))
            text.append("\n")
        examples.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_examples(str(event.row_key.value))


def split_column(ref: str) -> tuple[str, str]:
    """`node.column` -> (node, column); a node may itself hold a dot (`source.table`)."""
    node, _, column = ref.rpartition(".")
    return node, column


class LineagePane(Pane):
    """Direct upstream and downstream columns of a node; Enter on a row walks to that node."""

    class Jump(Message):
        def __init__(self, node: str, column: str | None) -> None:
            super().__init__()
            self.node = node
            self.column = column

    def compose(self) -> ComposeResult:
        yield Static(id="lineage-title")
        yield DataTable(id="lineage-table", cursor_type="row", zebra_stripes=True)

    def show(self, report: Report, model: ModelReport | None) -> None:
        self._report = report
        self.show_node(model.name if model else None)

    def show_node(self, node: str | None, column: str | None = None) -> None:
        report: Report | None = getattr(self, "_report", None)
        title = self.query_one("#lineage-title", Static)
        table: DataTable[Any] = _table(
            self.query_one("#lineage-table", DataTable), ("", "column", "", "other column", "kind")
        )
        self._rows: list[tuple[str, str]] = []
        if report is None or node is None:
            title.update("")
            return
        upstream: list[LineageEdge] = []
        downstream: list[LineageEdge] = []
        for edge in report.lineage:
            if split_column(edge.target)[0] == node:
                upstream.append(edge)
            if split_column(edge.source)[0] == node:
                downstream.append(edge)
        text = Text(node, "bold")
        text.append(f"  {len(upstream)} upstream · {len(downstream)} downstream edges", "dim")
        text.append("\nenter: go to the other column", "dim")
        title.update(text)
        cursor: int | None = None
        for arrow, edges, mine, other in (
            ("←", upstream, "target", "source"),
            ("→", downstream, "source", "target"),
        ):
            for edge in sorted(edges, key=lambda e: (getattr(e, mine), getattr(e, other))):
                local = split_column(getattr(edge, mine))[1]
                if column is not None and local == column and cursor is None:
                    cursor = len(self._rows)
                self._rows.append(split_column(getattr(edge, other)))
                table.add_row(
                    Text("up" if arrow == "←" else "down", "cyan" if arrow == "←" else "magenta"),
                    cell(local, "bold" if local == column else ""),
                    Text(arrow),
                    cell(getattr(edge, other)),
                    cell(edge.kind, "dim"),
                )
        table.display = bool(self._rows)
        if not self._rows:
            title.update(text.append("\nno column lineage for this node in the report", "dim"))
        elif cursor is not None:
            table.move_cursor(row=cursor)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        rows = getattr(self, "_rows", [])
        if 0 <= event.cursor_row < len(rows):
            node, column = rows[event.cursor_row]
            self.post_message(self.Jump(node, column))


class TestsPane(Pane):
    """dbt test results; the highlighted test's compiled SQL (the failing query) underneath."""

    def compose(self) -> ComposeResult:
        yield DataTable(id="tests-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="test-sql")

    def show(self, report: Report, model: ModelReport | None) -> None:
        table: DataTable[Any] = _table(
            self.query_one("#tests-table", DataTable), ("status", "test", "failures", "")
        )
        tests: tuple[TestResult, ...] = model.tests if model else ()
        # Failures first: they are what the reviewer has to read.
        self._tests = tuple(sorted(tests, key=lambda t: (not t.failed, t.name)))
        styles = {"pass": "green", "fail": "bold red", "error": "bold magenta", "warn": "yellow"}
        for test in self._tests:
            table.add_row(
                Text(test.status, styles.get(test.status, "dim")),
                cell(test.name),
                cell(test.failures),
                Text("new failure" if test.new else "", "red"),
            )
        table.display = bool(self._tests)
        self._show_sql(0)

    def _show_sql(self, row: int) -> None:
        sql = self.query_one("#test-sql", Static)
        tests = getattr(self, "_tests", ())
        if not tests:
            sql.update(Text("no dbt tests on this model", "dim"))
            return
        test = tests[row] if 0 <= row < len(tests) else tests[0]
        text = Text(test.name, "bold")
        if test.message:
            text.append(f"\n{test.message}", "red" if test.failed else "dim")
        text.append("\n")
        text.append(test.compiled_sql or "(no compiled SQL in the report)", "")
        sql.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_sql(event.cursor_row)


def unified_diff(base: str, head: str) -> Text:
    text = Text()
    lines = list(
        difflib.unified_diff(
            base.splitlines(), head.splitlines(), "base", "branch", lineterm="", n=3
        )
    )
    if not lines:
        return Text("the compiled SQL is identical", "dim")
    for line in lines:
        style = ""
        if line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("-") and not line.startswith("---"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith(("+++", "---")):
            style = "bold"
        text.append(line + "\n", style)
    return text


def side_by_side(base: str, head: str) -> tuple[Text, Text]:
    left, right = Text(), Text()
    a, b = base.splitlines(), head.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        chunk_a, chunk_b = a[i1:i2], b[j1:j2]
        height = max(len(chunk_a), len(chunk_b))
        style_a = "" if tag == "equal" else "red"
        style_b = "" if tag == "equal" else "green"
        for index in range(height):
            left.append((chunk_a[index] if index < len(chunk_a) else "") + "\n", style_a)
            right.append((chunk_b[index] if index < len(chunk_b) else "") + "\n", style_b)
    return left, right


class SqlPane(Pane):
    """Compiled SQL, base vs branch: unified diff, or side by side (`s`)."""

    BINDINGS = [Binding("s", "toggle_layout", "Side by side")]
    split: reactive[bool] = reactive(False)

    DEFAULT_CSS = """
    SqlPane #sql-split { height: auto; display: none; }
    SqlPane #sql-split Static { width: 1fr; padding-right: 1; }
    SqlPane.-split #sql-split { display: block; }
    SqlPane.-split #sql-unified { display: none; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="sql-unified")
        with Horizontal(id="sql-split"):
            yield Static(id="sql-base")
            yield Static(id="sql-head")

    def show(self, report: Report, model: ModelReport | None) -> None:
        base = (model.base_sql if model else None) or ""
        head = (model.head_sql if model else None) or ""
        unified = self.query_one("#sql-unified", Static)
        if not base and not head:
            unified.update(Text("no compiled SQL in the report", "dim"))
            self.query_one("#sql-base", Static).update("")
            self.query_one("#sql-head", Static).update("")
            return
        unified.update(unified_diff(base, head))
        left, right = side_by_side(base, head)
        self.query_one("#sql-base", Static).update(Text("base\n", "bold") + left)
        self.query_one("#sql-head", Static).update(Text("branch\n", "bold") + right)

    def action_toggle_layout(self) -> None:
        self.split = not self.split

    def watch_split(self, split: bool) -> None:
        self.set_class(split, "-split")
