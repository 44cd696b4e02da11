"""Keyed diff results on DuckDB and PostgreSQL against hand-computed truth."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from dataops_dev.diffing import DiffOptions, Tolerance, diff_relations
from dataops_dev.diffing.model import RowChange
from dataops_dev.engines import Relation
from dataops_dev.errors import UsageError

from .conftest import load

A, B = Relation("s", "a"), Relation("s", "b")


def _text(engine: Any) -> str:
    return "TEXT" if engine.dialect == "postgres" else "VARCHAR"


def _double(engine: Any) -> str:
    return "DOUBLE PRECISION" if engine.dialect == "postgres" else "DOUBLE"


def test_subtle_changes_peers_get_wrong(engine: Any) -> None:
    d, t = _double(engine), _text(engine)
    columns = f"id INTEGER, x {d}, ts TIMESTAMP, s {t}"
    load(
        engine,
        "a",
        columns,
        [
            "(1, 0.1, TIMESTAMP '2024-01-01 10:00:00', 'a')",  # x + 1e-9
            "(2, 1.0, TIMESTAMP '2024-01-01 10:00:00', 'a')",  # ts + 1 microsecond
            "(3, 1.0, TIMESTAMP '2024-01-01 10:00:00', NULL)",  # NULL -> ''
            "(4, 1.0, TIMESTAMP '2024-01-01 10:00:00', '')",  # '' -> NULL
            "(5, 1.0, TIMESTAMP '2024-01-01 10:00:00', 'b')",  # trailing space
            "(6, CAST('NaN' AS DOUBLE PRECISION), NULL, NULL)",  # NaN = NaN, NULL = NULL
            "(7, CAST('-0.0' AS DOUBLE PRECISION), NULL, 'same')",  # -0.0 = 0.0
            "(8, CAST('NaN' AS DOUBLE PRECISION), NULL, 'n')",  # NaN -> 1.0
            "(9, NULL, NULL, 'n')",  # NULL -> 0.0
        ],
    )
    load(
        engine,
        "b",
        columns,
        [
            "(1, 0.1 + 1e-9, TIMESTAMP '2024-01-01 10:00:00', 'a')",
            "(2, 1.0, TIMESTAMP '2024-01-01 10:00:00.000001', 'a')",
            "(3, 1.0, TIMESTAMP '2024-01-01 10:00:00', '')",
            "(4, 1.0, TIMESTAMP '2024-01-01 10:00:00', NULL)",
            "(5, 1.0, TIMESTAMP '2024-01-01 10:00:00', 'b ')",
            "(6, CAST('NaN' AS DOUBLE PRECISION), NULL, NULL)",
            "(7, 0.0, NULL, 'same')",
            "(8, 1.0, NULL, 'n')",
            "(9, 0.0, NULL, 'n')",
        ],
    )
    result = diff_relations(engine, A, B, key=["id"])
    assert result.rows.to_dict() == {
        "left": 9,
        "right": 9,
        "added": 0,
        "removed": 0,
        "changed": 7,
        "unchanged": 2,
    }
    assert result.column("x").changed == 3
    assert result.column("ts").changed == 1
    assert result.column("s").changed == 3
    assert {e.key[0] for e in result.column("x").examples} == {1, 8, 9}
    before_after = {e.key[0]: (e.before, e.after) for e in result.column("s").examples}
    assert before_after == {3: (None, ""), 4: ("", None), 5: ("b", "b ")}
    assert result.column("x").match_pct == pytest.approx(100 * 6 / 9, abs=1e-3)
    # The JSON form survives NaN and timestamps.
    json.dumps(result.to_dict(), allow_nan=False)


def test_tolerance_and_timestamp_precision(engine: Any) -> None:
    d = _double(engine)
    columns = f"id INTEGER, x {d}, y {d}, ts TIMESTAMP"
    load(
        engine,
        "a",
        columns,
        [
            "(1, 100.0, 100.0, TIMESTAMP '2024-01-01 10:00:00.100')",
            "(2, 100.0, 100.0, TIMESTAMP '2024-01-01 10:00:00')",
            "(3, 100.0, 100.0, NULL)",
            "(4, NULL, 1.0, NULL)",
        ],
    )
    load(
        engine,
        "b",
        columns,
        [
            "(1, 100.005, 100.05, TIMESTAMP '2024-01-01 10:00:00.900')",  # within abs/rel, same s
            "(2, 100.02, 100.2, TIMESTAMP '2024-01-01 10:00:01')",  # outside both, next second
            "(3, 100.0, 100.0, NULL)",
            "(4, 1.0, NULL, NULL)",  # NULL vs number is always a change
        ],
    )
    options = DiffOptions(
        tolerance={"x": Tolerance(abs=0.01), "y": Tolerance(rel=0.001)},
        timestamp_precision={"ts": "second"},
    )
    result = diff_relations(engine, A, B, key=["id"], options=options)
    assert {c.name: c.changed for c in result.columns} == {"x": 2, "y": 2, "ts": 1}
    assert result.rows.changed == 2 and result.rows.unchanged == 2
    exact = diff_relations(engine, A, B, key=["id"])
    assert {c.name: c.changed for c in exact.columns} == {"x": 3, "y": 3, "ts": 2}


def test_composite_keys_whose_string_forms_collide(engine: Any) -> None:
    t = _text(engine)
    columns = f"k1 {t}, k2 {t}, n1 INTEGER, n2 INTEGER, v INTEGER"
    load(
        engine,
        "a",
        columns,
        ["('a-b', 'c', 1, 23, 1)", "('a', 'b-c', 12, 3, 2)", "('x', 'y', 1, 1, 3)"],
    )
    load(
        engine,
        "b",
        columns,
        ["('a-b', 'c', 1, 23, 1)", "('a', 'b-c', 12, 3, 20)", "('x', 'y', 1, 1, 3)"],
    )
    by_text = diff_relations(engine, A, B, key=["k1", "k2"])
    assert (by_text.rows.changed, by_text.rows.unchanged) == (1, 2)
    assert by_text.keys is not None and by_text.keys.clean
    assert by_text.column("v").examples[0].key == ("a", "b-c")
    by_int = diff_relations(engine, A, B, key=["n1", "n2"])
    assert (by_int.rows.changed, by_int.rows.unchanged) == (1, 2)
    assert by_int.column("v").examples[0].key == (12, 3)


def test_duplicate_and_null_keys_are_counted_not_fatal(engine: Any) -> None:
    columns = "id INTEGER, v INTEGER"
    # left: 1 twice (identical rows), 2, NULL, 3, 5 ; right: 1, 2 twice, 3 changed, NULL x2, 4
    load(engine, "a", columns, ["(1, 1)", "(1, 1)", "(2, 2)", "(NULL, 0)", "(3, 3)", "(5, 5)"])
    load(
        engine,
        "b",
        columns,
        ["(1, 1)", "(2, 2)", "(2, 2)", "(3, 30)", "(NULL, 0)", "(NULL, 9)", "(4, 4)"],
    )
    result = diff_relations(engine, A, B, key=["id"])
    keys = result.keys
    assert keys is not None
    assert (keys.null_left, keys.null_right) == (1, 2)
    assert (keys.duplicate_left, keys.duplicate_right) == (1, 1)
    assert (keys.duplicate_rows_left, keys.duplicate_rows_right) == (2, 2)
    # keys 1 and 2 are duplicated on one side: left out of the comparison on both sides.
    assert (keys.excluded_left, keys.excluded_right) == (1 + 3, 2 + 3)
    rows = result.rows
    assert (rows.added, rows.removed, rows.changed, rows.unchanged) == (1, 1, 1, 0)
    assert rows.left == rows.removed + rows.changed + rows.unchanged + keys.excluded_left
    assert rows.right == rows.added + rows.changed + rows.unchanged + keys.excluded_right


def test_duplicates_hidden_among_equal_rows_are_found(engine: Any) -> None:
    """Key 1 has two identical left rows matching one identical right row: every join pair has
    equal hashes, so only the pair totals reveal the duplicate."""
    load(engine, "a", "id INTEGER, v INTEGER", ["(1, 1)", "(1, 1)", "(2, 2)"])
    load(engine, "b", "id INTEGER, v INTEGER", ["(1, 1)", "(2, 2)"])
    result = diff_relations(engine, A, B, key=["id"])
    assert result.keys is not None and result.keys.duplicate_left == 1
    assert (result.rows.unchanged, result.rows.changed) == (1, 0)


def test_type_changes_are_compared_after_a_cast(engine: Any) -> None:
    t = _text(engine)
    load(
        engine,
        "a",
        "id INTEGER, widened INTEGER, to_text INTEGER, num NUMERIC(10, 2)",
        ["(1, 5, 5, 1.50)", "(2, 6, 5, 2.00)"],
    )
    load(
        engine,
        "b",
        f"id BIGINT, widened BIGINT, to_text {t}, num NUMERIC(12, 4)",
        ["(1, 5, '5', 1.5)", "(2, 7, '05', 2.0001)"],
    )
    result = diff_relations(engine, A, B, key=["id"])
    changes = {c.name: c for c in result.schema.type_changed}
    assert set(changes) == {"widened", "to_text", "num"}
    assert changes["widened"].compared_as == "BIGINT"
    assert changes["to_text"].compared_as == _text(engine)
    assert changes["num"].compared_as.startswith(("DECIMAL(12, 4)", "NUMERIC(12, 4)"))
    assert {c.name: c.changed for c in result.columns} == {"widened": 1, "to_text": 1, "num": 1}
    assert (result.rows.changed, result.rows.unchanged) == (1, 1)


def test_empty_tables(engine: Any) -> None:
    load(engine, "a", "id INTEGER, v INTEGER", [])
    load(engine, "b", "id INTEGER, v INTEGER", ["(1, 1)"])
    result = diff_relations(engine, A, B, key=["id"])
    assert result.rows.to_dict() == {
        "left": 0,
        "right": 1,
        "added": 1,
        "removed": 0,
        "changed": 0,
        "unchanged": 0,
    }
    assert result.column("v").match_pct is None
    assert result.examples[0].kind is RowChange.ADDED
    both_empty = diff_relations(engine, A, A, key=["id"])
    assert not both_empty.has_differences


def test_wide_tables_300_columns(engine: Any) -> None:
    names = [f"c{i}" for i in range(300)]
    columns = "id INTEGER, " + ", ".join(f"{n} INTEGER" for n in names)
    rows = [f"({r}, " + ", ".join(str(r * 1000 + i) for i in range(300)) + ")" for r in range(20)]
    load(engine, "a", columns, rows)
    changed = [list(row) for row in rows]
    del changed
    load(engine, "b", columns, rows)
    engine.execute("UPDATE s.b SET c150 = -1 WHERE id = 3")
    engine.execute("UPDATE s.b SET c299 = NULL WHERE id IN (4, 5)")
    result = diff_relations(engine, A, B, key=["id"])
    assert len(result.columns) == 300
    assert {c.name: c.changed for c in result.changed_columns} == {"c150": 1, "c299": 2}
    assert (result.rows.changed, result.rows.unchanged) == (3, 17)
    changed_row = next(e for e in result.examples if e.key == (3,))
    assert changed_row.before == {"c150": 3150} and changed_row.after == {"c150": -1}


def test_identifiers_that_need_quoting(engine: Any) -> None:
    engine.execute('CREATE SCHEMA "My Schema"')
    columns = '"select" INTEGER, "a b" INTEGER, "we""ird" INTEGER, "Order" INTEGER'
    engine.execute(f'CREATE TABLE "My Schema"."from" ({columns})')
    engine.execute(f'CREATE TABLE "My Schema"."to" ({columns})')
    engine.execute('INSERT INTO "My Schema"."from" VALUES (1, 1, 1, 1), (2, 2, 2, 2)')
    engine.execute('INSERT INTO "My Schema"."to" VALUES (1, 1, 10, 1), (3, 3, 3, 3)')
    left = Relation.parse('"My Schema"."from"')
    right = Relation.parse('"My Schema"."to"')
    result = diff_relations(engine, left, right, key=["select"])
    assert (result.rows.added, result.rows.removed, result.rows.changed) == (1, 1, 1)
    assert result.column('we"ird').changed == 1
    keyless = diff_relations(engine, left, right, key=None)
    assert (keyless.rows.only_left, keyless.rows.only_right) == (2, 2)


def test_renames_detected_by_values_and_declared(engine: Any) -> None:
    load(engine, "a", "id INTEGER, old_name INTEGER, gone INTEGER", ["(1, 1, 7)", "(2, 2, 8)"])
    load(engine, "b", "id INTEGER, new_name INTEGER, fresh INTEGER", ["(1, 1, 0)", "(2, 2, 8)"])
    result = diff_relations(engine, A, B, key=["id"])
    assert [(r.left, r.right, r.reason.value) for r in result.schema.renamed] == [
        ("old_name", "new_name", "values")
    ]
    assert [c.name for c in result.schema.added] == ["fresh"]
    assert [c.name for c in result.schema.removed] == ["gone"]
    declared = diff_relations(
        engine, A, B, key=["id"], options=DiffOptions(renames={"fresh": "gone"})
    )
    assert declared.column("fresh").changed == 1
    assert declared.column("fresh").left_name == "gone"


def test_examples_are_bounded(engine: Any) -> None:
    rows = [f"({i}, {i})" for i in range(100)]
    load(engine, "a", "id INTEGER, v INTEGER", rows)
    load(engine, "b", "id INTEGER, v INTEGER", [f"({i}, {-i - 1})" for i in range(100)])
    result = diff_relations(
        engine, A, B, key=["id"], options=DiffOptions(examples=3, example_rows=4)
    )
    assert result.rows.changed == 100
    assert len(result.column("v").examples) == 3
    assert len(result.examples) == 4
    assert [e.key for e in result.column("v").examples] == [(0,), (1,), (2,)]


def test_keyless_multiset_and_candidate_keys(engine: Any) -> None:
    columns = "id INTEGER, v INTEGER, maybe INTEGER"
    load(engine, "a", columns, ["(1, 1, 1)", "(2, 2, 1)", "(2, 2, 1)", "(3, 3, NULL)"])
    load(engine, "b", columns, ["(1, 1, 1)", "(2, 2, 1)", "(3, 4, NULL)", "(4, 4, NULL)"])
    result = diff_relations(engine, A, B, key=None)
    assert result.keyless
    assert result.rows.to_dict() == {
        "left": 4,
        "right": 4,
        "only_left": 2,
        "only_right": 2,
        "duplicate_left": 1,
        "duplicate_right": 0,
    }
    assert result.only_left_examples[0] == {"id": 2, "v": 2, "maybe": 1}
    assert result.candidate_keys == ()  # id repeats on the left
    load(engine, "c", columns, ["(1, 1, 1)", "(2, 2, 1)", "(3, 3, NULL)"])
    cleaner = diff_relations(engine, Relation("s", "c"), B, key=None)
    assert cleaner.candidate_keys == (("id",),)
    assert math.isclose(cleaner.rows.only_left, 1)


def test_bad_key_is_a_usage_error(engine: Any) -> None:
    from dataops_dev.errors import UsageError

    load(engine, "a", "id INTEGER", ["(1)"])
    load(engine, "b", "other INTEGER", ["(1)"])
    with pytest.raises(UsageError) as info:
        diff_relations(engine, A, B, key=["id"])
    assert info.value.hint and "--key" in info.value.hint


def test_rules_on_the_wrong_column_type_are_usage_errors(engine: Any) -> None:
    from dataops_dev.errors import UsageError

    load(engine, "a", "id INTEGER, name TEXT", ["(1, 'a')"])
    load(engine, "b", "id INTEGER, name TEXT", ["(1, 'a')"])
    for options in (
        DiffOptions(tolerance={"name": Tolerance(abs=1)}),
        DiffOptions(timestamp_precision={"name": "second"}),
        DiffOptions(timestamp_precision={"name": "fortnight"}),
    ):
        with pytest.raises(UsageError):
            diff_relations(engine, A, B, key=["id"], options=options)


def test_rows_with_only_nulls_are_added_or_removed_not_equal(engine: Any) -> None:
    """A one-sided row whose values are all NULL must not look like an equal pair."""
    load(engine, "a", "id INTEGER, v INTEGER", ["(1, NULL)", "(3, NULL)"])
    load(engine, "b", "id INTEGER, v INTEGER", ["(2, NULL)", "(3, NULL)"])
    result = diff_relations(engine, A, B, key=["id"])
    assert (result.rows.added, result.rows.removed, result.rows.unchanged) == (1, 1, 1)
    key_only = diff_relations(engine, A, B, key=["id"], options=DiffOptions(exclude=("v",)))
    assert (key_only.rows.added, key_only.rows.removed, key_only.rows.unchanged) == (1, 1, 1)


def test_declared_cast_for_a_type_change(engine: Any) -> None:
    t = _text(engine)
    load(engine, "a", "id INTEGER, code INTEGER", ["(1, 5)", "(2, 6)"])
    load(engine, "b", f"id INTEGER, code {t}", ["(1, '05')", "(2, '7')"])
    as_text = diff_relations(engine, A, B, key=["id"])
    assert as_text.column("code").changed == 2
    declared = diff_relations(
        engine, A, B, key=["id"], options=DiffOptions(casts={"code": "BIGINT"})
    )
    assert declared.schema.type_changed[0].compared_as == "BIGINT"
    assert declared.column("code").changed == 1
    assert declared.column("code").examples[0].after == "7"


@pytest.mark.parametrize("bogus", ["bogus", "decimal(18", "int; drop table s.a", ""])
def test_a_declared_cast_to_no_type_is_a_usage_error(engine: Any, bogus: str) -> None:
    load(engine, "a", "id INTEGER, code INTEGER", ["(1, 5)"])
    load(engine, "b", "id INTEGER, code INTEGER", ["(1, 5)"])
    with pytest.raises(UsageError) as error:
        diff_relations(engine, A, B, key=["id"], options=DiffOptions(casts={"code": bogus}))
    assert "'code'" in error.value.message and engine.dialect in error.value.message
    assert "--cast code=" in (error.value.hint or "")
    assert engine.fetchall("SELECT count(*) FROM s.a") == [(1,)]


def test_non_strict_runs_fall_back_and_note_it(engine: Any) -> None:
    load(engine, "a", "id INTEGER, name TEXT", ["(1, 'a')", "(2, 'b')"])
    load(engine, "b", "code INTEGER, name TEXT", ["(1, 'a')", "(2, 'c')"])
    lenient = DiffOptions(strict=False, tolerance={"name": Tolerance(abs=1)})
    result = diff_relations(engine, A, B, key=["id"], options=lenient)
    # Only the shared column `name` is compared: ("b") vs ("c").
    assert result.keyless and (result.rows.only_left, result.rows.only_right) == (1, 1)
    assert any("missing" in n for n in result.notes) and any("ignored" in n for n in result.notes)
    assert result.to_dict()["notes"] == list(result.notes)


def test_row_examples_alternate_kinds_and_skip_rows_within_tolerance(engine: Any) -> None:
    """One top-N per kind must still give the old order (rank, kind, key) and must not spend
    a slot on a hash-changed row whose values are equal under the column's tolerance."""
    dtype = _double(engine)
    left = [f"({i}, {i}.0)" for i in range(20)]
    right = [f"({i}, {i}.0001)" if i % 2 == 0 else f"({i}, {i + 5}.0)" for i in range(10)]
    right += [f"({i}, {i}.0)" for i in range(20, 30)]
    load(engine, "a", f"id INTEGER, v {dtype}", left)
    load(engine, "b", f"id INTEGER, v {dtype}", right)
    options = DiffOptions(examples=2, example_rows=4, tolerance={"v": Tolerance(abs=0.01)})
    result = diff_relations(engine, A, B, key=["id"], options=options)
    assert (result.rows.added, result.rows.removed, result.rows.changed) == (10, 10, 5)
    assert [(e.kind, e.key) for e in result.examples] == [
        (RowChange.ADDED, (20,)),
        (RowChange.CHANGED, (1,)),
        (RowChange.REMOVED, (10,)),
        (RowChange.ADDED, (21,)),
    ]
    assert [e.key for e in result.column("v").examples] == [(1,), (3,)]
    assert result.examples[1].before == {"v": 1.0}
    assert result.examples[1].after == {"v": 6.0}
