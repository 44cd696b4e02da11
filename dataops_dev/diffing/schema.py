"""Schema diff and the comparison plan: which columns are compared, under which name and cast.

Type-changed columns are still compared: both sides are cast to the head type when that cast is
lossless (INT -> BIGINT, VARCHAR(10) -> TEXT, DATE -> TIMESTAMP, ...), otherwise both to text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ParseError

from dataops_dev.diffing.model import (
    TIMESTAMP_PRECISIONS,
    ColumnType,
    DiffOptions,
    Rename,
    RenameReason,
    SchemaDiff,
    Tolerance,
    TypeChange,
)
from dataops_dev.engines.base import Column
from dataops_dev.errors import UsageError

T = exp.DataType.Type

_SIGNED = {T.TINYINT: 1, T.SMALLINT: 2, T.INT: 3, T.BIGINT: 4, T.INT128: 5}
_UNSIGNED = {T.UTINYINT: 1, T.USMALLINT: 2, T.UINT: 3, T.UBIGINT: 4, T.UINT128: 5}
_INT_DIGITS = {1: 3, 2: 5, 3: 10, 4: 20, 5: 39}
_TEXT = {T.VARCHAR, T.TEXT, T.NVARCHAR, T.NAME}
# DuckDB's TIMESTAMP parses as TIMESTAMPNTZ, PostgreSQL's `timestamp without time zone` as TIMESTAMP.
_TIMESTAMPS = {
    T.TIMESTAMP_S: 0,
    T.TIMESTAMP_MS: 1,
    T.TIMESTAMP: 2,
    T.TIMESTAMPNTZ: 2,
    T.DATETIME: 2,
    T.TIMESTAMP_NS: 3,
}
_NUMERIC = {*_SIGNED, *_UNSIGNED, T.FLOAT, T.DOUBLE, T.DECIMAL, T.BIGDECIMAL}
_TEMPORAL = {T.DATE, T.TIMESTAMPTZ, T.TIMESTAMPLTZ, *_TIMESTAMPS}
# PostgreSQL types without an equality operator: compare their text form instead.
_NO_EQUALITY = {T.JSON, T.XML, T.POINT, T.POLYGON}


def text_type(dialect: str) -> str:
    return {"postgres": "TEXT", "spark": "STRING"}.get(dialect, "VARCHAR")


@dataclass(frozen=True)
class KeyColumn:
    name: str
    cast: str | None = None
    """SQL type both sides' key values are cast to (when the key's type changed)."""


@dataclass(frozen=True)
class CompareColumn:
    """One column compared by value: `left_name` on the left, `name` on the right."""

    name: str
    left_name: str
    data_type: str
    cast: str | None = None
    tolerance: Tolerance | None = None
    precision: str | None = None


@dataclass(frozen=True)
class ComparePlan:
    schema: SchemaDiff
    key: tuple[KeyColumn, ...]
    columns: tuple[CompareColumn, ...]
    rename_candidates: tuple[tuple[Column, Column], ...] = ()
    """(removed left column, added right column) pairs of the same type, to test by values."""
    notes: tuple[str, ...] = ()
    """Rules dropped or fallbacks taken in non-strict mode."""


def parse_type(data_type: str, dialect: str) -> exp.DataType | None:
    try:
        return exp.DataType.build(data_type, dialect=dialect)
    except (ParseError, ValueError, TypeError):
        # TypeError: text that parses, but not as one type (`int; drop table t`).
        return None


def same_type(left: str, right: str, dialect: str) -> bool:
    if left.strip().upper() == right.strip().upper():
        return True
    a, b = parse_type(left, dialect), parse_type(right, dialect)
    return a is not None and b is not None and a.sql(dialect) == b.sql(dialect)


def _params(data_type: exp.DataType) -> list[int]:
    values = []
    for param in data_type.expressions:
        try:
            values.append(int(param.name if param.name else param.sql()))
        except ValueError:
            return []
    return values


def is_safe_cast(left: exp.DataType, right: exp.DataType) -> bool:
    """True when every value of type `left` is represented exactly in type `right`."""
    a, b = left.this, right.this
    if a in _SIGNED and b in _SIGNED:
        return _SIGNED[a] <= _SIGNED[b]
    if a in _UNSIGNED and b in _UNSIGNED:
        return _UNSIGNED[a] <= _UNSIGNED[b]
    if a in _UNSIGNED and b in _SIGNED:
        return _UNSIGNED[a] < _SIGNED[b]
    rank = _SIGNED.get(a) or _UNSIGNED.get(a)
    if rank and b is T.DOUBLE:
        return rank <= 3
    if rank and b is T.FLOAT:
        return rank <= 2
    if a is T.FLOAT and b is T.DOUBLE:
        return True
    if b in (T.DECIMAL, T.BIGDECIMAL):
        target = _params(right)
        if not target:
            # PostgreSQL's unconstrained numeric holds any integer or decimal exactly.
            return bool(rank) or a in (T.DECIMAL, T.BIGDECIMAL)
        precision, scale = target[0], target[1] if len(target) > 1 else 0
        if rank:
            return precision - scale >= _INT_DIGITS[rank]
        if a in (T.DECIMAL, T.BIGDECIMAL):
            source = _params(left)
            if not source:
                return False
            p, s = source[0], source[1] if len(source) > 1 else 0
            return scale >= s and precision - scale >= p - s
        return False
    if a in _TEXT and b in _TEXT:
        source, target = _params(left), _params(right)
        return not target or (bool(source) and source[0] <= target[0])
    if a is T.DATE and b in _TIMESTAMPS:
        return True
    if a in _TIMESTAMPS and b in _TIMESTAMPS:
        return _TIMESTAMPS[a] <= _TIMESTAMPS[b]
    return False


def comparison_type(left_type: str, right_type: str, dialect: str) -> str:
    """The type both sides are cast to when the column's type changed."""
    left, right = parse_type(left_type, dialect), parse_type(right_type, dialect)
    if left is not None and right is not None and is_safe_cast(left, right):
        return right.sql(dialect)
    return text_type(dialect)


