"""Gated promotion to production: write, audit, publish — or leave production exactly as it was.

Deploy refuses while the branch's review has unapproved blocking findings or is stale. Then it
builds the modified models and their children into a staging area of the production target,
runs their tests there, and only then swaps the result into place in one step. DuckDB: the
staging area is a copy of the production file, swapped in with an atomic rename. PostgreSQL:
staging schemas whose relations are moved into production's schemas in one transaction. Spark:
a new version schema, published by one row of a pointer table, behind stable views
(see `_SparkProduction`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dataops_dev import interrupts
from dataops_dev.atomic import write_bytes_atomic
from dataops_dev.config import LoadedConfig
from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.dbt.project import load_profile_target
from dataops_dev.decisions import InvalidDecision
from dataops_dev.deploy_state import (
    Journal,
    clear_journal,
    complete,
    deploy_root,
    duckdb_swapped,
    file_lock,
    holder_description,
    lock_path,
    process_identity,
    read_journal,
    recover,
    settle,
    sweep_work_dirs,
    work_dir,
    write_journal,
)
from dataops_dev.environments import write_profile
from dataops_dev.errors import (
    BlockingFindings,
    BuildError,
    DataopsError,
    LockedError,
    ProjectError,
    UsageError,
)
from dataops_dev.report.model import Decision, Finding, ModelStatus, Report, Verdict
from dataops_dev.reporting import NULL_REPORTER, Reporter, task

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
    """The review's row diff on the sample (base -> head), not production's rows."""
    production_rows: int | None = None
    """Rows of the model's relation in production now (see `with_production_rows`); None when
    production has no such relation or was not asked."""


@dataclass(frozen=True)
class DeployPlan:
    target: str
    target_type: str
    commit: str
    models: tuple[PlannedModel, ...]
    blocked_by: tuple[Finding, ...] = ()
    """Blocking findings without an approval that counts, as deploy judges them (the policy
    applied again to the report's evidence), not as the report's file says."""
    stale: str | None = None
    """Why the review does not describe the code being deployed, if it does not."""
    error: str | None = None
    """Why the review did not finish (the branch did not build), if it did not: nothing it
    reports was checked, so no approval can stand in for it."""
    unverified: str | None = None
    """Why the report cannot be trusted to be what the review wrote (its integrity tag is
    missing or does not match), if it cannot."""
    invalid_approvals: tuple[InvalidDecision, ...] = ()
    """Recorded approvals that do not count (no note, no reviewer identity...), with why."""
    approved: tuple[Finding, ...] = ()
    """The findings whose approval counts (recorded with the deployment)."""

    @property
    def allowed(self) -> bool:
        return (
            not self.blocked_by
            and self.stale is None
            and self.error is None
            and self.unverified is None
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_type": self.target_type,
            "commit": self.commit,
            "allowed": self.allowed,
            "stale": self.stale,
            "error": self.error,
            "unverified": self.unverified,
            "blocked_by": [
                {
                    "fingerprint": f.fingerprint,
                    "kind": f.kind.value,
                    "model": f.model,
                    "title": f.title,
                }
                for f in self.blocked_by
            ],
            "invalid_approvals": [
                {"fingerprint": d.fingerprint, "title": d.title, "reason": d.reason}
                for d in self.invalid_approvals
            ],
            "models": [
                {
                    "name": m.name,
                    "action": m.action,
                    "materialized": m.materialized,
                    "expected_rows": m.expected_rows,
                    "row_change": m.row_change,
                    "production_rows": m.production_rows,
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
    """What deploy would do for this (reviewed) branch, and whether it may.

    Each check is its own function: the report is what the review wrote (integrity), the review
    finished (error), it saw the project as it is now (stale), and no blocking finding lacks an
    approval that counts — judged again here from the report's evidence and the approvals file.
    """
    from dataops_dev import gitrepo

    output = load_profile_target(loaded)
    judged, invalid = judge(loaded, report)
    return DeployPlan(
        target=str(output.get("_target_name")),
        target_type=str(output.get("type")),
        commit=gitrepo.state(loaded.project_dir).commit,
        models=_planned_models(loaded, report),
        blocked_by=judged.blocking,
        stale=check_fresh(loaded, report),
        error=check_finished(report),
        unverified=check_integrity(report),
        invalid_approvals=tuple(invalid),
        approved=tuple(
            f
            for f in judged.findings
            if f.approval is not None and f.approval.decision is Decision.APPROVED
        ),
    )


def check_integrity(report: Report) -> str | None:
    """Why the report may not be what the review wrote (None when it is)."""
    return report.integrity.problem


def check_finished(report: Report) -> str | None:
    """Why the review did not finish (None when it did)."""
    if report.error or report.verdict is Verdict.ERROR:
        return f"the review did not finish: {report.error or 'its verdict is error'}"
    return None


def check_fresh(loaded: LoadedConfig, report: Report) -> str | None:
    """Why the project differs from what the review saw (None when it does not).

    Compared by content with the files the review recorded (`Report.worktree`), not by git
    cleanliness: a file the tool wrote before the review (an uncommitted `dataops_dev.yml`)
    does not make it stale, one written after it does until the next review. The approvals file
    and the state directory never count: approvals are applied again at deploy.
    """
    from dataops_dev.review import worktree_state

    now = worktree_state(loaded, report.head.commit)
    seen = dict(report.worktree)
    changed = {path for path in now.keys() | seen.keys() if now.get(path) != seen.get(path)}
    if not changed:
        return None
    listing = ", ".join(sorted(changed)[:5]) + ("..." if len(changed) > 5 else "")
    return f"the project changed since the review (commit {report.head.commit[:8]}): {listing}"


def judge(loaded: LoadedConfig, report: Report) -> tuple[Report, list[InvalidDecision]]:
    """The report judged again: its findings re-derived by the policy from its evidence, the
    approvals file's decisions re-applied by the rules `decide` enforces, the verdict redone.
    Also the recorded approvals that do not count, with why."""
    from dataops_dev.decisions import (
        apply_decisions,
        change_authors,
        invalid_decisions,
        load_decisions,
    )
    from dataops_dev.policy import rederive

    rederived = rederive(report, loaded.config.policy)
    decisions = load_decisions(loaded.project_dir)
    authors = change_authors(loaded.project_dir, report)
    return (
        apply_decisions(rederived, decisions, authors),
        invalid_decisions(rederived, decisions, authors),
    )


def _planned_models(loaded: LoadedConfig, report: Report) -> tuple[PlannedModel, ...]:
    """The report's models in build order, each with what deploy does to it."""
    order = _build_order(loaded, report)
    models = []
    for model in sorted(report.models, key=lambda m: order.get(m.name, len(order))):
        if model.unique_id in ("build", "trust"):  # pseudo-models carrying findings
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
    return tuple(models)


def refusal(plan: DeployPlan, lead: str = "deploy refused") -> DataopsError | None:
    """The error a deploy of `plan` stops with (None when it is allowed): the first reason in
    the order integrity, unfinished review, staleness, unapproved blocking findings."""
    if plan.unverified:
        return UsageError(
            f"{lead}: {plan.unverified}",
            "run `dataops-dev review` to write a new report, then deploy",
        )
    if plan.error:
        return BuildError(
            f"{lead}: {plan.error}", "fix the build, then run `dataops-dev review` and deploy"
        )
    if plan.stale:
        return UsageError(f"{lead}: {plan.stale}", "run `dataops-dev review` first")
    if plan.blocked_by:
        listing = "; ".join(f"{f.fingerprint[:10]} {f.title}" for f in plan.blocked_by[:5])
        invalid = "".join(
            f"; approval of {d.fingerprint[:10]} does not count: {d.reason}"
            for d in plan.invalid_approvals
        )
        return BlockingFindings(
            f"{lead}: {len(plan.blocked_by)} blocking finding(s) lack approval: {listing}"
            + invalid,
            'approve with `dataops-dev decide approve FINGERPRINT --note "..."`, then deploy',
        )
    return None


def with_production_rows(loaded: LoadedConfig, plan: DeployPlan) -> DeployPlan:
    """`plan` with each model's current row count in production, read through a read-only
    connection (the sample's counts are the review's, under the sample's name)."""
    manifest = Manifest.load(production_manifest_path(loaded))
    relations = {}
    for model in plan.models:
        node = manifest.nodes.get(model.unique_id)
        if node is not None and node.materialized != "ephemeral":
            relations[model.unique_id] = (node.schema or "main", node.identifier)
    counts = _count_production(loaded, plan.target_type, relations)
    models = tuple(
        dataclasses.replace(m, production_rows=counts.get(m.unique_id)) for m in plan.models
    )
    return dataclasses.replace(plan, models=models)


def _count_production(
    loaded: LoadedConfig, target_type: str, relations: Mapping[str, tuple[str, str]]
) -> dict[str, int]:
    from dataops_dev.engines.base import Relation

    if not relations:
        return {}
    output = load_profile_target(loaded)
    engine: Any
    if target_type == "duckdb":
        from dataops_dev.dbt.project import duckdb_path
        from dataops_dev.engines.duckdb import DuckDBEngine

        engine = DuckDBEngine(duckdb_path(loaded, output), read_only=True)
    elif target_type == "postgres":
        from dataops_dev.engines.postgres import PostgresEngine, conninfo_from_credentials

        engine = PostgresEngine(conninfo_from_credentials(output))
        engine.execute("SET default_transaction_read_only = on")
    elif target_type == "spark":
        from dataops_dev.engines.spark import SparkEngine, remote_from_output

        engine = SparkEngine(remote_from_output(output))
    else:
        return {}
    counts: dict[str, int] = {}
    try:
        for unique_id, (schema, name) in relations.items():
            relation = Relation(schema=schema, name=name)
            if engine.relation_exists(relation):
                ((count,),) = engine.fetchall(
                    f"SELECT count(*) FROM {relation.sql(engine.dialect)}"
                )
                counts[unique_id] = int(count)
    finally:
        engine.close()
    return counts


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
    """Promote the reviewed commit to production, atomically, or raise and change nothing.

    Stages, all under production's exclusive deploy lock: finish an interrupted deploy's
    metadata; export the reviewed commit; build and test it in a staging area; check that it is
    the code the review built; journal the metadata; swap; write the metadata.
    """
    plan = plan_deploy(loaded, report)
    refused = refusal(plan)
    if refused is not None:
        raise refused
    commit = _reviewed_commit(loaded, report)
    output = load_profile_target(loaded)
    production = _production(loaded, plan, output)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    # From the journal (`_publish` starts publishing) to the deployment's record, a signal
    # waits: production and its metadata change together, and never after a signal.
    with interrupts.publication(), contextlib.ExitStack() as stack:
        with task(reporter, "deploy-lock", f"lock production ({plan.target})"):
            stack.enter_context(production.locked())
        _finish_interrupted(loaded, production)
        production.check_unchanged(report)
        sweep_work_dirs(loaded.state_dir)
        state = production_manifest_path(loaded)
        work = stack.enter_context(work_dir(loaded.state_dir))
        with task(reporter, "deploy-export", f"export the reviewed commit {commit[:8]}"):
            code = _export_reviewed_code(loaded, commit, work)
        job = _Job(loaded, plan, output, state, work, code, reporter, timings, commit)
        target = production.build(job, stack)
        _check_reviewed_code(loaded, report, target / "manifest.json")
        timings["total"] = round(time.perf_counter() - started, 3)
        journal = _journal(loaded, report, plan, commit, production, timings)
        with task(reporter, "deploy-swap", "swap the staged build into production"):
            _publish(loaded, production, job, journal, target)
        with task(reporter, "deploy-metadata", "record the deployment"):
            record = complete(loaded.state_dir, journal)
    return DeployResult(
        plan=plan,
        deployed_at=str(journal.record["deployed_at"]),
        record=record,
        timings=timings,
    )


@dataclass(frozen=True)
class _Job:
    """One deploy in progress: what its stages read."""

    loaded: LoadedConfig
    plan: DeployPlan
    output: Mapping[str, Any]
    state: Path
    """Production's manifest before this deploy."""
    work: Path
    code: Path
    """The reviewed commit's tree, exported: dbt builds this, never the working tree."""
    reporter: Reporter
    timings: dict[str, float]
    commit: str = ""
    """The reviewed commit, which this deploy ships."""

    @property
    def target_name(self) -> str:
        """dbt's `target.name` for the deploy build: production's own on DuckDB (the build goes
        to a staging copy, so target-dependent Jinja behaves as in production); on PostgreSQL
        `dataops`, so a schema macro keyed on production's name cannot bypass the staging
        schemas and write production directly."""
        if self.plan.target_type == "duckdb":
            return str(self.output.get("_target_name") or self.loaded.config.production.target)
        return "dataops"


class _Production(Protocol):
    def locked(self) -> contextlib.AbstractContextManager[None]: ...

    def identity(self) -> str: ...

    def swapped(self, journal: Journal) -> bool | None: ...

    def check_unchanged(self, report: Report) -> None:
        """Refuse when production moved since the review (a no-op where it cannot tell)."""

    def build(self, job: _Job, stack: contextlib.ExitStack) -> Path: ...

    def swap(self, job: _Job, write_journal: Callable[[Mapping[str, Any]], Journal]) -> None: ...


def _production(loaded: LoadedConfig, plan: DeployPlan, output: Mapping[str, Any]) -> _Production:
    if plan.target_type == "duckdb":
        return _DuckDBProduction(loaded, output)
    if plan.target_type == "postgres":
        return _PostgresProduction(loaded, output)
    if plan.target_type == "spark":
        return _SparkProduction(loaded, output)
    raise UsageError(f"deploy to {plan.target_type} targets is not supported yet")


# -- stages ------------------------------------------------------------------------------------


def _reviewed_commit(loaded: LoadedConfig, report: Report) -> str:
    """The commit the report names, which is what deploy builds (exported by id)."""
    from dataops_dev import gitrepo

    if not report.head.commit:
        raise UsageError(
            "deploy refused: the review names no commit", "run `dataops-dev review` first"
        )
    return gitrepo.resolve(loaded.project_dir, report.head.commit)


def _export_reviewed_code(loaded: LoadedConfig, commit: str, work: Path) -> Path:
    """The files of the dbt project at `commit`, in this deploy's work directory. Files git
    ignores or marks assume-unchanged are not part of a commit, so they are never deployed.
    Installed packages (`dbt_packages/`, never committed) are copied from the project."""
    from dataops_dev import gitrepo

    root = gitrepo.state(loaded.project_dir).root
    subdir = os.path.relpath(loaded.project_dir.resolve(), root.resolve())
    code = gitrepo.export_tree(loaded.project_dir, commit, subdir, work / "code")
    packages = loaded.project_dir / "dbt_packages"
    if packages.is_dir() and not (code / "dbt_packages").exists():
        # Contents, not links: `local:` packages are links that mean nothing elsewhere.
        shutil.copytree(packages, code / "dbt_packages")
    return code


def code_fingerprint(manifest: Mapping[str, Any]) -> dict[str, str]:
    """unique_id -> hash of its source for every node and macro of the project itself: equal
    fingerprints mean dbt was given the same code (configs rendered per target aside)."""
    project = (manifest.get("metadata") or {}).get("project_name")
    out: dict[str, str] = {}
    for uid, node in (manifest.get("nodes") or {}).items():
        if node.get("resource_type") in ("model", "seed", "snapshot", "test", "analysis"):
            out[uid] = str((node.get("checksum") or {}).get("checksum") or "")
    for uid, macro in (manifest.get("macros") or {}).items():
        if project is None or macro.get("package_name") == project:
            text = str(macro.get("macro_sql") or "")
            out[uid] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return out


def _check_reviewed_code(loaded: LoadedConfig, report: Report, deployed: Path) -> None:
    """Refuse (before the swap) unless the staged build is the code the review built.

    The review's branch environment keeps the manifest of what it built: if that held a file
    the commit does not (git-ignored, assume-unchanged, uncommitted then reverted), the commit
    is not what was reviewed. A report that names no environment is not checked here.
    """
    from dataops_dev.environments import Environments

    if not report.head.environment:
        return
    envs = Environments(loaded)
    reviewed_path = envs.manifest_path(report.head.environment)
    info = envs.find(report.head.environment)
    built = info.last_build if info is not None else None
    if not reviewed_path.exists() or built is None or built.commit != report.head.commit:
        raise UsageError(
            f"deploy refused: environment {report.head.environment} no longer holds the "
            f"review's build of {report.head.commit[:8]}",
            "run `dataops-dev review`, then deploy",
        )
    reviewed = code_fingerprint(json.loads(reviewed_path.read_text("utf-8")))
    staged = code_fingerprint(json.loads(deployed.read_text("utf-8")))
    differs = sorted(
        uid for uid in reviewed.keys() | staged.keys() if reviewed.get(uid) != staged.get(uid)
    )
    if differs:
        listing = ", ".join(differs[:5]) + ("..." if len(differs) > 5 else "")
        raise UsageError(
            f"deploy refused, production is unchanged: commit {report.head.commit[:8]} is not "
            f"the code the review built ({listing} differ); the review saw files outside the "
            "commit (uncommitted, git-ignored or assume-unchanged)",
            "commit exactly what should ship (or remove the rest), run `dataops-dev review`, "
            "then deploy",
        )


def _journal(
    loaded: LoadedConfig,
    report: Report,
    plan: DeployPlan,
    commit: str,
    production: _Production,
    timings: Mapping[str, float],
) -> Journal:
    """The deployment record to write once production holds the new build."""
    deployed_at = datetime.now(UTC).isoformat(timespec="seconds")
    stamp = deployed_at.replace(":", "")
    record = loaded.state_dir / "deployments" / f"{stamp}-p{os.getpid()}.json"
    return Journal(
        backend=plan.target_type,
        production=production.identity(),
        swapped_when={},
        record_path=str(record),
        record={
            "deployed_at": deployed_at,
            "commit": commit,
            "branch": report.head.ref,
            "plan": plan.to_dict(),
            "approvals": [
                {"fingerprint": f.fingerprint, "by": f.approval.by, "note": f.approval.note}
                for f in plan.approved
                if f.approval is not None
            ],
            "timings": dict(timings),
        },
    )


def _publish(
    loaded: LoadedConfig, production: _Production, job: _Job, journal: Journal, target: Path
) -> None:
    """Journal, then swap: a kill between the swap and the metadata leaves a journal that the
    next command completes (see deploy_state.recover)."""
    manifest = (target / "manifest.json").read_bytes()
    interrupts.start_publishing()  # refused after a signal; from here on, signals wait

    def journaled(swapped_when: Mapping[str, Any]) -> Journal:
        written = dataclasses.replace(journal, swapped_when=dict(swapped_when))
        write_journal(loaded.state_dir, written, manifest)
        return written

    try:
        production.swap(job, journaled)
    except BaseException:
        # Settled now when it can be told; otherwise the next command asks again.
        with contextlib.suppress(Exception):
            written = read_journal(loaded.state_dir)
            if written is not None and production.swapped(written) is False:
                clear_journal(loaded.state_dir)
        raise


@contextlib.contextmanager
def postgres_swap_check(loaded: LoadedConfig, journal: Journal) -> Iterator[bool | None]:
    """For `deploy_state.recover`: under production's advisory lock, whether the journal's
    publishing transaction committed (None: not this project's production target)."""
    output = load_profile_target(loaded)
    if output.get("type") != "postgres":
        yield None
        return
    production = _PostgresProduction(loaded, output)
    if production.identity() != journal.production:
        yield None
        return
    with production.locked():
        yield production.swapped(journal)


def _finish_interrupted(loaded: LoadedConfig, production: _Production) -> None:
    """Under the deploy lock: complete (or drop) the journal of a deploy killed mid-way."""
    journal = read_journal(loaded.state_dir)
    if journal is None:
        return
    if journal.production != production.identity():
        recover(loaded.state_dir)  # another production's: under its own lock
        return
    swapped = production.swapped(journal)
    if swapped is None:
        raise ProjectError(
            "cannot tell whether the interrupted deploy reached production",
            f"inspect production, then delete {deploy_root(loaded.state_dir) / 'journal.json'}",
        )
    settle(loaded.state_dir, journal, swapped)


def _selection(plan: DeployPlan) -> list[str]:
    """Each changed model and everything downstream of it: a child that lineage calls unaffected
    is rebuilt too, because its relation depends on the replaced one."""
    return [f"{m.name}+" for m in plan.models if m.action == "build"]


def _run(job: _Job, command: str, args: list[str], profile_dir: Path, label: str) -> DbtRun:
    """dbt on the reviewed code against production's staging area; raises (production
    untouched) unless it succeeded.

    The error names the failed models and tests only: dbt's messages come from the production
    database and can quote its values, so they are withheld (and its log goes with `work`).
    """
    from dataops_dev.dbt.runner import run_dbt

    run = run_dbt(
        command,
        args,
        project_dir=job.code,
        profiles_dir=profile_dir,
        target_path=job.work / "target",
        target=job.target_name,
        reporter=job.reporter,
        task_key=f"deploy-{command}",
        # Relative paths in the user's profile (attached files) mean what they mean there.
        cwd=job.loaded.project_dir,
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


def _build_selection(job: _Job, profile: Path, args: list[str], label: str) -> Path:
    """dbt build of the changed models and their children (or parse when none changed)."""
    select = _selection(job.plan)
    start = time.perf_counter()
    if select:
        _run(job, "build", ["--select", *select, *args], profile, label)
    else:
        _run(job, "parse", [], profile, "dbt parse")
    job.timings["build"] = round(time.perf_counter() - start, 3)
    return job.work / "target"


# -- DuckDB ------------------------------------------------------------------------------------


def _wal(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def open_production_duckdb(path: Path, target: object) -> Any:
    """A read-only connection to production's DuckDB file; a `ProjectError` naming the file
    when it is missing, corrupt or locked (nothing has been written yet)."""
    import duckdb

    hint = (
        f"nothing was deployed: check `path` of target {target!r} in profiles.yml, that the "
        "file is a DuckDB database and that no other process is writing it"
    )
    if not path.is_file():
        raise ProjectError(f"production database {path} does not exist", hint)
    from dataops_dev.statefiles import InvalidFile, check_duckdb_connection

    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0][:300]
        raise ProjectError(f"production database {path} cannot be opened: {reason}", hint) from None
    try:
        check_duckdb_connection(connection, path)
    except (InvalidFile, duckdb.Error) as exc:
        connection.close()
        raise ProjectError(f"production database {path} {exc}", hint) from None
    return connection


class _DuckDBProduction:
    """A DuckDB production file: copied, built into, swapped in by one atomic rename.

    The deploy lock is a file beside production (`.<name>.dataops-lock`), so two clones of the
    project that deploy to the same file exclude each other too.
    """

    def __init__(self, loaded: LoadedConfig, output: Mapping[str, Any]) -> None:
        from dataops_dev.dbt.project import duckdb_path

        self.path = duckdb_path(loaded, output)
        self.staging: Path | None = None

    def identity(self) -> str:
        return str(self.path)

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(lock_path(self.path), holder_description())

    def swapped(self, journal: Journal) -> bool | None:
        return duckdb_swapped(journal)

    def check_unchanged(self, report: Report) -> None:
        """Not told: the lock and the copy make a DuckDB deploy whole either way."""

    def build(self, job: _Job, stack: contextlib.ExitStack) -> Path:
        staging = job.work / self.path.name
        with task(job.reporter, "deploy-copy", "copy production"):
            # A missing, corrupt or locked production file is named before anything is written.
            open_production_duckdb(self.path, job.output.get("_target_name")).close()
            stack.enter_context(_checkpointed_guard(self.path))
            start = time.perf_counter()
            shutil.copy2(self.path, staging)
            job.timings["copy"] = round(time.perf_counter() - start, 3)
        profile = write_profile(
            job.loaded,
            job.work / "profile",
            {**job.output, "path": str(staging), "attach": job.output.get("attach") or []},
            target_name=job.target_name,
        )
        target = _build_selection(job, profile, [], "dbt build into production's staging copy")
        _drop_removed_duckdb(staging, job.plan, job.state)
        _seal(staging)
        self.staging = staging
        return target

    def swap(self, job: _Job, write_journal: Callable[[Mapping[str, Any]], Journal]) -> None:
        assert self.staging is not None
        stat = os.stat(self.staging)
        write_journal({"inode": [stat.st_dev, stat.st_ino]})
        if _wal(self.path).exists():
            # The guard kept writers out since the checkpoint: a WAL now is not ours to drop.
            raise BuildError(
                "deploy aborted, production is unchanged: production has a write-ahead log "
                "that appeared during the deploy",
                "retry the deploy once the other writer is done",
            )
        os.replace(self.staging, self.path)


@contextlib.contextmanager
def _checkpointed_guard(production: Path, attempts: int = 3) -> Iterator[None]:
    """Fold production's WAL into its file, then hold a read-only connection until the swap.

    Checkpointed first, production has no WAL to copy along or to leave behind the rename (a
    stale WAL makes the new file unopenable). The read-only connection holds DuckDB's shared
    lock: no process can write production until the replacement is in place.
    """
    from dataops_dev.engines.duckdb import DuckDBEngine

    for _ in range(attempts):
        if _wal(production).exists():
            writer = DuckDBEngine(production)
            try:
                writer.execute("CHECKPOINT")
            finally:
                writer.close()
        guard = DuckDBEngine(production, read_only=True)
        if not _wal(production).exists():
            break
        guard.close()  # a writer slipped in between: checkpoint again
    else:
        raise BuildError(
            "deploy aborted, production is unchanged: production keeps being written",
            "retry the deploy when no other process writes production",
        )
    try:
        yield
    finally:
        guard.close()


def _seal(staging: Path) -> None:
    """Checkpoint the staging copy: the file alone must hold every row before it is renamed."""
    import duckdb

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


def advisory_key(schema: str) -> int:
    """The PostgreSQL advisory lock key of deploys to `schema` (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"dataops_dev deploy\0{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _PostgresProduction:
    """A PostgreSQL production target: built into per-process staging schemas, whose relations
    move into production's schemas in one transaction.

    The deploy lock is a session advisory lock in the production database (released by the
    server when the session ends, however the process ends). Its holder is found through
    `pg_locks` and named by the `application_name` each deploy sets.
    """

    def __init__(self, loaded: LoadedConfig, output: Mapping[str, Any]) -> None:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        from dataops_dev.engines.postgres import conninfo_from_credentials

        self.schema = str(output.get("schema"))
        conninfo = conninfo_from_credentials(output)
        self.database = str(conninfo_to_dict(conninfo).get("dbname") or "")
        me = process_identity()
        self.conninfo = make_conninfo(
            conninfo, application_name=f"dataops-dev deploy pid {me['pid']} on {me['host']}"[:63]
        )
        self.staging_prefix = f"{self.schema}{STAGING_SUFFIX}"
        self.staging_schema = f"{self.staging_prefix}_p{os.getpid()}"
        if len(self.staging_schema.encode("utf-8")) > 50:
            raise UsageError(
                f"production schema {self.schema!r} is too long for a staging schema name",
                "deploy to a target whose schema name has at most 20 characters",
            )
        self.engine: Any = None
        self.staged: list[tuple[str, str, str, str]] = []

    def identity(self) -> str:
        return f"postgres:{self.database}:{self.schema}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from dataops_dev.engines.postgres import PostgresEngine

        self.engine = PostgresEngine(self.conninfo)
        try:
            key = advisory_key(self.schema)
            ((acquired,),) = self.engine.fetchall("SELECT pg_try_advisory_lock(%s)", [key])
            if not acquired:
                raise LockedError(
                    f"production {self.database}.{self.schema} is being deployed by "
                    f"{self._holder(key)}",
                    "wait for that deploy to finish, then run `dataops-dev deploy` again",
                )
            # Under the lock no other deploy runs: any staging schema left is a dead deploy's.
            self._drop_staging(self.staging_prefix)
            yield
        finally:
            self.engine.close()  # ends the session: the server releases the lock

    def _holder(self, key: int) -> str:
        rows = self.engine.fetchall(
            "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s",
            [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
        )
        if not rows:
            return "another session"
        pid, application, since = rows[0]
        who = application or "a session"
        return f"{who} (server pid {pid}, connected since {since:%Y-%m-%d %H:%M:%S %Z})"

    def check_unchanged(self, report: Report) -> None:
        """Not told: PostgreSQL production keeps no pointer to compare with."""

    def swapped(self, journal: Journal) -> bool | None:
        txid = journal.swapped_when.get("txid")
        if txid is None:
            return False  # killed before its transaction got an id: nothing was published
        ((status,),) = self.engine.fetchall("SELECT pg_xact_status(%s::text::xid8)", [str(txid)])
        if status in ("committed", "aborted"):
            return status == "committed"
        return None

    def _drop_staging(self, prefix: str) -> None:
        from dataops_dev.engines.base import quote

        # By prefix, not from the manifest: a failed build leaves no list of what it made.
        for leftover in _staging_schemas(self.engine, prefix):
            self.engine.execute(f"DROP SCHEMA IF EXISTS {quote(leftover, 'postgres')} CASCADE")

    def build(self, job: _Job, stack: contextlib.ExitStack) -> Path:
        stack.callback(self._drop_staging, self.staging_schema)
        profile = write_profile(
            job.loaded,
            job.work / "profile",
            {**job.output, "schema": self.staging_schema},
            target_name=job.target_name,
        )
        target = _build_selection(
            job,
            profile,
            ["--defer", "--state", str(job.state.parent), "--favor-state"],
            "dbt build into production's staging schemas",
        )
        if _selection(job.plan):
            self.staged = _staged_relations(target, job.state, self.staging_schema, self.schema)
        # The staging manifest names staging schemas: rewrite relation names to production's.
        _rewrite_manifest(target / "manifest.json", self.schema, self.staging_schema)
        return target

    def swap(self, job: _Job, write_journal: Callable[[Mapping[str, Any]], Journal]) -> None:
        start = time.perf_counter()
        engine = self.engine
        with engine.connection.transaction():
            ((txid,),) = engine.fetchall("SELECT pg_current_xact_id()::text")
            # Journaled before COMMIT: the next command asks the server how it ended.
            write_journal({"txid": txid})
            self._move_staged()
            self._drop_removed(job)
        job.timings["publish"] = round(time.perf_counter() - start, 3)

    def _move_staged(self) -> None:
        from dataops_dev.engines.base import quote

        engine = self.engine
        for staging_schema_name, production_schema, name, kind in self.staged:
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

    def _drop_removed(self, job: _Job) -> None:
        from dataops_dev.engines.base import quote

        removed = {m.unique_id for m in job.plan.models if m.action == "drop"}
        if not removed:
            return
        for node in _children_first(Manifest.load(job.state), removed):
            if node.materialized == "ephemeral":
                continue
            kind = "VIEW" if node.materialized == "view" else "TABLE"
            self.engine.execute(
                f"DROP {kind} IF EXISTS {quote(node.schema or self.schema, 'postgres')}."
                f"{quote(node.identifier, 'postgres')}"
            )


def _staged_relations(
    target: Path, production_state: Path, staging_schema: str, schema: str
) -> list[tuple[str, str, str, str]]:
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
            staged_schema = node.schema or ""
            production_schema = (
                schema + staged_schema[len(staging_schema) :]
                if staged_schema.startswith(staging_schema)
                else staged_schema
            )
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
            # PostgreSQL: "db"."schema"."name"; Spark: schema.name, unquoted.
            relation = relation.replace(f'"{staging_schema}', f'"{schema}')
            if relation.startswith(staging_schema):
                relation = schema + relation[len(staging_schema) :]
            node["relation_name"] = relation
    path.write_text(json.dumps(data), "utf-8")


# -- Spark -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pointer:
    """One published version of a Spark production: a row of `<schema>__dataops.deploys`."""

    version: int
    token: str
    deployed_at: str
    commit: str
    relations: tuple[tuple[str, str, str, str], ...]
    """(version schema, production schema, name, materialization) of each model it built."""
    removed: tuple[tuple[str, str], ...]
    """(production schema, name) of each model it removed."""


def _current_map(pointers: list[_Pointer]) -> dict[tuple[str, str], str]:
    """(production schema, name) -> the version schema its view points at, as the published
    versions left it (a later version overrides an earlier one; a removal ends the entry)."""
    current: dict[tuple[str, str], str] = {}
    for pointer in sorted(pointers, key=lambda p: p.version):
        for version_schema_name, production_schema, name, _kind in pointer.relations:
            current[(production_schema, name)] = version_schema_name
        for production_schema, name in pointer.removed:
            current.pop((production_schema, name), None)
    return current


PUBLISHED = "published"
ABORTED = "aborted"
"""States of a pointer-table row."""


class _SparkProduction:
    """A Spark production target: each deploy builds into a fresh version schema, and each
    deployed model's production relation becomes a stable view over its current version.

    Spark has no transactions, no schema rename and no cross-schema move, so the commit point is
    one row appended to the pointer table `<schema>__dataops.deploys` (one INSERT, committed by
    Spark's file commit protocol or not at all). Order: build version N (`<schema>__v<N>_<token>`
    and its custom schemas), journal it, append the pointer row, point each view at version N
    with one `CREATE OR REPLACE VIEW` each, then drop what no view points at any more. Recovery
    reads the pointer table: a version it lists is rolled forward (views re-pointed, which is
    idempotent), one it does not list is dropped. A version the views point at is always a
    complete, tested build.

    A production relation that is a TABLE (built by dbt before the first deploy) cannot be
    replaced by a view in one statement: it is dropped, then the view is created. Between the two
    statements a reader of that one relation gets "table not found"; a kill there is finished by
    the next command (the pointer row is already written).

    The deploy lock is a file lock on this machine (Spark has no advisory lock). Across
    machines, the pointer is the guard: a deploy refuses when a version was published after its
    review, and aborts when one was published while it built.
    """

    def __init__(self, loaded: LoadedConfig, output: Mapping[str, Any]) -> None:
        from dataops_dev import spark_layout
        from dataops_dev.engines.spark import remote_from_output

        self.schema = str(output.get("schema") or "").lower()
        self.log_schema = spark_layout.deploy_log_schema(self.schema)
        self.remote = remote_from_output(output)
        self.engine: Any = None
        self.before: _Pointer | None = None
        self.version_schema: str | None = None
        self.staged: list[tuple[str, str, str, str]] = []
        self.published = False

    def identity(self) -> str:
        return f"spark:{self.remote}:{self.schema}"

    def lock_file(self) -> Path:
        import tempfile

        digest = hashlib.sha256(self.identity().encode("utf-8")).hexdigest()[:20]
        return Path(tempfile.gettempdir()) / "dataops-dev-deploy-locks" / f"spark-{digest}.lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from dataops_dev.engines.spark import SparkEngine

        with file_lock(self.lock_file(), holder_description()):
            self.engine = SparkEngine(self.remote)
            try:
                self._ensure_log()
                yield
            finally:
                self.engine.close()

    # -- the pointer table --

    def _log_table(self) -> str:
        from dataops_dev.engines.base import Relation
        from dataops_dev.spark_layout import DEPLOY_LOG_TABLE

        return Relation(self.log_schema, DEPLOY_LOG_TABLE).sql("spark")

    def _ensure_log(self) -> None:
        from dataops_dev.engines.base import quote

        self.engine.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.log_schema, 'spark')}")
        self.engine.execute(
            f"CREATE TABLE IF NOT EXISTS {self._log_table()} (version INT, token STRING, "
            "deployed_at STRING, commit STRING, relations STRING, removed STRING, "
            "state STRING) USING parquet"
        )

    def pointers(self) -> list[_Pointer]:
        """Every published version, oldest first. A version recovery gave up on (an "aborted"
        row) never counts, even if its own row landed after that (a dead client's INSERT can
        still be running on the server when recovery looks)."""
        # A session caches a table's file listing: rows another session appended since (another
        # deploy's pointer) are invisible until the table is refreshed.
        self.engine.execute(f"REFRESH TABLE {self._log_table()}")
        rows = self.engine.fetchall(
            "SELECT version, token, deployed_at, commit, relations, removed FROM "
            f"{self._log_table()} p WHERE state = ? AND NOT EXISTS (SELECT 1 FROM "
            f"{self._log_table()} a WHERE a.state = ? AND a.version = p.version "
            "AND a.token = p.token) ORDER BY version",
            [PUBLISHED, ABORTED],
        )
        return [
            _Pointer(
                version=int(version),
                token=str(token),
                deployed_at=str(deployed_at),
                commit=str(commit),
                relations=tuple(
                    (str(a), str(b), str(c), str(d)) for a, b, c, d in json.loads(relations)
                ),
                removed=tuple((str(a), str(b)) for a, b in json.loads(removed)),
            )
            for version, token, deployed_at, commit, relations, removed in rows
        ]

    def _latest(self) -> _Pointer | None:
        pointers = self.pointers()
        return pointers[-1] if pointers else None

    def check_unchanged(self, report: Report) -> None:
        """Refuse when a version was published after the review: it reviewed another
        production. Also pins the version this deploy starts from (checked again at publish)."""
        self.before = self._latest()
        if self.before is None:
            return
        published = datetime.fromisoformat(self.before.deployed_at)
        try:
            reviewed_at = datetime.fromisoformat(report.generated_at)
        except ValueError:
            reviewed_at = None
        if reviewed_at is None or reviewed_at.tzinfo is None or published > reviewed_at:
            raise UsageError(
                f"deploy refused, production is unchanged: production {self.schema} moved to "
                f"version {self.before.version} (commit {self.before.commit[:8]}, deployed "
                f"{self.before.deployed_at}) after this review ({report.generated_at})",
                "run `dataops-dev review` against production as it is now, then deploy",
            )

    # -- build --

    def build(self, job: _Job, stack: contextlib.ExitStack) -> Path:
        from dataops_dev import spark_layout

        version = (self.before.version if self.before else 0) + 1
        self.version_schema = spark_layout.version_schema(
            self.schema, version, spark_layout.new_version_token()
        )
        stack.callback(self._drop_unpublished)
        profile = write_profile(
            job.loaded,
            job.work / "profile",
            {**job.output, "schema": self.version_schema},
            target_name=job.target_name,
        )
        target = _build_selection(
            job,
            profile,
            ["--defer", "--state", str(job.state.parent), "--favor-state"],
            f"dbt build into production version {version}",
        )
        if _selection(job.plan):
            self.staged = _staged_relations(target, job.state, self.version_schema, self.schema)
        _rewrite_manifest(target / "manifest.json", self.schema, self.version_schema)
        return target

    def _drop_unpublished(self) -> None:
        if not self.published and self.version_schema is not None:
            self._drop_version(self.version_schema)

    def _schemas(self) -> list[str]:
        return [str(row[0]) for row in self.engine.fetchall("SHOW SCHEMAS")]

    def _drop_version(self, base: str) -> None:
        """Drop a version's schemas: its base and the custom schemas dbt derived from it."""
        from dataops_dev.engines.base import quote

        for name in self._schemas():
            if name == base or name.startswith(base + "_"):
                self.engine.execute(f"DROP SCHEMA IF EXISTS {quote(name, 'spark')} CASCADE")

    # -- publish --

    def swap(self, job: _Job, write_journal: Callable[[Mapping[str, Any]], Journal]) -> None:
        from dataops_dev import spark_layout

        assert self.version_schema is not None
        parsed = spark_layout.version_of(self.schema, self.version_schema)
        assert parsed is not None
        version = parsed[0]
        latest = self._latest()
        if latest != self.before:
            raise LockedError(
                f"deploy aborted, production is unchanged: production {self.schema} moved to "
                f"version {latest.version if latest else 0} while this deploy built",
                "run `dataops-dev review` against production as it is now, then deploy",
            )
        removed = self._removed(job)
        pointer = _Pointer(
            version=version,
            token=self.version_schema.rsplit("_", 1)[1],
            deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
            commit=job.commit,
            relations=tuple(self.staged),
            removed=tuple(removed),
        )
        write_journal({"version": version, "token": pointer.token})
        start = time.perf_counter()
        with task(job.reporter, "deploy-pointer", f"publish version {version}"):
            self._append(pointer)
        self._point_views(pointer, job.reporter)
        self._collect_garbage()
        job.timings["publish"] = round(time.perf_counter() - start, 3)

    def _append(self, pointer: _Pointer) -> None:
        """The commit point: from this row on, the pointer's version is production's."""
        self.published = True  # even if the INSERT fails half-way: recovery asks the table
        self.engine.execute(
            f"INSERT INTO {self._log_table()} VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                pointer.version,
                pointer.token,
                pointer.deployed_at,
                pointer.commit,
                json.dumps([list(r) for r in pointer.relations]),
                json.dumps([list(r) for r in pointer.removed]),
                PUBLISHED,
            ],
        )

    def _removed(self, job: _Job) -> list[tuple[str, str]]:
        removed = {m.unique_id for m in job.plan.models if m.action == "drop"}
        if not removed:
            return []
        return [
            (str(node.schema or self.schema), node.identifier)
            for node in _children_first(Manifest.load(job.state), removed)
            if node.materialized != "ephemeral"
        ]

    def _kind(self, schema: str, name: str) -> str | None:
        """ "VIEW", "TABLE" or None (no such relation)."""
        from dataops_dev.engines.base import Relation, quote

        if not self.engine.relation_exists(Relation(schema, name)):
            return None
        rows = self.engine.fetchall(f"SHOW VIEWS IN {quote(schema, 'spark')}")
        return "VIEW" if any(str(row[1]) == name for row in rows) else "TABLE"

    def _point_views(self, pointer: _Pointer, reporter: Reporter) -> None:
        """Make production's relations those of `pointer`'s version: one statement per view
        (two for a table that becomes a view). Idempotent, so recovery can run it again."""
        from dataops_dev.engines.base import Relation, quote

        with task(
            reporter,
            "deploy-views",
            f"point production at version {pointer.version}",
            total=len(pointer.relations) + len(pointer.removed),
        ):
            for version_schema_name, production_schema, name, _kind in pointer.relations:
                view = Relation(production_schema, name).sql("spark")
                source = Relation(version_schema_name, name).sql("spark")
                self.engine.execute(
                    f"CREATE SCHEMA IF NOT EXISTS {quote(production_schema, 'spark')}"
                )
                if self._kind(production_schema, name) == "TABLE":
                    # No statement turns a table into a view: readers miss it until the next one.
                    self.engine.execute(f"DROP TABLE {view}")
                    reporter.task_advanced("deploy-views", 0.5)
                self.engine.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}")
                reporter.task_advanced("deploy-views", 0.5)
            for production_schema, name in pointer.removed:
                kind = self._kind(production_schema, name)
                if kind is not None:
                    self.engine.execute(
                        f"DROP {kind} {Relation(production_schema, name).sql('spark')}"
                    )
                reporter.task_advanced("deploy-views", 1)

    def _collect_garbage(self) -> None:
        """Drop every version relation no production view points at, and every version schema
        left empty, up to the newest published version (a newer one may be building)."""
        from dataops_dev import spark_layout
        from dataops_dev.engines.base import Relation, quote

        pointers = self.pointers()
        if not pointers:
            return
        newest = pointers[-1].version
        live = {(v, name) for (_, name), v in _current_map(pointers).items()}
        for schema_name in self._schemas():
            parsed = spark_layout.version_of(self.schema, schema_name)
            if parsed is None or parsed[0] > newest:
                continue
            relations = self.engine.list_relations(schema_name)
            if not any((schema_name, r.name) in live for r in relations):
                self.engine.execute(f"DROP SCHEMA IF EXISTS {quote(schema_name, 'spark')} CASCADE")
                continue
            for relation in relations:
                if (schema_name, relation.name) not in live:
                    kind = self._kind(schema_name, relation.name) or "TABLE"
                    self.engine.execute(
                        f"DROP {kind} IF EXISTS {Relation(schema_name, relation.name).sql('spark')}"
                    )

    # -- recovery --

    def swapped(self, journal: Journal) -> bool | None:
        """Whether the journal's version was published; settles production either way: a
        published version has its views (re)pointed and the old ones dropped, an unpublished
        one is dropped. Production is then wholly the new or wholly the old version."""
        from dataops_dev import spark_layout

        try:
            version = int(journal.swapped_when["version"])
            token = str(journal.swapped_when["token"])
        except (KeyError, TypeError, ValueError):
            return False  # killed before the journal named a version: nothing was published
        published = [p for p in self.pointers() if (p.version, p.token) == (version, token)]
        if not published:
            # Marked first: a pointer row still in flight can never count after this.
            self.engine.execute(
                f"INSERT INTO {self._log_table()} VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    version,
                    token,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    "",
                    "[]",
                    "[]",
                    ABORTED,
                ],
            )
            self._drop_version(spark_layout.version_schema(self.schema, version, token))
            return False
        self._point_views(published[0], NULL_REPORTER)
        self._collect_garbage()
        return True


@contextlib.contextmanager
def spark_swap_check(loaded: LoadedConfig, journal: Journal) -> Iterator[bool | None]:
    """For `deploy_state.recover`: under production's deploy lock, settle the journal's version
    (finish its views or drop it) and say whether it was published (None: not this project's
    production target)."""
    output = load_profile_target(loaded)
    if output.get("type") != "spark":
        yield None
        return
    production = _SparkProduction(loaded, output)
    if production.identity() != journal.production:
        yield None
        return
    with production.locked():
        yield production.swapped(journal)
