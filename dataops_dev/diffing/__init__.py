"""The diff engine: schema, rows by key and columns in one pass, profiles and a keyless fallback.

All SQL is generated (with sqlglot; a plain DuckDB diff as sqlglot's same text without loading it,
`duckdb_sql`) and runs inside the engine holding the data. Names are imported on first use, so
`from dataops_dev.diffing import diff_relations` loads only the keyed path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_MODEL = "dataops_dev.diffing.model"
_EXPORTS: dict[str, str] = {
    "ColumnDiff": _MODEL,
    "ColumnProfile": _MODEL,
    "ColumnProfileDiff": _MODEL,
    "DiffMode": _MODEL,
    "DiffOptions": _MODEL,
    "KeyStats": _MODEL,
    "ProfileDiff": _MODEL,
    "RowChange": _MODEL,
    "RowDiff": _MODEL,
    "RowExample": _MODEL,
    "SchemaDiff": _MODEL,
    "TableDiff": _MODEL,
    "TableProfile": _MODEL,
    "Tolerance": _MODEL,
    "TypeChange": _MODEL,
    "ValueExample": _MODEL,
    "diff_relations": "dataops_dev.diffing.rows",
    "discover_key": "dataops_dev.diffing.keys",
    "options_for_model": "dataops_dev.diffing.options",
    "profile_diff": "dataops_dev.diffing.profile",
    "profile_relation": "dataops_dev.diffing.profile",
    "suggest_keys": "dataops_dev.diffing.keyless",
}

__all__ = [
    "ColumnDiff",
    "ColumnProfile",
    "ColumnProfileDiff",
    "DiffMode",
    "DiffOptions",
    "KeyStats",
    "ProfileDiff",
    "RowChange",
    "RowDiff",
    "RowExample",
    "SchemaDiff",
    "TableDiff",
    "TableProfile",
    "Tolerance",
    "TypeChange",
    "ValueExample",
    "diff_relations",
    "discover_key",
    "options_for_model",
    "profile_diff",
    "profile_relation",
    "suggest_keys",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from dataops_dev.diffing.keyless import suggest_keys
    from dataops_dev.diffing.keys import discover_key
    from dataops_dev.diffing.model import (
        ColumnDiff,
        ColumnProfile,
        ColumnProfileDiff,
        DiffMode,
        DiffOptions,
        KeyStats,
        ProfileDiff,
        RowChange,
        RowDiff,
        RowExample,
        SchemaDiff,
        TableDiff,
        TableProfile,
        Tolerance,
        TypeChange,
        ValueExample,
    )
    from dataops_dev.diffing.options import options_for_model
    from dataops_dev.diffing.profile import profile_diff, profile_relation
    from dataops_dev.diffing.rows import diff_relations
