"""Where an environment's dbt `source()`s read from: the masked sample, built once per snapshot.

DuckDB: environments attach `<state_dir>/samples/<id>.duckdb` read-only as `SOURCE_ALIAS`.
Warehouse: the sample is published into the sandbox database under production's source schemas.
Spark: production is a dbt-spark `method: session` target reached over Spark Connect; the sample is
written in versions under the sandbox schema prefix (`spark_layout`) and a recorded pointer names
the current one.
Sources that are files (dbt-duckdb `external_location`) are production too: read into the
sampling session (`file_sources.py`) and sampled like tables. Seeds are committed data, not sampled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlglot import exp

from dataops_dev import interrupts
from dataops_dev.atomic import write_json_atomic, write_text_atomic
from dataops_dev.config import LoadedConfig, as_plain
from dataops_dev.dbt.manifest import Manifest
from dataops_dev.dbt.project import database_name_of, load_profile_target, read_project
from dataops_dev.engines.base import Column, Engine, Relation
from dataops_dev.errors import ConfigError, DataopsError, EngineError, LockedError, ProjectError
from dataops_dev.fkgraph import GRAPH_VERSION, FkGraph, build_graph, parse_edge_text
from dataops_dev.masking import (
    MASKING_VERSION,
    ColumnClass,
    ColumnFacts,
    MaskRule,
    Reason,
    Salt,
    classify_column,
    is_text_type,
    stricter,
    value_checked,
)
from dataops_dev.reporting import NULL_REPORTER, Reporter, task
from dataops_dev.sampling import (
    SAMPLING_VERSION,
    DuckDBSampleWriter,
    PostgresSampleWriter,
    Role,
    SampleOutcome,
    TableCoverage,
    plan_sample,
    production_counts,
    run_sample,
)
from dataops_dev.trust import MaskingPolicy, SamplePolicy, sample_policy, working_policy

SOURCE_ALIAS = "dataops_source"
PRODUCTION_ALIAS = "__dataops_prod"
LOCK_FILE = "dataops.lock.yml"
RECORD_VERSION = 1


@dataclass(frozen=True)
class SourceData:
    kind: Literal["production", "sample"]
    identity: str
    """A fingerprint recorded in environment metadata (which sample an env was built on)."""
    relations: tuple[Relation, ...]
    """Every source table available (schema + name)."""
    duckdb_file: Path | None = None
    """DuckDB backend: the file environments attach read-only as `dataops_source`."""
    sandbox_database: str | None = None
    """Warehouse backend: the database whose source schemas hold the data."""
    masked_columns: int = 0
    """How many source columns the sample masks."""
    sandbox_prefix: str | None = None
    """Spark backend: the schema prefix of everything dataops_dev writes (`spark_layout`)."""
    sample_schemas: Mapping[str, str] = field(default_factory=dict)
    """Spark backend: production source schema -> the schema holding the current sample of it
    (one version, never rewritten: read these, not the stable views, to never mix two samples)."""
    file_sources: tuple[str, ...] = ()
    """Sources that production reads from files (`source_name.table_name`): environments
    point them at the sample instead (they never read the files)."""


@dataclass(frozen=True)
class SampleRecord:
    """The run manifest of one sample: what it was built from and what it holds (no secrets)."""

    sample_id: str
    backend: Literal["duckdb", "warehouse", "spark"]
    location: str
    """The sample file (DuckDB), the sandbox database (warehouse) or schema prefix (Spark)."""
    created_at: str
    snapshot_time: str
    """When production's consistent snapshot was taken."""
    salt_env: str
    salt_fingerprint: str
    versions: Mapping[str, str]
    config_hash: str
    production_identity: str
    anchors: tuple[str, ...]
    tables: tuple[TableCoverage, ...]
    relations: tuple[Relation, ...]
    timings: Mapping[str, float] = field(default_factory=dict)
    masked_rows: int = 0
    new_columns: tuple[str, ...] = ()
    """Columns classified now that the lock file does not list (review them with `init`)."""
    policy: str = "working tree"
    """Whose masking policy the sample follows (on a branch: the stricter of main's and its)."""
    decided: tuple[tuple[str, str, str], ...] = ()
    """(column, transformer, why) of every column not confirmed in the lock file."""
    reused: bool = False
    files: tuple[str, ...] = ()
    """The file-backed sources (`source_name.table_name`), sampled like tables."""
    seeds: tuple[str, ...] = ()
    """The project's seeds: committed data, not sampled, never masked."""
    file_stamps: Mapping[str, str] = field(default_factory=dict)
    """Each production file read: size and mtime then (a changed file makes the sample stale)."""
    schemas: Mapping[str, str] = field(default_factory=dict)
    """Spark: production source schema -> the schema of this sample's version of it."""

    @property
    def identity(self) -> str:
        """What environments record as their source data: the sample id, plus the files' state
        (the id does not cover file contents: a rebuilt sample of changed files gets a new one)."""
        if not self.file_stamps:
            return self.sample_id
        text = json.dumps(dict(self.file_stamps), sort_keys=True)
        return f"{self.sample_id}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"

    @property
    def masked_columns(self) -> int:
        return sum(len(t.masked) for t in self.tables)

    @property
    def notes(self) -> tuple[str, ...]:
        """What is (not) sampled and masked, in words."""
        return data_notes(len(self.tables), self.masked_columns, self.seeds)

    @property
    def orphans(self) -> int:
        return sum(t.orphans for t in self.tables)

    @property
    def mask_rows_per_s(self) -> float | None:
        """Masked rows (rows of tables with masked columns) per second of the mask and write
        steps: masked tables are stored joined to their maps, so masking is not timed apart
        from storing (a lower bound on masking's own rate)."""
        seconds = self.timings.get("mask", 0.0) + self.timings.get("write", 0.0)
        return self.masked_rows / seconds if self.masked_rows and seconds > 0 else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("reused")
        data["record_version"] = RECORD_VERSION
        data["tables"] = [
            {**asdict(t), "role": t.role.value, "masked": [list(m) for m in t.masked]}
            for t in self.tables
        ]
        data["relations"] = [{"schema": r.schema, "name": r.name} for r in self.relations]
        data["decided"] = [list(d) for d in self.decided]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, reused: bool = False) -> SampleRecord:
        tables = tuple(
            TableCoverage(
                table=t["table"],
                role=Role(t["role"]),
                production_rows=int(t["production_rows"]),
                sampled_rows=int(t["sampled_rows"]),
                orphans=int(t["orphans"]),
                masked=tuple((str(c), str(r)) for c, r in t.get("masked", ())),
            )
            for t in data["tables"]
        )
        return cls(
            sample_id=data["sample_id"],
            backend=data["backend"],
            location=data["location"],
            created_at=data["created_at"],
            snapshot_time=data["snapshot_time"],
            salt_env=data["salt_env"],
            salt_fingerprint=data["salt_fingerprint"],
            versions=dict(data["versions"]),
            config_hash=data["config_hash"],
            production_identity=data["production_identity"],
            anchors=tuple(data.get("anchors", ())),
            tables=tables,
            relations=tuple(Relation(r["schema"], r["name"]) for r in data["relations"]),
            timings=dict(data.get("timings", {})),
            masked_rows=int(data.get("masked_rows", 0)),
            new_columns=tuple(data.get("new_columns", ())),
            policy=str(data.get("policy", "working tree")),
            decided=tuple((str(c), str(t), str(w)) for c, t, w in data.get("decided", ()) or ()),
            reused=reused,
            files=tuple(data.get("files", ())),
            seeds=tuple(data.get("seeds", ())),
            file_stamps={str(k): str(v) for k, v in (data.get("file_stamps") or {}).items()},
            schemas={str(k): str(v) for k, v in (data.get("schemas") or {}).items()},
        )


