"""What a keyed diff's SQL depends on, and the names its statements share (no sqlglot here).

Both statement builders read these: `sql` (sqlglot trees, every dialect) and `duckdb_sql` (plain
text for the common DuckDB case), so the caller can read their results by the same names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dataops_dev.diffing.schema import CompareColumn, KeyColumn
from dataops_dev.engines.base import Engine, Relation
from dataops_dev.errors import DataopsError

# The kind of each group of the mismatch set.
CHANGED, ADDED, REMOVED, DUPLICATE, SAME = "changed", "added", "removed", "duplicate", "same"
HASH, KIND = "__h", "__kind"
# Shared with the keyless diff: which side a row comes from, and rows per side in a group.
SIDE, N_LEFT, N_RIGHT = "__s", "__n_l", "__n_r"
EXAMPLE_OF = "__c"
"""Which list an example row belongs to: ROW_EXAMPLES, or the index of the changed column."""
ROW_EXAMPLES = -1
RANK = "__rk"


def key_alias(index: int) -> str:
    return f"__k{index}"


def value_alias(index: int) -> str:
    return f"__v{index}"


def left_value(index: int) -> str:
    return f"__l{index}"


def right_value(index: int) -> str:
    return f"__r{index}"


def differs(index: int) -> str:
    return f"__d{index}"


@dataclass(frozen=True)
class DiffSpec:
    """Everything the keyed diff SQL depends on (pure data, so the SQL can be pinned by goldens)."""

    dialect: str
    left: Relation
    right: Relation
    key: tuple[KeyColumn, ...]
    columns: tuple[CompareColumn, ...]
    example_rows: int = 20
    prefix: str = "__dataops_diff"
    """Temp table name prefix; unique per run so concurrent diffs on one session never clash."""

    @property
    def detail_table(self) -> str:
        """The mismatch set with both sides' values (the one table a keyed diff writes)."""
        return f"{self.prefix}_d"


class KeyedStatements(Protocol):
    """The keyed diff's statements as SQL text, from one builder."""

    def side_counts(self, spec: DiffSpec) -> str:
        """Rows and NULL-key rows per side."""

    def match(self, spec: DiffSpec) -> str:
        """The one pass that writes the mismatch set into `spec.detail_table`."""

    def match_exact(self, spec: DiffSpec) -> str:
        """The same set when keys repeat (one aggregate over both sides)."""

    def counts(self, spec: DiffSpec) -> str:
        """Every count, from one read of the mismatch set."""

    def examples(self, spec: DiffSpec, column_examples: int) -> str:
        """Every example row, from one bounded read of the mismatch set."""

    def drop(self, table: str, dialect: str) -> list[str]:
        """The statements that drop one of our temp tables."""


def drop_quietly(engine: Engine, statements: Sequence[str]) -> None:
    """Drop our temp tables; a failure here must not hide the error that got us here."""
    for statement in statements:
        with contextlib.suppress(DataopsError):
            engine.execute(statement)
