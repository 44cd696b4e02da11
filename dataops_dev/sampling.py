"""Referentially-closed, masked samples of production sources: plan, select, close, mask, verify.

Anchors are chosen by a keyed hash of their keys, children follow by semi-joins, required parents
are pulled in to a fixed point; everything runs as SQL inside the engine that holds the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sqlglot
from sqlglot import exp

from dataops_dev.config import SampleConfig
from dataops_dev.engines.base import Column, Engine
from dataops_dev.errors import ConfigError, EngineError, UsageError
from dataops_dev.fkgraph import FkGraph, ForeignKey
from dataops_dev.masking import (
    IDENTIFIER_NAME,
    PARAMETER_DIALECTS,
    ColumnClass,
    MaskRule,
    MaskStrategy,
    Salt,
    Transformer,
    apply_sql,
    bind,
    bucket_sql,
    canonical,
    map_query,
    sampling_salt,
)
from dataops_dev.reporting import NULL_REPORTER, Reporter, Stopwatch, task

SAMPLING_VERSION = "sample-1"
"""Bumped whenever the same seed, rate and data would select different rows."""

BUCKETS = 1_000_000
"""Resolution of the sampling rate: keys hash into this many buckets."""

_MAX_CLOSURE_ROUNDS = 1000


class Role(str, Enum):
    """How a table's rows enter the sample."""

    ANCHOR = "anchor"
    """Keyed hash of its key below the rate."""
    CHILD = "child"
    """Rows whose foreign key points at a sampled parent (semi-join)."""
    PARENT = "parent"
    """Only the rows sampled children require."""
    FULL = "full"
    """Copied whole (a lookup table, `sample.full_tables`)."""
    OWN = "own"
    """Unrelated to any anchor: keyed hash of its own key at the default rate."""


@dataclass(frozen=True)
class TablePlan:
    name: str
    role: Role
    source: exp.Table
    """Where production's rows are (an expression in the work engine's dialect)."""
    columns: tuple[Column, ...]
    rate: float | None = None
    key: tuple[str, ...] | None = None
    """Columns hashed for ANCHOR/OWN rows (the primary key, else every column)."""
    driving: tuple[ForeignKey, ...] = ()
    """CHILD: the edges to sampled parents the rows follow."""
    condition: exp.Expr | None = None
    """The table filter (`sample.filters`), on alias `t`."""
    masks: tuple[ColumnClass, ...] = ()

    def mask_of(self, column: str) -> ColumnClass | None:
        for item in self.masks:
            if item.column == column:
                return item
        return None


@dataclass(frozen=True)
class SamplePlan:
    tables: tuple[TablePlan, ...]
    """In dependency order: parents before children."""
    graph: FkGraph
    max_rows: int
    dialect: str
    seed: str = "dataops-dev"
    """Key of the sampling hash: rows are chosen independently of the masking salt."""

    def table(self, name: str) -> TablePlan:
        for plan in self.tables:
            if plan.name == name:
                return plan
        raise KeyError(name)


@dataclass(frozen=True)
class TableCoverage:
    """One row of the coverage table `dataops-dev sample` ends with."""

    table: str
    role: Role
    production_rows: int
    sampled_rows: int
    orphans: int
    masked: tuple[tuple[str, str], ...] = ()
    """(column, transformer) of every masked column."""

    @property
    def pct(self) -> float:
        return 100.0 * self.sampled_rows / self.production_rows if self.production_rows else 0.0


@dataclass(frozen=True)
class SampleOutcome:
    """What one run of the sampler produced (before it is recorded)."""

    tables: tuple[TableCoverage, ...]
    timings: Mapping[str, float] = field(default_factory=dict)
    masked_rows: int = 0
    """Rows written by tables that have at least one masked column."""

    @property
    def orphans(self) -> int:
        return sum(t.orphans for t in self.tables)

    @property
    def sampled_rows(self) -> int:
        return sum(t.sampled_rows for t in self.tables)


# --------------------------------------------------------------------------------------------
# Planning


def _t(column: str, table: str = "t") -> exp.Column:
    return exp.column(column, table=table, quoted=True)


def parse_window(text: str) -> int:
    """`90 days` / `12 weeks` / `1 day` -> days."""
    match = re.fullmatch(r"\s*(\d+)\s*(day|days|d|week|weeks|w)\s*", text, re.IGNORECASE)
    if not match:
        raise ConfigError(
            f"cannot read the time window {text!r}", "write it as `90 days` or `12 weeks`"
        )
    n = int(match.group(1))
    return n * 7 if match.group(2).lower().startswith("w") else n


def parse_condition(text: str, dialect: str, where: str) -> exp.Expr:
    """A user's `where:` filter, validated as one SQL condition over the table's columns."""
    try:
        tree = sqlglot.parse_one(text, read=dialect)
    except sqlglot.errors.ParseError as exc:
        raise ConfigError(f"{where}: cannot parse {text!r}: {exc}") from exc
    if not isinstance(tree, exp.Condition) or tree.find(exp.Command) is not None:
        raise ConfigError(f"{where}: a filter is a condition, not a statement ({text!r})")
    for column in tree.find_all(exp.Column):
        column.set("table", exp.to_identifier("t"))
    return tree


