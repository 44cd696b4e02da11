"""Reading the files dataops_dev trusts least: state, caches, config, profiles, approvals.

Every reader bounds size and nesting, accepts only plain YAML (no `!!python/...` tags), checks the
top-level shape, and fails with `InvalidFile` (the reason). `load_*` name the file and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dataops_dev.errors import DataopsError, StateFileError

MAX_DEPTH = 100
"""Deepest nesting of lists/mappings accepted (our own files stay below 15)."""
MAX_YAML_VALUES = 1_000_000
"""Most values a YAML file may expand to through aliases."""
MAX_BYTES = 256 * 1024 * 1024
"""Largest state file read (reports of large projects are tens of MB)."""
CONFIG_MAX_BYTES = 4 * 1024 * 1024
"""Largest config, profiles or approvals file read."""

Shape = type | tuple[type, ...]


class InvalidFile(ValueError):
    """A file cannot be used; the message is the reason (the caller names the file)."""


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}
    return names.get(type(value), type(value).__name__)


def _shape_name(shape: Shape) -> str:
    options = shape if isinstance(shape, tuple) else (shape,)
    return " or ".join(_kind(t()) for t in options)


def read_bytes(path: Path, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The file's bytes; `InvalidFile` when it is too large or cannot be read.

    A missing file raises FileNotFoundError as usual: missing and corrupt mean different fixes.
    """
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InvalidFile(f"cannot be read ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise InvalidFile(f"is larger than {max_bytes // (1024 * 1024)} MB")
    return data


def decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidFile(f"is not UTF-8 text (byte {exc.start})") from exc
    if "\x00" in text:
        raise InvalidFile("is binary, not text")
    return text


_CONTAINERS = (dict, list)


def check_depth(value: Any, max_depth: int = MAX_DEPTH, max_values: int | None = None) -> None:
    """`InvalidFile` when lists/mappings nest deeper than `max_depth` (iterative: no recursion,
    so what later walks the value recursively cannot overflow). A YAML alias that contains
    itself nests without end; `max_values` bounds what aliases expand to ("billion laughs")."""
    # Level by level, keeping only the containers: a manifest is a few levels of mostly text,
    # so this visits each value once in a comprehension instead of a Python loop per value
    # (isinstance with a tuple: ~1/3 faster than with a `dict | list` union, 280,000 values).
    level = [value] if isinstance(value, _CONTAINERS) else []
    visited = 1
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise InvalidFile(f"nests deeper than {max_depth} levels")
        following: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            visited += len(children)
            if max_values is not None and visited > max_values:
                raise InvalidFile(f"expands to more than {max_values:,} values (YAML aliases?)")
            following += [child for child in children if isinstance(child, _CONTAINERS)]
        level = following


def check_shape(value: Any, shape: Shape) -> Any:
    if not isinstance(value, shape):
        raise InvalidFile(f"holds {_kind(value)} where {_shape_name(shape)} was expected")
    return value


def parse_json(text: str, *, shape: Shape = dict, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = "is truncated" if exc.pos >= len(text.rstrip()) else "is not valid JSON"
        raise InvalidFile(f"{reason} (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except RecursionError as exc:
        raise InvalidFile(f"nests deeper than {max_depth} levels") from exc
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise InvalidFile(f"is not valid JSON ({exc})") from exc
    check_depth(value, max_depth)
    return check_shape(value, shape)


class _PlainLoader(yaml.SafeLoader):
    """yaml's safe loader that also stops at `max_depth` before Python's recursion limit and
    names a `!!python/...` (or any unknown) tag instead of failing on a constructor."""

    max_depth = MAX_DEPTH

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                mark = self.peek_event().start_mark
                raise InvalidFile(
                    f"nests deeper than {self.max_depth} levels (line {mark.line + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise InvalidFile(
        f"uses the tag {node.tag} at line {node.start_mark.line + 1}: only plain YAML"
    )


_PlainLoader.add_constructor(None, _refuse_tag)


def yaml_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def parse_yaml(text: str, *, shape: Shape = dict, empty: Any = None) -> Any:
    """Plain YAML (safe types only); an empty document is `empty` (then the shape applies)."""
    loader = _PlainLoader(text)
    try:
        value = loader.get_single_data()
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = yaml_line(exc)
        raise InvalidFile(
            f"is not valid YAML ({problem}{f', line {line}' if line else ''})"
        ) from exc
    except RecursionError as exc:
        raise InvalidFile(f"nests deeper than {MAX_DEPTH} levels") from exc
    finally:
        loader.dispose()
    if value is None:
        value = empty
    # Only aliases can make a small file expand without bound ("billion laughs").
    check_depth(value, MAX_DEPTH, MAX_YAML_VALUES if loader.aliases else None)
    return check_shape(value, shape)


def compose_yaml(text: str) -> yaml.Node | None:
    """The YAML node tree (for line numbers), with the same depth limit as `parse_yaml`."""
    try:
        return yaml.compose(text, Loader=_PlainLoader)  # noqa: S506 - a safe loader
    except RecursionError as exc:
        raise InvalidFile(f"nests deeper than {MAX_DEPTH} levels") from exc


DUCKDB_HEADER_BYTES = 3 * 4096
"""A DuckDB file's main header and its two database headers, before the first block."""


def check_duckdb_connection(connection: Any, path: Path) -> None:
    """`InvalidFile` when the DuckDB file behind `connection` is shorter than the blocks in use
    its header counts: DuckDB opens a truncated file (the catalog comes first) and only fails
    when a query reaches a missing block. Free blocks are not counted: a checkpoint that frees
    the last blocks cuts them off the file, which is then whole but shorter than all blocks."""
    row = connection.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchone()
    block_size, blocks = row if row else (0, 0)
    expected = DUCKDB_HEADER_BYTES + int(block_size) * int(blocks)
    size = path.stat().st_size
    if size < expected:
        raise InvalidFile(f"is truncated ({size:,} of {expected:,} bytes)")


# --------------------------------------------------------------------------------------------
# Loading with the file and the fix named


def load_json(
    path: Path,
    *,
    what: str,
    fix: str,
    shape: Shape = dict,
    error: Callable[[str, str], DataopsError] = StateFileError,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """A JSON file of ours; `error(message, hint)` naming `what`, the file and `fix` when it is
    unusable (FileNotFoundError passes through)."""
    try:
        return parse_json(decode_text(read_bytes(path, max_bytes=max_bytes)), shape=shape)
    except InvalidFile as exc:
        raise error(f"{what} {path} {exc}", fix) from None


def load_yaml(
    path: Path,
    *,
    what: str,
    fix: str,
    shape: Shape = dict,
    empty: Any = None,
    error: Callable[[str, str], DataopsError] = StateFileError,
    max_bytes: int = CONFIG_MAX_BYTES,
) -> Any:
    """A YAML file, read like `load_json`; an empty file is `empty`."""
    try:
        text = decode_text(read_bytes(path, max_bytes=max_bytes))
        return parse_yaml(text, shape=shape, empty=empty)
    except InvalidFile as exc:
        raise error(f"{what} {path} {exc}", fix) from None


def read_cache_json(path: Path, *, shape: Shape = dict) -> Any | None:
    """A cache entry, or None when it is missing or unusable (the caller rebuilds it)."""
    try:
        return parse_json(decode_text(read_bytes(path)), shape=shape)
    except (OSError, InvalidFile):
        return None
