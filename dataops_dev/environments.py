"""Per-branch environments: naming, metadata, locking, atomic dbt builds, listing and gc.

DuckDB: one database file per environment under `<state_dir>/envs/`, built into a staging file
and swapped in only when every model built. Warehouse: one schema set per environment inside the
sandbox database; the previous schemas are set aside during a build and restored if it fails.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from dataops_dev import interrupts
from dataops_dev.atomic import write_json_atomic, write_text_atomic
from dataops_dev.config import LoadedConfig
from dataops_dev.dbt.parse_state import (
    PARSE_DATABASE,
    PARTIAL_PARSE_FILE,
    rename_database,
    seed_partial_parse,
)
from dataops_dev.engines.base import Relation, quote
from dataops_dev.errors import (
    BuildError,
    ConfigError,
    DataopsError,
    EnvironmentNotFound,
    LockedError,
    ProjectError,
    StateFileError,
)
from dataops_dev.reporting import NULL_REPORTER, Reporter
from dataops_dev.sources import SOURCE_ALIAS, SourceData, sandbox_database, utc_now

NAME_SLUG_MAX = 40
BASELINE_PREFIX = "base_"
_SLUG_INVALID = re.compile(r"[^a-z0-9]+")
_VALID_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

Kind = Literal["branch", "baseline"]
BackendKind = Literal["duckdb", "warehouse", "spark"]


def environment_name(branch: str) -> str:
    """A SQL-safe, length-limited, collision-proof environment name for a branch.

    The readable slug keeps only [a-z0-9_]; a hash of the exact branch name makes two branches
    that slug alike (`feat/a`, `feat-a`) different environments.
    """
    if not branch:
        raise ConfigError("a branch name is needed to name an environment")
    slug = _SLUG_INVALID.sub("_", branch.lower()).strip("_")[:NAME_SLUG_MAX].rstrip("_")
    if not slug or not slug[0].isalpha():
        slug = f"b_{slug}".rstrip("_")
    if slug.startswith(BASELINE_PREFIX):
        slug = f"b_{slug}"
    digest = hashlib.sha256(branch.encode("utf-8")).hexdigest()[:8]
    return f"{slug}_{digest}"


def baseline_name(commit: str) -> str:
    """The environment holding production's code at `commit`, built on the sample."""
    if not re.fullmatch(r"[0-9a-f]{12,40}", commit):
        raise ConfigError(f"not a commit sha: {commit!r}")
    return f"{BASELINE_PREFIX}{commit[:12]}"


def validate_name(name: str) -> str:
    if not _VALID_NAME.match(name):
        raise ConfigError(
            f"{name!r} is not an environment name",
            "list environments with `dataops-dev env list`",
        )
    return name


@dataclass(frozen=True)
class NodeStatus:
    unique_id: str
    status: str
    execution_time: float


@dataclass(frozen=True)
class BuildRecord:
    commit: str
    dirty: bool
    started_at: str
    finished_at: str
    status: Literal["success", "failed", "interrupted"]
    timings: Mapping[str, float]
    nodes: tuple[NodeStatus, ...] = ()
    source: str = ""
    """Identity of the source data (sample) the build read."""
    selector: str | None = None
    deferred_to: str | None = None
    error: str | None = None
    target: str | None = None
    """The dbt target name the build ran with (`target.name` in the project's Jinja)."""
    extended: bool = False
    """The build extended the environment's previous one: it rebuilt what changed since and
    kept the rest (its nodes list both)."""

    @property
    def tests_failed(self) -> int:
        return sum(
            1
            for n in self.nodes
            if n.unique_id.startswith("test.") and n.status in ("fail", "error")
        )

    @property
    def models_failed(self) -> int:
        return sum(
            1
            for n in self.nodes
            if not n.unique_id.startswith(("test.", "unit_test.")) and n.status == "error"
        )


@dataclass(frozen=True)
class EnvironmentInfo:
    name: str
    branch: str
    kind: Kind
    backend: BackendKind
    created_at: str
    last_build: BuildRecord | None = None
    """The last build that succeeded: the state the environment holds."""
    last_attempt: BuildRecord | None = None
    """The last build that failed or was interrupted after `last_build`, if any."""
    schemas: tuple[str, ...] = ()
    database: str | None = None
    """DuckDB: the file; warehouse: the sandbox database."""

    @property
    def status(self) -> str:
        if self.last_attempt is not None:
            kept = "previous build kept" if self.last_build else "nothing built"
            return f"{self.last_attempt.status} ({kept})"
        return "ready" if self.last_build else "empty"

    @property
    def age_seconds(self) -> float:
        stamp = self.last_build.finished_at if self.last_build else self.created_at
        return (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status
        return data


def _record_from_dict(data: Mapping[str, Any] | None) -> BuildRecord | None:
    if not data:
        return None
    nodes = tuple(NodeStatus(**n) for n in data.get("nodes") or ())
    return BuildRecord(**{**data, "nodes": nodes, "timings": dict(data.get("timings") or {})})


def _info_from_dict(data: Mapping[str, Any]) -> EnvironmentInfo:
    return EnvironmentInfo(
        name=data["name"],
        branch=data["branch"],
        kind=data.get("kind", "branch"),
        backend=data.get("backend", "duckdb"),
        created_at=data["created_at"],
        last_build=_record_from_dict(data.get("last_build")),
        last_attempt=_record_from_dict(data.get("last_attempt")),
        schemas=tuple(data.get("schemas") or ()),
        database=data.get("database"),
    )


def _read_info(path: Path) -> EnvironmentInfo:
    """An environment's record; `StateFileError` naming it and `env drop` when corrupt."""
    from dataops_dev.statefiles import load_json

    fix = f"run `dataops-dev env drop {path.stem}`, then build it again"
    data = load_json(path, what="environment metadata", fix=fix)
    try:
        info = _info_from_dict(data)
        checks = {
            "name": info.name == path.stem,
            "kind": info.kind in ("branch", "baseline"),
            "backend": info.backend in ("duckdb", "warehouse", "spark"),
            "branch": isinstance(info.branch, str),
        }
        for record in (info.last_build, info.last_attempt):
            if record is not None:
                checks["status"] = record.status in ("success", "failed", "interrupted")
                datetime.fromisoformat(record.finished_at)
        info.age_seconds  # noqa: B018 - the timestamps must parse
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:200]
        raise StateFileError(f"environment metadata {path} is corrupt ({reason})", fix) from None
    bad = [key for key, ok in checks.items() if not ok]
    if bad:
        raise StateFileError(
            f"environment metadata {path} is corrupt (invalid {', '.join(bad)})", fix
        )
    return info


@dataclass
class BuildRequest:
    """What to build into an environment."""

    code_dir: Path
    """The dbt project's files to build (the working tree, or a ref exported by git)."""
    commit: str
    dirty: bool = False
    select: Sequence[str] = ()
    """dbt selectors; empty builds everything."""
    defer_to: EnvironmentInfo | None = None
    """Unselected parents resolve to this (baseline) environment instead of being built."""
    extra_args: Sequence[str] = field(default_factory=tuple)
    extend_previous: bool = False
    """Build on the environment's last build instead of from nothing (DuckDB, deferred
    `state:modified+` builds): only what changed since it is built again, the rest is kept.
    Falls back to a whole build when the last build cannot be extended safely."""


