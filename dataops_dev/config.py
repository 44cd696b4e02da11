"""Configuration: find, load and strictly validate `dataops_dev.yml` or `[tool.dataops_dev]`.

Precedence is flag > environment (`DATAOPS_DEV_<SECTION>__<KEY>`) > file > default; every resolved
value remembers where it came from so `dataops-dev config show` can say. Loading never writes.

Sections are frozen dataclasses; the loader reads their type hints, so adding a setting is adding a
field (with a docstring in `FIELD_DOCS` for `config show` and `init`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml

from dataops_dev.errors import ConfigError

CONFIG_FILE = "dataops_dev.yml"
ENV_PREFIX = "DATAOPS_DEV_"


@dataclass(frozen=True)
class ProductionConfig:
    target: str = "prod"
    """The dbt target that is production: read only by `sample`, written only by `deploy`."""
    main_branch: str = "main"
    """The branch whose code is production; the baseline is built from its merge-base."""
    manifest: str | None = None
    """Optional path to production's manifest.json (otherwise built from the main branch)."""


@dataclass(frozen=True)
class BackendConfig:
    type: Literal["duckdb", "warehouse"] = "duckdb"
    """Where environments live: `duckdb` files under state_dir, or schemas in a warehouse."""
    state_dir: str = ".dataops"
    """Directory (relative to the dbt project) for environment files, samples, locks, caches."""
    target: str | None = None
    """warehouse: the dbt target whose connection reaches the sandbox (default: production's)."""
    sandbox_database: str | None = None
    """warehouse: the database holding the sample and environments; must not be production's."""


@dataclass(frozen=True)
class EnvironmentsConfig:
    ttl_days: float = 14.0
    """`env gc` drops environments not built for this many days (and those of deleted branches)."""
    keep: tuple[str, ...] = ()
    """Branches whose environments `env gc` never drops (the main branch's baseline is always kept)."""
    threads: int = 2
    """dbt threads for environment builds."""
    target_name: str | None = None
    """dbt target name environments build with (`target.name` in the project's Jinja). Default:
    production's (`production.target`) on DuckDB, so target-dependent code builds as in
    production; `dataops` on a warehouse, where a schema macro keyed on production's target
    name could write outside the environment's schemas."""


@dataclass(frozen=True)
class AnchorConfig:
    rate: float | None = None
    """Fraction of this anchor's keys to sample (0 < rate <= 1); default `sample.rate`."""
    rows: int | None = None
    """Target number of anchor rows instead of a rate (the rate is derived from the row count)."""


@dataclass(frozen=True)
class TableFilterConfig:
    where: str | None = None
    """A SQL condition on the source table's own columns, e.g. `status <> 'test'`."""
    last: str | None = None
    """A time window ending at the table's latest `event_time`, e.g. `90 days` (day-aligned)."""
    event_time: str | None = None
    """The column `last` applies to (default: the source's dbt `event_time` config)."""


@dataclass(frozen=True)
class SampleConfig:
    salt_env: str = "DATAOPS_SALT"
    """Environment variable holding the masking salt (never written in a file); unset = error."""
    rate: float = 0.1
    """Default fraction of each anchor's keys kept (keyed hash of the key, never random())."""
    seed: str = "dataops-dev"
    """Key of the sampling hash (not a secret): change it to draw other rows; the masking salt
    does not change which rows are sampled."""
    anchors: Mapping[str, AnchorConfig] = field(default_factory=dict)
    """`source.table` -> {rate | rows}: the entities a sample is drawn around (default: the root
    table with the most descendants in the FK graph)."""
    filters: Mapping[str, TableFilterConfig] = field(default_factory=dict)
    """`source.table` -> {where, last, event_time}: row filters applied before FK closure."""
    full_tables: tuple[str, ...] = ()
    """Lookup tables copied whole (`source.table`)."""
    primary_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """`source.table` -> key columns, where the dbt project does not declare them."""
    foreign_keys: Mapping[str, str] = field(default_factory=dict)
    """Extra edges `"src.child(col)": "src.parent(col)"` the dbt project does not declare."""
    max_rows: int = 5_000_000
    """Safety cap: a sample table above this many rows fails the run (lower the rate)."""


