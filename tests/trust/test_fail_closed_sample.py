"""Fail-closed classification through the real sampler: a fresh clone of fixture `ub_contacts`
whose production holds e-mails in a text key and a `*_key` column, contact details in JSON and
phone numbers in a BIGINT, none of them declared PII."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.real_projects import make_project_repo


def _values(database: Path, sql: str) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as con:
        return [str(v) for (v,) in con.execute(sql).fetchall() if v is not None]


@pytest.mark.slow
def test_undeclared_pii_is_masked_and_keys_still_join(tmp_path: Path) -> None:
    repo = make_project_repo("ub_contacts", tmp_path)
    built = repo.run("sample", "--json")
    assert built.returncode == 0, built.stderr
    record = json.loads(built.stdout)
    masked = {t["table"]: dict(t["masked"]) for t in record["tables"]}["raw.customers"]
    assert masked["customer_key"] == "email"  # *_key text holding e-mails
    assert masked["profile"] == "null"  # JSON with e-mail, name, phone: masked whole
    assert masked["msisdn"] == "null"  # BIGINT phone numbers
    assert masked["contact"] == "email"  # a key holding e-mails: masked, joins kept
    assert "tier" not in masked  # a small category stays
    assert all(t["orphans"] == 0 for t in record["tables"])

    prod, sample = repo.path("prod.duckdb"), Path(record["location"])
    for column in ("contact", "customer_key", "profile", "msisdn"):
        raw = set(_values(prod, f"select {column}::varchar from raw.customers"))
        kept = _values(sample, f"select {column}::varchar from raw.customers")
        assert not raw.intersection(kept), column
    assert _values(sample, "select count(*) from raw.customers where profile is not null") == ["0"]
    joined = _values(
        sample,
        "select count(*) from raw.orders o left join raw.customers c "
        "on o.customer_contact = c.contact where c.contact is null",
    )
    assert joined == ["0"]
    assert _values(sample, "select count(*) from raw.orders") != ["0"]
