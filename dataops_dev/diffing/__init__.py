"""The diff engine: schema, rows by key and columns in one pass, profiles and a keyless fallback.

All SQL is generated with sqlglot and runs inside the engine holding the data.
"""

from __future__ import annotations

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
