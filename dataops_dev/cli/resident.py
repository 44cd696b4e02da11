"""A resident process that keeps dbt imported, so `review` and `build` skip dbt's start-up.

Every new process pays about 2.5 CPU-seconds before dbt does any work: importing dbt (~1.3 s)
and generating its (de)serialisation code on first use. The worker pays that once: it imports
dbt and our core, builds a one-model project, then waits on a Unix socket. Each command runs in
a fork of it, with the caller's arguments, working directory, environment, umask and terminal
(stdin, stdout and stderr are passed as file descriptors), so what runs is the same code on the
same input as in a fresh process, only already imported. The caller forwards Ctrl-C and SIGTERM
to the fork and exits with its exit code; if the caller dies, the fork is stopped as by SIGTERM.

Trust: the socket lives in a directory only this user can open (0700, checked, never a link),
the worker answers only its own user (SO_PEERCRED), and it serves exactly the code it started
from: the socket's name is a digest of our source files, the interpreter and the installed
distributions, so an edit or an upgrade starts a new worker. Nothing a command does flows back
into the worker: each fork starts from the state right after warm-up. The worker's own
environment is reduced to what imports need (no salt, no warehouse password).

`DATAOPS_WORKER=0` runs every command in its own process (the default where `CI` is set: a
one-shot job gains nothing); a worker exits after `DATAOPS_WORKER_IDLE` seconds (default 900)
without a command. Windows (no fork, no Unix sockets) always runs commands in their own process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataops_dev.cli import RESIDENT_COMMANDS
from dataops_dev.errors import DataopsError

__all__ = [
    "Location",
    "Served",
    "dispatch",
    "enabled",
    "idle_seconds",
    "running_pid",
    "serve",
    "start_in_background",
    "stop",
]

IDLE_SECONDS = 900.0
_FALSE = ("0", "false", "no", "off")
_HEADER = struct.Struct("!I")
_MAX_REQUEST = 16 * 1024 * 1024
# What the worker's own environment keeps: what finding and importing modules needs.
_SERVER_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
_SERVER_ENV_PREFIXES = ("DATAOPS_WORKER", "DATAOPS_RUNTIME_DIR", "XDG_")


# --------------------------------------------------------------------------------------------
# Where a worker lives, and which code it serves


@dataclass(frozen=True)
class Location:
    """The socket (and its lock) of the worker that serves this code."""

    directory: Path
    key: str

    @property
    def socket_path(self) -> Path:
        return self.directory / f"worker-{self.key}.sock"

    @property
    def lock_path(self) -> Path:
        return self.directory / f"worker-{self.key}.lock"

    @property
    def refused_path(self) -> Path:
        """Written when this code cannot be served (its warm-up failed or left threads running):
        no worker is started for it again."""
        return self.directory / f"worker-{self.key}.refused"

    def refused(self) -> str | None:
        try:
            return self.refused_path.read_text().strip() or "refused"
        except OSError:
            return None

    @classmethod
    def current(cls) -> Location | None:
        """This code's worker location, or None when no private directory can hold it."""
        directory = _private_directory()
        if directory is None:
            return None
        location = cls(directory, code_key())
        # A Unix socket path has at most 107 bytes (108 with its NUL).
        return location if len(os.fsencode(location.socket_path)) <= 107 else None


def _runtime_root() -> Path:
    if explicit := os.environ.get("DATAOPS_RUNTIME_DIR"):
        return Path(explicit)
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime) / "dataops_dev"
    return Path("/tmp") / f"dataops_dev-{os.getuid()}"


def _private_directory() -> Path | None:
    """The runtime directory, created 0700; None if it is a link, someone else's, or open to
    others (a socket there could be anyone's)."""
    directory = _runtime_root()
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700, parents=True)
    try:
        info = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return directory


