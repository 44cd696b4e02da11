"""Every transformer masks every value byte for byte alike on DuckDB, PostgreSQL and Spark.

One salt, one input table of awkward values (unicode, combining marks, emoji, '', NULL, very
long, digits only, e-mails without @, leading zeros, quotes, backslashes, integer extremes) on
each real engine; each rule runs the way the sampler runs it (`map_query` stages carrying the
row, then `apply_sql`), and every output value is compared with DuckDB's, which in turn is pinned
by tests/fixtures/masking/outputs.json (a change there is a MASKING_VERSION bump).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from dataops_dev import masking as m
from dataops_dev.errors import ConfigError

SALT = m.Salt.from_secret("engines-test-salt")
GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "masking" / "outputs.json"

TEXTS: list[str | None] = [
    "alice@example.com",
    " Bob.Smith@Shop.Example.COM ",
    "noatsign",
    "trailing@",
    "",
    None,
    "héllo wörld ✓",
    "e\u0301te 😀 Ünïcödé",
    "Xy7" * 400,
    "0042",
    "000000000000000000000000",
    "+1-555-123-4567",
    "(030) 1234 567",
    "1-800-FLOWERS",
    "4111 1111 1111 1111",
    "378282246310005",
    "10.0.0.1",
    "O'Brien \\ back\\slash % _",
    "tab\tnew\nline",
    ":dataops_key_h_00 ? :v0",
    "Main St 5",
    "ZZ",
]
INTEGERS: list[int | None] = [
    0,
    1,
    -5,
    42,
    (1 << 30) - 1,
    1 << 30,
    (1 << 62) - 1,
    1 << 62,
    -(1 << 63),
    (1 << 63) - 1,
    None,
    9007199254740993,
]
FLOATS: list[float | None] = [0.0, -1.5, 123.456, 1e300, None, 3.0, 2.5e-8]
DATES: list[dt.date | None] = [
    dt.date(2000, 2, 29),
    dt.date(1970, 1, 1),
    dt.date(1900, 1, 1),
    dt.date(2024, 12, 31),
    None,
    dt.date(1987, 6, 15),
]
ROWS = [
    (
        i,
        TEXTS[i % len(TEXTS)],
        INTEGERS[i % len(INTEGERS)],
        FLOATS[i % len(FLOATS)],
        DATES[i % len(DATES)],
    )
    for i in range(len(TEXTS))
]
COLUMNS = {"id": "INTEGER", "s": "TEXT", "n": "BIGINT", "x": "DOUBLE", "d": "DATE"}
TYPES = {
    "duckdb": {"INTEGER": "INTEGER", "TEXT": "VARCHAR", "BIGINT": "BIGINT", "DOUBLE": "DOUBLE"},
    "postgres": {"DOUBLE": "DOUBLE PRECISION"},
    "spark": {"TEXT": "STRING"},
}

# (id, rule, column); entity rules draw per `id`, like the sampler's per-customer draws.
CASES: list[tuple[str, m.MaskRule, str]] = [
    ("passthrough", m.MaskRule(m.Transformer.PASSTHROUGH), "s"),
    ("null", m.MaskRule(m.Transformer.NULL), "s"),
    ("constant", m.MaskRule(m.Transformer.CONSTANT, {"value": "k"}), "s"),
    ("constant_int", m.MaskRule(m.Transformer.CONSTANT, {"value": 7}), "n"),
    ("redact", m.MaskRule(m.Transformer.REDACT), "s"),
    ("hmac_id", m.MaskRule(m.Transformer.HMAC_ID), "s"),
    ("hmac_id_opts", m.MaskRule(m.Transformer.HMAC_ID, {"prefix": "c_", "length": 64}), "s"),
    ("hmac_int", m.MaskRule(m.Transformer.HMAC_INT), "n"),
    ("hmac_int_30", m.MaskRule(m.Transformer.HMAC_INT, {"bits": 30}), "n"),
    ("first_name", m.MaskRule(m.Transformer.FIRST_NAME), "s"),
    ("last_name", m.MaskRule(m.Transformer.LAST_NAME), "s"),
    ("full_name", m.MaskRule(m.Transformer.FULL_NAME), "s"),
    ("city", m.MaskRule(m.Transformer.CITY), "s"),
    ("street", m.MaskRule(m.Transformer.STREET), "s"),
    ("company", m.MaskRule(m.Transformer.COMPANY), "s"),
    ("email", m.MaskRule(m.Transformer.EMAIL), "s"),
    (
        "email_domain",
        m.MaskRule(m.Transformer.EMAIL, {"keep_domain": False, "domain": "t.io"}),
        "s",
    ),
    ("phone", m.MaskRule(m.Transformer.PHONE), "s"),
    ("phone_no_cc", m.MaskRule(m.Transformer.PHONE, {"keep_country_code": False}), "s"),
    ("card", m.MaskRule(m.Transformer.CARD), "s"),
    ("card_bin", m.MaskRule(m.Transformer.CARD, {"keep_bin": True}), "s"),
    ("ip", m.MaskRule(m.Transformer.IP), "s"),
    ("partial", m.MaskRule(m.Transformer.PARTIAL), "s"),
    (
        "partial_opts",
        m.MaskRule(m.Transformer.PARTIAL, {"keep_first": 2, "keep_last": 3, "char": "#"}),
        "s",
    ),
    ("scramble", m.MaskRule(m.Transformer.SCRAMBLE), "s"),
    ("noise", m.MaskRule(m.Transformer.NOISE, {"ratio": 0.2}), "x"),
    ("date_shift", m.MaskRule(m.Transformer.DATE_SHIFT, {"max_days": 400}), "d"),
    ("age_band", m.MaskRule(m.Transformer.AGE_BAND), "d"),
    ("zip_prefix", m.MaskRule(m.Transformer.ZIP_PREFIX), "s"),
    ("zip_prefix_pad", m.MaskRule(m.Transformer.ZIP_PREFIX, {"keep": 1, "pad": "0"}), "s"),
]


def test_cases_cover_every_transformer() -> None:
    assert {rule.transformer for _, rule, _ in CASES} == set(m.Transformer)


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def masking_query(rule: m.MaskRule, column: str, dialect: str) -> exp.Select:
    """`id, masked` over the `inputs` table, staged like the sampler's in-line masking."""
    data_type = _type(COLUMNS[column], dialect)
    inputs = exp.table_("inputs", quoted=True)
    strategy = rule.strategy
    if strategy in (m.MaskStrategy.NONE, m.MaskStrategy.DIRECT):
        value = m.apply_sql(rule, _col(column), None, data_type, dialect)
        return exp.select(_col("id"), value.as_("masked")).from_(inputs).order_by(_col("id"))
    key = "id" if strategy is m.MaskStrategy.ENTITY_MAP else column
    values = exp.select(
        _col("id").as_("c_id"),
        _col(column).as_("c_val"),
        m.canonical(rule, _col(key), dialect).as_("raw"),
    ).from_(inputs)
    staged = m.map_query(rule, values, SALT, dialect, carry=["c_id", "c_val"])
    mapped = exp.Case(
        ifs=[exp.If(this=exp.Is(this=_col("raw"), expression=exp.null()), true=exp.null())],
        default=_col("masked"),
    )
    value = m.apply_sql(rule, _col("c_val"), mapped, data_type, dialect)
    return (
        exp.select(_col("c_id").as_("id"), value.as_("masked"))
        .from_(staged.subquery("staged"))
        .order_by(_col("id"))
    )


