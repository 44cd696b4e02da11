"""Manifests made on demand, so `impact` and `lineage` need nothing prepared: `dbt parse` of a git
ref's tree or of the working tree, cached under `<state_dir>/cache/manifests/` by tree or content hash.

A cache entry is written whole (parsed beside it, then renamed in): a reader never sees half a
manifest, and two processes parsing the same tree at once both end with the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from dataops_dev.errors import GitError, ProjectError, UsageError
from dataops_dev.reporting import NULL_REPORTER, Reporter

if TYPE_CHECKING:
    from dataops_dev.config import LoadedConfig

# Directories that are never part of a project's code (build output, packages, our own state).
SKIPPED_DIRS = frozenset(
    {"target", "logs", "dbt_packages", "dbt_modules", "node_modules", "__pycache__", "venv"}
)
_SKIPPED_SUFFIXES = (".duckdb", ".duckdb.wal", ".pyc", ".db", ".db.wal")
_LARGE_FILE = 1 << 20
"""Files above this size are fingerprinted by size and mtime, not read (data files)."""


@dataclass(frozen=True)
class ParsedManifest:
    """A manifest.json from `dbt parse`, and what it was made from."""

    path: Path
    code_dir: Path
    """The project directory that was parsed (an exported tree, or the working tree)."""
    key: str
    reused: bool
    """True when the manifest came from the cache."""


def _dbt_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dbt-core")
    except PackageNotFoundError:  # pragma: no cover - dbt is a dependency
        return "?"


def project_files(project_dir: Path, *, skip: tuple[Path, ...] = ()) -> list[Path]:
    """The files a dbt parse of `project_dir` can depend on, sorted (hidden and build
    directories, DuckDB files and `skip` excluded)."""
    skipped = {p.resolve() for p in skip}
    found: list[Path] = []
    for root, dirs, files in os.walk(project_dir):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and d not in SKIPPED_DIRS and (here / d) not in skipped
        )
        for name in files:
            if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES):
                continue
            found.append(here / name)
    return sorted(found)


def content_hash(project_dir: Path, *, skip: tuple[Path, ...] = ()) -> str:
    """A hash of the project's files: their relative paths and contents (large files: their
    size and modification time)."""
    digest = hashlib.sha256()
    for path in project_files(project_dir, skip=skip):
        relative = path.relative_to(project_dir).as_posix()
        try:
            stat = path.stat()
            if stat.st_size > _LARGE_FILE:
                body = f"{stat.st_size}:{stat.st_mtime_ns}".encode()
            else:
                body = path.read_bytes()
        except OSError:
            continue  # removed while we walked: the next run sees the new state
        digest.update(relative.encode() + b"\0" + hashlib.sha256(body).digest())
    return digest.hexdigest()


def newest_change(project_dir: Path, *, skip: tuple[Path, ...] = ()) -> float:
    """The latest modification time of the project's files (0 for an empty project)."""
    times = [p.stat().st_mtime for p in project_files(project_dir, skip=skip)]
    return max(times, default=0.0)


# --------------------------------------------------------------------------------------------
# Profiles: parse needs one, never a connection


@dataclass(frozen=True)
class ParseProfile:
    profiles_dir: Path
    target: str | None
    fingerprint: str


def parse_profile(loaded: LoadedConfig, project_name: str, profile_name: str) -> ParseProfile:
    """The user's profile when it has one for the project (production target if it exists),
    else a DuckDB profile of our own: `dbt parse` reads the adapter type, it opens nothing."""
    path = loaded.profiles_dir / "profiles.yml"
    name = loaded.config.profile or profile_name
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data, text = {}, ""
    profile = data.get(name) if isinstance(data, dict) else None
    if isinstance(profile, dict) and isinstance(profile.get("outputs"), dict):
        outputs = profile["outputs"]
        wanted = loaded.config.production.target
        target = wanted if wanted in outputs else None
        digest = hashlib.sha256(f"{text}\0{target}".encode()).hexdigest()
        return ParseProfile(loaded.profiles_dir, target, digest)
    fallback_dir = loaded.state_dir / "cache" / "manifests" / "profile"
    fallback = {
        name: {"target": "parse", "outputs": {"parse": {"type": "duckdb", "path": ":memory:"}}}
    }
    text = yaml.safe_dump(fallback)
    fallback_dir.mkdir(parents=True, exist_ok=True)
    target_file = fallback_dir / "profiles.yml"
    if not target_file.is_file() or target_file.read_text(encoding="utf-8") != text:
        from dataops_dev.atomic import write_text_atomic

        write_text_atomic(target_file, text)
    return ParseProfile(fallback_dir, "parse", hashlib.sha256(text.encode()).hexdigest())


# --------------------------------------------------------------------------------------------
# Parsing with a cache


def _cache_root(loaded: LoadedConfig) -> Path:
    return loaded.state_dir / "cache" / "manifests"


