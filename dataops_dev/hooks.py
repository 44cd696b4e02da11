"""Pre-commit checks for dbt projects, without dbt or a database: SQL renders and parses, breaking
changes to guarded models are acknowledged, changed models have keys and tests; plus `review`.

Each check takes the staged files (paths as pre-commit passes them), finds the dbt project(s)
above them, and returns a `HookResult`; the CLI (`dataops-dev hook ...`) formats it.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataops_dev.errors import DataopsError, ProjectError
from dataops_dev.reporting import NULL_REPORTER, Reporter

if TYPE_CHECKING:
    from dataops_dev.config import LoadedConfig
    from dataops_dev.dbt.manifest import Manifest
    from dataops_dev.dbt.project import DbtProject
    from dataops_dev.impact import ImpactReport, ModelChange
    from dataops_dev.report.model import Finding


class HookId(str, Enum):
    SQL_CHECK = "sql-check"
    IMPACT_GUARD = "impact-guard"
    KEYS = "keys-and-tests"
    REVIEW = "review"


@dataclass(frozen=True)
class HookProblem:
    """One message of a hook, located in a file (`path:line:col: message`)."""

    path: str
    """As the user sees it: relative to the working directory when under it."""
    line: int
    column: int
    message: str
    snippet: str = ""
    model: str | None = None
    details: tuple[str, ...] = ()
    """Further lines: impacted downstream models, columns, exposures."""
    hint: str = ""
    """The command to run next."""
    fingerprint: str | None = None
    acknowledged_by: str | None = None
    """Why it does not fail: `approved by NAME` or `hooks.allow_breaking`."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "snippet": self.snippet,
            "model": self.model,
            "details": list(self.details),
            "hint": self.hint,
            "fingerprint": self.fingerprint,
            "acknowledged_by": self.acknowledged_by,
        }


@dataclass(frozen=True)
class HookResult:
    hook: HookId
    problems: tuple[HookProblem, ...] = ()
    """What fails the hook."""
    acknowledged: tuple[HookProblem, ...] = ()
    """Guarded changes let through by an approval or a config allowance (shown, not failing)."""
    skipped: tuple[HookProblem, ...] = ()
    """Models the static checks cannot judge (package macros, `run_query`): not failing."""
    projects: tuple[str, ...] = ()
    checked_models: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """One-line messages for stderr: a check that could not run and the command that enables it."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook.value,
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "acknowledged": [p.to_dict() for p in self.acknowledged],
            "skipped": [p.to_dict() for p in self.skipped],
            "projects": list(self.projects),
            "checked_models": list(self.checked_models),
            "notes": list(self.notes),
        }


def _merge(hook: HookId, results: Iterable[HookResult]) -> HookResult:
    problems: list[HookProblem] = []
    acknowledged: list[HookProblem] = []
    skipped: list[HookProblem] = []
    projects: list[str] = []
    models: list[str] = []
    notes: list[str] = []
    for result in results:
        problems.extend(result.problems)
        acknowledged.extend(result.acknowledged)
        skipped.extend(result.skipped)
        projects.extend(result.projects)
        models.extend(result.checked_models)
        notes.extend(result.notes)
    return HookResult(
        hook,
        tuple(problems),
        tuple(acknowledged),
        tuple(skipped),
        tuple(projects),
        tuple(models),
        tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Projects and their files


def find_project_dir(path: Path) -> Path | None:
    """The nearest directory at or above `path` with a dbt_project.yml (not past the repo root)."""
    directory = path if path.is_dir() else path.parent
    for candidate in (directory, *directory.parents):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
        if (candidate / ".git").exists():
            return None
    return None


def group_by_project(files: Iterable[Path]) -> dict[Path, list[Path]]:
    """Absolute files grouped under the dbt project that holds them (others are dropped)."""
    groups: dict[Path, list[Path]] = {}
    seen: dict[Path, Path | None] = {}
    for file in files:
        absolute = file.resolve()
        directory = absolute.parent
        if directory not in seen:
            seen[directory] = find_project_dir(directory)
        project = seen[directory]
        if project is not None:
            groups.setdefault(project, []).append(absolute)
    return groups


def load_project_config(
    project_dir: Path,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedConfig:
    """The config that applies to `project_dir` (nearest dataops_dev.yml at or above it)."""
    from dataops_dev.config import load_config

    loaded = load_config(start=project_dir, config_file=config_file, overrides=overrides)
    if loaded.project_dir != project_dir.resolve():
        # A config above a monorepo's several projects: it applies to the project at hand.
        loaded = load_config(
            start=project_dir, config_file=config_file, project_dir=project_dir, overrides=overrides
        )
    return loaded


@dataclass(frozen=True)
class SchemaEntry:
    """A model's entry in a schema YAML file of the working tree."""

    name: str
    path: Path
    line: int
    data: Mapping[str, Any]


