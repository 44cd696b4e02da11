"""statefiles: the depth and size bounds every reader of our own files applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops_dev.statefiles import (
    DUCKDB_HEADER_BYTES,
    MAX_DEPTH,
    InvalidFile,
    check_depth,
    check_duckdb_connection,
    parse_json,
    parse_yaml,
    read_cache_json,
)


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_json_at_the_depth_limit_loads_and_one_level_more_is_refused() -> None:
    # Both load in the C decoder (far below the recursion limit): only the check refuses.
    assert parse_json(_nested(MAX_DEPTH), shape=list) == parse_json(_nested(MAX_DEPTH), shape=list)
    with pytest.raises(InvalidFile, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse_json(_nested(MAX_DEPTH + 1), shape=list)


def test_depth_counts_mappings_and_lists_on_one_path_only() -> None:
    wide = {"k": [{"a": [1, 2, {"b": "x"}]} for _ in range(1000)]}
    check_depth(wide, max_depth=5)
    with pytest.raises(InvalidFile, match="deeper than 4"):
        check_depth(wide, max_depth=4)
    check_depth("scalar", max_depth=0)


def test_a_yaml_alias_bomb_is_refused_by_its_expansion() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(InvalidFile, match="expands to more than"):
        parse_yaml("\n".join(lines))


def test_a_torn_or_deep_cache_entry_reads_as_no_cache(tmp_path: Path) -> None:
    torn = tmp_path / "torn.json"
    torn.write_text('{"cache_key": "abc", "edges": [', encoding="utf-8")
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + _nested(MAX_DEPTH + 5) + "}", encoding="utf-8")
    assert read_cache_json(torn) is None
    assert read_cache_json(deep) is None
    assert read_cache_json(tmp_path / "missing.json") is None


def test_a_duckdb_file_whose_last_free_blocks_were_cut_off_is_whole(tmp_path: Path) -> None:
    """A checkpoint that frees the last blocks shortens the file below all its blocks: that file
    is whole (every row reads); a file missing a block in use is truncated."""

    import duckdb

    path = tmp_path / "production.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "CREATE TABLE kept AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(200000)"
        )
        connection.execute("CHECKPOINT")
        connection.execute("CREATE TABLE dropped AS SELECT * FROM kept LIMIT 100000")
        connection.execute("CHECKPOINT")
        connection.execute("DROP TABLE dropped")
        connection.execute("CHECKPOINT")
    with duckdb.connect(str(path), read_only=True) as connection:
        size, total, used = connection.execute(
            "SELECT block_size, total_blocks, used_blocks FROM pragma_database_size()"
        ).fetchone()
        assert path.stat().st_size < DUCKDB_HEADER_BYTES + size * total  # the free ones are gone
        check_duckdb_connection(connection, path)
        assert connection.execute("SELECT count(*) FROM kept").fetchone() == (200000,)

    # Blocks in use cut off: never taken as whole (DuckDB refuses such a file, or the check).
    whole = path.read_bytes()
    for blocks in range(used - 1, 0, -1):
        path.write_bytes(whole[: DUCKDB_HEADER_BYTES + size * blocks])
        try:
            connection = duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            continue
        with connection, pytest.raises(InvalidFile, match="is truncated"):
            check_duckdb_connection(connection, path)