def _needs_text(data_type: str, dialect: str) -> bool:
    parsed = parse_type(data_type, dialect)
    return dialect == "postgres" and parsed is not None and parsed.this in _NO_EQUALITY


def type_family(data_type: str, dialect: str) -> str:
    """ "numeric", "temporal", "boolean", "text" or "other" (drives tolerance and histograms)."""
    parsed = parse_type(data_type, dialect)
    if parsed is None:
        return "other"
    if parsed.this in _NUMERIC:
        return "numeric"
    if parsed.this in _TEMPORAL:
        return "temporal"
    if parsed.this is T.BOOLEAN:
        return "boolean"
    if parsed.this in _TEXT or parsed.this is T.CHAR:
        return "text"
    return "other"


def plan_comparison(
    left: Sequence[Column],
    right: Sequence[Column],
    key: Sequence[str] | None,
    options: DiffOptions,
    dialect: str,
) -> ComparePlan:
    """Compare the two column lists and decide how each shared column is compared."""
    left_by_name = {c.name: c for c in left}
    right_by_name = {c.name: c for c in right}
    _check_options(options, right_by_name, dialect)
    declared = {new: old for new, old in options.renames.items()}
    for new, old in declared.items():
        if new not in right_by_name or old not in left_by_name:
            raise UsageError(
                f"declared rename {old} -> {new} does not match the columns",
                "name an existing left column and an existing right column",
            )
    renamed_left = set(declared.values())
    added = tuple(
        ColumnType(c.name, c.data_type)
        for c in right
        if c.name not in left_by_name and c.name not in declared
    )
    removed = tuple(
        ColumnType(c.name, c.data_type)
        for c in left
        if c.name not in right_by_name and c.name not in renamed_left
    )
    key_columns: list[KeyColumn] = []
    notes: list[str] = []
    missing = [n for n in key or () if n not in left_by_name or n not in right_by_name]
    if missing and not options.strict:
        notes.append(
            f"key column(s) {', '.join(missing)} missing on one side: compared without a key"
        )
        key = None
    for name in key or ():
        if name not in left_by_name or name not in right_by_name:
            side = "left" if name not in left_by_name else "right"
            raise UsageError(
                f"key column {name!r} is not in the {side} relation",
                "pass --key with columns present on both sides (or omit it for a keyless diff)",
            )
        lt, rt = left_by_name[name].data_type, right_by_name[name].data_type
        cast = None if same_type(lt, rt, dialect) else comparison_type(lt, rt, dialect)
        key_columns.append(KeyColumn(name, cast))
    key_names = {k.name for k in key_columns}

    type_changes: list[TypeChange] = []
    columns: list[CompareColumn] = []
    for column in right:
        left_name = declared.get(column.name, column.name)
        if left_name not in left_by_name or column.name in key_names:
            continue
        left_type = left_by_name[left_name].data_type
        cast = options.casts.get(column.name)
        if not same_type(left_type, column.data_type, dialect):
            compared_as = cast or comparison_type(left_type, column.data_type, dialect)
            type_changes.append(TypeChange(column.name, left_type, column.data_type, compared_as))
            cast = compared_as
        elif cast is None and _needs_text(column.data_type, dialect):
            cast = text_type(dialect)
        if column.name in options.exclude:
            continue
        tolerance = options.tolerance.get(column.name)
        precision = options.timestamp_precision.get(column.name)
        problem = _rule_problem(column, cast, options, dialect)
        if problem and options.strict:
            raise UsageError(*problem)
        if problem:
            notes.append(f"ignored: {problem[0]}")
            family = type_family(cast or column.data_type, dialect)
            tolerance = tolerance if family == "numeric" else None
            precision = precision if family == "temporal" else None
        columns.append(
            CompareColumn(
                name=column.name,
                left_name=left_name,
                data_type=column.data_type,
                cast=cast,
                tolerance=tolerance,
                precision=precision,
            )
        )
    renames = tuple(Rename(old, new, RenameReason.DECLARED) for new, old in declared.items())
    shared = [c.name for c in left if c.name in right_by_name]
    reordered = shared != [c.name for c in right if c.name in left_by_name]
    candidates: list[tuple[Column, Column]] = []
    if options.detect_renames:
        for gone in removed:
            for fresh in added:
                if same_type(gone.data_type, fresh.data_type, dialect):
                    candidates.append((left_by_name[gone.name], right_by_name[fresh.name]))
    return ComparePlan(
        schema=SchemaDiff(
            added=added,
            removed=removed,
            type_changed=tuple(type_changes),
            renamed=renames,
            reordered=reordered,
        ),
        key=tuple(key_columns),
        columns=tuple(columns),
        rename_candidates=tuple(candidates[:20]),
        notes=tuple(notes),
    )


