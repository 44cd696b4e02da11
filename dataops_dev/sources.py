"""Where an environment's dbt `source()`s read from: the masked sample, built once per snapshot.

DuckDB: environments attach `<state_dir>/samples/<id>.duckdb` read-only as `SOURCE_ALIAS`.
Warehouse: the sample is published into the sandbox database under production's source schemas.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlglot import exp

from dataops_dev import interrupts
from dataops_dev.atomic import write_json_atomic, write_text_atomic
from dataops_dev.config import LoadedConfig
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


@dataclass(frozen=True)
class SampleRecord:
    """The run manifest of one sample: what it was built from and what it holds (no secrets)."""

    sample_id: str
    backend: Literal["duckdb", "warehouse"]
    location: str
    """The sample file (DuckDB) or the sandbox database (warehouse)."""
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
    reused: bool = False

    @property
    def orphans(self) -> int:
        return sum(t.orphans for t in self.tables)

    @property
    def mask_rows_per_s(self) -> float | None:
        """Masked rows (rows of tables with masked columns) per second of the mask step."""
        seconds = self.timings.get("mask", 0.0)
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
            reused=reused,
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
    backend: Literal["duckdb", "warehouse"]
    identity: str
    snapshot_time: str
    catalog: str | None = None
    """DuckDB: the alias production is attached under in the work connection."""
    output: Mapping[str, Any] = field(default_factory=dict)

    def table(self, relation: Relation) -> exp.Table:
        return exp.table_(relation.name, db=relation.schema, catalog=self.catalog, quoted=True)

    def columns(self, relation: Relation) -> list[Column]:
        return self.engine.columns(Relation(relation.schema, relation.name, self.catalog))


def _duckdb_production_path(loaded: LoadedConfig, output: Mapping[str, Any]) -> Path:
    from dataops_dev.dbt.project import duckdb_path

    path = duckdb_path(loaded, output)
    if not path.exists():
        raise ProjectError(
            f"production database {path} does not exist",
            f"check the `{output.get('_target_name')}` target's path in profiles.yml",
        )
    return path


def _file_identity(path: Path) -> str:
    parts = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            stat = candidate.stat()
            parts.append(f"{candidate.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "duckdb:" + str(path) + ":" + ",".join(parts)


def _backend(output: Mapping[str, Any]) -> Literal["duckdb", "warehouse"]:
    if output.get("type") == "duckdb":
        return "duckdb"
    if output.get("type") == "postgres":
        return "warehouse"
    raise ConfigError(
        f"production target type {output.get('type')!r} is not supported yet",
        "dataops-dev samples DuckDB and PostgreSQL production targets",
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


@contextlib.contextmanager
def open_production(loaded: LoadedConfig, *, work_file: Path | None = None) -> Iterator[Production]:
    """Production's sources, read-only, in one snapshot.

    DuckDB: with `work_file`, that (writable) file is opened and production attached READ_ONLY
    under `PRODUCTION_ALIAS`; without, production itself is opened read-only. PostgreSQL: one
    REPEATABLE READ transaction, rolled back at the end (its temporary tables vanish with it).
    """
    output = load_profile_target(loaded)
    backend = _backend(output)
    if backend == "duckdb":
        from dataops_dev.engines.duckdb import DuckDBEngine

        path = _duckdb_production_path(loaded, output)
        identity = _file_identity(path)
        if work_file is None:
            engine = DuckDBEngine(path, read_only=True)
            catalog = None
        else:
            engine = DuckDBEngine(work_file)
            engine.attach(path, PRODUCTION_ALIAS, read_only=True)
            catalog = PRODUCTION_ALIAS
        try:
            yield Production(engine, "duckdb", "duckdb", identity, utc_now(), catalog, output)
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


def inspect_production(
    loaded: LoadedConfig,
    production: Production,
    manifest: Manifest,
    *,
    lock: Mapping[str, Any] | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> Inspection:
    """The FK graph of the sources and every column's masking decision.

    Decision order per column: `masking.columns` in the config; the lock file (what a person
    reviewed); dbt meta and tags; column name; values (checked on a few distinct values).
    """
    config = loaded.config
    with task(reporter, "inspect", "reading the dbt project's sources and keys"):
        sources = {node.display_name: node for node in manifest.sources.values()}
        relations = {
            name: Relation(node.schema or "main", node.identifier) for name, node in sources.items()
        }
        columns = {name: tuple(production.columns(rel)) for name, rel in relations.items()}
        missing = sorted(name for name, cols in columns.items() if not cols)
        if missing:
            raise ProjectError(
                f"source table(s) {', '.join(missing)} not found in production",
                "fix the sources' schema/identifier in the dbt project, or load the tables",
            )
        extra = tuple(parse_edge_text(c, p) for c, p in config.sample.foreign_keys.items())
        graph = build_graph(
            manifest,
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
    configured: dict[str, MaskRule] = {}
    for key, value in config.masking.columns.items():
        configured[key] = MaskRule.parse(value, f"masking.columns.{key}")
    unknown = sorted(
        key
        for key in configured
        if key not in {f"{t}.{c.name}" for t, cs in columns.items() for c in cs}
    )
    if unknown:
        raise ConfigError(
            f"masking.columns names unknown column(s): {', '.join(unknown)}",
            "write them as source_name.table_name.column_name",
        )
    default_free_text = MaskRule.parse(
        config.masking.default_free_text, "masking.default_free_text"
    )
    locked_columns: Mapping[str, Any] = (lock or {}).get("columns") or {}
    classes: list[ColumnClass] = []
    new_columns: list[str] = []
    with task(reporter, "classify", "classifying columns", sum(len(c) for c in columns.values())):
        for name in sorted(columns):
            keys = graph.key_columns(name)
            for column in columns[name]:
                qualified = f"{name}.{column.name}"
                reporter.task_advanced("classify")
                if qualified in configured:
                    classes.append(
                        ColumnClass(name, column.name, None, configured[qualified], Reason.CONFIG)
                    )
                    continue
                if qualified in locked_columns:
                    classes.append(_from_lock(name, column.name, locked_columns[qualified]))
                    continue
                if lock is not None:
                    new_columns.append(qualified)
                meta, tags = _column_facts(manifest, graph, name, column)
                values: tuple[str, ...] = ()
                distinct: int | None = None
                if is_text_type(column.data_type) and column.name not in keys:
                    values, distinct = _value_sample(
                        production, relations[name], column.name, config.masking.value_sample_size
                    )
                facts = ColumnFacts(
                    table=name,
                    column=column.name,
                    data_type=column.data_type,
                    meta=meta,
                    tags=tags,
                    is_key=column.name in keys,
                    distinct_values=values,
                    distinct_count=distinct,
                )
                classes.append(
                    classify_column(
                        facts,
                        default_free_text=default_free_text,
                        low_cardinality=config.masking.low_cardinality,
                    )
                )
    anchors = tuple(config.sample.anchors) or graph.auto_anchors()
    return Inspection(
        graph=graph,
        columns=columns,
        classes=tuple(classes),
        anchors=anchors,
        new_columns=tuple(new_columns),
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
    import yaml

    path = lock_path(loaded)
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path} is not valid YAML: {exc}", "run `dataops-dev init --force`"
        ) from exc
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
    if fresh and stamp.read_text(encoding="utf-8") == f"{key}:{path.stat().st_mtime_ns}":
        return Manifest.load(path)
    manifest = parse_project(loaded, reporter=reporter)
    write_text_atomic(stamp, f"{key}:{path.stat().st_mtime_ns}")
    return manifest


def _plain(value: Any) -> Any:
    """Dataclasses, mappings (also read-only proxies) and tuples as JSON-ready values."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _config_hash(loaded: LoadedConfig) -> str:
    config = loaded.config
    relevant = {
        "sample": _plain(config.sample),
        "masking": _plain(config.masking),
        "production": _plain(config.production),
        "backend": {"type": config.backend.type, "sandbox": config.backend.sandbox_database},
    }
    text = json.dumps(relevant, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sample_id(loaded: LoadedConfig, salt: Salt, production_identity: str) -> str:
    parts = {
        "config": _config_hash(loaded),
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
    if _backend(output) == "duckdb":
        return _file_identity(_duckdb_production_path(loaded, output))
    from dataops_dev.engines.postgres import PostgresEngine, conninfo_from_credentials

    engine = PostgresEngine(conninfo_from_credentials(output))
    try:
        return _postgres_identity(engine, output)
    finally:
        engine.close()


def _existing(loaded: LoadedConfig, sample_id: str) -> SampleRecord | None:
    directory = samples_dir(loaded)
    record_path = directory / f"{sample_id}.json"
    if not record_path.exists():
        return None
    data = json.loads(record_path.read_text(encoding="utf-8"))
    record = SampleRecord.from_json(data, reused=True)
    if record.backend == "duckdb":
        return record if Path(record.location).exists() else None
    current = directory / "warehouse-current.json"
    if not current.exists():
        return None
    if json.loads(current.read_text(encoding="utf-8")).get("sample_id") != sample_id:
        return None
    return record


def ensure_sample(
    loaded: LoadedConfig, *, refresh: bool = False, reporter: Reporter = NULL_REPORTER
) -> SampleRecord:
    """The sample of production's current snapshot: reused when it exists, else built.

    Raises `SaltError` when the salt's environment variable is unset (before reading anything).
    """
    salt = Salt.from_env(loaded.config.sample.salt_env)
    with _sample_lock(loaded):
        identity = _current_identity(loaded)
        sample_id = _sample_id(loaded, salt, identity)
        if not refresh:
            existing = _existing(loaded, sample_id)
            if existing is not None:
                reporter.message("info", f"reusing sample {sample_id} ({existing.created_at})")
                return existing
        return _build(loaded, salt, sample_id, reporter)


def _build(loaded: LoadedConfig, salt: Salt, sample_id: str, reporter: Reporter) -> SampleRecord:
    manifest = load_manifest(loaded, reporter)
    lock = read_lock(loaded)
    directory = samples_dir(loaded)
    directory.mkdir(parents=True, exist_ok=True)
    output = load_profile_target(loaded)
    if _backend(output) == "duckdb":
        return _build_duckdb(loaded, salt, sample_id, manifest, lock, reporter)
    return _build_warehouse(loaded, salt, sample_id, manifest, lock, reporter)


def _run(
    loaded: LoadedConfig,
    production: Production,
    manifest: Manifest,
    lock: Mapping[str, Any] | None,
    salt: Salt,
    writer_factory: Any,
    reporter: Reporter,
) -> tuple[Inspection, SampleOutcome, dict[str, Relation]]:
    inspection = inspect_production(loaded, production, manifest, lock=lock, reporter=reporter)
    if inspection.new_columns:
        shown = ", ".join(inspection.new_columns[:10])
        more = (
            f" (+{len(inspection.new_columns) - 10} more)"
            if len(inspection.new_columns) > 10
            else ""
        )
        if loaded.config.masking.strict:
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


def _record(
    loaded: LoadedConfig,
    salt: Salt,
    sample_id: str,
    backend: Literal["duckdb", "warehouse"],
    location: str,
    production: Production,
    inspection: Inspection,
    outcome: SampleOutcome,
    relations: Mapping[str, Relation],
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
    )


def _build_duckdb(
    loaded: LoadedConfig,
    salt: Salt,
    sample_id: str,
    manifest: Manifest,
    lock: Mapping[str, Any] | None,
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
                lock,
                salt,
                lambda rels: DuckDBSampleWriter(production.engine, rels),
                reporter,
            )
            production.engine.execute(f"DETACH {PRODUCTION_ALIAS}")
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
    lock: Mapping[str, Any] | None,
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
                loaded, production, manifest, lock, salt, factory, reporter
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
    )
    directory = samples_dir(loaded)
    write_json_atomic(directory / f"{sample_id}.json", record.to_json())
    write_json_atomic(directory / "warehouse-current.json", {"sample_id": sample_id})
    return record


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
            identity=record.sample_id,
            relations=record.relations,
            duckdb_file=Path(record.location),
        )
    return SourceData(
        kind="sample",
        identity=record.sample_id,
        relations=record.relations,
        sandbox_database=record.location,
    )


__all__: Sequence[str] = (
    "LOCK_FILE",
    "SOURCE_ALIAS",
    "Inspection",
    "Production",
    "SampleRecord",
    "SourceData",
    "ensure_sample",
    "inspect_production",
    "lock_path",
    "open_production",
    "read_lock",
    "resolve_source_data",
    "sandbox_database",
)
