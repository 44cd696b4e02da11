"""SQL type reasoning for the diff with sqlglot's type parser: same type, lossless casts, families.

Loaded only when a type must be parsed (a type change, a cast, a rule, PostgreSQL's types without
equality), so a plain DuckDB diff never imports sqlglot.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ParseError

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


def needs_text(data_type: str, dialect: str) -> bool:
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
