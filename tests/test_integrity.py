"""The report integrity tag: what it covers, and what its key is derived from."""

from __future__ import annotations

import json

from dataops_dev.integrity import (
    TAG_KEY,
    IntegrityKey,
    IntegrityStatus,
    canonical_json,
    signed,
    tag,
    verify,
)
from dataops_dev.masking import Salt

KEY = IntegrityKey.from_salt(Salt.from_secret("integrity-test-salt"))
DATA = {"schema_version": 1, "verdict": "blocked", "models": [{"name": "é", "rows": 1.5}]}


def test_the_tag_covers_every_key_but_itself_in_any_key_order() -> None:
    tagged = signed(DATA, KEY)
    assert list(tagged)[-1] == TAG_KEY
    reordered = dict(reversed(list(tagged.items())))
    assert verify(reordered, KEY) is IntegrityStatus.VERIFIED
    # What a file round trip gives back verifies too.
    assert verify(json.loads(json.dumps(tagged, indent=2)), KEY) is IntegrityStatus.VERIFIED
    assert canonical_json(tagged) == canonical_json(DATA)


def test_any_edit_or_another_key_is_a_mismatch() -> None:
    tagged = signed(DATA, KEY)
    for edit in (
        {"verdict": "pass"},
        {"models": [{"name": "é", "rows": 1.50001}]},
        {"extra": None},
    ):
        assert verify({**tagged, **edit}, KEY) is IntegrityStatus.MISMATCH
    other = IntegrityKey.from_salt(Salt.from_secret("another-salt"))
    assert verify(tagged, other) is IntegrityStatus.MISMATCH
    assert verify(DATA, KEY) is IntegrityStatus.MISSING
    assert verify(tagged, None) is IntegrityStatus.NO_KEY


def test_the_key_is_separated_from_the_masking_keys() -> None:
    salt = Salt.from_secret("integrity-test-salt")
    key = IntegrityKey.from_salt(salt).key
    assert key not in (salt.key, b"integrity-test-salt", salt.subkey("sample"))
    assert tag(DATA, KEY).startswith("hmac-sha256:") and len(tag(DATA, KEY)) == 12 + 64
