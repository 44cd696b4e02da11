"""The sampler on synthetic DuckDB data: anchors, children, closure (cycles too), filters, caps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from dataops_dev.config import AnchorConfig, SampleConfig, TableFilterConfig
from dataops_dev.engines import DuckDBEngine, Relation
from dataops_dev.errors import ConfigError, UsageError
from dataops_dev.fkgraph import EdgeOrigin, FkGraph, ForeignKey, SourceTable
from dataops_dev.masking import ColumnClass, MaskRule, Reason, Salt, Transformer
from dataops_dev.sampling import DuckDBSampleWriter, Role, parse_window, plan_sample, run_sample

SALT = Salt.from_secret("sampling-tests")

TABLES = {
    "app.customers": ("customer_id",),
    "app.orders": ("order_id",),
    "app.stores": ("store_no",),
    "app.events": None,
    "app.employees": ("emp_id",),
    "app.accounts": ("acc_id",),
    "app.contacts": ("contact_id",),
    "app.countries": ("code",),
    "app.logs": ("log_id",),
}


def _edge(child: str, ccol: str, parent: str, pcol: str, partial: bool = False) -> ForeignKey:
    return ForeignKey(
        f"app.{child}", (ccol,), f"app.{parent}", (pcol,), EdgeOrigin.CONFIG, "test", partial
    )


GRAPH = FkGraph(
    tables={
        name: SourceTable(name, name, Relation("app", name.split(".")[1]), key)
        for name, key in TABLES.items()
    },
    edges=(
        _edge("orders", "customer_id", "customers", "customer_id"),
        _edge("orders", "store_no", "stores", "store_no"),
        _edge("events", "customer_id", "customers", "customer_id", partial=True),
        _edge("employees", "manager_id", "employees", "emp_id"),
        _edge("accounts", "primary_contact", "contacts", "contact_id"),
        _edge("contacts", "account_id", "accounts", "acc_id"),
        _edge("stores", "country", "countries", "code"),
    ),
)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prod") / "prod.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema app")
    con.execute(
        "create table app.customers as select i as customer_id, 'user' || i || '@mail.test' as email"
        " from range(1, 2001) t(i)"
    )
    con.execute(
        "create table app.countries as select * from (values ('DE', 'Germany'), ('FR', 'France'),"
        " ('IT', 'Italy')) t(code, name)"
    )
    con.execute(
        "create table app.stores as select i::integer as store_no,"
        " ['DE', 'FR'][1 + i % 2] as country from range(1, 41) t(i)"
    )
    con.execute(
        "create table app.orders as select i as order_id, 1 + (i * 7919) % 2000 as customer_id,"
        " (1 + i % 40)::integer as store_no, date '2024-01-01' + (i % 365)::integer as ordered_at"
        " from range(1, 8001) t(i)"
    )
    con.execute(
        "create table app.events as select i as event_id,"
        " case when i % 3 = 0 then null else 1 + (i * 31) % 2000 end as customer_id,"
        " timestamp '2024-01-01' + to_days((i % 200)::integer) as event_at"
        " from range(1, 6001) t(i)"
    )
    # a management chain: employee i reports to i // 2 (root 1 has no manager)
    con.execute(
        "create table app.employees as select i as emp_id,"
        " case when i > 1 then i // 2 end as manager_id from range(1, 1001) t(i)"
    )
    # accounts and contacts reference each other (a cycle)
    con.execute(
        "create table app.accounts as select i as acc_id, 1 + (i * 13) % 500 as primary_contact"
        " from range(1, 501) t(i)"
    )
    con.execute(
        "create table app.contacts as select i as contact_id, 1 + (i * 17) % 500 as account_id"
        " from range(1, 501) t(i)"
    )
    con.execute("create table app.logs as select i as log_id from range(1, 3001) t(i)")
    con.close()
    return path


def _sample(
    production: Path,
    out: Path,
    config: SampleConfig,
    masks: tuple[ColumnClass, ...] = (),
    salt: Salt = SALT,
) -> tuple[Any, DuckDBEngine]:
    engine = DuckDBEngine(out)
    engine.attach(production, "prod")
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
    plan = plan_sample(
        GRAPH,
        columns=columns,
        sources=sources,
        config=config,
        masks=masks,
        production_rows=counts,
    )
    outcome = run_sample(
        plan,
        work=engine,
        writer=DuckDBSampleWriter(engine, relations),
        salt=salt,
        production_rows=counts,
    )
    return outcome, engine


CONFIG = SampleConfig(
    rate=0.1,
    anchors={
        "app.customers": AnchorConfig(),
        "app.employees": AnchorConfig(rate=0.05),
        "app.accounts": AnchorConfig(rate=0.1),
    },
    full_tables=("app.countries",),
    max_rows=100_000,
)


def _orphans(engine: DuckDBEngine) -> int:
    total = 0
    for edge in GRAPH.edges:
        child, parent = edge.child.split(".")[1], edge.parent.split(".")[1]
        (c,), (p,) = edge.child_columns, edge.parent_columns
        total += engine.fetchall(
            f"select count(*) from app.{child} x where x.{c} is not null "
            f"and not exists (select 1 from app.{parent} y where y.{p} = x.{c})"
        )[0][0]
    return int(total)


def test_closed_sample_with_cycles_and_partial_edges(production: Path, tmp_path: Path) -> None:
    outcome, engine = _sample(production, tmp_path / "s.duckdb", CONFIG)
    roles = {t.table: t.role for t in outcome.tables}
    assert roles == {
        "app.customers": Role.ANCHOR,
        "app.orders": Role.CHILD,
        "app.events": Role.CHILD,
        "app.stores": Role.PARENT,
        "app.countries": Role.FULL,
        "app.employees": Role.ANCHOR,
        "app.accounts": Role.ANCHOR,
        "app.contacts": Role.CHILD,
        "app.logs": Role.OWN,
    }
    assert outcome.orphans == 0 and _orphans(engine) == 0
    rows = {t.table: t for t in outcome.tables}
    assert 150 < rows["app.customers"].sampled_rows < 260
    assert rows["app.countries"].sampled_rows == 3
    assert 200 < rows["app.logs"].sampled_rows < 400
    # children follow their sampled parents: every order of a sampled customer is there
    missing = engine.fetchall(
        "select count(*) from prod.app.orders o where o.customer_id in "
        "(select customer_id from app.customers) and o.order_id not in "
        "(select order_id from app.orders)"
    )[0][0]
    assert missing == 0
    # anonymous events (NULL customer) are sampled by their own key, not dropped
    anonymous = engine.fetchall("select count(*) from app.events where customer_id is null")[0][0]
    assert 100 < anonymous < 320
    # the management chain is closed upwards to the root
    assert engine.fetchall("select count(*) from app.employees where emp_id = 1")[0][0] == 1
    assert rows["app.employees"].sampled_rows > 50
    engine.close()


def test_same_seed_same_rows_salt_only_changes_masks(production: Path, tmp_path: Path) -> None:
    masks = (
        ColumnClass("app.customers", "email", None, MaskRule(Transformer.EMAIL), Reason.CONFIG),
    )
    _, first = _sample(production, tmp_path / "a.duckdb", CONFIG, masks)
    _, again = _sample(production, tmp_path / "b.duckdb", CONFIG, masks)
    _, other = _sample(
        production, tmp_path / "c.duckdb", CONFIG, masks, salt=Salt.from_secret("rotated")
    )
    query = "select customer_id, email from app.customers order by 1"
    a, b, c = (e.fetchall(query) for e in (first, again, other))
    assert a == b
    assert [r[0] for r in a] == [r[0] for r in c]
    assert all(x[1] != y[1] for x, y in zip(a, c, strict=True))
    raw = {r[0] for r in first.fetchall("select email from prod.app.customers")}
    assert not raw & {r[1] for r in a}
    for engine in (first, again, other):
        engine.close()


def test_rate_grows_the_sample_monotonically_and_rows_target(
    production: Path, tmp_path: Path
) -> None:
    small = SampleConfig(rate=0.05, anchors={"app.customers": AnchorConfig()})
    large = SampleConfig(rate=0.2, anchors={"app.customers": AnchorConfig()})
    _, a = _sample(production, tmp_path / "small.duckdb", small)
    _, b = _sample(production, tmp_path / "large.duckdb", large)
    ids_a = {r[0] for r in a.fetchall("select customer_id from app.customers")}
    ids_b = {r[0] for r in b.fetchall("select customer_id from app.customers")}
    assert ids_a < ids_b
    target = SampleConfig(anchors={"app.customers": AnchorConfig(rows=500)})
    outcome, c = _sample(production, tmp_path / "rows.duckdb", target)
    sampled = next(t.sampled_rows for t in outcome.tables if t.table == "app.customers")
    assert 400 < sampled < 600
    for engine in (a, b, c):
        engine.close()


def test_time_window_filter(production: Path, tmp_path: Path) -> None:
    config = SampleConfig(
        rate=0.5,
        anchors={"app.customers": AnchorConfig()},
        filters={
            "app.events": TableFilterConfig(last="30 days", event_time="event_at"),
            "app.orders": TableFilterConfig(where="store_no <= 20"),
        },
    )
    outcome, engine = _sample(production, tmp_path / "w.duckdb", config)
    oldest = engine.fetchall("select min(event_at)::date from app.events")[0][0]
    newest = engine.fetchall("select max(event_at)::date from prod.app.events")[0][0]
    assert (newest - oldest).days == 29
    assert engine.fetchall("select max(store_no) from app.orders")[0][0] <= 20
    assert outcome.orphans == 0
    engine.close()


def test_safety_cap_and_config_errors(production: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        _sample(production, tmp_path / "cap.duckdb", SampleConfig(rate=0.5, max_rows=100))
    assert "max_rows" in info.value.message
    with pytest.raises(ConfigError) as typo:
        _sample(
            production,
            tmp_path / "typo.duckdb",
            SampleConfig(anchors={"app.customer": AnchorConfig()}),
        )
    assert typo.value.hint and "app.customers" in typo.value.hint
    with pytest.raises(ConfigError):
        _sample(production, tmp_path / "rate.duckdb", SampleConfig(rate=1.5))
    with pytest.raises(ConfigError):
        _sample(
            production,
            tmp_path / "where.duckdb",
            SampleConfig(filters={"app.orders": TableFilterConfig(where="drop table x")}),
        )
    assert parse_window("12 weeks") == 84
    with pytest.raises(ConfigError):
        parse_window("3 fortnights")


def test_masked_integer_keys_stay_joinable(production: Path, tmp_path: Path) -> None:
    """hmac_int on a key is applied to every column joined to it, with one bit width."""
    masks = (
        ColumnClass(
            "app.customers", "customer_id", None, MaskRule(Transformer.HMAC_INT), Reason.CONFIG
        ),
    )
    outcome, engine = _sample(production, tmp_path / "ids.duckdb", CONFIG, masks)
    assert _orphans(engine) == 0
    ids = engine.fetchall("select customer_id from app.customers")
    raw = {r[0] for r in engine.fetchall("select customer_id from prod.app.customers")}
    assert len({r[0] for r in ids}) == len(ids) and not {r[0] for r in ids} & raw
    masked = {t.table: dict(t.masked) for t in outcome.tables}
    assert masked["app.orders"]["customer_id"].startswith("hmac_int")
    assert masked["app.events"]["customer_id"] == masked["app.customers"]["customer_id"]
    engine.close()


def _hmac_int(table: str, column: str, **options: Any) -> ColumnClass:
    return ColumnClass(table, column, None, MaskRule(Transformer.HMAC_INT, options), Reason.CONFIG)


def test_hmac_int_on_text_columns_is_a_config_error(production: Path, tmp_path: Path) -> None:
    """A text column cast to BIGINT would fail with its value in DuckDB's message: refused first."""
    for mask, named in (
        (_hmac_int("app.customers", "email"), "app.customers.email is VARCHAR"),
        # countries.code (text) is joined to stores.country: the rule would reach it too
        (_hmac_int("app.stores", "country"), "app.countries.code, which is joined to it"),
    ):
        with pytest.raises(ConfigError) as caught:
            _sample(production, tmp_path / "text.duckdb", CONFIG, (mask,))
        assert named in caught.value.message and "not an integer" in caught.value.message
        assert "@mail.test" not in caught.value.message and "hmac_id" in str(caught.value.hint)