@dataclass(frozen=True)
class MaskingConfig:
    columns: Mapping[str, Any] = field(default_factory=dict)
    """`source.table.column` -> transformer name or {transformer: ..., options}; wins over
    dbt meta, names and values (`passthrough` keeps a column as is)."""
    default_free_text: str = "scramble"
    """Transformer for unclassified free-text columns (masked by default)."""
    strict: bool = False
    """Fail `sample` when a text column is unclassified (not in the lock file or the config)."""
    low_cardinality: int = 100
    """Text columns with at most this many distinct values are categories and kept."""
    value_sample_size: int = 100
    """Distinct values per text column inspected for value patterns (email, phone, card, IP)."""


@dataclass(frozen=True)
class ToleranceConfig:
    abs: float = 0.0
    """Values within this absolute difference are equal."""
    rel: float = 0.0
    """Values within this fraction of the larger magnitude are equal."""


@dataclass(frozen=True)
class DiffConfig:
    examples: int = 5
    """Example values (key, before, after) kept per changed column; examples are masked data."""
    example_rows: int = 20
    """Example rows (added, removed, changed) kept per model."""
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Model name -> key columns, for models whose dbt project declares no key."""
    tolerance: Mapping[str, ToleranceConfig] = field(default_factory=dict)
    """`model.column` (or `*.column`) -> {abs:, rel:}: numeric tolerance for value diffs."""
    timestamp_precision: Mapping[str, str] = field(default_factory=dict)
    """`model.column` (or `*.column`) -> second | millisecond | ...: truncate before comparing."""


@dataclass(frozen=True)
class ModelPolicy:
    unchanged: bool = False
    """The model's data must not change at all (no added, removed or changed rows)."""
    unchanged_columns: tuple[str, ...] = ()
    """These columns must keep every value."""
    max_row_delta_pct: float | None = None
    """Largest allowed change of the row count, in percent of the baseline's."""
    no_removed_keys: bool = False
    """No key of the baseline may disappear."""
    allow_breaking: bool = False
    """A breaking change to this model does not block (it is still reported)."""


@dataclass(frozen=True)
class PolicyConfig:
    default: ModelPolicy = field(default_factory=ModelPolicy)
    """Expectations for every model."""
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)
    """Model name (or shell pattern such as `fct_*`) -> expectations; overrides `default`."""
    block_on_breaking: bool = True
    """A breaking change blocks until approved (unless the model allows breaking)."""
    block_on_test_failures: bool = True
    """A dbt test that fails on the branch but not on the baseline blocks."""
    block_on_exposure_impact: bool = False
    """Changed data feeding an exposure (dashboard) blocks until approved."""


@dataclass(frozen=True)
class HooksConfig:
    protected: tuple[str, ...] = ()
    """Model names or globs (`fct_*`) whose breaking changes the impact guard blocks, besides
    contracted models and models feeding an exposure."""
    allow_breaking: tuple[str, ...] = ()
    """Model names or globs whose breaking changes the impact guard lets through (a standing
    allowance; one-off approvals go in dataops.approvals.yml via `dataops-dev decide approve`)."""
    guard_contracts: bool = True
    """Block breaking changes to (or upstream of) models with an enforced contract."""
    guard_exposures: bool = True
    """Block breaking changes to models that feed an exposure (directly or downstream)."""
    fail_on_unknown: bool = False
    """Also block guarded models whose change cannot be classified statically."""
    missing_manifest: Literal["fail", "skip"] = "skip"
    """What the impact guard does when it has no base manifest (a fresh clone before the first
    `dataops-dev impact --base main`): pass with a one-line note on stderr, or fail."""
    require_key: bool = True
    """Changed or new models need a discoverable primary key (constraint, meta, unique+not_null
    tests, unique_combination_of_columns, or `diff.keys`)."""
    require_tests: tuple[str, ...] = ()
    """Test names every changed or new model must declare (on the model or a column),
    e.g. [not_null, unique]."""
    keyless: tuple[str, ...] = ()
    """Model names or globs exempt from the key and test requirements."""
    dialect: str | None = None
    """sqlglot dialect for the SQL check (default: the manifest's adapter, else the profile's)."""