class Environments:
    """The environments of one dbt project, stored under `<state_dir>/envs`."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.backend: BackendKind = backend_kind(loaded)
        self.root = loaded.state_dir / "envs"
        self.locks = loaded.state_dir / "locks"

    # -- paths -------------------------------------------------------------------------------
    def meta_path(self, name: str) -> Path:
        return self.root / f"{validate_name(name)}.json"

    def database_path(self, name: str) -> Path:
        return self.root / f"{validate_name(name)}.duckdb"

    def work_dir(self, name: str) -> Path:
        return self.root / validate_name(name)

    def target_dir(self, name: str) -> Path:
        """dbt's target dir of the environment's last good build (manifest, run_results)."""
        return self.work_dir(name) / "target"

    def manifest_path(self, name: str) -> Path:
        return self.target_dir(name) / "manifest.json"

    # -- metadata ----------------------------------------------------------------------------
    def get(self, name: str) -> EnvironmentInfo:
        path = self.meta_path(name)
        if not path.exists():
            raise EnvironmentNotFound(
                f"environment {name!r} does not exist",
                "create it with `dataops-dev env create` or list them with `dataops-dev env list`",
            )
        return _read_info(path)

    def find(self, name: str) -> EnvironmentInfo | None:
        try:
            return self.get(name)
        except EnvironmentNotFound:
            return None

    def _save(self, info: EnvironmentInfo) -> None:
        data = asdict(info)
        write_json_atomic(self.meta_path(info.name), data)

    def all(self) -> list[EnvironmentInfo]:
        if not self.root.exists():
            return []
        # A corrupt record stops the listing with its name and the fix: skipping it would
        # hide an environment (and its disk or schemas) from `env list` and `env gc`.
        return [_read_info(path) for path in sorted(self.root.glob("*.json"))]

    @contextlib.contextmanager
    def sandbox_engine(self) -> Iterator[Any]:
        """A connection to the warehouse sandbox database, or the Spark session that sees the
        sandbox schemas (not for the DuckDB backend)."""
        backend = (
            _SparkBackend(self.loaded, self)
            if self.backend == "spark"
            else _WarehouseBackend(self.loaded, self)
        )
        with backend.engine() as engine:
            yield engine

    def size_bytes(self, info: EnvironmentInfo) -> int | None:
        if info.backend == "duckdb":
            path = self.database_path(info.name)
            return path.stat().st_size if path.exists() else 0
        if not info.schemas:
            return 0
        if info.backend == "spark":
            return None  # the catalog knows file sizes only table by table (slow on Spark)
        with self.sandbox_engine() as engine:
            rows = engine.fetchall(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'm')",
                [list(info.schemas)],
            )
        return int(rows[0][0])

    # -- lifecycle ---------------------------------------------------------------------------
    def create(
        self, branch: str, *, kind: Kind = "branch", name: str | None = None
    ) -> EnvironmentInfo:
        """Create (or return) the environment of `branch`. Idempotent."""
        name = validate_name(name or environment_name(branch))
        existing = self.find(name)
        if existing is not None:
            if existing.branch != branch:  # pragma: no cover - needs a sha256 prefix collision
                raise ConfigError(
                    f"environment {name} already belongs to branch {existing.branch!r}"
                )
            return existing
        if self.backend == "duckdb":
            database = str(self.database_path(name))
        elif self.backend == "spark":
            database = _SparkBackend(self.loaded).prefix()
        else:
            database = _WarehouseBackend(self.loaded).sandbox_database()
        info = EnvironmentInfo(
            name=name,
            branch=branch,
            kind=kind,
            backend=self.backend,
            created_at=utc_now(),
            database=database,
        )
        with self.lock(name):
            self.work_dir(name).mkdir(parents=True, exist_ok=True)
            self._save(info)
        return info

    def drop(self, name: str) -> EnvironmentInfo:
        try:
            info = self.get(name)
        except StateFileError:  # dropping is the fix for a corrupt record
            info = self._unreadable(name)
        with self.lock(name):
            if info.backend == "duckdb":
                for suffix in ("", ".wal"):
                    for path in (
                        self.database_path(name),
                        self.root / f"{name}.building.duckdb",
                    ):
                        Path(str(path) + suffix).unlink(missing_ok=True)
            elif info.backend == "spark":
                spark = _SparkBackend(self.loaded, self, info)
                spark.drop_schemas(sorted(set(info.schemas) | set(spark.all_schemas())))
            else:
                _WarehouseBackend(self.loaded).drop_schemas(sorted(set(info.schemas)))
            shutil.rmtree(self.work_dir(name), ignore_errors=True)
            from dataops_dev.review_reuse import diff_cache_dir

            shutil.rmtree(diff_cache_dir(self.loaded, name), ignore_errors=True)
            self.meta_path(name).unlink(missing_ok=True)
        return info

    def _unreadable(self, name: str) -> EnvironmentInfo:
        """What can be known of an environment whose record is corrupt: its name, so its
        files (DuckDB) or schemas (warehouse) can still be found and dropped."""
        info = EnvironmentInfo(
            name=name,
            branch="?",
            kind="baseline" if name.startswith(BASELINE_PREFIX) else "branch",
            backend=self.backend,
            created_at=utc_now(),
        )
        if self.backend == "warehouse":
            backend = _WarehouseBackend(self.loaded, self, info)
            with backend.engine() as engine:
                info = replace(info, schemas=tuple(backend._env_schemas(engine)))
        elif self.backend == "spark":
            info = replace(
                info, schemas=tuple(_SparkBackend(self.loaded, self, info).all_schemas())
            )
        return info

    def gc(
        self,
        *,
        existing_branches: set[str],
        protected_baseline: str | None,
        ttl_days: float | None = None,
        dry_run: bool = False,
    ) -> list[tuple[EnvironmentInfo, str]]:
        """Drop environments whose branch is gone or that are older than the TTL.

        Never touches production (it is not an environment) nor `protected_baseline` (the main
        branch's baseline) nor branches listed in `environments.keep`.
        Returns (environment, reason) for each dropped one.
        """
        ttl = self.loaded.config.environments.ttl_days if ttl_days is None else ttl_days
        keep = set(self.loaded.config.environments.keep) | {
            self.loaded.config.production.main_branch
        }
        dropped = []
        for info in self.all():
            if info.name == protected_baseline:
                continue
            if info.kind == "branch" and info.branch in keep:
                continue
            reason = None
            if info.kind == "branch" and info.branch not in existing_branches:
                reason = f"branch {info.branch!r} no longer exists"
            elif info.age_seconds > ttl * 86400:
                reason = f"not built for {info.age_seconds / 86400:.1f} days (ttl {ttl:g})"
            if reason is None:
                continue
            try:
                if not dry_run:
                    self.drop(info.name)
            except LockedError:
                continue
            dropped.append((info, reason))
        return dropped

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive, non-blocking lock on the environment; a second writer gets LockedError."""
        from filelock import FileLock, Timeout

        self.locks.mkdir(parents=True, exist_ok=True)
        lock_file = self.locks / f"{name}.lock"
        holder_file = self.locks / f"{name}.holder"
        lock = FileLock(str(lock_file), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            holder = holder_file.read_text("utf-8").strip() if holder_file.exists() else "?"
            raise LockedError(
                f"environment {name} is being written by another process ({holder})",
                "wait for it to finish (or stop it), then run the command again",
            ) from None
        try:
            write_text_atomic(holder_file, f"pid {os.getpid()} since {utc_now()}")
            yield
        finally:
            holder_file.unlink(missing_ok=True)
            lock.release()

    # -- building ----------------------------------------------------------------------------
    def build(
        self,
        info: EnvironmentInfo,
        request: BuildRequest,
        source: SourceData,
        *,
        reporter: Reporter = NULL_REPORTER,
    ) -> BuildRecord:
        """Build `request` into the environment atomically.

        Stages: prepare the staging area -> profile and packages -> parse (once, kept in
        memory) -> build (models, seeds, snapshots and tests in one dbt invocation; what a
        failed test held back is built after it) -> publish. The new state replaces the previous
        one only if every model built; failed tests are recorded (the environment is still
        usable). On failure or interrupt the previous good state stays, and `last_attempt` says
        why.
        """
        with self.lock(info.name):
            backend = self._backend(info)
            target = environment_target_name(self.loaded)
            progress = _BuildProgress(request=request, source=source, target=target)
            try:
                previous = self._open_staging(backend, info, request, source, target)
                staging_target = self._staging_target(info)
                dbt = self._dbt_for(backend, info, request, source, staging_target, reporter)
                parse_profile = backend.parse_profile(source, request)
                if parse_profile is not None:
                    seed_partial_parse(staging_target, self._parse_states(info, request))
                parsed, manifest = _parse_stage(dbt, info, progress, parse_profile)
                # Every later step runs on this one parse; manifest.json is written once, at
                # the end, with the compiled code of everything this build ran.
                dbt = functools.partial(dbt, manifest=parsed, write_json=False)
                stage = self._plan(
                    backend, info, dbt, staging_target, progress, previous, parsed, manifest
                )
                _build_stage(stage)
                _write_target(stage, parsed)
                # Never after a signal (dbt may have swallowed it); one during it waits.
                with interrupts.publishing():
                    schemas = backend.publish(staging_target)
                    self._publish_target(info, staging_target)
                    result = progress.record("success", None)
                    self._save(replace(info, last_build=result, last_attempt=None, schemas=schemas))
                return result
            except BaseException as exc:
                # Whatever stopped the build, the previous good state stays and the attempt is
                # recorded; Ctrl-C and SIGTERM still propagate as they are.
                backend.abort()
                self._record_failed_attempt(info, progress, exc)
                raise

    def _open_staging(
        self,
        backend: _Backend,
        info: EnvironmentInfo,
        request: BuildRequest,
        source: SourceData,
        target: str,
    ) -> BuildRecord | None:
        """The staging area: a copy of the last build when this one extends it (returned),
        else prepared from nothing."""
        previous = self._previous_to_extend(info, request, source, target)
        if previous is None or not backend.start_from_previous():
            backend.prepare(source, request)
            return None
        return previous

    def _dbt_for(
        self,
        backend: _Backend,
        info: EnvironmentInfo,
        request: BuildRequest,
        source: SourceData,
        staging_target: Path,
        reporter: Reporter,
    ) -> Any:
        """run_dbt bound to the environment: its profile, packages installed, target path."""
        profiles_dir = backend.write_profile(source, request)
        self._install_packages(info, request, profiles_dir, reporter)
        return functools.partial(
            _run_dbt,
            prepare_manifest=backend.prepare_manifest(source),
            project_dir=request.code_dir,
            profiles_dir=profiles_dir,
            target_path=staging_target,
            target=environment_target_name(self.loaded),
            reporter=reporter,
            cwd=request.code_dir,
        )

    def _plan(
        self,
        backend: _Backend,
        info: EnvironmentInfo,
        dbt: Any,
        staging_target: Path,
        progress: _BuildProgress,
        previous: BuildRecord | None,
        parsed: Any,
        manifest: Mapping[str, Any],
    ) -> _Stage:
        """What the build runs, from the parsed project: the baseline state to defer to, the
        seeds kept as the sample's views, and whether the last build can still be extended
        (not when macros, project files or a seed over a source view changed)."""
        request, source = progress.request, progress.source
        inputs = _project_inputs(parsed, request)
        if previous is not None and inputs != _read_inputs(self.target_dir(info.name)):
            previous = None
            backend.prepare(source, request)
        state = self._defer_state(request)
        if state is not None:
            state = _comparison_state(state, manifest, self.work_dir(info.name) / "state")
        exclude = _seeds_kept_as_source_views(manifest, source, state)
        replaced = _seeds_replacing_source_views(manifest, source, exclude)
        if previous is not None and replaced:
            previous = None
            backend.prepare(source, request)
        backend.drop_source_views(replaced)
        fqns = _fqn_selectors(parsed)
        if previous is not None:  # its results stand for what it built and is kept
            progress.nodes = tuple(n for n in previous.nodes if n.unique_id in fqns)
            progress.extended = True
        return _Stage(
            dbt,
            info,
            request,
            staging_target,
            state,
            exclude,
            progress,
            also_select=_readers_of(manifest, replaced),
            seeds_first=_seed_selectors_of(manifest, replaced),
            fqns=fqns,
            previous=self.target_dir(info.name) if previous is not None else None,
            inputs=inputs,
        )

    def _backend(self, info: EnvironmentInfo) -> _Backend:
        if info.backend == "duckdb":
            return _DuckDBBackend(self, info)
        if info.backend == "spark":
            return _SparkBackend(self.loaded, self, info)
        return _WarehouseBackend(self.loaded, self, info)

    def _parse_states(self, info: EnvironmentInfo, request: BuildRequest) -> list[Path]:
        """Target directories whose partial-parse state may start this build's parse: the
        baseline it defers to first (the branch differs from it by a few files), then the other
        environments' last builds, the most recent first."""
        first = [self.target_dir(request.defer_to.name)] if request.defer_to is not None else []
        own = self.target_dir(info.name)
        states = sorted(
            self.root.glob(f"*/target/{PARTIAL_PARSE_FILE}"),
            key=lambda path: path.stat().st_mtime_ns if path.exists() else 0,
            reverse=True,
        )
        return first + [path.parent for path in states if path.parent not in (own, *first)]

    def _staging_target(self, info: EnvironmentInfo) -> Path:
        """A fresh `target.building`, seeded with the last good target: dbt's partial-parse
        cache makes the next parse take a fraction of a second."""
        staging_target = self.work_dir(info.name) / "target.building"
        shutil.rmtree(staging_target, ignore_errors=True)
        if self.target_dir(info.name).exists():
            shutil.copytree(self.target_dir(info.name), staging_target)
        return staging_target

    def _install_packages(
        self, info: EnvironmentInfo, request: BuildRequest, profiles_dir: Path, reporter: Reporter
    ) -> None:
        """dbt packages of the code to build: the working tree's install is reused when the
        declaration is the same, else `dbt deps` runs in the code's tree."""
        from dataops_dev.dbt.packages import ensure_packages

        ensure_packages(
            request.code_dir,
            work_dir=self.work_dir(info.name) / "deps",
            profiles_dir=profiles_dir,
            reuse_from=self.loaded.project_dir,
            reporter=reporter,
        )

    def _previous_to_extend(
        self, info: EnvironmentInfo, request: BuildRequest, source: SourceData, target: str
    ) -> BuildRecord | None:
        """The last build, when this one may build on it: a good deferred `state:modified+`
        build on the same sample, target and baseline, the baseline not rebuilt since, and the
        same selection now. Anything else builds from nothing."""
        last = info.last_build
        base = request.defer_to
        if (
            not request.extend_previous
            or base is None
            or base.last_build is None
            or last is None
            or info.last_attempt is not None
            or last.status != "success"
            or last.source != source.identity
            or last.target != target
            or last.deferred_to != base.name
            or last.selector != " ".join(request.select)
            or list(request.select) != ["state:modified+"]
            or base.last_build.finished_at > last.started_at
            or not self.manifest_path(info.name).exists()
        ):
            return None
        return last

    def _defer_state(self, request: BuildRequest) -> Path | None:
        """The baseline's target directory unselected parents are read from (`--state`)."""
        if request.defer_to is None:
            return None
        state = self.target_dir(request.defer_to.name)
        if not (state / "manifest.json").exists():
            raise BuildError(
                f"baseline {request.defer_to.name} has no manifest to defer to",
                "build the baseline first (`dataops-dev review` does it)",
            )
        return state

    def _publish_target(self, info: EnvironmentInfo, staging_target: Path) -> None:
        final_target = self.target_dir(info.name)
        old_target = self.work_dir(info.name) / "target.old"
        shutil.rmtree(old_target, ignore_errors=True)
        if final_target.exists():
            os.replace(final_target, old_target)
        os.replace(staging_target, final_target)
        shutil.rmtree(old_target, ignore_errors=True)

    def _record_failed_attempt(
        self, info: EnvironmentInfo, progress: _BuildProgress, exc: BaseException
    ) -> None:
        # dbt may have swallowed the signal: the flag still says the build was interrupted.
        interrupted = isinstance(exc, KeyboardInterrupt) or bool(interrupts.requested())
        reason = exc.message if isinstance(exc, DataopsError) else str(exc) or type(exc).__name__
        attempt = progress.record("interrupted" if interrupted else "failed", reason)
        self._save(replace(self.get(info.name), last_attempt=attempt))
        kept = self.get(info.name).last_build
        if isinstance(exc, DataopsError) and kept is not None:
            exc.message += (
                f"; the previous build (commit {kept.commit[:8]}, {kept.finished_at}) "
                "is still in place"
            )

    def recover(self) -> list[str]:
        """Undo what killed builds left behind (staging files, set-aside schemas)."""
        recovered = []
        for info in self.all():
            try:
                with self.lock(info.name):
                    if self._backend(info).abort():
                        recovered.append(info.name)
            except LockedError:
                continue
        return recovered


def backend_kind(loaded: LoadedConfig) -> BackendKind:
    """Where environments live: `backend.type`, with a warehouse whose production target is
    dbt-spark being Spark (schemas under the sandbox prefix, reached over Spark Connect)."""
    kind = str(loaded.config.backend.type)
    if kind == "spark":
        return "spark"
    if kind == "warehouse":
        with contextlib.suppress(DataopsError):
            if _production_output(loaded).get("type") == "spark":
                return "spark"
        return "warehouse"
    return "duckdb"


# ----------------------------------------------------------------------------------------------
# Build stages (each one dbt invocation; `dbt` is run_dbt bound to the environment)


def environment_target_name(loaded: LoadedConfig) -> str:
    """The dbt target name environments build with (`environments.target_name`).

    Default: production's target name on DuckDB (each environment is its own database, so
    target-dependent Jinja can take production's path safely); `dataops` on a warehouse.
    """
    configured = loaded.config.environments.target_name
    if configured:
        return configured
    if loaded.config.backend.type == "duckdb":
        return loaded.config.production.target
    return "dataops"


@dataclass
class _BuildProgress:
    """What a build has done so far, to be recorded whether it ends well or not."""

    request: BuildRequest
    source: SourceData
    target: str | None = None
    started: str = field(default_factory=utc_now)
    timings: dict[str, float] = field(default_factory=dict)
    nodes: tuple[NodeStatus, ...] = ()
    t0: float = field(default_factory=time.perf_counter)
    extended: bool = False

    def add_nodes(self, run: Any) -> None:
        """Add a run's node results; a node run again keeps its last result, in its place."""
        merged = {n.unique_id: n for n in self.nodes}
        for n in run.nodes:
            merged[n.unique_id] = NodeStatus(n.unique_id, n.status, n.execution_time)
        self.nodes = tuple(merged.values())

    def record(
        self, status: Literal["success", "failed", "interrupted"], error: str | None
    ) -> BuildRecord:
        request = self.request
        return BuildRecord(
            commit=request.commit,
            dirty=request.dirty,
            started_at=self.started,
            finished_at=utc_now(),
            status=status,
            timings={**self.timings, "total": round(time.perf_counter() - self.t0, 3)},
            nodes=self.nodes,
            source=self.source.identity,
            selector=" ".join(request.select) or None,
            deferred_to=request.defer_to.name if request.defer_to else None,
            error=error,
            target=self.target,
            extended=self.extended,
        )


def _run_dbt(command: str, args: Sequence[str], **kwargs: Any) -> Any:
    from dataops_dev.dbt.runner import run_dbt

    return run_dbt(command, args, **kwargs)


@dataclass(frozen=True)
class _Stage:
    """What every dbt step of one build shares."""

    dbt: Any
    """run_dbt bound to the environment's project, profile, target path and target name."""
    info: EnvironmentInfo
    request: BuildRequest
    staging_target: Path
    state: Path | None
    """The baseline's target directory when unselected parents are deferred to it."""
    exclude: tuple[str, ...]
    progress: _BuildProgress
    also_select: tuple[str, ...] = ()
    """Added to a selected build: what reads a seed through `source()` when the seed is built."""
    seeds_first: tuple[str, ...] = ()
    """Seeds loaded over a source view: seeded before the build, whose models read them through
    `source()` (a dependency dbt's graph does not have)."""
    fqns: Mapping[str, str] = field(default_factory=dict)
    """unique_id -> a selector of that node alone (to build again what a failed test skipped)."""
    previous: Path | None = None
    """The target of the last build this one extends: `state:modified` is measured against it,
    and what it built (kept in the environment) is read from here, not from the baseline."""
    inputs: Mapping[str, str] = field(default_factory=dict)
    """Hashes of what every model depends on beyond its node (`_project_inputs`)."""

    def select_args(self, *, exclude: bool = True) -> list[str]:
        """The request's selection, less the excluded nodes (`exclude=False`: tests still run
        on excluded seeds, which read the sample's view in their place)."""
        selected = [*self.request.select, *self.also_select] if self.request.select else []
        args = ["--select", *selected] if selected else []
        excluded = [*self.exclude, *self.seeds_first] if exclude else []
        return args + (["--exclude", *excluded] if excluded else [])

    def defer_args(self, *, favor_state: bool) -> list[str]:
        """`--defer --state <baseline target>`; `--favor-state` only where every unselected
        parent must come from the baseline (the first build of an environment). Extending the
        last build: `--state` is that build's target (what changed since), deferral goes to the
        baseline only for what this environment does not hold."""
        if self.state is None:
            return []
        if self.previous is not None:
            return ["--defer", "--defer-state", str(self.state), "--state", str(self.previous)]
        return ["--defer", "--state", str(self.state), *(["--favor-state"] if favor_state else [])]


def _parse_stage(
    dbt: Any, info: EnvironmentInfo, progress: _BuildProgress, profiles_dir: Path | None = None
) -> tuple[Any, Mapping[str, Any]]:
    """`dbt parse` of the code: a project that does not parse is said so (ParseFailed), before
    anything is built. Returns dbt's parsed manifest (kept in memory for the build to reuse)
    and, as plain JSON, what the stages before the build read of it (seeds and sources).
    `profiles_dir`: parse with this profile instead of the environment's (`parse_profile`)."""
    from dataops_dev.errors import ParseFailed

    profile = {"profiles_dir": profiles_dir} if profiles_dir is not None else {}
    run = dbt(
        "parse",
        [],
        task_key="parse",
        label=f"dbt parse for {info.name}",
        write_json=False,
        **profile,
    )
    progress.timings["parse"] = round(run.elapsed, 3)
    if not run.success or run.manifest is None:
        raise ParseFailed(
            f"dbt could not parse the project: {run.error or 'no manifest made'}",
            f"fix what dbt names, then run the command again (log: {run.log_file})",
        )
    return run.manifest, _manifest_summary(run.manifest)


def _manifest_summary(parsed: Any) -> dict[str, Any]:
    """The seeds and sources of dbt's in-memory manifest as manifest.json has them (the rest
    is not needed before the build, and serialising all of it costs seconds)."""
    return {
        "metadata": {"project_name": parsed.metadata.project_name},
        "nodes": {
            uid: node.to_dict()
            for uid, node in parsed.nodes.items()
            if str(getattr(node.resource_type, "value", node.resource_type)) == "seed"
        },
        "sources": {uid: node.to_dict() for uid, node in parsed.sources.items()},
    }


def _fqn_selectors(parsed: Any) -> dict[str, str]:
    """unique_id -> a dbt selector naming that node (dbt has no unique_id selector), for every
    node and unit test of the project."""
    nodes = {**parsed.nodes, **getattr(parsed, "unit_tests", {})}
    return {uid: "fqn:" + ".".join(node.fqn) for uid, node in nodes.items()}


def _write_manifest(parsed: Any, target: Path) -> None:
    from dataops_dev.dbt.runner import write_manifest

    write_manifest(parsed, target)


_INPUTS_FILE = "dataops_build_inputs.json"
_PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml", "package-lock.yml")


def _project_inputs(parsed: Any, request: BuildRequest) -> dict[str, str]:
    """What every model depends on beyond its own node, which `state:modified` may not see:
    the project files (vars, configs), the macros and the extra dbt arguments, hashed."""
    macros = hashlib.sha256()
    for uid in sorted(parsed.macros):
        macros.update(f"{uid}\0{parsed.macros[uid].macro_sql}\0".encode())
    inputs = {"macros": macros.hexdigest(), "args": " ".join(request.extra_args)}
    for name in _PROJECT_FILES:
        path = request.code_dir / name
        inputs[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return inputs


def _read_inputs(target: Path) -> dict[str, str] | None:
    from dataops_dev.statefiles import read_cache_json

    data = read_cache_json(target / _INPUTS_FILE)
    return data if isinstance(data, dict) else None


def _write_inputs(target: Path, inputs: Mapping[str, str]) -> None:
    write_json_atomic(target / _INPUTS_FILE, dict(inputs))


def _write_target(stage: _Stage, parsed: Any) -> None:
    """The build's target directory as readers expect it: manifest.json (once, with compiled
    code, also of what an extended build kept) and the inputs the next build compares."""
    _write_manifest(parsed, stage.staging_target)
    if stage.previous is not None:
        _carry_compiled_code(stage.previous, stage.staging_target)
    _write_inputs(stage.staging_target, stage.inputs)


def _carry_compiled_code(previous: Path, target: Path) -> None:
    """The compiled code of the nodes an extending build kept (it compiled only what it
    built): review, lineage and the TUI read it from the manifest."""
    old = previous / "manifest.json"
    if not old.exists():
        return
    kept = {
        uid: node["compiled_code"]
        for uid, node in (json.loads(old.read_text("utf-8")).get("nodes") or {}).items()
        if node.get("compiled_code")
    }
    path = target / "manifest.json"
    data = json.loads(path.read_text("utf-8"))
    for uid, node in (data.get("nodes") or {}).items():
        if uid in kept and not node.get("compiled_code"):
            node["compiled_code"] = kept[uid]
            node["compiled"] = True
    write_text_atomic(path, json.dumps(data))


def _comparison_state(state: Path, manifest: Mapping[str, Any], directory: Path) -> Path:
    """The baseline's manifest as `--state` for this build: sources re-pointed at this
    environment's database, which is all that differs about them. Otherwise dbt sees every
    source as modified (`state:modified.relation`) and the branch rebuilds every model that
    reads one; defer is unaffected (sources are never deferred)."""
    data = json.loads((state / "manifest.json").read_text("utf-8"))
    ours = manifest.get("sources") or {}
    for uid, node in (data.get("sources") or {}).items():
        mine = ours.get(uid)
        if mine is None or (node.get("schema"), node.get("identifier")) != (
            mine.get("schema"),
            mine.get("identifier"),
        ):
            continue
        node["database"] = mine.get("database")
        node["relation_name"] = mine.get("relation_name")
    write_text_atomic(directory / "manifest.json", json.dumps(data))
    return directory


def _seed_relations(manifest: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """seed unique_id -> (schema, identifier), lower-cased."""
    out = {}
    for uid, node in (manifest.get("nodes") or {}).items():
        if node.get("resource_type") != "seed":
            continue
        identifier = node.get("alias") or node.get("name") or ""
        out[uid] = (str(node.get("schema") or "").lower(), str(identifier).lower())
    return out


def _colliding_seeds(manifest: Mapping[str, Any], source: SourceData) -> dict[str, str]:
    """Seeds whose relation is also a source table of the sample (a project that loads its raw
    data with `dbt seed` and reads it through `source()`): unique_id -> seed name."""
    sources = {(r.schema.lower(), r.name.lower()) for r in source.relations}
    nodes = manifest.get("nodes") or {}
    return {
        uid: str(nodes[uid].get("name"))
        for uid, relation in _seed_relations(manifest).items()
        if relation in sources
    }


def _seed_checksum(manifest: Mapping[str, Any], uid: str) -> str | None:
    node = (manifest.get("nodes") or {}).get(uid) or {}
    checksum = node.get("checksum") or {}
    return checksum.get("checksum") if isinstance(checksum, Mapping) else None


def _seeds_kept_as_source_views(
    manifest: Mapping[str, Any], source: SourceData, state: Path | None
) -> tuple[str, ...]:
    """Selectors excluding the seeds the sample already holds (as source views): the sample's
    masked rows stand for them, as they do for every source. A seed the branch changed is
    built (its view dropped first), so the change shows."""
    colliding = _colliding_seeds(manifest, source)
    if not colliding:
        return ()
    base: Mapping[str, Any] = {}
    if state is not None and (state / "manifest.json").exists():
        base = json.loads((state / "manifest.json").read_text("utf-8"))
    kept = []
    for uid in sorted(colliding):
        changed = bool(base) and _seed_checksum(base, uid) != _seed_checksum(manifest, uid)
        if not changed:
            kept.append(_seed_selector(manifest, uid))
    return tuple(kept)


def _seed_selector(manifest: Mapping[str, Any], uid: str) -> str:
    """A dbt selector for exactly this seed: its file for the project's own seeds (a seed in a
    subdirectory has a longer fqn than `package.name`), `package.name` for a package's."""
    node = (manifest.get("nodes") or {})[uid]
    project = (manifest.get("metadata") or {}).get("project_name")
    path = node.get("original_file_path")
    if node.get("package_name") == project and path:
        return f"path:{path}"
    return f"{node.get('package_name')}.{node.get('name')}"


def _seeds_replacing_source_views(
    manifest: Mapping[str, Any], source: SourceData, kept: Sequence[str]
) -> tuple[Relation, ...]:
    """Source views that a seed of this build replaces (colliding seeds not kept as views)."""
    nodes = manifest.get("nodes") or {}
    out = []
    for uid, name in sorted(_colliding_seeds(manifest, source).items()):
        if _seed_selector(manifest, uid) in kept:
            continue
        node = nodes[uid]
        out.append(Relation(schema=str(node.get("schema")), name=str(node.get("alias") or name)))
    return tuple(out)


def _readers_of(manifest: Mapping[str, Any], relations: Sequence[Relation]) -> tuple[str, ...]:
    """Selectors of everything downstream of the sources that read `relations` (seeds this
    build loads over a source view): dbt's graph does not link a seed to a `source()` of it."""
    wanted = {(r.schema.lower(), r.name.lower()) for r in relations}
    selectors = []
    for node in (manifest.get("sources") or {}).values():
        relation = (
            str(node.get("schema") or "").lower(),
            str(node.get("identifier") or "").lower(),
        )
        if relation in wanted:
            selectors.append(f"source:{node.get('source_name')}.{node.get('name')}+")
    return tuple(sorted(selectors))


def _seed_selectors_of(
    manifest: Mapping[str, Any], relations: Sequence[Relation]
) -> tuple[str, ...]:
    wanted = {(r.schema.lower(), r.name.lower()) for r in relations}
    return tuple(
        _seed_selector(manifest, uid)
        for uid, relation in sorted(_seed_relations(manifest).items())
        if relation in wanted
    )


def _seeds_first_stage(stage: _Stage) -> None:
    """`dbt seed` of the seeds loaded over a source view, before anything reads them."""
    if not stage.seeds_first:
        return
    run = stage.dbt(
        "seed",
        ["--select", *stage.seeds_first],
        task_key="seed",
        label=f"dbt seed into {stage.info.name}",
    )
    stage.progress.add_nodes(run)
    if not run.success:
        raise BuildError(
            f"dbt could not seed {stage.info.name}: {run.error}",
            f"fix the seed, then run the command again (log: {run.log_file})",
        )


def _build_stage(stage: _Stage) -> None:
    """Models, seeds, snapshots and their tests in one `dbt build`. A failed test must not keep
    what depends on its model from being built (the review wants every model's data): what dbt
    skipped for it is built and tested again, with the models this build made read from here."""
    _seeds_first_stage(stage)
    request, info = stage.request, stage.info
    # A selected build without a baseline to defer to only has the selected models:
    # a test that also reads an unselected model (relationships) cannot run.
    indirect = (
        ["--indirect-selection", "cautious"] if request.select and request.defer_to is None else []
    )
    run = stage.dbt(
        "build",
        [
            *stage.select_args(),
            *stage.defer_args(favor_state=True),
            *indirect,
            *request.extra_args,
        ],
        task_key="build",
        label=f"dbt build into {info.name}",
    )
    results = _BuildResults(stage)
    results.add(run)
    for _ in range(_MAX_RETRIES):
        skipped = results.skipped_by_tests(run)
        if not skipped:
            break
        run = stage.dbt(
            "build",
            [
                "--select",
                *skipped,
                "--indirect-selection",
                "empty",
                *stage.defer_args(favor_state=False),
                *request.extra_args,
            ],
            task_key="build",
            label=f"dbt build into {info.name} (what a failed test held back)",
        )
        results.add(run)
    _tests_of_kept_seeds(stage, results)
    results.finish()


_MAX_RETRIES = 50
"""Rounds of building what failed tests held back (each round is one DAG level at least)."""


class _BuildResults:
    """The node results of a build's dbt invocations, merged (a re-run node's last result
    counts) into the progress record and one run_results.json."""

    def __init__(self, stage: _Stage) -> None:
        from dataops_dev.statefiles import read_cache_json

        self.stage = stage
        self.results: dict[str, Any] = {}
        self.document: dict[str, Any] | None = None
        if stage.previous is not None:  # what the extended build ran is still there
            kept = read_cache_json(stage.previous / "run_results.json") or {}
            for item in kept.get("results") or ():
                if str(item.get("unique_id")) in stage.fqns:  # not what the branch removed
                    self.results[str(item.get("unique_id"))] = item

    def add(self, run: Any) -> None:
        from dataops_dev.statefiles import read_cache_json

        stage = self.stage
        timings = stage.progress.timings
        parse = run.timings.get("parse", 0.0)
        timings["parse"] = round(timings.get("parse", 0.0) + parse, 3)
        timings["run"] = round(timings.get("run", 0.0) + run.elapsed - parse, 3)
        if "test" in run.timings:
            timings["test"] = round(timings.get("test", 0.0) + run.timings["test"], 3)
        stage.progress.add_nodes(run)
        data = read_cache_json(run.target_path / "run_results.json")
        if data is not None:
            self.document = data
            for item in data.get("results") or ():
                self.results[str(item.get("unique_id"))] = item
        failed = [n for n in run.nodes if _is_model_error(n)]
        if failed or (run.error and not run.nodes):
            log = stage.staging_target.parent / "logs" / "dbt.log"
            hint = f"fix the model, then run `dataops-dev build` again (log: {log})"
            if stage.request.select and stage.request.defer_to is None:
                hint = (
                    "a selected build has no baseline to read unselected parents from: "
                    "select them too (`+model`), or run `dataops-dev review` first "
                    f"(log: {log})"
                )
            raise BuildError(f"dbt could not build {stage.info.name}: {run.error}", hint)

    def skipped_by_tests(self, run: Any) -> list[str]:
        """Selectors of the nodes the last invocation skipped (only a failed test can have
        skipped them: a failed model stops the build)."""
        if not any(n.status in ("fail", "error") for n in run.nodes):
            return []
        skipped = sorted(n.unique_id for n in run.nodes if n.status == "skipped")
        return sorted({self.stage.fqns[uid] for uid in skipped if uid in self.stage.fqns})

    def finish(self) -> None:
        """One run_results.json with every node's last result (readers see the whole build)."""
        if self.document is None:
            return
        document = {**self.document, "results": list(self.results.values())}
        write_text_atomic(self.stage.staging_target / "run_results.json", json.dumps(document))


def _is_model_error(node: Any) -> bool:
    return node.status == "error" and not node.unique_id.startswith(("test.", "unit_test."))


def _tests_of_kept_seeds(stage: _Stage, results: _BuildResults) -> None:
    """Tests of the seeds kept as the sample's source views: excluding a seed from the build
    excludes its tests, which still run (on the view standing in for the seed)."""
    if not stage.exclude:
        return
    selected = [*stage.request.select, *stage.also_select] if stage.request.select else []
    seeds = [*stage.exclude]
    selectors = [f"{s},{r}" for s in seeds for r in selected] if selected else seeds
    run = stage.dbt(
        "test",
        ["--select", *selectors, *stage.defer_args(favor_state=False)],
        task_key="test",
        label=f"dbt test of kept seeds in {stage.info.name}",
    )
    results.add(run)


def _sources_from_sample(source: SourceData) -> Callable[[Any], object] | None:
    """File-backed sources read their files in production: in an environment, `source()` must
    render the environment's view of the sample instead (without editing the project)."""
    if not source.file_sources:
        return None
    from dataops_dev.file_sources import point_sources_at_sample

    return point_sources_at_sample


class _Backend:
    def prepare(self, source: SourceData, request: BuildRequest) -> None:
        raise NotImplementedError

    def write_profile(self, source: SourceData, request: BuildRequest) -> Path:
        raise NotImplementedError

    def publish(self, staging_target: Path) -> tuple[str, ...]:
        raise NotImplementedError

    def prepare_manifest(self, source: SourceData) -> Callable[[Any], object] | None:
        """What changes dbt's parsed manifest before each dbt step of the build."""
        return _sources_from_sample(source)

    def parse_profile(self, source: SourceData, request: BuildRequest) -> Path | None:
        """A profiles directory to parse with that is the same for every environment of this
        backend (so one environment's partial-parse state serves another's first parse; see
        `dbt.parse_state`), or None: parse with the environment's own profile."""
        return None

    def drop_source_views(self, relations: Sequence[Relation]) -> None:
        """Remove source views a seed of this build replaces (only DuckDB environments hold
        source views of their own)."""

    def start_from_previous(self) -> bool:
        """Start the staging area as a copy of the environment's current state (to extend the
        last build); False when this backend cannot, and the build starts from nothing."""
        return False

    def abort(self) -> bool:
        """Discard a partial build; True when something had to be undone."""
        raise NotImplementedError


def _production_output(loaded: LoadedConfig) -> dict[str, Any]:
    from dataops_dev.dbt.project import load_profile_target

    return load_profile_target(loaded, loaded.config.backend.target or None)


SECRET_KEYS = frozenset(
    {
        "password",
        "pass",
        "passphrase",
        "private_key",
        "private_key_passphrase",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "keyfile_json",
        "secret",
        "api_key",
    }
)
"""Profile settings that hold credentials: never written to our files as values."""
SECRET_ENV_PREFIX = "DBT_ENV_SECRET_DATAOPS_"
"""dbt scrubs `DBT_ENV_SECRET_*` values from its logs."""


def write_profile(
    loaded: LoadedConfig, directory: Path, output: Mapping[str, Any], target_name: str = "dataops"
) -> Path:
    """A profiles.yml in `directory` whose target `target_name` is `output`, under the
    project's profile name (so the user's dbt_project.yml works unchanged).

    No rendered credential is written: a value the user's profiles.yml takes from `env_var()`
    keeps that reference, and a credential written there as plain text is handed to dbt through
    a `DBT_ENV_SECRET_DATAOPS_*` variable of this process (dbt runs in it, or in a child)."""
    from dataops_dev.dbt.project import read_project

    profile_name = loaded.config.profile or read_project(loaded.project_dir).profile
    # Keys starting with "_" are our annotations (e.g. `_target_name`), not dbt settings.
    clean = {k: v for k, v in output.items() if not k.startswith("_")}
    templates = _profile_templates(loaded, profile_name, output.get("_target_name"))
    clean = {k: _unrendered(k, v, templates) for k, v in clean.items()}
    document = {profile_name: {"target": target_name, "outputs": {target_name: clean}}}
    write_text_atomic(directory / "profiles.yml", yaml.safe_dump(document, sort_keys=True))
    return directory


def _profile_templates(
    loaded: LoadedConfig, profile_name: str, target: Any
) -> dict[str, tuple[str, Any]]:
    """key -> (the user's unrendered `{{ ... }}` value, what it renders to) of `target`."""
    from dataops_dev.dbt.project import load_profile

    if not isinstance(target, str):
        return {}
    try:
        raw = yaml.safe_load((loaded.profiles_dir / "profiles.yml").read_text("utf-8")) or {}
        output = raw[profile_name]["outputs"][target]
        rendered = load_profile(loaded)[1]["outputs"][target]
    except (OSError, yaml.YAMLError, KeyError, TypeError, DataopsError):
        return {}
    if not isinstance(output, dict) or not isinstance(rendered, dict):
        return {}
    return {
        str(k): (v, rendered.get(k))
        for k, v in output.items()
        if isinstance(v, str) and ("{{" in v or "{%" in v)
    }


def _unrendered(key: str, value: Any, templates: Mapping[str, tuple[str, Any]]) -> Any:
    template = templates.get(key)
    if template is not None and template[1] == value and isinstance(value, str):
        return template[0]
    if key.lower() in SECRET_KEYS and isinstance(value, str) and value:
        variable = SECRET_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", key.upper())
        os.environ[variable] = value
        return "{{ env_var('" + variable + "') }}"
    return value


def _manifest_schemas(target: Path) -> tuple[str, ...]:
    path = target / "manifest.json"
    if not path.exists():
        return ()
    data = json.loads(path.read_text("utf-8"))
    schemas = {
        node.get("schema")
        for node in (data.get("nodes") or {}).values()
        if node.get("resource_type") in ("model", "seed", "snapshot") and node.get("schema")
    }
    return tuple(sorted(s for s in schemas if s))


class _DuckDBBackend(_Backend):
    """Build into `<name>.building.duckdb` (attached under the env's name), then swap it in."""

    def __init__(self, envs: Environments, info: EnvironmentInfo) -> None:
        self.envs = envs
        self.info = info
        self.final = envs.database_path(info.name)
        self.staging = envs.root / f"{info.name}.building.duckdb"

    def prepare(self, source: SourceData, request: BuildRequest) -> None:
        from dataops_dev.engines.duckdb import DuckDBEngine

        if source.duckdb_file is None:
            raise ProjectError("DuckDB environments need source data in a DuckDB file")
        self.abort()
        self.staging.parent.mkdir(parents=True, exist_ok=True)
        with DuckDBEngine(self.staging) as engine:
            engine.attach(source.duckdb_file, SOURCE_ALIAS, read_only=True)
            for schema in sorted({r.schema for r in source.relations}):
                engine.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema, 'duckdb')}")
            for relation in source.relations:
                target = Relation(schema=relation.schema, name=relation.name).sql("duckdb")
                origin = Relation(relation.schema, relation.name, SOURCE_ALIAS).sql("duckdb")
                engine.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM {origin}")
            engine.execute("CHECKPOINT")

    def write_profile(self, source: SourceData, request: BuildRequest) -> Path:
        attach: list[dict[str, Any]] = [
            {"path": str(self.staging), "alias": self.info.name},
            {"path": str(source.duckdb_file), "alias": SOURCE_ALIAS, "read_only": True},
        ]
        if request.defer_to is not None:
            attach.append(
                {
                    "path": str(self.envs.database_path(request.defer_to.name)),
                    "alias": request.defer_to.name,
                    "read_only": True,
                }
            )
        return self._write_profile(self.info.name, attach, "profile")

    def parse_profile(self, source: SourceData, request: BuildRequest) -> Path:
        # dbt parses without connecting: the stand-in database file is never opened.
        stand_in = {
            "path": str(self.envs.root / f"{PARSE_DATABASE}.duckdb"),
            "alias": PARSE_DATABASE,
        }
        return self._write_profile(PARSE_DATABASE, [stand_in], "parse-profile")

    def prepare_manifest(self, source: SourceData) -> Callable[[Any], object] | None:
        database, from_sample = self.info.name, _sources_from_sample(source)

        def prepare(manifest: Any) -> None:
            rename_database(manifest, database)  # parsed under the stand-in (`parse_profile`)
            if from_sample is not None:
                from_sample(manifest)

        return prepare

    def _write_profile(self, database: str, attach: list[dict[str, Any]], folder: str) -> Path:
        production = _production_output(self.envs.loaded)
        if production.get("type") != "duckdb":
            raise ConfigError(
                f"backend.type is duckdb but production target is {production.get('type')}",
                "set `backend.type: warehouse` in dataops_dev.yml",
            )
        output = {
            # Production's own `attach` list would reach production files: never carried over.
            **{k: v for k, v in production.items() if k in ("extensions", "module_paths")},
            # DuckDB's own progress bar would print to our stdout during long queries.
            "settings": {**(production.get("settings") or {}), "enable_progress_bar": False},
            "type": "duckdb",
            "path": ":memory:",
            "database": database,
            "schema": production.get("schema") or "main",
            "threads": self.envs.loaded.config.environments.threads,
            "attach": attach,
        }
        return write_profile(
            self.envs.loaded,
            self.envs.work_dir(self.info.name) / folder,
            output,
            environment_target_name(self.envs.loaded),
        )

    def start_from_previous(self) -> bool:
        if not self.final.exists():
            return False
        self.abort()
        self.staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.final, self.staging)
        return True

    def drop_source_views(self, relations: Sequence[Relation]) -> None:
        from dataops_dev.engines.duckdb import DuckDBEngine

        if not relations:
            return
        with DuckDBEngine(self.staging) as engine:
            for relation in relations:
                engine.execute(f"DROP VIEW IF EXISTS {relation.sql('duckdb')}")
            engine.execute("CHECKPOINT")

    def publish(self, staging_target: Path) -> tuple[str, ...]:
        from dataops_dev.engines.duckdb import DuckDBEngine

        with DuckDBEngine(self.staging) as engine:
            engine.execute("CHECKPOINT")
        Path(str(self.final) + ".wal").unlink(missing_ok=True)
        os.replace(self.staging, self.final)
        return _manifest_schemas(staging_target)

    def abort(self) -> bool:
        found = False
        for path in (self.staging, Path(str(self.staging) + ".wal")):
            if path.exists():
                path.unlink()
                found = True
        shutil.rmtree(self.envs.work_dir(self.info.name) / "target.building", ignore_errors=True)
        return found


class _SchemaBackend(_Backend):
    """Environments as schemas beside production, reached through production's own dbt output
    (`TARGET_TYPE`); an environment object may exist before it has `envs`/`info` (drop, gc)."""

    TARGET_TYPE = ""
    WRONG_TARGET: tuple[str, str] = ("", "")
    """The message and hint when production's output is of another type ({given} is filled)."""

    def __init__(
        self,
        loaded: LoadedConfig,
        envs: Environments | None = None,
        info: EnvironmentInfo | None = None,
    ) -> None:
        self.loaded = loaded
        self.envs = envs
        self.info = info

    def production(self) -> dict[str, Any]:
        output = _production_output(self.loaded)
        if output.get("type") != self.TARGET_TYPE:
            message, hint = self.WRONG_TARGET
            raise ConfigError(message.format(given=repr(output.get("type"))), hint)
        return output


class _WarehouseBackend(_SchemaBackend):
    """Schemas `<env>` and `<env>_<custom>` in the sandbox database (PostgreSQL)."""

    ASIDE = "__prev"
    TARGET_TYPE = "postgres"
    WRONG_TARGET = (
        "the warehouse backend supports PostgreSQL targets; {given} given",
        "use `backend.type: duckdb` for DuckDB production",
    )

    def sandbox_database(self) -> str:
        self.production()  # the warehouse backend speaks PostgreSQL
        return sandbox_database(self.loaded)

    @contextlib.contextmanager
    def engine(self) -> Iterator[Any]:
        from dataops_dev.engines.postgres import PostgresEngine, conninfo_from_credentials

        engine = PostgresEngine(
            conninfo_from_credentials(self.production(), self.sandbox_database())
        )
        try:
            yield engine
        finally:
            engine.close()

    def drop_schemas(self, schemas: Sequence[str]) -> None:
        if not schemas:
            return
        with self.engine() as engine:
            for schema in schemas:
                engine.execute(f"DROP SCHEMA IF EXISTS {quote(schema, 'postgres')} CASCADE")

    def _env_schemas(self, engine: Any, suffix: str = "") -> list[str]:
        """Schemas of this environment (`<env><suffix>` and `<env><suffix>_<custom>`).

        Schemas of other environments whose names extend ours are excluded.
        """
        assert self.info is not None and self.envs is not None
        base = self.info.name + suffix
        pattern = base.replace("_", r"\_") + r"\_%"
        rows = engine.fetchall(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s",
            [base, pattern],
        )
        others = [p.stem for p in self.envs.root.glob("*.json") if p.stem != self.info.name]
        mine = []
        for (schema,) in rows:
            if not suffix and self.ASIDE in schema[len(base) :]:
                continue
            if any(
                schema == o or schema.startswith(o + "_")
                for o in others
                if len(o) > len(self.info.name)
            ):
                continue
            mine.append(schema)
        return sorted(mine)

    def prepare(self, source: SourceData, request: BuildRequest) -> None:
        assert self.info is not None
        if source.sandbox_database and source.sandbox_database != self.sandbox_database():
            raise ConfigError(
                f"the sample lives in {source.sandbox_database}, environments in "
                f"{self.sandbox_database()}",
                "set backend.sandbox_database to the database that holds the sample",
            )
        self.abort()
        with self.engine() as engine:
            for schema in self._env_schemas(engine):
                aside = self.info.name + self.ASIDE + schema[len(self.info.name) :]
                engine.execute(
                    f"ALTER SCHEMA {quote(schema, 'postgres')} RENAME TO {quote(aside, 'postgres')}"
                )

    def write_profile(self, source: SourceData, request: BuildRequest) -> Path:
        assert self.info is not None and self.envs is not None
        output = {
            **self.production(),
            "dbname": self.sandbox_database(),
            "schema": self.info.name,
            "threads": self.loaded.config.environments.threads,
        }
        output.pop("database", None)
        return write_profile(
            self.loaded,
            self.envs.work_dir(self.info.name) / "profile",
            output,
            environment_target_name(self.loaded),
        )

    def publish(self, staging_target: Path) -> tuple[str, ...]:
        assert self.info is not None
        with self.engine() as engine:
            for schema in self._env_schemas(engine, self.ASIDE):
                engine.execute(f"DROP SCHEMA IF EXISTS {quote(schema, 'postgres')} CASCADE")
        return tuple(sorted(set(_manifest_schemas(staging_target)) | {self.info.name}))

    def abort(self) -> bool:
        """Drop a partial build and put the set-aside previous schemas back."""
        assert self.info is not None
        with self.engine() as engine:
            aside = self._env_schemas(engine, self.ASIDE)
            if not aside:
                return False
            for schema in self._env_schemas(engine):
                engine.execute(f"DROP SCHEMA IF EXISTS {quote(schema, 'postgres')} CASCADE")
            for schema in aside:
                original = self.info.name + schema[len(self.info.name + self.ASIDE) :]
                engine.execute(
                    f"ALTER SCHEMA {quote(schema, 'postgres')} RENAME TO {quote(original, 'postgres')}"
                )
        if self.envs is not None:
            shutil.rmtree(
                self.envs.work_dir(self.info.name) / "target.building", ignore_errors=True
            )
        return True


def build_branch(
    loaded: LoadedConfig,
    *,
    branch: str | None = None,
    select: Sequence[str] = (),
    reporter: Reporter = NULL_REPORTER,
) -> tuple[EnvironmentInfo, BuildRecord]:
    """Build the working tree into its branch's environment (created when missing).

    Source data comes from `sources.resolve_source_data` (the masked sample).
    """
    from dataops_dev import gitrepo
    from dataops_dev.sources import resolve_source_data

    git_state = gitrepo.state(loaded.project_dir)
    envs = Environments(loaded)
    info = envs.create(branch or git_state.branch)
    source = resolve_source_data(loaded, reporter=reporter)
    defer_to = _baseline_to_defer_to(loaded, envs, source) if select else None
    record = envs.build(
        info,
        BuildRequest(
            code_dir=loaded.project_dir,
            commit=git_state.commit,
            dirty=git_state.dirty,
            select=tuple(select),
            defer_to=defer_to,
        ),
        source,
        reporter=reporter,
    )
    return envs.get(info.name), record


def _baseline_to_defer_to(
    loaded: LoadedConfig, envs: Environments, source: SourceData
) -> EnvironmentInfo | None:
    """The baseline of the merge-base with the main branch, when one was built on `source`:
    a selected build reads its unselected parents from there (as `review` does)."""
    from dataops_dev import gitrepo
    from dataops_dev.errors import GitError

    try:
        commit = gitrepo.merge_base(loaded.project_dir, loaded.config.production.main_branch)
    except GitError:
        return None
    info = envs.find(baseline_name(commit))
    if (
        info is None
        or info.last_build is None
        or info.last_build.source != source.identity
        or not envs.manifest_path(info.name).exists()
    ):
        return None
    return info


def main_baseline_name(loaded: LoadedConfig) -> str | None:
    """The baseline environment of the main branch's head (gc never drops it)."""
    from dataops_dev import gitrepo
    from dataops_dev.errors import GitError

    try:
        return baseline_name(
            gitrepo.resolve(loaded.project_dir, loaded.config.production.main_branch)
        )
    except GitError:
        return None


# ----------------------------------------------------------------------------------------------
# Spark


class _SparkBackend(_SchemaBackend):
    """Versioned schemas `<prefix>__<env>__v<version>[_<custom>]` on Spark, which can neither
    rename a schema nor move a table between schemas: each build writes a new version and the
    environment's record (`EnvironmentInfo.schemas`, with the manifest in its target dir) is the
    pointer to the version readers use. A failed build drops its own version; the version it
    replaced is dropped by the next build (a diff still reading it is not cut off mid-read).
    `source()` renders the masked sample's schemas, re-pointed in dbt's parsed manifest: the
    user's project is never edited and production is never named in a build."""

    TARGET_TYPE = "spark"
    WRONG_TARGET = (
        "the spark backend needs a spark production target; {given} given",
        "point production.target at a dbt-spark output (method: session)",
    )

    def __init__(
        self,
        loaded: LoadedConfig,
        envs: Environments | None = None,
        info: EnvironmentInfo | None = None,
    ) -> None:
        super().__init__(loaded, envs, info)
        self.version: str | None = None

    def prefix(self) -> str:
        from dataops_dev.spark_layout import sandbox_prefix

        return sandbox_prefix(self.loaded.config.backend.sandbox_database)

    @contextlib.contextmanager
    def engine(self) -> Iterator[Any]:
        from dataops_dev.engines.spark import SparkEngine, remote_from_output

        engine = SparkEngine(remote_from_output(self.production()))
        try:
            yield engine
        finally:
            engine.close()

    # -- names -------------------------------------------------------------------------------
    def _versions_pattern(self) -> re.Pattern[str]:
        assert self.info is not None
        from dataops_dev.spark_layout import env_schema

        base = re.escape(env_schema(self.prefix(), self.info.name))
        return re.compile(rf"^{base}__v([0-9a-f]{{8}})(?:_[a-z0-9_]+)?$")

    def _version_schemas(self, engine: Any) -> dict[str, str]:
        """Every schema of any version of this environment: schema -> version."""
        pattern = self._versions_pattern()
        found = {}
        for (schema,) in engine.fetchall("SHOW SCHEMAS"):
            match = pattern.match(str(schema).lower())
            if match:
                found[str(schema)] = match.group(1)
        return found

    def _stale(self, engine: Any, keep: set[str]) -> list[str]:
        """Schemas of versions the record does not point at (and not in `keep`)."""
        assert self.info is not None
        current = set(self.info.schemas)
        return sorted(s for s in self._version_schemas(engine) if s not in current | keep)

    def drop_schemas(self, schemas: Sequence[str]) -> None:
        if not schemas:
            return
        with self.engine() as engine:
            self._drop(engine, schemas)

    def _drop(self, engine: Any, schemas: Sequence[str]) -> None:
        from dataops_dev.spark_layout import owned

        for schema in schemas:
            if not owned(self.prefix(), schema):  # never anything outside the sandbox
                continue
            engine.execute(f"DROP SCHEMA IF EXISTS {quote(schema, 'spark')} CASCADE")

    def all_schemas(self) -> list[str]:
        with self.engine() as engine:
            return sorted(self._version_schemas(engine))

    # -- the build ---------------------------------------------------------------------------
    def prepare(self, source: SourceData, request: BuildRequest) -> None:
        from dataops_dev.spark_layout import env_schema

        assert self.info is not None
        self.production()
        self.version = os.urandom(4).hex()
        with self.engine() as engine:
            # What earlier builds left: the version the last good build replaced, or a killed
            # build's partial one. The recorded version stays until this build replaces it.
            self._drop(engine, self._stale(engine, keep=set()))
            schema = env_schema(self.prefix(), f"{self.info.name}__v{self.version}")
            engine.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema, 'spark')}")

    def build_schema(self) -> str:
        from dataops_dev.spark_layout import env_schema

        assert self.info is not None and self.version is not None
        return env_schema(self.prefix(), f"{self.info.name}__v{self.version}")

    def write_profile(self, source: SourceData, request: BuildRequest) -> Path:
        assert self.info is not None and self.envs is not None
        production = self.production()
        output = {
            **{k: v for k, v in production.items() if k not in ("schema", "database")},
            "schema": self.build_schema(),
            "threads": self.loaded.config.environments.threads,
        }
        return write_profile(
            self.loaded,
            self.envs.work_dir(self.info.name) / "profile",
            output,
            environment_target_name(self.loaded),
        )

    def prepare_manifest(self, source: SourceData) -> Callable[[Any], object] | None:
        return functools.partial(
            point_sources_at_spark_sample,
            schemas=spark_sample_schemas(source, self.prefix()),
            prefix=self.prefix(),
        )

    def publish(self, staging_target: Path) -> tuple[str, ...]:
        return tuple(sorted(set(_manifest_schemas(staging_target)) | {self.build_schema()}))

    def abort(self) -> bool:
        """Drop this build's partial version and whatever version the record does not name."""
        assert self.info is not None
        with self.engine() as engine:
            stale = self._stale(engine, keep=set())
            self._drop(engine, stale)
        if self.envs is not None:
            shutil.rmtree(
                self.envs.work_dir(self.info.name) / "target.building", ignore_errors=True
            )
        return bool(stale)


