"""The main job: what does this branch do to the data? One Report, with evidence.

sample (if stale) -> baseline environment (production's code at the merge-base, cached by commit
and sample) -> branch environment (only modified models and their children; unmodified parents
are read from the baseline through dbt's defer) -> static impact -> data diffs where data can
differ -> dbt test results -> policy -> Report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataops_dev import interrupts
from dataops_dev.atomic import write_text_atomic
from dataops_dev.config import LoadedConfig
from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.engines.base import Engine, Relation
from dataops_dev.environments import (
    BuildRecord,
    BuildRequest,
    EnvironmentInfo,
    Environments,
    baseline_name,
    environment_name,
    environment_target_name,
)
from dataops_dev.errors import BuildError, ProjectError
from dataops_dev.integrity import integrity_key
from dataops_dev.report._summary import next_commands
from dataops_dev.report.model import (
    SCHEMA_VERSION,
    ChangeKind,
    ColumnChange,
    ColumnProfileChange,
    ColumnType,
    DataDiff,
    ExposureImpact,
    HistogramBin,
    LineageEdge,
    ModelReport,
    ModelStatus,
    ProfileStats,
    Report,
    RowCounts,
    RowSample,
    SampleInfo,
    SchemaChange,
    Side,
    TestResult,
    TypeChange,
    ValueExample,
    Verdict,
)
from dataops_dev.reporting import NULL_REPORTER, Reporter, Stopwatch, task
from dataops_dev.sources import SOURCE_ALIAS, SourceData

PROFILE_COLUMNS = 12
"""Profiles (and histograms) are computed for at most this many changed columns per model."""
HISTOGRAM_BINS = 12
LINEAGE_EDGE_BUDGET = 2000


@dataclasses.dataclass(frozen=True)
class Baseline:
    info: EnvironmentInfo
    commit: str
    ref: str
    reused: bool


def export_code(loaded: LoadedConfig, commit: str, reporter: Reporter = NULL_REPORTER) -> Path:
    """Production's code at `commit`, exported once under `<state_dir>/code/<sha12>`, with its
    dbt packages installed (the working tree's install when the declaration is the same)."""
    from dataops_dev import gitrepo
    from dataops_dev.dbt.packages import ensure_packages

    destination = loaded.state_dir / "code" / commit[:12]
    git_state = gitrepo.state(loaded.project_dir)
    subdir = os.path.relpath(loaded.project_dir, git_state.root)
    code_dir = destination / subdir if subdir != "." else destination
    if not (code_dir / "dbt_project.yml").exists():
        code_dir = gitrepo.export_tree(loaded.project_dir, commit, subdir, destination)
    ensure_packages(
        code_dir,
        work_dir=loaded.state_dir / "deps",
        profiles_dir=loaded.profiles_dir,
        reuse_from=loaded.project_dir,
        reporter=reporter,
    )
    return code_dir


def ensure_baseline(
    loaded: LoadedConfig,
    envs: Environments,
    *,
    ref: str,
    commit: str,
    source: SourceData,
    reporter: Reporter = NULL_REPORTER,
) -> Baseline:
    """The baseline environment for `commit` on `source`; rebuilt only when either changed."""
    name = baseline_name(commit)
    info = envs.find(name)
    if info is not None and _still_current(loaded, envs, info, commit, source):
        return Baseline(info=info, commit=commit, ref=ref, reused=True)
    info = envs.create(ref, kind="baseline", name=name)
    code_dir = export_code(loaded, commit, reporter)
    record = envs.build(
        info, BuildRequest(code_dir=code_dir, commit=commit), source, reporter=reporter
    )
    if record.models_failed:
        raise BuildError(f"the baseline {name} did not build")
    return Baseline(info=envs.get(name), commit=commit, ref=ref, reused=False)


def _still_current(
    loaded: LoadedConfig,
    envs: Environments,
    info: EnvironmentInfo,
    commit: str,
    source: SourceData,
) -> bool:
    """The environment's last build is of `commit`, on `source`, with today's dbt target name
    (Jinja may branch on `target.name`), and its manifest is there."""
    last = info.last_build
    return (
        last is not None
        and last.commit == commit
        and last.source == source.identity
        and last.target == environment_target_name(loaded)
        and envs.manifest_path(info.name).exists()
    )


# ----------------------------------------------------------------------------------------------
# Engines over both environments


@contextmanager
def open_pair(
    loaded: LoadedConfig, envs: Environments, base: str, head: str, source: SourceData
) -> Iterator[Engine]:
    """One read-only connection that sees both environments (and the sample for source views)."""
    if envs.backend == "duckdb":
        from dataops_dev.engines.duckdb import DuckDBEngine

        engine = DuckDBEngine(":memory:")
        try:
            if source.duckdb_file is not None:
                engine.attach(source.duckdb_file, SOURCE_ALIAS)
            engine.attach(envs.database_path(base), base)
            if head != base:
                engine.attach(envs.database_path(head), head)
            yield engine
        finally:
            engine.close()
        return
    with envs.sandbox_engine() as engine:
        yield engine


def _relation(node: Node, env: str, backend: str) -> Relation:
    return Relation(
        schema=node.schema or "main",
        name=node.identifier,
        database=env if backend == "duckdb" else None,
    )


# ----------------------------------------------------------------------------------------------
# Conversions from the engine's results into the report's types


def _row_counts(table_diff: Any) -> RowCounts:
    rows = table_diff.rows
    keys = table_diff.keys
    keyless = bool(table_diff.keyless)
    return RowCounts(
        base=int(rows.left),
        head=int(rows.right),
        added=int(rows.only_right if keyless else rows.added),
        removed=int(rows.only_left if keyless else rows.removed),
        changed=int(rows.changed),
        unchanged=int(rows.unchanged),
        null_keys_base=int(keys.null_left) if keys else 0,
        null_keys_head=int(keys.null_right) if keys else 0,
        duplicate_keys_base=int(keys.duplicate_left) if keys else 0,
        duplicate_keys_head=int(keys.duplicate_right) if keys else 0,
        keyless=keyless,
    )


def _plain(value: Any) -> Any:
    from dataops_dev.diffing.model import json_value

    return json_value(value)


def _data_diff(
    table_diff: Any, profile: Any, histograms: Mapping[str, tuple[HistogramBin, ...]]
) -> DataDiff:
    key = tuple(table_diff.key) if table_diff.key else None
    key_names = key or ()

    def key_map(values: Sequence[Any]) -> dict[str, Any]:
        return {name: _plain(v) for name, v in zip(key_names, values, strict=False)}

    columns = tuple(
        ColumnChange(
            name=c.name,
            changed=int(c.changed),
            compared=int(c.compared),
            match_pct=c.match_pct,
            examples=tuple(
                ValueExample(key=key_map(e.key), before=_plain(e.before), after=_plain(e.after))
                for e in c.examples
            ),
        )
        for c in table_diff.columns
    )
    samples: list[RowSample] = []

    def plain_row(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return None if row is None else {k: _plain(v) for k, v in row.items()}

    for example in table_diff.examples:
        samples.append(
            RowSample(
                change=str(getattr(example.kind, "value", example.kind)),
                key=key_map(example.key),
                before=plain_row(example.before),
                after=plain_row(example.after),
            )
        )
    for row in table_diff.only_left_examples:
        samples.append(RowSample(change="removed", key={}, before=plain_row(row)))
    for row in table_diff.only_right_examples:
        samples.append(RowSample(change="added", key={}, after=plain_row(row)))
    profiles: list[ColumnProfileChange] = []
    if profile is not None:
        for pair in profile.columns:
            profiles.append(
                ColumnProfileChange(
                    name=pair.name,
                    base=_stats(pair.left),
                    head=_stats(pair.right),
                    histogram=histograms.get(pair.name, ()),
                )
            )
    return DataDiff(
        key=key,
        rows=_row_counts(table_diff),
        columns=columns,
        row_samples=tuple(samples),
        profile=tuple(profiles),
    )


def _stats(column: Any) -> ProfileStats | None:
    if column is None:
        return None
    return ProfileStats(
        count=int(column.rows),
        nulls=int(column.nulls),
        distinct=int(column.distinct) if column.distinct is not None else None,
        min=_plain(column.min),
        max=_plain(column.max),
        mean=float(column.mean) if column.mean is not None else None,
        quantiles={str(q): _plain(v) for q, v in column.quantiles},
        top_values=tuple((_plain(t.value), int(t.count)) for t in column.top_values),
    )


def _schema_change(table_diff: Any) -> SchemaChange:
    schema = table_diff.schema
    return SchemaChange(
        added=tuple(ColumnType(c.name, c.data_type) for c in schema.added),
        removed=tuple(ColumnType(c.name, c.data_type) for c in schema.removed),
        type_changed=tuple(
            TypeChange(t.name, t.left_type, t.right_type) for t in schema.type_changed
        ),
        renamed=tuple((r.left, r.right) for r in schema.renamed),
    )


def paired_histograms(
    engine: Engine,
    base: Relation,
    head: Relation,
    profile: Any,
    bins: int = HISTOGRAM_BINS,
) -> dict[str, tuple[HistogramBin, ...]]:
    """Before/after histograms on shared bins for numeric and date columns (one query each)."""
    import sqlglot

    from dataops_dev.engines.base import quote

    result: dict[str, tuple[HistogramBin, ...]] = {}
    for pair in profile.columns:
        left, right = pair.left, pair.right
        if left is None or right is None or left.family not in ("numeric", "temporal"):
            continue
        if right.family != left.family:
            # The type family changed (date -> int, numeric -> text): both sides cannot share
            # bins, and casting the head side to the base side's type can fail.
            continue
        if left.min is None or right.min is None:
            continue
        temporal = left.family == "temporal"
        column = quote(pair.name, "postgres")
        value = (
            f"EXTRACT(EPOCH FROM CAST({column} AS TIMESTAMP))"
            if temporal
            else f"CAST({column} AS DOUBLE PRECISION)"
        )
        base_sql = base.sql("postgres")
        head_sql = head.sql("postgres")
        query = f"""
            WITH v AS (
                SELECT 'b' AS side, {value} AS x FROM {base_sql}
                UNION ALL
                SELECT 'h' AS side, {value} AS x FROM {head_sql}
            ),
            r AS (SELECT MIN(x) AS lo, MAX(x) AS hi FROM v)
            SELECT
                LEAST(CAST(FLOOR((x - lo) / NULLIF((hi - lo) / {bins}, 0)) AS INT), {bins - 1}) AS bucket,
                MIN(lo) AS lo, MIN(hi) AS hi,
                SUM(CASE WHEN side = 'b' THEN 1 ELSE 0 END) AS b,
                SUM(CASE WHEN side = 'h' THEN 1 ELSE 0 END) AS h
            FROM v CROSS JOIN r
            WHERE x IS NOT NULL
            GROUP BY 1 ORDER BY 1
        """
        sql = sqlglot.transpile(query, read="postgres", write=engine.dialect)[0]
        rows = engine.fetchall(sql)
        if not rows:
            continue
        lo, hi = float(rows[0][1]), float(rows[0][2])
        width = (hi - lo) / bins if hi > lo else 0.0
        counts = {int(r[0] or 0): (int(r[3]), int(r[4])) for r in rows}

        def edge(i: int, lo: float = lo, width: float = width, temporal: bool = temporal) -> Any:
            point = lo + i * width
            if temporal:
                return datetime.fromtimestamp(point, UTC).isoformat(timespec="seconds")
            return round(point, 6)

        n = bins if width else 1
        result[pair.name] = tuple(
            HistogramBin(
                low=edge(i),
                high=edge(i + 1),
                base=counts.get(i, (0, 0))[0],
                head=counts.get(i, (0, 0))[1],
            )
            for i in range(n)
        )
    return result


# ----------------------------------------------------------------------------------------------
# Tests


def _tests_by_model(
    record: BuildRecord | None, manifest: Manifest | None
) -> dict[str, list[tuple[str, str]]]:
    """model unique_id -> [(test unique_id, status)] from a build record."""
    out: dict[str, list[tuple[str, str]]] = {}
    if record is None or manifest is None:
        return out
    for node in record.nodes:
        if not node.unique_id.startswith("test."):
            continue
        test = manifest.nodes.get(node.unique_id)
        if test is None:
            continue
        attached = test.raw.get("attached_node") or next(
            (d for d in test.depends_on_nodes if d.startswith("model.")), None
        )
        if attached:
            out.setdefault(attached, []).append((node.unique_id, node.status))
    return out


def _test_results(
    uid: str,
    head_tests: Mapping[str, list[tuple[str, str]]],
    base_status: Mapping[str, str],
    head_manifest: Manifest,
    head_target: Path,
    messages: Mapping[str, tuple[str | None, int | None]],
) -> tuple[TestResult, ...]:
    results = []
    for test_uid, status in sorted(head_tests.get(uid, ())):
        node = head_manifest.nodes.get(test_uid)
        failed = status in ("fail", "error")
        compiled = None
        if failed and node is not None:
            compiled = node.compiled_code or _compiled_file(head_target, node)
        results.append(
            TestResult(
                name=node.name if node else test_uid.split(".")[-2],
                unique_id=test_uid,
                status=status,
                message=messages.get(test_uid, (None, None))[0] if failed else None,
                failures=messages.get(test_uid, (None, None))[1] if failed else None,
                compiled_sql=compiled,
                new=failed and base_status.get(test_uid) not in ("fail", "error"),
            )
        )
    return tuple(results)


def _run_messages(target: Path) -> dict[str, tuple[str | None, int | None]]:
    """test unique_id -> (message, failures) from the build's run_results.json (read once)."""
    from dataops_dev.statefiles import read_cache_json

    data = read_cache_json(target / "run_results.json")  # missing or cut short: no messages
    if data is None:
        return {}
    return {
        r["unique_id"]: (r.get("message"), r.get("failures"))
        for r in data.get("results") or ()
        if "unique_id" in r
    }


def _compiled_file(target: Path, node: Node) -> str | None:
    path = target / "compiled" / node.package_name / node.original_file_path
    candidates = [path] if path.is_file() else list((target / "compiled").rglob(f"{node.name}.sql"))
    return candidates[0].read_text("utf-8") if candidates and candidates[0].is_file() else None


# ----------------------------------------------------------------------------------------------
# The review


def reports_dir(loaded: LoadedConfig, environment: str) -> Path:
    return loaded.state_dir / "reports" / environment


def save_report(loaded: LoadedConfig, report: Report) -> Path:
    """Write the report as `<state_dir>/reports/<environment>/report.json` (atomically), with
    its integrity tag when the masking salt is set (deploy refuses an untagged report)."""
    from dataops_dev.integrity import signed

    environment = report.head.environment or "unknown"
    path = reports_dir(loaded, environment) / "report.json"
    data = report.to_dict()
    key = integrity_key(loaded)
    if key is not None:
        data = signed(data, key)
    # The report's own JSON (contract key order), not the sorted state-file form; never after
    # a signal (a half-run review must not stand as the branch's last report).
    with interrupts.publishing():
        write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path


def load_report_file(loaded: LoadedConfig, path: Path) -> Report:
    """The report saved at `path`, its integrity tag checked (`Report.integrity` says how it
    went: a tampered or untagged report still reads, deploy refuses it)."""
    from dataops_dev.integrity import verify
    from dataops_dev.report.model import REPORT_FIX
    from dataops_dev.statefiles import load_json

    try:
        data = load_json(Path(path), what="report", fix=REPORT_FIX)
    except FileNotFoundError as exc:
        raise ProjectError(f"no report at {path}", REPORT_FIX) from exc
    report = Report.from_saved(data, Path(path))
    return dataclasses.replace(report, integrity=verify(data, integrity_key(loaded)))


def load_last_report(loaded: LoadedConfig, branch: str | None = None) -> Report:
    """The current branch's last saved report, its tag checked, with the approvals file applied."""
    from dataops_dev import gitrepo
    from dataops_dev.decisions import apply_decisions, change_authors, load_decisions

    branch = branch or gitrepo.state(loaded.project_dir).branch
    path = reports_dir(loaded, environment_name(branch)) / "report.json"
    if not path.exists():
        raise ProjectError(
            f"no review report for branch {branch!r} yet", "run `dataops-dev review` first"
        )
    report = load_report_file(loaded, path)
    authors = change_authors(loaded.project_dir, report)
    report = apply_decisions(report, load_decisions(loaded.project_dir), authors)
    return dataclasses.replace(report, next_commands=next_commands(report))


@dataclasses.dataclass
class ReviewRun:
    """What every stage of one review shares: the project, the two sides, the clock."""

    loaded: LoadedConfig
    envs: Environments
    git_state: Any
    """gitrepo.state of the working tree: branch, commit, dirty."""
    base_ref: str
    base_commit: str
    reporter: Reporter = NULL_REPORTER
    worktree: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Content hashes of the project files that differ from the head commit (`worktree_state`):
    deploy compares them with the files it finds, to tell a stale review."""
    watch: Stopwatch = dataclasses.field(default_factory=Stopwatch)
    started: float = dataclasses.field(default_factory=time.perf_counter)


@dataclasses.dataclass(frozen=True)
class BranchBuild:
    """The branch environment after the build stage."""

    info: EnvironmentInfo
    record: BuildRecord | None
    reused: bool
    error: str | None = None
    """Why the branch did not build (dbt's message), when it did not."""
    parse_error: str | None = None
    """Why dbt could not parse the branch, when it could not (nothing was built)."""


def run_review(
    loaded: LoadedConfig,
    *,
    base_ref: str | None = None,
    select: Sequence[str] = (),
    reporter: Reporter = NULL_REPORTER,
    refresh_sample: bool = False,
    reuse: Any = None,
) -> Report:
    """Build baseline and branch on the sample, compare them, and judge the result.

    Stages: start -> sample -> baseline -> branch build (parses the branch) -> impact ->
    model reports (diffs, tests) -> findings (policy, then `review_findings`) -> report.

    Args:
        base_ref: what the branch is compared with (default: production.main_branch); the
            baseline is built from the merge-base of it and HEAD.
        select: limit data diffs to these models (names); impact still covers everything.
        reuse: the `review_reuse.Lookup` already made (the CLI looks before importing this).
    """
    from dataops_dev import review_reuse

    reuse = reuse or review_reuse.lookup(
        loaded, base_ref=base_ref, select=select, refresh_sample=refresh_sample, reporter=reporter
    )
    if reuse.report is not None:
        return reuse.report  # nothing it depends on changed since the last review
    run = start_review(loaded, base_ref=base_ref, reporter=reporter)
    # The branch is parsed once, by its environment's build (a branch dbt cannot parse is a
    # finding, said by the build); the sample parses it too, only when it must be made again.
    with run.watch.measure("sample"):
        source, parse_error = _resolve_source(run, refresh_sample)
    if source is None:
        return finish_report(run, unparsable_branch_report(run, parse_error or ""))
    with run.watch.measure("baseline"):
        baseline = ensure_baseline(
            loaded,
            run.envs,
            ref=run.base_ref,
            commit=run.base_commit,
            source=source,
            reporter=reporter,
        )
    with run.watch.measure("branch_build"):
        branch = build_branch_env(run, source, baseline)
    if branch.parse_error is not None:
        return finish_report(run, unparsable_branch_report(run, branch.parse_error))
    with run.watch.measure("impact"), task(reporter, "impact", "impact and lineage"):
        impact = _analyze_impact(run, baseline)
    models = model_reports(run, source, baseline, branch, impact, select, reuse_diffs=reuse.diffs)
    models = [*review_findings(run, baseline, branch), *judge(run, models)]
    report = finish_report(run, assemble_report(run, source, baseline, branch, models))
    review_reuse.store(loaded, reuse, report, reporter)
    return report


def start_review(
    loaded: LoadedConfig, *, base_ref: str | None = None, reporter: Reporter = NULL_REPORTER
) -> ReviewRun:
    """Resolve both sides: the working tree's branch and the merge-base with `base_ref`."""
    from dataops_dev import gitrepo

    base_ref = base_ref or loaded.config.production.main_branch
    git_state = gitrepo.state(loaded.project_dir)
    return ReviewRun(
        loaded=loaded,
        envs=Environments(loaded),
        git_state=git_state,
        base_ref=base_ref,
        base_commit=gitrepo.merge_base(loaded.project_dir, base_ref, "HEAD"),
        reporter=reporter,
        worktree=worktree_state(loaded, git_state.commit),
    )


def _resolve_source(run: ReviewRun, refresh: bool) -> tuple[SourceData | None, str | None]:
    """The sample to build both sides from, or (None, dbt's error) when making it needs a parse
    of the branch and the branch does not parse."""
    from dataops_dev.errors import ParseFailed
    from dataops_dev.sources import resolve_source_data

    try:
        return resolve_source_data(run.loaded, reporter=run.reporter, refresh=refresh), None
    except ParseFailed as exc:
        return None, exc.message


def build_branch_env(run: ReviewRun, source: SourceData, baseline: Baseline) -> BranchBuild:
    """The branch's environment: only modified models and their children are built, their
    unmodified parents read from the baseline. The last build is reused when nothing changed."""
    from dataops_dev.errors import ParseFailed

    loaded, envs, git_state = run.loaded, run.envs, run.git_state
    info = envs.create(git_state.branch)
    record = _reusable_branch_build(
        loaded, envs, info, git_state.commit, source, baseline.info.name
    )
    error: str | None = None
    parse_error: str | None = None
    if record is None:
        request = BuildRequest(
            code_dir=loaded.project_dir,
            commit=git_state.commit,
            dirty=git_state.dirty,
            select=("state:modified+",),
            defer_to=baseline.info,
            # What the last review built and did not change since is kept, not rebuilt.
            extend_previous=True,
        )
        try:
            record = envs.build(info, request, source, reporter=run.reporter)
        except ParseFailed as exc:
            parse_error = exc.message
        except BuildError as exc:
            error = exc.message
    reused = record is not None and record == info.last_build
    return BranchBuild(
        info=envs.get(info.name),
        record=record,
        reused=reused,
        error=error,
        parse_error=parse_error,
    )


def _analyze_impact(run: ReviewRun, baseline: Baseline) -> Any:
    from dataops_dev.impact import analyze_impact

    # The baseline's own tree (exported to build it): changed seeds, macros, vars and files
    # behind sources are found by comparing the trees, as `impact --base` does.
    return analyze_impact(
        run.loaded.project_dir,
        run.envs.manifest_path(baseline.info.name),
        state_dir=run.loaded.state_dir,
        reporter=run.reporter,
        base_code_dir=export_code(run.loaded, run.base_commit),
    )


def model_reports(
    run: ReviewRun,
    source: SourceData,
    baseline: Baseline,
    branch: BranchBuild,
    impact: Any,
    select: Sequence[str],
    *,
    reuse_diffs: bool = False,
) -> list[ModelReport]:
    """One ModelReport per changed or impacted model: its data diff (where data can differ)
    and the branch's test results. `reuse_diffs`: a model's diff may come from an earlier
    review of the same two builds (`review_reuse.DiffCache`)."""
    loaded, envs, reporter = run.loaded, run.envs, run.reporter
    base_manifest = Manifest.load(envs.manifest_path(baseline.info.name))
    head_manifest = _head_manifest(envs, branch)
    changes = {m.name: m for m in impact.models}
    impacted_only: dict[str, str] = {}
    for change in impact.models:
        for name in change.impacted.models:
            if name not in changes:
                impacted_only.setdefault(name, change.name)
    diff_targets = [n for n in impact.diff_needed if not select or n in select]
    base_tests = {
        n.unique_id: n.status
        for n in (baseline.info.last_build.nodes if baseline.info.last_build else ())
        if n.unique_id.startswith("test.")
    }
    head_tests = _tests_by_model(branch.record, head_manifest)
    head_target = envs.target_dir(branch.info.name)
    test_messages = _run_messages(head_target) if head_manifest is not None else {}
    models: list[ModelReport] = []
    with (
        run.watch.measure("diffs"),
        task(reporter, "diffs", "data diffs", total=len(diff_targets)),
        contextlib.ExitStack() as stack,
    ):
        differ = (
            ModelDiffer(run, source, baseline, branch, stack, reuse=reuse_diffs)
            if branch.error is None
            else None
        )
        for name in [*changes, *impacted_only]:
            reporter.task_advanced("diffs", 0, f"diff {name}")
            models.append(
                _model_report(
                    loaded,
                    name,
                    changes.get(name),
                    impacted_by=impacted_only.get(name),
                    base_manifest=base_manifest,
                    head_manifest=head_manifest,
                    differ=differ,
                    diff=name in diff_targets,
                    head_tests=head_tests,
                    base_tests=base_tests,
                    head_target=head_target,
                    test_messages=test_messages,
                )
            )
            if name in diff_targets:
                reporter.task_advanced("diffs", 1)
    if differ is not None and differ.reused:
        reporter.message(
            "info",
            f"reused {len(differ.reused)} of {differ.diffs} data diffs: both environments'"
            " builds are the ones they compared",
        )
    return models


def _head_manifest(envs: Environments, branch: BranchBuild) -> Manifest | None:
    path = envs.manifest_path(branch.info.name)
    return Manifest.load(path) if path.exists() else None


def judge(run: ReviewRun, models: Sequence[ModelReport]) -> list[ModelReport]:
    """Each model's findings under the configured policy (dbt tests included)."""
    from dataops_dev.policy import evaluate

    policy = run.loaded.config.policy
    return [dataclasses.replace(m, findings=evaluate(m, policy)) for m in models]


def review_findings(run: ReviewRun, baseline: Baseline, branch: BranchBuild) -> list[ModelReport]:
    """Findings about the review as a whole rather than one model, each carried by a
    pseudo-model listed first (`(build)`, ...). Add new whole-review checks here."""
    from dataops_dev.trust import trust_model_report

    extra: list[ModelReport] = []
    # Trust boundary (trust.py): the branch's changes to masking policy or production target.
    if (trusted := trust_model_report(run.loaded)) is not None:
        extra.append(trusted)
    if branch.error is not None:
        extra.append(
            _review_finding(
                "(build)",
                "build",
                "build_failed",
                "the branch did not build",
                branch.error,
            )
        )
    return extra


def _review_finding(
    name: str, unique_id: str, rule: str, title: str, detail: str, *, kind: str = "build_failed"
) -> ModelReport:
    """A pseudo-model carrying one blocking finding about the whole review."""
    from dataops_dev.decisions import fingerprint
    from dataops_dev.report.model import Finding, FindingKind, Severity

    return ModelReport(
        name=name,
        unique_id=unique_id,
        status=ModelStatus.MODIFIED,
        change=ChangeKind.UNKNOWN,
        findings=(
            Finding(
                fingerprint=fingerprint(rule, detail),
                kind=FindingKind(kind),
                severity=Severity.BLOCKING,
                model=None,
                title=title,
                detail=detail,
            ),
        ),
    )


def unparsable_branch_report(run: ReviewRun, error: str) -> Report:
    """The report of a branch dbt cannot parse: one blocking finding that says why. Nothing of
    the branch is built or compared (there is no branch manifest to compare)."""
    from dataops_dev.dbt.project import read_project

    git_state = run.git_state
    finding = _review_finding(
        "(parse)",
        "parse",
        "parse_failed",
        "the branch does not parse: dbt parse failed",
        error,
    )
    timings = {k: round(v, 3) for k, v in run.watch.timings.items()}
    timings["total"] = round(time.perf_counter() - run.started, 3)
    return Report(
        schema_version=SCHEMA_VERSION,
        project=read_project(run.loaded.project_dir).name,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        base=Side(
            ref=run.base_ref, commit=run.base_commit, environment=baseline_name(run.base_commit)
        ),
        head=Side(
            ref=git_state.branch,
            commit=git_state.commit,
            environment=environment_name(git_state.branch),
            dirty=git_state.dirty,
        ),
        verdict=Verdict.BLOCKED,
        models=(finding,),
        timings=timings,
        worktree=run.worktree,
    )


def assemble_report(
    run: ReviewRun,
    source: SourceData,
    baseline: Baseline,
    branch: BranchBuild,
    models: Sequence[ModelReport],
) -> Report:
    """The Report of a review that got as far as comparing (lineage and exposures added)."""
    envs, git_state = run.envs, run.git_state
    base_manifest_path = envs.manifest_path(baseline.info.name)
    base_manifest = Manifest.load(base_manifest_path)
    head_manifest = _head_manifest(envs, branch)
    with run.watch.measure("lineage"):
        edges = _lineage_edges(
            run.loaded,
            envs.manifest_path(branch.info.name) if head_manifest else base_manifest_path,
            {m.unique_id for m in models},
        )
    exposures = _exposures(base_manifest, head_manifest, models)
    timings = {k: round(v, 3) for k, v in run.watch.timings.items()}
    timings["total"] = round(time.perf_counter() - run.started, 3)
    return Report(
        schema_version=SCHEMA_VERSION,
        project=base_manifest.project_name,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        base=Side(
            ref=run.base_ref,
            commit=run.base_commit,
            environment=baseline.info.name,
            reused=baseline.reused,
        ),
        head=Side(
            ref=git_state.branch,
            commit=git_state.commit,
            environment=branch.info.name,
            dirty=git_state.dirty,
            reused=branch.reused,
        ),
        verdict=Verdict.PASS,
        models=tuple(models),
        lineage=edges,
        exposures=exposures,
        sample=_sample_info(source, head_manifest or base_manifest, models),
        timings=timings,
        error=branch.error,
        worktree=run.worktree,
    )


def finish_report(run: ReviewRun, report: Report) -> Report:
    """Recorded approvals applied (the verdict follows from them) and the next commands."""
    from dataops_dev.decisions import apply_decisions, change_authors, load_decisions

    project_dir = run.loaded.project_dir
    report = apply_decisions(
        report, load_decisions(project_dir), change_authors(project_dir, report)
    )
    return dataclasses.replace(report, next_commands=next_commands(report))


def _sample_info(
    source: SourceData, manifest: Manifest, models: Sequence[ModelReport]
) -> SampleInfo:
    """Which sample the report was built on, and whether its examples are masked values: not
    when the models read committed seeds (never masked) or the sample masked nothing."""
    from dataops_dev.sources import seeds_upstream

    seeds = seeds_upstream(manifest, [m.unique_id for m in models])
    masked = source.kind == "sample" and source.masked_columns > 0 and not seeds
    description = ""
    if seeds:
        description = f"examples include committed seed values, not masked ({', '.join(seeds)})"
    elif not masked:
        description = "the sample has no masked columns: examples are not masked"
    return SampleInfo(
        identity=source.identity,
        kind=source.kind,
        description=description,
        examples_masked=masked,
    )


def _reusable_branch_build(
    loaded: LoadedConfig,
    envs: Environments,
    info: EnvironmentInfo,
    commit: str,
    source: SourceData,
    baseline: str,
) -> BuildRecord | None:
    """The branch's last build when it is still exactly what a new build would produce: same
    commit, nothing changed in the project since (decisions aside), same sample, same baseline."""
    last = info.last_build
    if (
        last is None
        or info.last_attempt is not None
        or not _still_current(loaded, envs, info, commit, source)
        or last.deferred_to != baseline
    ):
        return None
    if project_changes_since(loaded, commit):
        return None
    return last


def project_changes_since(loaded: LoadedConfig, commit: str) -> set[str]:
    """Files of the dbt project (relative to it) that differ from `commit`, untracked ones
    included, less what dataops-dev writes itself: the state directory and the approvals file.
    A project that does not git-ignore `.dataops/` would otherwise always look changed."""
    from dataops_dev import gitrepo
    from dataops_dev.decisions import APPROVALS_FILE
    from dataops_dev.deploy_state import LOCK_SUFFIX

    changed = gitrepo.changed_since(loaded.project_dir, commit) - {APPROVALS_FILE}
    # Deploy's lock file beside a production file kept in the project is ours too.
    changed = {path for path in changed if not path.endswith(LOCK_SUFFIX)}
    state = Path(os.path.relpath(loaded.state_dir, loaded.project_dir)).as_posix()
    if state in (".", "..") or state.startswith("../"):
        return changed
    return {path for path in changed if path != state and not path.startswith(state + "/")}


def worktree_state(loaded: LoadedConfig, commit: str) -> dict[str, str]:
    """Path -> content hash of each project file that differs from `commit` (see
    `project_changes_since`): with the commit, what a review of the working tree reads. Deploy
    compares it with the review's, so a file written after the review makes it stale, and one
    written before (an uncommitted `dataops_dev.yml`) does not."""
    import hashlib

    state: dict[str, str] = {}
    for relative in sorted(project_changes_since(loaded, commit)):
        path = loaded.project_dir / relative
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:32]
        except FileNotFoundError:
            digest = "deleted"
        except IsADirectoryError:
            digest = "directory"
        state[relative] = digest
    return state


def _model_report(
    loaded: LoadedConfig,
    name: str,
    change: Any,
    *,
    impacted_by: str | None,
    base_manifest: Manifest,
    head_manifest: Manifest | None,
    differ: ModelDiffer | None,
    diff: bool,
    head_tests: Mapping[str, list[tuple[str, str]]],
    base_tests: Mapping[str, str],
    head_target: Path,
    test_messages: Mapping[str, tuple[str | None, int | None]],
) -> ModelReport:
    base_node = _find(base_manifest, name)
    head_node = _find(head_manifest, name) if head_manifest else None
    node = head_node or base_node
    uid = node.unique_id if node else f"model.{name}"
    if change is not None:
        status = ModelStatus(change.status.value)
        kind = ChangeKind(change.change.value)
    else:
        status, kind = ModelStatus.IMPACTED, ChangeKind.NONE
    tests = (
        _test_results(uid, head_tests, base_tests, head_manifest, head_target, test_messages)
        if head_manifest is not None
        else ()
    )
    impacted_columns: tuple[str, ...] = ()
    if change is not None:
        impacted_columns = tuple(change.changed_columns)
    data: DataDiff | None = None
    schema: SchemaChange | None = None
    note: str | None = None
    materialized = node.materialized if node else None
    if differ is None:
        note = "no data diff: the branch did not build"
    elif not diff:
        note = (
            "no data diff: the change cannot alter data"
            if kind is ChangeKind.METADATA
            else "no data diff needed"
        )
    elif materialized == "ephemeral":
        note = "no data diff: ephemeral models have no relation"
    else:
        found = differ.diff(name, base_node, head_node, head_manifest, base_manifest)
        data, schema, note = found.data, found.schema, found.note
        if change is None and found.changed_columns is not None:
            impacted_columns = found.changed_columns
    impacted_models: tuple[str, ...] = tuple(change.impacted.models) if change is not None else ()
    exposures: tuple[str, ...] = tuple(change.exposures) if change is not None else ()
    if change is None and node is not None:
        exposures = tuple(
            sorted(
                e.get("name", uid_)
                for uid_, e in (head_manifest or base_manifest).exposures.items()
                if node.unique_id in ((e.get("depends_on") or {}).get("nodes") or ())
            )
        )
    return ModelReport(
        name=name,
        unique_id=uid,
        status=status,
        change=kind,
        changed_columns=tuple(change.changed_columns) if change is not None else (),
        impacted_columns=impacted_columns,
        rows_affected=bool(change.rows_affected) if change is not None else False,
        impacted_models=impacted_models,
        exposures=exposures,
        contract_enforced=bool(node.contract_enforced) if node else False,
        contract_broken=bool(getattr(change, "contract_broken", False)),
        materialized=materialized,
        reasons=tuple(change.reasons) if change is not None else (f"downstream of {impacted_by}",),
        schema=schema,
        diff=data,
        diff_note=note,
        tests=tests,
        base_sql=base_node.compiled_code if base_node else None,
        head_sql=head_node.compiled_code if head_node else None,
    )


@dataclasses.dataclass(frozen=True)
class ModelDiff:
    """What the diff stage found for one model: all the report keeps of its data diff."""

    data: DataDiff | None = None
    schema: SchemaChange | None = None
    note: str | None = None
    changed_columns: tuple[str, ...] | None = None
    """The columns whose values changed; None when no row diff ran."""


class ModelDiffer:
    """Runs, or reuses, each model's data diff in one review. A diff is reused when both
    environments hold the builds it compared and its own inputs are the same
    (`review_reuse.DiffCache`); the engine over both environments opens on the first diff that
    has to run, so a review whose diffs are all reused opens none."""

    def __init__(
        self,
        run: ReviewRun,
        source: SourceData,
        baseline: Baseline,
        branch: BranchBuild,
        stack: contextlib.ExitStack,
        *,
        reuse: bool,
    ) -> None:
        from dataops_dev.review_reuse import diff_cache

        self._run, self._source, self._stack = run, source, stack
        self.base_env, self.head_env = baseline.info.name, branch.info.name
        self.backend = run.envs.backend
        head_build = branch.record or branch.info.last_build
        self._cache = diff_cache(
            run.loaded,
            (self.base_env, baseline.info.last_build),
            (self.head_env, head_build),
            readable=reuse,
        )
        self._engine: Engine | None = None
        self.diffs = 0
        self.reused: list[str] = []

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._stack.enter_context(
                open_pair(
                    self._run.loaded, self._run.envs, self.base_env, self.head_env, self._source
                )
            )
        return self._engine

    def diff(
        self,
        name: str,
        base_node: Node | None,
        head_node: Node | None,
        head_manifest: Manifest | None,
        base_manifest: Manifest,
    ) -> ModelDiff:
        """The diff of model `name`, from the cache when its key matches, else run (and kept)."""
        from dataops_dev.config import as_plain
        from dataops_dev.diffing import discover_key, options_for_model
        from dataops_dev.report.model import to_jsonable

        self.diffs += 1
        loaded = self._run.loaded
        left = _relation(base_node, self.base_env, self.backend) if base_node else None
        right = _relation(head_node, self.head_env, self.backend) if head_node else None
        key: tuple[str, ...] | None = None
        if base_node is not None and head_node is not None:
            key = discover_key(
                head_manifest, head_node.unique_id, loaded.config.diff.keys
            ) or discover_key(base_manifest, base_node.unique_id, loaded.config.diff.keys)
        options = options_for_model(loaded.config.diff, name)
        # Everything of the model that decides its diff (the builds are the cache's scope).
        inputs = {
            "left": str(left) if left else None,
            "right": str(right) if right else None,
            "key": list(key) if key else None,
            "options": as_plain(options),
            "backend": self.backend,
        }
        reused = self._reused(name, inputs)
        if reused is not None:
            return reused
        found = self._compute(left, right, key, options)
        if self._cache is not None:
            self._cache.write(name, inputs, to_jsonable(found), self._run.reporter)
        return found

    def _reused(self, name: str, inputs: Mapping[str, Any]) -> ModelDiff | None:
        from dataops_dev.report.model import from_jsonable

        if self._cache is None:
            return None
        stored = self._cache.read(name, inputs, self._run.reporter)
        if stored is None:
            return None
        try:
            found = from_jsonable(ModelDiff, stored)
        except (TypeError, ValueError, KeyError):
            return None  # an entry of another shape: run the diff instead
        if not isinstance(found, ModelDiff):
            return None
        self.reused.append(name)
        self._run.reporter.task_advanced("diffs", 0, f"diff {name} (reused)")
        return found

    def _compute(
        self,
        left: Relation | None,
        right: Relation | None,
        key: tuple[str, ...] | None,
        options: Any,
    ) -> ModelDiff:
        if right is None:
            return ModelDiff(note="no data diff: the model exists only on the baseline")
        engine = self.engine()
        if left is None:
            columns = engine.columns(right)
            count = engine.fetchall(f"SELECT count(*) FROM {right.sql(engine.dialect)}")[0][0]
            return ModelDiff(
                data=DataDiff(key=None, rows=RowCounts(base=0, head=int(count), added=int(count))),
                schema=SchemaChange(added=tuple(ColumnType(c.name, c.data_type) for c in columns)),
                note="no data diff: the model exists only on the branch",
            )
        if not engine.columns(right):
            # dbt did not rebuild it on the branch (unmodified to dbt's state comparison): the
            # branch reads the baseline's relation, so there is no data difference to show.
            return ModelDiff(
                note="no data diff: the branch did not rebuild it (it reads the baseline's data)"
            )
        return _row_diff(engine, left, right, key, options)


def _row_diff(
    engine: Engine,
    left: Relation,
    right: Relation,
    key: tuple[str, ...] | None,
    options: Any,
) -> ModelDiff:
    """The keyed (or keyless) diff of both relations, with profiles of what changed."""
    from dataops_dev.diffing import diff_relations, profile_diff

    table_diff = diff_relations(engine, left, right, key=key, options=options)
    changed_names = [c.name for c in table_diff.columns if c.changed]
    profile_names = list(
        dict.fromkeys([*changed_names, *(a.name for a in table_diff.schema.added)])
    )[:PROFILE_COLUMNS]
    profile = None
    histograms: dict[str, tuple[HistogramBin, ...]] = {}
    if profile_names:
        profile = profile_diff(engine, left, right, columns=profile_names)
        histograms = paired_histograms(engine, left, right, profile)
    note = None
    if not key:
        note = "no key declared: rows compared as a multiset (add unique + not_null tests or diff.keys)"
    engine_notes = tuple(getattr(table_diff, "notes", ()) or ())
    if engine_notes:
        note = "; ".join(([note] if note else []) + [str(n) for n in engine_notes])
    return ModelDiff(
        data=_data_diff(table_diff, profile, histograms),
        schema=_schema_change(table_diff),
        note=note,
        changed_columns=tuple(changed_names),
    )


def _find(manifest: Manifest | None, name: str) -> Node | None:
    """The model called `name` (the manifest's name index), None when it has none."""
    if manifest is None:
        return None
    try:
        node = manifest.find(name)
    except ProjectError:
        return None
    if node.resource_type != "model":
        return None
    if manifest.project_name and node.package_name != manifest.project_name:
        # The index keeps one node per name: a package's model may shadow the project's own.
        return next((n for n in manifest.models() if n.name == name), None)
    return node


def _lineage_edges(
    loaded: LoadedConfig, manifest_path: Path, models: set[str]
) -> tuple[LineageEdge, ...]:
    from dataops_dev.lineage import load_project_lineage

    try:
        _manifest, lineage = load_project_lineage(
            manifest_path, project_dir=loaded.project_dir, state_dir=loaded.state_dir
        )
    except Exception:  # noqa: BLE001 - lineage is evidence, not a gate: the report says it is missing
        return ()
    edges: list[LineageEdge] = []
    for uid in sorted(models):
        model = lineage.models.get(uid)
        if model is None:
            continue
        for edge in model.edges:
            edges.append(
                LineageEdge(
                    source=f"{lineage.names.get(edge.source_node, edge.source_node)}.{edge.source_column}",
                    target=f"{lineage.names.get(edge.target_node, edge.target_node)}.{edge.target_column}",
                    kind=str(edge.kind.value),
                )
            )
            if len(edges) >= LINEAGE_EDGE_BUDGET:
                return tuple(edges)
    return tuple(edges)


def _exposures(
    base: Manifest, head: Manifest | None, models: Sequence[ModelReport]
) -> tuple[ExposureImpact, ...]:
    manifest = head or base
    by_uid = {m.unique_id: m.name for m in models}
    out = []
    for exposure in manifest.exposures.values():
        depends = (exposure.get("depends_on") or {}).get("nodes") or ()
        touched = tuple(sorted(by_uid[d] for d in depends if d in by_uid))
        if touched:
            owner = (exposure.get("owner") or {}).get("name") or (exposure.get("owner") or {}).get(
                "email"
            )
            out.append(
                ExposureImpact(
                    name=str(exposure.get("name")),
                    type=str(exposure.get("type") or ""),
                    owner=owner,
                    models=touched,
                )
            )
    return tuple(sorted(out, key=lambda e: e.name))