def plan_sample(
    graph: FkGraph,
    *,
    columns: Mapping[str, Sequence[Column]],
    sources: Mapping[str, exp.Table],
    config: SampleConfig,
    masks: Sequence[ColumnClass] = (),
    production_rows: Mapping[str, int] | None = None,
    dialect: str = "duckdb",
) -> SamplePlan:
    """Decide each table's role, rate, filter and masks (no data is read here)."""
    names = set(graph.tables)
    for name in (*config.anchors, *config.filters, *config.full_tables):
        if name not in names:
            import difflib

            close = difflib.get_close_matches(name, sorted(names), n=1)
            hint = (
                f"did you mean `{close[0]}`?" if close else f"sources: {', '.join(sorted(names))}"
            )
            raise ConfigError(f"sample config names {name!r}, which is not a dbt source", hint)
    anchors = tuple(config.anchors) or graph.auto_anchors()
    full = set(config.full_tables)
    downstream = graph.descendants(anchors) - set(anchors) - full
    referenced = {e.parent for e in graph.edges}
    by_table: dict[str, list[ColumnClass]] = {}
    for item in masks:
        by_table.setdefault(item.table, []).append(item)
    masks_by_table = _propagate_key_rules(graph, by_table, columns)

    order = [n for component in graph.strongly_connected() for n in component]
    plans: list[TablePlan] = []
    done: set[str] = set()
    for name in order:
        table = graph.tables[name]
        cols = tuple(columns.get(name, ()))
        if not cols:
            raise ConfigError(
                f"source {name} ({table.relation}) does not exist in production",
                "check the source's schema/identifier, or run `dataops-dev init` again",
            )
        condition = _filter_condition(name, config, table.event_time, sources[name], dialect)
        role: Role
        rate: float | None = None
        key = table.primary_key
        driving: tuple[ForeignKey, ...] = ()
        if name in full:
            role = Role.FULL
        elif name in anchors:
            role = Role.ANCHOR
            if not key:
                raise ConfigError(
                    f"anchor {name} has no primary key",
                    f"declare unique+not_null tests on its key or set sample.primary_keys.{name}",
                )
            rate = _anchor_rate(name, config, (production_rows or {}).get(name))
        elif name in downstream:
            role = Role.CHILD
            driving = tuple(
                e
                for e in graph.parents_of(name)
                if e.parent in done and (e.parent in anchors or e.parent in downstream)
            )
            rate = config.rate
            if not driving:  # only parents inside its own cycle: closure fills it
                role = Role.PARENT
        elif name in referenced:
            role = Role.PARENT
        else:
            role = Role.OWN
            rate = config.rate
        if role in (Role.CHILD, Role.OWN) and not key:
            key = _fallback_key(cols, {c for e in graph.parents_of(name) for c in e.child_columns})
        plans.append(
            TablePlan(
                name=name,
                role=role,
                source=sources[name],
                columns=cols,
                rate=rate,
                key=key,
                driving=driving,
                condition=condition,
                masks=tuple(masks_by_table.get(name, ())),
            )
        )
        done.add(name)
    return SamplePlan(
        tables=tuple(plans),
        graph=graph,
        max_rows=config.max_rows,
        dialect=dialect,
        seed=config.seed,
    )


def _fallback_key(columns: Sequence[Column], foreign: set[str]) -> tuple[str, ...]:
    """What parentless rows of a keyless table are hashed on: its own id column if it has one
    (so at-least-once duplicates of an event stay together), else every column."""
    for column in columns:
        if IDENTIFIER_NAME.search(column.name) and column.name not in foreign:
            return (column.name,)
    return tuple(c.name for c in columns)


def _anchor_rate(name: str, config: SampleConfig, production_rows: int | None) -> float:
    anchor = config.anchors.get(name)
    rate = config.rate
    if anchor is not None and anchor.rows is not None:
        if anchor.rows <= 0:
            raise ConfigError(f"sample.anchors.{name}.rows must be positive")
        rate = 1.0 if not production_rows else min(1.0, anchor.rows / production_rows)
    elif anchor is not None and anchor.rate is not None:
        rate = anchor.rate
    if not 0 < rate <= 1:
        raise ConfigError(f"the sampling rate of {name} must be in (0, 1], got {rate}")
    return rate


def _filter_condition(
    name: str, config: SampleConfig, event_time: str | None, source: exp.Table, dialect: str
) -> exp.Expr | None:
    spec = config.filters.get(name)
    if spec is None:
        return None
    parts: list[exp.Expr] = []
    if spec.where:
        parts.append(parse_condition(spec.where, dialect, f"sample.filters.{name}.where"))
    if spec.last:
        column = spec.event_time or event_time
        if not column:
            raise ConfigError(
                f"sample.filters.{name}.last needs a time column",
                f"set sample.filters.{name}.event_time or the source's dbt `event_time`",
            )
        days = parse_window(spec.last)
        # Aligned on whole days and anchored at the table's latest event (not the clock), so
        # the same snapshot always gives the same window.
        latest = exp.select(
            exp.cast(exp.Max(this=exp.column(column, "s", quoted=True)), exp.DataType.build("DATE"))
        ).from_(source.copy().as_("s"))
        start = exp.Sub(this=exp.Subquery(this=latest), expression=exp.Literal.number(days - 1))
        parts.append(exp.GTE(this=_t(column), expression=start))
    return exp.and_(*parts) if parts else None


# Signed value bits of the integer types `hmac_int` can mask, rounded down to an even number (the
# Feistel network splits a value into two equal halves). Values in [0, 2^bits) are permuted, the
# rest pass unchanged, so the map stays a bijection on the whole type. UBIGINT and HUGEINT are
# left out: their values do not all fit the BIGINT the permutation computes in.
_INTEGER_BITS = {
    "TINYINT": 6,
    "INT1": 6,
    "UTINYINT": 8,
    "SMALLINT": 14,
    "INT2": 14,
    "USMALLINT": 16,
    "INTEGER": 30,
    "INT": 30,
    "INT4": 30,
    "UINTEGER": 32,
    "BIGINT": 62,
    "INT8": 62,
}


def _bits_for(data_type: str) -> int | None:
    """How many low bits `hmac_int` may permute in a column of this type; None: not an integer."""
    return _INTEGER_BITS.get(data_type.strip().upper())


