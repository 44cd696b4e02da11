"""Golden lineage and classification fixtures (tests/fixtures/lineage/*.sql), per dialect.

A case is a header (`-- lineage: NAME` or `-- classify: NAME`), the input SQL ending with `;`
(two statements, base then head, for `classify`), then the expected lines ending with a line
holding only `;`. Lineage lines read `source.column -> column kind`; classify lines read
`kind [changed=a,b] [renamed=a>b] [rows]`. Regenerate after an intended change with
`DATAOPS_UPDATE_GOLDEN=1 pytest tests/lineage` and review the diff like code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataops_dev.impact import classify_sql
from dataops_dev.lineage import RelationIndex, model_lineage_from_sql

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lineage"
UPDATE = os.environ.get("DATAOPS_UPDATE_GOLDEN") == "1"
_HEADER = re.compile(r"^-- (lineage|classify): (\S+)\s*$")

# The fixtures' world: four source tables in schema `raw` (any database name maps to them).
TABLES = {
    "orders": ("id", "customer_id", "store_id", "amount", "status", "ordered_at", "tags"),
    "customers": ("id", "name", "email", "region"),
    "payments": ("id", "order_id", "amount", "method"),
    "events": ("id", "customer_id", "payload", "at"),
}
RELATIONS = RelationIndex(
    by_schema_name={("raw", name): name for name in TABLES},
    by_name={name: name for name in TABLES},
)
SCHEMAS: dict[str, tuple[str, ...] | None] = dict(TABLES)


@dataclass
class Case:
    kind: str
    name: str
    inputs: list[str]
    expected: list[str]


def read_cases(path: Path) -> list[Case]:
    cases: list[Case] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _HEADER.match(lines[i])
        i += 1
        if not match:
            continue
        kind, name = match.groups()
        wanted = 1 if kind == "lineage" else 2
        inputs: list[str] = []
        buffer: list[str] = []
        while len(inputs) < wanted and i < len(lines):
            buffer.append(lines[i])
            if lines[i].rstrip().endswith(";"):
                inputs.append("\n".join(buffer).rstrip().rstrip(";"))
                buffer = []
            i += 1
        expected: list[str] = []
        while i < len(lines) and lines[i].strip() != ";":
            if lines[i].strip():
                expected.append(lines[i].strip())
            i += 1
        i += 1
        cases.append(Case(kind, name, inputs, expected))
    return cases


def write_cases(path: Path, cases: list[Case], actual: dict[str, list[str]]) -> None:
    out: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if _HEADER.match(line):
            break
        out.append(line)
    for case in cases:
        out.append(f"-- {case.kind}: {case.name}")
        out.extend(f"{sql};" for sql in case.inputs)
        out.extend(actual.get(case.name, case.expected))
        out.append(";")
        out.append("")
    path.write_text("\n".join(out), encoding="utf-8")


def lineage_lines(sql: str, dialect: str) -> list[str]:
    result = model_lineage_from_sql("model", sql, dialect, RELATIONS, SCHEMAS)
    lines = [
        f"{e.source_node}.{e.source_column} -> {e.target_column} {e.kind.value}"
        for e in result.edges
    ]
    if result.columns is None:
        lines.append("columns: unknown")
    return sorted(lines)


def classify_line(base: str, head: str, dialect: str) -> list[str]:
    change = classify_sql(base, head, dialect, relations=RELATIONS, base_schemas=SCHEMAS)
    parts = [change.change.value if change.change else "none"]
    if change.change is not None and change.changed_columns and not change.rows_affected:
        parts.append("changed=" + ",".join(change.changed_columns))
    if change.renamed_columns:
        parts.append("renamed=" + ",".join(f"{a}>{b}" for a, b in change.renamed_columns))
    if change.removed_columns:
        parts.append("removed=" + ",".join(change.removed_columns))
    if change.rows_affected:
        parts.append("rows")
    return [" ".join(parts)]


def _files() -> list[Path]:
    return sorted(FIXTURES.glob("*.sql"))


def _dialect(path: Path) -> str:
    return path.stem.rsplit("_", 1)[-1]


def _params() -> list[tuple[Path, Case]]:
    return [(path, case) for path in _files() for case in read_cases(path)]


@pytest.fixture(scope="module", autouse=True)
def _update_golden() -> None:
    if not UPDATE:
        return
    for path in _files():
        cases = read_cases(path)
        actual = {}
        for case in cases:
            if case.kind == "lineage":
                actual[case.name] = lineage_lines(case.inputs[0], _dialect(path))
            else:
                actual[case.name] = classify_line(*case.inputs, _dialect(path))
        write_cases(path, cases, actual)


def test_fixtures_cover_three_dialects_and_every_construct() -> None:
    dialects = {_dialect(p) for p in _files()}
    assert {"duckdb", "postgres", "snowflake"} <= dialects
    names = {case.name for _, case in _params()}
    for construct in (
        "star",
        "cte",
        "subquery",
        "union",
        "window",
        "unnest",
        "macro",
        "unknown",
        "filter",
        "join",
        "group",
        "aggregate",
        "rename",
    ):
        assert any(construct in n for n in names), construct


@pytest.mark.parametrize(
    ("path", "case"), _params(), ids=[f"{p.stem}:{c.name}" for p, c in _params()]
)
def test_golden(path: Path, case: Case) -> None:
    dialect = _dialect(path)
    if case.kind == "lineage":
        assert lineage_lines(case.inputs[0], dialect) == case.expected
    else:
        assert classify_line(*case.inputs, dialect) == case.expected
