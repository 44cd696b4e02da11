"""The `dataops-dev tui` application: change tree on the left, tabs for the selected model on the
right, decisions and re-runs from the keyboard. All work goes through `ReviewSession` (the core)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from dataops_dev.errors import DataopsError
from dataops_dev.integrity import IntegrityStatus
from dataops_dev.report._summary import short_sha
from dataops_dev.report.model import Decision, Finding, ModelReport, Report
from dataops_dev.tui.panes import (
    ColumnsPane,
    LineagePane,
    Pane,
    RowsPane,
    SchemaPane,
    SqlPane,
    SummaryPane,
    TestsPane,
    verdict_text,
)
from dataops_dev.tui.progress import JobProgress, JobStatus, MessageReporter
from dataops_dev.tui.session import Job, JobResult, ReviewSession
from dataops_dev.tui.tree import ChangeTree

TABS: tuple[tuple[str, str, type[Pane]], ...] = (
    ("summary", "Summary", SummaryPane),
    ("schema", "Schema", SchemaPane),
    ("rows", "Rows", RowsPane),
    ("columns", "Columns", ColumnsPane),
    ("lineage", "Lineage", LineagePane),
    ("tests", "Tests", TestsPane),
    ("sql", "SQL", SqlPane),
)
THEMES = ("textual-dark", "textual-light")


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with the process's real stderr.

    dbt's adapters create multiprocessing locks, which spawn the tracker on first use and hand
    it `sys.stderr.fileno()`; inside the app that is textual's capture (no descriptor), and the
    spawn fails with "bad value(s) in fds_to_keep". Called on the UI thread before a job starts.
    """
    from multiprocessing import resource_tracker

    if sys.__stderr__ is None:
        return
    captured = sys.stderr
    sys.stderr = sys.__stderr__
    try:
        resource_tracker.ensure_running()
    finally:
        sys.stderr = captured


def header_text(report: Report | None, problem: str | None = None) -> Text:
    if report is None:
        return Text(problem or "no report", "bold red")
    text = Text(report.project, "bold")
    text.append(f"  {report.base.ref}@{short_sha(report.base.commit)} → ", "dim")
    text.append(f"{report.head.ref}@{short_sha(report.head.commit)}")
    if report.head.dirty:
        text.append("+dirty", "yellow")
    if report.integrity is IntegrityStatus.MISMATCH:
        # Edited after the review (an untagged report says so in the deploy plan instead).
        text.append("  unverified: modified after review", "bold red")
    text.append("  ")
    text.append_text(verdict_text(report))
    counts = report.counts
    if counts:
        text.append("  " + " ".join(f"{k}:{v}" for k, v in counts.items()), "dim")
    # The report's own timestamp, never the clock: the same report always looks the same.
    text.append(f"  {report.generated_at[:16].replace('T', ' ')}", "dim")
    return text


