"""Reading a dbt project without dbt: `dbt_project.yml` and the rendered profiles.yml outputs.

dbt's own import costs seconds, so anything that only needs names, paths or connection settings
reads the files here (values rendered with `env_var` the way dbt does).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataops_dev.config import LoadedConfig
from dataops_dev.errors import ConfigError, ProjectError


@dataclass(frozen=True)
class DbtProject:
    directory: Path
    name: str
    profile: str
    model_paths: tuple[str, ...] = ("models",)
    macro_paths: tuple[str, ...] = ("macros",)
    seed_paths: tuple[str, ...] = ("seeds",)
    vars: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


def read_project(directory: Path) -> DbtProject:
    path = directory / "dbt_project.yml"
    from dataops_dev.statefiles import load_yaml

    try:
        data = load_yaml(
            path,
            what="dbt project file",
            fix="fix it (dbt reads it too)",
            empty={},
            error=ProjectError,
        )
    except FileNotFoundError as exc:
        raise ProjectError(f"no dbt_project.yml in {directory}", "pass --project-dir") from exc
    name = data.get("name")
    if not name:
        raise ProjectError(f"{path} has no `name`")
    return DbtProject(
        directory=directory,
        name=str(name),
        profile=str(data.get("profile") or name),
        model_paths=tuple(data.get("model-paths") or data.get("source-paths") or ("models",)),
        macro_paths=tuple(data.get("macro-paths") or ("macros",)),
        seed_paths=tuple(data.get("seed-paths") or data.get("data-paths") or ("seeds",)),
        vars=data.get("vars") or {},
        raw=data,
    )


def _render_value(value: Any, where: str) -> Any:
    """Render `{{ env_var('X', 'default') }}` (and other plain Jinja) in one profile value."""
    if isinstance(value, dict):
        return {k: _render_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, where) for v in value]
    if not isinstance(value, str) or "{{" not in value and "{%" not in value:
        return value
    import jinja2

    def env_var(name: str, default: str | None = None) -> str:
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ProjectError(
            f"profiles.yml ({where}) needs environment variable {name}",
            f"export {name}=... and retry",
        )

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    try:
        rendered = environment.from_string(value).render(env_var=env_var)
    except jinja2.TemplateError as exc:
        raise ProjectError(f"profiles.yml ({where}): cannot render {value!r}: {exc}") from exc
    # dbt turns rendered numbers/booleans back into native values (e.g. port: "{{ ... }}").
    try:
        parsed = yaml.safe_load(rendered)
    except yaml.YAMLError:
        return rendered
    return parsed if isinstance(parsed, int | float | bool) else rendered


def load_profile(
    loaded: LoadedConfig, *, text: str | None = None, where: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(profile name, the profile mapping with `target` and rendered `outputs`).

    Read from `loaded.profiles_dir`, or from `text` (profiles.yml as another commit has it,
    named `where` in messages).
    """
    project = read_project(loaded.project_dir)
    name = loaded.config.profile or project.profile
    from dataops_dev.statefiles import InvalidFile, load_yaml, parse_yaml

    path: Path | str = where or loaded.profiles_dir / "profiles.yml"
    fix = "fix it, then check it with `dbt debug`"
    if text is None:
        try:
            data = load_yaml(Path(path), what="profiles file", fix=fix, empty={}, error=ConfigError)
        except FileNotFoundError as exc:
            raise ProjectError(
                f"no profiles.yml in {loaded.profiles_dir}",
                "set `profiles_dir` in dataops_dev.yml or DBT_PROFILES_DIR",
            ) from exc
    else:
        try:
            data = parse_yaml(text, shape=dict, empty={})
        except InvalidFile as exc:
            raise ConfigError(f"profiles file {path} {exc}", fix) from None
    profile = data.get(name)
    if not isinstance(profile, dict) or not isinstance(profile.get("outputs"), dict):
        raise ProjectError(
            f"profile {name!r} not found in {path}",
            "set `profile` in dataops_dev.yml to the profile your project uses",
        )
    outputs = {
        str(target): _checked_output(
            _render_value(output, f"{name}.outputs.{target}"), f"{name}.outputs.{target}", path
        )
        for target, output in profile["outputs"].items()
    }
    return name, {"target": profile.get("target"), "outputs": outputs}


def _checked_output(output: Any, where: str, path: Path | str) -> dict[str, Any]:
    """A target's settings; a `ConfigError` naming profiles.yml for values dbt would only
    reject mid-build (where the failure would look like the model's)."""
    fix = "fix it, then check it with `dbt debug`"
    if not isinstance(output, dict):
        raise ConfigError(f"{path}: `{where}` must be a mapping of settings", fix)
    if not isinstance(output.get("type"), str):
        raise ConfigError(f"{path}: `{where}.type` must name a dbt adapter", fix)
    threads = output.get("threads")
    if threads is not None and (
        not isinstance(threads, int) or isinstance(threads, bool) or threads < 1
    ):
        raise ConfigError(f"{path}: `{where}.threads` must be an integer of 1 or more", fix)
    return output


def load_profile_target(loaded: LoadedConfig, target: str | None = None) -> dict[str, Any]:
    """The rendered output of `target` from profiles.yml; without one, the production target,
    resolved from the main branch's side (a branch cannot move production: see trust.py)."""
    if target is None:
        from dataops_dev.trust import production_output

        return production_output(loaded)
    return working_tree_target(loaded, target)


def working_tree_target(
    loaded: LoadedConfig,
    target: str | None = None,
    *,
    profiles_text: str | None = None,
    profiles_where: str | None = None,
) -> dict[str, Any]:
    """The rendered output of `target` (default: the production target) as `loaded` and the
    profiles.yml on disk (or `profiles_text`) have it."""
    target = target or loaded.config.production.target
    _, profile = load_profile(loaded, text=profiles_text, where=profiles_where)
    outputs = profile["outputs"]
    if target not in outputs:
        import difflib

        close = difflib.get_close_matches(target, list(outputs), n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"targets: {', '.join(outputs)}"
        raise ConfigError(f"dbt target {target!r} is not in the profile", hint)
    output = dict(outputs[target])
    output["_target_name"] = target
    return output


def duckdb_path(loaded: LoadedConfig, output: Mapping[str, Any]) -> Path:
    """The absolute file of a DuckDB output (relative paths are relative to the project)."""
    path = str(output.get("path") or "")
    if not path or path == ":memory:":
        raise ProjectError(
            f"dbt target {output.get('_target_name')!r} has no DuckDB file path",
            "production must be a DuckDB file (or use backend.type: warehouse)",
        )
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() else (loaded.project_dir / resolved).resolve()


def database_name_of(output: Mapping[str, Any]) -> str:
    """The database name dbt uses for a target (DuckDB: the file's stem unless set)."""
    if output.get("type") == "duckdb":
        if output.get("database"):
            return str(output["database"])
        path = str(output.get("path") or "memory")
        return "memory" if path == ":memory:" else Path(path).stem
    return str(output.get("dbname") or output.get("database") or "")
