"""Typed results of the diff engine: options in, frozen results out, each with a stable `to_dict()`.

Renderers (text, markdown, TUI, JSON) format these values and never recompute them.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class RowChange(str, Enum):
    """How a keyed row differs between left (base) and right (head)."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


class DiffMode(str, Enum):
    """`keyed`: rows matched by key; `keyless`: rows compared as a multiset of whole rows."""

    KEYED = "keyed"
    KEYLESS = "keyless"


class RenameReason(str, Enum):
    DECLARED = "declared"
    """Given by the caller (e.g. from column lineage)."""
    VALUES = "values"
    """A removed and an added column hold identical values on every matched row."""


TIMESTAMP_PRECISIONS = ("day", "hour", "minute", "second", "millisecond", "microsecond")


@dataclass(frozen=True)
class Tolerance:
    """Two numbers are equal when |a-b| <= abs or |a-b| <= rel * max(|a|, |b|)."""

    abs: float = 0.0
    rel: float = 0.0


@dataclass(frozen=True)
class DiffOptions:
    """How to compare two relations. Column names refer to the right (head) side."""

    examples: int = 5
    """Example values kept per changed column (key, before, after)."""
    example_rows: int = 20
    """Example rows kept overall (added, removed and changed rows)."""
    tolerance: Mapping[str, Tolerance] = field(default_factory=lambda: _EMPTY)
    """Per-column numeric tolerance; columns not named are compared exactly."""
    timestamp_precision: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Per-column precision ("second", "millisecond", ...): values are truncated before comparing."""
    casts: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Per-column SQL type both sides are cast to before comparing (for type changes)."""
    renames: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Declared renames: right (new) column name -> left (old) column name."""
    exclude: tuple[str, ...] = ()
    """Columns left out of the comparison (still reported by the schema diff)."""
    detect_renames: bool = True
    """Look for removed/added column pairs whose values are identical (one extra join)."""
    strict: bool = True
    """False (config-driven runs such as `review`): a key column missing on either side falls
    back to the keyless diff, and tolerance/precision on a column of the wrong type is ignored;
    both are recorded in `TableDiff.notes`. True (explicit requests): they are usage errors."""


@dataclass(frozen=True)
class ColumnType:
    name: str
    data_type: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.data_type}


@dataclass(frozen=True)
class TypeChange:
    name: str
    left_type: str
    right_type: str
    compared_as: str
    """The SQL type both sides were cast to for the value comparison."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "left_type": self.left_type,
            "right_type": self.right_type,
            "compared_as": self.compared_as,
        }


@dataclass(frozen=True)
class Rename:
    left: str
    right: str
    reason: RenameReason

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.left, "to": self.right, "reason": self.reason.value}


@dataclass(frozen=True)
class SchemaDiff:
    added: tuple[ColumnType, ...] = ()
    removed: tuple[ColumnType, ...] = ()
    type_changed: tuple[TypeChange, ...] = ()
    renamed: tuple[Rename, ...] = ()
    reordered: bool = False
    """Same columns in a different order (informational; values are compared by name)."""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.type_changed or self.renamed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [c.to_dict() for c in self.added],
            "removed": [c.to_dict() for c in self.removed],
            "type_changed": [c.to_dict() for c in self.type_changed],
            "renamed": [r.to_dict() for r in self.renamed],
            "reordered": self.reordered,
        }


@dataclass(frozen=True)
class KeyStats:
    """Key quality on each side. Rows with a NULL in any key column are left out of the match;
    keys that occur more than once on either side are left out too and only counted here."""

    columns: tuple[str, ...]
    null_left: int = 0
    null_right: int = 0
    duplicate_left: int = 0
    """Distinct key values occurring more than once on the left."""
    duplicate_right: int = 0
    duplicate_rows_left: int = 0
    """Left rows carrying such a key."""
    duplicate_rows_right: int = 0
    excluded_left: int = 0
    """Left rows left out of added/removed/changed/unchanged (NULL key, or key duplicated on
    either side)."""
    excluded_right: int = 0

    @property
    def clean(self) -> bool:
        return not (
            self.null_left or self.null_right or self.duplicate_left or self.duplicate_right
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "null_left": self.null_left,
            "null_right": self.null_right,
            "duplicate_left": self.duplicate_left,
            "duplicate_right": self.duplicate_right,
            "duplicate_rows_left": self.duplicate_rows_left,
            "duplicate_rows_right": self.duplicate_rows_right,
            "excluded_left": self.excluded_left,
            "excluded_right": self.excluded_right,
        }