class DataopsApp(App[None]):
    """Review a report: browse without a database, decide, re-run in the background."""

    TITLE = "dataops-dev"
    CSS = """
    #header { height: 1; padding: 0 1; background: $panel; }
    #body { height: 1fr; }
    #left { width: 30%; min-width: 22; max-width: 48; border-right: vkey $primary 40%; }
    #filter { display: none; border: none; height: 1; padding: 0 1; }
    #filter.-visible { display: block; }
    ChangeTree { height: 1fr; scrollbar-size-vertical: 1; }
    #tabs { width: 1fr; }
    #tabs TabPane { padding: 0; }
    #message { height: auto; padding: 0 1; color: $text-muted; display: none; }
    #message.-visible { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "filter", "Filter"),
        Binding("a", "decide('approved')", "Approve"),
        Binding("x", "decide('rejected')", "Reject"),
        Binding("r", "rerun('review')", "Review"),
        Binding("i", "rerun('impact')", "Impact", show=False),
        Binding("b", "rerun('build')", "Build", show=False),
        Binding("d", "rerun('diff')", "Diff model", show=False),
        Binding("p", "deploy_plan", "Deploy"),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("escape", "focus_tree", "Tree", show=False),
        *(
            Binding(str(index), f"tab('{tab_id}')", label, show=False)
            for index, (tab_id, label, _) in enumerate(TABS, 1)
        ),
    ]

    def __init__(
        self,
        session: ReviewSession,
        *,
        report: Report | None = None,
        theme: str = "textual-dark",
        exit_after_first_paint: bool = False,
    ) -> None:
        super().__init__()
        self.session = session
        self.report: Report | None = report
        self.problem: str | None = None
        self.selected: str | None = None
        self.filter_text = ""
        self.exit_after_first_paint = exit_after_first_paint
        self.first_paint_at: float | None = None
        self.last_job: JobResult | None = None
        self.view_version = 0
        """Bumped on every change of report or model; a pane remembers the one it shows."""
        self.job_events: list[tuple[str, str, str]] = []
        """Progress events of the jobs run so far (what the status bar showed)."""
        self.theme = theme

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield ChangeTree(id="tree")
            with TabbedContent(id="tabs"):
                for index, (tab_id, label, pane) in enumerate(TABS):
                    with TabPane(label, id=tab_id):
                        # Hidden tabs mount after the first paint: start-up shows the
                        # summary sooner (see benchmarks/tui_startup.py).
                        yield (
                            pane(id=f"pane-{tab_id}")
                            if index == 0
                            else Lazy(pane(id=f"pane-{tab_id}"))
                        )
        yield Static(id="message")
        yield JobStatus(id="job")
        yield Footer()

    def on_mount(self) -> None:
        if self.report is None:
            try:
                self.report = self.session.load_report()
            except DataopsError as error:
                self.problem = error.message + (f" — {error.hint}" if error.hint else "")
        self.refresh_view()
        self.query_one(ChangeTree).focus()
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        # Wall-clock (epoch) so the start-up benchmark can compare it with the process spawn.
        self.first_paint_at = time.time()
        if self.exit_after_first_paint:
            self.exit()

    # -- drawing ------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Redraw everything from `self.report` (after load, a decision or a re-run)."""
        self.query_one("#header", Static).update(header_text(self.report, self.problem))
        tree = self.query_one(ChangeTree)
        if self.report is None:
            tree.clear()
            self.say(self.problem or "no report", "press r to run the review")
            return
        tree.show(self.report, self.filter_text)
        names = {m.name for m in self.report.models}
        if self.selected not in names:
            self.selected = tree.first_model()
        if self.selected is not None:
            tree.select_model(self.selected)
        self.show_model(self.selected)
        if not self.report.models:
            self.say("no model changes in this report")

    def say(self, message: str, hint: str | None = None) -> None:
        widget = self.query_one("#message", Static)
        text = Text(message)
        if hint:
            text.append(f"  ({hint})", "dim")
        widget.update(text)
        widget.set_class(bool(message), "-visible")

    def current_model(self) -> ModelReport | None:
        if self.report is None or self.selected is None:
            return None
        try:
            return self.report.model(self.selected)
        except KeyError:
            return None

    def show_model(self, name: str | None) -> None:
        """Show `name` in the visible tab now; the other tabs redraw when they are opened
        (moving through a large tree stays fast)."""
        self.selected = name
        self.view_version += 1
        active = self.query_one(TabbedContent).active
        for pane in self.query(Pane):
            if pane.id == f"pane-{active}":
                self.ensure_pane(pane)

    def ensure_pane(self, pane: Pane) -> None:
        """Redraw `pane` if it shows an older report or another model."""
        if self.report is None or getattr(pane, "version", None) == self.view_version:
            return
        pane.version = self.view_version
        pane.show(self.report, self.current_model())

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        for pane in event.pane.query(Pane):
            self.ensure_pane(pane)

    @on(ChangeTree.ModelHighlighted)
    def _model_highlighted(self, event: ChangeTree.ModelHighlighted) -> None:
        if event.model != self.selected:
            self.show_model(event.model)

    @on(LineagePane.Jump)
    def _lineage_jump(self, event: LineagePane.Jump) -> None:
        names = {m.name for m in self.report.models} if self.report else set()
        if event.node in names:
            self.query_one(ChangeTree).select_model(event.node)
            self.show_model(event.node)
        # Nodes outside the change set (unchanged models, sources) are still walkable here.
        self.query_one(LineagePane).show_node(event.node, event.column)
        self.query_one("#lineage-table").focus()

    # -- actions ------------------------------------------------------------------------------

    def action_focus_tree(self) -> None:
        self.query_one(ChangeTree).focus()

    def action_tab(self, tab_id: str) -> None:
        self.query_one(TabbedContent).active = tab_id

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    def action_help(self) -> None:
        from dataops_dev.tui.screens import HelpScreen

        self.push_screen(HelpScreen())

    async def action_filter(self) -> None:
        boxes = self.query("#filter")
        if boxes:
            box = boxes.first(Input)
        else:
            # Mounted on first use, not at start-up (first paint stays cheap).
            box = Input(placeholder="filter models…", id="filter")
            box.cursor_blink = False  # a blinking cursor makes screenshots differ
            await self.query_one("#left").mount(box, before=0)
        box.add_class("-visible")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        if self.report is not None:
            self.query_one(ChangeTree).show(self.report, self.filter_text)
            tree = self.query_one(ChangeTree)
            if self.selected is None or not tree.select_model(self.selected):
                first = tree.first_model()
                if first is not None:
                    tree.select_model(first)
                self.show_model(first)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        box = self.query_one("#filter", Input)
        if not box.value:
            box.remove_class("-visible")
        self.query_one(ChangeTree).focus()

    def selected_finding(self) -> Finding | None:
        summary = self.query_one(SummaryPane)
        self.ensure_pane(summary)
        return summary.selected_finding()

    def action_decide(self, decision: str) -> None:
        from dataops_dev.tui.screens import DecideScreen

        report = self.report
        finding = self.selected_finding()
        if report is None or finding is None:
            self.notify("no finding on this model to decide", severity="warning")
            return

        def submit(note: str) -> None:
            self.report = self.session.decide(report, finding, Decision(decision), note)

        def done(recorded: bool | None) -> None:
            if recorded:
                self.refresh_view()
                self.notify(f"{decision} {finding.title}", markup=False)

        self.push_screen(DecideScreen(finding, Decision(decision), submit), done)

    def action_deploy_plan(self) -> None:
        from dataops_dev.tui.screens import DeployPlanScreen

        report = self.report
        if report is None:
            self.notify("no report to deploy", severity="warning")
            return

        def done(confirmed: bool | None) -> None:
            if confirmed and self.job_running():
                self.notify("a job is already running", severity="warning")
            elif confirmed:
                start_resource_tracker()
                self.run_deploy(report)

        self.push_screen(DeployPlanScreen(lambda: self.session.plan_deploy(report)), done)

    def job_running(self) -> bool:
        return any(w.group == "job" and w.is_running for w in self.workers)

    def action_rerun(self, job: str) -> None:
        # A thread cannot be cancelled: one job at a time, so results never land out of order.
        if self.job_running():
            self.notify("a job is already running", severity="warning")
            return
        kind = Job(job)
        model = self.selected if kind is Job.DIFF else None
        if kind is Job.DIFF and model is None:
            self.notify("select a model to diff", severity="warning")
            return
        title = f"{kind.value} {model}" if model else kind.value
        start_resource_tracker()
        self.job_events.clear()
        self.query_one(JobStatus).start(title)
        self.run_job(kind, model)

    # -- background work ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="job")
    def run_job(self, job: Job, model: str | None) -> None:
        reporter = MessageReporter(self)
        try:
            result = self.session.run(job, self.report, model=model, reporter=reporter)
        except DataopsError as error:
            self.call_from_thread(self._job_failed, error.message, error.hint)
            return
        except Exception as error:  # noqa: BLE001 - shown in the UI instead of killing it
            self.call_from_thread(self._job_failed, f"{type(error).__name__}: {error}", None)
            return
        self.call_from_thread(self._job_done, result)

    @work(thread=True, exclusive=True, group="job")
    def run_deploy(self, report: Report) -> None:
        self.call_from_thread(self.query_one(JobStatus).start, "deploy")
        try:
            self.session.deploy(report, reporter=MessageReporter(self))
        except DataopsError as error:
            self.call_from_thread(self._job_failed, error.message, error.hint)
            return
        except Exception as error:  # noqa: BLE001 - shown in the UI instead of killing it
            self.call_from_thread(self._job_failed, f"{type(error).__name__}: {error}", None)
            return
        self.call_from_thread(self._job_finished_message, "deploy finished")

    def _job_finished_message(self, message: str) -> None:
        self.query_one(JobStatus).stop()
        self.say(message)
        # Job text names models and paths (`stg[orders]`): data, not markup.
        self.notify(message, markup=False)

    def _job_done(self, result: JobResult) -> None:
        self.last_job = result
        if result.report is not None:
            self.report = result.report
            self.problem = None
            self.refresh_view()
        self._job_finished_message(result.summary)

    def _job_failed(self, message: str, hint: str | None) -> None:
        self.query_one(JobStatus).stop()
        self.say(message, hint)
        self.notify(message, severity="error", timeout=8, markup=False)

    def on_job_progress(self, event: JobProgress) -> None:
        self.job_events.append((event.event, event.key, event.text))
        self.query_one(JobStatus).on_progress(event)

    # -- command palette ----------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Re-run review", "Run `review` in the background", self._cmd("review"))
        yield SystemCommand("Re-run impact", "Static change set, no database", self._cmd("impact"))
        yield SystemCommand(
            "Build the branch", "dbt build into its environment", self._cmd("build")
        )
        yield SystemCommand("Diff selected model", "Re-diff the selected model", self._cmd("diff"))
        yield SystemCommand("Deploy plan", "deploy --dry-run", self.action_deploy_plan)
        yield SystemCommand("Toggle light/dark", "Switch theme", self.action_toggle_theme)
        yield SystemCommand("Filter models", "Search models by name", self.action_filter)
        for tab_id, label, _ in TABS:
            yield SystemCommand(f"Show {label}", f"Open the {label} tab", self._tab_cmd(tab_id))

    def _cmd(self, job: str) -> Any:
        return lambda: self.action_rerun(job)

    def _tab_cmd(self, tab_id: str) -> Any:
        return lambda: self.action_tab(tab_id)
