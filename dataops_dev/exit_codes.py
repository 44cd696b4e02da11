"""The CLI's exit codes: a contract scripts and CI rely on (README "Exit codes")."""

from __future__ import annotations

from enum import IntEnum

from dataops_dev.errors import BlockingFindings, DataopsError, UsageError


class ExitCode(IntEnum):
    OK = 0
    """Success."""
    RUNTIME_ERROR = 1
    """Something failed at run time (dbt, database, git, lock)."""
    USAGE_ERROR = 2
    """Bad arguments or invalid configuration."""
    BLOCKING_FINDINGS = 3
    """Policy failure, failed dbt test or unapproved breaking change."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C, SIGINT)."""
    TERMINATED = 143
    """Stopped by SIGTERM (cleaned up like an interrupt)."""


def exit_code_for(error: BaseException) -> ExitCode:
    """Map an exception to the exit code the CLI returns for it."""
    from dataops_dev.interrupts import Interrupted

    if isinstance(error, Interrupted):
        return ExitCode(error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, BlockingFindings):
        return ExitCode.BLOCKING_FINDINGS
    if isinstance(error, UsageError):
        return ExitCode.USAGE_ERROR
    if isinstance(error, DataopsError):
        return ExitCode.RUNTIME_ERROR
    return ExitCode.RUNTIME_ERROR