def test_hmac_int_keeps_configured_bits_that_fit(production: Path, tmp_path: Path) -> None:
    masks = (_hmac_int("app.customers", "customer_id", bits=20),)
    outcome, engine = _sample(production, tmp_path / "bits.duckdb", CONFIG, masks)
    masked = {t.table: dict(t.masked) for t in outcome.tables}
    assert masked["app.orders"]["customer_id"] == "hmac_int(bits=20)"
    assert masked["app.customers"]["customer_id"] == "hmac_int(bits=20)"
    ids = [r[0] for r in engine.fetchall("select customer_id from app.customers")]
    assert ids and all(0 <= i < 1 << 20 for i in ids) and len(set(ids)) == len(ids)
    assert _orphans(engine) == 0
    engine.close()
    with pytest.raises(ConfigError) as caught:
        _sample(
            production,
            tmp_path / "wide.duckdb",
            CONFIG,
            (_hmac_int("app.stores", "store_no", bits=40),),
        )
    assert "bits=40 does not fit" in caught.value.message and "INTEGER" in caught.value.message
    with pytest.raises(ConfigError, match="different bits"):
        _sample(
            production,
            tmp_path / "clash.duckdb",
            CONFIG,
            (
                _hmac_int("app.customers", "customer_id", bits=20),
                _hmac_int("app.orders", "customer_id", bits=22),
            ),
        )