def _type(generic: str, dialect: str) -> str:
    return TYPES[dialect].get(generic, generic)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


Runner = Callable[[exp.Select], list[tuple[Any, ...]]]


@contextmanager
def _duckdb() -> Iterator[Runner]:
    conn = duckdb.connect()
    columns = ", ".join(f'"{c}" {_type(t, "duckdb")}' for c, t in COLUMNS.items())
    conn.execute(f'CREATE TABLE "inputs" ({columns})')
    conn.executemany('INSERT INTO "inputs" VALUES (?, ?, ?, ?, ?)', ROWS)
    yield lambda query: conn.execute(query.sql("duckdb")).fetchall()
    conn.close()


@contextmanager
def _postgres(conninfo: str) -> Iterator[Runner]:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        columns = ", ".join(f'"{c}" {_type(t, "postgres")}' for c, t in COLUMNS.items())
        conn.execute(f'CREATE TEMPORARY TABLE "inputs" ({columns})')
        with conn.cursor() as cursor:
            cursor.executemany('INSERT INTO "inputs" VALUES (%s, %s, %s, %s, %s)', ROWS)
        yield lambda query: list(conn.execute(query.sql("postgres")).fetchall())


@contextmanager
def _spark(remote: str) -> Iterator[Runner]:
    from dataops_dev.engines.spark import SparkEngine

    engine = SparkEngine(remote)
    columns = ", ".join(f"`{c}` {_type(t, 'spark')}" for c, t in COLUMNS.items())
    engine.session.createDataFrame(ROWS, schema=columns).createOrReplaceTempView("inputs")

    def run(query: exp.Select) -> list[tuple[Any, ...]]:
        # Key material travels as parameters: the statement text holds `?` markers only.
        sql, params = m.bind(query, SALT, "spark")
        assert "dataops_key" not in sql and SALT.key.hex() not in sql
        return engine.fetchall(sql, params)

    yield run
    engine.close()


