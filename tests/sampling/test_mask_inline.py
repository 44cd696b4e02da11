"""Unique columns are masked in line (no DISTINCT, no join back): the same output as mapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from dataops_dev import sampling
from dataops_dev.config import AnchorConfig, SampleConfig
from dataops_dev.engines import DuckDBEngine, Relation
from dataops_dev.fkgraph import EdgeOrigin, FkGraph, ForeignKey, SourceTable
from dataops_dev.masking import ColumnClass, MaskRule, Reason, Salt, Transformer, python_feistel
from dataops_dev.sampling import DuckDBSampleWriter, plan_sample, run_sample

SALT = Salt.from_secret("inline-tests")

GRAPH = FkGraph(
    tables={
        "app.people": SourceTable("app.people", "app.people", Relation("app", "people"), ("id",)),
        "app.orders": SourceTable("app.orders", "app.orders", Relation("app", "orders"), ("id",)),
    },
    edges=(
        ForeignKey(
            "app.orders", ("person_id",), "app.people", ("id",), EdgeOrigin.CONFIG, "test", False
        ),
    ),
)

# Every value transformer, with columns whose names clash with map_query's stage names (h, x, d).
PEOPLE_MASKS = {
    "id": MaskRule(Transformer.HMAC_INT),
    "email": MaskRule(Transformer.EMAIL),
    "phone": MaskRule(Transformer.PHONE),
    "h": MaskRule(Transformer.CARD),
    "x": MaskRule(Transformer.IP),
    "street": MaskRule(Transformer.STREET),
    "city": MaskRule(Transformer.CITY),
    "d": MaskRule(Transformer.SCRAMBLE),
    "nick": MaskRule(Transformer.HMAC_ID, {"prefix": "n_", "length": 10}),
    "full": MaskRule(Transformer.FULL_NAME),
    "born": MaskRule(Transformer.DATE_SHIFT),
    "zip": MaskRule(Transformer.ZIP_PREFIX),
}
ORDER_MASKS = {"email": MaskRule(Transformer.EMAIL), "h": MaskRule(Transformer.CARD)}


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prod") / "prod.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema app")
    # unique e-mails, phones, streets (nearly unique); cities repeat; NULLs and '' sprinkled in
    con.execute(
        """
        create table app.people as select i as id,
          case when i % 17 = 0 then null else ' User' || i || '@Mail.test ' end as email,
          case when i % 13 = 0 then null else '+49 30-' || (1000000 + i * 7) end as phone,
          case when i % 11 = 0 then '' else (4000000000000000 + i * 37)::varchar end as h,
          '10.' || (i % 250) || '.' || (i // 250) || '.7' as x,
          'Main St ' || i as street,
          ['Berlin', 'Paris', null][1 + i % 3] as city,
          'Ab-' || i || 'z' as d,
          'nick' || i as nick,
          'Ann ' || i as "full",
          date '1980-01-01' + (i % 9000)::integer as born,
          (10000 + i)::varchar as zip
        from range(1, 3001) t(i)
        """
    )
    # orders repeat people's e-mails and cards (a shared domain), rarely unique
    con.execute(
        """
        create table app.orders as select i as id, 1 + i % 3000 as person_id,
          ' user' || (1 + i % 40) || '@mail.test' as email,
          (4000000000000000 + (i % 50) * 37)::varchar as h
        from range(1, 9001) t(i)
        """
    )
    con.close()
    return path


def _masks() -> tuple[ColumnClass, ...]:
    out = [ColumnClass("app.people", c, None, r, Reason.CONFIG) for c, r in PEOPLE_MASKS.items()]
    out += [ColumnClass("app.orders", c, None, r, Reason.CONFIG) for c, r in ORDER_MASKS.items()]
    return tuple(out)


def _plan(engine: DuckDBEngine) -> tuple[sampling.SamplePlan, dict[str, int]]:
    relations = {name: table.relation for name, table in GRAPH.tables.items()}
    sources = {
        name: exp.table_(rel.name, db=rel.schema, catalog="prod", quoted=True)
        for name, rel in relations.items()
    }
    columns = {
        name: tuple(engine.columns(Relation(rel.schema, rel.name, "prod")))
        for name, rel in relations.items()
    }
    counts = {n: engine.fetchall(exp.select("count(*)").from_(t))[0][0] for n, t in sources.items()}
    config = SampleConfig(rate=1.0, anchors={"app.people": AnchorConfig()}, max_rows=100_000)
    plan = plan_sample(
        GRAPH,
        columns=columns,
        sources=sources,
        config=config,
        masks=_masks(),
        production_rows=counts,
    )
    return plan, counts


def _plan_only(production: Path) -> sampling.SamplePlan:
    engine = DuckDBEngine(":memory:")
    engine.attach(production, "prod", read_only=True)
    try:
        return _plan(engine)[0]
    finally:
        engine.close()


def _sample(production: Path, out: Path) -> dict[str, list[tuple[Any, ...]]]:
    engine = DuckDBEngine(out)
    engine.attach(production, "prod")
    relations = {name: table.relation for name, table in GRAPH.tables.items()}
    plan, counts = _plan(engine)
    run_sample(
        plan,
        work=engine,
        writer=DuckDBSampleWriter(engine, relations),
        salt=SALT,
        production_rows=counts,
    )
    tables = {
        name: engine.fetchall(f'select * from app."{name}" order by all')
        for name in ("people", "orders")
    }
    engine.close()
    return tables


def _every_value_column(plan: Any, shares: Any = None) -> frozenset[tuple[str, str]]:
    return frozenset(
        (t.name, m.column)
        for t in plan.tables
        for m in t.masks
        if m.masked and m.rule.strategy.value == "value_map"
    )


def test_inline_masks_equal_mapped_masks(
    production: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[frozenset[tuple[str, str]]] = []
    default = sampling._inline_columns

    def spy(decide: Any) -> Any:
        def inline(plan: Any, shares: Any = None) -> frozenset[tuple[str, str]]:
            made = frozenset(decide(plan, shares))
            if shares is not None:  # the masking step's choice (not the staging check's)
                chosen.append(made)
            return made

        return inline

    monkeypatch.setattr(sampling, "_inline_columns", spy(lambda plan, shares: frozenset()))
    mapped = _sample(production, tmp_path / "mapped.duckdb")
    monkeypatch.setattr(sampling, "_inline_columns", spy(_every_value_column))
    inline = _sample(production, tmp_path / "inline.duckdb")
    monkeypatch.setattr(sampling, "_inline_columns", spy(default))
    mixed = _sample(production, tmp_path / "mixed.duckdb")

    value_mapped = {c for c in PEOPLE_MASKS if c not in ("born", "zip")}
    assert chosen[1] == {("app.people", c) for c in value_mapped} | {
        ("app.orders", c) for c in ORDER_MASKS
    } | {("app.orders", "person_id")}
    # the default: the declared key and the nearly unique columns in line (DuckDB's estimate is
    # coarse: it misses some unique ones, e.g. 'Ann <i>'); the key's foreign key, cities and
    # the orders' repeated values stay mapped
    unique = {"id", "street", "nick"}
    assert {("app.people", c) for c in unique} <= chosen[2]
    assert not chosen[2] & {("app.people", "city"), *(("app.orders", c) for c in ORDER_MASKS)}
    assert ("app.orders", "person_id") not in chosen[2]

    assert len(mapped["people"]) == 3000 and len(mapped["orders"]) == 9000
    assert inline == mapped
    assert mixed == mapped
    # the masks did mask, NULLs stayed NULL, one e-mail -> one mask in both tables
    raw = duckdb.connect(str(production), read_only=True)
    raw_people = raw.execute("select * from app.people order by id").fetchall()
    raw.close()
    ids = [row[0] for row in mapped["people"]]
    assert len(set(ids)) == 3000 and not set(ids) & {r[0] for r in raw_people}
    people = {python_feistel(r[0], SALT, 62): r for r in raw_people}
    masked = {row[0]: row for row in mapped["people"]}
    assert set(people) == set(masked)
    # masked keys still join: every order points at a masked person
    assert {row[1] for row in mapped["orders"]} <= set(masked)
    assert masked[python_feistel(17, SALT, 62)][1] is None  # NULL stays NULL
    assert masked[python_feistel(13, SALT, 62)][2] is None
    assert all(masked[k][1] != people[k][1] for k in list(masked)[:50] if people[k][1])
    expected = "user_" + SALT.keyed_hex("email", "user2@mail.test")[:12] + "@mail.test"
    assert masked[python_feistel(2, SALT, 62)][1] == expected
    assert {r[2] for r in mapped["orders"] if r[0] == 1} == {expected}


def test_staged_masked_tables_equal_direct_ones(
    production: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A masked table goes to the writer as one SELECT; where that SELECT carries key markers a
    writer cannot bind (Spark, columns masked in line) it is staged masked in the work session
    first. Both give the same tables."""
    decide = sampling._masked_in_work
    inline = frozenset({("app.people", "id")})
    people = next(t for t in _plan_only(production).tables if t.name == "app.people")
    assert not decide(people, "duckdb", inline) and not decide(people, "postgres", inline)
    assert decide(people, "spark", inline) and not decide(people, "spark", frozenset())

    direct = _sample(production, tmp_path / "direct.duckdb")
    staged: list[str] = []

    def always(plan: Any, dialect: str, chosen: frozenset[tuple[str, str]]) -> bool:
        staged.append(plan.name)
        return True

    monkeypatch.setattr(sampling, "_masked_in_work", always)
    assert _sample(production, tmp_path / "staged.duckdb") == direct
    assert sorted(staged) == ["app.orders", "app.people"]