def _propagate_key_rules(
    graph: FkGraph,
    by_table: Mapping[str, list[ColumnClass]],
    columns: Mapping[str, Sequence[Column]],
) -> dict[str, list[ColumnClass]]:
    """An `hmac_int` rule on a key applies to every column joined to it, with one bit width.

    Otherwise a masked primary key would no longer match its (unmasked) foreign keys. Every
    column of such a component must be an integer: the permutation casts to BIGINT, and a cast
    of text would fail with the row's value in the engine's message.
    """
    result = {t: list(items) for t, items in by_table.items()}
    links: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for edge in graph.edges:
        for c, p in zip(edge.child_columns, edge.parent_columns, strict=True):
            links.setdefault((edge.child, c), set()).add((edge.parent, p))
            links.setdefault((edge.parent, p), set()).add((edge.child, c))
    types = {(t, c.name): c.data_type for t, cols in columns.items() for c in cols}
    configured = {
        (t, item.column): item
        for t, items in by_table.items()
        for item in items
        if item.rule.transformer is Transformer.HMAC_INT
    }
    seen: set[tuple[str, str]] = set()
    for start, item in configured.items():
        if start in seen:
            continue
        component = {start}
        stack = [start]
        while stack:
            for other in links.get(stack.pop(), ()):
                if other not in component:
                    component.add(other)
                    stack.append(other)
        seen |= component
        bits = _component_bits(start, component, types, configured)
        rule = MaskRule(Transformer.HMAC_INT, {"bits": bits})
        table, column = start
        for t, col in component:
            entries = result.setdefault(t, [])
            entries[:] = [e for e in entries if e.column != col]
            entries.append(
                ColumnClass(t, col, None, rule, item.reason, f"joined to {table}.{column}")
            )
    return result


def _component_bits(
    start: tuple[str, str],
    component: set[tuple[str, str]],
    types: Mapping[tuple[str, str], str],
    configured: Mapping[tuple[str, str], ColumnClass],
) -> int:
    """The one bit width of a component of joined key columns masked with `hmac_int`."""
    where = f"masking of {start[0]}.{start[1]} (hmac_int)"
    widths: dict[tuple[str, str], int] = {}
    for member in sorted(component):
        data_type = types.get(member)
        if data_type is None:
            continue
        width = _bits_for(data_type)
        if width is None:
            joined = "" if member == start else ", which is joined to it"
            raise ConfigError(
                f"{where}: {member[0]}.{member[1]}{joined} is {data_type}, not an integer column",
                "hmac_int masks integer keys; mask a text key with hmac_id on every column "
                "joined to it (masking.columns)",
            )
        widths[member] = width
    fits = min(widths.values(), default=62)
    explicit = sorted(
        {
            int(configured[m].rule.options["bits"])
            for m in component
            if m in configured and "bits" in configured[m].rule.options
        }
    )
    if len(explicit) > 1:
        raise ConfigError(
            f"{where}: joined key columns ask for different bits ({', '.join(map(str, explicit))})",
            "joined keys are masked with one permutation: give them one `bits` value",
        )
    if explicit:
        if explicit[0] > fits:
            narrowest = min(widths, key=lambda m: widths[m])
            raise ConfigError(
                f"{where}: bits={explicit[0]} does not fit {narrowest[0]}.{narrowest[1]} "
                f"({types[narrowest]}, at most {fits})",
                f"set bits to {fits} or less, or leave it out",
            )
        return explicit[0]
    return fits


# --------------------------------------------------------------------------------------------
# Running


class SampleWriter:
    """Where the sample goes; the sampler hands it one SELECT (on the work engine) per table."""

    def write(self, plan: TablePlan, query: exp.Select) -> None:  # pragma: no cover - protocol
        raise NotImplementedError

    def count(self, plan: TablePlan) -> int:  # pragma: no cover - protocol
        raise NotImplementedError

    def orphans(self, edge: ForeignKey) -> int:  # pragma: no cover - protocol
        raise NotImplementedError


def _work_name(index: int) -> exp.Table:
    return exp.table_(f"__dataops_w{index}", quoted=True)


def _map_name(index: int) -> exp.Table:
    return exp.table_(f"__dataops_m{index}", quoted=True)


def _masked_name(index: int) -> exp.Table:
    return exp.table_(f"__dataops_k{index}", quoted=True)


def _create_temp(table: exp.Table, query: exp.Query) -> exp.Create:
    return exp.Create(
        this=table.copy(),
        kind="TABLE",
        expression=query,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )


def _drop(table: exp.Table, *, cascade: bool = False) -> exp.Drop:
    return exp.Drop(tables=[table.copy()], kind="TABLE", exists=True, cascade=cascade)


def _schema(name: str) -> exp.Table:
    return exp.Table(db=exp.to_identifier(name, quoted=True))


def _drop_schema(name: str) -> exp.Drop:
    return exp.Drop(tables=[_schema(name)], kind="SCHEMA", exists=True, cascade=True)


def _pairs_equal(
    left: str, left_cols: Sequence[str], right: str, right_cols: Sequence[str]
) -> exp.Expr:
    return exp.and_(
        *(
            exp.EQ(this=_t(lc, left), expression=_t(rc, right))
            for lc, rc in zip(left_cols, right_cols, strict=True)
        )
    )


def _exists(table: exp.Table, alias: str, condition: exp.Expr) -> exp.Exists:
    return exp.Exists(
        this=exp.select(exp.Literal.number(1)).from_(table.copy().as_(alias)).where(condition)
    )


def _threshold(rate: float) -> int:
    return max(0, min(BUCKETS, round(rate * BUCKETS)))


def _select_rows(
    plan: TablePlan, key: Salt, dialect: str, work: Mapping[str, exp.Table]
) -> exp.Query:
    """The first selection of a table's rows (before the closure adds required parents)."""
    query = exp.select(exp.Star()).from_(plan.source.copy().as_("t"))
    conditions: list[exp.Expr] = []
    if plan.condition is not None:
        conditions.append(plan.condition.copy())
    if plan.role in (Role.ANCHOR, Role.OWN):
        assert plan.key and plan.rate is not None
        bucket = bucket_sql(key, [_t(c) for c in plan.key], dialect, BUCKETS)
        conditions.append(exp.LT(this=bucket, expression=exp.Literal.number(_threshold(plan.rate))))
    elif plan.role is Role.CHILD:
        follows = [
            _exists(
                work[edge.parent],
                "p",
                _pairs_equal("p", edge.parent_columns, "t", edge.child_columns),
            )
            for edge in plan.driving
        ]
        # Rows with no parent at all (e.g. anonymous events) are sampled by their own key.
        fk_columns = sorted({c for edge in plan.driving for c in edge.child_columns})
        all_null = exp.and_(*(exp.Is(this=_t(c), expression=exp.null()) for c in fk_columns))
        assert plan.key and plan.rate is not None
        bucket = bucket_sql(key, [_t(c) for c in plan.key], dialect, BUCKETS)
        own = exp.and_(
            all_null,
            exp.LT(this=bucket, expression=exp.Literal.number(_threshold(plan.rate))),
        )
        # Two disjoint branches (a non-null FK that matches / every FK null): UNION ALL keeps
        # the keyed hash off the rows that follow a parent.
        following = query.copy().where(exp.and_(*conditions, exp.or_(*follows)))
        return exp.union(following, query.where(exp.and_(*conditions, own)), distinct=False)
    elif plan.role is Role.PARENT:
        conditions.append(exp.false())
    return query.where(exp.and_(*conditions)) if conditions else query


