"""The impact graph as renderers draw it: model-level edges, a node budget, and a layered layout.

Edges come from the report's column lineage (folded to models) and exposures; beyond the node
budget the rest collapses into one "+N more" node so mermaid and SVG stay small.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from dataops_dev.report._summary import change_label
from dataops_dev.report.model import ModelReport, ModelStatus, Report

MORE_ID = "__more__"


class NodeKind(str, Enum):
    CHANGED = "changed"
    BLOCKING = "blocking"
    IMPACTED = "impacted"
    EXPOSURE = "exposure"
    MORE = "more"


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str
    kind: NodeKind
    detail: str = ""


@dataclass(frozen=True)
class ImpactGraph:
    nodes: tuple[GraphNode, ...]
    edges: tuple[tuple[str, str], ...]
    omitted_nodes: int = 0
    omitted_edges: int = 0


def _node_of(endpoint: str) -> str:
    # `<node>.<column>`; source nodes themselves contain a dot, so split on the last one.
    return endpoint.rsplit(".", 1)[0] if "." in endpoint else endpoint


def model_edges(report: Report) -> list[tuple[str, str]]:
    """Model -> model edges among the report's models, then model -> exposure edges."""
    names = {m.name for m in report.models}
    edges: dict[tuple[str, str], None] = {}
    for edge in report.lineage:
        source, target = _node_of(edge.source), _node_of(edge.target)
        if source != target and source in names and target in names:
            edges[(source, target)] = None
    if not edges:
        # No lineage in the report: changed models point at what they reach.
        for model in report.models:
            if model.status is not ModelStatus.IMPACTED:
                for target in model.impacted_models:
                    if target in names and target != model.name:
                        edges[(model.name, target)] = None
    for exposure in report.exposures:
        for model_name in exposure.models:
            if model_name in names:
                edges[(model_name, "exposure:" + exposure.name)] = None
    return list(edges)


def _kind(model: ModelReport) -> NodeKind:
    if any(f.blocking for f in model.findings):
        return NodeKind.BLOCKING
    return NodeKind.IMPACTED if model.status is ModelStatus.IMPACTED else NodeKind.CHANGED


def impact_graph(report: Report, max_nodes: int = 60, max_edges: int = 400) -> ImpactGraph:
    """Changed models first, then exposures, then impacted models nearest to a change."""
    edges = model_edges(report)
    children: dict[str, list[str]] = {}
    for source, target in edges:
        children.setdefault(source, []).append(target)
    by_name = {m.name: m for m in report.models}
    changed = sorted(
        (m for m in report.models if m.status is not ModelStatus.IMPACTED),
        key=lambda m: (_kind(m) is not NodeKind.BLOCKING, m.name),
    )
    order: list[str] = [m.name for m in changed]
    order += ["exposure:" + e.name for e in sorted(report.exposures, key=lambda e: e.name)]
    # Impacted models by distance from the nearest change (BFS), so the budget keeps the
    # first hops and drops the far tail.
    seen = set(order)
    queue = deque(m.name for m in changed)
    while queue:
        current = queue.popleft()
        for child in children.get(current, ()):
            if child not in seen and child in by_name:
                seen.add(child)
                order.append(child)
                queue.append(child)
    order += sorted(m.name for m in report.models if m.name not in seen)
    total = len(order)
    kept = order[:max_nodes] if total > max_nodes else order
    kept_set = set(kept)
    nodes: list[GraphNode] = []
    exposures = {e.name: e for e in report.exposures}
    for name in kept:
        if name.startswith("exposure:"):
            exposure = exposures[name.removeprefix("exposure:")]
            nodes.append(
                GraphNode(name, exposure.name, NodeKind.EXPOSURE, exposure.type or "exposure")
            )
        else:
            model = by_name[name]
            nodes.append(GraphNode(name, name, _kind(model), change_label(model)))
    omitted = total - len(kept)
    out: dict[tuple[str, str], None] = {}
    for source, target in edges:
        if source in kept_set and target in kept_set:
            out[(source, target)] = None
        elif source in kept_set:
            out[(source, MORE_ID)] = None
    if omitted:
        nodes.append(GraphNode(MORE_ID, f"+{omitted} more", NodeKind.MORE, "see the full report"))
    edge_list = list(out)
    omitted_edges = max(0, len(edge_list) - max_edges)
    return ImpactGraph(tuple(nodes), tuple(edge_list[:max_edges]), omitted, omitted_edges)


@dataclass(frozen=True)
class Placed:
    node: GraphNode
    layer: int
    slot: int


def layered(graph: ImpactGraph) -> tuple[list[Placed], int, int]:
    """Layers by longest path from the roots, slots ordered by the parents' mean slot.

    Returns the placed nodes, the number of layers and the widest layer's size.
    """
    ids = [n.id for n in graph.nodes]
    parents: dict[str, list[str]] = {i: [] for i in ids}
    for source, target in graph.edges:
        if source in parents and target in parents:
            parents[target].append(source)
    layer: dict[str, int] = {}

    def depth(node: str, stack: frozenset[str]) -> int:
        if node in layer:
            return layer[node]
        if node in stack:  # a cycle cannot happen in dbt; guard anyway
            return 0
        ps = [p for p in parents[node] if p != node]
        value = 0 if not ps else 1 + max(depth(p, stack | {node}) for p in ps)
        layer[node] = value
        return value

    for node_id in ids:
        depth(node_id, frozenset())
    n_layers = 1 + max(layer.values(), default=0)
    rows: list[list[str]] = [[] for _ in range(n_layers)]
    for node_id in ids:
        rows[layer[node_id]].append(node_id)
    slot: dict[str, float] = {}
    for i, row in enumerate(rows):
        if i:
            # Barycentre ordering: fewer crossings without a full crossing minimiser.
            row.sort(
                key=lambda n: (
                    sum(slot[p] for p in parents[n]) / len(parents[n]) if parents[n] else 0.0
                )
            )
        for j, node_id in enumerate(row):
            slot[node_id] = j
    by_id = {n.id: n for n in graph.nodes}
    placed = [Placed(by_id[n], i, j) for i, row in enumerate(rows) for j, n in enumerate(row)]
    return placed, n_layers, max((len(r) for r in rows), default=0)
