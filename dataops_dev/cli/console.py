"""Terminal plumbing for the CLI: stderr console, colour rules, and a Reporter that draws.

stdout carries only data; everything here writes to stderr. Colour follows NO_COLOR / FORCE_COLOR /
TERM=dumb and `--color`; progress bars appear only on a terminal and vanish when done, CI gets plain
lines.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported where it draws: `set_color` runs for every command
    from rich.console import Console
    from rich.progress import Progress, TaskID

_color_choice = "auto"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def set_color(choice: str) -> None:
    global _color_choice
    _color_choice = choice


def _no_color() -> bool:
    if _color_choice == "never":
        return True
    if _color_choice == "always":
        return False
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def click_color() -> bool | None:
    """The same colour rule for `click.echo(color=...)`: lines printed without rich (the error
    line of a fast command must not import it). None: colour when the stream is a terminal."""
    if _no_color():
        return False
    if _color_choice == "always" or os.environ.get("FORCE_COLOR"):
        return True
    return None


def stderr_console() -> Console:
    from rich.console import Console

    return Console(
        file=sys.stderr,
        no_color=_no_color(),
        force_terminal=True if _color_choice == "always" else None,
        highlight=False,
        soft_wrap=True,
    )


PIPE_WIDTH = 1000
"""Width of text written to a pipe or file: tables keep their natural width instead of rich's
80-column default, which split model names mid-word and truncated `env list`."""


def stdout_console(width: int | None = None) -> Console:
    """The data console. On a terminal it fits the terminal; elsewhere it uses `COLUMNS` when
    set, else the content's own width (up to PIPE_WIDTH)."""
    if width is None and not _isatty(sys.stdout) and not os.environ.get("COLUMNS", "").isdigit():
        width = PIPE_WIDTH
    from rich.console import Console

    return Console(
        file=sys.stdout,
        no_color=_no_color(),
        force_terminal=True if _color_choice == "always" else None,
        highlight=False,
        width=width,
    )


class TerminalReporter:
    """Rich progress bars on stderr (transient), or plain lines when stderr is not a terminal."""

    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or stderr_console()
        self.quiet = quiet
        # Bars redraw with cursor codes: only on a real terminal. `--color always` and
        # FORCE_COLOR make the console a "terminal" for colour, which a CI log is not.
        self.interactive = (
            not quiet and _isatty(self.console.file) and not self.console.is_dumb_terminal
        )
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._labels: dict[str, str] = {}
        self._progress: Progress | None = None

    def _ensure(self) -> Progress:
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                # Descriptions name models and paths (`stg[orders]`): data, not markup.
                TextColumn("{task.description}", style="progress.description", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self._progress

    def task_started(self, key: str, description: str, total: float | None) -> None:
        with self._lock:
            self._started[key] = time.perf_counter()
            self._labels[key] = description
            if self.interactive:
                self._tasks[key] = self._ensure().add_task(description, total=total)

    def task_advanced(self, key: str, advance: float = 1.0, description: str | None = None) -> None:
        with self._lock:
            if self.interactive and key in self._tasks:
                kwargs: dict[str, Any] = {"advance": advance}
                if description:
                    kwargs["description"] = description
                self._ensure().update(self._tasks[key], **kwargs)

    def task_finished(self, key: str, status: str = "ok") -> None:
        with self._lock:
            elapsed = time.perf_counter() - self._started.pop(key, time.perf_counter())
            label = self._labels.pop(key, key)
            if self.interactive and key in self._tasks:
                self._ensure().remove_task(self._tasks.pop(key))
                if not self._tasks and self._progress is not None:
                    self._progress.stop()
                    self._progress = None
            if not self.quiet:
                from rich.text import Text

                mark = ("✓", "green") if status == "ok" else (f"✗ {status}", "red")
                self.console.print(
                    Text.assemble(mark, " ", label, " ", (f"({elapsed:.1f}s)", "dim"))
                )

    def message(self, level: str, text: str) -> None:
        if self.quiet and level == "info":
            return
        from rich.text import Text

        style = {"warning": "yellow", "error": "red"}.get(level, "dim")
        with self._lock:
            line = Text(text) if level == "info" else Text.assemble((f"{level}:", style), " ", text)
            self.console.print(line)

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
