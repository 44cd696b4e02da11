"""The diff cache on its own (no dbt): an entry is returned only under the key it was kept with,
and a corrupt or edited entry is no entry. The review around it: test_review_reuse_diffs.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

from dataops_dev.config import as_plain
from dataops_dev.diffing.model import DiffOptions, Tolerance
from dataops_dev.integrity import IntegrityKey
from dataops_dev.reporting import CaptureReporter
from dataops_dev.review_reuse import DiffCache

SCOPE = {"base": {"build": "b1"}, "head": {"build": "h1"}, "tool": "t1"}
INPUTS = {"left": '"base"."main"."orders"', "right": '"head"."main"."orders"', "key": ["id"]}
OUTCOME = {"data": {"rows": {"base": 3, "head": 4, "added": 1}}, "note": None}


def cache(tmp_path: Path, **changes: object) -> DiffCache:
    fields: dict[str, object] = {
        "directory": tmp_path,
        "scope": SCOPE,
        "key": IntegrityKey(b"k" * 32),
        **changes,
    }
    return DiffCache(**fields)  # type: ignore[arg-type]


def test_an_entry_is_read_back_only_under_its_key(tmp_path: Path) -> None:
    cache(tmp_path).write("orders", INPUTS, OUTCOME)
    assert cache(tmp_path).read("orders", INPUTS) == OUTCOME
    assert cache(tmp_path).read("orders", {**INPUTS, "key": ["order_id"]}) is None
    assert cache(tmp_path).read("customers", INPUTS) is None
    rebuilt = {**SCOPE, "head": {"build": "h2"}}
    assert cache(tmp_path, scope=rebuilt).read("orders", INPUTS) is None
    assert cache(tmp_path, readable=False).read("orders", INPUTS) is None


def test_a_corrupt_or_edited_entry_is_no_entry(tmp_path: Path) -> None:
    cache(tmp_path).write("orders", INPUTS, OUTCOME)
    (path,) = tmp_path.glob("*.json")
    good = path.read_text()
    edited = json.loads(good)
    edited["outcome"]["data"]["rows"]["added"] = 2
    for text in (good[: len(good) // 2], json.dumps(edited), "\x00"):
        path.write_text(text)
        captured = CaptureReporter()
        assert cache(tmp_path).read("orders", INPUTS, captured) is None
        assert any("ignored the stored diff" in m for m in captured.messages("warning"))
    # Another salt is another key: the entry does not verify.
    path.write_text(good)
    assert cache(tmp_path, key=IntegrityKey(b"x" * 32)).read("orders", INPUTS) is None


def test_options_have_one_form_however_their_mappings_were_built() -> None:
    a = DiffOptions(
        tolerance=MappingProxyType({"amount": Tolerance(abs=0.01), "fee": Tolerance(rel=0.1)}),
        timestamp_precision={"at": "second"},
    )
    b = DiffOptions(
        tolerance={"fee": Tolerance(rel=0.1), "amount": Tolerance(abs=0.01)},
        timestamp_precision=MappingProxyType({"at": "second"}),
    )
    assert json.dumps(as_plain(a)) == json.dumps(as_plain(b))
    assert as_plain(a)["tolerance"]["amount"] == {"abs": 0.01, "rel": 0.0}
    assert as_plain(a) != as_plain(DiffOptions(examples=2))