def _keyed(work: Engine, key: Salt) -> Engine:
    """`work`, binding the key markers of what it runs to `key` where the dialect takes key
    material as parameters (Spark: the work session); elsewhere the keys are in the SQL."""
    return work.keyed(key) if isinstance(work, SparkWorkSession) else work


def _count(engine: Engine, table: exp.Table) -> int:
    rows = engine.fetchall(exp.select(exp.func("count", exp.Star())).from_(table.copy()))
    return int(rows[0][0])


def run_sample(
    plan: SamplePlan,
    *,
    work: Engine,
    writer: SampleWriter,
    salt: Salt,
    production_rows: Mapping[str, int],
    reporter: Reporter = NULL_REPORTER,
) -> SampleOutcome:
    """Select, close, mask and write every table; verify zero orphans on what was written.

    `work` is where the SQL runs: it reads `plan.tables[*].source` (production, in one snapshot)
    and holds temporary tables; `writer` stores each masked table.
    """
    dialect = plan.dialect
    # Which rows are sampled depends on the (public) seed only: rotating the salt re-masks the
    # same rows, so samples before and after a rotation stay comparable.
    sampling_key = sampling_salt(plan.seed)
    watch = Stopwatch()
    names = {p.name: _work_name(i) for i, p in enumerate(plan.tables)}
    masked = [(i, p) for i, p in enumerate(plan.tables) if _has_masks(p)]
    # Staging depends on declared keys only: distinct shares are read on DuckDB alone.
    staged = {p.name for _, p in masked if _masked_in_work(p, dialect, _inline_columns(plan))}
    total_steps = 2 * len(plan.tables) + 1 + len(staged)
    with task(reporter, "sample", "sampling production", total_steps):
        with watch.measure("select"):
            selecting = _keyed(work, sampling_key)
            for table_plan in plan.tables:
                query = _select_rows(table_plan, sampling_key, dialect, names)
                selecting.execute(_drop(names[table_plan.name]))
                selecting.execute(_create_temp(names[table_plan.name], query))
                reporter.task_advanced("sample", description=f"selected {table_plan.name}")
        with watch.measure("closure"):
            rounds, counts = _close(plan, work, names)
            reporter.message(
                "info", f"foreign-key closure reached a fixed point in {rounds} rounds"
            )
            reporter.task_advanced("sample", description="closed over foreign keys")
        over = {n: c for n, c in counts.items() if c > plan.max_rows}
        if over:
            name, rows = max(over.items(), key=lambda item: item[1])
            raise UsageError(
                f"the sample of {name} has {rows:,} rows, above sample.max_rows={plan.max_rows:,}",
                "lower sample.rate (or an anchor's rate/rows), add a filter, or raise max_rows",
            )
        # "write": storing each table where the sample lives; a stored table's work copy is
        # dropped at once, so the session holds less while masking. "mask": the mapping
        # tables, one per masking domain across tables (the masking throughput). A masked
        # table is stored straight from its raw work rows joined to the maps: no masked copy
        # is written in the work session and read back (see `_masked_in_work`).
        stored = dict(names)

        def store(table_plan: TablePlan, query: exp.Select | None = None) -> None:
            source = stored.pop(table_plan.name)
            writer.write(table_plan, query or _copy_select(table_plan, source))
            work.execute(_drop(source))
            reporter.task_advanced("sample", description=f"wrote {table_plan.name}")

        with watch.measure("write"):
            for table_plan in plan.tables:
                if not _has_masks(table_plan):
                    store(table_plan)
        masking = _keyed(work, salt)
        with watch.measure("mask"):
            inline = _inline_columns(plan, _distinct_shares(plan, work, names, counts))
            maps = _build_maps(plan, masking, names, salt, dialect, inline)
            for index, table_plan in masked:
                if table_plan.name in staged:
                    stored[table_plan.name] = _stage_masked(
                        table_plan, index, names, maps, masking, salt, dialect, inline
                    )
                    reporter.task_advanced("sample", description=f"masked {table_plan.name}")
        masked_rows = sum(counts[p.name] for _, p in masked)
        with watch.measure("write"):
            for _, table_plan in masked:
                direct = None
                if table_plan.name not in staged:
                    direct = _masked_select(
                        table_plan, names[table_plan.name], maps, dialect, salt=salt, inline=inline
                    )
                store(table_plan, direct)
            for index in maps.values():
                work.execute(_drop(_map_name(index)))
        with watch.measure("verify"):
            orphans: dict[str, int] = {}
            for edge in plan.graph.edges:
                orphans[edge.child] = orphans.get(edge.child, 0) + writer.orphans(edge)
            written = {p.name: writer.count(p) for p in plan.tables}
    coverage = tuple(
        TableCoverage(
            table=p.name,
            role=p.role,
            production_rows=int(production_rows.get(p.name, 0)),
            sampled_rows=written[p.name],
            orphans=orphans.get(p.name, 0),
            masked=tuple((m.column, m.rule.describe()) for m in p.masks if m.masked),
        )
        for p in sorted(plan.tables, key=lambda p: p.name)
    )
    return SampleOutcome(tables=coverage, timings=dict(watch.timings), masked_rows=masked_rows)


