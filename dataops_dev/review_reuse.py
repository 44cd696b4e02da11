"""A no-op review returns the last one: when nothing a review depends on changed, its report is reused.

The key is what a review reads: the git state (HEAD, every ref, the project's uncommitted and
untracked files), the config, the approvals file, profiles, DBT_/DATAOPS_ variables, this tool's
code and the options; checked after it, both environments' builds and production's files. The
entry is tagged with the report key (integrity.py): an entry that does not verify is ignored.
Anything uncertain is a miss and the review runs. Nothing here imports dbt, sqlglot or DuckDB.

When the report cannot be reused but both builds can (approvals, policy or one model's diff
options changed), each model's diff is reused instead (`DiffCache`, keyed by both builds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataops_dev.config import as_plain
from dataops_dev.gitrepo import porcelain_paths
from dataops_dev.integrity import integrity_key
from dataops_dev.reporting import NULL_REPORTER, Reporter

if TYPE_CHECKING:
    from dataops_dev.config import LoadedConfig
    from dataops_dev.integrity import IntegrityKey
    from dataops_dev.report.model import Report

FORMAT = "dataops-review-reuse/1"
REUSE_ENV = "DATAOPS_REVIEW_REUSE"
"""Set to `0` to never reuse a review (the benchmark's reference path; `review --no-reuse`)."""
_APPROVALS_FILE = "dataops.approvals.yml"  # decisions.APPROVALS_FILE (pinned by a test)
_ENV_PREFIXES = ("DBT_", "DATAOPS_", "GITHUB_HEAD_REF")


@dataclasses.dataclass(frozen=True)
class Lookup:
    """The outcome of looking for a reusable review."""

    inputs: Mapping[str, Any] | None
    """The key as it stood before the review (None: reuse is off or the state is unreadable;
    nothing will be stored)."""
    report: Report | None = None
    """The reused report, on a hit."""
    reason: str = ""
    """Why it missed (or "reused"): shown with --debug, asserted by tests."""
    diffs: bool = False
    """The review that runs may reuse each model's diff of the same two builds (`DiffCache`):
    not under `--no-reuse` (its diffs are kept all the same), nor when reuse is off."""


def enabled() -> bool:
    return os.environ.get(REUSE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def lookup(
    loaded: LoadedConfig,
    *,
    base_ref: str | None = None,
    select: Sequence[str] = (),
    refresh_sample: bool = False,
    force: bool = False,
    reporter: Reporter = NULL_REPORTER,
) -> Lookup:
    """The stored review when nothing it depends on changed, else a miss carrying the key.
    `force` (`review --no-reuse`) never reuses, but the review it runs is kept."""
    started = time.perf_counter()
    if not enabled():
        return Lookup(None, reason=f"reuse is off ({REUSE_ENV})")
    key = integrity_key(loaded)
    if key is None:
        return Lookup(None, reason="the masking salt is not set")
    try:
        inputs = review_inputs(loaded, base_ref=base_ref, select=select)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return Lookup(None, reason=f"the project's state cannot be read ({exc})")
    if force:
        return Lookup(inputs, reason="--no-reuse")
    if refresh_sample:  # a new sample means new builds: their diffs are new as well
        return Lookup(inputs, reason="--refresh-sample", diffs=True)
    entry = _read_entry(cache_path(loaded, inputs), key, reporter)
    if entry is None:
        return Lookup(inputs, reason="no stored review (or one that was ignored)", diffs=True)
    changed = sorted(
        k for k in {*inputs, *entry["inputs"]} if inputs.get(k) != entry["inputs"].get(k)
    )
    if changed:
        return Lookup(inputs, reason="changed: " + ", ".join(changed), diffs=True)
    outputs = entry.get("outputs")
    if not isinstance(outputs, dict) or _outputs_changed(loaded, outputs):
        return Lookup(inputs, reason="changed: an environment or production", diffs=True)
    report = _reused_report(entry, started)
    if report is None:
        reporter.message("warning", f"ignored {cache_path(loaded, inputs)}: not a report")
        return Lookup(inputs, reason="the stored report does not read", diffs=True)
    return Lookup(inputs, report=report, reason="reused", diffs=True)


def store(
    loaded: LoadedConfig,
    found: Lookup | None,
    report: Report,
    reporter: Reporter = NULL_REPORTER,
) -> Path | None:
    """Keep `report` for the next review with the same key, when it is safe to: the review
    completed, and nothing changed while it ran. Never fails the review it follows."""
    if found is None or found.inputs is None or report.error or not report.base.environment:
        return None
    key = integrity_key(loaded)
    if key is None or not report.head.environment:
        return None
    try:
        now = review_inputs(loaded, **_options(found.inputs))
        # Not the environment: dbt sets DBT_* variables in this process, which the next one
        # will not have; the user's variables are the ones read before the review.
        moved = sorted(k for k in now if k != "environ" and now[k] != found.inputs.get(k))
        if moved:
            reporter.message("info", f"not kept for reuse: {', '.join(moved)} changed meanwhile")
            return None
        outputs = _outputs(loaded, report.base.environment, report.head.environment)
        if outputs is None:
            return None
        return _write_entry(loaded, found.inputs, outputs, report, key)
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation, never a failure
        reporter.message("warning", f"the review was not kept for reuse: {exc}")
        return None


def cache_path(loaded: LoadedConfig, inputs: Mapping[str, Any]) -> Path:
    """One entry per branch: the last review of it."""
    branch = str(inputs["git"]["branch"])
    return loaded.state_dir / "reuse" / f"{_digest(branch)[:16]}.json"


# ----------------------------------------------------------------------------------------------
# The key


def review_inputs(
    loaded: LoadedConfig, *, base_ref: str | None = None, select: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything before the build that decides a review's report (see the module docstring)."""
    git_state = _git_state(loaded)
    return {
        "format": FORMAT,
        "options": {
            "base_ref": base_ref or loaded.config.production.main_branch,
            "select": list(select),
        },
        "tool": _tool_fingerprint(),
        "config": _digest(
            json.dumps(
                [loaded.as_dict(), loaded.source, str(loaded.root), dict(loaded.provenance)],
                sort_keys=True,
                default=str,
            )
        ),
        "git": git_state,
        "worktree": _worktree(loaded, git_state["root"]),
        "approvals": _file_digest(loaded.project_dir / _APPROVALS_FILE),
        "profiles": {
            str(path): _file_digest(path)
            for path in sorted({loaded.profiles_dir / "profiles.yml", _outside_profiles()})
        },
        "config_file": _config_file_digest(loaded),
        "environ": _digest(
            json.dumps(
                sorted(
                    (name, value)
                    for name, value in os.environ.items()
                    if name.startswith(_ENV_PREFIXES)
                    and name not in (loaded.config.sample.salt_env, REUSE_ENV)
                )
            )
        ),
    }


def _options(inputs: Mapping[str, Any]) -> dict[str, Any]:
    options = inputs["options"]
    return {"base_ref": options["base_ref"], "select": tuple(options["select"])}


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, timeout=60)
    return result.stdout.decode("utf-8", "surrogateescape")


def _git_state(loaded: LoadedConfig) -> dict[str, Any]:
    """HEAD, the branch and every ref (a new commit on main changes the base and the trust
    side: review.py and trust.py read both), without GitPython (its import alone is 55 ms)."""
    root, head, symbolic = _git(
        loaded.project_dir, "rev-parse", "--show-toplevel", "HEAD", "--symbolic-full-name", "HEAD"
    ).splitlines()[:3]
    if symbolic.startswith("refs/heads/"):
        branch = symbolic.removeprefix("refs/heads/")
    else:  # detached (CI): named as gitrepo.state names it
        branch = os.environ.get("GITHUB_HEAD_REF") or f"detached-{head[:8]}"
    refs = _git(loaded.project_dir, "for-each-ref", "--format=%(objectname) %(refname) %(symref)")
    return {"root": root, "head": head, "branch": branch, "refs": _digest(refs)}


def _worktree(loaded: LoadedConfig, root: str) -> dict[str, str]:
    """Content hash of each project file git reports changed or untracked, less our state
    directory (a project that does not ignore `.dataops/` would otherwise never match)."""
    output = _git(
        loaded.project_dir,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--",
        ".",
    )
    paths = porcelain_paths(output)
    state = os.path.relpath(loaded.state_dir.resolve(), root)
    files: dict[str, str] = {}
    for relative in sorted(p for p in paths if p):
        if not state.startswith("..") and (relative == state or relative.startswith(state + "/")):
            continue
        files[relative] = _file_digest(Path(root) / relative)
    return files


def _file_digest(path: Path) -> str:
    try:
        return _digest(path.read_bytes())
    except FileNotFoundError:
        return "absent"
    except IsADirectoryError:
        return "directory"


def _config_file_digest(loaded: LoadedConfig) -> str:
    """The config file's content (it may live outside the project, e.g. `--config`)."""
    if loaded.source == "defaults":
        return "defaults"
    return _file_digest(Path(loaded.source.split(" [", 1)[0]))


def _outside_profiles() -> Path:
    """~/.dbt/profiles.yml (or DBT_PROFILES_DIR's): trust.py reads it for the base side."""
    env_dir = os.environ.get("DBT_PROFILES_DIR")
    directory = Path(env_dir).expanduser() if env_dir else Path.home() / ".dbt"
    return directory / "profiles.yml"


def _tool_fingerprint() -> str:
    """This tool's code on disk: an edited or upgraded dataops_dev is another tool."""
    from dataops_dev.codestamp import source_stamp

    return _digest(source_stamp())


def _digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()[:32]


# ----------------------------------------------------------------------------------------------
# What the review built on: both environments and production's files


def _outputs(loaded: LoadedConfig, base_env: str, head_env: str) -> dict[str, Any] | None:
    """The environments' state and production's files after a review; None when production
    cannot be watched by its files (a warehouse: only a query would tell it changed)."""
    from dataops_dev.dbt.project import duckdb_path, load_profile_target

    output = load_profile_target(loaded)
    if output.get("type") != "duckdb":
        return None
    production = duckdb_path(loaded, output)
    watched = [str(production), str(production) + ".wal", *_sample_files(loaded)]
    return {
        "environments": {name: _environment_state(loaded, name) for name in (base_env, head_env)},
        "files": {path: _stamp(Path(path)) for path in sorted(set(watched))},
    }


def _sample_files(loaded: LoadedConfig) -> list[str]:
    """Production files behind file-backed sources, as the samples recorded them."""
    from dataops_dev.statefiles import read_cache_json

    paths: list[str] = []
    for record in sorted((loaded.state_dir / "samples").glob("*.json")):
        data = read_cache_json(record)
        if isinstance(data, dict) and isinstance(data.get("file_stamps"), dict):
            paths.extend(str(p) for p in data["file_stamps"])
    return paths


def _outputs_changed(loaded: LoadedConfig, outputs: Mapping[str, Any]) -> bool:
    environments = outputs.get("environments")
    files = outputs.get("files")
    if not isinstance(environments, dict) or not isinstance(files, dict) or not environments:
        return True
    for name, state in environments.items():
        if _environment_state(loaded, str(name)) != state:
            return True
    return any(_stamp(Path(str(path))) != stamp for path, stamp in files.items())


def _environment_state(loaded: LoadedConfig, name: str) -> dict[str, str]:
    """The environment's metadata (its builds) and the files a review reads from it. The
    layout is environments.py's (`Environments.meta_path` and friends; pinned by a test)."""
    root = loaded.state_dir / "envs"
    if "/" in name or name.startswith("."):
        raise ValueError(f"not an environment name: {name!r}")
    return {
        "metadata": _file_digest(root / f"{name}.json"),
        "database": _stamp(root / f"{name}.duckdb"),
        "manifest": _stamp(root / name / "target" / "manifest.json"),
        "run_results": _stamp(root / name / "target" / "run_results.json"),
    }


def _stamp(path: Path) -> str:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "absent"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


# ----------------------------------------------------------------------------------------------
# The entry on disk


def _write_entry(
    loaded: LoadedConfig,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    report: Report,
    key: IntegrityKey,
) -> Path:
    from dataops_dev.atomic import write_text_atomic
    from dataops_dev.integrity import signed

    entry = {"format": FORMAT, "inputs": inputs, "outputs": outputs, "report": report.to_dict()}
    path = cache_path(loaded, inputs)
    write_text_atomic(path, json.dumps(signed(entry, key), ensure_ascii=False))
    return path


def _read_entry(path: Path, key: IntegrityKey, reporter: Reporter) -> dict[str, Any] | None:
    """The stored review at `path` when it is whole and its tag verifies (`_read_signed`)."""
    data = _read_signed(path, key, reporter, "review")
    if data is None or data.get("format") != FORMAT or not isinstance(data.get("inputs"), dict):
        return None
    return data


def _read_signed(
    path: Path, key: IntegrityKey, reporter: Reporter, what: str
) -> dict[str, Any] | None:
    """The JSON at `path` when it is whole and its tag verifies; a corrupt or edited one is
    ignored with a warning (never trusted, never an error: the work runs instead)."""
    from dataops_dev.integrity import IntegrityStatus, verify
    from dataops_dev.statefiles import InvalidFile, decode_text, parse_json, read_bytes

    try:
        data = parse_json(decode_text(read_bytes(path)))
    except FileNotFoundError:
        return None
    except (InvalidFile, OSError) as exc:
        reporter.message("warning", f"ignored the stored {what} {path}: it {exc}")
        return None
    if verify(data, key) is not IntegrityStatus.VERIFIED:
        reporter.message(
            "warning", f"ignored the stored {what} {path}: its integrity tag does not match"
        )
        return None
    return data


def _reused_report(entry: Mapping[str, Any], started: float) -> Report | None:
    from dataops_dev.errors import DataopsError
    from dataops_dev.integrity import IntegrityStatus
    from dataops_dev.report.model import Report

    try:
        stored = Report.from_dict(entry["report"])
    except (DataopsError, TypeError, ValueError, KeyError, AttributeError):
        return None
    seconds = round(time.perf_counter() - started, 3)
    return dataclasses.replace(
        stored,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reused_from=stored.reused_from or stored.generated_at,
        timings={"reuse": seconds, "total": seconds},
        integrity=IntegrityStatus.VERIFIED,
    )


_REUSE_IGNORES = ("generated_at", "timings", "reused_from", "integrity")
"""Keys in which a reused report differs from the review it reuses."""


def saved_artifacts(
    loaded: LoadedConfig, report: Report, suffixes: Mapping[str, str]
) -> dict[str, Path] | None:
    """The saved report files (`suffixes`: format -> file suffix, json among them) when they
    already hold the review `report` reuses (its tag verifies and only the reuse keys differ):
    a no-op review then writes nothing."""
    from dataops_dev.integrity import IntegrityStatus, verify
    from dataops_dev.statefiles import InvalidFile, decode_text, parse_json, read_bytes

    directory = loaded.state_dir / "reports" / (report.head.environment or "unknown")
    paths = {fmt: directory / f"report.{suffix}" for fmt, suffix in suffixes.items()}
    if not all(path.is_file() for path in paths.values()):
        return None
    try:
        saved = parse_json(decode_text(read_bytes(paths["json"])))
    except (InvalidFile, OSError):
        return None
    if verify(saved, integrity_key(loaded)) is not IntegrityStatus.VERIFIED:
        return None

    def body(data: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k not in _REUSE_IGNORES}

    return paths if body(saved) == body(report.to_dict()) else None


# ----------------------------------------------------------------------------------------------
# Diff-level reuse: one model's diff, while both builds are the ones it compared

DIFF_FORMAT = "dataops-diff-reuse/1"


@dataclasses.dataclass(frozen=True)
class DiffCache:
    """Each model's last diff in one branch environment, kept with the key it ran under: both
    builds (their records and, on DuckDB, their files), this tool's code, and the model's own
    inputs (relations, key, diff options). One file per model, overwritten by its next diff,
    tagged like the report. It holds what the report holds of a diff (masked sample values)."""

    directory: Path
    scope: Mapping[str, Any]
    key: IntegrityKey
    readable: bool = True
    """False under `--no-reuse`: every diff runs, and is kept for the next review."""

    def read(
        self, model: str, inputs: Mapping[str, Any], reporter: Reporter = NULL_REPORTER
    ) -> Mapping[str, Any] | None:
        """The stored outcome of `model`'s diff under `inputs` and this scope, else None (a
        corrupt or edited entry is a miss, with a warning)."""
        if not self.readable:
            return None
        path = self._path(model)
        entry = _read_diff_entry(path, self.key, reporter)
        if entry is None or entry.get("key") != self._key(model, inputs):
            return None
        outcome = entry.get("outcome")
        return outcome if isinstance(outcome, dict) else None

    def write(
        self,
        model: str,
        inputs: Mapping[str, Any],
        outcome: Mapping[str, Any],
        reporter: Reporter = NULL_REPORTER,
    ) -> None:
        """Keep `outcome` for the next review of the same builds; never fails the review."""
        from dataops_dev.atomic import write_text_atomic
        from dataops_dev.integrity import signed

        entry = {"format": DIFF_FORMAT, "key": self._key(model, inputs), "outcome": outcome}
        try:
            text = json.dumps(signed(entry, self.key), ensure_ascii=False)
            write_text_atomic(self._path(model), text)
        except Exception as exc:  # noqa: BLE001 - the cache is an optimisation, never a failure
            reporter.message("warning", f"the diff of {model} was not kept for reuse: {exc}")

    def _key(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        # Through JSON, so the stored key and a fresh one compare alike (tuples become lists).
        plain = {"scope": self.scope, "model": model, "inputs": inputs}
        loaded: dict[str, Any] = json.loads(json.dumps(plain, sort_keys=True, default=str))
        return loaded

    def _path(self, model: str) -> Path:
        return self.directory / f"{_digest(model)[:16]}.json"


def diff_cache(
    loaded: LoadedConfig,
    base: tuple[str, Any],
    head: tuple[str, Any],
    *,
    readable: bool,
) -> DiffCache | None:
    """The diff cache of the head environment for the builds `base` and `head` (each an
    environment name and its build record), or None when diffs are neither reused nor kept:
    reuse is off, a side has no build, or the salt is not set. `readable`: see `Lookup.diffs`."""
    if not enabled() or base[1] is None or head[1] is None:
        return None
    key = integrity_key(loaded)
    if key is None:
        return None
    scope = {
        "format": DIFF_FORMAT,
        "tool": _tool_fingerprint(),
        "base": _build_identity(loaded, *base),
        "head": _build_identity(loaded, *head),
    }
    return DiffCache(
        directory=diff_cache_dir(loaded, head[0]), scope=scope, key=key, readable=readable
    )


def diff_cache_dir(loaded: LoadedConfig, environment: str) -> Path:
    """Where the diffs reviewed against `environment` (the head side) are kept."""
    return loaded.state_dir / "reuse" / "diffs" / _digest(environment)[:16]


def _build_identity(loaded: LoadedConfig, environment: str, record: Any) -> dict[str, str]:
    """An environment's build: its record (commit, sample, times, nodes...) and, on DuckDB, its
    database file (a file changed outside a build is another state)."""
    return {
        "environment": environment,
        "build": _digest(json.dumps(as_plain(record), sort_keys=True, default=str)),
        "database": _stamp(loaded.state_dir / "envs" / f"{environment}.duckdb"),
    }


def _read_diff_entry(path: Path, key: IntegrityKey, reporter: Reporter) -> dict[str, Any] | None:
    data = _read_signed(path, key, reporter, "diff")
    return data if data is not None and data.get("format") == DIFF_FORMAT else None
