"""Gated promotion to production: write, audit, publish — or leave production exactly as it was.

Deploy refuses while the branch's review has unapproved blocking findings or is stale. Then it
builds the modified models and their children into a staging area of the production target,
runs their tests there, and only then swaps the result into place in one step. DuckDB: the
staging area is a copy of the production file, swapped in with an atomic rename. PostgreSQL:
staging schemas whose relations are moved into production's schemas in one transaction.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataops_dev import interrupts
from dataops_dev.atomic import write_bytes_atomic, write_json_atomic
from dataops_dev.config import LoadedConfig
from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.dbt.project import load_profile_target
from dataops_dev.environments import write_profile
from dataops_dev.errors import BlockingFindings, BuildError, ProjectError, UsageError
from dataops_dev.report.model import Finding, ModelStatus, Report, Verdict
from dataops_dev.reporting import NULL_REPORTER, Reporter

if TYPE_CHECKING:
    from dataops_dev.dbt.runner import DbtRun

STAGING_SUFFIX = "__dataops_deploy"


@dataclass(frozen=True)
class PlannedModel:
    name: str
    unique_id: str
    action: str
    """"build" (changed), "rebuild" (downstream of a change) or "drop" (removed)."""
    materialized: str | None
    expected_rows: int | None = None
    """Rows on the branch's sample build (the sample, not production)."""
    row_change: str | None = None


@dataclass(frozen=True)
class DeployPlan:
    target: str
    target_type: str
    commit: str
    models: tuple[PlannedModel, ...]
    blocked_by: tuple[Finding, ...] = ()
    stale: str | None = None
    """Why the review does not describe the code being deployed, if it does not."""
    error: str | None = None
    """Why the review did not finish (the branch did not build), if it did not: nothing it
    reports was checked, so no approval can stand in for it."""

    @property
    def allowed(self) -> bool:
        return not self.blocked_by and self.stale is None and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_type": self.target_type,
            "commit": self.commit,
            "allowed": self.allowed,
            "stale": self.stale,
            "error": self.error,
            "blocked_by": [
                {
                    "fingerprint": f.fingerprint,
                    "kind": f.kind.value,
                    "model": f.model,
                    "title": f.title,
                }
                for f in self.blocked_by
            ],
            "models": [
                {
                    "name": m.name,
                    "action": m.action,
                    "materialized": m.materialized,
                    "expected_rows": m.expected_rows,
                    "row_change": m.row_change,
                }
                for m in self.models
            ],
        }


@dataclass(frozen=True)
class DeployResult:
    plan: DeployPlan
    deployed_at: str
    record: Path
    timings: Mapping[str, float] = field(default_factory=dict)


def production_manifest_path(loaded: LoadedConfig) -> Path:
    """Production's manifest: the last deploy's (or demo's), else `dbt parse` of the main branch
    with the production target (parsing reads no data)."""
    configured = loaded.config.production.manifest
    if configured:
        path = Path(configured)
        path = path if path.is_absolute() else loaded.root / path
        if not path.is_file():
            raise ProjectError(
                f"production.manifest points to {path}, which does not exist",
                "fix `production.manifest` in dataops_dev.yml, or remove it to parse the main branch",
            )
        return path
    path = loaded.state_dir / "production" / "manifest.json"
    if path.exists():
        return path
    from dataops_dev import gitrepo
    from dataops_dev.dbt.runner import run_dbt
    from dataops_dev.review import export_code

    commit = gitrepo.resolve(loaded.project_dir, loaded.config.production.main_branch)
    code = export_code(loaded, commit)
    target = loaded.state_dir / "production" / "target"
    run = run_dbt(
        "parse",
        [],
        project_dir=code,
        profiles_dir=loaded.profiles_dir,
        target_path=target,
        target=loaded.config.production.target,
        cwd=loaded.project_dir,
    )
    if not run.success:
        raise ProjectError(f"cannot parse production's code at {commit[:8]}: {run.error}")
    write_bytes_atomic(path, (target / "manifest.json").read_bytes())
    return path


