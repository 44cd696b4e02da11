"""PII classification fails closed: values are checked on every column that can hold PII."""

from __future__ import annotations

import json
from typing import Any

from dataops_dev import masking as m


def _facts(column: str, data_type: str = "VARCHAR", **kwargs: Any) -> m.ColumnFacts:
    return m.ColumnFacts(table="shop.t", column=column, data_type=data_type, **kwargs)


EMAILS = tuple(f"person{i}@mail.example.org" for i in range(30))


def test_key_named_text_column_holding_emails_is_masked() -> None:
    decided = m.classify_column(_facts("customer_key", distinct_values=EMAILS, distinct_count=5000))
    assert decided.masked
    assert (decided.kind, decided.reason) == (m.PiiKind.EMAIL, m.Reason.VALUE)
    assert decided.rule.transformer is m.Transformer.EMAIL
    uuids = tuple(f"0f8fad5b-d9cb-469f-a165-70867728{i:04d}" for i in range(30))
    kept = m.classify_column(_facts("event_key", distinct_values=uuids, distinct_count=5000))
    assert not kept.masked and kept.reason is m.Reason.KEY


def test_json_column_holding_contact_details_is_masked() -> None:
    documents = tuple(
        json.dumps(
            {"email": f"p{i}@corp.example.com", "name": "Ada Lovelace", "phone": "+44 20 7946 0958"}
        )
        for i in range(5)
    )
    decided = m.classify_column(_facts("payload", "JSON", distinct_values=documents))
    assert decided.masked and decided.reason is m.Reason.VALUE
    assert decided.kind is m.PiiKind.EMAIL
    assert decided.rule.transformer is m.Transformer.NULL  # a document is masked whole
    phones = tuple(json.dumps({"name": "Ada", "phone": f"+1-555-010-{i:04d}"}) for i in range(5))
    assert (
        m.classify_column(_facts("extra", "JSON", distinct_values=phones)).kind is m.PiiKind.PHONE
    )
    # DuckDB structs print as {'k': v}; lists as [..]
    structs = ("{'contact': someone@example.net, 'tier': 2}",)
    struct = m.classify_column(
        _facts("info", "STRUCT(contact VARCHAR, tier INTEGER)", distinct_values=structs)
    )
    assert struct.masked and struct.kind is m.PiiKind.EMAIL
    listed = m.classify_column(
        _facts("aliases", "VARCHAR[]", distinct_values=("[a@b.io, c@d.io]",))
    )
    assert listed.masked and listed.kind is m.PiiKind.EMAIL
    # JSON in a text column is inspected as a document too
    text_json = m.classify_column(_facts("attributes", distinct_values=documents, distinct_count=3))
    assert text_json.masked and text_json.kind is m.PiiKind.EMAIL


def test_structured_column_without_proof_is_masked_unless_a_small_category() -> None:
    opaque = tuple(json.dumps({"note": f"called about order {i}"}) for i in range(200))
    decided = m.classify_column(
        _facts("payload", "JSON", distinct_values=opaque, distinct_count=200)
    )
    assert decided.masked and decided.reason is m.Reason.FREE_TEXT
    small = m.classify_column(
        _facts("flags", "JSON", distinct_values=('{"beta": true}',), distinct_count=2)
    )
    assert not small.masked and small.reason is m.Reason.LOW_CARDINALITY


def test_bigint_column_holding_phone_numbers_is_masked() -> None:
    phones = tuple(str(15550100000 + i * 7919) for i in range(40))
    decided = m.classify_column(_facts("contact", "BIGINT", distinct_values=phones))
    assert decided.masked
    assert (decided.kind, decided.reason) == (m.PiiKind.PHONE, m.Reason.VALUE)
    assert decided.rule.transformer is m.Transformer.NULL
    cards = ("4111111111111111", "5500005555555559", "4012888888881881", "5105105105105100")
    assert (
        m.classify_column(_facts("pay_ref", "BIGINT", distinct_values=cards)).kind is m.PiiKind.CARD
    )


def test_ordinary_integers_stay() -> None:
    amounts = tuple(str(i * 137) for i in range(100))
    assert not m.classify_column(_facts("amount_cents", "BIGINT", distinct_values=amounts)).masked
    epochs = tuple(str(1_700_000_000 + i * 3600) for i in range(100))
    assert not m.classify_column(_facts("created_ts", "BIGINT", distinct_values=epochs)).masked
    ids = tuple(str(10_000_000_000 + i) for i in range(100))
    assert not m.classify_column(_facts("order_id", "BIGINT", distinct_values=ids)).masked


def test_new_column_is_not_kept_for_low_cardinality() -> None:
    facts = _facts("nickname", distinct_values=("Bo", "Al"), distinct_count=2)
    assert not m.classify_column(facts).masked
    new = m.classify_column(facts, new_column=True)
    assert new.masked and new.rule.transformer is m.Transformer.SCRAMBLE
    assert new.reason is m.Reason.FREE_TEXT and "lock file" in new.detail
    # provably harmless types stay, new or not
    assert not m.classify_column(
        _facts("qty", "INTEGER", distinct_values=("1", "2")), new_column=True
    ).masked


def test_stricter_keeps_a_mask_from_either_side() -> None:
    masked = m.ColumnClass(
        "shop.t", "email", m.PiiKind.EMAIL, m.MaskRule(m.Transformer.EMAIL), m.Reason.META
    )
    kept = m.ColumnClass("shop.t", "email", None, m.PASSTHROUGH, m.Reason.META, "meta.pii=False")
    assert m.stricter(masked, kept) is masked
    assert m.stricter(kept, masked) is masked
    other = m.ColumnClass(
        "shop.t", "email", None, m.MaskRule(m.Transformer.REDACT), m.Reason.CONFIG
    )
    assert m.stricter(masked, other) is masked


def test_source_column_meta_reads_meta_config_meta_and_tags() -> None:
    from dataops_dev.trust import source_column_meta

    text = """
version: 2
sources:
  - name: shop
    tables:
      - name: customers
        columns:
          - name: email
            meta: {pii: email}
          - name: phone
            config: {meta: {pii: phone}, tags: [pii]}
          - name: city
models:
  - name: not_a_source
    columns: [{name: email, meta: {pii: false}}]
"""
    found = source_column_meta(iter([("models/x.yml", text), ("broken.yml", "a: [")]))
    assert found["shop.customers.email"] == ({"pii": "email"}, ())
    assert found["shop.customers.phone"] == ({"pii": "phone"}, ("pii",))
    assert found["shop.customers.city"] == ({}, ())
    assert len(found) == 3