def parse_cached(
    code_dir: Path,
    *,
    cache_dir: Path,
    profile: ParseProfile,
    key: str,
    label: str,
    reporter: Reporter = NULL_REPORTER,
    keep_warm: bool = False,
) -> ParsedManifest:
    """`dbt parse` of `code_dir` into `cache_dir/<key>/` unless that manifest exists already.

    `keep_warm`: parse with dbt's partial parsing in a target kept for `code_dir` (the working
    tree, parsed again after every edit); otherwise a full parse in a scratch target (an
    exported tree is parsed once)."""
    final = cache_dir / key[:24]
    manifest = final / "manifest.json"
    if manifest.is_file():
        return ParsedManifest(manifest, code_dir, key, reused=True)
    from dataops_dev.dbt.runner import run_dbt

    install_packages(code_dir, profile=profile, reporter=reporter)
    staging = cache_dir / f"{key[:24]}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        scratch = contextlib.nullcontext(staging / "target")
        with _warm_target(cache_dir, code_dir, profile) if keep_warm else scratch as target:
            run = run_dbt(
                "parse",
                [] if keep_warm else ["--no-partial-parse"],
                project_dir=code_dir,
                profiles_dir=profile.profiles_dir,
                target_path=target,
                target=profile.target,
                reporter=reporter,
                task_key="parse",
                cwd=code_dir,
                label=f"dbt parse ({label})",
            )
            parsed = target / "manifest.json"
            if run.success and parsed.is_file() and keep_warm:
                staging.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(parsed, staging / "manifest.json")
            elif run.success and parsed.is_file():
                os.replace(parsed, staging / "manifest.json")
        if not run.success or not (staging / "manifest.json").is_file():
            log = cache_dir / "last-parse-error.log"
            if run.log_file.is_file():
                log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run.log_file, log)
            raise ProjectError(
                f"dbt could not parse {label}: {run.error or 'no manifest written'}",
                f"fix the project (dbt's log: {log}), or pass --base-manifest PATH",
            )
        final.mkdir(parents=True, exist_ok=True)
        os.replace(staging / "manifest.json", manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ParsedManifest(manifest, code_dir, key, reused=False)


@contextlib.contextmanager
def _warm_target(cache_dir: Path, code_dir: Path, profile: ParseProfile) -> Iterator[Path]:
    """dbt's target directory for parses of `code_dir` with `profile`, kept between runs: its
    partial-parse file makes the next parse of an edited project re-read only what changed.
    One parse at a time writes it (a second process waits for the first)."""
    from filelock import FileLock

    identity = f"{code_dir.resolve()}\0{profile.fingerprint}\0{_dbt_version()}"
    work = cache_dir / "partial" / hashlib.sha256(identity.encode()).hexdigest()[:16]
    work.mkdir(parents=True, exist_ok=True)
    with FileLock(str(work / "parse.lock")):
        yield work / "target"


def install_packages(
    code_dir: Path, *, profile: ParseProfile, reporter: Reporter = NULL_REPORTER
) -> None:
    """`dbt deps` when the project declares packages that are not installed: dbt cannot
    parse without them (a fresh clone, an exported tree)."""
    from dataops_dev.dbt.project import read_project

    if not any((code_dir / f).is_file() for f in ("packages.yml", "dependencies.yml")):
        return
    install_path = str(read_project(code_dir).raw.get("packages-install-path") or "dbt_packages")
    installed = code_dir / install_path
    if installed.is_dir() and any(installed.iterdir()):
        return
    _run_deps(code_dir, profile, reporter)


def _run_deps(code_dir: Path, profile: ParseProfile, reporter: Reporter) -> None:
    """`dbt deps` in-process (it takes no --target-path, so not through `run_dbt`)."""
    from dbt.cli.main import dbtRunner

    from dataops_dev.dbt.runner import _DBT_LOCK, _reset_adapters

    os.environ.setdefault("DO_NOT_TRACK", "1")
    args = ["deps", "--project-dir", str(code_dir), "--profiles-dir", str(profile.profiles_dir)]
    # dbt's log goes to a scratch folder: nothing but the packages lands in the user's tree.
    logs = tempfile.mkdtemp(prefix="dataops-deps-")
    args += ["--log-path", logs, "--log-level", "none", "--no-use-colors"]
    reporter.task_started("deps", f"dbt deps ({code_dir.name})", None)
    previous = Path.cwd()
    with _DBT_LOCK:
        try:
            os.chdir(code_dir)
            result = dbtRunner().invoke(args)
        finally:
            _reset_adapters()
            os.chdir(previous)
            shutil.rmtree(logs, ignore_errors=True)
    reporter.task_finished("deps", "ok" if result.success else "failed")
    if isinstance(result.exception, KeyboardInterrupt):
        raise KeyboardInterrupt
    if not result.success:
        raise ProjectError(
            f"dbt could not install the packages of {code_dir}: {result.exception or 'failed'}",
            f"run `dbt deps` in {code_dir}, or pass --base-manifest PATH",
        )


def ensure_packages(loaded: LoadedConfig, *, reporter: Reporter = NULL_REPORTER) -> None:
    """The working tree's declared packages installed (`dbt deps` once), so the renderer has
    their macros on a fresh clone."""
    name, profile_name = _project_identity(loaded.project_dir)
    install_packages(
        loaded.project_dir, profile=parse_profile(loaded, name, profile_name), reporter=reporter
    )


def _project_identity(code_dir: Path) -> tuple[str, str]:
    from dataops_dev.dbt.project import read_project

    project = read_project(code_dir)
    return project.name, project.profile


def export_ref(loaded: LoadedConfig, commit: str) -> Path:
    """The dbt project as it is at `commit`, exported once under `<state_dir>/code/<sha12>`
    (the layout review's baselines use, so both share it)."""
    from dataops_dev import gitrepo

    root = gitrepo.toplevel(loaded.project_dir)
    subdir = os.path.relpath(loaded.project_dir, root)
    destination = loaded.state_dir / "code" / commit[:12]
    code_dir = destination / subdir if subdir != "." else destination
    if (code_dir / "dbt_project.yml").is_file():
        return code_dir
    return gitrepo.export_tree(loaded.project_dir, commit, subdir, destination)


def resolve_base_commit(loaded: LoadedConfig, ref: str) -> str:
    """The commit `ref` names, for `impact --base REF`. A missing repository or an unknown
    ref is a usage error (exit 2): the command cannot run as asked."""
    from dataops_dev import gitrepo

    try:
        return gitrepo.resolve(loaded.project_dir, ref)
    except GitError as exc:
        raise UsageError(
            f"cannot compare with {ref!r}: {exc.message}",
            (exc.hint or "check the ref with `git branch -a`")
            + "; or pass --base-manifest PATH to compare with a manifest instead",
        ) from exc


def base_manifest(
    loaded: LoadedConfig, commit: str, *, reporter: Reporter = NULL_REPORTER
) -> ParsedManifest:
    """The manifest of the project at `commit`: its exported tree parsed once, cached by the
    git tree id of the project directory (the same tree on two commits parses once)."""
    from dataops_dev import gitrepo

    code_dir = export_ref(loaded, commit)
    key, profile = _base_key(loaded, code_dir, gitrepo.tree_id(loaded.project_dir, commit))
    return parse_cached(
        code_dir,
        cache_dir=_cache_root(loaded),
        profile=profile,
        key=key,
        label=f"the project at {commit[:12]}",
        reporter=reporter,
    )


def _base_key(loaded: LoadedConfig, code_dir: Path, tree: str) -> tuple[str, ParseProfile]:
    """The cache key of a base manifest: the project directory's git tree id, the parse profile
    and dbt's version."""
    name, profile_name = _project_identity(code_dir)
    profile = parse_profile(loaded, name, profile_name)
    key = hashlib.sha256(f"tree:{tree}\0{profile.fingerprint}\0{_dbt_version()}".encode())
    return key.hexdigest(), profile


def cached_base_manifest(
    loaded: LoadedConfig, commit: str, tree: str, subdir: str
) -> ParsedManifest | None:
    """The manifest `base_manifest` made for `commit` when it is cached, else None; the caller
    names the commit's project tree id and the project's folder in the repository. Starts
    neither git nor dbt (the pre-commit hooks' fast path)."""
    destination = loaded.state_dir / "code" / commit[:12]
    subdir = subdir.strip("/")
    code_dir = destination / subdir if subdir not in ("", ".") else destination
    if not (code_dir / "dbt_project.yml").is_file():
        return None
    key, _profile = _base_key(loaded, code_dir, tree)
    manifest = _cache_root(loaded) / key[:24] / "manifest.json"
    return ParsedManifest(manifest, code_dir, key, reused=True) if manifest.is_file() else None


def working_manifest(loaded: LoadedConfig, *, reporter: Reporter = NULL_REPORTER) -> ParsedManifest:
    """The manifest of the working tree as it is now, parsed again only when a project file
    changed (cached by content hash)."""
    name, profile_name = _project_identity(loaded.project_dir)
    profile = parse_profile(loaded, name, profile_name)
    install_packages(loaded.project_dir, profile=profile, reporter=reporter)
    files = content_hash(loaded.project_dir, skip=(loaded.state_dir,))
    key = hashlib.sha256(f"work:{files}\0{profile.fingerprint}\0{_dbt_version()}".encode())
    return parse_cached(
        loaded.project_dir,
        cache_dir=_cache_root(loaded),
        profile=profile,
        key=key.hexdigest(),
        label="the working tree",
        reporter=reporter,
        keep_warm=True,
    )
