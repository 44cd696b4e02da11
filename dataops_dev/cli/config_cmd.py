"""`dataops-dev config show`: the resolved configuration and where each value came from."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format


@click.group()
def config() -> None:
    """Inspect the configuration."""


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            out.update(_flatten(getattr(value, f.name), f"{prefix}{f.name}."))
        return out
    if hasattr(value, "items") and not isinstance(value, str):
        if not value:
            return {prefix.rstrip("."): {}}
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(value, tuple):
        value = list(value)
    return {prefix.rstrip("."): value}


@config.command("show")
@format_options(choices=("text", "json"))
@click.pass_obj
def show(app: AppContext, output_format: str, as_json: bool) -> None:
    """Print every setting, its value and its origin (file:line, env var, flag or default)."""
    loaded = app.loaded
    flat = _flatten(loaded.config)
    provenance = loaded.provenance

    def origin(key: str) -> str:
        while key:
            if key in provenance:
                return provenance[key]
            key = key.rpartition(".")[0]
        return "default"

    if resolve_format(output_format, as_json) == "json":
        emit_json(
            {
                "source": loaded.source,
                "project_dir": str(loaded.project_dir),
                "state_dir": str(loaded.state_dir),
                "settings": {k: {"value": v, "from": origin(k)} for k, v in flat.items()},
            }
        )
        return
    click.echo(f"# config: {loaded.source}")
    click.echo(f"# dbt project: {loaded.project_dir}")
    width = max(len(k) for k in flat)
    for key, value in flat.items():
        click.echo(f"{key.ljust(width)}  {value!r:<30}  # {origin(key)}")
