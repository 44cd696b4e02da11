"""The trust boundary: a branch under review is untrusted input (its author is not the reviewer).

What decides masking (the `masking:` config, `dataops.lock.yml`, dbt `meta`/tags of source
columns, the salt's variable) and where production is (the production target in profiles.yml,
`production.target`, `profile`, `profiles_dir`) is read from the main branch's side (the
merge-base of the main branch and HEAD). A branch's change to any of them is a blocking
finding and takes effect only once merged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from dataops_dev.config import (
    CONFIG_FILE,
    Config,
    LoadedConfig,
    MaskingConfig,
    as_plain,
    load_config,
)
from dataops_dev.errors import DataopsError
from dataops_dev.report.model import (
    ChangeKind,
    Finding,
    FindingKind,
    ModelReport,
    ModelStatus,
    Severity,
)

TRUST_UNIQUE_ID = "trust"
"""The unique_id of the report entry that carries trust findings (not a dbt model)."""
TRUST_MODEL_NAME = "(trust boundary)"
LOCK_FILE = "dataops.lock.yml"
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (ten times faster), else PyYAML's."""
_PII_META_KEYS = ("pii", "sensitive", "masking", "dataops_mask")
_SAFE_TARGET_KEYS = ("type", "path", "host", "port", "dbname", "database", "schema", "user")
"""Profile keys whose values a finding may quote (never passwords, tokens or keyfiles)."""


# --------------------------------------------------------------------------------------------
# The base side: files of the merge-base commit, read from git (nothing is written)


@dataclass(frozen=True)
class BaseTree:
    """The main branch's side of the working tree: files at the merge-base commit."""

    repo_root: Path
    ref: str
    commit: str

    @property
    def label(self) -> str:
        return f"{self.ref}@{self.commit[:8]}"

    def relative(self, path: Path) -> str | None:
        """`path` (in the working tree) relative to the repository, None when outside it."""
        try:
            return path.resolve().relative_to(self.repo_root.resolve()).as_posix()
        except ValueError:
            return None

    def read(self, path: Path) -> str | None:
        """The text of `path` at the base commit, None when the file is not in it."""
        relative = self.relative(path)
        if relative is None:
            return None
        blob = _blob(self.repo_root, self.commit, relative)
        return None if blob is None else blob.decode("utf-8", errors="replace")

    def files(self, directory: Path, suffixes: tuple[str, ...]) -> Iterator[tuple[str, str]]:
        """(path relative to `directory`, text) of files under it at the base commit."""
        import git

        relative = self.relative(directory)
        if relative is None:
            return
        repo = git.Repo(self.repo_root)
        tree = repo.commit(self.commit).tree
        if relative not in ("", "."):
            try:
                tree = tree / relative
            except KeyError:
                return
        for item in tree.traverse():
            if not isinstance(item, git.Blob):
                continue
            inner = Path(str(item.path)).relative_to(relative) if relative != "." else None
            name = (inner or Path(str(item.path))).as_posix()
            if not name.endswith(suffixes) or name.split("/", 1)[0] in _SKIPPED_DIRS:
                continue
            yield name, item.data_stream.read().decode("utf-8", errors="replace")


_SKIPPED_DIRS = ("target", "logs", "dbt_packages", ".dataops")


def _blob(repo_root: Path, commit: str, relative: str) -> bytes | None:
    import git

    repo = git.Repo(repo_root)
    try:
        sha = _ref_sha(repo, commit)
    finally:
        repo.close()
    return None if sha is None else _blob_at(str(repo_root), sha, relative)


def _ref_sha(repo: Any, name: str) -> str | None:
    """The commit sha of a ref, read from the ref files where possible (no git process)."""
    import git
    from git.refs.symbolic import SymbolicReference

    if len(name) == 40 and all(c in "0123456789abcdef" for c in name):
        return name
    for candidate in (name, f"refs/heads/{name}", f"refs/remotes/{name}"):
        try:
            return str(SymbolicReference.dereference_recursive(repo, candidate))
        except (ValueError, OSError, TypeError):
            continue
    try:
        return str(repo.commit(name).hexsha)
    except (git.BadName, ValueError, git.GitCommandError):
        return None


@lru_cache(maxsize=256)
def _blob_at(repo_root: str, sha: str, relative: str) -> bytes | None:
    """A file's bytes at a commit (immutable, so cached for the process)."""
    import git

    repo = git.Repo(repo_root)
    try:
        item = repo.commit(sha).tree / relative
    except KeyError:
        return None
    else:
        if not isinstance(item, git.Blob):
            return None
        data: bytes = item.data_stream.read()
        return data
    finally:
        repo.close()


