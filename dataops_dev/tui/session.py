"""The TUI's only door to the core: load the last report, record decisions, re-run jobs, plan deploys.

Screens call these methods (re-runs from thread workers); every rule lives in the core modules
(`review`, `decisions`, `impact`, `environments`, `deploy`). Heavy imports happen per call so the
first paint never waits for dbt or sqlglot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataops_dev.report._summary import plural
from dataops_dev.report.model import (
    ChangeKind,
    Decision,
    Finding,
    ModelReport,
    ModelStatus,
    Report,
)
from dataops_dev.reporting import NULL_REPORTER, Reporter

if TYPE_CHECKING:
    from dataops_dev.config import LoadedConfig
    from dataops_dev.deploy import DeployPlan, DeployResult
    from dataops_dev.impact import ImpactReport


class Job(str, Enum):
    REVIEW = "review"
    """The whole preview: sample, base + branch envs, impact, diffs, tests."""
    BUILD = "build"
    """dbt build of the branch into its environment (as `dataops-dev build`)."""
    IMPACT = "impact"
    """The static change set: no dbt, no database."""
    DIFF = "diff"
    """Review of the selected model only; its entry in the report is replaced."""


@dataclass(frozen=True)
class JobResult:
    job: Job
    report: Report | None
    """The report to show now (None: the job does not change the report)."""
    summary: str


class ReviewSession:
    """A project (or a bare report file) being reviewed in the TUI."""

    def __init__(
        self,
        *,
        project_dir: Path | None = None,
        report_path: Path | None = None,
        load: Callable[[], LoadedConfig] | None = None,
    ) -> None:
        """`load` returns the project's configuration (the CLI passes its own, which honours
        --config and overrides); by default it is found from `project_dir` or the cwd."""
        self._load = load or (lambda: _load_config(project_dir))
        self._loaded: LoadedConfig | None = None
        self.report_path = report_path
        self.project_dir = project_dir

    @property
    def loaded(self) -> LoadedConfig:
        """The project's configuration (loaded on first use: browsing a report needs none)."""
        if self._loaded is None:
            self._loaded = self._load()
            self.project_dir = self._loaded.project_dir
        return self._loaded

    def _project(self) -> Path | None:
        """The project whose approvals file holds the decisions; None when a bare report is
        browsed outside any project (decisions then say where to run)."""
        if self.project_dir is None:
            from dataops_dev.errors import DataopsError

            try:
                self.loaded  # noqa: B018 - sets project_dir
            except DataopsError:
                return None
        return self.project_dir

    # -- reading ------------------------------------------------------------------------------

    def load_report(self) -> Report:
        """The saved report (`report_path`, else the current branch's last one), with the
        recorded decisions of the approvals file applied."""
        if self.report_path is not None:
            if not self.report_path.is_file():
                from dataops_dev.errors import ProjectError

                raise ProjectError(
                    f"no report at {self.report_path}", "run `dataops-dev review` to write one"
                )
            # Browsing loads no config; the tag is checked when a deploy is planned.
            return self.with_decisions(Report.load(self.report_path))
        from dataops_dev import review

        return review.load_last_report(self.loaded)  # decisions applied there

    def with_decisions(self, report: Report) -> Report:
        project_dir = self._project()
        if project_dir is None:
            return report
        from dataops_dev.decisions import apply_decisions, change_authors, load_decisions

        authors = change_authors(project_dir, report)
        return apply_decisions(report, load_decisions(project_dir), authors)

    # -- deciding -----------------------------------------------------------------------------

    def decide(self, report: Report, finding: Finding, decision: Decision, note: str) -> Report:
        """Record the decision in the approvals file (as `decide` does); the updated report."""
        from dataops_dev.decisions import TRUST_KINDS, change_authors, record_decision
        from dataops_dev.errors import UsageError

        project_dir = self._project()
        if project_dir is None:
            raise UsageError(
                "no project to record the decision in", "start the TUI inside the dbt project"
            )
        authors = (
            change_authors(project_dir, report) if finding.kind in TRUST_KINDS else frozenset()
        )
        record_decision(project_dir, finding, decision, note=note, authors=authors)
        return self.with_decisions(report)

    def plan_deploy(self, report: Report) -> DeployPlan:
        """`deploy --dry-run`: the plan (models in build order, blocking findings)."""
        from dataops_dev.deploy import plan_deploy

        return plan_deploy(self.loaded, self._checked(report))

    def deploy(self, report: Report, reporter: Reporter = NULL_REPORTER) -> DeployResult:
        from dataops_dev.deploy import deploy

        return deploy(self.loaded, self._checked(report), reporter=reporter)

    def _checked(self, report: Report) -> Report:
        """`report` as deploy may judge it: a `--report` file read unchecked is read again with
        its integrity tag checked (deploy refuses it unless the tag matches)."""
        from dataops_dev.integrity import IntegrityStatus

        if report.integrity is not IntegrityStatus.UNCHECKED or self.report_path is None:
            return report
        from dataops_dev import review

        return self.with_decisions(review.load_report_file(self.loaded, self.report_path))

    # -- re-running ---------------------------------------------------------------------------

    def run(
        self,
        job: Job,
        current: Report | None,
        *,
        model: str | None = None,
        reporter: Reporter = NULL_REPORTER,
    ) -> JobResult:
        """Run `job` through the core (called from a thread worker)."""
        if job is Job.REVIEW:
            return self._review(reporter)
        if job is Job.DIFF:
            return self._diff(current, model, reporter)
        if job is Job.BUILD:
            return self._build(reporter)
        return self._impact(current, reporter)

    def _review(self, reporter: Reporter) -> JobResult:
        from dataops_dev import review

        # run_review applies the approvals file itself.
        report = review.run_review(self.loaded, reporter=reporter)
        review.save_report(self.loaded, report)
        return JobResult(Job.REVIEW, report, f"review finished: {report.verdict.value}")

    def _diff(self, current: Report | None, model: str | None, reporter: Reporter) -> JobResult:
        from dataops_dev import review
        from dataops_dev.decisions import verdict_of

        selected: Sequence[str] = (model,) if model else ()
        fresh = review.run_review(self.loaded, select=selected, reporter=reporter)
        if current is None or not model:
            return JobResult(Job.DIFF, fresh, "diff finished")
        # `select` limits the data diffs to the model (impact still covers every model): take
        # only that model from the fresh report and keep the rest as last reviewed.
        updated = next((m for m in fresh.models if m.name == model), None)
        if updated is None:
            return JobResult(Job.DIFF, current, f"{model} is no longer in the change set")
        names = {m.name for m in current.models}
        models = tuple(updated if m.name == model else m for m in current.models)
        models += () if model in names else (updated,)
        verdict = verdict_of(models, current.error)
        merged = dataclasses.replace(current, models=models, verdict=verdict)
        # Both sides already carry the approvals file's decisions (load_report, run_review).
        return JobResult(Job.DIFF, merged, f"diff of {model} finished")

    def _build(self, reporter: Reporter) -> JobResult:
        from dataops_dev.environments import build_branch

        # The whole branch, as `dataops-dev build` does: a selection (`model+`) is built without
        # deferring its unmodified parents to the baseline, so it fails on a fresh environment.
        info, record = build_branch(self.loaded, reporter=reporter)
        failed = [
            n.unique_id
            for n in record.nodes
            if n.unique_id.startswith("test.") and n.status in ("fail", "error")
        ]
        summary = f"built {info.name}: {len(record.nodes)} nodes, {len(failed)} failed tests"
        return JobResult(Job.BUILD, None, summary + " (press r to review the new build)")

    def _impact(self, current: Report | None, reporter: Reporter) -> JobResult:
        from dataops_dev.dbt.parse import ensure_packages
        from dataops_dev.impact import analyze_impact, resolve_base

        loaded = self.loaded
        # As `dataops-dev impact`: a found manifest, else main's tree parsed by dbt once (cached),
        # so a fresh clone needs nothing prepared (this runs in a worker thread).
        base = resolve_base(loaded, None, reporter=reporter)
        ensure_packages(loaded, reporter=reporter)
        fresh = analyze_impact(
            loaded.project_dir,
            base.manifest,
            state_dir=loaded.state_dir,
            reporter=reporter,
            base_code_dir=base.code_dir,
        )
        report = static_overlay(current, fresh) if current is not None else None
        changed = len(fresh.models)
        origin = base.origin
        if origin == "found":
            # A manifest found on disk: say which (a parsed one names its ref and commit).
            origin = _shown(base.manifest, loaded.project_dir)
        return JobResult(
            Job.IMPACT,
            self.with_decisions(report) if report is not None else None,
            f"impact: {plural(changed, 'changed model')} in the working tree (base: {origin})",
        )


