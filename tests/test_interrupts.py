"""Signals as a flag: a publishing step never starts after SIGINT/SIGTERM, one that arrives during
it waits until the step is complete, and the CLI exits 130 (SIGINT) or 143 (SIGTERM) whatever a
library made of the interrupt. Real signals sent to this process; the end-to-end kill tests on
real commands are in test_interrupts_real.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from dataops_dev import interrupts
from dataops_dev.exit_codes import ExitCode, exit_code_for
from dataops_dev.interrupts import Interrupted


@pytest.fixture
def handlers() -> Iterator[None]:
    interrupts.reset()
    restore = interrupts.install()
    try:
        yield
    finally:
        restore()
        interrupts.reset()


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    # The handler runs in the main thread at the next bytecode boundary.
    for _ in range(100):
        time.sleep(0.001)


def test_sigterm_is_an_interruption_with_exit_code_143(handlers: None) -> None:
    with pytest.raises(Interrupted) as caught:
        _signal_self(signal.SIGTERM)
    assert caught.value.signum == signal.SIGTERM
    assert isinstance(caught.value, KeyboardInterrupt)  # every cleanup path runs as for Ctrl-C
    assert exit_code_for(caught.value) == ExitCode.TERMINATED == 143
    assert interrupts.requested() == signal.SIGTERM


def test_sigint_exit_code_is_130(handlers: None) -> None:
    with pytest.raises(Interrupted) as caught:
        _signal_self(signal.SIGINT)
    assert exit_code_for(caught.value) == ExitCode.INTERRUPTED == 130


def test_a_signal_during_a_compiled_modules_import_comes_again_after_it(handlers: None) -> None:
    """Raising inside a compiled module's initialisation aborts the interpreter (DuckDB's
    nanobind init did, exit -6): there the handler only records, and the signal comes again."""
    from importlib.machinery import ExtensionFileLoader

    def exec_module(self: ExtensionFileLoader) -> None:  # where the import system runs its init
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs here and must not raise

    exec_module(ExtensionFileLoader("compiled", "compiled.so"))
    assert interrupts.requested() == signal.SIGINT
    with pytest.raises(Interrupted):
        for _ in range(200):  # signalled again shortly after
            time.sleep(0.01)


def test_nothing_is_published_after_a_swallowed_signal(handlers: None) -> None:
    # A library (dbt, DuckDB) catches the KeyboardInterrupt and goes on.
    with contextlib.suppress(KeyboardInterrupt):
        _signal_self(signal.SIGINT)
    published: list[str] = []
    with pytest.raises(Interrupted), interrupts.publishing():
        published.append("report")
    assert published == []
    with pytest.raises(Interrupted):
        interrupts.check()


def test_a_signal_during_publishing_waits_until_the_step_is_complete(handlers: None) -> None:
    steps: list[str] = []
    with pytest.raises(Interrupted) as caught, interrupts.publishing():
        steps.append("swap database")
        _signal_self(signal.SIGTERM)
        steps.append("swap target")
        with interrupts.publishing():  # nested: part of the same step
            steps.append("save metadata")
    assert steps == ["swap database", "swap target", "save metadata"]
    assert caught.value.signum == signal.SIGTERM


def test_a_publication_is_interruptible_until_it_starts_publishing(handlers: None) -> None:
    steps: list[str] = []
    with pytest.raises(Interrupted), interrupts.publication():
        steps.append("staging build")
        _signal_self(signal.SIGINT)
        steps.append("unreachable")
    assert steps == ["staging build"]
    interrupts.reset()

    with pytest.raises(Interrupted), interrupts.publication():
        steps.append("second staging build")
        interrupts.start_publishing()
        _signal_self(signal.SIGINT)
        steps.append("swap")
        steps.append("record")
    assert steps[-3:] == ["second staging build", "swap", "record"]


def run_python(code: str, *args: str, cwd: os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """`python -c CODE ARGS` in `cwd`, its output captured."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, cwd=cwd
    )


def test_cli_exit_code_follows_the_signal_even_when_the_command_swallows_it(
    tmp_path: os.PathLike[str],
) -> None:
    """A command that catches the interrupt and returns normally still exits 130/143."""
    code = textwrap.dedent(
        """
        import os, signal, sys, click
        from dataops_dev import cli

        @click.command("swallow")
        def swallow():
            try:
                os.kill(os.getpid(), int(sys.argv[1]))
                for _ in range(1000):
                    pass
                import time; time.sleep(0.05)
            except KeyboardInterrupt:
                pass  # like dbt: turned into a result
            click.echo("finished anyway")

        cli.cli.add_command(swallow)
        cli.main(["swallow"])
        """
    )
    for signum, expected in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        result = run_python(code, str(int(signum)), cwd=tmp_path)
        assert result.returncode == expected, result.stderr
        assert "interrupted" in result.stderr
        assert "Traceback" not in result.stderr


def test_cli_turns_duckdb_query_interrupted_into_exit_130(tmp_path: os.PathLike[str]) -> None:
    """DuckDB raises its own error for Ctrl-C during a query; the exit code is still 130."""
    code = textwrap.dedent(
        """
        import os, signal, threading, click, duckdb
        from dataops_dev import cli

        @click.command("query")
        def query():
            con = duckdb.connect()
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
            con.execute(
                "select count(*) from range(300000000) t where hash(range) % 7 = 3"
            ).fetchall()
            click.echo("finished")

        cli.cli.add_command(query)
        cli.main(["query"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert result.returncode == 130, result.stderr
    assert "finished" not in result.stdout  # DuckDB stopped the query ("Query interrupted")
    assert "unexpected error" not in result.stderr


def test_an_interrupted_run_ends_on_its_one_line_without_finaliser_noise(
    tmp_path: os.PathLike[str],
) -> None:
    """An object the interrupt left half done (GitPython's blob stream, half read when the
    signal came) fails in its finaliser at exit: that must not print after `interrupted`."""
    code = textwrap.dedent(
        """
        import os, signal, sys, time, click
        from dataops_dev import cli

        class HalfRead:
            def __del__(self):
                raise ValueError("read of closed file")

        @click.command("halfway")
        def halfway():
            global leftover
            leftover = HalfRead()  # finalised only as the interpreter exits
            os.kill(os.getpid(), int(sys.argv[1]))
            time.sleep(5)

        cli.cli.add_command(halfway)
        cli.main(["halfway", *sys.argv[2:]])
        """
    )
    for signum, expected in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        result = run_python(code, str(int(signum)), cwd=tmp_path)
        assert result.returncode == expected, result.stderr
        assert result.stderr.rstrip().endswith("interrupted"), result.stderr
        assert "Exception ignored" not in result.stderr
    # With --debug the finaliser's error is still shown.
    debug_code = code.replace('"halfway", *sys.argv[2:]', '"--debug", "halfway"')
    debug = run_python(debug_code, str(int(signal.SIGINT)), cwd=tmp_path)
    assert debug.returncode == 130
    assert "read of closed file" in debug.stderr