def _close(
    plan: SamplePlan, work: Engine, names: Mapping[str, exp.Table]
) -> tuple[int, dict[str, int]]:
    """Pull in every parent a sampled row references until nothing changes (a fixed point).

    Returns the rounds it took and every work table's row count at the fixed point.
    """
    sizes = {p.name: _count(work, names[p.name]) for p in plan.tables}
    # Semi-naive: an edge is followed again only when its child table grew since last time.
    seen: dict[ForeignKey, int] = {}
    for rounds in range(1, _MAX_CLOSURE_ROUNDS + 1):
        changed = False
        for edge in plan.graph.edges:
            parent = plan.table(edge.parent)
            if parent.role is Role.FULL or seen.get(edge) == sizes[edge.child]:
                continue
            seen[edge] = sizes[edge.child]
            missing = (
                exp.select(exp.Star())
                .from_(parent.source.copy().as_("t"))
                .where(
                    exp.and_(
                        _exists(
                            names[edge.child],
                            "c",
                            _pairs_equal("c", edge.child_columns, "t", edge.parent_columns),
                        ),
                        exp.not_(
                            _exists(
                                names[edge.parent],
                                "p",
                                _pairs_equal("p", edge.parent_columns, "t", edge.parent_columns),
                            )
                        ),
                    )
                )
            )
            work.execute(exp.insert(missing, names[edge.parent].copy()))
            size = _count(work, names[edge.parent])
            if size != sizes[edge.parent]:
                sizes[edge.parent] = size
                changed = True
        if not changed:
            return rounds, sizes
    raise UsageError(  # pragma: no cover - a fixed point is reached in at most |rows| rounds
        f"the foreign-key closure did not converge in {_MAX_CLOSURE_ROUNDS} rounds"
    )


def _build_maps(
    plan: SamplePlan,
    work: Engine,
    names: Mapping[str, exp.Table],
    salt: Salt,
    dialect: str,
    inline: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, int]:
    """One mapping table per masking domain, over the distinct values of every column in it
    (across tables), except the columns masked in line."""
    inputs: dict[str, list[exp.Select]] = {}
    rules: dict[str, MaskRule] = {}
    for table_plan in plan.tables:
        for mask in table_plan.masks:
            strategy = mask.rule.strategy
            if strategy not in (MaskStrategy.VALUE_MAP, MaskStrategy.ENTITY_MAP):
                continue
            if (table_plan.name, mask.column) in inline:
                continue
            source_column = mask.column
            if strategy is MaskStrategy.ENTITY_MAP:
                source_column = _entity_column(table_plan, mask)
            value = canonical(mask.rule, _t(source_column), dialect)
            inputs.setdefault(mask.rule.domain, []).append(
                exp.select(value.as_("raw"))
                .distinct()
                .from_(names[table_plan.name].copy().as_("t"))
                .where(exp.not_(exp.Is(this=_t(source_column), expression=exp.null())))
            )
            rules[mask.rule.domain] = mask.rule
    maps: dict[str, int] = {}
    for index, (domain, selects) in enumerate(sorted(inputs.items())):
        union: exp.Query = selects[0]
        for other in selects[1:]:
            union = exp.union(union, other, distinct=True)
        rule = rules[domain]
        body = map_query(rule, union, salt, dialect)
        work.execute(_drop(_map_name(index)))
        work.execute(_create_temp(_map_name(index), body))
        maps[domain] = index
    return maps


def _masked_in_work(plan: TablePlan, dialect: str, inline: frozenset[tuple[str, str]]) -> bool:
    """Whether a masked table is first written masked in the work session (then copied).

    Otherwise its masked SELECT goes to the writer as it is. Only a table masked in line in
    a dialect whose key material travels as parameters is staged: its SELECT carries key
    markers, which the keyed work session binds and a writer's session does not.
    """
    return dialect in PARAMETER_DIALECTS and any(
        (plan.name, m.column) in inline for m in plan.masks
    )


def _stage_masked(
    plan: TablePlan,
    index: int,
    names: Mapping[str, exp.Table],
    maps: Mapping[str, int],
    masking: Engine,
    salt: Salt,
    dialect: str,
    inline: frozenset[tuple[str, str]],
) -> exp.Table:
    """The table masked into a work table (its raw work table dropped); returns its name."""
    target = _masked_name(index)
    query = _masked_select(plan, names[plan.name], maps, dialect, salt=salt, inline=inline)
    masking.execute(_drop(target))
    masking.execute(_create_temp(target, query))
    masking.execute(_drop(names[plan.name]))
    return target


NEARLY_UNIQUE = 0.9
"""Value-mapped columns with at least this share of distinct values per row are masked in line."""


def _inline_columns(
    plan: SamplePlan, shares: Mapping[tuple[str, str], float] | None = None
) -> frozenset[tuple[str, str]]:
    """(table, column) of the value-mapped columns masked in line, row by row.

    A nearly unique column would get a mapping table about as large as itself and a join
    back: its values are masked in line instead, with the same functions, so the output is the
    same. That is every single-column primary key the dbt project declares (foreign keys joined
    to it repeat values and keep the mapping table), and every column whose work table's
    distinct share (`shares`, see `_distinct_shares`) is at least NEARLY_UNIQUE.
    """
    chosen: set[tuple[str, str]] = set()
    for table_plan in plan.tables:
        source = plan.graph.tables.get(table_plan.name)
        key = source.primary_key if source is not None else None
        for mask in table_plan.masks:
            if not mask.masked or mask.rule.strategy is not MaskStrategy.VALUE_MAP:
                continue
            declared = key is not None and tuple(key) == (mask.column,)
            share = (shares or {}).get((table_plan.name, mask.column), 0.0)
            if declared or share >= NEARLY_UNIQUE:
                chosen.add((table_plan.name, mask.column))
    return frozenset(chosen)


def _distinct_shares(
    plan: SamplePlan, work: Engine, names: Mapping[str, exp.Table], rows: Mapping[str, int]
) -> dict[tuple[str, str], float]:
    """Distinct values per row of every value-mapped column, from DuckDB's column statistics.

    DuckDB keeps a distinct estimate with every table (`stats(column)`, under a millisecond a
    column), so the choice costs nothing; counting (`approx_count_distinct`) would cost about
    what masking in line saves. Other engines: none, so only declared keys go in line there.
    """
    if plan.dialect != "duckdb":
        return {}
    shares: dict[tuple[str, str], float] = {}
    for table_plan in plan.tables:
        columns = [
            m.column
            for m in table_plan.masks
            if m.masked and m.rule.strategy is MaskStrategy.VALUE_MAP
        ]
        if not columns or not rows.get(table_plan.name):
            continue
        query = (
            exp.select(*(_approx_unique(_t(c)) for c in columns))
            .from_(names[table_plan.name].copy().as_("t"))
            .limit(1)
        )
        found = work.fetchall(query)
        for column, estimate in zip(columns, found[0] if found else (), strict=False):
            if estimate is not None:
                shares[(table_plan.name, column)] = int(estimate) / rows[table_plan.name]
    return shares