@pytest.fixture(scope="module")
def reference() -> dict[str, list[Any]]:
    """DuckDB's output per case, checked against the pinned fixture."""
    with _duckdb() as run:
        return {
            name: [_plain(v) for _, v in run(masking_query(r, c, "duckdb"))] for name, r, c in CASES
        }


@pytest.fixture(
    scope="module",
    params=[
        "duckdb",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("spark", marks=[pytest.mark.slow, pytest.mark.spark]),
    ],
)
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[str, Runner]]:
    if request.param == "duckdb":
        runner = _duckdb()
    elif request.param == "postgres":
        host = request.getfixturevalue("postgres_server")
        runner = _postgres(f"host={host} user=root dbname=postgres")
    else:
        runner = _spark(request.getfixturevalue("spark_remote"))
    with runner as run:
        yield request.param, run


def test_duckdb_outputs_are_pinned(reference: dict[str, list[Any]]) -> None:
    """The outputs of MASKING_VERSION: changing any of them needs a version bump."""
    pinned = json.loads(GOLDEN.read_text())
    assert pinned["version"] == m.MASKING_VERSION
    assert set(pinned["outputs"]) == set(reference)
    for name, values in reference.items():
        assert values == pinned["outputs"][name], name


@pytest.mark.parametrize(("name", "rule", "column"), CASES, ids=[c[0] for c in CASES])
def test_same_output_value_by_value(
    engine: tuple[str, Runner],
    reference: dict[str, list[Any]],
    name: str,
    rule: m.MaskRule,
    column: str,
) -> None:
    dialect, run = engine
    rows = run(masking_query(rule, column, dialect))
    assert [r[0] for r in rows] == [r[0] for r in ROWS]
    got = [_plain(v) for _, v in rows]
    expected = reference[name]
    different = [
        (i, repr(ROWS[i][1:]), expected[i], got[i])
        for i in range(len(ROWS))
        if got[i] != expected[i]
    ]
    assert not different, f"{dialect} differs from duckdb on {name}: {different[:5]}"
    if rule.transformer is m.Transformer.HMAC_INT:
        bits = int(rule.opt("bits", 62))
        keys = [row[2] for row in ROWS]
        assert got == [None if v is None else m.python_feistel(v, SALT, bits) for v in keys]


