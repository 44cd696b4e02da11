"""What a deploy leaves on disk and how the next command finds it: the exclusive production
lock, per-process work directories (swept once their process is dead) and the journal that
lets a deploy killed after its swap finish writing production's metadata.

Kept apart from deploy.py so every command can run the sweep at start without importing dbt.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataops_dev.atomic import write_bytes_atomic, write_json_atomic
from dataops_dev.errors import DataopsError, LockedError

if TYPE_CHECKING:
    from dataops_dev.config import LoadedConfig

JOURNAL = "journal.json"
JOURNAL_MANIFEST = "journal.manifest.json"
LOCK_SUFFIX = ".dataops-lock"
"""Suffix of the production lock file (DuckDB): `.<production file name>.dataops-lock`."""


def deploy_root(state_dir: Path) -> Path:
    return state_dir / "deploy"


# -- processes ---------------------------------------------------------------------------------


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def process_identity() -> dict[str, Any]:
    """This process, as recorded in a work directory or a lock: pid, host and start time."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _start_ticks(pid)}


def is_alive(owner: Mapping[str, Any]) -> bool:
    """Whether the recorded process still runs. A process of another host is assumed alive:
    we cannot tell, and removing a live deploy's files would break it."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        pid = int(owner.get("pid", 0))
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = owner.get("started")
    return started is None or _start_ticks(pid) in (None, started)


# -- work directories --------------------------------------------------------------------------

OWNER_FILE = "owner.json"


@contextlib.contextmanager
def work_dir(state_dir: Path) -> Iterator[Path]:
    """A work directory of this process only (`<utc time>-p<pid>`), removed on any exit that
    runs Python's `finally`; the sweep removes it after a SIGKILL."""
    root = deploy_root(state_dir)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = root / f"{stamp}-p{os.getpid()}"
    path.mkdir()
    try:
        # The owner is written before anything else: a directory without one is stale.
        write_json_atomic(path / OWNER_FILE, process_identity())
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _owner(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / OWNER_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sweep_work_dirs(state_dir: Path) -> list[Path]:
    """Remove the work directories of deploys whose process is gone (killed, crashed): each can
    hold a full, unmasked copy of production. Returns the directories removed."""
    root = deploy_root(state_dir)
    if not root.is_dir():
        return []
    removed = []
    for path in sorted(root.iterdir()):
        if not path.is_dir() or path.is_symlink():
            continue
        owner = _owner(path)
        if owner is not None and is_alive(owner):
            continue
        if owner is None and _recent(path):
            continue  # created this instant, its owner file not yet written
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _recent(path: Path, seconds: float = 10.0) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


# -- the production lock (DuckDB) -------------------------------------------------------------


def lock_path(production: Path) -> Path:
    return production.with_name(f".{production.name}{LOCK_SUFFIX}")


@contextlib.contextmanager
def file_lock(path: Path, holder: str) -> Iterator[None]:
    """An exclusive, non-blocking lock on `path` for the block; `holder` (who, since when) is
    written into the locked file so a refused process can name it. The kernel drops the lock
    when the process dies, however it dies. The file is removed on release (it sits beside
    production, often inside the project): after a kill it stays, unlocked, until the next use.
    """
    fd = _acquire(path)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode("utf-8"), 0)
        try:
            yield
        finally:
            # Removed while still locked: a process that opened it meanwhile finds, once it
            # gets the lock, that the path no longer names its file, and starts over.
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the lock


def _acquire(path: Path, attempts: int = 10) -> int:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"production is being deployed by {other}",
                "wait for that deploy to finish, then run `dataops-dev deploy` again",
            ) from None
        try:
            current = os.stat(path)
            locked = os.fstat(fd)
            if (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed it as we opened it: take the new one
    raise LockedError(f"could not take the deploy lock {path}", "run `dataops-dev deploy` again")


def holder_description(what: str = "dataops-dev deploy") -> str:
    me = process_identity()
    since = datetime.now(UTC).isoformat(timespec="seconds")
    return f"{what} (pid {me['pid']} on {me['host']}, since {since})"


# -- the journal -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Journal:
    """What a deploy must still write once its swap is done, and how to tell whether it is."""

    backend: str
    production: str
    """DuckDB: the production file. PostgreSQL: the production conninfo's database name.
    Spark: `spark:<remote>:<schema>`."""
    swapped_when: Mapping[str, Any]
    """DuckDB: {"inode": [dev, ino]} of the staging file (production has it once renamed).
    PostgreSQL: {"txid": ...} of the publishing transaction. Spark: {"version", "token"} of the
    version schema, published once the pointer table has its row."""
    record_path: str
    record: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "backend": self.backend,
            "production": self.production,
            "swapped_when": dict(self.swapped_when),
            "record_path": self.record_path,
            "record": dict(self.record),
        }