@dataclass(frozen=True)
class RowDiff:
    """Row counts. Keyed: left = removed + changed + unchanged + keys.excluded_left (and the same
    for right with added). Keyless: rows are a multiset; `only_left`/`only_right` count copies."""

    mode: DiffMode
    left: int
    right: int
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    only_left: int = 0
    only_right: int = 0
    duplicate_left: int = 0
    """Keyless: rows that are extra copies of another row on the left."""
    duplicate_right: int = 0

    @property
    def compared(self) -> int:
        """Rows matched by key on both sides (keyed mode)."""
        return self.changed + self.unchanged

    @property
    def has_differences(self) -> bool:
        if self.mode is DiffMode.KEYLESS:
            return bool(self.only_left or self.only_right)
        return bool(self.added or self.removed or self.changed)

    @property
    def delta(self) -> int:
        return self.right - self.left

    def to_dict(self) -> dict[str, Any]:
        if self.mode is DiffMode.KEYLESS:
            return {
                "left": self.left,
                "right": self.right,
                "only_left": self.only_left,
                "only_right": self.only_right,
                "duplicate_left": self.duplicate_left,
                "duplicate_right": self.duplicate_right,
            }
        return {
            "left": self.left,
            "right": self.right,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True)
class ValueExample:
    key: tuple[Any, ...]
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": [json_value(v) for v in self.key],
            "before": json_value(self.before),
            "after": json_value(self.after),
        }


@dataclass(frozen=True)
class ColumnDiff:
    """One compared column: how many matched rows differ (NULL-safe, after cast/tolerance)."""

    name: str
    changed: int
    compared: int
    examples: tuple[ValueExample, ...] = ()
    left_name: str | None = None
    """The left column when it differs from `name` (rename)."""
    compared_as: str | None = None
    """The cast type when the column's type changed or a cast was declared."""
    tolerance: Tolerance | None = None
    timestamp_precision: str | None = None

    @property
    def match_pct(self) -> float | None:
        """Percent of matched rows whose value is equal; None when no row was matched."""
        if self.compared == 0:
            return None
        return round(100.0 * (self.compared - self.changed) / self.compared, 4)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "changed": self.changed,
            "match_pct": self.match_pct,
            "examples": [e.to_dict() for e in self.examples],
        }
        if self.left_name is not None:
            out["left_name"] = self.left_name
        if self.compared_as is not None:
            out["compared_as"] = self.compared_as
        if self.tolerance is not None:
            out["tolerance"] = {"abs": self.tolerance.abs, "rel": self.tolerance.rel}
        if self.timestamp_precision is not None:
            out["timestamp_precision"] = self.timestamp_precision
        return out


@dataclass(frozen=True)
class RowExample:
    """One example row: `before`/`after` hold the compared columns (only the changed ones for a
    changed row); None on the side where the row does not exist."""

    kind: RowChange
    key: tuple[Any, ...]
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": [json_value(v) for v in self.key],
            "before": _json_row(self.before),
            "after": _json_row(self.after),
        }


@dataclass(frozen=True)
class TableDiff:
    """The whole comparison of two relations."""

    left: str
    right: str
    dialect: str
    schema: SchemaDiff
    rows: RowDiff
    key: tuple[str, ...] | None
    keys: KeyStats | None = None
    columns: tuple[ColumnDiff, ...] = ()
    examples: tuple[RowExample, ...] = ()
    only_left_examples: tuple[Mapping[str, Any], ...] = ()
    """Keyless: example rows present (more often) only on the left."""
    only_right_examples: tuple[Mapping[str, Any], ...] = ()
    candidate_keys: tuple[tuple[str, ...], ...] = ()
    """Keyless: columns unique and not NULL on both sides, usable as a key next time."""
    timings: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    notes: tuple[str, ...] = ()
    """What the engine decided on its own (e.g. fell back to keyless: key column missing)."""

    @property
    def mode(self) -> DiffMode:
        return self.rows.mode

    @property
    def keyless(self) -> bool:
        return self.rows.mode is DiffMode.KEYLESS

    @property
    def changed_columns(self) -> tuple[ColumnDiff, ...]:
        return tuple(c for c in self.columns if c.changed)

    @property
    def has_differences(self) -> bool:
        return self.schema.changed or self.rows.has_differences

    def column(self, name: str) -> ColumnDiff:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "left": self.left,
            "right": self.right,
            "mode": self.mode.value,
            "key": list(self.key) if self.key else None,
            "schema": self.schema.to_dict(),
            "rows": self.rows.to_dict(),
            "keys": self.keys.to_dict() if self.keys else None,
            "columns": [c.to_dict() for c in self.columns],
            "examples": [e.to_dict() for e in self.examples],
            "notes": list(self.notes),
        }
        if self.keyless:
            out["only_left_examples"] = [_json_row(r) for r in self.only_left_examples]
            out["only_right_examples"] = [_json_row(r) for r in self.only_right_examples]
            out["candidate_keys"] = [list(k) for k in self.candidate_keys]
        return out