def _rule_problem(
    column: Column, cast: str | None, options: DiffOptions, dialect: str
) -> tuple[str, str] | None:
    """(message, hint) when a tolerance/precision rule does not fit the column's type."""
    family = type_family(cast or column.data_type, dialect)
    if column.name in options.tolerance and family != "numeric":
        return (
            f"tolerance set for column {column.name!r}, which is {column.data_type}, not numeric",
            "set tolerances on numeric columns only (diff.tolerance / --tolerance)",
        )
    if column.name in options.timestamp_precision and family != "temporal":
        return (
            f"timestamp precision set for column {column.name!r}, which is {column.data_type}",
            "set a precision on date/timestamp columns only (diff.timestamp_precision)",
        )
    return None


def _check_options(options: DiffOptions, right: dict[str, Column], dialect: str) -> None:
    # Tolerance and precision may come from `*.column` config entries, so names missing here are
    # simply not applicable; a declared cast on a missing column is a mistake.
    for name, data_type in options.casts.items():
        if name not in right:
            raise UsageError(
                f"cast set for column {name!r}, which the right relation does not have",
                "name columns as they are called in the head (right) relation",
            )
        if parse_type(data_type, dialect) is None:
            raise UsageError(
                f"cast for column {name!r}: {data_type!r} is not a {dialect} type",
                f"name a SQL type, e.g. --cast {name}=DECIMAL(18,2) or --cast {name}=VARCHAR",
            )
    for name, unit in options.timestamp_precision.items():
        if unit not in TIMESTAMP_PRECISIONS:
            raise UsageError(
                f"timestamp precision {unit!r} for {name!r} is not one of "
                + ", ".join(TIMESTAMP_PRECISIONS)
            )
    if options.examples < 0 or options.example_rows < 0:
        raise UsageError("example counts must be zero or more")
