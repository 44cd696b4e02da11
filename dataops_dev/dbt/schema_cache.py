"""dbt's config schemas, kept between processes.

dbt validates what it parses against JSON schemas it builds from its own dataclasses
(`dbtClassMixin.json_schema`), once per class and process: about a quarter of the CPU of a
small project's first parse, paid again by every `review`, `build` and `sample`. A schema
depends only on the installed dbt packages, so it is stored under the user's cache directory,
in a file named by their versions, and read back by the next process. dbt still validates
everything against the same schemas; only building them is skipped.

A missing, unreadable or corrupt file is no cache (the schemas are built as dbt would), and a
cache that cannot be written is left unwritten.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

_PACKAGES = (
    "dbt-core",
    "dbt-common",
    "dbt-adapters",
    "mashumaro",
    "dbt-duckdb",
    "dbt-postgres",
    "dbt-spark",
)


class _Cache:
    def __init__(self, path: Path, known: dict[str, Any]) -> None:
        self.path = path
        self.known = known
        self.fresh: dict[str, Any] = {}


_installed: _Cache | None = None


def cache_dir() -> Path:
    """`$DATAOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/dataops_dev`, else `~/.cache/dataops_dev`."""
    explicit = os.environ.get("DATAOPS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dataops_dev"


def cache_file() -> Path:
    """The file for the dbt packages installed now."""
    from importlib.metadata import PackageNotFoundError, version

    versions = [sys.version.split()[0]]
    for package in _PACKAGES:
        try:
            versions.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package}: none")
    key = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16]
    return cache_dir() / f"dbt-config-schemas-{key}.json"


def install() -> None:
    """Serve dbt's config schemas from the cache (once per process; dbt must be importable)."""
    global _installed
    if _installed is not None:
        return
    try:
        from dbt_common.dataclass_schema import dbtClassMixin

        build = dbtClassMixin.__dict__["json_schema"].__func__
    except (ImportError, KeyError, AttributeError):  # another dbt_common: leave it as it is
        return
    path = cache_file()
    cache = _Cache(path, _read(path))

    @functools.lru_cache
    def json_schema(cls: type) -> Any:
        name = f"{cls.__module__}.{cls.__qualname__}"
        schema = cache.known.get(name)
        if schema is None:
            schema = build(cls)
            cache.fresh[name] = schema
        return schema

    dbtClassMixin.json_schema = classmethod(json_schema)  # type: ignore[assignment, arg-type]
    _installed = cache


def save() -> None:
    """Store the schemas built since the last save, beside the ones already stored."""
    cache = _installed
    if cache is None or not cache.fresh:
        return
    from dataops_dev.atomic import write_text_atomic

    cache.known = {**_read(cache.path), **cache.known, **cache.fresh}
    cache.fresh = {}
    with contextlib.suppress(OSError):  # a read-only home: dbt builds them next time
        cache.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cache.path, json.dumps(cache.known, sort_keys=True))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict)}