@lru_cache(maxsize=64)
def _merge_base(repo_root: str, a: str, b: str) -> str | None:
    """The merge-base of two commits (immutable, so cached for the process)."""
    import git

    repo = git.Repo(repo_root)
    try:
        bases = repo.merge_base(a, b)
    except git.GitCommandError:
        return None
    finally:
        repo.close()
    return str(bases[0].hexsha) if bases else None


_DEFAULT_BRANCHES = ("main", "master")


def _default_branch(repo: Any) -> str | None:
    """The repository's default branch: origin's HEAD, else a local `main` or `master`."""
    from git.refs.symbolic import SymbolicReference

    try:
        target = SymbolicReference(repo, "refs/remotes/origin/HEAD").reference.path
        return str(target).removeprefix("refs/remotes/origin/")
    except (ValueError, OSError, TypeError):
        pass
    for name in _DEFAULT_BRANCHES:
        if _ref_sha(repo, name) is not None:
            return name
    return None


def trusted_main_branch(loaded: LoadedConfig, repo: Any) -> str:
    """`production.main_branch` as the default branch's own config says it, when the value
    comes from a file a branch can edit (a branch naming itself main would guard nothing)."""
    configured = loaded.config.production.main_branch
    origin = loaded.provenance.get("production.main_branch", "default")
    if origin.startswith(("env ", "flag")):
        return configured  # the reviewer's own setting
    default = _default_branch(repo)
    if default is None:
        return configured
    sha = _ref_sha(repo, default) or _ref_sha(repo, f"origin/{default}")
    if sha is None:
        return configured
    root = Path(str(repo.working_tree_dir))
    tree = BaseTree(repo_root=root, ref=default, commit=sha)
    try:
        base = base_loaded(loaded, tree)
    except DataopsError:
        return default
    return base.config.production.main_branch