@dataclass
class ProjectFiles:
    """What the hooks need to know about one dbt project's working tree (read once)."""

    loaded: LoadedConfig
    project: DbtProject
    model_files: dict[str, Path] = field(default_factory=dict)
    """Model name -> its .sql/.py file (absolute)."""
    _yaml_files: list[Path] | None = None
    _texts: dict[Path, str] = field(default_factory=dict)
    _parsed: dict[Path, tuple[list[SchemaEntry], list[Mapping[str, Any]]]] = field(
        default_factory=dict
    )

    @classmethod
    def read(cls, loaded: LoadedConfig) -> ProjectFiles:
        from dataops_dev.dbt.project import read_project

        project = read_project(loaded.project_dir)
        files = cls(loaded, project)
        for folder in project.model_paths:
            base = loaded.project_dir / folder
            for root, _dirs, names in os.walk(base):
                for filename in names:
                    if filename.endswith((".sql", ".py")):
                        files.model_files[filename.rsplit(".", 1)[0]] = Path(root) / filename
        return files

    @property
    def project_dir(self) -> Path:
        return self.loaded.project_dir

    def ref_names(self) -> list[str]:
        """What `ref()` can name in the working tree: models, seeds and snapshots (without a
        base manifest, on a fresh clone, the renderer knows nothing else)."""
        import re

        names = list(self.model_files)
        for folder in self.project.seed_paths:
            base = self.project_dir / folder
            names.extend(p.stem for p in sorted(base.rglob("*.csv")) if base.is_dir())
        block = re.compile(r"{%-?\s*snapshot\s+([A-Za-z_][A-Za-z_0-9]*)")
        folders = self.project.raw.get("snapshot-paths") or ("snapshots",)
        for folder in folders if isinstance(folders, list | tuple) else ():
            base = self.project_dir / str(folder)
            for path in sorted(base.rglob("*")) if base.is_dir() else ():
                if path.suffix == ".sql":
                    names.extend(block.findall(path.read_text(encoding="utf-8")))
                elif path.suffix in (".yml", ".yaml"):
                    names.extend(_snapshot_entries(path))
        return list(dict.fromkeys(names))

    def is_under(self, path: Path, folders: Iterable[str]) -> bool:
        for folder in folders:
            base = (self.project_dir / folder).resolve()
            if path == base or base in path.parents:
                return True
        return False

    # Schema YAML is parsed file by file, only where the text names what is asked for: a
    # 500-model project's YAML takes longer to parse than the whole check otherwise.

    def yaml_files(self) -> list[Path]:
        if self._yaml_files is None:
            found: list[Path] = []
            for folder in self.project.model_paths:
                base = self.project_dir / folder
                if base.is_dir():
                    found.extend(sorted([*base.rglob("*.yml"), *base.rglob("*.yaml")]))
            self._yaml_files = found
        return self._yaml_files

    def _text(self, path: Path) -> str:
        if path not in self._texts:
            self._texts[path] = path.read_text(encoding="utf-8")
        return self._texts[path]

    def parse(self, path: Path) -> tuple[list[SchemaEntry], list[Mapping[str, Any]]]:
        """(model entries, source entries) of one schema YAML file."""
        if path not in self._parsed:
            self._parsed[path] = _read_schema_file(path, self._text(path))
        return self._parsed[path]

    def entry(self, name: str) -> SchemaEntry | None:
        """The model's entry in the working tree's schema YAML (the last one wins, as in dbt)."""
        found = None
        for path in self.yaml_files():
            if name in self._text(path):
                for entry in self.parse(path)[0]:
                    if entry.name == name:
                        found = entry
        return found

    @property
    def schema(self) -> dict[str, SchemaEntry]:
        """Every model entry (parses all schema YAML)."""
        return {e.name: e for path in self.yaml_files() for e in self.parse(path)[0]}

    @property
    def sources(self) -> list[Mapping[str, Any]]:
        return [
            source
            for path in self.yaml_files()
            if "sources" in self._text(path)
            for source in self.parse(path)[1]
        ]

    def models_of(self, files: Iterable[Path], *, since_head: bool = True) -> list[str]:
        """Models the given files define or describe (a YAML file: the entries that differ
        from HEAD's version of it, or all of them when it is new or git is unavailable)."""
        names: list[str] = []
        by_path = {p: n for n, p in self.model_files.items()}
        for file in files:
            if file in by_path and self.is_under(file, self.project.model_paths):
                names.append(by_path[file])
            elif file.suffix in (".yml", ".yaml") and self.is_under(file, self.project.model_paths):
                entries = {e.name: e for e in self.parse(file)[0]}
                changed = _changed_entries(file, entries) if since_head else None
                names.extend(list(entries) if changed is None else changed)
        return list(dict.fromkeys(n for n in names))


def _read_schema_file(path: Path, text: str) -> tuple[list[SchemaEntry], list[Mapping[str, Any]]]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        return [], []
    entries = []
    lines = _name_lines(text)
    for entry in data.get("models") or ():
        if isinstance(entry, Mapping) and entry.get("name"):
            name = str(entry["name"])
            entries.append(SchemaEntry(name, path.resolve(), lines.get(name, 1), entry))
    sources = [s for s in data.get("sources") or () if isinstance(s, Mapping)]
    return entries, sources


