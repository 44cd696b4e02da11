"""Progress of background jobs: a core `Reporter` that posts textual messages, and the status bar
that shows them (the worker thread never touches widgets; the app's loop does)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.message_pump import MessagePump
from textual.widgets import Label, ProgressBar


class JobProgress(Message):
    """One reporter event from a worker thread."""

    def __init__(
        self,
        event: str,
        key: str,
        text: str = "",
        total: float | None = None,
        advance: float = 0.0,
    ) -> None:
        super().__init__()
        self.event = event
        self.key = key
        self.text = text
        self.total = total
        self.advance = advance


@dataclass
class MessageReporter:
    """The `Reporter` protocol for the TUI: every event becomes a `JobProgress` message posted
    to `target` (post_message is thread-safe in textual)."""

    target: MessagePump

    def task_started(self, key: str, description: str, total: float | None) -> None:
        self.target.post_message(JobProgress("started", key, description, total=total))

    def task_advanced(self, key: str, advance: float = 1.0, description: str | None = None) -> None:
        self.target.post_message(JobProgress("advanced", key, description or "", advance=advance))

    def task_finished(self, key: str, status: str = "ok") -> None:
        self.target.post_message(JobProgress("finished", key, status))

    def message(self, level: str, text: str) -> None:
        self.target.post_message(JobProgress("message", level, text))


class JobStatus(Horizontal):
    """A one-line bar under the panes: the running job, its current task and progress."""

    DEFAULT_CSS = """
    JobStatus { height: 1; display: none; background: $panel; }
    JobStatus.-running { display: block; }
    JobStatus #job-label { width: 1fr; padding: 0 1; }
    JobStatus ProgressBar { width: 30; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="job-label")

    def _bar(self) -> ProgressBar | None:
        bars = self.query(ProgressBar)
        return bars.first() if bars else None

    def start(self, title: str) -> None:
        self._title = title
        self.query_one("#job-label", Label).update(Text(f"{title}: starting…"))
        bar = self._bar()
        if bar is None:
            # Mounted on the first job, not at start-up (first paint stays cheap).
            self.mount(ProgressBar(total=None, show_eta=False, id="job-bar"))
        else:
            bar.update(total=None, progress=0)
        self.add_class("-running")

    def on_progress(self, event: JobProgress) -> None:
        label = self.query_one("#job-label", Label)
        bar = self._bar()
        title = getattr(self, "_title", "job")
        if event.event == "started":
            if bar is not None:
                bar.update(total=event.total, progress=0)
            label.update(Text(f"{title}: {event.text}"))
        elif event.event == "advanced":
            if bar is not None:
                bar.advance(event.advance)
            if event.text:
                label.update(Text(f"{title}: {event.text}"))
        elif event.event == "message":
            label.update(Text(f"{title}: {event.text}"))

    def stop(self) -> None:
        self.remove_class("-running")