def write_journal(state_dir: Path, journal: Journal, manifest: bytes) -> None:
    """Before the swap: the new manifest, then the journal that points to it."""
    root = deploy_root(state_dir)
    write_bytes_atomic(root / JOURNAL_MANIFEST, manifest)
    write_json_atomic(root / JOURNAL, journal.to_dict())


def read_journal(state_dir: Path) -> Journal | None:
    path = deploy_root(state_dir) / JOURNAL
    try:
        data = json.loads(path.read_text("utf-8"))
        return Journal(
            backend=str(data["backend"]),
            production=str(data["production"]),
            swapped_when=dict(data["swapped_when"]),
            record_path=str(data["record_path"]),
            record=dict(data["record"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # Unreadable: written by nothing we know. Dropping it loses only metadata.
        clear_journal(state_dir)
        return None


def clear_journal(state_dir: Path) -> None:
    root = deploy_root(state_dir)
    (root / JOURNAL).unlink(missing_ok=True)
    (root / JOURNAL_MANIFEST).unlink(missing_ok=True)


def complete(state_dir: Path, journal: Journal) -> Path:
    """Write production's metadata (manifest, deployment record) named by the journal, then drop
    the journal. Idempotent: a kill half-way through is completed by the next command."""
    root = deploy_root(state_dir)
    manifest = root / JOURNAL_MANIFEST
    if manifest.exists():
        write_bytes_atomic(state_dir / "production" / "manifest.json", manifest.read_bytes())
    record = Path(journal.record_path)
    write_json_atomic(record, journal.record)
    clear_journal(state_dir)
    return record


def duckdb_swapped(journal: Journal) -> bool:
    """The production file is the staging file the journal names (same inode)."""
    try:
        stat = os.stat(journal.production)
    except OSError:
        return False
    inode = journal.swapped_when.get("inode") or []
    return [stat.st_dev, stat.st_ino] == list(inode)


SwapCheck = Callable[["Journal"], contextlib.AbstractContextManager[bool | None]]
"""Holds production's deploy lock for the block (raising LockedError while a deploy runs) and
yields whether the journal's swap happened (None: cannot tell)."""


def recover(state_dir: Path, *, checks: Mapping[str, SwapCheck] | None = None) -> list[str]:
    """Run at every command's start: finish or drop an interrupted deploy's journal, then sweep
    dead deploys' work directories. Returns what was done, one line each.

    `checks` maps a warehouse backend ("postgres", "spark") to its `SwapCheck` (they connect to
    production); a journal of a backend without one is left for a command that can check. The
    Spark check also settles production itself (views finished, or the unpublished version
    dropped). DuckDB journals are checked here, on the production file.
    """
    done: list[str] = []
    journal = read_journal(state_dir)
    known: dict[str, SwapCheck] = {"duckdb": _duckdb_check, **(checks or {})}
    check = known.get(journal.backend) if journal is not None else None
    if journal is not None and check is not None:
        try:
            with check(journal) as swapped:
                # Under the lock: a journal read before it may since have been completed.
                if swapped is not None and read_journal(state_dir) == journal:
                    done.append(settle(state_dir, journal, swapped))
        except LockedError:
            pass  # a live deploy owns production (and will handle the journal)
    done.extend(f"removed stale deploy work {p.name}" for p in sweep_work_dirs(state_dir))
    return done


@contextlib.contextmanager
def _duckdb_check(journal: Journal) -> Iterator[bool | None]:
    with file_lock(lock_path(Path(journal.production)), holder_description("recovery")):
        yield duckdb_swapped(journal)


def settle(state_dir: Path, journal: Journal, swapped: bool) -> str:
    """Roll an interrupted deploy forward (its swap happened) or drop its journal."""
    if swapped:
        record = complete(state_dir, journal)
        return f"completed the interrupted deploy's metadata ({record.name})"
    clear_journal(state_dir)
    return "dropped the journal of a deploy interrupted before its swap (production unchanged)"


def recover_at_start(loaded: LoadedConfig) -> list[str]:
    """Every command's first step: `recover`, best effort (it never stops the command; a
    PostgreSQL journal it cannot settle now waits for the next command or deploy)."""
    if not deploy_root(loaded.state_dir).is_dir():
        return []

    def through_production(name: str) -> SwapCheck:
        @contextlib.contextmanager
        def check(journal: Journal) -> Iterator[bool | None]:
            # The package exports a `deploy` function: import the module by its full name.
            deploy = importlib.import_module("dataops_dev.deploy")
            with getattr(deploy, name)(loaded, journal) as swapped:
                yield swapped

        return check

    checks = {
        "postgres": through_production("postgres_swap_check"),
        "spark": through_production("spark_swap_check"),
    }
    try:
        return recover(loaded.state_dir, checks=checks)
    except (DataopsError, OSError):
        return []
