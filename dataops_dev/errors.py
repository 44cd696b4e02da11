"""The one error tree of dataops_dev.

Every deliberate failure raises a `DataopsError` carrying a one-line message (what went wrong) and a
hint (what to run next). `exit_codes.exit_code_for` maps the classes to the CLI's exit codes.

    DataopsError
    ├── UsageError            bad arguments or an impossible request          -> exit 2
    │   └── ConfigError       dataops_dev.yml / [tool.dataops_dev] is invalid  -> exit 2
    │       └── SaltError     the masking salt's environment variable is unset -> exit 2
    ├── ProjectError          the dbt project or its artifacts cannot be read   -> exit 1
    │   └── ParseFailed       dbt could not parse the project                   -> exit 1
    ├── StateFileError        a file dataops_dev wrote is corrupt or unreadable  -> exit 1
    ├── DiskError             the disk is full, read-only or not ours to write   -> exit 1
    ├── GitError              git refused or the repository is in an odd state  -> exit 1
    ├── EngineError           the database refused a statement                  -> exit 1
    ├── LockedError           another process holds the environment's lock      -> exit 1
    ├── EnvironmentNotFound   the named environment does not exist              -> exit 1
    ├── BuildError            dbt failed while building an environment          -> exit 1
    ├── GitHubError           the GitHub API refused or could not be reached    -> exit 1
    └── BlockingFindings      the verdict blocks (policy, failed test, breaking) -> exit 3
"""

from __future__ import annotations


class DataopsError(Exception):
    """Root of every error dataops_dev raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DataopsError):
    """The command was asked for something it cannot do (bad argument, missing option)."""


class ConfigError(UsageError):
    """The configuration is invalid; `path`/`line` locate the offending value when known."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
    ) -> None:
        location = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{location}{message}", hint)
        self.path = path
        self.line = line


class SaltError(ConfigError):
    """The masking salt is missing: we never fall back to a default salt."""


class ProjectError(DataopsError):
    """The dbt project, its profiles or its artifacts cannot be used."""


class ParseFailed(ProjectError):
    """dbt could not parse the project (a review reports it as a blocking finding)."""


class StateFileError(DataopsError):
    """A state file (report, environment or sample record, deploy record) is corrupt or cannot
    be read; the message names the file and the hint the command that replaces it."""


class DiskError(DataopsError):
    """Writing (or reading) a file failed in the operating system: no space left, a read-only
    file system, no permission. Never the model's fault; `path` is the file when known."""

    def __init__(self, message: str, hint: str | None = None, *, path: str | None = None) -> None:
        super().__init__(message, hint)
        self.path = path


_NO_SPACE = (28, 122)  # ENOSPC, EDQUOT
_NOT_WRITABLE = (1, 13, 30)  # EPERM, EACCES, EROFS


def disk_error(error: OSError) -> DiskError:
    """A `DiskError` for an operating-system error: what failed, on which file, what to do."""
    path = error.filename if isinstance(error.filename, str) else None
    reason = error.strerror or str(error)
    elsewhere = "or set backend.state_dir to a directory on another disk"
    if error.errno in _NO_SPACE:
        return DiskError(
            f"no space left on the device{f' writing {path}' if path else ''}",
            f"free disk space ({elsewhere}), then run the command again",
            path=path,
        )
    if error.errno in _NOT_WRITABLE:
        return DiskError(
            f"cannot write {path or 'a file'}: {reason}",
            f"make it writable ({elsewhere}), then run the command again",
            path=path,
        )
    return DiskError(
        f"{reason}{f': {path}' if path else ''}",
        "check the path, then run the command again",
        path=path,
    )


def is_disk_full(text: str) -> bool:
    """Whether a message from dbt or a database says the disk is full."""
    lowered = text.lower()
    return (
        "no space left on device" in lowered or "[errno 28]" in lowered or "disk is full" in lowered
    )


class GitError(DataopsError):
    """A git operation failed."""


class EngineError(DataopsError):
    """A database statement failed."""


class LockedError(DataopsError):
    """Another process is writing the same environment."""


class EnvironmentNotFound(DataopsError):
    """The requested environment does not exist."""


class BuildError(DataopsError):
    """dbt did not finish a build; the previous good state of the environment is kept."""


class GitHubError(DataopsError):
    """The GitHub REST API refused a request or could not be reached; `status` is its HTTP code."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class BlockingFindings(DataopsError):
    """The verdict has blocking findings (exit code 3)."""
