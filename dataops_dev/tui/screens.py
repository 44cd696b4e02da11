"""Modal screens of the TUI: help, approve / reject a finding with a note, and the deploy plan
confirmation (`deploy --dry-run` shown before anything is promoted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from dataops_dev.errors import DataopsError
from dataops_dev.report._summary import plural, short_sha
from dataops_dev.report.model import Decision, Finding

if TYPE_CHECKING:
    from dataops_dev.deploy import DeployPlan

HELP = """\
dataops-dev review — keyboard first (the mouse works too)

  ↑ ↓ / j k   move through the change tree    enter   expand / collapse
  tab         tree, tabs and tables           1–7     switch tab
  /           filter models by name           esc     back to the tree
  a  /  x     approve / reject the highlighted finding (with a note)
  r           re-run `review` in the background
  i           re-run static `impact`
  b           `build` the branch into its environment
  d           re-diff the selected model only
  p           deploy plan (`deploy --dry-run`) and confirmation
  s           SQL tab: unified / side-by-side diff
  t           light / dark theme              ctrl+p  command palette
  ?           this help                       q       quit

Tabs: Summary (verdict, findings) · Schema · Rows · Columns · Lineage ·
Tests · SQL. Decisions go to dataops.approvals.yml, as with `decide`.
"""


class HelpScreen(ModalScreen[None]):
    """The key bindings. A scroll container sized `auto` in both directions collapses to
    nothing in textual, so the box has a fixed width and grows with its text."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 82; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    HelpScreen Static { width: 100%; height: auto; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(HELP))


class DecideScreen(ModalScreen[bool]):
    """Approve or reject one finding with a note; `submit(note)` records it through the core and
    any `DataopsError` it raises is shown here (the screen stays open to fix the note)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    DecideScreen { align: center middle; }
    DecideScreen > Vertical {
        width: 76; max-width: 100%; height: auto; border: round $accent;
        padding: 0 1; background: $surface;
    }
    DecideScreen #decide-error { color: $error; height: auto; }
    DecideScreen Horizontal { height: auto; align-horizontal: right; }
    DecideScreen Button { margin-left: 1; }
    """

    def __init__(self, finding: Finding, decision: Decision, submit: Callable[[str], None]) -> None:
        super().__init__()
        self.finding = finding
        self.decision = decision
        self.submit = submit

    def compose(self) -> ComposeResult:
        verb = "Approve" if self.decision is Decision.APPROVED else "Reject"
        with Vertical():
            title = Text(f"{verb} finding ", "bold")
            title.append(self.finding.fingerprint, "dim")
            title.append(f"\n{self.finding.title}")
            title.append(f"\n{self.finding.severity.value} · {self.finding.kind.value}", "dim")
            if self.finding.detail:
                title.append(f"\n{self.finding.detail}", "dim")
            yield Static(title)
            note = Input(
                placeholder="note: why is this acceptable / what must change",
                id="note",
                value=self.finding.approval.note if self.finding.approval else "",
            )
            note.cursor_blink = False  # a blinking cursor makes screenshots differ
            yield note
            yield Label("", id="decide-error")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button(
                    verb,
                    id="confirm",
                    variant="success" if self.decision is Decision.APPROVED else "error",
                )

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()

    @on(Input.Submitted, "#note")
    @on(Button.Pressed, "#confirm")
    def confirm(self) -> None:
        note = self.query_one("#note", Input).value
        try:
            self.submit(note)
        except DataopsError as error:
            message = error.message + (f" — {error.hint}" if error.hint else "")
            self.query_one("#decide-error", Label).update(Text(message))
            return
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


def plan_text(plan: DeployPlan) -> tuple[Text, bool]:
    """The plan as text and whether it may proceed (`DeployPlan.allowed`)."""
    text = Text("Deploy plan ", "bold")
    text.append("(dry run: nothing is written until you confirm)\n", "dim")
    text.append(f"target {plan.target} ({plan.target_type}) at commit {short_sha(plan.commit)}\n")
    text.append(f"{plural(len(plan.models), 'model')} in build order:\n")
    styles = {"build": "green", "rebuild": "yellow", "drop": "red"}
    for index, model in enumerate(plan.models, 1):
        text.append(f"  {index:>2}. ")
        text.append(f"{model.action:<8}", styles.get(model.action, ""))
        text.append(model.name, "bold")
        if model.materialized:
            text.append(f"  {model.materialized}", "dim")
        if model.row_change:
            text.append(f"  {model.row_change}", "dim")
        text.append("\n")
    if plan.unverified:
        text.append(f"\nrefused, unverified report: {plan.unverified}\n", "bold red")
        text.append("run `dataops-dev review` again (r)\n", "dim")
    if plan.error:
        text.append(f"\nrefused: {plan.error}\n", "bold red")
        text.append("fix the build, then run `dataops-dev review` again (r)\n", "dim")
    if plan.stale:
        text.append(f"\nstale review: {plan.stale}\n", "bold yellow")
        text.append("run `dataops-dev review` again (r)\n", "dim")
    if plan.blocked_by:
        count = len(plan.blocked_by)
        text.append(f"\nblocked by {plural(count, 'finding')} without approval:\n", "bold red")
        for finding in plan.blocked_by:
            text.append(
                f"  ✗ {finding.model + ': ' if finding.model else ''}{finding.title}\n", "red"
            )
        text.append("approve them (a) with a note, or fix the branch\n", "dim")
    return text, plan.allowed


class DeployPlanScreen(ModalScreen[bool]):
    """Computes the plan in a worker (it reads manifests), shows it, and returns True only when
    the user confirms a plan that nothing blocks."""

    BINDINGS = [Binding("escape", "cancel", "Close")]
    DEFAULT_CSS = """
    DeployPlanScreen { align: center middle; }
    DeployPlanScreen > Vertical {
        width: 80%; min-width: 60; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    DeployPlanScreen VerticalScroll { height: auto; max-height: 16; }
    DeployPlanScreen Horizontal { height: auto; align-horizontal: right; }
    DeployPlanScreen Button { margin-left: 1; }
    """

    def __init__(self, plan: Callable[[], DeployPlan]) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll():
                yield Static(Text("computing the deploy plan…", "dim"), id="plan")
            with Horizontal():
                yield Button("Close", id="cancel")
                yield Button("Deploy", id="confirm", variant="warning", disabled=True)

    def on_mount(self) -> None:
        self.compute()

    @work(thread=True, exclusive=True)
    def compute(self) -> None:
        try:
            text, allowed = plan_text(self.plan())
        except DataopsError as error:
            text = Text(error.message, "bold red")
            if error.hint:
                text.append(f"\nhint: {error.hint}", "dim")
            allowed = False
        except Exception as error:  # noqa: BLE001 - shown in the screen instead of killing the app
            text = Text(f"{type(error).__name__}: {error}", "bold red")
            allowed = False
        self.app.call_from_thread(self._show, text, allowed)

    def _show(self, text: Text, allowed: bool) -> None:
        self.query_one("#plan", Static).update(text)
        self.query_one("#confirm", Button).disabled = not allowed

    @on(Button.Pressed, "#confirm")
    def confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