def _approx_unique(column: exp.Expr) -> exp.Expr:
    """The distinct estimate in DuckDB's `stats(column)`, extracted in SQL: the statistics also
    hold the column's min and max, raw values that have no business in Python. A struct in
    DuckDB 2 (`approx_unique` first), text in DuckDB 1 (`[Approx Unique: n]` after min/max: a
    raw value imitating it could only change this choice, never the masked output)."""
    text = exp.cast(exp.func("stats", column), exp.DataType.build("VARCHAR"))
    number = exp.RegexpExtract(
        this=text,
        expression=exp.Literal.string(r"(?i)approx.unique\W+(\d+)"),
        group=exp.Literal.number(1),
    )
    return exp.TryCast(
        this=exp.Nullif(this=number, expression=exp.Literal.string("")),
        to=exp.DataType.build("BIGINT"),
    )


def _entity_column(plan: TablePlan, mask: ColumnClass) -> str:
    key = mask.rule.opt("key", None)
    if key:
        if key not in {c.name for c in plan.columns}:
            raise ConfigError(
                f"masking of {plan.name}.{mask.column}: key column {key!r} does not exist"
            )
        return str(key)
    if plan.key and len(plan.key) == 1:
        return plan.key[0]
    return mask.column


def _has_masks(plan: TablePlan) -> bool:
    return any(m.masked for m in plan.masks)


def _copy_select(plan: TablePlan, table: exp.Table) -> exp.Select:
    """Every column of `plan`, in its order, from a work table."""
    return exp.select(*(_t(c.name) for c in plan.columns)).from_(table.copy().as_("t"))


def _masked_select(
    plan: TablePlan,
    work_table: exp.Table,
    maps: Mapping[str, int],
    dialect: str,
    *,
    salt: Salt | None = None,
    inline: frozenset[tuple[str, str]] = frozenset(),
) -> exp.Select:
    """The table masked: mapped columns joined to their mapping tables, inline ones computed."""
    source, ref, computed = _inline_source(plan, work_table, dialect, salt, inline)
    projections: list[exp.Expr] = []
    joins: list[tuple[exp.Expr, exp.Expr]] = []
    for position, column in enumerate(plan.columns):
        mask = plan.mask_of(column.name)
        if mask is None or not mask.masked:
            projections.append(ref(column.name).as_(column.name, quoted=True))
            continue
        mapped: exp.Expr | None = None
        if column.name in computed:
            mapped = computed[column.name]
        elif mask.rule.domain in maps and mask.rule.strategy in (
            MaskStrategy.VALUE_MAP,
            MaskStrategy.ENTITY_MAP,
        ):
            alias = f"m{position}"
            key_column = (
                _entity_column(plan, mask)
                if mask.rule.strategy is MaskStrategy.ENTITY_MAP
                else column.name
            )
            on = exp.EQ(
                this=exp.column("raw", alias, quoted=True),
                expression=canonical(mask.rule, ref(key_column), dialect),
            )
            joins.append((_map_name(maps[mask.rule.domain]).as_(alias), on))
            mapped = exp.column("masked", alias, quoted=True)
        value = apply_sql(mask.rule, ref(column.name), mapped, column.data_type, dialect)
        projections.append(exp.alias_(value, column.name, quoted=True))
    query = exp.select(*projections).from_(source)
    for table, condition in joins:
        query = query.join(table, on=condition, join_type="left")
    return query


def _inline_source(
    plan: TablePlan,
    work_table: exp.Table,
    dialect: str,
    salt: Salt | None,
    inline: frozenset[tuple[str, str]],
) -> tuple[exp.Expr, Callable[[str], exp.Column], dict[str, exp.Expr]]:
    """What `_masked_select` reads: the work table, or for inline columns a chain of `map_query`
    stages over its rows that carries every column along (renamed `__dataops_c<i>` so they never
    clash with a stage's names) and adds each inline mask as `__dataops_i<k>`.

    Returns the FROM expression, column name -> reference, and column name -> masked value.
    """
    columns = [
        (c, m)
        for c in plan.columns
        if (m := plan.mask_of(c.name)) is not None and (plan.name, c.name) in inline
    ]
    if not columns or salt is None:
        return work_table.copy().as_("t"), _t, {}
    carried = {c.name: f"__dataops_c{i}" for i, c in enumerate(plan.columns)}
    names = list(carried.values())
    query = exp.select(*(_t(c).as_(alias, quoted=True) for c, alias in carried.items())).from_(
        work_table.copy().as_("t")
    )
    computed: dict[str, exp.Expr] = {}
    for k, (column, mask) in enumerate(columns):
        values = exp.select(
            *(_col(n) for n in names),
            canonical(mask.rule, _col(carried[column.name]), dialect).as_("raw"),
        ).from_(query.subquery(f"s{k}"))
        staged = map_query(mask.rule, values, salt, dialect, carry=names)
        # NULL stays NULL, as when a NULL finds no row in a mapping table.
        masked = exp.Case(
            ifs=[exp.If(this=exp.Is(this=_col("raw"), expression=exp.null()), true=exp.null())],
            default=_col("masked"),
        )
        name = f"__dataops_i{k}"
        query = exp.select(*(_col(n) for n in names), masked.as_(name, quoted=True)).from_(
            staged.subquery(f"i{k}")
        )
        names.append(name)
        computed[column.name] = _t(name)

    def ref(name: str) -> exp.Column:
        return _t(carried[name])

    return query.subquery("t"), ref, computed


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def count_orphans(engine: Engine, edge: ForeignKey, child: exp.Table, parent: exp.Table) -> int:
    """Child rows whose (non-null) foreign key has no parent row: must be 0 after sampling."""
    not_null = exp.and_(
        *(exp.not_(exp.Is(this=_t(c, "c"), expression=exp.null())) for c in edge.child_columns)
    )
    query = (
        exp.select(exp.func("count", exp.Star()))
        .from_(child.copy().as_("c"))
        .where(
            exp.and_(
                not_null,
                exp.not_(
                    _exists(
                        parent, "p", _pairs_equal("p", edge.parent_columns, "c", edge.child_columns)
                    )
                ),
            )
        )
    )
    return int(engine.fetchall(query)[0][0])


