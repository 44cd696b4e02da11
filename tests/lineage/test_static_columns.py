"""`columns_of` (an ancestor's output columns, read without qualifying where `static_columns`
follows the query) gives exactly what qualifying gives: `output_columns(prepare(...))`, None
when that fails. Every case runs against several parent schemas: as declared, a parent unknown,
a parent without a column the query reads (qualifying fails: the reader becomes opaque), a
parent with its columns in another order or with a name twice."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from sqlglot.dialects.dialect import Dialect

from dataops_dev import static_columns
from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.lineage import (
    LineageError,
    LineageRun,
    RelationIndex,
    _ancestors,
    _map_tables,
    _parse,
    column_lineage,
    columns_of,
    compute_lineage,
    output_columns,
    prepare,
)
from dataops_dev.reporting import NULL_REPORTER

from .test_golden import FIXTURES, RELATIONS, SCHEMAS, read_cases

Schemas = Mapping[str, tuple[str, ...] | None]


def qualified_columns(
    sql: str, dialect: str, relations: RelationIndex, schemas: Schemas
) -> tuple[str, ...] | None:
    try:
        return output_columns(prepare(sql, dialect, relations, schemas))
    except LineageError:
        return None


def read_statically(sql: str, dialect: str, relations: RelationIndex, schemas: Schemas) -> bool:
    """Whether `columns_of` answers this without qualifying."""
    try:
        expression = _parse(sql, dialect)
    except LineageError:
        return False
    table_nodes, _ = _map_tables(expression, relations)
    read = Dialect.get_or_raise(dialect)
    if not static_columns.followed(expression, read):
        return False
    names = static_columns.output_names(expression, read, table_nodes, schemas)
    return not isinstance(names, static_columns.Unsure)


def variants(schemas: Schemas, rng: random.Random) -> Iterator[dict[str, tuple[str, ...] | None]]:
    yield dict(schemas)
    for uid, columns in schemas.items():
        yield {**schemas, uid: None}
        if columns:
            for dropped in rng.sample(columns, k=min(2, len(columns))):
                yield {**schemas, uid: tuple(c for c in columns if c != dropped)}
            yield {**schemas, uid: tuple(reversed(columns))}
            yield {**schemas, uid: (*columns, columns[0])}
            yield {**schemas, uid: tuple(c.upper() for c in columns)}


# The fixtures' world (tables raw.orders, raw.customers, raw.payments, raw.events): shapes the
# golden fixtures do not all cover, each where qualifying and reading could part ways.
TRICKY = [
    "select * from raw.orders",
    "select o.*, c.* from raw.orders o join raw.customers c on o.customer_id = c.id",
    "select * from raw.orders o join raw.customers c on o.customer_id = c.id",
    "select *, amount * 2 as double from raw.orders",
    "select x.* from raw.orders o",
    "with a as (select * from raw.orders), b as (select id, amount from a) select * from b",
    "with a as (select * from raw.orders) select a.id, a.nope from a",
    "with a as (select * from raw.orders) select a.id, b.id from a join a as b on a.id = b.id",
    "select id from raw.orders join raw.customers on true",
    "select 1, 'x', amount + 1, cast(amount as int), (amount), count(*) from raw.orders",
    'select id as "ID", "Amount", amount as "Mixed Case" from raw.orders',
    "select amount as total, total + 1 as more from raw.orders",
    "select amount as total from raw.orders where total > 1",
    "select status as s, count(*) as n from raw.orders group by s",
    "select status, count(*) from raw.orders group by 1 order by 2",
    "select status, count(*) from raw.orders group by 3",
    "select * from raw.orders group by 1",
    "select id, id from raw.orders",
    "select id, id as id_1, id from raw.orders",
    "select * from (select id, amount from raw.orders) as sub",
    "select * from (select id, amount from raw.orders)",
    "select id from raw.orders union all select id from raw.customers",
    "select * from raw.orders union all select * from raw.payments",
    "(select id, amount from raw.orders) union (select id, amount from raw.payments) order by 1",
    "select id from raw.orders where id in (select order_id from raw.payments)",
    "select id, (select max(amount) from raw.payments) as m from raw.orders",
    "select * exclude (amount) from raw.orders",
    "select * from raw.orders join raw.customers using (id)",
    "select * from raw.orders natural join raw.customers",
    "with recursive r as (select 1 as n union all select n + 1 from r) select * from r",
    "with a(x, y) as (select id, amount from raw.orders) select * from a",
    "select orders from raw.orders",
    "select o.id, orders.id from raw.orders o",
    "select distinct on (id) id, amount from raw.orders",
    "select unnest(tags) as tag from raw.orders",
    "select * from raw.orders, unnest(tags) as t(tag)",
    "select id, row_number() over (partition by customer_id order by ordered_at) from raw.orders",
    "select id, amount from raw.orders qualify row_number() over (partition by id) = 1",
    "select c.name, sum(o.amount) as total from raw.orders o left join raw.customers c "
    "on o.customer_id = c.id group by c.name having sum(o.amount) > 10",
    "select * from raw.unknown_table",
    "select u.* from raw.unknown_table u join raw.orders o on o.id = u.id",
    "select a.id from raw.orders a join raw.customers a on true",
    "select 1 as x",
    "select * from raw.orders limit 3",
    "select columns('a.*') from raw.orders",
    "select {'a': 1} as s, [1, 2] as l from raw.orders",
    "insert into t select 1",
    "select amount as a from raw.orders where a > 1 and amount > 0",
    "with a as (select * from raw.nothing) select x as y from a where y > 0",
    "select id as x from raw.orders order by x",
    "with orders as (select 1 as id) select * from orders",
    "with orders as (select 1 as id) select * from raw.orders",
    "with a as (select id from raw.orders) select * from a join a as b on a.id = b.id",
    "select * from (select * from raw.orders) as s join raw.customers c on s.customer_id = c.id",
    'select "*" from raw.orders',
    "select s.* from (select id, id from raw.orders) as s",
    "with a as (select id, amount as id from raw.orders) select * from a",
]


def _all_fixture_sql() -> Iterator[tuple[str, str]]:
    for path in sorted(FIXTURES.glob("*.sql")):
        dialect = path.stem.split("_", 1)[1]
        for case in read_cases(path):
            for sql in case.inputs:
                yield dialect, sql


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "snowflake"])
def test_tricky_shapes_read_as_qualified(dialect: str) -> None:
    rng = random.Random(7)
    answered = 0
    for sql in TRICKY:
        for schemas in variants(SCHEMAS, rng):
            expected = qualified_columns(sql, dialect, RELATIONS, schemas)
            assert columns_of(sql, dialect, RELATIONS, schemas) == expected, (sql, schemas)
            answered += read_statically(sql, dialect, RELATIONS, schemas)
    if dialect == "snowflake":
        assert answered == 0  # its `qualify` settings are not the plain ones followed
    else:
        assert answered > len(TRICKY)  # the reading is in use, not a fall-back everywhere


def test_golden_fixture_queries_read_as_qualified() -> None:
    rng = random.Random(11)
    cases = 0
    for dialect, sql in _all_fixture_sql():
        for schemas in variants(SCHEMAS, rng):
            expected = qualified_columns(sql, dialect, RELATIONS, schemas)
            assert columns_of(sql, dialect, RELATIONS, schemas) == expected, (sql, schemas)
            cases += 1
    assert cases > 500


def test_a_dropped_column_makes_the_reader_opaque() -> None:
    sql = "with a as (select * from raw.orders) select a.id, a.amount * 2 as double from a"
    assert read_statically(sql, "duckdb", RELATIONS, SCHEMAS)
    assert columns_of(sql, "duckdb", RELATIONS, SCHEMAS) == ("id", "double")
    without = {**SCHEMAS, "orders": ("id", "customer_id", "status")}
    assert columns_of(sql, "duckdb", RELATIONS, without) is None
    assert qualified_columns(sql, "duckdb", RELATIONS, without) is None
    # Unknown parent columns: nothing to contradict the query, the names stand.
    unknown = {**SCHEMAS, "orders": None}
    assert columns_of(sql, "duckdb", RELATIONS, unknown) == ("id", "double")


@pytest.fixture(scope="module")
def project_60(tmp_path_factory: pytest.TempPathFactory, gen_project: Callable[..., Path]) -> Path:
    return gen_project(tmp_path_factory.mktemp("static") / "p", n_models=60, n_columns=8, seed=4)


def test_generated_models_read_as_qualified_whatever_their_parents(project_60: Path) -> None:
    manifest = Manifest.load(project_60 / "target" / "manifest.json")
    relations = RelationIndex.from_manifest(manifest)
    full = compute_lineage(manifest, workers=1)
    rng = random.Random(3)
    statically = 0
    for node in manifest.dependency_order:
        sql = node.compiled_code
        assert sql is not None
        parents = {p: full.schemas.get(p) for p in node.depends_on_nodes}
        statically += read_statically(sql, "duckdb", relations, parents)
        for schemas in variants(parents, rng):
            expected = qualified_columns(sql, "duckdb", relations, schemas)
            assert columns_of(sql, "duckdb", relations, schemas) == expected, (node.name, schemas)
    assert statically == len(manifest.dependency_order)


def _narrowed(manifest: Manifest, every: int) -> dict[str, str]:
    """Every `every`-th model keeps only two columns: its children that read the others fail to
    qualify (opaque), and so on downstream."""
    sql: dict[str, str] = {}
    for index, node in enumerate(manifest.dependency_order):
        code = node.compiled_code or ""
        if index % every == 0 and "select * from shaped" in code:
            code = code.replace("select * from shaped", "select id, fk from shaped")
        sql[node.unique_id] = code
    return sql


@pytest.mark.parametrize("every", [0, 3, 7])
def test_column_lineage_reads_ancestors_statically_with_the_same_results(
    project_60: Path, every: int
) -> None:
    manifest = Manifest.load(project_60 / "target" / "manifest.json")
    sql = _narrowed(manifest, every) if every else {}

    def sql_for(node: object) -> str | None:
        uid = getattr(node, "unique_id", "")
        return sql.get(uid) or getattr(node, "compiled_code", None)

    full = compute_lineage(manifest, workers=1, sql_for=sql_for)
    if every:
        assert any(columns is None for columns in full.schemas.values())
    order = [n.unique_id for n in manifest.dependency_order]
    pruned = 0
    for target in order[5::6]:
        for column in (None, "c3"):
            part = column_lineage(manifest, target, column, workers=1, sql_for=sql_for)
            assert part.upstream(target, column) == full.upstream(target, column)
            assert part.downstream(target, column) == full.downstream(target, column)
            assert all(model == full.models[uid] for uid, model in part.models.items())
            assert all(part.schemas[uid] == full.schemas[uid] for uid in part.schemas)
            # Without the static reading, every ancestor of these models is computed.
            ancestors = _ancestors(manifest, set(part.models)) & set(order)
            pruned += part.stats.computed < len(ancestors)
    assert pruned > 0  # ancestors were read statically, not computed


_SHAPES = (
    "select * from {a}",
    "select x.*, y.c3 as y_c3 from {a} as x join {b} as y on x.id = y.id",
    "select id, fk, c3 from {a}",
    "with s as (select * from {a}) select s.id, s.c5 as c5, s.c7 from s",
    "select id, count(*) as n from {a} group by 1",
    "select * from {a} union all select * from {b}",
    "select id as c9, c9 + 1 as c10 from {a}",
    "with s as (select * from {a}) select * from s where c2 > 0",
    "select id, fk from {a}",
    "select distinct * from {a}",
    "with s as (select * from {a}), t as (select id, c4 from s) select t.*, s.c6 from t join s "
    "on t.id = s.id",
    "select a.*, b.* from {a} as a join {b} as b on a.fk = b.id",
)


def _mixed_shapes(manifest: Manifest, seed: int) -> dict[str, str]:
    """Each model rewritten to one of `_SHAPES` over its own parents: stars over parents,
    columns a parent may lack, positions, alias references, unions, narrowed outputs."""
    rng = random.Random(seed)
    sql: dict[str, str] = {}
    for node in manifest.dependency_order:
        parents = [manifest.get(p) for p in node.depends_on_nodes]
        names = [p.relation_name for p in parents if p is not None and p.relation_name]
        if not names:
            continue
        a, b = rng.choice(names), rng.choice(names)
        sql[node.unique_id] = rng.choice(_SHAPES).format(a=a, b=b)
    return sql


@pytest.mark.parametrize("seed", range(1, 9))
def test_column_lineage_on_mixed_shapes_equals_the_full_computation(
    project_60: Path, seed: int
) -> None:
    manifest = Manifest.load(project_60 / "target" / "manifest.json")
    sql = _mixed_shapes(manifest, seed)

    def sql_for(node: object) -> str | None:
        uid = getattr(node, "unique_id", "")
        return sql.get(uid) or getattr(node, "compiled_code", None)

    full = compute_lineage(manifest, workers=1, sql_for=sql_for)
    assert any(columns is None for columns in full.schemas.values())
    order = [n.unique_id for n in manifest.dependency_order]
    for target in order[10:]:
        for column in (None, "c3"):
            part = column_lineage(manifest, target, column, workers=1, sql_for=sql_for)
            assert part.upstream(target, column) == full.upstream(target, column)
            assert part.downstream(target, column) == full.downstream(target, column)
            assert all(model == full.models[uid] for uid, model in part.models.items())
            assert all(part.schemas[uid] == full.schemas[uid] for uid in part.schemas)


def _chain(manifest: Manifest, length: int) -> list[Node]:
    """Models each reading the next one, `length` long (first: the furthest downstream)."""
    models = {n.unique_id for n in manifest.dependency_order}
    for node in reversed(manifest.dependency_order):
        chain = [node]
        while len(chain) < length:
            parent = next((p for p in chain[-1].depends_on_nodes if p in models), None)
            if parent is None:
                break
            found = manifest.get(parent)
            assert found is not None
            chain.append(found)
        if len(chain) == length and chain[-1].depends_on_nodes:
            return chain
    raise AssertionError("no chain that long")


def test_a_star_over_a_parent_that_fails_to_qualify_is_computed(project_60: Path) -> None:
    """C reads P's star, P reads T's star, T reads a column B lacks: T fails to qualify, so P
    and C keep a star. T's own names (B unknown) would say otherwise: P's star must not be
    read from them."""
    manifest = Manifest.load(project_60 / "target" / "manifest.json")
    child, star, failing, narrow = _chain(manifest, 4)
    grand = manifest.get(narrow.depends_on_nodes[0])
    assert grand is not None and grand.relation_name
    sql = {
        narrow.unique_id: f"select id, fk from {grand.relation_name}",
        failing.unique_id: f"with s as (select * from {narrow.relation_name}) "
        "select s.id, s.c5 as c5 from s",
        star.unique_id: f"select * from {failing.relation_name}",
        child.unique_id: f"select * from {star.relation_name}",
    }

    def sql_for(node: Node) -> str | None:
        return sql.get(node.unique_id) or node.compiled_code

    full = compute_lineage(manifest, workers=1, sql_for=sql_for)
    assert full.schemas[failing.unique_id] is None and full.schemas[star.unique_id] is None
    # Asked first (nothing computed yet): T's own names hold c5, yet P's columns are not read.
    run = LineageRun(manifest, None, None, sql_for, None, NULL_REPORTER, 1, prune=True)
    assert run.static is not None
    assert run.static.own(failing.unique_id) == ("id", "c5")
    assert run.static.columns(star.unique_id) is None
    part = column_lineage(manifest, child.unique_id, None, workers=1, sql_for=sql_for)
    assert part.models[child.unique_id] == full.models[child.unique_id]
    assert all(part.schemas[uid] == full.schemas[uid] for uid in part.schemas)
    assert part.upstream(child.unique_id) == full.upstream(child.unique_id)
