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
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

_color_choice = "auto"


def set_color(choice: str) -> None:
    global _color_choice
    _color_choice = choice


def _no_color() -> bool:
    if _color_choice == "never":
        return True
    if _color_choice == "always":
        return False
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def stderr_console() -> Console:
    return Console(
        file=sys.stderr,
        no_color=_no_color(),
        force_terminal=True if _color_choice == "always" else None,
        highlight=False,
        soft_wrap=True,
    )


def stdout_console(width: int | None = None) -> Console:
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
        self.interactive = self.console.is_terminal and not quiet
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._labels: dict[str, str] = {}
        self._progress: Progress | None = None

    def _ensure(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
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
                mark = "[green]✓[/]" if status == "ok" else f"[red]✗ {status}[/]"
                self.console.print(f"{mark} {label} [dim]({elapsed:.1f}s)[/]")

    def message(self, level: str, text: str) -> None:
        if self.quiet and level == "info":
            return
        style = {"warning": "yellow", "error": "red"}.get(level, "dim")
        with self._lock:
            self.console.print(f"[{style}]{level}:[/] {text}" if level != "info" else text)

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
