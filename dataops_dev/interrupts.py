"""Ctrl-C and SIGTERM as a flag the core checks before it publishes anything.

dbt's in-process runner and DuckDB catch KeyboardInterrupt and turn it into their own results
and errors ("Query interrupted"); the flag set by our signal handler survives that, so the code
after their call (and the CLI) still knows the run was interrupted. Publishing steps (an
environment swap, a sample file, a report, a deploy) run inside `publishing()`: they never start
after a signal, and a signal that arrives while one runs waits until it is complete.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = [
    "Interrupted",
    "check",
    "exit_code",
    "finish",
    "install",
    "note_keyboard_interrupt",
    "publication",
    "publishing",
    "requested",
    "reset",
    "start_publishing",
]

_HANDLED = (signal.SIGINT, signal.SIGTERM)
_lock = threading.Lock()
_signal: int | None = None
_publishing = 0
_finished = False


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by SIGINT or SIGTERM (`signum`)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)


def exit_code(signum: int | None) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum if signum is not None else signal.SIGINT)


def requested() -> int | None:
    """The signal that asked this process to stop, or None."""
    return _signal


def _record(signum: int) -> None:
    global _signal
    with _lock:
        if _signal is None or signum == signal.SIGTERM:
            # SIGTERM (a supervisor stopping us) outranks a Ctrl-C for the exit code.
            _signal = signum


def _handler(signum: int, frame: FrameType | None) -> None:
    _record(signum)
    if _publishing or _finished:
        # Inside a publishing step: it finishes, then `publishing()` raises. After `finish()`:
        # the run is over, the signal only sets the exit code.
        return
    if _in_extension_import(frame):
        # An exception inside a compiled module's initialisation (DuckDB's, while it builds its
        # enums) aborts the interpreter: the signal comes again once the import is done.
        _signal_again(signum)
        return
    raise Interrupted(signum)


def _in_extension_import(frame: FrameType | None) -> bool:
    from importlib.machinery import ExtensionFileLoader

    while frame is not None:
        loader = frame.f_locals.get("self") if frame.f_code.co_name == "exec_module" else None
        if isinstance(loader, ExtensionFileLoader):
            return True
        frame = frame.f_back
    return False


def _signal_again(signum: int, delay: float = 0.05) -> None:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


def finish() -> None:
    """The run is over: from now on a signal is only recorded (it sets the exit code), so it
    cannot escape as a KeyboardInterrupt while the process exits."""
    global _finished
    _finished = True


def install() -> Callable[[], None]:
    """Handle SIGINT and SIGTERM in this process; returns a function that restores the previous
    handlers. Only the main thread can install handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}
    for signum in _HANDLED:
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, _handler)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def check() -> None:
    """Raise `Interrupted` when a signal arrived (even if a library swallowed it)."""
    signum = _signal
    if signum is not None:
        raise Interrupted(signum)


def note_keyboard_interrupt() -> None:
    """Record a KeyboardInterrupt that reached us without our handler (e.g. raised by a library
    before `install`, or in a test) as a SIGINT."""
    _record(signal.SIGINT)


@contextlib.contextmanager
def publishing() -> Iterator[None]:
    """Run a publishing step whole: refused once a signal arrived; a signal that arrives during
    it is held back until it is complete, then raised. Inside a step already publishing it
    adds nothing (the outer step publishes whole)."""
    if _open and _open[-1][0]:
        yield
        return
    with publication():
        start_publishing()
        yield


_open: list[list[bool]] = []
"""One entry per open `publication()` (main thread): whether it started publishing."""


@contextlib.contextmanager
def publication() -> Iterator[None]:
    """A block whose publishing starts part-way, at `start_publishing()` (e.g. a deploy: dbt
    builds a staging copy, then production is swapped and the deployment recorded). Signals
    interrupt it normally until then; from then on they wait until the block is complete."""
    global _publishing
    started = [False]
    _open.append(started)
    try:
        yield
    finally:
        _open.remove(started)
        if started[0]:
            with _lock:
                _publishing -= 1
    if started[0]:
        check()


def start_publishing() -> None:
    """From here to the end of the innermost `publication()`, signals wait; refused (raises
    `Interrupted`) when one already arrived. Outside a publication it only checks."""
    global _publishing
    check()
    if not _open or _open[-1][0]:
        return
    with _lock:
        _publishing += 1
        _open[-1][0] = True


def reset() -> None:
    """Forget a recorded signal (tests, and long-lived hosts that handle one and go on)."""
    global _signal, _finished
    with _lock:
        _signal = None
        _finished = False