def _snapshot_entries(path: Path) -> list[str]:
    """Names of the snapshots a YAML file defines (dbt 1.9's `snapshots:` with a `relation`)."""
    import yaml

    try:
        data = yaml.load(
            path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    entries = data.get("snapshots") if isinstance(data, Mapping) else None
    return [
        str(e["name"])
        for e in entries or ()
        if isinstance(e, Mapping) and e.get("name") and e.get("relation")
    ]


def _name_lines(text: str) -> dict[str, int]:
    """`name: X` -> the line of its first occurrence (a model's entry precedes its columns)."""
    import re

    lines: dict[str, int] = {}
    for match in re.finditer(r"^[ \t-]*name:[ \t]*['\"]?([^'\"\n#]+?)['\"]?[ \t]*$", text, re.M):
        lines.setdefault(match.group(1), text.count("\n", 0, match.start()) + 1)
    return lines


def _changed_entries(path: Path, entries: Mapping[str, SchemaEntry]) -> list[str] | None:
    """Entries of `path` that differ from the HEAD commit's version (None: unknown)."""
    import yaml

    try:
        result = subprocess.run(
            ["git", "show", f"HEAD:./{path.name}"],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    try:
        old = yaml.load(result.stdout, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}  # noqa: S506
    except yaml.YAMLError:
        return None
    before = {
        str(e["name"]): e
        for e in (old.get("models") or () if isinstance(old, Mapping) else ())
        if isinstance(e, Mapping) and e.get("name")
    }
    return [n for n, e in entries.items() if before.get(n) != e.data]


def display_path(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


# --------------------------------------------------------------------------------------------
# Dialect, manifest


def project_adapter(loaded: LoadedConfig, manifest: Manifest | None = None) -> str | None:
    """The dbt adapter type: the production target in profiles.yml, else the profile's default
    target, else the production manifest's; None when nothing says."""
    from dataops_dev.dbt.project import load_profile, working_tree_target

    try:
        # The working tree's profile: only the SQL dialect is wanted (no git, kept fast).
        return str(working_tree_target(loaded).get("type") or "") or None
    except DataopsError:
        pass
    try:
        _, profile = load_profile(loaded)
        default = profile.get("target")
        output = profile["outputs"].get(default) if default else None
        if isinstance(output, Mapping) and output.get("type"):
            return str(output["type"])
    except DataopsError:
        pass
    if manifest is not None:
        adapter = (manifest.data.get("metadata") or {}).get("adapter_type")
        return str(adapter) if adapter else None
    return None


def project_dialect(loaded: LoadedConfig, adapter: str | None) -> str | None:
    from dataops_dev.lineage import ADAPTER_DIALECTS

    if loaded.config.hooks.dialect:
        return loaded.config.hooks.dialect
    if adapter is None:
        return None
    return ADAPTER_DIALECTS.get(adapter, adapter)


@dataclass(frozen=True)
class HookBase:
    """What the impact guard compares the working tree with."""

    manifest: Path
    code_dir: Path | None
    """The base's project files (main's exported tree), when they are at hand."""
    origin: str


def _git_ref(project_dir: Path, ref: str) -> tuple[str, str, str] | None:
    """(commit, git tree id of `project_dir`, its folder in the repository) of `ref`, by one
    `git rev-parse` (not GitPython: the fast hooks stay light); None without git or the ref."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--show-prefix", f"{ref}^{{commit}}", f"{ref}^{{commit}}:./"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != 3:
        return None
    prefix, commit, tree = lines
    return commit, tree, prefix


def hook_base(loaded: LoadedConfig, explicit: Path | None = None) -> HookBase | None:
    """The base the impact guard compares with, found without dbt, a database or GitPython:
    `--base-manifest`, `production.manifest`, `<state_dir>/production/manifest.json`, the
    baseline `review` built for the main branch's commit, or the main branch's manifest that
    `dataops-dev impact` parsed and cached. None when nothing was prepared yet (a fresh clone).

    A misconfigured `production.manifest` is an error (the user named a file that is gone)."""
    from dataops_dev.impact import find_base_manifest

    configured = loaded.config.production.manifest
    production = loaded.state_dir / "production" / "manifest.json"
    if explicit is not None or configured or production.is_file():
        return HookBase(find_base_manifest(loaded, explicit), None, "production manifest")
    main = loaded.config.production.main_branch
    found = _git_ref(loaded.project_dir, main)
    if found is None:
        return None
    commit, tree, prefix = found
    code_dir = loaded.state_dir / "code" / commit[:12] / prefix.strip("/")
    baseline = loaded.state_dir / "envs" / f"base_{commit[:12]}" / "target" / "manifest.json"
    if baseline.is_file():
        exported = code_dir if (code_dir / "dbt_project.yml").is_file() else None
        return HookBase(baseline, exported, f"{main} at {commit[:12]}, review's baseline")
    from dataops_dev.dbt.parse import cached_base_manifest

    parsed = cached_base_manifest(loaded, commit, tree, prefix)
    if parsed is None:
        return None
    return HookBase(parsed.path, parsed.code_dir, f"{main} at {commit[:12]}, parsed and cached")


def _production_manifest(loaded: LoadedConfig) -> Path | None:
    """The base manifest when one is at hand (the SQL check only uses it for relation names)."""
    try:
        base = hook_base(loaded)
    except ProjectError:
        return None
    return base.manifest if base is not None else None


def enable_command(loaded: LoadedConfig, cwd: Path) -> str:
    """The command that prepares the impact guard's base on a fresh clone."""
    main = loaded.config.production.main_branch
    return f"{cli_command(loaded.project_dir, cwd)} impact --base {main}"


def _other_default_branch(project_dir: Path, main: str) -> str | None:
    """The repository's default branch when `main` (production.main_branch) does not exist
    but another does (a `master` repository): what the config should name. Plain git."""
    if _git_ref(project_dir, main) is not None:
        return None

    def git(*args: str) -> str | None:
        try:
            run = subprocess.run(
                ["git", *args], cwd=project_dir, capture_output=True, text=True, check=False
            )
        except OSError:
            return None
        return run.stdout.strip() if run.returncode == 0 and run.stdout.strip() else None

    remote = git("symbolic-ref", "--short", "refs/remotes/origin/HEAD")
    if remote is not None:
        return remote.split("/", 1)[-1]
    for name in ("main", "master"):
        if name != main and git("rev-parse", "--verify", "-q", f"refs/heads/{name}"):
            return name
    return None


# --------------------------------------------------------------------------------------------
# SQL check


def sql_check(
    loaded: LoadedConfig, files: Sequence[Path], *, cwd: Path | None = None
) -> HookResult:
    """Each model among `files` (and each model using a macro defined in a changed macro file)
    renders with the light Jinja renderer and parses with sqlglot in the project's dialect."""
    from dataops_dev.dbt.render import RenderError
    from dataops_dev.hooks_sql import check_model_sql, renderer_for, yaml_sources

    cwd = cwd or Path.cwd()
    tree = ProjectFiles.read(loaded)
    models = [m for m in tree.models_of(files, since_head=False) if m in tree.model_files]
    models = [m for m in models if tree.model_files[m].suffix == ".sql"]
    macro_files = [
        f for f in files if f.suffix == ".sql" and tree.is_under(f, tree.project.macro_paths)
    ]
    if macro_files:
        models.extend(m for m in _models_using_macros(tree, macro_files) if m not in models)
    if not models:
        return HookResult(HookId.SQL_CHECK, projects=(str(loaded.project_dir),))
    # The production manifest only improves relation names; the check works without it.
    manifest = None
    manifest_path = _production_manifest(loaded)
    if manifest_path is not None:
        from dataops_dev.dbt.manifest import Manifest

        manifest = Manifest.load(manifest_path)
    adapter = project_adapter(loaded, manifest)
    dialect = project_dialect(loaded, adapter)
    try:
        renderer = renderer_for(
            loaded.project_dir,
            project_name=tree.project.name,
            vars=tree.project.vars,
            macro_paths=tree.project.macro_paths,
            adapter=adapter,
            manifest=manifest,
            working_models=tree.ref_names(),
            sources=yaml_sources(tree.sources),
        )
    except RenderError as exc:
        where = macro_files[0] if macro_files else loaded.project_dir / "dbt_project.yml"
        return HookResult(
            HookId.SQL_CHECK,
            (HookProblem(display_path(where, cwd), 1, 1, f"cannot load macros: {exc.message}"),),
            projects=(str(loaded.project_dir),),
        )
    has_packages = any(
        (loaded.project_dir / name).is_file() for name in ("packages.yml", "dependencies.yml")
    )
    problems: list[HookProblem] = []
    skipped: list[HookProblem] = []
    for name in models:
        path = tree.model_files[name]
        raw = path.read_bytes().decode("utf-8")
        problem = check_model_sql(
            raw, model_name=name, renderer=renderer, dialect=dialect, has_packages=has_packages
        )
        if problem is None:
            continue
        shown = display_path(path, cwd)
        (problems if problem.blocking else skipped).append(
            HookProblem(
                shown,
                problem.line,
                problem.column,
                problem.message,
                snippet=problem.snippet,
                model=name,
                hint=f"fix the SQL, then check it with `dataops-dev hook sql-check {shown}`"
                if problem.blocking
                else "not checked statically: `dataops-dev build` compiles it with dbt",
            )
        )
    return HookResult(
        HookId.SQL_CHECK,
        tuple(problems),
        skipped=tuple(skipped),
        projects=(str(loaded.project_dir),),
        checked_models=tuple(models),
    )


def _models_using_macros(tree: ProjectFiles, macro_files: Sequence[Path]) -> list[str]:
    import re

    names: set[str] = set()
    for path in macro_files:
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"{%-?\s*macro\s+([A-Za-z_][A-Za-z_0-9]*)", text))
    if not names:
        return []
    pattern = re.compile(r"\b(" + "|".join(sorted(names)) + r")\s*\(")
    return [
        name
        for name, path in sorted(tree.model_files.items())
        if path.suffix == ".sql" and pattern.search(path.read_text(encoding="utf-8"))
    ]


# --------------------------------------------------------------------------------------------
# Impact guard


@dataclass(frozen=True)
class GuardedChange:
    """A change the impact guard looks at: the model change, why it is guarded, its finding."""

    change: ModelChange
    guarded_because: tuple[str, ...]
    finding: Finding


def _guard_reasons(change: ModelChange, loaded: LoadedConfig) -> list[str]:
    hooks = loaded.config.hooks
    reasons: list[str] = []
    if hooks.guard_contracts:
        if change.contract_broken:
            reasons.append("breaks its enforced contract")
        elif change.contract_enforced:
            reasons.append("has an enforced contract")
        if change.impacted.contracted_models:
            reasons.append("feeds contracted " + ", ".join(change.impacted.contracted_models))
    if hooks.guard_exposures and change.exposures:
        reasons.append("feeds exposure " + ", ".join(change.exposures))
    if hooks.protected:
        if _matches(change.name, hooks.protected):
            reasons.append("is protected (hooks.protected)")
        downstream = [m for m in change.impacted.models if _matches(m, hooks.protected)]
        if downstream:
            reasons.append("feeds protected " + ", ".join(downstream))
    return reasons


def _allowed(change: ModelChange, loaded: LoadedConfig) -> str | None:
    """Why a guarded change does not fail the hook without an approval (None: it fails)."""
    from dataops_dev.policy import policy_for

    name = change.name
    if _matches(name, loaded.config.hooks.allow_breaking):
        return "allowed by hooks.allow_breaking"
    # The review policy's allowance counts too, resolved exactly as the review resolves it, so
    # the hook and the review agree; like the review, it never covers a broken contract.
    if change.contract_broken:
        return None
    policy = loaded.config.policy
    rules = policy_for(policy, name)
    if not rules.allow_breaking:
        return None
    if rules is policy.default:
        return "allowed by policy.default.allow_breaking"
    key = next(k for k, v in policy.models.items() if v is rules)
    return f"allowed by policy.models.{key}.allow_breaking"


class _HeadSql:
    """The working tree's rendered SQL of models (one renderer, made on first use)."""

    def __init__(self, loaded: LoadedConfig, tree: ProjectFiles, manifest: Manifest) -> None:
        self.loaded, self.tree, self.manifest = loaded, tree, manifest
        self._renderer: Any = None

    def __call__(self, name: str) -> str:
        """The model's SQL as the working tree renders it ("" when removed; the raw text
        when it does not render)."""
        from dataops_dev.dbt.render import RenderError
        from dataops_dev.hooks_sql import renderer_for, yaml_sources

        path = self.tree.model_files.get(name)
        if path is None:
            return ""
        raw = path.read_bytes().decode("utf-8").strip()
        if path.suffix != ".sql":
            return raw
        try:
            if self._renderer is None:
                self._renderer = renderer_for(
                    self.loaded.project_dir,
                    project_name=self.tree.project.name,
                    vars=self.tree.project.vars,
                    macro_paths=self.tree.project.macro_paths,
                    adapter=None,
                    manifest=self.manifest,
                    working_models=self.tree.ref_names(),
                    sources=yaml_sources(self.tree.sources),
                )
            return str(self._renderer.render(raw, model_name=name).sql)
        except RenderError:
            return raw


def guard_finding(change: ModelChange, head_sql: str, guarded_because: Sequence[str]) -> Finding:
    """The approvable finding of a guarded change: fingerprint of (kind, model, head SQL hash,
    change reasons), so any later edit of the model needs a new approval."""
    from dataops_dev.decisions import fingerprint, sql_hash
    from dataops_dev.report.model import Finding, FindingKind, Severity

    if change.contract_broken:
        kind = FindingKind.CONTRACT_BROKEN
    elif any(r.startswith("feeds exposure") for r in guarded_because) and len(guarded_because) == 1:
        kind = FindingKind.EXPOSURE_IMPACTED
    else:
        kind = FindingKind.BREAKING_CHANGE
    reasons = tuple(sorted(change.reasons))
    value = fingerprint(
        "hook", kind.value, change.name, change.change.value, sql_hash(head_sql), reasons
    )
    title = f"{change.change.value} change to {change.name}: " + "; ".join(
        change.reasons or ("changed",)
    )
    return Finding(
        fingerprint=value,
        kind=kind,
        severity=Severity.BLOCKING,
        model=change.name,
        title=title,
        detail="; ".join(f"{change.name} {r}" for r in guarded_because),
    )


def guarded_changes(
    loaded: LoadedConfig,
    report: ImpactReport,
    manifest: Manifest,
    tree: ProjectFiles,
    scope: set[str] | None = None,
) -> list[GuardedChange]:
    """The breaking (and, with `hooks.fail_on_unknown`, unknown) changes to guarded models."""
    from dataops_dev.impact import ChangeKind

    kinds = {ChangeKind.BREAKING}
    if loaded.config.hooks.fail_on_unknown:
        kinds.add(ChangeKind.UNKNOWN)
    found = []
    head_sql = _HeadSql(loaded, tree, manifest)
    for change in report.models:
        if scope is not None and change.name not in scope:
            continue
        if change.change not in kinds:
            continue
        because = _guard_reasons(change, loaded)
        if not because:
            continue
        finding = guard_finding(change, head_sql(change.name), because)
        found.append(GuardedChange(change, tuple(because), finding))
    return found


def static_findings(
    loaded: LoadedConfig, changed_files: Sequence[Path] | None = None
) -> list[Finding]:
    """The impact guard's findings (working tree vs the production manifest), with recorded
    decisions attached: what `dataops-dev decide approve FINGERPRINT` can approve.

    `changed_files` limits them to the models those files define or describe (None: all)."""
    import dataclasses

    from dataops_dev.decisions import load_decisions

    findings, _report, _tree = _guard(loaded, changed_files)
    decisions = load_decisions(loaded.project_dir)
    return [
        dataclasses.replace(
            g.finding,
            approval=decisions[g.finding.fingerprint].approval()
            if g.finding.fingerprint in decisions
            else None,
        )
        for g in findings
    ]


def find_static_finding(loaded: LoadedConfig, prefix: str) -> Finding | None:
    """The impact guard's finding whose fingerprint starts with `prefix` (for `decide`), or
    None when there is none (or no production manifest to find it with)."""
    from dataops_dev.errors import UsageError

    if len(prefix) < 6:
        return None
    try:
        findings = static_findings(loaded)
    except DataopsError:
        return None
    matches = {f.fingerprint: f for f in findings if f.fingerprint.startswith(prefix)}
    if len(matches) > 1:
        raise UsageError(f"{prefix} matches several findings", "give more characters")
    return next(iter(matches.values()), None)


def _guard(
    loaded: LoadedConfig,
    changed_files: Sequence[Path] | None,
    *,
    manifest_path: Path | None = None,
    base: HookBase | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> tuple[list[GuardedChange], ImpactReport, ProjectFiles]:
    from dataops_dev.dbt.manifest import Manifest
    from dataops_dev.impact import analyze_impact

    base = base or hook_base(loaded, manifest_path)
    if base is None:
        raise ProjectError(
            f"no base manifest to compare {loaded.project_dir.name} with",
            f"run `{enable_command(loaded, Path.cwd())}` once (dbt parses the main branch; "
            "cached), or pass --base-manifest PATH",
        )
    path = base.manifest
    tree = ProjectFiles.read(loaded)
    scope: set[str] | None = None
    if changed_files is not None:
        scope = set(tree.models_of([f.resolve() for f in changed_files]))
        scope |= set(staged_deletions(loaded.project_dir, tree))
    report = analyze_impact(
        loaded.project_dir,
        path,
        state_dir=loaded.state_dir,
        reporter=reporter,
        base_code_dir=base.code_dir,
    )
    manifest = Manifest.load(path)
    return guarded_changes(loaded, report, manifest, tree, scope), report, tree


def staged_deletions(project_dir: Path, tree: ProjectFiles) -> list[str]:
    """Models whose file the index deletes (pre-commit passes no name for a deleted file)."""
    try:
        result = subprocess.run(
            ["git", "diff", "--cached", "--name-only", "--diff-filter=D", "--relative", "--", "."],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return []
    names = []
    for line in result.stdout.splitlines():
        path = Path(line)
        if path.suffix in (".sql", ".py") and tree.is_under(
            (project_dir / path).resolve(), tree.project.model_paths
        ):
            names.append(path.stem)
    return names


def impact_guard(
    loaded: LoadedConfig,
    files: Sequence[Path] | None,
    *,
    cwd: Path | None = None,
    manifest_path: Path | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> HookResult:
    """Fail on unacknowledged breaking changes to contracted, exposure-feeding or protected
    models among `files` (None: the whole change set against production)."""
    from dataops_dev.decisions import load_decisions
    from dataops_dev.report.model import Decision

    cwd = cwd or Path.cwd()
    project = str(loaded.project_dir)
    base = hook_base(loaded, manifest_path)
    if base is None:
        # A fresh clone: parsing main would start dbt (seconds), which the fast hooks never do.
        command = enable_command(loaded, cwd)
        shown = display_path(loaded.project_dir, cwd)
        shown = loaded.project_dir.name if shown == "." else shown
        todo = f"run `{command}` once"
        main = loaded.config.production.main_branch
        other = _other_default_branch(loaded.project_dir, main)
        if other is not None:
            # `impact --base main` would fail here, and a parse of another ref is not looked up.
            todo = (
                f"no branch {main!r} here: set `production: {{main_branch: {other}}}` in "
                f"dataops_dev.yml, then run `{command.removesuffix(main)}{other}` once"
            )
        if loaded.config.hooks.missing_manifest == "fail":
            raise ProjectError(
                f"the impact guard has no base manifest to compare {shown} with",
                f"{todo} (dbt parses the main branch; cached), or set "
                "`hooks.missing_manifest: skip`",
            )
        note = f"impact-guard skipped ({shown}): no base manifest yet; {todo} to enable it"
        return HookResult(HookId.IMPACT_GUARD, projects=(project,), notes=(note,))
    guarded, report, tree = _guard(loaded, files, base=base, reporter=reporter)
    decisions = load_decisions(loaded.project_dir) if guarded else {}
    problems: list[HookProblem] = []
    acknowledged: list[HookProblem] = []
    command = cli_command(loaded.project_dir, cwd)
    for item in guarded:
        change, finding = item.change, item.finding
        where, line = _locate(change.name, tree, files, loaded.project_dir)
        decision = decisions.get(finding.fingerprint)
        allowance = _allowed(change, loaded)
        by = None
        if decision is not None and decision.decision is Decision.APPROVED:
            by = f"approved by {decision.by}" + (f": {decision.note}" if decision.note else "")
        elif allowance:
            by = allowance
        contract = " [contract broken]" if change.contract_broken else ""
        problem = HookProblem(
            path=display_path(where, cwd),
            line=line,
            column=1,
            message=f"{change.change.value} change to {change.name}{contract}: "
            + "; ".join(change.reasons or ("changed",)),
            model=change.name,
            details=(f"guarded: {change.name} " + "; ".join(item.guarded_because),)
            + impact_lines(change),
            hint=f"{command} decide approve {finding.fingerprint} "
            + '--note "why this is expected" (then stage dataops.approvals.yml), or '
            + f"`{command} review` to see the data",
            fingerprint=finding.fingerprint,
            acknowledged_by=by,
        )
        (acknowledged if by else problems).append(problem)
    return HookResult(
        HookId.IMPACT_GUARD,
        tuple(problems),
        tuple(acknowledged),
        projects=(project,),
        checked_models=tuple(m.name for m in report.models),
    )


def _locate(
    name: str, tree: ProjectFiles, files: Sequence[Path] | None, project_dir: Path
) -> tuple[Path, int]:
    """Where to point for a model's change: the first changed line of its SQL file when that
    file is part of the change, else its schema YAML entry (a contract edit), else the file."""
    path = tree.model_files.get(name)
    passed = {f.resolve() for f in files or ()}
    if path is not None and (files is None or path in passed):
        return path, first_changed_line(path)
    entry = tree.entry(name)
    if entry is not None:
        return entry.path, entry.line
    return (path, 1) if path is not None else (project_dir / "dbt_project.yml", 1)


def first_changed_line(path: Path) -> int:
    """The first line of `path` that differs from the HEAD commit (1 when unknown or new)."""
    import re

    try:
        result = subprocess.run(
            ["git", "diff", "--no-color", "-U0", "HEAD", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return 1
    match = re.search(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", result.stdout, re.M)
    if match is None:
        return 1
    start, count = int(match.group(1)), match.group(2)
    # A pure deletion reports the line before the removed ones: point at the line after.
    return max(1, start + 1 if count == "0" else start)


def cli_command(project_dir: Path, cwd: Path) -> str:
    """`dataops-dev`, with `--project-dir` when the project is not the working directory."""
    if project_dir.resolve() == cwd.resolve():
        return "dataops-dev"
    return f"dataops-dev --project-dir {display_path(project_dir, cwd)}"


def impact_lines(change: ModelChange, limit: int = 12) -> tuple[str, ...]:
    """Impacted downstream models, columns and exposures of a change, as short lines."""
    impacted = change.impacted
    lines = []

    def listing(values: Sequence[str]) -> str:
        shown = ", ".join(values[:limit])
        return shown + (f", … (+{len(values) - limit})" if len(values) > limit else "")

    if impacted.models:
        lines.append(
            f"impacts {len(impacted.models)} downstream models: {listing(impacted.models)}"
        )
    if impacted.columns:
        lines.append(f"impacted columns: {listing(impacted.columns)}")
    if change.exposures:
        lines.append("exposures: " + ", ".join(change.exposures))
    if not impacted.models and not change.exposures:
        lines.append("no downstream models")
    return tuple(lines)


# --------------------------------------------------------------------------------------------
# Keys and tests


def key_of(entry: SchemaEntry | None, configured: Sequence[str] | None = None) -> tuple[str, ...]:
    """A model's primary key as the working tree declares it, in the order the diff engine
    discovers keys: `diff.keys`, primary_key constraint, meta, unique+not_null tests,
    unique_combination_of_columns; () when none."""
    if configured:
        return tuple(configured)
    if entry is None:
        return ()
    data = entry.data
    config: Mapping[str, Any] = data["config"] if isinstance(data.get("config"), Mapping) else {}
    for constraint in [*(data.get("constraints") or ()), *(config.get("constraints") or ())]:
        if (
            isinstance(constraint, Mapping)
            and constraint.get("type") == "primary_key"
            and constraint.get("columns")
        ):
            return tuple(str(c) for c in constraint["columns"])
    columns = [c for c in data.get("columns") or () if isinstance(c, Mapping) and c.get("name")]
    for column in columns:
        if any(
            isinstance(c, Mapping) and c.get("type") == "primary_key"
            for c in column.get("constraints") or ()
        ):
            return (str(column["name"]),)
    for meta in (data.get("meta"), config.get("meta")):
        if isinstance(meta, Mapping):
            for key in ("primary_key", "primary-key"):
                declared = meta.get(key)
                if declared:
                    return (
                        tuple(str(d) for d in declared)
                        if isinstance(declared, list)
                        else (str(declared),)
                    )
    for column in columns:
        column_config: Mapping[str, Any] = (
            column["config"] if isinstance(column.get("config"), Mapping) else {}
        )
        for meta in (column.get("meta"), column_config.get("meta")):
            if isinstance(meta, Mapping) and (meta.get("primary_key") or meta.get("primary-key")):
                return (str(column["name"]),)
    for column in columns:
        tests = _tests(column, unconditional=True)
        if "unique" in tests and "not_null" in tests:
            return (str(column["name"]),)
    for test in data.get("data_tests") or data.get("tests") or ():
        if isinstance(test, Mapping) and test:
            name = str(next(iter(test))).split(".")[-1]
            if name == "unique_combination_of_columns":
                body = test[next(iter(test))] or {}
                arguments = body.get("arguments") if isinstance(body, Mapping) else None
                combination = (arguments or body or {}).get("combination_of_columns")
                if combination:
                    return tuple(str(c) for c in combination)
    return ()


def _tests(holder: Mapping[str, Any], *, unconditional: bool = False) -> set[str]:
    """Test names declared on a model or column entry (`dbt_utils.x` -> `x`)."""
    names = set()
    for test in [*(holder.get("data_tests") or ()), *(holder.get("tests") or ())]:
        if isinstance(test, str):
            names.add(test.split(".")[-1])
        elif isinstance(test, Mapping) and test:
            key = str(next(iter(test)))
            body = test[key]
            if key in ("name", "test_name") and (test.get("test_name") or test.get("name")):
                key = str(test.get("test_name") or test.get("name"))
                body = test
            if unconditional and isinstance(body, Mapping):
                config: Mapping[str, Any] = (
                    body["config"] if isinstance(body.get("config"), Mapping) else {}
                )
                if body.get("where") or config.get("where"):
                    continue
            names.add(key.split(".")[-1])
    return names


def model_tests(entry: SchemaEntry | None) -> set[str]:
    if entry is None:
        return set()
    names = _tests(entry.data)
    for column in entry.data.get("columns") or ():
        if isinstance(column, Mapping):
            names |= _tests(column)
    return names


def keys_and_tests(
    loaded: LoadedConfig, files: Sequence[Path], *, cwd: Path | None = None
) -> HookResult:
    """Each changed or new model has a discoverable primary key (`hooks.require_key`) and the
    tests `hooks.require_tests` names, so that diffs and reviews can work on it."""
    cwd = cwd or Path.cwd()
    hooks = loaded.config.hooks
    tree = ProjectFiles.read(loaded)
    models = [
        m for m in tree.models_of(files) if m in tree.model_files and not _matches(m, hooks.keyless)
    ]
    problems = []
    for name in models:
        entry = tree.entry(name)
        path, line = (entry.path, entry.line) if entry is not None else (tree.model_files[name], 1)
        missing: list[str] = []
        if hooks.require_key and not key_of(entry, loaded.config.diff.keys.get(name)):
            missing.append("no primary key")
        lacking = sorted(set(hooks.require_tests) - model_tests(entry))
        if lacking:
            missing.append("missing required tests: " + ", ".join(lacking))
        if not missing:
            continue
        where = "in a schema YAML file" if entry is None else f"in {display_path(path, cwd)}"
        problems.append(
            HookProblem(
                path=display_path(path, cwd),
                line=line,
                column=1,
                message=f"model {name}: " + "; ".join(missing),
                model=name,
                details=(
                    (
                        "diffs need a key: add `data_tests: [unique, not_null]` to its key column, "
                        "a primary_key constraint or `meta: {primary_key: ...}`",
                    )
                    if "no primary key" in missing
                    else ()
                ),
                hint=f"declare them {where}, set `diff.keys.{name}` in dataops_dev.yml, "
                f"or exempt it with `hooks.keyless`",
            )
        )
    return HookResult(
        HookId.KEYS,
        tuple(problems),
        projects=(str(loaded.project_dir),),
        checked_models=tuple(models),
    )


# --------------------------------------------------------------------------------------------
# Review (pre-push / manual)


def review_hook(
    loaded: LoadedConfig, *, cwd: Path | None = None, reporter: Reporter = NULL_REPORTER
) -> HookResult:
    """Run the full review on the sample; its blocking findings (unapproved) fail the hook."""
    from dataops_dev.review import run_review, save_report

    cwd = cwd or Path.cwd()
    report = run_review(loaded, reporter=reporter)  # recorded decisions already applied
    save_report(loaded, report)
    tree = ProjectFiles.read(loaded)
    command = cli_command(loaded.project_dir, cwd)
    problems = []
    build_failed = any(f.kind.value == "build_failed" for f in report.blocking)
    if report.error and not build_failed:
        problems.append(
            HookProblem(
                display_path(loaded.project_dir / "dbt_project.yml", cwd),
                1,
                1,
                f"the review could not finish: {report.error}",
                hint="run `dataops-dev review` to see where it stopped",
            )
        )
    for finding in report.blocking:
        path = tree.model_files.get(finding.model or "")
        problems.append(
            HookProblem(
                display_path(path or loaded.project_dir / "dbt_project.yml", cwd),
                1,
                1,
                f"{finding.kind.value}: {finding.title}",
                model=finding.model,
                details=(finding.detail,) if finding.detail else (),
                hint=f"{command} decide approve {finding.fingerprint} "
                f'--note "why this is expected", or see the evidence with `{command} tui`',
                fingerprint=finding.fingerprint,
            )
        )
    return HookResult(
        HookId.REVIEW,
        tuple(problems),
        projects=(str(loaded.project_dir),),
        checked_models=tuple(m.name for m in report.models),
    )


# --------------------------------------------------------------------------------------------
# Entry point for the CLI


def _single_project_below(directory: Path, depth: int = 3) -> Path | None:
    """The one dbt project in a subfolder of the repository (None when none; an error when
    several, since then the hook cannot guess)."""
    skip = {".git", ".venv", "node_modules", "target", "dbt_packages", "logs", ".dataops"}
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        relative = Path(root).relative_to(directory)
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".")]
        if len(relative.parts) >= depth:
            dirs[:] = []
        if "dbt_project.yml" in files:
            found.append(Path(root))
            dirs[:] = []
    if len(found) > 1:
        names = ", ".join(display_path(f, directory) for f in sorted(found))
        raise ProjectError(
            f"several dbt projects here ({names})",
            "pass --project-dir PATH (in .pre-commit-config.yaml: `args: [--project-dir, PATH]`)",
        )
    return found[0] if found else None


def run_hook(
    hook: HookId,
    files: Sequence[Path],
    *,
    cwd: Path | None = None,
    config_file: Path | None = None,
    project_dir: Path | None = None,
    all_models: bool = False,
    overrides: Mapping[str, Any] | None = None,
    base_manifest: Path | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> HookResult:
    """Run `hook` on `files` (relative to `cwd`), once per dbt project they belong to.

    `review` takes no files: it runs on `project_dir` (default: the project found from `cwd`).
    `all_models` (or no files with an explicit `project_dir`) checks the whole project."""
    cwd = (cwd or Path.cwd()).resolve()
    groups: dict[Path, list[Path]]
    configs: dict[Path, LoadedConfig] = {}
    if hook is HookId.REVIEW or all_models or (project_dir is not None and not files):
        directory = (project_dir or cwd).resolve()
        found = (
            directory if (directory / "dbt_project.yml").is_file() else find_project_dir(directory)
        )
        if found is None and project_dir is None:
            found = _single_project_below(directory)
        if found is None:
            raise ProjectError(
                f"no dbt project at {directory}",
                "pass --project-dir PATH (in .pre-commit-config.yaml: `args: [--project-dir, PATH]`)",
            )
        loaded = configs[found] = load_project_config(found, config_file, overrides)
        if hook is HookId.REVIEW:
            return review_hook(loaded, cwd=cwd, reporter=reporter)
        if all_models and hook is not HookId.IMPACT_GUARD:
            groups = {found: list(ProjectFiles.read(loaded).model_files.values())}
        else:
            groups = {found: []}
    else:
        absolute = [(cwd / f) for f in files]
        groups = group_by_project(absolute)
        if project_dir is not None:
            wanted = project_dir.resolve()
            groups = {p: fs for p, fs in groups.items() if p == wanted}
    results = []
    for directory, group in sorted(groups.items()):
        loaded = configs.get(directory) or load_project_config(directory, config_file, overrides)
        if hook is HookId.SQL_CHECK:
            results.append(sql_check(loaded, group, cwd=cwd))
        elif hook is HookId.IMPACT_GUARD:
            results.append(
                impact_guard(
                    loaded, group or None, cwd=cwd, manifest_path=base_manifest, reporter=reporter
                )
            )
        else:
            results.append(keys_and_tests(loaded, group, cwd=cwd))
    return _merge(hook, results)