def code_key(package: Path | None = None, site_dirs: Sequence[str] | None = None) -> str:
    """A digest of what a worker has imported: our source files (path, size, mtime), the
    interpreter, PYTHONPATH and the installed distributions (their dist-info names carry
    versions)."""
    from dataops_dev.codestamp import PACKAGE, source_stamp

    package = package or PACKAGE
    digest = hashlib.sha256()
    for part in (sys.executable, sys.version, os.environ.get("PYTHONPATH", ""), str(package)):
        digest.update(part.encode() + b"\0")
    digest.update(source_stamp(package).encode() + b"\0")
    for site in site_dirs if site_dirs is not None else _site_dirs():
        with contextlib.suppress(OSError):
            names = sorted(n for n in os.listdir(site) if n.endswith((".dist-info", ".pth")))
            digest.update(f"{site}:{','.join(names)}\0".encode())
    return digest.hexdigest()[:20]


def _site_dirs() -> list[str]:
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]


def enabled(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    if not hasattr(os, "fork") or not hasattr(socket, "AF_UNIX"):
        return False
    setting = environ.get("DATAOPS_WORKER")
    if setting is not None and setting.strip() != "":
        return setting.strip().lower() not in _FALSE
    return environ.get("CI", "").strip().lower() in ("", *_FALSE)


def idle_seconds() -> float:
    try:
        return max(0.1, float(os.environ.get("DATAOPS_WORKER_IDLE", IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


# --------------------------------------------------------------------------------------------
# Framing: a length-prefixed JSON request (with the three file descriptors), JSON lines back


def _send_request(sock: socket.socket, request: dict[str, Any], fds: Sequence[int]) -> None:
    payload = json.dumps(request).encode()
    data = _HEADER.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [data], list(fds))
    sock.sendall(data[sent:])


def _receive_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _address = socket.recv_fds(conn, 65536, 3)
    if len(data) < _HEADER.size:
        raise ValueError("short request")
    (size,) = _HEADER.unpack_from(data)
    if size > _MAX_REQUEST:
        raise ValueError("request too large")
    body = bytearray(data[_HEADER.size :])
    while len(body) < size:
        chunk = conn.recv(min(65536, size - len(body)))
        if not chunk:
            raise ValueError("truncated request")
        body += chunk
    return json.loads(body), list(fds)


def _send_line(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


# --------------------------------------------------------------------------------------------
# The caller's side


@dataclass(frozen=True)
class Served:
    """A command a worker ran: its exit code, and what went wrong around it (for the CLI to
    report) when the fork did not finish on its own."""

    code: int
    problem: DataopsError | None = None


def dispatch(args: Sequence[str]) -> Served | None:
    """Run `dataops-dev ARGS` in this code's worker; None when the command is not routed,
    workers are off, or no worker answers (then the caller runs it)."""
    if not args or args[0] not in RESIDENT_COMMANDS or not enabled():
        return None
    try:
        location = Location.current()
    except OSError:  # a source file vanished while it was read (an install in progress)
        return None
    if location is None:
        return None
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(location.socket_path))
    except OSError:
        return None
    with sock:
        try:
            _send_request(sock, _request(args), (0, 1, 2))
        except OSError:
            return None
        return _await_exit(sock)


def _request(args: Sequence[str]) -> dict[str, Any]:
    umask = os.umask(0o022)
    os.umask(umask)
    streams = {
        name: [getattr(stream, "encoding", None), getattr(stream, "errors", None)]
        for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout), ("stderr", sys.stderr))
    }
    return {
        "argv0": sys.argv[0],
        "args": list(args),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "streams": streams,
    }


def _await_exit(sock: socket.socket) -> Served | None:
    """Wait for the fork's exit status, forwarding SIGINT, SIGTERM and SIGHUP to it. None when
    the worker closed the connection before starting the command (the caller runs it)."""
    child: list[int] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        sent = signal.SIGTERM if signum == signal.SIGHUP else signum
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child[0], sent)
        else:
            pending.append(sent)

    previous = {
        s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        for message in _lines(sock):
            if "exit" in message:
                _report_cpu(message)
                return Served(int(message["exit"]))
            if "killed" in message:
                _report_cpu(message)
                signum = int(message["killed"])
                killed = f"the command was killed by {signal.Signals(signum).name}"
                return Served(128 + signum, DataopsError(killed))
            child.append(int(message["pid"]))  # the fork started: signals go to it now
            for signum in pending:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child[0], signum)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not child:
        return None
    return Served(
        1,
        DataopsError(
            "the dataops-dev worker stopped before the command finished",
            hint="run it again; `DATAOPS_WORKER=0` runs it in its own process",
        ),
    )