def _json_row(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {k: json_value(v) for k, v in row.items()}


def json_value(value: Any) -> Any:
    """A JSON-safe form of a database value (lossless where JSON allows)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


# --------------------------------------------------------------------------------------------
# Profiles


@dataclass(frozen=True)
class TopValue:
    value: str
    """The value's text form (NULLs are counted in `ColumnProfile.nulls`, not here)."""
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count}


@dataclass(frozen=True)
class HistogramBin:
    lower: float
    upper: float
    """Bounds as numbers (epoch seconds for dates and timestamps)."""
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper, "count": self.count}


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    data_type: str
    family: str
    """"numeric", "temporal", "boolean", "text" or "other"."""
    rows: int
    nulls: int
    distinct: int
    min: Any = None
    max: Any = None
    mean: float | None = None
    quantiles: tuple[tuple[float, Any], ...] = ()
    """(fraction, value) pairs: 0.25, 0.5, 0.75."""
    top_values: tuple[TopValue, ...] = ()
    histogram: tuple[HistogramBin, ...] = ()

    @property
    def null_pct(self) -> float | None:
        return None if not self.rows else round(100.0 * self.nulls / self.rows, 4)

    @property
    def distinct_pct(self) -> float | None:
        present = self.rows - self.nulls
        return None if not present else round(100.0 * self.distinct / present, 4)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.data_type,
            "family": self.family,
            "rows": self.rows,
            "nulls": self.nulls,
            "null_pct": self.null_pct,
            "distinct": self.distinct,
            "min": json_value(self.min),
            "max": json_value(self.max),
            "mean": json_value(self.mean),
            "quantiles": [[q, json_value(v)] for q, v in self.quantiles],
            "top_values": [t.to_dict() for t in self.top_values],
            "histogram": [b.to_dict() for b in self.histogram],
        }


@dataclass(frozen=True)
class TableProfile:
    relation: str
    rows: int
    columns: tuple[ColumnProfile, ...]

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns],
        }


_PROFILE_STATS = ("rows", "nulls", "distinct", "min", "max", "mean", "quantiles", "top_values")


@dataclass(frozen=True)
class ColumnProfileDiff:
    name: str
    left: ColumnProfile | None
    right: ColumnProfile | None

    @property
    def changed_stats(self) -> tuple[str, ...]:
        """The statistics that differ (all of them when the column exists on one side only)."""
        if self.left is None or self.right is None:
            return _PROFILE_STATS
        return tuple(s for s in _PROFILE_STATS if getattr(self.left, s) != getattr(self.right, s))

    @property
    def null_delta(self) -> int | None:
        if self.left is None or self.right is None:
            return None
        return self.right.nulls - self.left.nulls

    @property
    def distinct_delta(self) -> int | None:
        if self.left is None or self.right is None:
            return None
        return self.right.distinct - self.left.distinct

    @property
    def mean_delta(self) -> float | None:
        if self.left is None or self.right is None:
            return None
        if self.left.mean is None or self.right.mean is None:
            return None
        return self.right.mean - self.left.mean

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "changed_stats": list(self.changed_stats),
            "null_delta": self.null_delta,
            "distinct_delta": self.distinct_delta,
            "mean_delta": json_value(self.mean_delta),
            "left": self.left.to_dict() if self.left else None,
            "right": self.right.to_dict() if self.right else None,
        }


@dataclass(frozen=True)
class ProfileDiff:
    left: TableProfile
    right: TableProfile
    columns: tuple[ColumnProfileDiff, ...]

    @property
    def changed_columns(self) -> tuple[ColumnProfileDiff, ...]:
        return tuple(c for c in self.columns if c.changed_stats)

    def to_dict(self) -> dict[str, Any]:
        return {
            "left": {"relation": self.left.relation, "rows": self.left.rows},
            "right": {"relation": self.right.relation, "rows": self.right.rows},
            "columns": [c.to_dict() for c in self.columns],
        }
