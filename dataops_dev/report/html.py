"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network).

For people who would rather look than read: verdict, impact DAG, per-model row bars, column
distributions before/after, diff tables and findings; light and dark follow the system.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dataops_dev.report._charts import dag_svg, esc, histogram_svg, rows_svg, top_values_svg
from dataops_dev.report._graph import impact_graph
from dataops_dev.report._summary import (
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
from dataops_dev.report.model import ModelReport, Report

__all__ = ["render_html"]

_CSS = """
:root { color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --card: #f6f8fa;
  --base: #8c959f; --head: #fb8500; --red: #d1242f; --green: #1a7f37; --yellow: #9a6700;
  --blue: #0969da; --unchanged: #c8d1da; --changed: #fb8500; --added: #2da44e; --removed: #d1242f;
  --n-blocking: #ffebe9; --n-changed: #fff8c5; --n-impacted: #f6f8fa; --n-exposure: #ddf4ff; }
@media (prefers-color-scheme: dark) { :root {
  --bg: #0d1117; --fg: #e6edf3; --muted: #8d96a0; --line: #30363d; --card: #161b22;
  --base: #6e7681; --head: #f0883e; --red: #f85149; --green: #3fb950; --yellow: #d29922;
  --blue: #4493f8; --unchanged: #30363d; --changed: #f0883e; --added: #3fb950; --removed: #f85149;
  --n-blocking: #3c1618; --n-changed: #3a2c0a; --n-impacted: #161b22; --n-exposure: #0c2d6b; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; background: var(--bg); color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 1280px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 18px; margin: 32px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
code { background: var(--card); padding: 1px 4px; border-radius: 4px; }
pre { background: var(--card); border: 1px solid var(--line); padding: 10px 12px;
  border-radius: 6px; overflow-x: auto; }
.verdict { padding: 14px 18px; border-radius: 8px; border: 1px solid var(--line);
  border-left: 6px solid var(--muted); background: var(--card); font-size: 15px; }
.verdict.pass { border-left-color: var(--green); }
.verdict.blocked { border-left-color: var(--red); }
.verdict.error { border-left-color: var(--yellow); }
.verdict strong { font-size: 17px; }
.meta { color: var(--muted); margin: 6px 0 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 110px;
  background: var(--card); }
.card b { display: block; font-size: 20px; } .card span { color: var(--muted); }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.tag { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 12px;
  border: 1px solid var(--line); }
.tag.breaking, .tag.removed, .tag.blocking { color: var(--red); border-color: var(--red); }
.tag.partial, .tag.warning { color: var(--yellow); border-color: var(--yellow); }
.tag.additive, .tag.added, .tag.approved { color: var(--green); border-color: var(--green); }
.tag.impacted, .tag.info { color: var(--muted); }
details.model { border: 1px solid var(--line); border-radius: 8px; margin: 10px 0;
  padding: 0 14px; }
details.model > summary { cursor: pointer; padding: 10px 0; font-weight: 600; }
details.model[open] > summary { border-bottom: 1px solid var(--line); margin-bottom: 8px; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; }
.chart-box { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
.chart-box h4 { margin: 0 0 4px; font-size: 13px; }
.graph { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
svg .base { fill: var(--base); } svg .head { fill: var(--head); }
svg .unchanged { fill: var(--unchanged); } svg .changed { fill: var(--changed); }
svg .added { fill: var(--added); } svg .removed { fill: var(--removed); }
svg .lbl { fill: var(--muted); font-size: 11px; }
svg .axis { stroke: var(--line); }
svg .edge { fill: none; stroke: var(--muted); stroke-width: 1.3; }
svg .arrowhead { fill: var(--muted); }
svg .node rect, svg .node polygon { stroke-width: 1.5; }
svg .n-blocking rect { fill: var(--n-blocking); stroke: var(--red); stroke-width: 3; }
svg .n-changed rect { fill: var(--n-changed); stroke: var(--head); stroke-width: 2; }
svg .n-impacted rect { fill: var(--n-impacted); stroke: var(--base); }
svg .n-exposure polygon { fill: var(--n-exposure); stroke: var(--blue); }
svg .n-more rect { fill: var(--bg); stroke: var(--base); }
svg .nlabel { fill: var(--fg); font-size: 12px; font-weight: 600; }
svg .ndetail { fill: var(--muted); font-size: 11px; }
.muted { color: var(--muted); } .red { color: var(--red); } .green { color: var(--green); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def _spans(spans: Iterable[Span]) -> str:
    out = []
    for span in spans:
        if span.style is Style.CODE:
            out.append(f"<code>{esc(span.text)}</code>")
        elif span.style is Style.STRONG:
            out.append(f"<strong>{esc(span.text)}</strong>")
        else:
            out.append(esc(span.text))
    return "".join(out)


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    """Cells are HTML already escaped by the caller; headers are plain text."""
    head = "".join(
        f'<th class="num">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tag(label: str) -> str:
    return f'<span class="tag {esc(label)}">{esc(label)}</span>'


def _code(value: object) -> str:
    return f"<code>{esc(value)}</code>"


def _cards(report: Report) -> str:
    counts = report.counts
    cards = [(str(sum(v for k, v in counts.items() if k != "impacted")), "models changed")]
    cards.append((str(counts.get("impacted", 0)), "impacted"))
    cards.append((str(len(report.blocking)), "blocking findings"))
    cards.append((str(len(failed_tests(report))), "failed tests"))
    cards.append((str(len(report.exposures)), "exposures"))
    for key in ("breaking", "partial", "additive", "metadata", "unknown", "added", "removed"):
        if key in counts:
            cards.append((str(counts[key]), key))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{esc(n)}</b><span>{esc(label)}</span></div>'
            for n, label in cards
        )
        + "</div>"
    )


def _findings(report: Report) -> str:
    findings = sorted(report.findings, key=lambda f: (not f.blocking, f.severity.value))
    if not findings:
        return ""
    rows = []
    for f in findings:
        if f.approval is not None:
            state = _tag(f.approval.decision.value) + f" {esc(f.approval.by)}"
        elif f.blocking:
            state = _tag("blocking") + " needs approval"
        else:
            state = _tag(f.severity.value)
        rows.append(
            [
                _tag(f.severity.value),
                _code(f.model) if f.model else "–",
                esc(f.title)
                + (f'<br><span class="muted">{esc(f.detail)}</span>' if f.detail else ""),
                _code(f.fingerprint[:12]),
                state,
            ]
        )
    return "<h2>Findings</h2>" + _table(
        ["severity", "model", "finding", "fingerprint", "state"], rows
    )


def _graph(report: Report, max_nodes: int) -> str:
    graph = impact_graph(report, max_nodes=max_nodes, max_edges=2000)
    if len(graph.nodes) < 2 and not graph.edges:
        return ""
    note = ""
    if graph.omitted_nodes:
        note = (
            f'<p class="muted">{plural(graph.omitted_nodes, "more node")} beyond the first '
            f"{max_nodes} (nearest to a change first) are collapsed into “more”.</p>"
        )
    legend = (
        '<p class="muted">Red: blocking · orange: edited · grey: impacted · hexagon: exposure</p>'
    )
    return f'<h2>Impact</h2>{legend}<div class="graph">{dag_svg(graph)}</div>{note}'


def _summary_table(report: Report, detailed: int) -> str:
    rows = []
    for i, m in enumerate(model_order(report)):
        d = m.diff
        blocking = sum(1 for f in m.findings if f.blocking)
        rows.append(
            [
                f'<a href="#m-{esc(m.name)}">{esc(m.name)}</a>' if i < detailed else esc(m.name),
                _tag(change_label(m)),
                fmt_int(d.rows.base) if d else "–",
                fmt_int(d.rows.head) if d else "–",
                fmt_pct(d.rows.delta_pct) if d else "–",
                fmt_int(rows_differing(d.rows)) if d else "–",
                esc(", ".join(c.name for c in d.changed_columns)) if d else "–",
                str(blocking) if blocking else "–",
            ]
        )
    return "<h2>Models</h2>" + _table(
        ["model", "change", "base rows", "head rows", "Δ", "differ", "columns changed", "blocking"],
        rows,
        numeric=(2, 3, 4, 5),
    )


def _model(model: ModelReport, examples: int, label: str = "masked") -> str:
    blocking = any(f.blocking for f in model.findings)
    out = [
        f'<details class="model" id="m-{esc(model.name)}"{" open" if blocking else ""}>'
        f"<summary>{esc(model.name)} {_tag(change_label(model))}"
    ]
    if model.diff is not None:
        n = rows_differing(model.diff.rows)
        out.append(f' <span class="muted">{esc(plural(n, "row"))} differ</span>')
    out.append("</summary>")
    facts = []
    if model.reasons:
        facts.append("Why: " + esc("; ".join(model.reasons)))
    if model.changed_columns:
        facts.append("Changed columns: " + ", ".join(_code(c) for c in model.changed_columns))
    if model.impacted_columns:
        facts.append("Impacted columns: " + ", ".join(_code(c) for c in model.impacted_columns))
    if model.impacted_models:
        facts.append("Reaches: " + ", ".join(_code(c) for c in model.impacted_models[:30]))
    if model.exposures:
        facts.append("Exposures: " + ", ".join(_code(c) for c in model.exposures))
    if facts:
        out.append("<ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>")
    for f in model.findings:
        cls = "red" if f.blocking else "muted"
        out.append(f'<p class="{cls}">{esc(f.title)} {_code(f.fingerprint[:12])}</p>')
    schema = model.schema
    if schema is not None and schema.changed:
        rows = [[_code(c.name), _tag("added"), "–", _code(c.type)] for c in schema.added]
        rows += [[_code(c.name), _tag("removed"), _code(c.type), "–"] for c in schema.removed]
        rows += [
            [_code(c.name), _tag("partial") + " type", _code(c.before), _code(c.after)]
            for c in schema.type_changed
        ]
        rows += [[_code(b), "renamed", _code(a), _code(b)] for a, b in schema.renamed]
        out.append("<h3>Schema</h3>" + _table(["column", "change", "before", "after"], rows))
    diff = model.diff
    if diff is None:
        out.append(f'<p class="muted">No data diff: {esc(model.diff_note or "not compared")}</p>')
    else:
        r = diff.rows
        key = ", ".join(diff.key) if diff.key else "none (multiset of rows)"
        out.append(f'<h3>Rows <span class="muted">key {esc(key)}</span></h3>')
        out.append('<div class="charts"><div class="chart-box">' + rows_svg(r) + "</div>")
        cells = [
            fmt_int(r.base),
            fmt_int(r.head),
            f"{fmt_signed(r.delta)} ({fmt_pct(r.delta_pct)})",
            fmt_int(r.added),
            fmt_int(r.removed),
            "–" if r.keyless else fmt_int(r.changed),
            f"{r.null_keys_base:,} → {r.null_keys_head:,}",
            f"{r.duplicate_keys_base:,} → {r.duplicate_keys_head:,}",
        ]
        out.append(
            "<div>"
            + _table(
                ["base", "head", "Δ", "added", "removed", "changed", "null keys", "dup keys"],
                [[esc(c) for c in cells]],
                numeric=range(8),
            )
            + "</div></div>"
        )
        if model.diff_note:
            out.append(f'<p class="muted">{esc(model.diff_note)}</p>')
        if diff.columns:
            rows = []
            for c in sorted(diff.columns, key=lambda c: -c.changed):
                shown = "<br>".join(
                    f'{_code(fmt_key(e.key))} <span class="red">{esc(fmt_value(e.before))}</span>'
                    f' → <span class="green">{esc(fmt_value(e.after))}</span>'
                    for e in c.examples[:examples]
                )
                rows.append(
                    [
                        _code(c.name),
                        fmt_int(c.changed),
                        fmt_int(c.compared),
                        esc(fmt_match(c.match_pct)),
                        shown,
                    ]
                )
            out.append(
                "<h3>Columns</h3>"
                + _table(
                    [
                        "column",
                        "changed",
                        "compared",
                        "match",
                        f"examples ({label}): key before → after",
                    ],
                    rows,
                    numeric=(1, 2, 3),
                )
            )
        if diff.row_samples:
            rows = [
                [
                    _tag(s.change),
                    _code(fmt_key(s.key)),
                    esc(", ".join(f"{k}={fmt_value(v, 30)}" for k, v in (s.before or {}).items()))
                    or "–",
                    esc(", ".join(f"{k}={fmt_value(v, 30)}" for k, v in (s.after or {}).items()))
                    or "–",
                ]
                for s in diff.row_samples
            ]
            out.append(
                f"<h3>Example rows ({label})</h3>" + _table(["row", "key", "before", "after"], rows)
            )
        out.append(_profiles(model))
    failed = [t for t in model.tests if t.failed]
    if model.tests:
        rows = [
            [
                _code(t.name),
                _tag("removed" if t.failed else "added") + f" {esc(t.status)}",
                fmt_int(t.failures),
                esc("new" if t.new else ""),
                esc(t.message or ""),
            ]
            for t in sorted(model.tests, key=lambda t: not t.failed)
        ]
        title = f"Tests ({len(failed)} failed)" if failed else "Tests"
        out.append(
            f"<h3>{esc(title)}</h3>"
            + _table(["test", "status", "failures", "", "message"], rows, numeric=(2,))
        )
    if model.base_sql is not None or model.head_sql is not None:
        out.append("<details><summary>SQL (base, head)</summary>")
        out.append(f"<pre>{esc(model.base_sql or '')}</pre><pre>{esc(model.head_sql or '')}</pre>")
        out.append("</details>")
    out.append("</details>")
    return "".join(out)


def _profiles(model: ModelReport) -> str:
    assert model.diff is not None
    charts = []
    rows = []
    for p in model.diff.profile:
        b, h = p.base, p.head
        if p.histogram:
            charts.append(
                f'<div class="chart-box"><h4>{esc(p.name)}</h4>'
                f"{histogram_svg(p.histogram, p.name)}</div>"
            )
        elif b is not None and h is not None and (b.top_values or h.top_values):
            charts.append(
                f'<div class="chart-box"><h4>{esc(p.name)}</h4>'
                f"{top_values_svg(b.top_values, h.top_values, p.name)}</div>"
            )
        if b is None or h is None:
            continue

        def pair(x: object, y: object) -> str:
            # None in a profile is "not applicable" (no mean of text), not a NULL value.
            a = "–" if x is None else fmt_value(x, 24)
            c = "–" if y is None else fmt_value(y, 24)
            return esc(a) if a == c else f"{esc(a)} → <b>{esc(c)}</b>"

        rows.append(
            [
                _code(p.name),
                pair(b.count, h.count),
                pair(b.nulls, h.nulls),
                pair(b.distinct, h.distinct),
                pair(b.min, h.min),
                pair(b.max, h.max),
                pair(b.mean, h.mean),
            ]
        )
    if not rows and not charts:
        return ""
    out = "<h3>Profile</h3>"
    if charts:
        out += '<div class="charts">' + "".join(charts) + "</div>"
    if rows:
        out += _table(["column", "count", "nulls", "distinct", "min", "max", "mean"], rows)
    return out


def render_html(
    report: Report, *, max_graph_nodes: int = 100, examples: int = 10, max_details: int = 300
) -> str:
    """The whole page as one string (UTF-8, no external resource).

    Every model is in the summary table; the first `max_details` (blocking first) also get a
    details section with charts, which keeps a 2,000-model change to a few megabytes.
    """
    verdict = report.verdict.value
    head, base = report.head, report.base
    meta = (
        f"{_code(head.ref)} ({_code(short_sha(head.commit))}{' + uncommitted' if head.dirty else ''})"
        f" vs {_code(base.ref)} ({_code(short_sha(base.commit))})"
    )
    if report.sample:
        meta += f" · sample {_code(report.sample.identity)} {esc(report.sample.description)}"
    meta += f" · {esc(report.generated_at)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No script, no network: the page is data to look at, never code to run.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{esc(VERDICT_LABEL[report.verdict])} · {esc(report.project)} · dataops-dev review</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>dataops-dev review · {esc(report.project)}</h1>",
        f'<div class="verdict {esc(verdict)}">{_spans(verdict_spans(report))}'
        f'<p class="meta">{meta}</p></div>',
    ]
    if report.error:
        parts.append(f'<p class="red">{esc(report.error)}</p>')
    parts.append(_cards(report))
    parts.append(_findings(report))
    parts.append(_graph(report, max_graph_nodes))
    if report.models:
        parts.append(_summary_table(report, max_details))
        ordered = model_order(report)
        label = report.sample.examples_label if report.sample else "masked"
        parts.extend(_model(m, examples, label) for m in ordered[:max_details])
        if len(ordered) > max_details:
            parts.append(
                f'<p class="muted">Details of {plural(len(ordered) - max_details, "more model")} '
                "left out; the JSON report holds everything.</p>"
            )
    failed = failed_tests(report)
    if failed:
        rows = [
            [_code(t.name), _code(m.name), esc(t.status), fmt_int(t.failures), esc(t.message or "")]
            for m, t in failed
        ]
        parts.append(
            "<h2>Failed tests</h2>"
            + _table(["test", "model", "status", "failures", "message"], rows, numeric=(3,))
        )
    if report.exposures:
        rows = [
            [_code(e.name), esc(e.type), esc(e.owner or "–"), ", ".join(_code(m) for m in e.models)]
            for e in report.exposures
        ]
        parts.append("<h2>Exposures</h2>" + _table(["exposure", "type", "owner", "reads"], rows))
    commands = next_commands(report)
    if commands:
        parts.append("<h2>Next</h2><pre>" + esc("\n".join(commands)) + "</pre>")
    facts = "".join(
        f" · {esc(words)}" for words in (reuse_words(report), timing_words(report)) if words
    )
    parts.append(
        f"<footer>dataops-dev · report schema v{report.schema_version}{facts}"
        "</footer></main></body></html>"
    )
    return "\n".join(p for p in parts if p) + "\n"