def production_counts(engine: Engine, sources: Mapping[str, exp.Table]) -> dict[str, int]:
    return {name: _count(engine, table) for name, table in sources.items()}


# --------------------------------------------------------------------------------------------
# Writers


class DuckDBSampleWriter(SampleWriter):
    """Writes into the sample file the work connection has open (production is attached)."""

    def __init__(self, engine: Engine, relations: Mapping[str, Any]) -> None:
        self.engine = engine
        self.relations = relations
        self._schemas: set[str] = set()

    def _table(self, name: str) -> exp.Table:
        relation = self.relations[name]
        return exp.table_(relation.name, db=relation.schema, quoted=True)

    def write(self, plan: TablePlan, query: exp.Select) -> None:
        schema = self.relations[plan.name].schema
        if schema not in self._schemas:
            self.engine.execute(exp.Create(this=_schema(schema), kind="SCHEMA", exists=True))
            self._schemas.add(schema)
        target = self._table(plan.name)
        self.engine.execute(_drop(target))
        self.engine.execute(exp.Create(this=target, kind="TABLE", expression=query))

    def count(self, plan: TablePlan) -> int:
        return _count(self.engine, self._table(plan.name))

    def orphans(self, edge: ForeignKey) -> int:
        return count_orphans(self.engine, edge, self._table(edge.child), self._table(edge.parent))


class PostgresSampleWriter(SampleWriter):
    """Streams each masked table from production's session into a staging schema of the sandbox.

    Masking runs inside production's server (temporary tables of the reading session), so no raw
    value leaves it; `publish` swaps the staged tables in within one sandbox transaction.
    """

    STAGING = "__dataops_sample_staging"

    def __init__(self, work: Any, sandbox: Any, relations: Mapping[str, Any]) -> None:
        self.work = work
        self.sandbox = sandbox
        self.relations = relations
        self.sandbox.execute(_drop_schema(self.STAGING))
        self.sandbox.execute(exp.Create(this=_schema(self.STAGING), kind="SCHEMA"))

    def _staged(self, name: str) -> exp.Table:
        relation = self.relations[name]
        # One staging schema for every source schema: the name carries the schema.
        return exp.table_(f"{relation.schema}.{relation.name}", db=self.STAGING, quoted=True)

    def _final(self, name: str) -> exp.Table:
        relation = self.relations[name]
        return exp.table_(relation.name, db=relation.schema, quoted=True)

    def write(self, plan: TablePlan, query: exp.Select) -> None:
        import psycopg

        from dataops_dev.engines.postgres import error_text

        columns = [
            exp.ColumnDef(
                this=exp.to_identifier(c.name, quoted=True),
                kind=exp.DataType.build(c.data_type, dialect="postgres", udt=True),
            )
            for c in plan.columns
        ]
        staged = self._staged(plan.name)
        self.sandbox.execute(
            exp.Create(this=exp.Schema(this=staged, expressions=columns), kind="TABLE")
        )
        source_sql = f"COPY ({query.sql('postgres')}) TO STDOUT (FORMAT binary)"
        target_sql = f"COPY {staged.sql('postgres')} FROM STDIN (FORMAT binary)"
        try:
            with (
                self.work.connection.cursor() as out_cursor,
                self.sandbox.connection.cursor() as in_cursor,
                out_cursor.copy(source_sql) as reader,
                in_cursor.copy(target_sql) as writer,
            ):
                for chunk in reader:
                    writer.write(chunk)
        except psycopg.Error as exc:
            # Masking runs in the reading session: an error there may quote a raw value.
            raise EngineError(
                f"PostgreSQL: copying the sample of {plan.name} failed: {error_text(exc)}"
            ) from exc

    def count(self, plan: TablePlan) -> int:
        return _count(self.sandbox, self._staged(plan.name))

    def orphans(self, edge: ForeignKey) -> int:
        return count_orphans(
            self.sandbox, edge, self._staged(edge.child), self._staged(edge.parent)
        )

    def publish(self) -> None:
        """Replace the sandbox's source tables with the staged ones, atomically.

        Tables whose columns did not change are refilled in place, so environment views over
        them survive; a changed table is replaced (dependent views go and are rebuilt).
        """
        connection = self.sandbox.connection
        with connection.transaction():
            for name, relation in sorted(self.relations.items()):
                staged = self._staged(name)
                final = self._final(name)
                schema = exp.to_identifier(relation.schema, quoted=True)
                self.sandbox.execute(
                    exp.Create(this=_schema(relation.schema), kind="SCHEMA", exists=True)
                )
                same = self.sandbox.columns(type(relation)(relation.schema, relation.name)) == (
                    self.sandbox.columns(
                        type(relation)(self.STAGING, f"{relation.schema}.{relation.name}")
                    )
                )
                if same:
                    self.sandbox.execute(f"TRUNCATE {final.sql('postgres')}")
                    self.sandbox.execute(
                        exp.insert(exp.select(exp.Star()).from_(staged.copy()), final.copy())
                    )
                else:
                    self.sandbox.execute(_drop(final, cascade=True))
                    self.sandbox.execute(
                        f"ALTER TABLE {staged.sql('postgres')} "
                        f"RENAME TO {exp.to_identifier(relation.name, quoted=True).sql('postgres')}"
                    )
                    renamed = exp.table_(relation.name, db=self.STAGING, quoted=True)
                    self.sandbox.execute(
                        f"ALTER TABLE {renamed.sql('postgres')} SET SCHEMA {schema.sql('postgres')}"
                    )
                self.sandbox.execute(f"ANALYZE {final.sql('postgres')}")
            self.sandbox.execute(_drop_schema(self.STAGING))


