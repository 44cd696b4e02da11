"""How the core reports progress without printing: a small `Reporter` interface.

The CLI renders it as rich progress bars on stderr, the TUI as its own widgets, CI as plain lines and
tests capture the events. Core functions take a `reporter` argument and default to `NULL_REPORTER`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol


class Reporter(Protocol):
    def task_started(self, key: str, description: str, total: float | None) -> None:
        """A unit of work began; `total` is its size in steps when known."""

    def task_advanced(self, key: str, advance: float = 1.0, description: str | None = None) -> None:
        """Progress on a task; `description` replaces the label when given."""

    def task_finished(self, key: str, status: str = "ok") -> None:
        """The task ended with `status` ("ok", "failed", "skipped")."""

    def message(self, level: str, text: str) -> None:
        """A diagnostic line: level is "info", "warning" or "error"."""


class NullReporter:
    """Ignores every event (library use without a UI)."""

    def task_started(self, key: str, description: str, total: float | None) -> None:
        pass

    def task_advanced(self, key: str, advance: float = 1.0, description: str | None = None) -> None:
        pass

    def task_finished(self, key: str, status: str = "ok") -> None:
        pass

    def message(self, level: str, text: str) -> None:
        pass


NULL_REPORTER: Reporter = NullReporter()


@dataclass
class CaptureReporter:
    """Records every event, for tests and for the timing breakdown of a run."""

    events: list[tuple[str, ...]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def task_started(self, key: str, description: str, total: float | None) -> None:
        with self._lock:
            self.events.append(("started", key, description))

    def task_advanced(self, key: str, advance: float = 1.0, description: str | None = None) -> None:
        with self._lock:
            self.events.append(("advanced", key, description or ""))

    def task_finished(self, key: str, status: str = "ok") -> None:
        with self._lock:
            self.events.append(("finished", key, status))

    def message(self, level: str, text: str) -> None:
        with self._lock:
            self.events.append(("message", level, text))

    def messages(self, level: str | None = None) -> list[str]:
        return [e[2] for e in self.events if e[0] == "message" and (level is None or e[1] == level)]


@contextmanager
def task(
    reporter: Reporter, key: str, description: str, total: float | None = None
) -> Iterator[None]:
    """Report a task around a block; a failure marks it "failed" and propagates."""
    reporter.task_started(key, description, total)
    try:
        yield
    except BaseException:
        reporter.task_finished(key, "failed")
        raise
    reporter.task_finished(key, "ok")


@dataclass
class Stopwatch:
    """Named wall-clock timings (seconds) for the breakdowns in reports and benchmarks."""

    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