BUCKET_KEYS: list[tuple[Any, ...]] = [
    ("alice",),
    ("",),
    (None,),
    ("héllo ✓",),
    ("0042",),
    ("x" * 5000,),
    ("a", "b"),
    ("a\x1fb", ""),
    (None, "b"),
    (123456789,),
    (-7,),
]


def test_bucket_matches_python(engine: tuple[str, Runner]) -> None:
    """The sampling bucket of text, integer, NULL and composite keys equals `python_bucket`."""
    dialect, run = engine
    projections = []
    for i, key in enumerate(BUCKET_KEYS):
        parts: list[exp.Expr] = []
        for part in key:
            if part is None:
                parts.append(exp.cast(exp.null(), m.text_type(dialect)))
            elif isinstance(part, int):
                parts.append(exp.cast(exp.Literal.number(part), exp.DataType.build("BIGINT")))
            else:
                parts.append(exp.Literal.string(part))
        projections.append(m.bucket_sql(SALT, parts, dialect).as_(f"b{i}"))
    query = exp.select(*projections).from_(exp.table_("inputs", quoted=True)).limit(1)
    row = run(query)[0]
    expected = [
        m.python_bucket(SALT, ["" if p is None else str(p) for p in key]) for key in BUCKET_KEYS
    ]
    assert list(row) == expected


def test_bind_turns_key_markers_into_parameters_in_order() -> None:
    """Spark SQL names which key each marker stands for; `bind` swaps in `?` and the values,
    leaving string literals and the caller's own markers alone unless `values` names them."""
    rule = m.MaskRule(m.Transformer.HMAC_INT, {"bits": 30})
    values = exp.select(
        exp.Placeholder(this="v0").as_("raw"), exp.Literal.string(":dataops_key_h_00").as_("s")
    )
    query = m.map_query(rule, values, SALT, "spark", carry=["s"])
    query = query.select(m.hmac_sql(SALT, "email", exp.column("s"), "spark").as_("e"))
    sql, params = m.bind(query, SALT, "spark", {"v0": 123})
    keys, mult = m._feistel_keys(SALT, 30)
    expected = {
        "v0": 123,
        **{
            "dataops_key_h_" + p.encode().hex(): SALT.subkey(p).hex() for p in ("email", "hmac_int")
        },
    }
    expected |= {f"dataops_key_f30_k{r}": k for r, k in enumerate(keys)}
    expected |= {f"dataops_key_f30_m{r}": k for r, k in enumerate(mult)}
    order = re.findall(r"(?<!')\B:(\w+)", query.sql("spark"))
    assert params == [expected[name] for name in order] and set(order) == set(expected)
    assert sql.count("?") == len(params) and "':dataops_key_h_00'" in sql
    for key in keys + mult:
        assert str(key) not in sql
    assert m.bind(query.sql("duckdb"), SALT, "duckdb") == (query.sql("duckdb"), [])
    # The caller's own `?` markers keep their values, in their places among the keys.
    mixed = exp.select(
        exp.Placeholder(), m.hmac_sql(SALT, "sample", exp.Placeholder(), "spark"), exp.Placeholder()
    )
    sql, params = m.bind(mixed, SALT, "spark", params=["a", "b", "c"])
    assert params == ["a", SALT.subkey("sample").hex(), "b", "c"] and sql.count("?") == 4
    with pytest.raises(ConfigError):
        m.bind(mixed, SALT, "spark", params=["a", "b", "c", "d"])
    with pytest.raises(ConfigError):
        m.bind(mixed, SALT, "spark", params=["a"])


if __name__ == "__main__":
    # Re-pins the fixture after a deliberate output change (bump MASKING_VERSION first).
    with _duckdb() as run:
        outputs = {
            n: [_plain(v) for _, v in run(masking_query(r, c, "duckdb"))] for n, r, c in CASES
        }
    document = {"version": m.MASKING_VERSION, "outputs": outputs}
    GOLDEN.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