class SparkWorkSession:
    """The sampler's work engine on Spark: its temporary tables become Parquet tables in a
    scratch schema.

    Spark rejects `CREATE TEMPORARY TABLE … AS`, and a temporary view (what sqlglot writes
    instead) is recomputed on every read, while the closure reads each work table many times.
    So every unqualified `__dataops_*` table the sampler names is placed in `scratch`, and a
    temporary table is created there as a real one. The caller creates and drops `scratch`.

    Spark servers log statements: the masking SQL carries key markers, not keys, and a session
    `keyed` with a salt binds them as parameters (`masking.bind`) on the way out.
    """

    dialect = "spark"

    def __init__(self, engine: Any, scratch: str, key: Salt | None = None) -> None:
        self.engine = engine
        self.scratch = scratch
        self.key = key

    def keyed(self, key: Salt) -> SparkWorkSession:
        """The same session, binding the key markers of its statements to `key`."""
        return SparkWorkSession(self.engine, self.scratch, key)

    def _bound(
        self, sql: str | exp.Expr, params: Sequence[Any] | None
    ) -> tuple[str | exp.Expr, Sequence[Any] | None]:
        placed = self._placed(sql)
        if self.key is None:
            return placed, params
        text, bound = bind(placed, self.key, self.dialect, params=params or ())
        return text, bound or None

    def _placed(self, sql: str | exp.Expr) -> str | exp.Expr:
        if isinstance(sql, str):
            return sql
        tree = sql.copy()
        for table in tree.find_all(exp.Table):
            if not table.args.get("db") and table.name.startswith("__dataops_"):
                table.set("db", exp.to_identifier(self.scratch, quoted=True))
        if isinstance(tree, exp.Create) and tree.find(exp.TemporaryProperty) is not None:
            tree.set(
                "properties",
                exp.Properties(expressions=[exp.FileFormatProperty(this=exp.Var(this="PARQUET"))]),
            )
        return tree

    def execute(self, sql: str | exp.Expr, params: Sequence[Any] | None = None) -> None:
        self.engine.execute(*self._bound(sql, params))

    def fetchall(
        self, sql: str | exp.Expr, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return list(self.engine.fetchall(*self._bound(sql, params)))

    def fetch_with_names(
        self, sql: str | exp.Expr, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        names, rows = self.engine.fetch_with_names(*self._bound(sql, params))
        return list(names), list(rows)

    def columns(self, relation: Any) -> list[Column]:
        return list(self.engine.columns(relation))

    def relation_exists(self, relation: Any) -> bool:
        return bool(self.engine.relation_exists(relation))

    def list_relations(self, schema: str, database: str | None = None) -> list[Any]:
        return list(self.engine.list_relations(schema, database))

    def close(self) -> None:
        """The session belongs to whoever opened it."""


class SparkSampleWriter(SampleWriter):
    """Writes each masked table as a Parquet table into one version of the sample's schemas.

    Production, the work tables and the sample live in the same Spark, so masking runs there and
    no row leaves it. A version is invisible until `sources` records it as the current one;
    `point_views` then repoints the stable views under `spark_layout.sample_schema` and `retire`
    drops every other version (and the scratch of interrupted runs).
    """

    def __init__(
        self, engine: Any, relations: Mapping[str, Any], prefix: str, version: str
    ) -> None:
        self.engine = engine
        self.relations = relations
        self.prefix = prefix
        self.version = version
        self._schemas: set[str] = set()

    @property
    def schemas(self) -> dict[str, str]:
        """Production source schema -> the schema holding this version of its sample."""
        from dataops_dev.spark_layout import sample_version_schema

        return {
            r.schema: sample_version_schema(self.prefix, r.schema, self.version)
            for r in self.relations.values()
        }

    def _table(self, name: str) -> exp.Table:
        relation = self.relations[name]
        return exp.table_(relation.name, db=self.schemas[relation.schema], quoted=True)

    def write(self, plan: TablePlan, query: exp.Select) -> None:
        schema = self.schemas[self.relations[plan.name].schema]
        if schema not in self._schemas:
            self.engine.execute(exp.Create(this=_schema(schema), kind="SCHEMA", exists=True))
            self._schemas.add(schema)
        target = self._table(plan.name)
        self.engine.execute(_drop(target))
        self.engine.execute(
            exp.Create(
                this=target,
                kind="TABLE",
                expression=query,
                properties=exp.Properties(
                    expressions=[exp.FileFormatProperty(this=exp.Var(this="PARQUET"))]
                ),
            )
        )

    def count(self, plan: TablePlan) -> int:
        return _count(self.engine, self._table(plan.name))

    def orphans(self, edge: ForeignKey) -> int:
        return count_orphans(self.engine, edge, self._table(edge.child), self._table(edge.parent))

    def point_views(self) -> None:
        """One view per table under the stable `sample_schema` names, over this version (each
        view is replaced in one statement; readers that must never mix versions go by the
        recorded schemas instead)."""
        from dataops_dev.spark_layout import sample_schema

        for name, relation in sorted(self.relations.items()):
            stable = sample_schema(self.prefix, relation.schema)
            if stable not in self._schemas:
                self.engine.execute(exp.Create(this=_schema(stable), kind="SCHEMA", exists=True))
                self._schemas.add(stable)
            view = exp.table_(relation.name, db=stable, quoted=True)
            self.engine.execute(
                exp.Create(
                    this=view,
                    kind="VIEW",
                    replace=True,
                    expression=exp.select(exp.Star()).from_(self._table(name)),
                )
            )

    def discard(self) -> None:
        """Drop this version's schemas (a failed run: the current sample stays as it was)."""
        for schema in sorted(set(self.schemas.values())):
            self.engine.execute(_drop_schema(schema))

    def retire(self) -> list[str]:
        """Drop every other version of the sample and every sampler scratch schema left by an
        interrupted run; returns the schemas dropped."""
        from dataops_dev.spark_layout import sample_version_of

        pattern = exp.Literal.string(f"{self.prefix}__sample*").sql("spark")
        dropped = []
        for row in self.engine.fetchall(f"SHOW SCHEMAS LIKE {pattern}"):
            schema = str(row[0])
            version = sample_version_of(self.prefix, schema)
            if version is not None and version != self.version:
                self.engine.execute(_drop_schema(schema))
                dropped.append(schema)
        return dropped
