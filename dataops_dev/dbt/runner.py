"""Running dbt in-process (dbtRunner) and reading what it did from its artifacts.

dbt's start-up costs seconds, so it runs inside our process; its console output is silenced
(stdout is ours) and its node events become progress on our Reporter. What dbt did is read back
from `run_results.json`, the stable interface, not from dbt's Python objects.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dataops_dev import interrupts
from dataops_dev.config import LoadedConfig
from dataops_dev.dbt.manifest import Manifest
from dataops_dev.errors import ParseFailed
from dataops_dev.reporting import NULL_REPORTER, Reporter

# dbt's process-global state (flags, adapters, event manager) allows one invocation at a time.
_DBT_LOCK = threading.Lock()


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    resource_type: str
    status: str
    """dbt's status: success, error, fail, warn, pass, skipped, ..."""
    execution_time: float
    message: str | None = None
    failures: int | None = None

    @property
    def name(self) -> str:
        return self.unique_id.split(".")[-1]

    @property
    def ok(self) -> bool:
        return self.status in ("success", "pass", "warn", "skipped", "no-op")


@dataclass(frozen=True)
class DbtRun:
    command: str
    success: bool
    elapsed: float
    target_path: Path
    nodes: tuple[NodeResult, ...] = ()
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    """Phases in seconds: parse (manifest load), run (models/seeds/snapshots), test."""
    manifest: Any = field(default=None, repr=False, compare=False)
    """`parse` only: dbt's parsed manifest in memory, for later invocations to reuse
    (`run_dbt(manifest=...)`) instead of loading the project again."""

    @property
    def failed(self) -> tuple[NodeResult, ...]:
        return tuple(n for n in self.nodes if not n.ok)

    @property
    def log_file(self) -> Path:
        """dbt's own log of the run, with its full messages."""
        return self.target_path.parent / "logs" / "dbt.log"


def _release_duckdb() -> None:
    """dbt-duckdb keeps its database open between invocations; close it so files unlock."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - adapter not installed
        return
    env = DuckDBConnectionManager._ENV
    if env is not None:
        # Closing is best effort: the handle is dropped either way.
        with contextlib.suppress(Exception):
            env.close()
    DuckDBConnectionManager.close_all_connections()


def _reset_adapters() -> None:
    try:
        from dbt.adapters.factory import reset_adapters

        reset_adapters()
    except Exception:  # noqa: BLE001 - nothing to reset when no adapter was loaded
        pass


def run_dbt(
    command: str,
    args: Sequence[str],
    *,
    project_dir: Path,
    profiles_dir: Path,
    target_path: Path,
    target: str | None = None,
    reporter: Reporter = NULL_REPORTER,
    total: int | None = None,
    task_key: str = "dbt",
    cwd: Path | None = None,
    label: str | None = None,
    redact_errors: bool = False,
    prepare_manifest: Callable[[Any], object] | None = None,
    manifest: Any = None,
    write_json: bool = True,
) -> DbtRun:
    """Invoke `dbt COMMAND ARGS` in-process and summarise it from its artifacts.

    KeyboardInterrupt propagates (after dbt released its connections). dbt's own log file goes
    to `<target_path>/../logs` (`DbtRun.log_file`). `redact_errors`: dbt's error texts (a
    database error can quote the values it choked on) reach neither the reporter nor `DbtRun`,
    which name the failed nodes and their status only; the log file keeps the texts. Use it
    whenever dbt runs on production data. `prepare_manifest`: the project is parsed first and
    the function may change dbt's parsed manifest in place before COMMAND runs on it.
    `manifest`: dbt's manifest from an earlier `parse` (`DbtRun.manifest`), used as it is (no
    parse, no `prepare_manifest`). `write_json=False`: dbt writes no manifest.json (writing it
    costs as much as a small build; `write_manifest` writes it once when someone reads it);
    run_results.json is still written.
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    from dbt.cli.main import dbtRunner

    from dataops_dev.dbt import schema_cache

    schema_cache.install()
    target_path.mkdir(parents=True, exist_ok=True)
    log_path = target_path.parent / "logs"
    timings: dict[str, float] = {}
    marks: dict[str, float] = {}
    started = time.perf_counter()

    def on_event(event: Any) -> None:
        name = event.info.name
        now = time.perf_counter()
        if name in ("ManifestLoaded", "ParsePerfInfoPath", "WritingManifest"):
            marks.setdefault("parsed", now)
        elif name == "NodeStart":
            marks.setdefault("first_node", now)
            node = event.data.node_info
            reporter.task_advanced(task_key, 0, f"{command}: {node.node_name}")
        elif name == "NodeFinished":
            node = event.data.node_info
            kind = "test" if node.resource_type in ("test", "unit_test") else "run"
            timings[kind] = timings.get(kind, 0.0) + float(
                getattr(event.data.run_result, "execution_time", 0.0) or 0.0
            )
            reporter.task_advanced(task_key, 1, f"{command}: {node.node_name} {node.node_status}")
        elif name in ("MainEncounteredError", "RunResultError") and hasattr(event.data, "msg"):
            if redact_errors:
                node = getattr(event.data, "node_info", None)
                where = f"{node.node_name}: " if node is not None and node.node_name else ""
                reporter.message("error", f"{where}dbt reported an error (message withheld)")
            else:
                reporter.message("error", str(event.data.msg))

    cli_args = [
        command,
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(profiles_dir),
        # `dbt deps` writes no artifacts and refuses the option.
        *(["--target-path", str(target_path)] if command != "deps" else []),
        "--log-path",
        str(log_path),
        "--log-level",
        "none",
        "--log-level-file",
        "info",
        "--no-use-colors",
        "--no-version-check",
    ]
    if target:
        cli_args += ["--target", target]
    if not write_json:
        cli_args.append("--no-write-json")
    reporter.task_started(task_key, label or f"dbt {command}", total)
    previous_cwd = Path.cwd()
    with _DBT_LOCK:
        # A command that fails before writing results would otherwise leave us reading the
        # previous invocation's (e.g. a build's results read back as a test's).
        (target_path / "run_results.json").unlink(missing_ok=True)
        try:
            if cwd is not None:
                os.chdir(cwd)
            if command == "parse":
                result = dbtRunner(callbacks=[on_event]).invoke(cli_args)
                parsed_manifest: Any = result.result
                if result.success and prepare_manifest is not None:
                    prepare_manifest(parsed_manifest)
                    if write_json:  # what was written is the manifest before the change
                        parsed_manifest.write(str(target_path / "manifest.json"))
            else:
                if manifest is None and prepare_manifest is not None:
                    parsed = dbtRunner().invoke(["parse", *cli_args[1 + len(args) :]])
                    if parsed.success:
                        manifest = parsed.result
                        prepare_manifest(manifest)
                result = dbtRunner(manifest=manifest, callbacks=[on_event]).invoke(cli_args)
            if not write_json:
                _write_run_results(result.result, target_path)
        finally:
            _release_duckdb()
            _reset_adapters()
            schema_cache.save()
            if cwd is not None:
                os.chdir(previous_cwd)
    elapsed = time.perf_counter() - started
    if isinstance(result.exception, KeyboardInterrupt) or interrupts.requested():
        # dbt turns Ctrl-C/SIGTERM into a failed (or even a finished) result: the flag our
        # signal handler set says it was an interruption.
        reporter.task_finished(task_key, "failed")
        interrupts.note_keyboard_interrupt()
        interrupts.check()
    if "parsed" in marks:
        timings["parse"] = marks["parsed"] - started
    elif "first_node" in marks:
        timings["parse"] = marks["first_node"] - started
    nodes = _read_run_results(target_path) if command in ("build", "run", "test", "seed") else ()
    _raise_if_disk_full(result, nodes, target_path.parent)
    if redact_errors:
        nodes = tuple(replace(n, message=None) for n in nodes)
    error = None
    failed = "; ".join([f"{n.name}: {n.status}" for n in nodes if not n.ok][:5])
    if result.exception is not None:
        text = "" if redact_errors else str(result.exception).strip()
        error = text or failed or type(result.exception).__name__
    elif not result.success:
        error = failed or "dbt reported failure"
    reporter.task_finished(task_key, "ok" if result.success else "failed")
    return DbtRun(
        command=command,
        success=bool(result.success),
        elapsed=elapsed,
        target_path=target_path,
        nodes=nodes,
        error=error,
        timings=timings,
        manifest=result.result if command == "parse" and result.success else None,
    )


