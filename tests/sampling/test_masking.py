"""Masking: the SQL HMAC equals Python's on DuckDB and PostgreSQL; transformers keep their promises."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from dataops_dev import masking as m
from dataops_dev.errors import ConfigError, SaltError
from dataops_dev.exit_codes import ExitCode, exit_code_for

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "masking"
SALT = m.Salt.from_secret("unit-test-salt")
VALUES = ["alice@example.com", "", "héllo wörld ✓", "42", "O'Brien"]


def _fetch(dialect: str, query: exp.Expr, conninfo: str | None) -> list[tuple[Any, ...]]:
    sql = query.sql(dialect)
    if dialect == "duckdb":
        return duckdb.connect().execute(sql).fetchall()
    import psycopg

    assert conninfo is not None
    with psycopg.connect(conninfo) as conn:
        return list(conn.execute(sql).fetchall())


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[str, str | None]]:
    if request.param == "duckdb":
        yield "duckdb", None
        return
    host = request.getfixturevalue("postgres_server")
    yield "postgres", f"host={host} user=root dbname=postgres"


def _values_query(values: list[Any]) -> exp.Select:
    return exp.select("raw").from_(exp.values([(v,) for v in values], alias="v", columns=["raw"]))


def test_sql_hmac_equals_python_hmac(engine: tuple[str, str | None]) -> None:
    dialect, conninfo = engine
    query = exp.select(
        *(
            m.hmac_sql(SALT, "email", exp.Literal.string(v), dialect).as_(f"h{i}")
            for i, v in enumerate(VALUES)
        )
    )
    row = _fetch(dialect, query, conninfo)[0]
    key = SALT.subkey("email")
    assert list(row) == [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in VALUES]


def test_bucket_matches_python_and_ignores_integer_width(engine: tuple[str, str | None]) -> None:
    dialect, conninfo = engine
    as_int = exp.cast(exp.Literal.number(123456789), "INT")
    as_bigint = exp.cast(exp.Literal.number(123456789), "BIGINT")
    query = exp.select(
        m.bucket_sql(SALT, [as_int], dialect).as_("a"),
        m.bucket_sql(SALT, [as_bigint], dialect).as_("b"),
        m.bucket_sql(SALT, [exp.Literal.string("x"), exp.Literal.string("y")], dialect).as_("c"),
    )
    a, b, c = _fetch(dialect, query, conninfo)[0]
    assert a == b == m.python_bucket(SALT, ["123456789"])
    assert c == m.python_bucket(SALT, ["x", "y"])


@pytest.mark.parametrize("bits", [14, 30, 62])
def test_hmac_int_is_a_keyed_bijection(engine: tuple[str, str | None], bits: int) -> None:
    dialect, conninfo = engine
    rule = m.MaskRule(m.Transformer.HMAC_INT, {"bits": bits})
    values = list(range(2000)) + [(1 << bits) - 1, -5, 1 << bits]
    source = exp.select(exp.cast(exp.column("raw"), "BIGINT").as_("raw")).from_(
        exp.values([(v,) for v in values], alias="v", columns=["raw"])
    )
    rows = _fetch(dialect, m.map_query(rule, source, SALT, dialect), conninfo)
    mapped = {int(r): int(v) for r, v in rows}
    assert mapped == {v: m.python_feistel(v, SALT, bits) for v in values}
    inside = [mapped[v] for v in values if 0 <= v < (1 << bits)]
    assert len(set(inside)) == len(inside), "a permutation keeps keys unique"
    assert all(0 <= x < (1 << bits) for x in inside), "integers stay in their type's range"
    assert mapped[-5] == -5 and mapped[1 << bits] == 1 << bits
    assert sum(1 for v in range(2000) if mapped[v] == v) < 5


def _masked(
    rule: m.MaskRule, values: list[Any], dialect: str, conninfo: str | None
) -> dict[Any, Any]:
    rows = _fetch(dialect, m.map_query(rule, _values_query(values), SALT, dialect), conninfo)
    return dict(rows)


def test_value_transformers_keep_format(engine: tuple[str, str | None]) -> None:
    dialect, conninfo = engine
    emails = _masked(
        m.MaskRule(m.Transformer.EMAIL), ["bob@shop.example.com", "ann@x.org"], dialect, conninfo
    )
    assert re.fullmatch(r"user_[0-9a-f]{12}@shop\.example\.com", emails["bob@shop.example.com"])
    other = _masked(
        m.MaskRule(m.Transformer.EMAIL, {"keep_domain": False, "domain": "test.invalid"}),
        ["ann@x.org"],
        dialect,
        conninfo,
    )
    assert other["ann@x.org"].endswith("@test.invalid")
    assert other["ann@x.org"].split("@")[0] == emails["ann@x.org"].split("@")[0]

    phones = _masked(
        m.MaskRule(m.Transformer.PHONE), ["+1-555-123-4567", "(030) 1234 567"], dialect, conninfo
    )
    assert phones["+1-555-123-4567"].startswith("+1-")
    for raw, masked in phones.items():
        assert re.sub(r"\d", "9", raw) == re.sub(r"\d", "9", masked)
        assert masked != raw

    cards = _masked(
        m.MaskRule(m.Transformer.CARD), ["4111111111111111", "378282246310005"], dialect, conninfo
    )
    for raw, masked in cards.items():
        assert len(masked) == len(raw) and masked.isdigit() and masked != raw
        assert m.luhn_valid(masked)
    kept = _masked(
        m.MaskRule(m.Transformer.CARD, {"keep_bin": True}), ["4111111111111111"], dialect, conninfo
    )
    assert kept["4111111111111111"].startswith("411111") and m.luhn_valid(kept["4111111111111111"])

    ips = _masked(m.MaskRule(m.Transformer.IP), ["10.0.0.1", "192.168.1.20"], dialect, conninfo)
    for masked in ips.values():
        octets = [int(o) for o in masked.split(".")]
        assert len(octets) == 4 and 240 <= octets[0] <= 255 and all(0 <= o <= 255 for o in octets)

    scrambled = _masked(
        m.MaskRule(m.Transformer.SCRAMBLE), ["Hello World 42!", "x" * 200], dialect, conninfo
    )
    out = scrambled["Hello World 42!"]
    assert len(out) == 15 and out[5] == " " and out[-1] == "!"
    assert out[0].isupper() and out[1:5].islower() and out[12:14].isdigit()
    assert len(scrambled["x" * 200]) == 200

    names = _masked(
        m.MaskRule(m.Transformer.FULL_NAME), ["Ann Lee", "Bob Smith"], dialect, conninfo
    )
    dictionaries = m.dictionaries()
    for masked in names.values():
        first, last = masked.split(" ")
        assert first in dictionaries["first_name"] and last in dictionaries["last_name"]
    ids = _masked(
        m.MaskRule(m.Transformer.HMAC_ID, {"prefix": "c_", "length": 10}),
        ["a", "b"],
        dialect,
        conninfo,
    )
    assert all(re.fullmatch(r"c_[0-9a-f]{10}", v) for v in ids.values())


def test_digit_masks_at_every_length(engine: tuple[str, str | None]) -> None:
    """Cards of 12-19 digits stay Luhn-valid; no digit of a long phone survives."""
    dialect, conninfo = engine
    import random

    rng = random.Random(7)
    raw_cards = [
        "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 19))) for _ in range(300)
    ]
    for rule in (
        m.MaskRule(m.Transformer.CARD),
        m.MaskRule(m.Transformer.CARD, {"keep_bin": True}),
    ):
        cards = _masked(rule, raw_cards + ["4111 1111 1111 1111", "n/a"], dialect, conninfo)
        for raw in raw_cards:
            masked = cards[raw]
            assert len(masked) == len(raw) and m.luhn_valid(masked), (raw, masked)
            if rule.opt("keep_bin", False):
                assert masked[:6] == raw[:6]
        assert len(cards["4111 1111 1111 1111"]) == 16 and m.luhn_valid(
            cards["4111 1111 1111 1111"]
        )
        assert cards["n/a"].isdigit()
    # 25 digits: the body is capped at 18 keyed digits, plus the check digit
    long_card = _masked(m.MaskRule(m.Transformer.CARD), ["1" * 25], dialect, conninfo)["1" * 25]
    assert len(long_card) == 19 and m.luhn_valid(long_card)

    long_phone = "+44 " + "-".join(["0123456789"] * 9) + " ext 42"
    masked = _masked(m.MaskRule(m.Transformer.PHONE), [long_phone], dialect, conninfo)[long_phone]
    assert masked.startswith("+44 ") and len(masked) == len(long_phone)
    assert re.sub(r"[0-9A-Za-z]", "9", long_phone) == re.sub(r"[0-9]", "9", masked)
    assert "0123456789" not in masked and "ext" not in masked


def test_same_masks_on_duckdb_and_postgres(postgres_server: str) -> None:
    """One salt, one value -> one masked value, whatever the engine (the sample can move)."""
    conninfo = f"host={postgres_server} user=root dbname=postgres"
    values = ["+1-555-123-4567", "bob@x.org", "4111111111111111", "Main St 5"]
    for transformer in (
        m.Transformer.PHONE,
        m.Transformer.EMAIL,
        m.Transformer.CARD,
        m.Transformer.STREET,
        m.Transformer.CITY,
        m.Transformer.SCRAMBLE,
        m.Transformer.IP,
    ):
        rule = m.MaskRule(transformer)
        assert _masked(rule, values, "duckdb", None) == _masked(rule, values, "postgres", conninfo)


def test_carried_stages_mask_rows_like_the_mapping_table(postgres_server: str) -> None:
    """map_query over rows with `carry` (in-line masking): per row, the mapped value, on both
    engines, with the other columns carried through untouched."""
    conninfo = f"host={postgres_server} user=root dbname=postgres"
    values = ["+1-555-123-4567", "bob@x.org", "4111111111111111", "Main St 5", "", None]
    rows = [(i, v, f"h{i}", i * 10) for i, v in enumerate(values * 2)]
    for transformer in (
        m.Transformer.PHONE,
        m.Transformer.EMAIL,
        m.Transformer.CARD,
        m.Transformer.STREET,
        m.Transformer.FULL_NAME,
        m.Transformer.SCRAMBLE,
        m.Transformer.IP,
        m.Transformer.HMAC_ID,
    ):
        rule = m.MaskRule(transformer)
        mapped = _masked(rule, [v for v in values if v is not None], "duckdb", None)
        outputs = []
        for dialect, info in (("duckdb", None), ("postgres", conninfo)):
            source = exp.select("k", "raw", "tag", "amount").from_(
                exp.values(rows, alias="v", columns=["k", "raw", "tag", "amount"])
            )
            staged = m.map_query(rule, source, SALT, dialect, carry=["k", "tag", "amount"])
            query = (
                exp.select("k", "masked", "tag", "amount").from_(staged.subquery("s")).order_by("k")
            )
            outputs.append(_fetch(dialect, query, info))
        # NULL never reaches the stages in the sampler (it keeps NULL), so it is not compared
        known = [i for i, row in enumerate(rows) if row[1] is not None]
        assert [outputs[0][i] for i in known] == [outputs[1][i] for i in known], transformer
        for (_, masked, tag, amount), (_, raw, tag0, amount0) in zip(outputs[0], rows, strict=True):
            assert (tag, amount) == (tag0, amount0)
            if raw is not None:
                assert masked == mapped[raw], (transformer, raw)


def _apply(
    rule: m.MaskRule, literal: exp.Expr, data_type: str, dialect: str, conninfo: str | None
) -> Any:
    return _fetch(
        dialect, exp.select(m.apply_sql(rule, literal, None, data_type, dialect)), conninfo
    )[0][0]


def test_direct_transformers(engine: tuple[str, str | None]) -> None:
    dialect, conninfo = engine
    text = "VARCHAR" if dialect == "duckdb" else "TEXT"
    s = exp.Literal.string
    partial = m.MaskRule(m.Transformer.PARTIAL, {"keep_first": 2, "keep_last": 2})
    assert _apply(partial, s("abcdefgh"), text, dialect, conninfo) == "ab****gh"
    assert _apply(partial, s("abc"), text, dialect, conninfo) == "***"
    zip_rule = m.MaskRule(m.Transformer.ZIP_PREFIX)
    assert _apply(zip_rule, s("62745"), text, dialect, conninfo) == "627**"
    zero = m.MaskRule(m.Transformer.ZIP_PREFIX, {"keep": 2, "pad": "0"})
    assert _apply(zero, s("62745"), text, dialect, conninfo) == "62000"
    band = _apply(
        m.MaskRule(m.Transformer.AGE_BAND),
        exp.cast(s("1987-05-04"), "DATE"),
        "DATE",
        dialect,
        conninfo,
    )
    assert str(band) == "1980-01-01"
    assert _apply(m.MaskRule(m.Transformer.NULL), s("x"), text, dialect, conninfo) is None
    assert _apply(m.MaskRule(m.Transformer.REDACT), s("x"), text, dialect, conninfo) == "[redacted]"
    assert _apply(m.MaskRule(m.Transformer.REDACT), exp.null(), text, dialect, conninfo) is None
    assert (
        _apply(m.MaskRule(m.Transformer.CONSTANT, {"value": 7}), s("x"), "INT", dialect, conninfo)
        == 7
    )


def test_entity_draws_keep_intervals_and_bounds(engine: tuple[str, str | None]) -> None:
    dialect, conninfo = engine
    shift = m.MaskRule(m.Transformer.DATE_SHIFT, {"max_days": 10})
    offsets = _masked(shift, [str(i) for i in range(300)], dialect, conninfo)
    assert all(-10 <= int(v) <= 10 for v in offsets.values())
    assert len(set(offsets.values())) > 15
    noise = m.MaskRule(m.Transformer.NOISE, {"ratio": 0.1})
    draws = _masked(noise, [str(i) for i in range(300)], dialect, conninfo)
    assert all(0 <= float(v) < 1 for v in draws.values())
    amount = _fetch(
        dialect,
        exp.select(
            m.apply_sql(noise, exp.Literal.number(100), exp.Literal.number(0.75), "DOUBLE", dialect)
        ),
        conninfo,
    )[0][0]
    assert amount == pytest.approx(105.0)
    day = _fetch(
        dialect,
        exp.select(
            m.apply_sql(
                shift,
                exp.cast(exp.Literal.string("2024-03-10"), "DATE"),
                exp.Literal.number(-3),
                "DATE",
                dialect,
            )
        ),
        conninfo,
    )[0][0]
    assert str(day) == "2024-03-07"


def test_salt_is_required_and_changes_every_mask() -> None:
    with pytest.raises(SaltError) as info:
        m.Salt.from_env("MY_TEAM_SALT", environ={})
    assert "MY_TEAM_SALT" in info.value.message
    assert exit_code_for(info.value) == ExitCode.USAGE_ERROR
    with pytest.raises(SaltError):
        m.Salt.from_env("MY_TEAM_SALT", environ={"MY_TEAM_SALT": ""})
    other = m.Salt.from_secret("another-salt")
    assert other.fingerprint != SALT.fingerprint
    assert other.keyed_hex("email", "a@b.c") != SALT.keyed_hex("email", "a@b.c")
    assert "unit-test-salt" not in repr(SALT)


def test_rule_parsing_is_strict() -> None:
    assert m.MaskRule.parse("email", "x").transformer is m.Transformer.EMAIL
    rule = m.MaskRule.parse({"transformer": "partial", "keep_first": 1}, "x")
    assert rule.options == {"keep_first": 1}
    with pytest.raises(ConfigError) as info:
        m.MaskRule.parse("emial", "masking.columns.a.b.c")
    assert info.value.hint and "email" in info.value.hint
    with pytest.raises(ConfigError):
        m.MaskRule.parse({"transformer": "email", "keep_domian": True}, "x")
    with pytest.raises(ConfigError):
        m.MaskRule.parse({"transformer": "noise", "ratio": True}, "x")
    assert m.MaskRule.parse({"transformer": "hmac_int", "bits": 20}, "x").options == {"bits": 20}
    for bits in (21, 0, 64):  # odd widths are no bijection; 64 overflows the BIGINT products
        with pytest.raises(ConfigError, match="even number from 2 to 62"):
            m.MaskRule.parse({"transformer": "hmac_int", "bits": bits}, "x")


def _facts(column: str, data_type: str = "VARCHAR", **kwargs: Any) -> m.ColumnFacts:
    return m.ColumnFacts(table="shop.t", column=column, data_type=data_type, **kwargs)


def test_classification_order() -> None:
    classify = m.classify_column
    configured = m.MaskRule(m.Transformer.REDACT)
    assert classify(_facts("email"), configured=configured).rule == configured
    meta = classify(_facts("contact", meta={"pii": "email"}))
    assert (meta.kind, meta.reason) == (m.PiiKind.EMAIL, m.Reason.META)
    generic = classify(_facts("last_name", meta={"pii": "name"}))
    assert (
        generic.kind is m.PiiKind.LAST_NAME and generic.rule.transformer is m.Transformer.LAST_NAME
    )
    dob = classify(_facts("birth_date", "DATE", meta={"pii": "date_of_birth"}))
    assert dob.rule.transformer is m.Transformer.AGE_BAND
    opted_out = classify(_facts("email", meta={"pii": False}))
    assert not opted_out.masked and opted_out.reason is m.Reason.META
    explicit = classify(
        _facts("notes", meta={"masking": {"transformer": "partial", "keep_first": 2}})
    )
    assert explicit.rule.describe() == "partial(keep_first=2)"
    tagged = classify(_facts("notes", tags=("pii",)))
    assert tagged.reason is m.Reason.TAG and tagged.masked
    by_name = classify(_facts("phone_number"))
    assert (by_name.kind, by_name.reason) == (m.PiiKind.PHONE, m.Reason.NAME)
    numeric_card = classify(_facts("card_number", "BIGINT"))
    assert numeric_card.rule.transformer is m.Transformer.NULL
    key = classify(_facts("customer_ref", is_key=True, distinct_values=("C-0001", "C-0002")))
    assert not key.masked and key.reason is m.Reason.KEY
    email_key = classify(_facts("customer_ref", is_key=True, distinct_values=("a@b.co",)))
    assert email_key.rule.transformer is m.Transformer.EMAIL  # same value, same mask: joins hold
    assert not classify(_facts("event_id", distinct_count=10_000)).masked
    assert classify(_facts("amount", "DECIMAL(10,2)")).reason is m.Reason.NOT_TEXT
    emails = tuple(f"user{i}@example.com" for i in range(20))
    by_value = classify(_facts("contact", distinct_values=emails, distinct_count=5000))
    assert (by_value.kind, by_value.reason) == (m.PiiKind.EMAIL, m.Reason.VALUE)
    cards = ("4111111111111111", "5500005555555559", "378282246310005")
    assert classify(_facts("x", distinct_values=cards)).kind is m.PiiKind.CARD
    not_luhn = ("4111111111111112", "5500005555555558", "378282246310006")
    assert classify(_facts("x", distinct_values=not_luhn)).kind is not m.PiiKind.CARD
    ips = ("10.0.0.1", "192.168.0.7", "8.8.8.8")
    assert classify(_facts("origin", distinct_values=ips)).kind is m.PiiKind.IP
    status = classify(_facts("status", distinct_values=("open", "closed"), distinct_count=2))
    assert (status.masked, status.reason) == (False, m.Reason.LOW_CARDINALITY)
    free = classify(_facts("comment", distinct_values=("nice", "bad"), distinct_count=5000))
    assert free.masked and free.reason is m.Reason.FREE_TEXT
    redacting = classify(
        _facts("comment", distinct_count=5000), default_free_text=m.MaskRule(m.Transformer.REDACT)
    )
    assert redacting.rule.transformer is m.Transformer.REDACT


def test_dictionaries_are_invented_words() -> None:
    """Fake names never equal common real names, so a masked value cannot be a raw one."""
    real = {"James", "Mary", "Smith", "Johnson", "Springfield", "Main St", "Garcia", "Lee"}
    for values in m.dictionaries().values():
        assert len(values) >= 30 and not real & set(values)


def _golden_cases() -> list[tuple[str, str, str]]:
    """tests/fixtures/masking/*.sql: `-- rule: <json>` then `dialect: expected SQL;` pairs."""
    cases = []
    for path in sorted(FIXTURES.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
        for block in blocks:
            lines = block.splitlines()
            spec = lines[0].removeprefix("-- rule:").strip()
            for line in lines[1:]:
                dialect, _, expected = line.partition(": ")
                cases.append((spec, dialect, expected.rstrip(";")))
    return cases


@pytest.mark.parametrize(("spec", "dialect", "expected"), _golden_cases())
def test_golden_mask_sql(spec: str, dialect: str, expected: str) -> None:
    import json

    rule = m.MaskRule.parse(json.loads(spec), "fixture")
    column = exp.column("c", table="t", quoted=True)
    if rule.strategy is m.MaskStrategy.DIRECT:
        sql = m.apply_sql(rule, column, None, "TEXT", dialect).sql(dialect)
    else:
        values = exp.select(m.canonical(rule, column, dialect).as_("raw")).from_(
            exp.table_("t", quoted=True).as_("t")
        )
        sql = m.map_query(rule, values, m.Salt.from_secret("golden"), dialect).sql(dialect)
    assert sql == expected