def spark_sample_schemas(source: SourceData, prefix: str) -> dict[str, str]:
    """Production source schema -> the Spark schema holding its masked sample: the version the
    sample record names when it does (never the stable views, so one build never mixes two
    samples), else the stable `spark_layout.sample_schema`."""
    from dataops_dev.spark_layout import sample_schema

    recorded: Mapping[str, str] = getattr(source, "sample_schemas", None) or {}
    mapping = {r.schema.lower(): sample_schema(prefix, r.schema) for r in source.relations}
    mapping.update({k.lower(): v for k, v in recorded.items()})
    return mapping


def point_sources_at_spark_sample(
    dbt_manifest: Any, *, schemas: Mapping[str, str], prefix: str
) -> int:
    """Re-point every source of a parsed dbt `Manifest` from production's schema to the
    sample's (`schemas`, else `spark_layout.sample_schema`), so `source()` renders the sample
    and an environment never reads production: a source the sample lacks fails the build.
    Returns how many sources changed."""
    from dataops_dev.spark_layout import sample_schema

    changed = 0
    for node in dbt_manifest.sources.values():
        production = str(node.schema or "")
        target = schemas.get(production.lower()) or sample_schema(prefix, production)
        if node.database:  # dbt-spark keeps a relation's database equal to its schema
            node.database = target
        node.schema = target
        node.relation_name = f"{quote(target, 'spark')}.{quote(node.identifier, 'spark')}"
        changed += 1
    return changed