def _write_run_results(result: Any, target_path: Path) -> None:
    """run_results.json of a `--no-write-json` invocation: the one artifact we always read."""
    if hasattr(result, "write") and hasattr(result, "results"):
        result.write(str(target_path / "run_results.json"))


def write_manifest(manifest: Any, target_path: Path) -> Path:
    """Write dbt's in-memory manifest (`DbtRun.manifest`) as `target_path/manifest.json`."""
    path = target_path / "manifest.json"
    with _DBT_LOCK:
        manifest.write(str(path))
    return path


def _raise_if_disk_full(result: Any, nodes: Sequence[NodeResult], directory: Path) -> None:
    """A full disk fails dbt's writes (artifacts, the database file): say so, instead of
    letting it read as the model's (or the project's) fault."""
    import errno

    from dataops_dev.errors import disk_error, is_disk_full

    if result.success:
        return
    texts = [str(result.exception or ""), *(str(n.message or "") for n in nodes)]
    if any(is_disk_full(text) for text in texts):
        raise disk_error(OSError(errno.ENOSPC, "No space left on device", str(directory)))


def _read_run_results(target_path: Path) -> tuple[NodeResult, ...]:
    from dataops_dev.statefiles import read_cache_json

    # Unreadable results (a write cut short by a full disk) are no results, not a crash.
    data = read_cache_json(target_path / "run_results.json")
    if data is None:
        return ()
    results = []
    for item in data.get("results") or ():
        uid = item.get("unique_id", "")
        results.append(
            NodeResult(
                unique_id=uid,
                resource_type=uid.split(".")[0],
                status=str(item.get("status")),
                execution_time=float(item.get("execution_time") or 0.0),
                message=item.get("message"),
                failures=item.get("failures"),
            )
        )
    return tuple(results)


def parse_project(
    loaded: LoadedConfig,
    *,
    target: str | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> Manifest:
    """`dbt parse` of the working tree into `<state_dir>/parse/target`; returns the manifest.

    Uses the production target's profile so sources resolve as they do in production.
    """
    from dataops_dev.dbt.packages import ensure_packages

    target_path = loaded.state_dir / "parse" / "target"
    ensure_packages(
        loaded.project_dir,
        work_dir=loaded.state_dir / "deps",
        profiles_dir=loaded.profiles_dir,
        reporter=reporter,
    )
    run = run_dbt(
        "parse",
        [],
        project_dir=loaded.project_dir,
        profiles_dir=loaded.profiles_dir,
        target_path=target_path,
        target=target or loaded.config.production.target,
        reporter=reporter,
        task_key="parse",
        cwd=loaded.project_dir,
    )
    if not run.success:
        raise ParseFailed(
            f"dbt could not parse the project: {run.error}",
            f"see {target_path.parent / 'logs' / 'dbt.log'}",
        )
    return Manifest.load(target_path / "manifest.json")
