"""The change tree on the left: changed models grouped by change kind, with the downstream models
and exposures they impact underneath, counts in the labels, and a name filter."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dataops_dev.report.model import ChangeKind, ModelReport, ModelStatus, Report

GROUPS: tuple[ChangeKind, ...] = (
    ChangeKind.BREAKING,
    ChangeKind.PARTIAL,
    ChangeKind.ADDITIVE,
    ChangeKind.METADATA,
    ChangeKind.UNKNOWN,
)
GROUP_STYLE = {
    ChangeKind.BREAKING: "bold red",
    ChangeKind.PARTIAL: "bold yellow",
    ChangeKind.ADDITIVE: "bold green",
    ChangeKind.METADATA: "bold cyan",
    ChangeKind.UNKNOWN: "bold magenta",
}


@dataclass(frozen=True)
class NodeRef:
    kind: str
    """"model", "exposure" or "group"."""
    name: str


def model_label(model: ModelReport, *, impacted: bool = False) -> Text:
    text = Text("↳ " if impacted else "", "dim")
    style = "strike" if model.status is ModelStatus.REMOVED else ""
    text.append(model.name, style)
    if model.status in (ModelStatus.ADDED, ModelStatus.REMOVED):
        text.append(f" ({model.status.value})", "dim")
    blocking = sum(1 for f in model.findings if f.blocking)
    if blocking:
        text.append(f" ✗{blocking}", "bold red")
    elif model.findings:
        text.append(f" ✓{len(model.findings)}", "green")
    if model.diff is not None and model.diff.rows.differs:
        text.append(" Δ", "yellow")
    return text


class ChangeTree(Tree[NodeRef]):
    """Arrow keys move through models; the highlighted model is shown on the right."""

    class ModelHighlighted(Message):
        def __init__(self, model: str) -> None:
            super().__init__()
            self.model = model

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("changes", id=id)
        self.show_root = False
        self.guide_depth = 2

    def show(self, report: Report, filter_text: str = "") -> None:
        """Rebuild from `report`; with `filter_text`, only models (or impacted children) whose
        name contains it (case-insensitive) stay."""
        needle = filter_text.strip().lower()
        by_name = {m.name: m for m in report.models}

        def matches(name: str) -> bool:
            return not needle or needle in name.lower()

        self.clear()
        shown_impacted: set[str] = set()
        for kind in GROUPS:
            members = [
                m
                for m in report.models
                if m.change is kind
                and m.status is not ModelStatus.IMPACTED
                and (matches(m.name) or any(matches(n) for n in m.impacted_models))
            ]
            if not members and kind in (ChangeKind.UNKNOWN,):
                continue
            label = Text(f"{kind.value} ", GROUP_STYLE[kind])
            label.append(f"({len(members)})", "dim")
            group = self.root.add(label, data=NodeRef("group", kind.value), expand=True)
            for model in members:
                children = [n for n in model.impacted_models if matches(n) or matches(model.name)]
                exposures = model.exposures
                if not children and not exposures:
                    group.add_leaf(model_label(model), data=NodeRef("model", model.name))
                    continue
                node = group.add(model_label(model), data=NodeRef("model", model.name))
                node.expand()
                for name in children:
                    shown_impacted.add(name)
                    child = by_name.get(name)
                    label = (
                        model_label(child, impacted=True)
                        if child is not None
                        else Text(f"↳ {name}", "dim")
                    )
                    node.add_leaf(label, data=NodeRef("model", name))
                for exposure in exposures:
                    node.add_leaf(
                        Text(f"◆ {exposure}", "italic cyan"), data=NodeRef("exposure", exposure)
                    )
        # Impacted models no changed model lists (a report built with --select) still show.
        orphans = [
            m
            for m in report.models
            if m.status is ModelStatus.IMPACTED and m.name not in shown_impacted and matches(m.name)
        ]
        impacted_total = sum(1 for m in report.models if m.status is ModelStatus.IMPACTED)
        if orphans or impacted_total:
            label = Text("impacted ", "bold")
            label.append(f"({impacted_total})", "dim")
            group = self.root.add(label, data=NodeRef("group", "impacted"), expand=bool(orphans))
            for model in orphans:
                group.add_leaf(model_label(model), data=NodeRef("model", model.name))
        if report.exposures:
            label = Text("exposures ", "bold cyan")
            label.append(f"({len(report.exposures)})", "dim")
            group = self.root.add(label, data=NodeRef("group", "exposures"), expand=False)
            for impact in report.exposures:
                text = Text(f"◆ {impact.name}", "italic cyan")
                text.append(f" {impact.type}", "dim")
                group.add_leaf(text, data=NodeRef("exposure", impact.name))

    def model_nodes(self) -> list[TreeNode[NodeRef]]:
        found: list[TreeNode[NodeRef]] = []

        def walk(node: TreeNode[NodeRef]) -> None:
            for child in node.children:
                if child.data is not None and child.data.kind == "model":
                    found.append(child)
                walk(child)

        walk(self.root)
        return found

    def select_model(self, name: str) -> bool:
        """Move the cursor to the first node of model `name`; False when it is not shown."""
        for node in self.model_nodes():
            if node.data is not None and node.data.name == name:
                parent = node.parent
                while parent is not None:
                    parent.expand()
                    parent = parent.parent
                # Line numbers exist only once the tree has laid out its (new) lines.
                self.call_after_refresh(self.move_cursor, node)
                return True
        return False

    def first_model(self) -> str | None:
        nodes = self.model_nodes()
        return nodes[0].data.name if nodes and nodes[0].data else None

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[NodeRef]) -> None:
        data = event.node.data
        if data is not None and data.kind == "model":
            self.post_message(self.ModelHighlighted(data.name))