def static_overlay(report: Report, impact: ImpactReport) -> Report:
    """The report with the static change set of the working tree laid over it: classifications
    come from `impact`, data diffs stay those of the last review (until `review` runs again)."""
    models = {m.name: m for m in report.models}
    for change in impact.models:
        fields: dict[str, Any] = {
            "status": ModelStatus(change.status.value),
            "change": ChangeKind(change.change.value),
            "changed_columns": change.changed_columns,
            "rows_affected": change.rows_affected,
            "reasons": change.reasons,
            "impacted_models": change.impacted.models,
            "exposures": change.exposures,
            "contract_enforced": change.contract_enforced,
        }
        existing = models.get(change.name)
        if existing is None or existing.diff is None:
            fields["diff_note"] = "classified by `impact`: run `review` for data diffs"
        if existing is None:
            models[change.name] = ModelReport(
                name=change.name, unique_id=change.unique_id, **fields
            )
        else:
            models[change.name] = dataclasses.replace(existing, **fields)
    return dataclasses.replace(report, models=tuple(models.values()))


def _shown(path: Path, project_dir: Path) -> str:
    try:
        return path.relative_to(project_dir).as_posix()
    except ValueError:
        return str(path)


def _load_config(project_dir: Path | None) -> LoadedConfig:
    from dataops_dev.config import load_config

    return load_config(project_dir=project_dir)
