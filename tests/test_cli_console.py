"""The CLI's terminal reporter: report text is data (brackets print as written, in plain lines
and in live progress bars), and bars only draw on a real terminal, whatever `--color` says."""

from __future__ import annotations

import io
import os
import pty
import select
import threading
from collections.abc import Iterator

import pytest
from rich.console import Console

from dataops_dev.cli.console import TerminalReporter, set_color, stderr_console

NAMES = ("model stg[orders]", "copy [/tmp/a] done", "[bold]not bold[/bold]")


def _events(reporter: TerminalReporter) -> None:
    for index, name in enumerate(NAMES):
        reporter.task_started(f"task{index}", name, total=2)
        reporter.task_advanced(f"task{index}", description=f"{name} (half)")
        reporter.task_finished(f"task{index}", "ok" if index else "failed [x]")
        reporter.message("warning", name)
        reporter.message("info", name)
    reporter.close()


def test_plain_lines_show_text_literally() -> None:
    buffer = io.StringIO()
    reporter = TerminalReporter(Console(file=buffer, no_color=True, width=200))
    assert not reporter.interactive
    _events(reporter)
    out = buffer.getvalue()
    for name in NAMES:
        assert f"{name} (" in out  # the finished line, with its time
        assert f"warning: {name}\n" in out
        assert f"\n{name}\n" in out
    assert "✗ failed [x] model stg[orders]" in out


def _read_all(fd: int, chunks: list[bytes], done: threading.Event) -> None:
    while True:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)
        elif done.is_set():
            return


def test_progress_bars_on_a_terminal_show_text_literally() -> None:
    # A real pseudo-terminal: the reporter draws live bars (the path a developer sees).
    primary, secondary = pty.openpty()
    chunks: list[bytes] = []
    done = threading.Event()
    reader = threading.Thread(target=_read_all, args=(primary, chunks, done))
    reader.start()
    try:
        with os.fdopen(secondary, "w", encoding="utf-8") as terminal:
            reporter = TerminalReporter(Console(file=terminal, width=200))
            assert reporter.interactive
            _events(reporter)
            terminal.flush()
    finally:
        done.set()
        reader.join()
        os.close(primary)
    out = b"".join(chunks).decode("utf-8", "replace")
    for name in NAMES:
        assert name in out


@pytest.fixture
def color_always() -> Iterator[None]:
    set_color("always")
    try:
        yield
    finally:
        set_color("auto")


def test_color_always_does_not_draw_bars_into_a_log(
    color_always: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--color always` in CI: colour yes, cursor-moving bars no (stderr is not a terminal).
    reporter = TerminalReporter(stderr_console())
    assert not reporter.interactive
    _events(reporter)
    err = capsys.readouterr().err
    assert "\x1b[" in err  # coloured
    assert "\x1b[?25l" not in err  # no hidden cursor: no live display
    assert "\x1b[2K" not in err  # no line erasing