def versions() -> dict[str, str]:
    return {"sampling": SAMPLING_VERSION, "masking": MASKING_VERSION, "fkgraph": GRAPH_VERSION}


# --------------------------------------------------------------------------------------------
# Production access (read-only, one snapshot)


@dataclass
class Production:
    """An open, read-only view of production's sources inside one consistent snapshot."""

    engine: Engine
    dialect: str
    backend: Literal["duckdb", "warehouse", "spark"]
    identity: str
    snapshot_time: str
    catalog: str | None = None
    """DuckDB: the alias production is attached under in the work connection."""
    output: Mapping[str, Any] = field(default_factory=dict)
    files: dict[Relation, Relation] = field(default_factory=dict)
    """File-backed sources (sample relation -> their rows read into `FILES_ALIAS`)."""
    file_stamps: dict[str, str] = field(default_factory=dict)
    """Each file read: its size and mtime when it was read."""
    absent: Path | None = None
    """DuckDB: production's database file when it does not exist (yet): a project whose
    sources are all files (or that has none) is sampled without it."""
    value_samples: dict[tuple[Relation, str, int], tuple[tuple[str, ...], int]] = field(
        default_factory=dict
    )
    """Spark: the value samples of a table's columns, read for all of them at once."""

    def _where(self, relation: Relation) -> Relation:
        plain = Relation(relation.schema, relation.name)
        return self.files.get(plain) or Relation(relation.schema, relation.name, self.catalog)

    def table(self, relation: Relation) -> exp.Table:
        where = self._where(relation)
        return exp.table_(where.name, db=where.schema, catalog=where.database, quoted=True)

    def columns(self, relation: Relation) -> list[Column]:
        return self.engine.columns(self._where(relation))


def _duckdb_production_path(
    loaded: LoadedConfig, output: Mapping[str, Any], *, must_exist: bool = True
) -> Path:
    from dataops_dev.dbt.project import duckdb_path

    path = duckdb_path(loaded, output)
    if must_exist and not path.exists():
        raise _absent_production(path, output)
    return path


def _absent_production(path: Path, output: Mapping[str, Any]) -> ProjectError:
    return ProjectError(
        f"production database {path} does not exist",
        f"check the `{output.get('_target_name')}` target's path in profiles.yml",
    )


