"""Schema diff and the comparison plan: which columns are compared, under which name and cast.

Type-changed columns are still compared: both sides are cast to the head type when that cast is
lossless (INT -> BIGINT, VARCHAR(10) -> TEXT, DATE -> TIMESTAMP, ...), otherwise both to text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

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


def _sqltypes() -> ModuleType:
    """The type reasoning (sqlglot's type parser), loaded by the first type that needs parsing:
    a diff whose columns keep their types and carry no rules never imports sqlglot (~0.08 CPU-s
    of a ~0.5 s diff at 1M rows)."""
    from dataops_dev.diffing import sqltypes

    return sqltypes


def same_type(left: str, right: str, dialect: str) -> bool:
    # The usual case (an unchanged column) needs no parser.
    return left.strip().upper() == right.strip().upper() or _sqltypes().same_type(
        left, right, dialect
    )


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
        cast = None if same_type(lt, rt, dialect) else _sqltypes().comparison_type(lt, rt, dialect)
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
            compared_as = cast or _sqltypes().comparison_type(left_type, column.data_type, dialect)
            type_changes.append(TypeChange(column.name, left_type, column.data_type, compared_as))
            cast = compared_as
        elif (
            cast is None
            and dialect == "postgres"
            and _sqltypes().needs_text(column.data_type, dialect)
        ):
            cast = _sqltypes().text_type(dialect)
        if column.name in options.exclude:
            continue
        tolerance = options.tolerance.get(column.name)
        precision = options.timestamp_precision.get(column.name)
        problem = _rule_problem(column, cast, options, dialect)
        if problem and options.strict:
            raise UsageError(*problem)
        if problem:
            notes.append(f"ignored: {problem[0]}")
            family = _sqltypes().type_family(cast or column.data_type, dialect)
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
    if column.name not in options.tolerance and column.name not in options.timestamp_precision:
        return None
    family = _sqltypes().type_family(cast or column.data_type, dialect)
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
        if _sqltypes().parse_type(data_type, dialect) is None:
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