@dataclass(frozen=True)
class Config:
    version: int = 1
    """Config format version; only 1 exists."""
    project_dir: str = "."
    """The dbt project directory, relative to this file."""
    profiles_dir: str | None = None
    """Where profiles.yml is (default: the project dir if it has one, else ~/.dbt)."""
    profile: str | None = None
    """dbt profile name (default: dbt_project.yml's `profile`)."""
    production: ProductionConfig = field(default_factory=ProductionConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    environments: EnvironmentsConfig = field(default_factory=EnvironmentsConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    diff: DiffConfig = field(default_factory=DiffConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where it was found and where each value came from."""

    config: Config
    root: Path
    """Directory the config's relative paths are resolved against."""
    source: str
    """The file the config came from, or "defaults"."""
    provenance: Mapping[str, str]
    """Dotted key -> "default" | "<file>:<line>" | "env <VAR>" | "flag"."""

    @property
    def project_dir(self) -> Path:
        return (self.root / self.config.project_dir).resolve()

    @property
    def state_dir(self) -> Path:
        return (self.project_dir / self.config.backend.state_dir).resolve()

    @property
    def profiles_dir(self) -> Path:
        if self.config.profiles_dir:
            return (self.root / self.config.profiles_dir).resolve()
        if (self.project_dir / "profiles.yml").exists():
            return self.project_dir
        env_dir = os.environ.get("DBT_PROFILES_DIR")
        if env_dir:
            return Path(env_dir).expanduser().resolve()
        return Path.home() / ".dbt"

    def as_dict(self) -> dict[str, Any]:
        # Not `dataclasses.asdict`: it deep-copies leaf values, and mappings from the config file
        # are read-only proxies, which cannot be copied.
        plain: dict[str, Any] = as_plain(self.config)
        return plain


# --------------------------------------------------------------------------------------------
# Finding


def find_config_file(start: Path) -> tuple[Path | None, str]:
    """Nearest-first: `dataops_dev.yml`, else a pyproject.toml with [tool.dataops_dev].

    Returns (file, kind) with kind "yaml", "pyproject" or "none".
    """
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate, "yaml"
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _pyproject_section(pyproject) is not None:
            return pyproject, "pyproject"
        if (directory / ".git").exists():
            break
    return None, "none"


def _pyproject_section(path: Path) -> dict[str, Any] | None:
    from dataops_dev.statefiles import InvalidFile, check_depth

    try:
        data = tomllib.loads(_read_text(path))
        section = data.get("tool", {}).get("dataops_dev")
        if isinstance(section, dict):
            check_depth(section)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot parse {path.name}: {exc}", path=str(path)) from exc
    except RecursionError:
        raise ConfigError(f"{path.name} nests too deeply to read", path=str(path)) from None
    except InvalidFile as exc:
        raise ConfigError(f"[tool.dataops_dev] {exc}", path=str(path)) from None
    except AttributeError:  # `tool` is not a table
        return None
    if section is not None and not isinstance(section, dict):
        raise ConfigError(
            f"[tool.dataops_dev] must be a table of settings, got {_type_name(section)}",
            "write it as a [tool.dataops_dev] table (or remove it)",
            path=str(path),
        )
    return section


def _find_dbt_project(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / "dbt_project.yml").is_file():
            return directory
        if (directory / ".git").exists():
            break
    return None


_NOT_PROJECTS = frozenset({"target", "logs", "dbt_packages", "dbt_modules", "node_modules"})


def _find_dbt_project_below(start: Path, depth: int = 3) -> Path | None:
    """The one dbt project in the folders under `start` (at most `depth` levels down); None
    when there is none, a ConfigError naming them when there are several."""
    found: list[Path] = []
    level = [start]
    for _ in range(depth):
        below: list[Path] = []
        for directory in level:
            try:
                children = sorted(p for p in directory.iterdir() if p.is_dir())
            except OSError:
                continue
            for child in children:
                if child.name.startswith(".") or child.name in _NOT_PROJECTS:
                    continue
                if (child / "dbt_project.yml").is_file():
                    found.append(child)
                else:
                    below.append(child)
        level = below
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(start)) for p in found)
        raise ConfigError(
            f"several dbt projects under {start}: {names}",
            f"pass --project-dir {found[0].relative_to(start)} (or run from that folder)",
        )
    return found[0] if found else None


# --------------------------------------------------------------------------------------------
# Loading


def load_config(
    start: Path | None = None,
    *,
    config_file: Path | None = None,
    project_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Find and validate the configuration.

    Args:
        start: directory to search from (default: `project_dir` when given, else cwd).
        config_file: an explicit config file (`--config`).
        project_dir: an explicit dbt project directory (`--project-dir`); wins over the file.
        overrides: dotted keys set by flags, e.g. {"backend.type": "warehouse"}.
        environ: environment to read `DATAOPS_DEV_*` overrides from (default: os.environ).
    """
    start = (start or project_dir or Path.cwd()).resolve()
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    source = "defaults"
    root = start
    if config_file is not None:
        path = config_file.resolve()
        if not path.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        kind = "pyproject" if path.name == "pyproject.toml" else "yaml"
    else:
        found, kind = find_config_file(start)
        if found is None and project_dir is None and _find_dbt_project(start) is None:
            # A repository whose one dbt project sits in a subfolder (e.g. `transform/`).
            below = _find_dbt_project_below(start)
            if below is not None:
                start = below
                found, kind = find_config_file(start)
        path = found if found is not None else Path()
    if kind == "yaml":
        raw, lines = _read_yaml(path)
        source, root = str(path), path.parent
    elif kind == "pyproject":
        raw = _pyproject_section(path) or {}
        source, root = f"{path} [tool.dataops_dev]", path.parent
    elif project_dir is None:
        found_project = _find_dbt_project(start)
        root = found_project or start

    provenance: dict[str, str] = {}
    values = _merge_layers(raw, lines, source, environ, overrides or {}, provenance)
    if project_dir is not None:
        values["project_dir"] = str(project_dir.resolve())
        provenance["project_dir"] = "flag"
    try:
        config = _build(Config, values, "", source)
        _check_ranges(config, source)
    except ConfigError as exc:
        raise _located(exc, lines, source, provenance) from None
    _fill_defaults(Config, "", provenance)
    if config.version != 1:
        raise ConfigError(
            f"unsupported config version {config.version}",
            "this release reads `version: 1`",
            path=source,
            line=lines.get("version"),
        )
    loaded = LoadedConfig(config=config, root=root, source=source, provenance=provenance)
    if not (loaded.project_dir / "dbt_project.yml").is_file():
        raise ConfigError(
            f"no dbt_project.yml in {loaded.project_dir}",
            "run from your dbt project, or pass --project-dir PATH",
        )
    return loaded


def _located(
    error: ConfigError, lines: Mapping[str, int], source: str, provenance: Mapping[str, str]
) -> ConfigError:
    """The same error, pointing at where the setting it names was set: the environment
    variable, or the line of the config file."""
    import re

    file = source.split(" [")[0]
    for key in re.findall(r"`([^`]+)`", error.message):
        dotted = re.sub(r"\[\d+\]$", "", key)
        message = error.message.removeprefix(f"{source}: ").removeprefix(f"{file}: ")
        origin = _origin(dotted, provenance)
        if origin is not None and origin.startswith("env "):
            return ConfigError(message, error.hint, path=origin)
        if dotted in lines:
            return ConfigError(message, error.hint, path=file, line=lines[dotted])
    return error


def _origin(dotted: str, provenance: Mapping[str, str]) -> str | None:
    """Where `dotted` (or the nearest enclosing setting that was set whole) came from."""
    if dotted in provenance:
        return provenance[dotted]
    # A setting that is not a section, given a key below it (`..._STATE_DIR__X`).
    below = [
        v for k, v in provenance.items() if k.startswith(dotted + ".") and v.startswith("env ")
    ]
    if below:
        return below[0]
    parts = dotted.split(".")
    for end in range(len(parts) - 1, 0, -1):
        origin = provenance.get(".".join(parts[:end]))
        if origin is not None:
            return origin
    return None


def _read_text(path: Path) -> str:
    from dataops_dev.statefiles import CONFIG_MAX_BYTES, InvalidFile, decode_text, read_bytes

    try:
        return decode_text(read_bytes(path, max_bytes=CONFIG_MAX_BYTES))
    except InvalidFile as exc:
        raise ConfigError(f"{path.name} {exc}", path=str(path)) from None


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    from dataops_dev.statefiles import InvalidFile, compose_yaml, parse_yaml, yaml_line

    text = _read_text(path)
    try:
        node = compose_yaml(text)
        if node is None:
            return {}, {}
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}", path=str(path), line=yaml_line(exc)
        ) from exc
    except InvalidFile as exc:
        if "holds" in str(exc):
            raise ConfigError("the config must be a mapping of settings", path=str(path)) from None
        raise ConfigError(f"{path.name} {exc}", path=str(path)) from None
    lines: dict[str, int] = {}
    _record_lines(node, "", lines)
    return data, lines


def _record_lines(node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            _record_lines(value_node, key + ".", lines)


def _merge_layers(
    raw: dict[str, Any],
    lines: dict[str, int],
    source: str,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any],
    provenance: dict[str, str],
) -> dict[str, Any]:
    values = copy.deepcopy(raw)
    file_label = source.split(" [")[0]
    for key in _leaf_keys(values):
        provenance[key] = f"{file_label}:{lines[key]}" if key in lines else file_label
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX) or not text:
            continue
        dotted = var[len(ENV_PREFIX) :].lower().replace("__", ".")
        try:
            _set_dotted(values, dotted, _env_value(var, dotted, text))
        except ConfigError as exc:
            raise ConfigError(exc.message, exc.hint, path=f"env {var}") from None
        provenance[dotted] = f"env {var}"
    for dotted, value in overrides.items():
        if value is None:
            continue
        _set_dotted(values, dotted, value)
        provenance[dotted] = "flag"
    return values


def _env_value(var: str, dotted: str, text: str) -> Any:
    """An environment variable's value: its text as is for a text setting (a branch `1.10` or
    `no` stays what was typed), else YAML (numbers, booleans, lists, mappings)."""
    tp = _setting_type(dotted)
    if _is_text(tp):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"invalid YAML for `{dotted}`: {problem}",
            f"set {var} to a YAML value: true, 3, [a, b], {{key: value}}",
        ) from exc
    if typing.get_origin(tp) is tuple and _is_text(typing.get_args(tp)[0]):
        # One item of a list of text: the text as typed, not YAML's reading of it.
        return value if isinstance(value, list) else text
    return value


def _setting_type(dotted: str) -> Any:
    """The declared type of a dotted setting (a key inside a mapping setting takes the
    mapping's value type); None when no such setting exists (validation says so later)."""
    tp: Any = Config
    for part in dotted.split("."):
        tp = _without_none(tp)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                return None
            tp = hints[part]
        elif typing.get_origin(tp) in (dict, Mapping, typing.get_origin(Mapping[str, int])):
            args = typing.get_args(tp)
            tp = args[1] if len(args) == 2 else Any
        else:
            return None
    return tp


def _without_none(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return tp


def _is_text(tp: Any) -> bool:
    tp = _without_none(tp)
    if tp is str:
        return True
    return typing.get_origin(tp) is Literal and all(isinstance(a, str) for a in typing.get_args(tp))


def _leaf_keys(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_leaf_keys(value, dotted + "."))
    return keys


def _set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    target = values
    for part in parts[:-1]:
        nxt = target.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {dotted}: {part} is not a section")
        target = nxt
    target[parts[-1]] = value


def _fill_defaults(cls: type, prefix: str, provenance: dict[str, str]) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}{f.name}"
        provenance.setdefault(dotted, "default")
        if dataclasses.is_dataclass(hints[f.name]):
            _fill_defaults(hints[f.name], dotted + ".", provenance)


# --------------------------------------------------------------------------------------------
# Validation: build dataclasses from plain values, strictly.


def _build(cls: type, values: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "the config"
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping, got {_type_name(values)}", path=source)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = (
                f"did you mean `{prefix}{close[0]}`?"
                if close
                else (f"valid keys here: {', '.join(names)}")
            )
            raise ConfigError(f"unknown setting `{prefix}{key}`", hint, path=source)
    kwargs = {
        name: _coerce(hints[name], values[name], f"{prefix}{name}", source)
        for name in names
        if name in values
    }
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key, source)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f"did you mean `{close[0]}`?" if close else None
            choices = ", ".join(str(a) for a in args)
            raise ConfigError(f"`{key}` must be one of {choices}, got {value!r}", hint, path=source)
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".", source)  # type: ignore[arg-type]
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"`{key}` must be a list, got {_type_name(value)}", path=source)
        item_type = args[0] if args else Any
        return tuple(_coerce(item_type, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, int]):
        if not isinstance(value, dict):
            raise ConfigError(f"`{key}` must be a mapping, got {_type_name(value)}", path=source)
        value_type = args[1] if len(args) == 2 else Any
        return types.MappingProxyType(
            {str(k): _coerce(value_type, v, f"{key}.{k}", source) for k, v in value.items()}
        )
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"`{key}` must be true or false, got {value!r}", path=source)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"`{key}` must be an integer, got {value!r}", path=source)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"`{key}` must be a number, got {value!r}", path=source)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"`{key}` must be text, got {_type_name(value)}", path=source)
    raise ConfigError(f"`{key}`: unsupported setting type {tp!r}", path=source)  # pragma: no cover


