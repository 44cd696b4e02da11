"""Inline SVG charts for the HTML report: paired histograms, top values, row bars, the impact DAG.

Plain strings built in Python (no JavaScript, no network); every label goes through html.escape.
Colours are CSS classes so the page's light/dark palette applies.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from dataops_dev.report._graph import ImpactGraph, NodeKind, layered
from dataops_dev.report._summary import fmt_int, fmt_value
from dataops_dev.report.model import HistogramBin, RowCounts


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="{esc(label)}">'
        f"<title>{esc(label)}</title>" + "".join(body) + "</svg>"
    )


def _legend(x: float, y: float) -> list[str]:
    return [
        f'<rect class="base" x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10"/>',
        f'<text class="lbl" x="{x + 14:.0f}" y="{y:.0f}">base</text>',
        f'<rect class="head" x="{x + 52:.0f}" y="{y - 9:.0f}" width="10" height="10"/>',
        f'<text class="lbl" x="{x + 66:.0f}" y="{y:.0f}">head</text>',
    ]


def histogram_svg(
    bins: Sequence[HistogramBin], column: str, width: int = 380, height: int = 170
) -> str:
    """Base and head counts per bin as paired bars, with the range under the axis."""
    left, right, top, bottom = 40, 8, 18, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((max(b.base, b.head) for b in bins), default=0) or 1
    slot = plot_w / max(len(bins), 1)
    bar = max(1.0, slot * 0.42)
    body = _legend(left, 12)
    body.append(
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
        f'y2="{top + plot_h}"/>'
    )
    body.append(f'<text class="lbl" x="{left - 4}" y="{top + 8}" text-anchor="end">{peak:,}</text>')
    body.append(f'<text class="lbl" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>')
    for i, b in enumerate(bins):
        x = left + i * slot + (slot - 2 * bar) / 2
        for j, (count, cls) in enumerate(((b.base, "base"), (b.head, "head"))):
            h = plot_h * count / peak
            body.append(
                f'<rect class="{cls}" x="{x + j * bar:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}"><title>'
                f"{esc(fmt_value(b.low, 20))} – {esc(fmt_value(b.high, 20))}: {cls} {count:,}"
                "</title></rect>"
            )
    if bins:
        low, high = fmt_value(bins[0].low, 16), fmt_value(bins[-1].high, 16)
        y = top + plot_h + 14
        body.append(f'<text class="lbl" x="{left}" y="{y}">{esc(low)}</text>')
        body.append(
            f'<text class="lbl" x="{left + plot_w}" y="{y}" text-anchor="end">{esc(high)}</text>'
        )
    return _svg(width, height, body, f"distribution of {column}, base vs head")


def top_values_svg(
    base: Sequence[tuple[Any, int]],
    head: Sequence[tuple[Any, int]],
    column: str,
    width: int = 380,
    limit: int = 8,
) -> str:
    """The most frequent values on either side as paired horizontal bars."""
    base_map = {fmt_value(v, 24): n for v, n in base}
    head_map = {fmt_value(v, 24): n for v, n in head}
    values = sorted(
        set(base_map) | set(head_map),
        key=lambda v: (-max(base_map.get(v, 0), head_map.get(v, 0)), v),
    )[:limit]
    label_w, row_h, top = 130, 22, 20
    height = top + row_h * len(values) + 6
    plot_w = width - label_w - 60
    peak = max([*base_map.values(), *head_map.values(), 1])
    body = _legend(label_w, 12)
    for i, value in enumerate(values):
        y = top + i * row_h
        body.append(
            f'<text class="lbl" x="{label_w - 6}" y="{y + 14}" text-anchor="end">{esc(value)}</text>'
        )
        for j, (count, cls) in enumerate(
            ((base_map.get(value, 0), "base"), (head_map.get(value, 0), "head"))
        ):
            w = plot_w * count / peak
            body.append(
                f'<rect class="{cls}" x="{label_w}" y="{y + 2 + j * 9}" width="{w:.1f}" '
                f'height="8"><title>{esc(value)}: {cls} {count:,}</title></rect>'
            )
        change = head_map.get(value, 0) - base_map.get(value, 0)
        body.append(
            f'<text class="lbl" x="{label_w + plot_w + 6}" y="{y + 14}">'
            f"{esc(fmt_int(head_map.get(value, 0)))}"
            f"{esc(f' ({change:+,})') if change else ''}</text>"
        )
    return _svg(width, height, body, f"top values of {column}, base vs head")


def rows_svg(rows: RowCounts, width: int = 440) -> str:
    """Base and head row counts, and the head split into unchanged/changed/added (+ removed)."""
    label_w, top = 40, 8
    plot_w = width - label_w - 70
    peak = max(rows.base, rows.head, 1)
    body: list[str] = []
    for i, (label, count) in enumerate((("base", rows.base), ("head", rows.head))):
        y = top + i * 24
        w = plot_w * count / peak
        body.append(
            f'<text class="lbl" x="{label_w - 6}" y="{y + 13}" text-anchor="end">{label}</text>'
        )
        body.append(
            f'<rect class="{label}" x="{label_w}" y="{y}" width="{w:.1f}" height="16">'
            f"<title>{label}: {count:,} rows</title></rect>"
        )
        body.append(f'<text class="lbl" x="{label_w + w + 6:.1f}" y="{y + 13}">{count:,}</text>')
    y = top + 2 * 24 + 4
    body.append(f'<text class="lbl" x="{label_w - 6}" y="{y + 13}" text-anchor="end">diff</text>')
    x = float(label_w)
    parts = [
        ("unchanged", rows.unchanged),
        ("changed", rows.changed),
        ("added", rows.added),
        ("removed", rows.removed),
    ]
    total = sum(n for _, n in parts) or 1
    for cls, count in parts:
        if not count:
            continue
        w = max(1.5, plot_w * count / total)
        body.append(
            f'<rect class="{cls}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="16">'
            f"<title>{cls}: {count:,} rows</title></rect>"
        )
        x += w
    legend_y = y + 34
    lx = float(label_w)
    for cls, count in parts:
        body.append(f'<rect class="{cls}" x="{lx:.0f}" y="{legend_y - 9}" width="10" height="10"/>')
        label = f"{cls} {count:,}"
        body.append(f'<text class="lbl" x="{lx + 14:.0f}" y="{legend_y}">{esc(label)}</text>')
        lx += 22 + 6.2 * len(label)
    return _svg(width, legend_y + 8, body, "row counts base vs head")


_SHAPE_CLASS = {
    NodeKind.BLOCKING: "n-blocking",
    NodeKind.CHANGED: "n-changed",
    NodeKind.IMPACTED: "n-impacted",
    NodeKind.EXPOSURE: "n-exposure",
    NodeKind.MORE: "n-more",
}


def dag_svg(graph: ImpactGraph) -> str:
    """The impact graph as a layered DAG, left to right; exposures are hexagons."""
    placed, n_layers, widest = layered(graph)
    node_w, node_h, gap_x, gap_y, pad = 180, 38, 60, 14, 12
    width = pad * 2 + n_layers * node_w + (n_layers - 1) * gap_x
    height = pad * 2 + max(widest, 1) * (node_h + gap_y)
    pos: dict[str, tuple[float, float]] = {}
    for p in placed:
        pos[p.node.id] = (pad + p.layer * (node_w + gap_x), pad + p.slot * (node_h + gap_y))
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path class="arrowhead" '
        'd="M 0 0 L 10 5 L 0 10 z"/></marker></defs>'
    ]
    for source, target in graph.edges:
        if source not in pos or target not in pos:
            continue
        (x1, y1), (x2, y2) = pos[source], pos[target]
        sx, sy, tx, ty = x1 + node_w, y1 + node_h / 2, x2, y2 + node_h / 2
        mid = (sx + tx) / 2
        body.append(
            f'<path class="edge" d="M {sx:.0f} {sy:.0f} C {mid:.0f} {sy:.0f}, {mid:.0f} '
            f'{ty:.0f}, {tx:.0f} {ty:.0f}" marker-end="url(#arrow)"/>'
        )
    for p in placed:
        x, y = pos[p.node.id]
        cls = _SHAPE_CLASS[p.node.kind]
        tip = f"{p.node.label} ({p.node.detail})" if p.node.detail else p.node.label
        body.append(f'<g class="node {cls}"><title>{esc(tip)}</title>')
        if p.node.kind is NodeKind.EXPOSURE:
            k = 14
            points = (
                f"{x + k},{y} {x + node_w - k},{y} {x + node_w},{y + node_h / 2} "
                f"{x + node_w - k},{y + node_h} {x + k},{y + node_h} {x},{y + node_h / 2}"
            )
            body.append(f'<polygon points="{points}"/>')
        else:
            dash = ' stroke-dasharray="5 3"' if p.node.kind is NodeKind.MORE else ""
            body.append(f'<rect x="{x}" y="{y}" width="{node_w}" height="{node_h}" rx="6"{dash}/>')
        label = p.node.label if len(p.node.label) <= 24 else p.node.label[:23] + "…"
        body.append(
            f'<text class="nlabel" x="{x + node_w / 2}" y="{y + 16}" text-anchor="middle">'
            f"{esc(label)}</text>"
        )
        body.append(
            f'<text class="ndetail" x="{x + node_w / 2}" y="{y + 30}" text-anchor="middle">'
            f"{esc(p.node.detail)}</text></g>"
        )
    return _svg(width, height, body, "impact graph")