@contextlib.contextmanager
def _repository(loaded: LoadedConfig) -> Iterator[Any]:
    """The project's git repository (closed afterwards), or None outside git."""
    import git

    try:
        repo = git.Repo(loaded.project_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        yield None
        return
    try:
        yield repo
    finally:
        repo.close()


def base_tree(loaded: LoadedConfig, base_ref: str | None = None) -> BaseTree | None:
    """The main branch's side of HEAD, or None when there is no untrusted side to guard:
    not a git repository, no main branch, or HEAD is the main branch itself."""
    with _repository(loaded) as repo:
        return None if repo is None else _base_tree(loaded, repo, base_ref)


def _base_tree(loaded: LoadedConfig, repo: Any, base_ref: str | None) -> BaseTree | None:
    head = _ref_sha(repo, "HEAD")
    if head is None:
        return None  # no commits yet
    try:
        branch: str | None = repo.active_branch.name
    except TypeError:
        branch = None  # detached HEAD (CI): the PR's code, untrusted like any branch
    main = base_ref or trusted_main_branch(loaded, repo)
    if base_ref is None and branch == main:
        return None
    root = Path(str(repo.working_tree_dir))
    for ref in (main, f"origin/{main}"):
        ref_sha = _ref_sha(repo, ref)
        if ref_sha is None:
            continue
        commit = _merge_base(str(root), ref_sha, head)
        if commit is not None:
            return BaseTree(repo_root=root, ref=ref, commit=commit)
    return None


# --------------------------------------------------------------------------------------------
# The base's configuration


def _config_file(loaded: LoadedConfig) -> Path:
    """The working tree's config file, or where the base would have it."""
    if loaded.source != "defaults":
        return Path(loaded.source.split(" [", 1)[0])
    return loaded.project_dir / CONFIG_FILE


def base_loaded(loaded: LoadedConfig, tree: BaseTree) -> LoadedConfig:
    """The configuration as the base commit has it, for this working tree's project.

    Environment overrides (`DATAOPS_DEV_*`) are the reviewer's and apply as usual; the file's
    content is the base's (defaults when the base has none).
    """
    path = _config_file(loaded)
    text = tree.read(path)
    if text is None:
        config = Config()
        config = dataclasses.replace(config, project_dir=str(loaded.project_dir))
        return LoadedConfig(config, loaded.root, f"{tree.label} (no config file)", {})
    with tempfile.TemporaryDirectory(prefix="dataops-base-config-") as scratch:
        copy = Path(scratch) / path.name
        copy.write_text(text, encoding="utf-8")
        parsed = load_config(config_file=copy, project_dir=loaded.project_dir)
    return LoadedConfig(
        config=parsed.config,
        root=path.parent,
        source=f"{tree.label}:{tree.relative(path)}",
        provenance=parsed.provenance,
    )


# --------------------------------------------------------------------------------------------
# Masking policy


@dataclass(frozen=True)
class MaskingPolicy:
    """Everything a column's masking decision depends on, as one side has it."""

    label: str
    """Where it came from: `working tree` or `main@<sha>`."""
    masking: MaskingConfig
    lock: Mapping[str, Any] | None
    meta: Mapping[str, tuple[Mapping[str, Any], tuple[str, ...]]] | None = None
    """`source.table.column` -> (meta, tags); None: from the parsed manifest."""
    salt_env: str = "DATAOPS_SALT"

    def fingerprint(self) -> str:
        import hashlib

        data = {
            "masking": as_plain(self.masking),
            "lock": (self.lock or {}).get("columns") or {},
            "meta": {k: [dict(v[0]), list(v[1])] for k, v in sorted((self.meta or {}).items())},
            "salt_env": self.salt_env,
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse_lock(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {"columns": {}}  # an unreadable base lock confirms nothing
    return data if isinstance(data, dict) else None


def _lock_file(loaded: LoadedConfig) -> Path:
    from dataops_dev.sources import lock_path

    return lock_path(loaded)


def source_column_meta(
    files: Iterator[tuple[str, str]],
) -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
    """`source.table.column` -> (meta, tags) declared in the `sources:` of dbt YAML files."""
    found: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
    for _name, text in files:
        if "sources" not in text:  # most schema files declare models only
            continue
        try:
            data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
            continue
        for source in data["sources"]:
            if not isinstance(source, dict):
                continue
            for table in source.get("tables") or ():
                if not isinstance(table, dict):
                    continue
                for column in table.get("columns") or ():
                    if not isinstance(column, dict) or "name" not in column:
                        continue
                    config = column.get("config")
                    config = config if isinstance(config, dict) else {}
                    meta = {**(column.get("meta") or {}), **(config.get("meta") or {})}
                    tags = tuple(
                        str(t) for t in [*(column.get("tags") or ()), *(config.get("tags") or ())]
                    )
                    key = f"{source.get('name')}.{table.get('name')}.{column['name']}"
                    found[key] = (meta if isinstance(meta, dict) else {}, tags)
    return found


def _working_files(directory: Path, suffixes: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for suffix in suffixes:
        for path in sorted(directory.rglob(f"*{suffix}")):
            parts = path.relative_to(directory).parts
            if parts[0] in _SKIPPED_DIRS or any(p.startswith(".") for p in parts):
                continue
            yield path.relative_to(directory).as_posix(), path.read_text("utf-8", "replace")


def working_policy(loaded: LoadedConfig) -> MaskingPolicy:
    """The working tree's masking policy (meta from the parsed manifest)."""
    from dataops_dev.sources import read_lock

    return MaskingPolicy(
        label="working tree",
        masking=loaded.config.masking,
        lock=read_lock(loaded),
        meta=None,
        salt_env=loaded.config.sample.salt_env,
    )


def base_policy(loaded: LoadedConfig, tree: BaseTree) -> MaskingPolicy:
    """The base commit's masking policy: its config, lock file and source column meta.

    Read once per process for each commit (a review asks for it three times): it is made of
    committed files, named by the commit, and of the `DATAOPS_DEV_*` overrides."""
    overrides = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("DATAOPS_DEV_")))
    key = (tree, loaded.project_dir, _lock_file(loaded), overrides)
    policy = _BASE_POLICIES.get(key)
    if policy is None:
        base = base_loaded(loaded, tree)
        policy = MaskingPolicy(
            label=tree.label,
            masking=base.config.masking,
            lock=_parse_lock(tree.read(_lock_file(loaded))),
            meta=source_column_meta(tree.files(loaded.project_dir, (".yml", ".yaml"))),
            salt_env=base.config.sample.salt_env,
        )
        _BASE_POLICIES[key] = policy
    return policy


_BASE_POLICIES: dict[tuple[Any, ...], MaskingPolicy] = {}


@dataclass(frozen=True)
class SamplePolicy:
    """The masking policies a sample is built from: every column gets the stricter decision."""

    working: MaskingPolicy
    base: MaskingPolicy | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    committed: str | None = None
    """On the main branch: the fingerprint of its committed policy (what a branch's `base`
    would be), so a branch that changes no policy reuses main's sample instead of rebuilding."""

    @property
    def salt_env(self) -> str:
        """The salt comes from the base's variable: a branch cannot point it at a known value."""
        return self.base.salt_env if self.base is not None else self.working.salt_env

    @property
    def label(self) -> str:
        if self.base is None:
            return "working tree"
        return f"stricter of {self.base.label} and the working tree"

    def fingerprint(self) -> str:
        base = self.base.fingerprint() if self.base is not None else (self.committed or "-")
        return f"{base}:{self.salt_env}"


def sample_policy(loaded: LoadedConfig, base_ref: str | None = None) -> SamplePolicy:
    """The policy `sample` (and `review`) build the sample with: on a branch, the stricter of the
    main branch's and the working tree's; on the main branch (or without one), the working
    tree's."""
    working = working_policy(loaded)
    tree = base_tree(loaded, base_ref)
    if tree is None:
        head = _head_tree(loaded)
        committed = base_policy(loaded, head).fingerprint() if head is not None else None
        return SamplePolicy(working=working, committed=committed)
    return SamplePolicy(working=working, base=base_policy(loaded, tree))


def _head_tree(loaded: LoadedConfig) -> BaseTree | None:
    """HEAD's committed files (on the main branch), or None outside git or before a commit."""
    with _repository(loaded) as repo:
        head = None if repo is None else _ref_sha(repo, "HEAD")
        if head is None:
            return None
        return BaseTree(repo_root=Path(str(repo.working_tree_dir)), ref="HEAD", commit=head)


# --------------------------------------------------------------------------------------------
# Production


def production_output(loaded: LoadedConfig) -> dict[str, Any]:
    """The production target's rendered profile output, resolved from the main branch's side.

    On a branch, the base commit's config names the target, profile and profiles directory, and
    a profiles.yml tracked in the repository is read as the base has it; a profiles.yml outside
    the repository (~/.dbt, DBT_PROFILES_DIR) is not the branch's to change.
    """
    from dataops_dev.dbt.project import working_tree_target

    tree = base_tree(loaded)
    if tree is None:
        return working_tree_target(loaded)
    base = base_loaded(loaded, tree)
    profiles = _base_profiles_file(loaded, base, tree)
    if profiles is None:
        return working_tree_target(base)
    text, where = profiles
    return working_tree_target(base, profiles_text=text, profiles_where=where)


def _base_profiles_file(
    loaded: LoadedConfig, base: LoadedConfig, tree: BaseTree
) -> tuple[str, str] | None:
    """(text, label) of profiles.yml at the base commit when the base keeps it in the repository;
    None when profiles.yml lives outside it (read from disk as usual)."""
    if base.config.profiles_dir:
        directory = (base.root / base.config.profiles_dir).resolve()
    else:
        directory = base.project_dir
    candidate = directory / "profiles.yml"
    if tree.relative(candidate) is None:
        return None
    text = tree.read(candidate)
    if text is not None:
        return text, f"{tree.label}:{tree.relative(candidate)}"
    if base.config.profiles_dir:
        # The base names a directory in the repository that holds no profiles.yml at the base.
        return "", f"{tree.label}:{tree.relative(candidate)}"
    if candidate.exists() and _tracked_at_head(tree, candidate):
        # The branch added a project profiles.yml: the base reads ~/.dbt (or DBT_PROFILES_DIR).
        outside = _outside_profiles()
        text = outside.read_text(encoding="utf-8") if outside.is_file() else ""
        return text, str(outside)
    return None  # untracked (a local file) or absent: not the branch's to change


def _tracked_at_head(tree: BaseTree, path: Path) -> bool:
    relative = tree.relative(path)
    return relative is not None and _blob(tree.repo_root, "HEAD", relative) is not None


def _outside_profiles() -> Path:
    env_dir = os.environ.get("DBT_PROFILES_DIR")
    directory = Path(env_dir).expanduser().resolve() if env_dir else Path.home() / ".dbt"
    return directory / "profiles.yml"


# --------------------------------------------------------------------------------------------
# Findings: what the branch changes across the boundary


def _finding(
    kind: FindingKind,
    title: str,
    detail: str,
    *parts: Any,
    severity: Severity = Severity.BLOCKING,
) -> Finding:
    from dataops_dev.decisions import fingerprint

    return Finding(
        fingerprint=fingerprint(kind.value, *parts),
        kind=kind,
        severity=severity,
        model=TRUST_MODEL_NAME,
        title=title,
        detail=detail,
    )


def _pii_declaration(entry: tuple[Mapping[str, Any], tuple[str, ...]] | None) -> dict[str, Any]:
    if entry is None:
        return {}
    meta, tags = entry
    declared: dict[str, Any] = {k: meta[k] for k in _PII_META_KEYS if k in meta}
    pii_tags = sorted(
        t for t in tags if t.lower() in ("pii", "sensitive") or t.lower().startswith("pii:")
    )
    if pii_tags:
        declared["tags"] = pii_tags
    return declared


def masking_findings(loaded: LoadedConfig, tree: BaseTree) -> list[Finding]:
    """Blocking findings for the branch's changes to PII meta, the lock file, the masking
    config and the salt's variable (compared with the base commit)."""
    base = base_policy(loaded, tree)
    from dataops_dev.sources import read_lock

    head_meta = source_column_meta(_working_files(loaded.project_dir, (".yml", ".yaml")))
    findings: list[Finding] = []
    base_meta = base.meta or {}
    for column in sorted(set(base_meta) | set(head_meta)):
        before = _pii_declaration(base_meta.get(column))
        after = _pii_declaration(head_meta.get(column))
        if before != after and (before or after):
            detail = f"{_show(before)} -> {_show(after)}"
            findings.append(
                _finding(
                    FindingKind.MASKING_POLICY_CHANGED,
                    f"the branch changes the PII declaration of {column}",
                    f"dbt meta/tags {detail}; the sample keeps {tree.label}'s masking until merged",
                    "meta",
                    column,
                    detail,
                )
            )
    head_lock = ((read_lock(loaded) or {}).get("columns")) or {}
    base_lock = ((base.lock or {}).get("columns")) or {}
    lock_name = tree.relative(_lock_file(loaded)) or LOCK_FILE
    if base.lock is None and head_lock:
        # First adoption (`init` on a branch): main has no lock file to weaken, and until the
        # merge the sample masks every column by the stricter of the lock and main's defaults.
        # The reviewer still has to read the proposal, so it is reported, without blocking.
        findings.append(
            _finding(
                FindingKind.MASKING_POLICY_CHANGED,
                f"the branch adds {lock_name} ({len(head_lock)} column decisions; "
                f"{tree.label} has none)",
                "review its masking decisions before merging: they decide masking once merged; "
                f"until then the sample masks by the stricter of them and {tree.label}'s defaults",
                "lock-added",
                sorted(head_lock),
                severity=Severity.WARNING,
            )
        )
        head_lock = {}
    for column in sorted(set(base_lock) | set(head_lock)):
        rule_before, rule_after = (
            _lock_rule(base_lock.get(column)),
            _lock_rule(head_lock.get(column)),
        )
        if rule_before != rule_after:
            detail = f"{rule_before or '(absent)'} -> {rule_after or '(absent)'}"
            findings.append(
                _finding(
                    FindingKind.MASKING_POLICY_CHANGED,
                    f"the branch changes {lock_name} for {column}",
                    f"{detail}; the sample keeps {tree.label}'s masking until merged",
                    "lock",
                    column,
                    detail,
                )
            )
    changes = _dict_changes(
        {"masking": as_plain(base.masking), "sample.salt_env": base.salt_env},
        {
            "masking": as_plain(loaded.config.masking),
            "sample.salt_env": loaded.config.sample.salt_env,
        },
    )
    for key, (before, after) in changes.items():
        detail = f"{_show(before)} -> {_show(after)}"
        findings.append(
            _finding(
                FindingKind.MASKING_POLICY_CHANGED,
                f"the branch changes the masking config `{key}`",
                f"{detail}; the sample keeps {tree.label}'s setting until merged",
                "config",
                key,
                detail,
            )
        )
    return findings


def _lock_rule(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return None if entry is None else repr(entry)
    options = entry.get("options") or {}
    text = str(entry.get("transformer", "passthrough"))
    if options:
        text += "(" + ", ".join(f"{k}={v}" for k, v in sorted(dict(options).items())) + ")"
    return text


def _dict_changes(before: Any, after: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(before) | set(after), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_dict_changes(before.get(key), after.get(key), name))
        return out
    return {} if before == after else {prefix: (before, after)}


def _show(value: Any) -> str:
    if value in (None, {}):
        return "(none)"
    return json.dumps(value, sort_keys=True, default=str)


def production_findings(loaded: LoadedConfig, tree: BaseTree) -> list[Finding]:
    """A blocking finding when the branch's production target differs from the base's."""
    from dataops_dev.dbt.project import working_tree_target

    try:
        base = production_output(loaded)
    except DataopsError:
        return []  # the base names no usable production: `sample`/`deploy` say so themselves
    try:
        head: dict[str, Any] | None = working_tree_target(loaded)
    except DataopsError as exc:
        head = None
        reason = exc.message
    if head is not None and _comparable(loaded, head) == _comparable(loaded, base):
        return []
    if head is None:
        detail = f"the branch's production target cannot be resolved ({reason})"
        parts: tuple[Any, ...] = ("unresolvable",)
    else:
        changed = _dict_changes(_comparable(loaded, base), _comparable(loaded, head))
        shown = []
        for key, (before, after) in changed.items():
            if key.split(".", 1)[0] in _SAFE_TARGET_KEYS or key in ("_target_name", "_file"):
                shown.append(f"{key}: {_show(before)} -> {_show(after)}")
            else:
                shown.append(f"{key}: changed")
        detail = "; ".join(shown)
        parts = tuple(sorted(changed))
    return [
        _finding(
            FindingKind.PRODUCTION_TARGET_CHANGED,
            "the branch changes where production is",
            f"{detail}. sample and deploy keep using {tree.label}'s production target",
            *parts,
            detail,
        )
    ]


def _comparable(loaded: LoadedConfig, output: Mapping[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in output.items() if k != "threads"}
    if output.get("type") == "duckdb" and output.get("path") not in (None, "", ":memory:"):
        from dataops_dev.dbt.project import duckdb_path

        data["_file"] = str(duckdb_path(loaded, output))
    return data


def main_branch_findings(loaded: LoadedConfig, tree: BaseTree) -> list[Finding]:
    """Blocking findings when the branch renames the main branch (which decides what is base) or
    points `production.manifest` (what deploy defers to and drops from) elsewhere."""
    base = base_loaded(loaded, tree).config.production
    head = loaded.config.production
    findings = []
    for key, before, after, title in (
        ("main_branch", base.main_branch, head.main_branch, "which branch is production's code"),
        ("manifest", base.manifest, head.manifest, "which manifest is production's"),
    ):
        if before == after:
            continue
        detail = f"production.{key}: {_show(before)} -> {_show(after)}"
        findings.append(
            _finding(
                FindingKind.PRODUCTION_TARGET_CHANGED,
                f"the branch changes {title}",
                f"{detail}; {tree.label}'s setting stays in force until merged",
                key,
                detail,
            )
        )
    return findings


def trust_findings(loaded: LoadedConfig, base_ref: str | None = None) -> tuple[Finding, ...]:
    """Every blocking finding for what the branch changes across the trust boundary."""
    tree = base_tree(loaded, base_ref)
    if tree is None:
        return ()
    return (
        *masking_findings(loaded, tree),
        *production_findings(loaded, tree),
        *main_branch_findings(loaded, tree),
    )


def trust_model_report(loaded: LoadedConfig, base_ref: str | None = None) -> ModelReport | None:
    """The report entry carrying the trust findings (a pseudo-model, like the build's), or None
    when the branch changes nothing across the boundary."""

    findings = trust_findings(loaded, base_ref)
    if not findings:
        return None
    return ModelReport(
        name=TRUST_MODEL_NAME,
        unique_id=TRUST_UNIQUE_ID,
        status=ModelStatus.MODIFIED,
        change=ChangeKind.UNKNOWN,
        reasons=("the branch changes what decides masking or where production is",),
        findings=findings,
    )


__all__ = (
    "TRUST_MODEL_NAME",
    "TRUST_UNIQUE_ID",
    "BaseTree",
    "MaskingPolicy",
    "SamplePolicy",
    "base_loaded",
    "base_policy",
    "base_tree",
    "main_branch_findings",
    "masking_findings",
    "production_findings",
    "production_output",
    "sample_policy",
    "source_column_meta",
    "trust_findings",
    "trust_model_report",
    "trusted_main_branch",
    "working_policy",
)