def _file_identity(path: Path) -> str:
    parts = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            stat = candidate.stat()
            parts.append(f"{candidate.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "duckdb:" + str(path) + ":" + ",".join(parts)


def _backend(output: Mapping[str, Any]) -> Literal["duckdb", "warehouse", "spark"]:
    """Where production's sample is built: a DuckDB file, a PostgreSQL sandbox database, or
    schemas of production's own Spark."""
    if output.get("type") == "duckdb":
        return "duckdb"
    if output.get("type") == "postgres":
        return "warehouse"
    if output.get("type") == "spark":
        if output.get("method") != "session":
            raise ConfigError(
                f"the spark target {output.get('_target_name')!r} uses method "
                f"{output.get('method')!r}; dataops-dev reaches Spark through Spark Connect",
                'use method: session with server_side_parameters: {"spark.remote": '
                '"sc://host:15002"}',
            )
        return "spark"
    raise ConfigError(
        f"production target type {output.get('type')!r} (profiles.yml, target "
        f"{output.get('_target_name')!r}) is not supported yet",
        "dataops-dev samples DuckDB, PostgreSQL and Spark production targets",
    )


def utc_now() -> str:
    """Now in UTC, to the second: the timestamps of sample records and environment metadata."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _postgres_identity(engine: Engine, output: Mapping[str, Any]) -> str:
    # Table statistics move with every committed write; good enough to notice a new snapshot
    # (`sample --refresh` forces one).
    rows = engine.fetchall(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0), count(*) "
        "FROM pg_stat_user_tables"
    )
    return (
        f"postgres:{output.get('host')}:{output.get('port')}:{output.get('dbname')}:"
        f"{rows[0][0]}:{rows[0][1]}"
    )


def _spark_remote(output: Mapping[str, Any]) -> str:
    from dataops_dev.engines.spark import remote_from_output

    try:
        return remote_from_output(output)
    except EngineError as exc:
        raise ConfigError(
            f"the spark target {output.get('_target_name')!r}: {exc.message}", exc.hint
        ) from exc


def _spark_address(output: Mapping[str, Any]) -> str:
    """Host and port of production's Spark Connect endpoint: what identifies it in records
    (the URL's `;token=…` parameters are credentials and never written anywhere)."""
    from dataops_dev.engines.spark import _endpoint

    host, port = _endpoint(_spark_remote(output))
    return f"{host}:{port}"


def _source_relations(loaded: LoadedConfig) -> tuple[Relation, ...]:
    """The production tables the dbt project declares as sources (from its parsed manifest)."""
    manifest = load_manifest(loaded)
    return tuple(
        sorted({Relation(n.schema or "default", n.identifier) for n in manifest.sources.values()})
    )


def _union_all(selects: Sequence[exp.Select]) -> exp.Expression:
    """`a UNION ALL b UNION ALL …` (`SELECT 1 WHERE false` when there is nothing to unite)."""
    if not selects:
        return exp.select(exp.Literal.number(0)).where(exp.false())
    union: exp.Expression = selects[0]
    for select in selects[1:]:
        union = exp.Union(this=union, expression=select, distinct=False)
    return union


def _spark_identity(engine: Any, output: Mapping[str, Any], tables: Sequence[Relation]) -> str:
    """A fingerprint of production's source tables on Spark: the data files each one reads.

    Parquet tables keep no statistics a write updates, but every Spark write adds files under
    new names, and listing them runs no job; a table that reads no files (JDBC, an empty
    table) contributes its row count.
    """
    from dataops_dev.engines.spark import error_text

    listing: dict[Relation, tuple[str, ...]] = {}
    for relation in tables:
        try:
            files = engine.session.table(relation.sql("spark")).inputFiles()
        except Exception as exc:
            raise EngineError(f"Spark: {error_text(exc)}") from exc
        listing[relation] = tuple(sorted(str(f) for f in files))
    empty = [r for r in tables if not listing[r]]
    counts = engine.fetchall(
        _union_all(
            [
                exp.select(exp.Literal.number(i), exp.func("count", exp.Star())).from_(r.to_table())
                for i, r in enumerate(empty)
            ]
        )
    )
    for position, count in counts:
        listing[empty[int(position)]] = (f"rows:{count}",)
    digest = hashlib.sha256()
    for relation in sorted(listing):
        digest.update(f"{relation}:{','.join(listing[relation])}\n".encode())
    return f"spark:{_spark_address(output)}:{output.get('schema')}:{digest.hexdigest()[:16]}"


@contextlib.contextmanager
def open_production(loaded: LoadedConfig, *, work_file: Path | None = None) -> Iterator[Production]:
    """Production's sources, read-only, in one snapshot.

    DuckDB: with `work_file`, that (writable) file is opened and production attached READ_ONLY
    under `PRODUCTION_ALIAS`; without, production itself is opened read-only. PostgreSQL: one
    REPEATABLE READ transaction, rolled back at the end (its temporary tables vanish with it).
    Spark: one Spark Connect session; Parquet tables have no snapshots, so the sampler checks
    that production's fingerprint did not move while it read (`check_unchanged`).
    """
    output = load_profile_target(loaded)
    backend = _backend(output)
    if backend == "spark":
        from dataops_dev.engines.spark import SparkEngine

        engine_spark = SparkEngine(_spark_remote(output))
        try:
            identity = _spark_identity(engine_spark, output, _source_relations(loaded))
            yield Production(engine_spark, "spark", "spark", identity, utc_now(), None, output)
        finally:
            engine_spark.close()
        return
    if backend == "duckdb":
        from dataops_dev.engines.duckdb import DuckDBEngine

        path = _duckdb_production_path(loaded, output, must_exist=False)
        identity = _file_identity(path)
        # An in-memory session (not production opened read-only) so that file-backed sources
        # can be read into it; production itself is attached read-only either way.
        engine = DuckDBEngine(work_file if work_file is not None else ":memory:")
        exists = path.exists()
        if exists:
            engine.attach(path, PRODUCTION_ALIAS, read_only=True)
        try:
            yield Production(
                engine,
                "duckdb",
                "duckdb",
                identity,
                utc_now(),
                PRODUCTION_ALIAS,
                output,
                absent=None if exists else path,
            )
        finally:
            engine.close()
        return
    from dataops_dev.engines.postgres import PostgresEngine, conninfo_from_credentials

    engine_pg = PostgresEngine(conninfo_from_credentials(output))
    try:
        identity = _postgres_identity(engine_pg, output)
        engine_pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        snapshot = utc_now()
        engine_pg.fetchall("SELECT 1")  # the snapshot is taken by the first statement
        try:
            yield Production(engine_pg, "postgres", "warehouse", identity, snapshot, None, output)
        finally:
            with contextlib.suppress(Exception):
                engine_pg.execute("ROLLBACK")
    finally:
        engine_pg.close()


# --------------------------------------------------------------------------------------------
# Inspection: graph + classification (shared by `init` and `sample`)


@dataclass(frozen=True)
class Inspection:
    graph: FkGraph
    columns: Mapping[str, tuple[Column, ...]]
    classes: tuple[ColumnClass, ...]
    anchors: tuple[str, ...]
    new_columns: tuple[str, ...] = ()
    """Columns not in the lock file (classified now, to review)."""
    seeds: tuple[str, ...] = ()
    """The project's seeds: committed data, neither sampled nor masked."""
    files: tuple[str, ...] = ()
    """Sources read from files (sampled and masked like tables)."""

    @property
    def notes(self) -> tuple[str, ...]:
        return data_notes(
            len(self.graph.tables), sum(1 for c in self.classes if c.masked), self.seeds
        )


def _column_facts(
    manifest: Manifest, graph: FkGraph, name: str, column: Column
) -> tuple[dict[str, Any], tuple[str, ...]]:
    node = manifest.sources.get(graph.tables[name].unique_id)
    if node is None:
        return {}, ()
    for col_name, info in node.columns.items():
        if col_name.lower() == column.name.lower():
            meta = dict(info.meta)
            config_meta = (node.raw.get("columns", {}).get(col_name, {}).get("config") or {}).get(
                "meta"
            ) or {}
            meta.update(config_meta)
            return meta, info.tags
    return {}, ()


def _value_sample(
    production: Production, relation: Relation, column: str, size: int
) -> tuple[tuple[str, ...], int]:
    """A few distinct values and a distinct count, from a bounded prefix of the table."""
    col = exp.column(column, quoted=True)
    prefix = (
        exp.select(col.copy())
        .from_(production.table(relation))
        .where(exp.not_(exp.Is(this=col.copy(), expression=exp.null())))
        .limit(20_000)
        .subquery("p")
    )
    as_text = exp.cast(col.copy(), exp.DataType.build("TEXT"))
    values = production.engine.fetchall(
        exp.select(as_text).distinct().from_(prefix.copy()).order_by(as_text.copy()).limit(size)
    )
    distinct = production.engine.fetchall(
        exp.select(exp.Count(this=exp.Distinct(expressions=[col.copy()]))).from_(prefix)
    )
    return tuple(str(v[0]) for v in values), int(distinct[0][0])


def _table_value_sample(
    production: Production, relation: Relation, column: str, size: int
) -> tuple[tuple[str, ...], int]:
    """`_value_sample` of one column, read with those of every value-checked column of its table
    in one statement (same prefixes, same sorted values, same counts): Spark answers each
    statement in tenths of a second whatever its size, so one per table, not two per column."""
    cache = production.value_samples
    if (relation, column, size) not in cache:
        names = [c.name for c in production.columns(relation) if value_checked(c.data_type)]
        branches = []
        for position, name in enumerate(names):
            col = exp.column(name, quoted=True)
            prefix = (
                exp.select(exp.cast(col.copy(), exp.DataType.build("TEXT")).as_("v"))
                .from_(production.table(relation))
                .where(exp.not_(exp.Is(this=col.copy(), expression=exp.null())))
                .limit(20_000)
                .subquery("p")
            )
            values = exp.func(
                "slice",
                exp.func("array_sort", exp.func("collect_set", exp.column("v"))),
                exp.Literal.number(1),
                exp.Literal.number(size),
            )
            count = exp.Count(this=exp.Distinct(expressions=[exp.column("v")]))
            branches.append(exp.select(exp.Literal.number(position), values, count).from_(prefix))
        for position, values, count in production.engine.fetchall(_union_all(branches)):
            key = (relation, names[int(position)], size)
            cache[key] = (tuple(str(v) for v in values or ()), int(count))
    return cache[(relation, column, size)]


def inspect_production(
    loaded: LoadedConfig,
    production: Production,
    manifest: Manifest,
    *,
    lock: Mapping[str, Any] | None = None,
    base: MaskingPolicy | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> Inspection:
    """The FK graph of the sources and every column's masking decision.

    Decision order per column: `masking.columns` in the config; the lock file (what a person
    reviewed); dbt meta and tags; column name; values (checked on a few distinct values). With
    a `base` policy (the main branch's, on a branch under review), each column is decided under
    both policies and keeps the stricter decision.
    """
    config = loaded.config
    with task(reporter, "inspect", "reading the dbt project's sources and keys"):
        _read_file_sources(loaded, production, manifest)
        sources = {node.display_name: node for node in manifest.sources.values()}
        relations = {
            name: Relation(node.schema or "main", node.identifier) for name, node in sources.items()
        }
        columns = {name: tuple(production.columns(rel)) for name, rel in relations.items()}
        missing = sorted(name for name, cols in columns.items() if not cols)
        if missing and production.absent is not None:
            raise _absent_production(production.absent, production.output)
        if missing:
            raise ProjectError(
                f"source table(s) {', '.join(missing)} not found in production",
                "fix the sources' schema/identifier in the dbt project, or load the tables",
            )
        extra = tuple(parse_edge_text(c, p) for c, p in config.sample.foreign_keys.items())
        from dataops_dev.file_sources import as_tables

        graph = build_graph(
            as_tables(manifest),
            source_columns={n: [c.name for c in cols] for n, cols in columns.items()},
            dialect=production.dialect,
            extra_edges=extra,
            primary_keys=config.sample.primary_keys,
            project_vars=read_project(loaded.project_dir).vars,
        )
        if graph.unmapped:
            reporter.message(
                "info",
                f"{len(graph.unmapped)} relationship test(s) between models do not trace back to "
                f"source columns (listed in {LOCK_FILE} by `init`)",
            )
    known = {f"{t}.{c.name}" for t, cs in columns.items() for c in cs}
    working = _PolicyInputs.of(config.masking, lock, None, known, check_unknown=True)
    sides = [working]
    if base is not None:
        sides.insert(0, _PolicyInputs.of(base.masking, base.lock, base.meta, known))
    # A branch cannot blind the value checks by shrinking the sample of values it looks at.
    sample_size = max(
        config.masking.value_sample_size, base.masking.value_sample_size if base else 0
    )
    classes: list[ColumnClass] = []
    new_columns: list[str] = []
    with task(reporter, "classify", "classifying columns", sum(len(c) for c in columns.values())):
        for name in sorted(columns):
            keys = graph.key_columns(name)
            for column in columns[name]:
                qualified = f"{name}.{column.name}"
                reporter.task_advanced("classify")
                if lock is not None and qualified not in working.locked:
                    new_columns.append(qualified)
                facts = _LazyFacts(production, relations[name], manifest, graph, name, column, keys)
                decisions = [side.decide(facts, sample_size) for side in sides]
                decided = decisions[0]
                for other in decisions[1:]:
                    decided = stricter(decided, other)
                classes.append(decided)
    anchors = tuple(config.sample.anchors) or graph.auto_anchors()
    return Inspection(
        graph=graph,
        columns=columns,
        classes=tuple(classes),
        anchors=anchors,
        new_columns=tuple(new_columns),
        seeds=project_seeds(manifest),
        files=tuple(
            sorted(
                name
                for name, rel in relations.items()
                if Relation(rel.schema, rel.name) in production.files
            )
        ),
    )


def _read_file_sources(loaded: LoadedConfig, production: Production, manifest: Manifest) -> None:
    """Read the project's file-backed sources into the session, once: from here on they are
    production tables like the others (same closure, classification and masking)."""
    from dataops_dev import file_sources

    if production.files:
        return
    found = file_sources.discover(manifest, loaded.project_dir)
    if not found:
        return
    if production.dialect != "duckdb":
        raise ConfigError(
            f"source(s) {', '.join(sorted(found))} read files, which only dbt-duckdb can",
            "sample them with a DuckDB production target",
        )
    production.files.update(file_sources.load(production.engine, found))
    production.file_stamps.update(
        {path: stamp for source in found.values() for path, stamp in source.stamps().items()}
    )


class _LazyFacts:
    """One column's facts; its values are read from production at most once, and only when a
    policy needs them."""

    def __init__(
        self,
        production: Production,
        relation: Relation,
        manifest: Manifest,
        graph: FkGraph,
        table: str,
        column: Column,
        keys: Any,
    ) -> None:
        self.production, self.relation, self.manifest, self.graph = (
            production,
            relation,
            manifest,
            graph,
        )
        self.table, self.column, self.is_key = table, column, column.name in keys
        self._values: tuple[tuple[str, ...], int | None] | None = None

    @property
    def qualified(self) -> str:
        return f"{self.table}.{self.column.name}"

    def manifest_meta(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        return _column_facts(self.manifest, self.graph, self.table, self.column)

    def values(self, size: int) -> tuple[tuple[str, ...], int | None]:
        if self._values is None:
            text_key = self.is_key and is_text_type(self.column.data_type)
            if value_checked(self.column.data_type) and (text_key or not self.is_key):
                if self.production.dialect == "spark":
                    self._values = _table_value_sample(
                        self.production, self.relation, self.column.name, size
                    )
                else:
                    self._values = _value_sample(
                        self.production, self.relation, self.column.name, size
                    )
            else:
                self._values = ((), None)
        return self._values


@dataclass(frozen=True)
class _PolicyInputs:
    """One side's masking inputs, parsed: configured rules, locked decisions, meta."""

    configured: Mapping[str, MaskRule]
    locked: Mapping[str, Any]
    has_lock: bool
    meta: Mapping[str, tuple[Mapping[str, Any], tuple[str, ...]]] | None
    default_free_text: MaskRule
    low_cardinality: int

    @classmethod
    def of(
        cls,
        masking: Any,
        lock: Mapping[str, Any] | None,
        meta: Mapping[str, tuple[Mapping[str, Any], tuple[str, ...]]] | None,
        known: set[str],
        *,
        check_unknown: bool = False,
    ) -> _PolicyInputs:
        configured = {
            key: MaskRule.parse(value, f"masking.columns.{key}")
            for key, value in masking.columns.items()
        }
        unknown = sorted(key for key in configured if key not in known)
        if unknown and check_unknown:
            raise ConfigError(
                f"masking.columns names unknown column(s): {', '.join(unknown)}",
                "write them as source_name.table_name.column_name",
            )
        return cls(
            configured=configured,
            locked=(lock or {}).get("columns") or {},
            has_lock=lock is not None,
            meta=meta,
            default_free_text=MaskRule.parse(
                masking.default_free_text, "masking.default_free_text"
            ),
            low_cardinality=masking.low_cardinality,
        )

    def decide(self, facts: _LazyFacts, value_sample_size: int) -> ColumnClass:
        table, name = facts.table, facts.column.name
        qualified = facts.qualified
        if qualified in self.configured:
            return ColumnClass(table, name, None, self.configured[qualified], Reason.CONFIG)
        if qualified in self.locked:
            return _from_lock(table, name, self.locked[qualified])
        meta: Mapping[str, Any]
        if self.meta is None:
            meta, tags = facts.manifest_meta()
        else:
            meta, tags = self.meta.get(qualified, ({}, ()))
        values, distinct = facts.values(value_sample_size)
        column_facts = ColumnFacts(
            table=table,
            column=name,
            data_type=facts.column.data_type,
            meta=meta,
            tags=tuple(tags),
            is_key=facts.is_key,
            distinct_values=values,
            distinct_count=distinct,
        )
        return classify_column(
            column_facts,
            default_free_text=self.default_free_text,
            low_cardinality=self.low_cardinality,
            new_column=self.has_lock,
        )


def _from_lock(table: str, column: str, entry: Any) -> ColumnClass:
    from dataops_dev.masking import PiiKind

    where = f"{LOCK_FILE} columns.{table}.{column}"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping", "run `dataops-dev init --force`")
    rule_spec = {
        "transformer": entry.get("transformer", "passthrough"),
        **(entry.get("options") or {}),
    }
    rule = MaskRule.parse(rule_spec, where)
    kind = entry.get("kind")
    try:
        reason = Reason(entry.get("reason", "config"))
    except ValueError:
        reason = Reason.CONFIG
    return ColumnClass(
        table,
        column,
        PiiKind(kind) if kind in {k.value for k in PiiKind} else None,
        rule,
        reason,
        str(entry.get("detail", "")),
    )


def read_lock(loaded: LoadedConfig) -> dict[str, Any] | None:

    path = lock_path(loaded)
    if not path.exists():
        return None
    from dataops_dev.statefiles import load_yaml

    data = load_yaml(
        path,
        what="lock file",
        fix="fix it, or write it again with `dataops-dev init --force`",
        shape=(dict, type(None)),
        error=ConfigError,
        max_bytes=64 * 1024 * 1024,  # one entry per source column
    )
    return data if isinstance(data, dict) else None


def lock_path(loaded: LoadedConfig) -> Path:
    """`dataops.lock.yml` next to the config file (or in the dbt project without one)."""
    return (loaded.project_dir if loaded.source == "defaults" else loaded.root) / LOCK_FILE


# --------------------------------------------------------------------------------------------
# The sample store


def samples_dir(loaded: LoadedConfig) -> Path:
    return loaded.state_dir / "samples"


def _project_files(loaded: LoadedConfig, suffixes: tuple[str, ...]) -> list[Path]:
    project = loaded.project_dir
    files = []
    for suffix in suffixes:
        for path in project.rglob(f"*{suffix}"):
            parts = path.relative_to(project).parts
            if loaded.state_dir in path.parents or parts[0] in ("target", "logs", "dbt_packages"):
                continue
            if any(part.startswith(".") for part in parts):
                continue
            # Recorded decisions do not change what the sample holds; our config is hashed
            # separately and the lock file below.
            if parts in (("dataops.approvals.yml",), ("dataops_dev.yml",), (LOCK_FILE,)):
                continue
            files.append(path)
    return sorted(files)


def _fingerprint(loaded: LoadedConfig, suffixes: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in _project_files(loaded, suffixes):
        digest.update(str(path.relative_to(loaded.project_dir)).encode())
        digest.update(path.read_bytes())
    lock = lock_path(loaded)
    if lock.exists():
        digest.update(lock.read_bytes())
    return digest.hexdigest()[:16]


def _project_fingerprint(loaded: LoadedConfig) -> str:
    """Changes when a file that declares sources, tests or keys changes (no dbt parse).

    SQL edits are left out on purpose: a model edit should not rebuild the sample; run
    `sample --refresh` when an edit changes how a model's relationship traces to its sources.
    """
    return _fingerprint(loaded, (".yml", ".yaml"))


def load_manifest(loaded: LoadedConfig, reporter: Reporter = NULL_REPORTER) -> Manifest:
    """The working tree's manifest: `dbt parse`, skipped when no project file changed since."""
    from dataops_dev.dbt.runner import parse_project

    key = _fingerprint(loaded, (".yml", ".yaml", ".sql", ".py"))
    path = loaded.state_dir / "parse" / "target" / "manifest.json"
    stamp = samples_dir(loaded) / "manifest.stamp"
    fresh = path.exists() and stamp.exists()
    # Compared as bytes: a garbage stamp is a stale one (the manifest is parsed again).
    if fresh and stamp.read_bytes() == f"{key}:{path.stat().st_mtime_ns}".encode():
        return Manifest.load(path)
    manifest = parse_project(loaded, reporter=reporter)
    write_text_atomic(stamp, f"{key}:{path.stat().st_mtime_ns}")
    return manifest


def _config_hash(loaded: LoadedConfig) -> str:
    config = loaded.config
    relevant = {
        "sample": as_plain(config.sample),
        "masking": as_plain(config.masking),
        "production": as_plain(config.production),
        "backend": {"type": config.backend.type, "sandbox": config.backend.sandbox_database},
    }
    text = json.dumps(relevant, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sample_id(
    loaded: LoadedConfig, salt: Salt, production_identity: str, policy: SamplePolicy | None = None
) -> str:
    parts = {
        "config": _config_hash(loaded),
        "policy": policy.fingerprint() if policy is not None else "-",
        "salt": salt.fingerprint,
        "versions": versions(),
        "production": production_identity,
        "project": _project_fingerprint(loaded),
    }
    text = json.dumps(parts, sort_keys=True)
    return "s" + hashlib.sha256(text.encode()).hexdigest()[:15]


@contextlib.contextmanager
def _sample_lock(loaded: LoadedConfig) -> Iterator[None]:
    from filelock import FileLock, Timeout

    locks = loaded.state_dir / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / "sample.lock"))
    try:
        lock.acquire(timeout=600)
    except Timeout as exc:
        raise LockedError(
            "another `dataops-dev sample` is running", "wait for it to finish, then retry"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _current_identity(loaded: LoadedConfig) -> str:
    output = load_profile_target(loaded)
    backend = _backend(output)
    if backend == "duckdb":
        return _file_identity(_duckdb_production_path(loaded, output, must_exist=False))
    if backend == "spark":
        from dataops_dev.engines.spark import SparkEngine

        with SparkEngine(_spark_remote(output)) as spark:
            return _spark_identity(spark, output, _source_relations(loaded))
    from dataops_dev.engines.postgres import PostgresEngine, conninfo_from_credentials

    engine = PostgresEngine(conninfo_from_credentials(output))
    try:
        return _postgres_identity(engine, output)
    finally:
        engine.close()


def _existing(loaded: LoadedConfig, sample_id: str) -> SampleRecord | None:
    """The recorded sample `sample_id` when its record and data are intact, else None: a
    corrupt record or sample file is rebuilt (the sample is derived), never reused."""
    from dataops_dev.statefiles import read_cache_json

    directory = samples_dir(loaded)
    record = _intact_record(read_cache_json(directory / f"{sample_id}.json"), sample_id)
    if record is None:
        return None
    if _files_changed(record):
        return None
    if record.backend == "duckdb":
        return record if _intact_sample_file(record) else None
    pointer = SPARK_POINTER if record.backend == "spark" else "warehouse-current.json"
    current = read_cache_json(directory / pointer)
    if current is None or current.get("sample_id") != sample_id:
        return None
    if record.backend == "spark":
        if current.get("schemas") != dict(record.schemas):
            return None
        return record if _intact_spark_sample(loaded, record) else None
    return record


def _intact_spark_sample(loaded: LoadedConfig, record: SampleRecord) -> bool:
    """Every table the record lists is still in its version's schema (a schema dropped by hand,
    or by a clean-up that took it for something else, means building the sample again)."""
    from dataops_dev.engines.spark import SparkEngine

    wanted: dict[str, set[str]] = {}
    for relation in record.relations:
        schema = record.schemas.get(relation.schema)
        if schema is None:
            return False
        wanted.setdefault(schema, set()).add(relation.name.lower())
    with SparkEngine(_spark_remote(load_profile_target(loaded))) as spark:
        for schema, names in wanted.items():
            present = {r.name.lower() for r in spark.list_relations(schema)}
            if not names <= present:
                return False
    return True


def _files_changed(record: SampleRecord) -> bool:
    """A production file the sample was read from changed since (a missing one did not: the
    sample stays usable without production's files)."""
    from dataops_dev.file_sources import current_stamps

    now = current_stamps(tuple(record.file_stamps))
    return any(stamp is not None and stamp != record.file_stamps[p] for p, stamp in now.items())


def _missing_files(record: SampleRecord) -> tuple[str, ...]:
    from dataops_dev.file_sources import current_stamps

    return tuple(p for p, stamp in current_stamps(tuple(record.file_stamps)).items() if not stamp)


def _intact_record(data: Mapping[str, Any] | None, sample_id: str) -> SampleRecord | None:
    if data is None or data.get("sample_id") != sample_id:
        return None
    try:
        record = SampleRecord.from_json(data, reused=True)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if record.backend not in ("duckdb", "warehouse", "spark") or not isinstance(
        record.location, str
    ):
        return None
    return record


def _intact_sample_file(record: SampleRecord) -> bool:
    """A readable, whole DuckDB file holding every relation the record lists."""
    import duckdb

    from dataops_dev.statefiles import InvalidFile, check_duckdb_connection

    path = Path(record.location)
    if path.name != f"{record.sample_id}.duckdb" or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            if handle.read(12)[8:12] != b"DUCK":
                return False
        with duckdb.connect(str(path), read_only=True) as connection:
            present = set(
                connection.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
            )
            check_duckdb_connection(connection, path)
    except (OSError, duckdb.Error, InvalidFile):
        return False
    return all((r.schema, r.name) in present for r in record.relations)


def ensure_sample(
    loaded: LoadedConfig, *, refresh: bool = False, reporter: Reporter = NULL_REPORTER
) -> SampleRecord:
    """The sample of production's current snapshot: reused when it exists, else built.

    Raises `SaltError` when the salt's environment variable is unset (before reading anything).
    """
    policy = sample_policy(loaded)
    # The salt's variable is the base's: a branch must not point it at a value it knows.
    salt = Salt.from_env(policy.salt_env)
    reporter.message("info", f"masking policy: {policy.label}")
    with _sample_lock(loaded):
        identity = _current_identity(loaded)
        sample_id = _sample_id(loaded, salt, identity, policy)
        if not refresh:
            existing = _existing(loaded, sample_id)
            if existing is not None:
                reporter.message("info", f"reusing sample {sample_id} ({existing.created_at})")
                missing = _missing_files(existing)
                if missing:
                    reporter.message(
                        "warning",
                        f"{len(missing)} production file(s) the sample was read from are gone "
                        f"(e.g. {missing[0]}): reusing the sample; `sample --refresh` needs them",
                    )
                return existing
        return _build(loaded, salt, sample_id, reporter, policy)


def _build(
    loaded: LoadedConfig,
    salt: Salt,
    sample_id: str,
    reporter: Reporter,
    policy: SamplePolicy | None = None,
) -> SampleRecord:
    manifest = load_manifest(loaded, reporter)
    policy = policy or SamplePolicy(working=working_policy(loaded))
    directory = samples_dir(loaded)
    directory.mkdir(parents=True, exist_ok=True)
    output = load_profile_target(loaded)
    backend = _backend(output)
    if backend == "duckdb":
        return _build_duckdb(loaded, salt, sample_id, manifest, policy, reporter)
    if backend == "spark":
        return _build_spark(loaded, salt, sample_id, manifest, policy, reporter)
    return _build_warehouse(loaded, salt, sample_id, manifest, policy, reporter)


def _run(
    loaded: LoadedConfig,
    production: Production,
    manifest: Manifest,
    policy: SamplePolicy,
    salt: Salt,
    writer_factory: Any,
    reporter: Reporter,
) -> tuple[Inspection, SampleOutcome, dict[str, Relation]]:
    inspection = inspect_production(
        loaded,
        production,
        manifest,
        lock=policy.working.lock,
        base=policy.base,
        reporter=reporter,
    )
    for qualified, transformer, why in _unconfirmed(inspection, policy):
        reporter.message("info", f"{qualified}: {transformer} ({why})")
    if inspection.new_columns:
        shown = ", ".join(inspection.new_columns[:10])
        more = (
            f" (+{len(inspection.new_columns) - 10} more)"
            if len(inspection.new_columns) > 10
            else ""
        )
        if loaded.config.masking.strict or (policy.base and policy.base.masking.strict):
            raise ConfigError(
                f"unclassified column(s) not in {LOCK_FILE}: {shown}{more}",
                "review them with `dataops-dev init --force` (or set masking.columns), then commit "
                "the lock file",
            )
        reporter.message("warning", f"new column(s) classified automatically: {shown}{more}")
    relations = {
        name: Relation(table.relation.schema, table.relation.name)
        for name, table in inspection.graph.tables.items()
    }
    sources = {name: production.table(rel) for name, rel in relations.items()}
    with task(reporter, "count", "counting production rows"):
        counts = production_counts(production.engine, sources)
    plan = plan_sample(
        inspection.graph,
        columns=inspection.columns,
        sources=sources,
        config=loaded.config.sample,
        masks=inspection.classes,
        production_rows=counts,
        dialect=production.dialect,
    )
    writer = writer_factory(relations)
    outcome = run_sample(
        plan,
        work=production.engine,
        writer=writer,
        salt=salt,
        production_rows=counts,
        reporter=reporter,
    )
    if outcome.orphans:
        bad = ", ".join(f"{t.table} ({t.orphans})" for t in outcome.tables if t.orphans)
        raise DataopsError(
            f"the sample has orphan rows: {bad}", "report this: the closure must leave none"
        )
    return inspection, outcome, relations


def _unconfirmed(inspection: Inspection, policy: SamplePolicy) -> tuple[tuple[str, str, str], ...]:
    """(column, transformer, why) of every column no reviewed lock file confirms: what the
    sample decided on its own, said out loud."""
    locks = [policy.working.lock] + ([policy.base.lock] if policy.base is not None else [])
    if all(lock is None for lock in locks):
        return ()
    confirmed = {
        str(key) for lock in locks if lock is not None for key in (lock.get("columns") or {})
    }
    return tuple(
        (
            c.qualified,
            c.rule.describe(),
            f"{c.reason.value}: {c.detail}" if c.detail else c.reason.value,
        )
        for c in inspection.classes
        if c.qualified not in confirmed
    )


def _record(
    loaded: LoadedConfig,
    salt: Salt,
    sample_id: str,
    backend: Literal["duckdb", "warehouse", "spark"],
    location: str,
    production: Production,
    inspection: Inspection,
    outcome: SampleOutcome,
    relations: Mapping[str, Relation],
    policy: SamplePolicy,
    schemas: Mapping[str, str] | None = None,
) -> SampleRecord:
    return SampleRecord(
        sample_id=sample_id,
        backend=backend,
        location=location,
        created_at=utc_now(),
        snapshot_time=production.snapshot_time,
        salt_env=salt.variable,
        salt_fingerprint=salt.fingerprint,
        versions=versions(),
        config_hash=_config_hash(loaded),
        production_identity=production.identity,
        anchors=inspection.anchors,
        tables=outcome.tables,
        relations=tuple(sorted(relations.values())),
        timings=outcome.timings,
        masked_rows=outcome.masked_rows,
        new_columns=inspection.new_columns,
        files=inspection.files,
        seeds=inspection.seeds,
        file_stamps=dict(sorted(production.file_stamps.items())),
        policy=policy.label,
        decided=_unconfirmed(inspection, policy),
        schemas=dict(sorted((schemas or {}).items())),
    )


def _build_duckdb(
    loaded: LoadedConfig,
    salt: Salt,
    sample_id: str,
    manifest: Manifest,
    policy: SamplePolicy,
    reporter: Reporter,
) -> SampleRecord:
    directory = samples_dir(loaded)
    final = directory / f"{sample_id}.duckdb"
    tmp = directory / f".{sample_id}.duckdb.tmp-{os.getpid()}"
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    try:
        with open_production(loaded, work_file=tmp) as production:
            inspection, outcome, relations = _run(
                loaded,
                production,
                manifest,
                policy,
                salt,
                lambda rels: DuckDBSampleWriter(production.engine, rels),
                reporter,
            )
            if production.absent is None:
                production.engine.execute(f"DETACH {PRODUCTION_ALIAS}")
            if production.files:
                from dataops_dev.file_sources import FILES_ALIAS

                production.engine.execute(f"DETACH {FILES_ALIAS}")
            production.engine.execute("CHECKPOINT")
        record = _record(
            loaded,
            salt,
            sample_id,
            "duckdb",
            str(final),
            production,
            inspection,
            outcome,
            relations,
            policy,
        )
        # Readers only ever see a complete sample: the file appears whole or not at all, with
        # its record, and never after a signal (DuckDB turns one into "Query interrupted").
        with interrupts.publishing():
            os.replace(tmp, final)
            write_json_atomic(directory / f"{sample_id}.json", record.to_json())
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return record


def sandbox_database(loaded: LoadedConfig) -> str:
    """The warehouse sandbox database, where the sample and every environment live.

    `backend.sandbox_database`, else `<production database>_dataops`; always compared with the
    production target's database (not `backend.target`'s), which it must never be.
    """
    production = database_name_of(load_profile_target(loaded))
    configured = loaded.config.backend.sandbox_database
    if not configured and not production:
        raise ConfigError(
            f"the `{loaded.config.production.target}` target names no database",
            "set backend.sandbox_database in dataops_dev.yml",
        )
    sandbox = configured or f"{production}_dataops"
    if sandbox == production:
        raise ConfigError(
            "backend.sandbox_database is production's database",
            "the sample and environments must never be written into production: "
            "name another database",
        )
    return sandbox


def _sandbox_engine(loaded: LoadedConfig, name: str) -> Any:
    from psycopg import sql

    from dataops_dev.engines.postgres import PostgresEngine, conninfo_from_credentials

    credentials = load_profile_target(loaded, loaded.config.backend.target or None)
    try:
        return PostgresEngine(conninfo_from_credentials(credentials, name))
    except EngineError as exc:
        if "does not exist" not in str(exc):
            raise
    admin = PostgresEngine(conninfo_from_credentials(credentials, "postgres"))
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)).as_string())
    finally:
        admin.close()
    return PostgresEngine(conninfo_from_credentials(credentials, name))


def _build_warehouse(
    loaded: LoadedConfig,
    salt: Salt,
    sample_id: str,
    manifest: Manifest,
    policy: SamplePolicy,
    reporter: Reporter,
) -> SampleRecord:
    sandbox_name = sandbox_database(loaded)
    sandbox = _sandbox_engine(loaded, sandbox_name)
    try:
        with open_production(loaded) as production:
            writers: list[PostgresSampleWriter] = []

            def factory(rels: Mapping[str, Relation]) -> PostgresSampleWriter:
                writer = PostgresSampleWriter(production.engine, sandbox, rels)
                writers.append(writer)
                return writer

            inspection, outcome, relations = _run(
                loaded, production, manifest, policy, salt, factory, reporter
            )
            with task(reporter, "publish", f"publishing the sample into {sandbox_name}"):
                interrupts.check()  # never after a signal, whatever swallowed it
                writers[0].publish()
    finally:
        sandbox.close()
    record = _record(
        loaded,
        salt,
        sample_id,
        "warehouse",
        sandbox_name,
        production,
        inspection,
        outcome,
        relations,
        policy,
    )
    directory = samples_dir(loaded)
    write_json_atomic(directory / f"{sample_id}.json", record.to_json())
    write_json_atomic(directory / "warehouse-current.json", {"sample_id": sample_id})
    return record


SPARK_POINTER = "spark-current.json"
"""The recorded pointer to the current Spark sample: its id and the schemas of its version."""


def spark_sandbox_prefix(loaded: LoadedConfig, production_schemas: Sequence[str] = ()) -> str:
    """The Spark sandbox's schema prefix (`backend.sandbox_database`, default `dataops`), refused
    when a production schema (the target's, or a source's) falls under it."""
    from dataops_dev.spark_layout import check_not_production, sandbox_prefix

    output = load_profile_target(loaded)
    prefix = sandbox_prefix(loaded.config.backend.sandbox_database)
    check_not_production(prefix, [str(output.get("schema") or ""), *production_schemas])
    return prefix


def _check_spark_backend(loaded: LoadedConfig, output: Mapping[str, Any]) -> None:
    """The sample is written where production is read (masking runs there; no row leaves it):
    environments must live on that same Spark."""
    if loaded.config.backend.type != "warehouse":
        raise ConfigError(
            "a Spark production target needs backend.type: warehouse",
            "set backend.type: warehouse in dataops_dev.yml: the sample and the environments "
            "live in schemas of the same Spark",
        )
    target = loaded.config.backend.target
    if target:
        sandbox = load_profile_target(loaded, target)
        if sandbox.get("type") != "spark" or _spark_address(sandbox) != _spark_address(output):
            raise ConfigError(
                f"backend.target {target!r} is not production's Spark",
                "on Spark the sample and environments live beside production (a schema prefix): "
                "leave backend.target unset or point it at the same spark.remote",
            )


def _build_spark(
    loaded: LoadedConfig,
    salt: Salt,
    sample_id: str,
    manifest: Manifest,
    policy: SamplePolicy,
    reporter: Reporter,
) -> SampleRecord:
    """Sample inside production's Spark, into a new version of the sample schemas, then move the
    recorded pointer to it: until then the previous sample is the current one, whole."""
    from dataops_dev.sampling import SparkSampleWriter, SparkWorkSession
    from dataops_dev.spark_layout import sample_scratch_schema

    output = load_profile_target(loaded)
    _check_spark_backend(loaded, output)
    sources = [n.schema or "default" for n in manifest.sources.values()]
    prefix = spark_sandbox_prefix(loaded, sources)
    version = uuid.uuid4().hex[:12]
    scratch = sample_scratch_schema(prefix, version)
    directory = samples_dir(loaded)
    with open_production(loaded) as production:
        engine = production.engine
        session = SparkWorkSession(engine, scratch)
        writers: list[SparkSampleWriter] = []

        def factory(rels: Mapping[str, Relation]) -> SparkSampleWriter:
            # The writer reads the work tables: through the session that places them.
            writers.append(SparkSampleWriter(session, rels, prefix, version))
            return writers[-1]

        engine.execute(exp.Create(this=_schema_table(scratch), kind="SCHEMA", exists=True))
        work = replace(production, engine=session)
        published = False
        try:
            inspection, outcome, relations = _run(
                loaded, work, manifest, policy, salt, factory, reporter
            )
            with task(reporter, "publish", f"publishing the sample under {prefix}__sample__"):
                _check_unchanged(production, loaded)
                interrupts.check()  # never after a signal, whatever swallowed it
                writer = writers[0]
                record = _record(
                    loaded,
                    salt,
                    sample_id,
                    "spark",
                    prefix,
                    production,
                    inspection,
                    outcome,
                    relations,
                    policy,
                    writer.schemas,
                )
                with interrupts.publishing():
                    write_json_atomic(directory / f"{sample_id}.json", record.to_json())
                    write_json_atomic(
                        directory / SPARK_POINTER,
                        {"sample_id": sample_id, "schemas": dict(record.schemas)},
                    )
                    published = True
                _tidy_spark(writer, reporter)
        finally:
            with contextlib.suppress(EngineError):
                engine.execute(
                    exp.Drop(
                        tables=[_schema_table(scratch)], kind="SCHEMA", exists=True, cascade=True
                    )
                )
            if not published and writers:
                with contextlib.suppress(EngineError):
                    writers[0].discard()
    return record


def _tidy_spark(writer: Any, reporter: Reporter) -> None:
    """After the pointer moved: the stable views follow it and older versions go. The sample is
    published either way; what failed here is redone by the next sample."""
    try:
        writer.point_views()
        writer.retire()
    except EngineError as exc:
        reporter.message(
            "warning",
            f"the sample is published, but tidying the sandbox failed ({exc.message}): "
            "the views under the stable sample schemas may point at an older sample until the "
            "next `dataops-dev sample --refresh`",
        )


def _schema_table(name: str) -> exp.Table:
    return exp.Table(db=exp.to_identifier(name, quoted=True))


def _check_unchanged(production: Production, loaded: LoadedConfig) -> None:
    """Spark: fail when production was written while it was sampled (no snapshot to read)."""
    now = _spark_identity(production.engine, production.output, _source_relations(loaded))
    if now != production.identity:
        raise DataopsError(
            "production's source tables changed while they were sampled: the sample could mix "
            "two states of them, so it was not published (the previous sample is kept)",
            "run `dataops-dev sample` again when production's loads are done",
        )


# --------------------------------------------------------------------------------------------
# What is (not) sampled and masked


def seeds_upstream(manifest: Manifest, unique_ids: Sequence[str]) -> tuple[str, ...]:
    """The seeds that the given nodes read, directly or through other models."""
    nodes = manifest.nodes
    seen: set[str] = set()
    stack = list(unique_ids)
    seeds: set[str] = set()
    while stack:
        uid = stack.pop()
        if uid in seen:
            continue
        seen.add(uid)
        node = nodes.get(uid)
        if node is None:
            continue
        if node.resource_type == "seed":
            seeds.add(node.name)
        stack.extend(node.depends_on_nodes)
    return tuple(sorted(seeds))


def data_notes(sources: int, masked_columns: int, seeds: Sequence[str]) -> tuple[str, ...]:
    """What `init` and `sample` tell about the project's data: what is sampled, what is masked.

    Seeds are committed to the repository (anyone with a clone already has them), so they are
    not production data: environments load them as they are and they are never masked.
    """
    notes = []
    if sources == 0:
        notes.append(
            "the dbt project declares no sources: there is nothing to sample or mask "
            "(environments build from the project's seeds and code alone)"
        )
    elif masked_columns == 0:
        notes.append(f"{sources} source table(s) sampled; no column needed masking")
    if seeds:
        shown = ", ".join(seeds[:8]) + (f" (+{len(seeds) - 8} more)" if len(seeds) > 8 else "")
        notes.append(
            f"{len(seeds)} seed(s) ({shown}) are committed data, not sampled or masked: "
            "environments load them as they are, and examples drawn from them are not "
            "labelled masked"
        )
    return tuple(notes)


def project_seeds(manifest: Manifest) -> tuple[str, ...]:
    return tuple(sorted(n.name for n in manifest.nodes.values() if n.resource_type == "seed"))


# --------------------------------------------------------------------------------------------
# The seam with environments


def resolve_source_data(
    loaded: LoadedConfig,
    *,
    reporter: Reporter = NULL_REPORTER,
    refresh: bool = False,
) -> SourceData:
    """The source data environments build on: the masked sample (built if missing or stale).

    Production is opened read-only and only to build the sample. A missing salt raises
    `SaltError` (exit 2) naming the environment variable.
    """
    record = ensure_sample(loaded, refresh=refresh, reporter=reporter)
    if record.backend == "duckdb":
        return SourceData(
            kind="sample",
            identity=record.identity,
            relations=record.relations,
            duckdb_file=Path(record.location),
            masked_columns=record.masked_columns,
            file_sources=record.files,
        )
    if record.backend == "spark":
        return SourceData(
            kind="sample",
            identity=record.sample_id,
            relations=record.relations,
            masked_columns=record.masked_columns,
            sandbox_prefix=record.location,
            sample_schemas=dict(record.schemas),
        )
    return SourceData(
        kind="sample",
        identity=record.sample_id,
        relations=record.relations,
        sandbox_database=record.location,
        masked_columns=record.masked_columns,
    )


__all__: Sequence[str] = (
    "LOCK_FILE",
    "SOURCE_ALIAS",
    "Inspection",
    "Production",
    "SampleRecord",
    "SourceData",
    "data_notes",
    "ensure_sample",
    "inspect_production",
    "lock_path",
    "open_production",
    "read_lock",
    "resolve_source_data",
    "sandbox_database",
    "seeds_upstream",
)