# dotted key -> (accepts the value, what it must be): values of the right type that would
# still break a run later (`threads: 0` fails inside dbt and looks like the model's fault;
# `ttl_days: -1` would make `env gc` drop environments built a second ago).
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "environments.ttl_days": (lambda v: v > 0, "a number of days above 0"),
    "environments.threads": (lambda v: 1 <= v <= 1024, "an integer from 1 to 1024"),
    "sample.rate": (lambda v: 0 < v <= 1, "a fraction above 0 and at most 1"),
    "sample.max_rows": (lambda v: v >= 1, "at least 1"),
    "masking.low_cardinality": (lambda v: v >= 0, "0 or more"),
    "masking.value_sample_size": (lambda v: v >= 0, "0 or more"),
    "diff.examples": (lambda v: v >= 0, "0 or more"),
    "diff.example_rows": (lambda v: v >= 0, "0 or more"),
}


def _check_ranges(config: Config, source: str) -> None:
    import math

    for dotted, (accepts, expected) in _RANGES.items():
        section, name = dotted.split(".")
        value = getattr(getattr(config, section), name)
        finite = not isinstance(value, float) or math.isfinite(value)
        if not (finite and accepts(value)):
            raise ConfigError(f"`{dotted}` must be {expected}, got {value!r}", path=source)
    for table, anchor in config.sample.anchors.items():
        if anchor.rate is not None and not 0 < anchor.rate <= 1:
            raise ConfigError(
                f"`sample.anchors.{table}.rate` must be a fraction above 0 and at most 1, "
                f"got {anchor.rate!r}",
                path=source,
            )
        if anchor.rows is not None and anchor.rows < 1:
            raise ConfigError(
                f"`sample.anchors.{table}.rows` must be at least 1, got {anchor.rows!r}",
                path=source,
            )


def _type_name(value: Any) -> str:
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "text"}
    return names.get(type(value), type(value).__name__)


def field_docs(cls: type = Config, prefix: str = "") -> dict[str, str]:
    """Dotted key -> the docstring written under the field (for `config show` and `init`)."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):  # pragma: no cover - source not available
        return docs
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[f"{prefix}{node.target.id}"] = nxt.value.value
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            docs.update(field_docs(hints[f.name], f"{prefix}{f.name}."))
    return docs


def as_plain(value: Any) -> Any:
    """Settings and records (dataclasses, mappings, also read-only proxies, sequences, sets,
    enums) as JSON-ready values in a stable form: what a fingerprint or a cache key hashes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): as_plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [as_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((as_plain(v) for v in value), key=repr)
    if isinstance(value, Enum):
        return as_plain(value.value)
    return value