def plan_deploy(loaded: LoadedConfig, report: Report) -> DeployPlan:
    """What deploy would do for this (reviewed) branch, and whether it may."""
    from dataops_dev import gitrepo

    output = load_profile_target(loaded)
    git_state = gitrepo.state(loaded.project_dir)
    stale = None
    from dataops_dev.review import project_changes_since

    # Recording decisions (and committing them) or our own state must not make the review stale.
    changed = project_changes_since(loaded, report.head.commit)
    if changed:
        listing = ", ".join(sorted(changed)[:5]) + ("..." if len(changed) > 5 else "")
        stale = f"the project changed since the review (commit {report.head.commit[:8]}): {listing}"
    order = _build_order(loaded, report)
    models = []
    for model in sorted(report.models, key=lambda m: order.get(m.name, len(order))):
        if model.unique_id == "build":
            continue
        if model.status is ModelStatus.REMOVED:
            action = "drop"
        elif model.status is ModelStatus.IMPACTED:
            action = "rebuild"
        else:
            action = "build"
        rows = model.diff.rows if model.diff else None
        change = None
        if rows is not None:
            change = (
                f"{rows.base} -> {rows.head} rows (+{rows.added} -{rows.removed} ~{rows.changed})"
            )
        models.append(
            PlannedModel(
                name=model.name,
                unique_id=model.unique_id,
                action=action,
                materialized=model.materialized,
                expected_rows=rows.head if rows is not None else None,
                row_change=change,
            )
        )
    error = None
    if report.error or report.verdict is Verdict.ERROR:
        error = f"the review did not finish: {report.error or 'its verdict is error'}"
    return DeployPlan(
        target=str(output.get("_target_name")),
        target_type=str(output.get("type")),
        commit=git_state.commit,
        models=tuple(models),
        blocked_by=report.blocking,
        stale=stale,
        error=error,
    )


def _build_order(loaded: LoadedConfig, report: Report) -> dict[str, int]:
    """Model name -> position in DAG order, from the branch's manifest (else the baseline's)."""
    from dataops_dev.environments import Environments
    from dataops_dev.lineage import topological_models

    envs = Environments(loaded)
    for environment in (report.head.environment, report.base.environment):
        if not environment:
            continue
        path = envs.manifest_path(environment)
        if path.exists():
            manifest = Manifest.load(path)
            return {node.name: i for i, node in enumerate(topological_models(manifest))}
    return {}


def deploy(
    loaded: LoadedConfig, report: Report, *, reporter: Reporter = NULL_REPORTER
) -> DeployResult:
    """Promote the reviewed branch to production, atomically, or raise and change nothing."""
    plan = plan_deploy(loaded, report)
    if plan.error:
        raise BuildError(
            f"deploy refused: {plan.error}",
            "fix the build, then run `dataops-dev review` and deploy",
        )
    if plan.stale:
        raise UsageError(f"deploy refused: {plan.stale}", "run `dataops-dev review` first")
    if plan.blocked_by:
        listing = "; ".join(f"{f.fingerprint[:10]} {f.title}" for f in plan.blocked_by[:5])
        raise BlockingFindings(
            f"deploy refused: {len(plan.blocked_by)} blocking finding(s) lack approval: {listing}",
            'approve with `dataops-dev decide approve FINGERPRINT --note "..."`, then deploy',
        )
    state = production_manifest_path(loaded)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    work = loaded.state_dir / "deploy" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    # From the swap of production (`start_publishing`) to the deployment's record, a signal
    # waits: production and its record change together, and never after a signal.
    with interrupts.publication():
        return _deploy_and_record(loaded, plan, report, state, work, reporter, timings, started)


def _deploy_and_record(
    loaded: LoadedConfig,
    plan: DeployPlan,
    report: Report,
    state: Path,
    work: Path,
    reporter: Reporter,
    timings: dict[str, float],
    started: float,
) -> DeployResult:
    if plan.target_type == "duckdb":
        target = _deploy_duckdb(loaded, plan, state, work, reporter, timings)
    elif plan.target_type == "postgres":
        target = _deploy_postgres(loaded, plan, state, work, reporter, timings)
    else:
        raise UsageError(f"deploy to {plan.target_type} targets is not supported yet")
    write_bytes_atomic(
        loaded.state_dir / "production" / "manifest.json",
        (target / "manifest.json").read_bytes(),
    )
    timings["total"] = round(time.perf_counter() - started, 3)
    deployed_at = datetime.now(UTC).isoformat(timespec="seconds")
    record = loaded.state_dir / "deployments" / f"{deployed_at.replace(':', '')}.json"
    write_json_atomic(
        record,
        {
            "deployed_at": deployed_at,
            "commit": plan.commit,
            "branch": report.head.ref,
            "plan": plan.to_dict(),
            "approvals": [
                {"fingerprint": f.fingerprint, "by": f.approval.by, "note": f.approval.note}
                for f in report.findings
                if f.approval is not None
            ],
            "timings": timings,
        },
    )
    shutil.rmtree(work, ignore_errors=True)
    return DeployResult(plan=plan, deployed_at=deployed_at, record=record, timings=timings)


def _selection(plan: DeployPlan) -> list[str]:
    """Each changed model and everything downstream of it: a child that lineage calls unaffected
    is rebuilt too, because its relation depends on the replaced one."""
    return [f"{m.name}+" for m in plan.models if m.action == "build"]