def test_hmac_int_stays_inside_small_integer_types(tmp_path: Path) -> None:
    """Masked keys cast back to TINYINT / UTINYINT / SMALLINT without overflow, still unique."""
    path = tmp_path / "small.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema app")
    con.execute(
        "create table app.small as select i::tinyint as t, i::utinyint as u, i::smallint as s"
        " from range(0, 128) r(i)"
    )
    con.close()
    graph = FkGraph(
        tables={
            "app.small": SourceTable("app.small", "app.small", Relation("app", "small"), ("t",))
        },
        edges=(),
    )
    engine = DuckDBEngine(tmp_path / "out.duckdb")
    engine.attach(path, "prod")
    source = exp.table_("small", db="app", catalog="prod", quoted=True)
    plan = plan_sample(
        graph,
        columns={"app.small": tuple(engine.columns(Relation("app", "small", "prod")))},
        sources={"app.small": source},
        config=SampleConfig(rate=1.0),
        masks=tuple(_hmac_int("app.small", c) for c in ("t", "u", "s")),
        production_rows={"app.small": 128},
    )
    run_sample(
        plan,
        work=engine,
        writer=DuckDBSampleWriter(engine, {"app.small": Relation("app", "small")}),
        salt=SALT,
        production_rows={"app.small": 128},
    )
    for column in ("t", "u", "s"):
        values = [r[0] for r in engine.fetchall(f"select {column} from app.small")]
        assert len(values) == 128 and len(set(values)) == 128
        assert values != list(range(128))
    engine.close()