def _lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
    buffer = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except OSError:  # reset by a worker that stopped
            return
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


def _report_cpu(message: dict[str, Any]) -> None:
    """The fork is not our child, so its CPU is not in our rusage: benchmarks ask for it."""
    target = os.environ.get("DATAOPS_WORKER_REPORT")
    if target and "cpu" in message:
        with contextlib.suppress(OSError):
            Path(target).write_text(json.dumps({"cpu_s": message["cpu"], "pid": message["pid"]}))


def start_in_background(args: Sequence[str]) -> None:
    """After a routed command ran in its own process: start this code's worker for the next one
    (a detached process; it exits by itself when idle). Never raises."""
    if not args or args[0] not in RESIDENT_COMMANDS or not enabled():
        return
    try:
        location = Location.current()
    except OSError:  # a source file vanished while it was read (an install in progress)
        return
    if location is None or location.refused() or running_pid(location) is not None:
        return
    import subprocess

    env = {
        name: value
        for name, value in os.environ.items()
        if name in _SERVER_ENV or name.startswith(_SERVER_ENV_PREFIXES)
    }
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dataops_dev.cli.resident",
                str(location.directory),
                location.key,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd="/",
        )


# --------------------------------------------------------------------------------------------
# The worker


def serve(location: Location) -> None:
    """Listen on the location's socket until idle; one worker per location (a lock says so)."""
    import fcntl

    lock = os.open(location.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return  # another worker serves this code
    os.ftruncate(lock, 0)
    os.write(lock, str(os.getpid()).encode())  # for `stop`
    signal.signal(signal.SIGTERM, _exit_on_signal)
    server = _Server(location.socket_path)
    try:
        # Callers may connect while we warm up: they wait, and are served once we are ready.
        try:
            _warm_up()
        except Exception as exc:  # noqa: BLE001 - recorded: callers run commands themselves
            location.refused_path.write_text(f"warm-up failed: {type(exc).__name__}: {exc}\n")
            return
        if _native_threads() > 1:  # a fork copies only the thread that forks
            location.refused_path.write_text("warm-up left threads running: forks are unsafe\n")
            return
        server.run(idle_seconds())
    finally:
        server.close()
        os.close(lock)


def _exit_on_signal(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)  # while warming up: through `serve`'s clean-up (the socket goes)


def running_pid(location: Location) -> int | None:
    """The pid of the worker serving `location`, or None when none is."""
    import fcntl

    try:
        lock = os.open(location.lock_path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(lock, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(lock, fcntl.LOCK_UN)
        return None  # nobody holds the lock: no worker
    finally:
        os.close(lock)


def stop(location: Location) -> int | None:
    """Ask the worker serving `location` to exit (commands running in its forks finish);
    returns its pid, or None when none was running."""
    pid = running_pid(location)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return pid


# What a review or a build imports along the way (measured in a fork: ~0.4 s when left to it).
_WARM_MODULES = (
    "dataops_dev.cli",
    "dataops_dev.cli.console",
    "dataops_dev.cli.env",
    "dataops_dev.cli.report",
    "dataops_dev.cli.review",
    "dataops_dev.decisions",
    "dataops_dev.diffing.profile",
    "dataops_dev.diffing.rows",
    "dataops_dev.environments",
    "dataops_dev.file_sources",
    "dataops_dev.gitrepo",
    "dataops_dev.impact",
    "dataops_dev.report.html",
    "dataops_dev.report.markdown",
    "dataops_dev.review",
    "dataops_dev.review_reuse",
    "dbt.cli.main",
    "dbt.compilation",
    "dbt.contracts.state",
    "dbt.task.build",
    "sqlglot.dialects.duckdb",
    "sqlglot.dialects.postgres",
)
_WARM_OPTIONAL = ("dbt.adapters.duckdb", "dbt.adapters.postgres", "git", "rich.console")


def _warm_up() -> None:
    """Import what routed commands run and let dbt build and test a one-model project and read
    its state back (as a branch build reads the baseline's), so that the code dbt generates on
    first use is in the forks too. Then no dbt or DuckDB state stays open."""
    import importlib
    import tempfile

    for module in _WARM_MODULES:
        importlib.import_module(module)
    for module in _WARM_OPTIONAL:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    from dbt.contracts.state import PreviousState

    from dataops_dev.dbt.runner import run_dbt

    with tempfile.TemporaryDirectory(prefix="dataops-worker-") as scratch:
        project = Path(scratch)
        _write_warm_up_project(project)
        # Without dbt's static parser: its compiled extension starts threads that live on, and
        # a fork must copy a process with one thread. Each fork starts its own when it parses.
        run = run_dbt(
            "build",
            ["--no-static-parser"],
            project_dir=project,
            profiles_dir=project,
            target_path=project / "target",
        )
        if not run.success:
            raise RuntimeError(f"the warm-up build failed: {run.error}")
        PreviousState(
            state_path=project / "target", target_path=project / "target", project_root=project
        )


def _write_warm_up_project(project: Path) -> None:
    (project / "models").mkdir()
    (project / "dbt_project.yml").write_text("name: warm_up\nversion: '1.0'\nprofile: warm_up\n")
    (project / "profiles.yml").write_text(
        "warm_up:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: ':memory:'\n"
    )
    (project / "models" / "m.sql").write_text("select 1 as id")
    (project / "models" / "m.yml").write_text(
        "version: 2\nmodels:\n  - name: m\n    columns:\n      - name: id\n"
        "        data_tests: [unique, not_null]\n"
    )


def _native_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


class _Server:
    """The accept loop: fork per command, report each fork's exit status to its caller."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead worker's socket: we hold the lock, so no live one uses it
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)
        try:
            self.listener.bind(str(path))
        finally:
            os.umask(previous)
        self.listener.listen(16)
        self.inode = os.stat(path).st_ino
        self.accepting = True
        self.stopping = False
        self.children: dict[int, socket.socket] = {}
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)

    def _stop_accepting(self) -> None:
        """Stop listening; callers still queued see the connection close and run the command
        themselves. The socket file goes only if it is still ours."""
        if self.accepting:
            self.accepting = False
            if self._socket_is_ours():
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
            self.listener.close()

    close = _stop_accepting

    def run(self, idle: float) -> None:
        """Serve until `idle` seconds pass without a command, SIGTERM (`dataops-dev worker
        stop`), or the socket file is removed or replaced. Stopping accepts nothing more, but
        the forks still running report their exit status to their callers first."""
        import select

        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        last_active = time.monotonic()
        while self.accepting or self.children:
            if self.children:
                last_active = time.monotonic()
            remaining = last_active + idle - time.monotonic()
            if self.accepting and (self.stopping or remaining <= 0 or not self._socket_is_ours()):
                self._stop_accepting()
                continue
            waiting = [self.wake_read, self.listener] if self.accepting else [self.wake_read]
            timeout = None if self.children or not self.accepting else remaining
            ready, _, _ = select.select(waiting, [], [], timeout)
            if self.wake_read in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_read, 4096)
            self._reap()
            if self.accepting and self.listener in ready:
                self._accept()
                last_active = time.monotonic()

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True  # the wake-up descriptor ends the wait in `select`

    def _socket_is_ours(self) -> bool:
        """Someone removed or replaced the socket (a stop, a new install): stop serving."""
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        fds: list[int] = []
        try:
            if not _same_user(conn):
                conn.close()
                return
            conn.settimeout(10)
            request, fds = _receive_request(conn)
            conn.settimeout(None)
            if len(fds) != 3:
                raise ValueError("expected stdin, stdout and stderr")
        except (OSError, ValueError):
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        pid = os.fork()
        if pid == 0:
            _run_in_fork(self, conn, request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        _send_line(conn, {"pid": pid})

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, status, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                done, status, usage = pid, 0, None
            if done == 0:
                continue
            conn = self.children.pop(pid)
            cpu = round(usage.ru_utime + usage.ru_stime, 3) if usage is not None else None
            if os.WIFSIGNALED(status):
                _send_line(conn, {"killed": os.WTERMSIG(status), "pid": pid, "cpu": cpu})
            else:
                _send_line(
                    conn, {"exit": os.waitstatus_to_exitcode(status), "pid": pid, "cpu": cpu}
                )
            conn.close()

    def close_in_fork(self) -> None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.listener.close()
        os.close(self.wake_read)
        os.close(self.wake_write)
        for conn in self.children.values():
            conn.close()


def _same_user(conn: socket.socket) -> bool:
    try:
        credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return False
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return uid == os.getuid()


def _run_in_fork(
    server: _Server, conn: socket.socket, request: dict[str, Any], fds: list[int]
) -> None:
    """In the fork: become the caller's process (descriptors, directory, environment, umask),
    run the command, exit with its code."""
    from dataops_dev import interrupts

    code = 1
    try:
        server.close_in_fork()
        interrupts.install()  # from here a signal is an interruption, as in a process of its own
        _adopt_caller(request, fds)
        _stop_when_caller_leaves(conn)
        from dataops_dev.cli import main

        main(list(request["args"]))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:  # before the command's own handling began
        code = interrupts.exit_code(interrupts.requested())
        with contextlib.suppress(Exception):
            print("interrupted", file=sys.stderr)
    except BaseException:  # noqa: BLE001 - a fork must never return into the accept loop
        import traceback

        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _adopt_caller(request: dict[str, Any], fds: list[int]) -> None:
    import random

    for target, fd in enumerate(fds):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(int(request["umask"]))
    if hasattr(time, "tzset"):
        time.tzset()
    random.seed()  # a fork shares its parent's random state: draw a fresh one, as a new process
    sys.argv = [request["argv0"], *request["args"]]
    streams = request.get("streams") or {}
    sys.stdin = _text_stream(0, "r", streams.get("stdin"))
    sys.stdout = _text_stream(1, "w", streams.get("stdout"))
    sys.stderr = _text_stream(2, "w", streams.get("stderr"))


def _text_stream(fd: int, mode: str, encoding: list[str | None] | None) -> Any:
    encoding_name, errors = (encoding or [None, None])[:2]
    interactive = os.isatty(fd)
    return open(  # noqa: SIM115 - lives as long as the process
        fd,
        mode,
        buffering=1 if interactive and mode == "w" else -1,
        encoding=encoding_name or "utf-8",
        errors=errors or ("backslashreplace" if fd == 2 else "strict"),
        closefd=False,
    )


def _stop_when_caller_leaves(conn: socket.socket) -> None:
    """The caller waits on the connection until we exit; if it closes first (killed), stop
    this command as SIGTERM would."""
    import threading

    def watch() -> None:
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="dataops-worker-caller", daemon=True).start()


def _main(argv: Sequence[str]) -> None:
    directory, key = argv
    location = Location(Path(directory), key)
    if _private_directory() != location.directory:
        return  # started for another directory: serve nothing
    if key != code_key():
        # This process imports other code than its caller (a relative PYTHONPATH, a package
        # shadowed in the caller's directory): that caller is never served.
        with contextlib.suppress(OSError):
            location.refused_path.write_text("the worker would import other code than yours\n")
        return
    serve(location)


if __name__ == "__main__":
    _main(sys.argv[1:])