def _run(
    loaded: LoadedConfig,
    command: str,
    args: list[str],
    profile_dir: Path,
    target: Path,
    reporter: Reporter,
    label: str,
) -> DbtRun:
    """dbt against production's staging area; raises (production untouched) unless it succeeded.

    The error names the failed models and tests only: dbt's messages come from the production
    database and can quote its values, so they are withheld (and its log goes with `work`).
    """
    from dataops_dev.dbt.runner import run_dbt

    run = run_dbt(
        command,
        args,
        project_dir=loaded.project_dir,
        profiles_dir=profile_dir,
        target_path=target,
        target="dataops",
        reporter=reporter,
        task_key=f"deploy-{command}",
        cwd=loaded.project_dir,
        label=label,
        redact_errors=True,
    )
    if not run.success:
        raise BuildError(
            f"deploy aborted, production is unchanged: dbt {command} failed: {run.error}",
            "dbt's own message is withheld (it can quote production values): reproduce it on "
            "the masked sample with `dataops-dev review`; fix, review again, then deploy",
        )
    return run


def _wal(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def _deploy_duckdb(
    loaded: LoadedConfig,
    plan: DeployPlan,
    state: Path,
    work: Path,
    reporter: Reporter,
    timings: dict[str, float],
) -> Path:
    import duckdb

    from dataops_dev.dbt.project import duckdb_path

    output = load_profile_target(loaded)
    production = duckdb_path(loaded, output)
    staging = work / production.name
    # A read-only connection holds DuckDB's shared lock: no other process can write production
    # while we build its replacement, and it is held until the replacement is in place, so no
    # write can land in the file we are about to replace.
    guard = duckdb.connect(str(production), read_only=True)
    try:
        try:
            start = time.perf_counter()
            shutil.copy2(production, staging)
            # Committed transactions not yet checkpointed live only in the WAL: copied along,
            # the staging connection replays them and the CHECKPOINT below folds them in.
            if _wal(production).exists():
                shutil.copy2(_wal(production), _wal(staging))
            timings["copy"] = round(time.perf_counter() - start, 3)
            profile = write_profile(
                loaded,
                work / "profile",
                {**output, "path": str(staging), "attach": output.get("attach") or []},
            )
            select = _selection(plan)
            target = work / "target"
            start = time.perf_counter()
            if select:
                _run(
                    loaded,
                    "build",
                    ["--select", *select],
                    profile,
                    target,
                    reporter,
                    "dbt build into production's staging copy",
                )
            else:
                _run(loaded, "parse", [], profile, target, reporter, "dbt parse")
            _drop_removed_duckdb(staging, plan, state)
            timings["build"] = round(time.perf_counter() - start, 3)
            check = duckdb.connect(str(staging))
            try:
                check.execute("CHECKPOINT")
            finally:
                check.close()
            if _wal(staging).exists():
                raise BuildError(
                    "deploy aborted, production is unchanged: the staging copy kept a WAL "
                    "after its checkpoint",
                    "retry the deploy; report it if it persists",
                )
            interrupts.start_publishing()
            os.replace(staging, production)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        # Only now: production's WAL belongs to the file just replaced (its rows are in the new
        # one). Removed first, a crash before the rename would lose them; left behind, DuckDB
        # refuses it (its checkpoint iteration does not match) and production would not open.
        _wal(production).unlink(missing_ok=True)
    finally:
        guard.close()
    return target


def _drop_removed_duckdb(staging: Path, plan: DeployPlan, state: Path) -> None:
    removed = [m for m in plan.models if m.action == "drop"]
    if not removed:
        return
    import duckdb

    from dataops_dev.engines.base import Relation

    manifest = Manifest.load(state)
    connection = duckdb.connect(str(staging))
    try:
        for node in _children_first(manifest, {m.unique_id for m in removed}):
            if node.materialized == "ephemeral":
                continue
            relation = Relation(schema=node.schema or "main", name=node.identifier).sql("duckdb")
            kind = "VIEW" if node.materialized == "view" else "TABLE"
            connection.execute(f"DROP {kind} IF EXISTS {relation}")
    finally:
        connection.close()


def _children_first(manifest: Manifest, unique_ids: set[str]) -> list[Node]:
    """The manifest's models among `unique_ids`, each before the models it selects from: an
    old relation can only be dropped once the views that read it are gone."""
    from dataops_dev.lineage import topological_models

    return [n for n in reversed(topological_models(manifest)) if n.unique_id in unique_ids]


def _staging_schemas(engine: Any, prefix: str) -> list[str]:
    """Every schema of the production database that a deploy's staging build created: the
    target's staging schema and dbt's custom schemas derived from it (`<prefix>_<custom>`)."""
    names = [str(name) for (name,) in engine.fetchall("SELECT nspname FROM pg_namespace")]
    return sorted(n for n in names if n == prefix or n.startswith(prefix + "_"))


def _deploy_postgres(
    loaded: LoadedConfig,
    plan: DeployPlan,
    state: Path,
    work: Path,
    reporter: Reporter,
    timings: dict[str, float],
) -> Path:
    from dataops_dev.engines.base import quote
    from dataops_dev.engines.postgres import PostgresEngine, conninfo_from_credentials

    output = load_profile_target(loaded)
    schema = str(output.get("schema"))
    staging_schema = schema + STAGING_SUFFIX
    select = _selection(plan)
    profile = write_profile(loaded, work / "profile", {**output, "schema": staging_schema})
    target = work / "target"
    engine = PostgresEngine(conninfo_from_credentials(output))
    try:
        start = time.perf_counter()
        staged: list[tuple[str, str, str, str]] = []
        try:
            if select:
                _run(
                    loaded,
                    "build",
                    ["--select", *select, "--defer", "--state", str(state.parent), "--favor-state"],
                    profile,
                    target,
                    reporter,
                    "dbt build into production's staging schemas",
                )
                staged = _staged_relations(target, state)
            else:
                _run(loaded, "parse", [], profile, target, reporter, "dbt parse")
            timings["build"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            production_manifest = Manifest.load(state)
            removed = {m.unique_id for m in plan.models if m.action == "drop"}
            interrupts.start_publishing()
            with engine.connection.transaction():
                for staging_schema_name, production_schema, name, kind in staged:
                    src = f"{quote(staging_schema_name, 'postgres')}.{quote(name, 'postgres')}"
                    dst_schema = quote(production_schema, "postgres")
                    engine.execute(f"CREATE SCHEMA IF NOT EXISTS {dst_schema}")
                    existing = engine.fetchall(
                        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = %s AND c.relname = %s",
                        [production_schema, name],
                    )
                    if existing:
                        old_kind = "VIEW" if existing[0][0] == "v" else "TABLE"
                        # No CASCADE: a view outside this deploy that depends on the old relation
                        # makes the transaction fail and production stays as it was. The views
                        # of this deploy are swapped before their parents, so they never do.
                        engine.execute(f"DROP {old_kind} {dst_schema}.{quote(name, 'postgres')}")
                    alter = "VIEW" if kind == "view" else "TABLE"
                    engine.execute(f"ALTER {alter} {src} SET SCHEMA {dst_schema}")
                for node in _children_first(production_manifest, removed):
                    if node.materialized == "ephemeral":
                        continue
                    kind = "VIEW" if node.materialized == "view" else "TABLE"
                    engine.execute(
                        f"DROP {kind} IF EXISTS {quote(node.schema or schema, 'postgres')}."
                        f"{quote(node.identifier, 'postgres')}"
                    )
            timings["publish"] = round(time.perf_counter() - start, 3)
        finally:
            # By prefix, not from the manifest: a failed build leaves no list of what it made.
            for leftover in _staging_schemas(engine, staging_schema):
                engine.execute(f"DROP SCHEMA IF EXISTS {quote(leftover, 'postgres')} CASCADE")
    except BaseException:
        # Run results and dbt's log can quote production values; the profile holds credentials.
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        engine.close()
    # The staging manifest names staging schemas: rewrite relation names to production's.
    _rewrite_manifest(target / "manifest.json", schema, staging_schema)
    return target


def _staged_relations(target: Path, production_state: Path) -> list[tuple[str, str, str, str]]:
    """(staging schema, production schema, relation name, materialization) of each model the
    staging build created, read from its run_results.json, children before their parents."""
    staged_manifest = Manifest.load(target / "manifest.json")
    production = Manifest.load(production_state)
    results = json.loads((target / "run_results.json").read_text("utf-8")).get("results") or ()
    built = {r["unique_id"] for r in results if r.get("status") == "success"}
    own_models = {n.unique_id for n in staged_manifest.models()}
    out = []
    for node in _children_first(staged_manifest, built & own_models):
        if node.materialized == "ephemeral":
            continue
        prod_node = production.nodes.get(node.unique_id)
        production_schema = prod_node.schema if prod_node is not None else None
        if production_schema is None:
            production_schema = (node.schema or "").replace(STAGING_SUFFIX, "")
        out.append(
            (node.schema or "", production_schema, node.identifier, node.materialized or "table")
        )
    return out


def _rewrite_manifest(path: Path, schema: str, staging_schema: str) -> None:
    data = json.loads(path.read_text("utf-8"))
    for node in (data.get("nodes") or {}).values():
        if isinstance(node.get("schema"), str) and node["schema"].startswith(staging_schema):
            node["schema"] = schema + node["schema"][len(staging_schema) :]
        relation = node.get("relation_name")
        if isinstance(relation, str):
            node["relation_name"] = relation.replace(f'"{staging_schema}', f'"{schema}')
    path.write_text(json.dumps(data), "utf-8")
