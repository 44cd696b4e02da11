"""Column profiles of a relation and their diff, computed in two scans per relation.

Scan 1 is one aggregate (count, nulls, distinct, min, max, mean, quartiles for every column); scan 2
unpivots every row once (LATERAL VALUES; LATERAL VIEW STACK on Spark) and groups it twice (GROUPING
SETS): top values and histogram bins for every column together.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from dataops_dev.diffing import sql
from dataops_dev.diffing.model import (
    ColumnProfile,
    ColumnProfileDiff,
    HistogramBin,
    ProfileDiff,
    TableProfile,
    TopValue,
)
from dataops_dev.diffing.sqltypes import text_type, type_family
from dataops_dev.engines.base import Column, Engine, Relation
from dataops_dev.errors import UsageError

QUANTILES = (0.25, 0.5, 0.75)
BINS = 10
TOP_VALUES = 5
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def _orderable(family: str, dialect: str) -> bool:
    # PostgreSQL has no min()/max() over booleans; "other" types (json, lists) may not sort.
    return family in ("numeric", "temporal", "text") or (
        family == "boolean" and dialect in ("duckdb", "spark")
    )


def _quantiles(value: exp.Expr, family: str, dialect: str) -> exp.Expr:
    """Quartiles as one array: continuous for numbers, discrete (an actual value) for dates."""
    fractions = exp.Array(expressions=[sql.lit(q) for q in QUANTILES])
    if dialect == "spark":
        if family == "numeric":
            # Spark's exact `percentile` interpolates like PERCENTILE_CONT.
            return exp.Quantile(this=value, quantile=fractions)
        # No exact discrete percentile of timestamps on Spark: the sketch is exact while it
        # holds every row (accuracy = its size), approximate (1e-6 relative rank) beyond.
        return exp.ApproxQuantile(this=value, quantile=fractions, accuracy=sql.lit(1_000_000))
    if family == "numeric":
        return exp.PercentileCont(this=value, expression=fractions)
    return exp.PercentileDisc(this=value, expression=fractions)


def stats_sql(relation: Relation, columns: Sequence[Column], dialect: str) -> exp.Select:
    projections: list[exp.Expr] = [sql.alias(sql.count_star(), "rows")]
    for index, column in enumerate(columns):
        value: exp.Expr = sql.col(column.name)
        family = type_family(column.data_type, dialect)
        if family == "other" and dialect == "postgres":
            value = sql.cast(value, text_type(dialect), dialect)
        projections.append(sql.alias(exp.Count(this=value.copy()), f"n{index}"))
        projections.append(
            sql.alias(exp.Count(this=exp.Distinct(expressions=[value.copy()])), f"d{index}")
        )
        if _orderable(family, dialect):
            projections.append(sql.alias(exp.Min(this=value.copy()), f"min{index}"))
            projections.append(sql.alias(exp.Max(this=value.copy()), f"max{index}"))
        if family == "numeric":
            as_double = sql.cast(value.copy(), "DOUBLE", dialect)
            projections.append(sql.alias(exp.Avg(this=as_double), f"mean{index}"))
            projections.append(
                sql.alias(_quantiles(as_double.copy(), family, dialect), f"q{index}")
            )
        elif family == "temporal":
            projections.append(sql.alias(_quantiles(value.copy(), family, dialect), f"q{index}"))
    return exp.select(*projections).from_(relation.to_table())


def _as_number(column: Column, dialect: str) -> exp.Expr | None:
    family = type_family(column.data_type, dialect)
    if family == "numeric":
        return sql.cast(sql.col(column.name), "DOUBLE", dialect)
    if family == "temporal":
        if dialect == "spark":
            # Seconds since the epoch, fractions kept (UNIX_TIMESTAMP would drop them).
            micros = exp.Anonymous(
                this="UNIX_MICROS",
                expressions=[sql.cast(sql.col(column.name), "TIMESTAMP", dialect)],
            )
            return exp.Div(this=micros, expression=sql.lit(1e6))
        return exp.func("EPOCH", sql.col(column.name), dialect="duckdb")
    return None


def _bucket(value: exp.Expr, low: float, high: float) -> exp.Expr:
    width = exp.Div(
        this=exp.paren(exp.Sub(this=value, expression=sql.lit(low))),
        expression=sql.lit(high - low),
    )
    scaled = exp.Floor(this=exp.Mul(this=width, expression=sql.lit(float(BINS))))
    # Not LEAST(): PostgreSQL's LEAST ignores NULLs and would bin NULL values into the last bin.
    capped = (
        exp.Case()
        .when(exp.GTE(this=scaled, expression=sql.lit(BINS - 1)), sql.lit(BINS - 1))
        .else_(scaled.copy())
    )
    return exp.Cast(this=capped, to=exp.DataType.build("INT"))


def _unpivot(rows: list[exp.Tuple], dialect: str) -> exp.Lateral:
    """One output row (column index, value as text, histogram bin) per column of each row."""
    names = [sql.ident("__c"), sql.ident("__v"), sql.ident("__b")]
    if dialect == "spark":
        # Spark's VALUES cannot read the outer row; its STACK generator can.
        cells = [cell for row in rows for cell in row.expressions]
        return exp.Lateral(
            this=exp.Stack(this=sql.lit(len(rows)), expressions=cells),
            view=True,
            alias=exp.TableAlias(this=sql.ident("__u"), columns=names),
        )
    return exp.Lateral(
        this=exp.Subquery(this=exp.Values(expressions=rows)),
        alias=exp.TableAlias(this=sql.ident("__u"), columns=names),
    )


def distribution_sql(
    relation: Relation,
    columns: Sequence[Column],
    ranges: dict[int, tuple[float, float]],
    dialect: str,
    top: int = TOP_VALUES,
) -> exp.Select:
    """Top values and histogram bins of every column in one scan (`ranges`: index -> min, max)."""
    rows = []
    for index, column in enumerate(columns):
        text = sql.cast(sql.col(column.name), text_type(dialect), dialect)
        number = _as_number(column, dialect)
        bucket: exp.Expr = exp.Cast(this=exp.null(), to=exp.DataType.build("INT"))
        if number is not None and index in ranges:
            bucket = _bucket(number, *ranges[index])
        rows.append(exp.Tuple(expressions=[sql.lit(index), text, bucket]))
    c, v, b = sql.col("__c"), sql.col("__v"), sql.col("__b")
    grouped = exp.select(
        c.copy(),
        v.copy(),
        b.copy(),
        sql.alias(exp.Grouping(expressions=[v.copy()]), "__gv"),
        sql.alias(sql.count_star(), "__n"),
    ).from_(relation.to_table())
    unpivot = _unpivot(rows, dialect)
    if dialect == "spark":
        grouped.append("laterals", unpivot)
    else:
        grouped = grouped.join(unpivot, join_type="CROSS")
    grouped.set(
        "group",
        exp.Group(
            grouping_sets=[
                exp.GroupingSets(
                    expressions=[
                        exp.Tuple(expressions=[c.copy(), v.copy()]),
                        exp.Tuple(expressions=[c.copy(), b.copy()]),
                    ]
                )
            ]
        ),
    )
    ranked = exp.select(
        exp.Star(),
        sql.alias(
            exp.Window(
                this=exp.RowNumber(),
                partition_by=[sql.col("__c"), sql.col("__gv")],
                order=exp.Order(
                    expressions=[
                        exp.Ordered(this=sql.col("__n"), desc=True),
                        exp.Ordered(this=sql.col("__v")),
                    ]
                ),
            ),
            "__rn",
        ),
    ).from_(grouped.subquery(sql.ident("__g"), copy=False))
    keep = exp.or_(
        exp.and_(
            exp.EQ(this=sql.col("__gv"), expression=sql.lit(0)),
            exp.Not(this=exp.Is(this=sql.col("__v"), expression=exp.null())),
            exp.LTE(this=sql.col("__rn"), expression=sql.lit(top + 1)),
        ),
        exp.and_(
            exp.EQ(this=sql.col("__gv"), expression=sql.lit(1)),
            exp.Not(this=exp.Is(this=sql.col("__b"), expression=exp.null())),
        ),
    )
    return (
        exp.select(sql.col("__c"), sql.col("__v"), sql.col("__b"), sql.col("__gv"), sql.col("__n"))
        .from_(ranked.subquery(sql.ident("__r"), copy=False))
        .where(keep)
        .order_by(sql.col("__c"), sql.col("__gv"), sql.col("__rn"))
    )


def _to_float(value: Any) -> float | None:
    """A min/max on the scale of the SQL bucket expression (seconds since the epoch for
    temporal values, which SQL's EPOCH reads as UTC for timestamps without a time zone)."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            # `.timestamp()` would read a naive value as local time and shift every bin.
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    if isinstance(value, datetime.date):
        return float((value.toordinal() - _EPOCH_ORDINAL) * 86400)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def profile_relation(
    engine: Engine,
    relation: Relation,
    *,
    columns: Sequence[str] | None = None,
    top: int = TOP_VALUES,
) -> TableProfile:
    """Profile every column of `relation` (or the named ones) inside the engine."""
    all_columns = engine.columns(relation)
    if not all_columns:
        raise UsageError(f"relation {relation} does not exist or has no columns")
    chosen = [c for c in all_columns if columns is None or c.name in columns]
    dialect = engine.dialect
    names, rows = engine.fetch_with_names(sql.text(stats_sql(relation, chosen, dialect), dialect))
    stats = dict(zip(names, rows[0], strict=True))
    total = int(stats["rows"])
    ranges: dict[int, tuple[float, float]] = {}
    for index, column in enumerate(chosen):
        if type_family(column.data_type, dialect) in ("numeric", "temporal"):
            low, high = _to_float(stats.get(f"min{index}")), _to_float(stats.get(f"max{index}"))
            finite = low is not None and high is not None and abs(high - low) != float("inf")
            if finite and low is not None and high is not None and high > low:
                ranges[index] = (low, high)
    tops: dict[int, list[TopValue]] = {i: [] for i in range(len(chosen))}
    bins: dict[int, dict[int, int]] = {i: {} for i in range(len(chosen))}
    if total and chosen:
        distribution = distribution_sql(relation, chosen, ranges, dialect, top)
        for c, value, bucket, grouping, count in engine.fetchall(sql.text(distribution, dialect)):
            if int(grouping) == 0 and len(tops[int(c)]) < top:
                tops[int(c)].append(TopValue(str(value), int(count)))
            elif int(grouping) == 1:
                bins[int(c)][int(bucket)] = int(count)
    profiles = []
    for index, column in enumerate(chosen):
        family = type_family(column.data_type, dialect)
        quantiles = stats.get(f"q{index}")
        histogram: tuple[HistogramBin, ...] = ()
        if index in ranges:
            low, high = ranges[index]
            step = (high - low) / BINS
            histogram = tuple(
                HistogramBin(low + step * b, low + step * (b + 1), bins[index].get(b, 0))
                for b in range(BINS)
            )
        mean = stats.get(f"mean{index}")
        profiles.append(
            ColumnProfile(
                name=column.name,
                data_type=column.data_type,
                family=family,
                rows=total,
                nulls=total - int(stats[f"n{index}"]),
                distinct=int(stats[f"d{index}"]),
                min=stats.get(f"min{index}"),
                max=stats.get(f"max{index}"),
                mean=None if mean is None else float(mean),
                quantiles=tuple(zip(QUANTILES, quantiles, strict=False)) if quantiles else (),
                top_values=tuple(tops[index]),
                histogram=histogram,
            )
        )
    return TableProfile(relation=str(relation), rows=total, columns=tuple(profiles))


def profile_diff(
    engine: Engine,
    left: Relation,
    right: Relation,
    *,
    columns: Sequence[str] | None = None,
    top: int = TOP_VALUES,
) -> ProfileDiff:
    """Profiles of both relations, paired by column name (right order, then left-only columns)."""
    a = profile_relation(engine, left, columns=columns, top=top)
    b = profile_relation(engine, right, columns=columns, top=top)
    left_by_name = {c.name: c for c in a.columns}
    right_names = {c.name for c in b.columns}
    pairs = [ColumnProfileDiff(c.name, left_by_name.get(c.name), c) for c in b.columns]
    pairs += [ColumnProfileDiff(c.name, c, None) for c in a.columns if c.name not in right_names]
    return ProfileDiff(left=a, right=b, columns=tuple(pairs))
