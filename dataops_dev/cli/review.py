"""`dataops-dev review`, `decide` and `deploy`: preview -> decide -> deploy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format

FORMATS = ("text", "json", "markdown", "html")


def write_artifacts(loaded: Any, report: Any) -> dict[str, Path]:
    """report.json, report.md and report.html next to each other in the reports directory."""
    from dataops_dev import interrupts
    from dataops_dev.atomic import write_text_atomic
    from dataops_dev.cli.report import render_string
    from dataops_dev.review import save_report

    rendered = {fmt: render_string(report, fmt) for fmt in ("markdown", "html")}
    # The three change together, and never after a signal.
    with interrupts.publishing():
        json_path = save_report(loaded, report)
        paths = {"json": json_path}
        for fmt, suffix in (("markdown", "md"), ("html", "html")):
            path = json_path.with_suffix(f".{suffix}")
            write_text_atomic(path, rendered[fmt])
            paths[fmt] = path
    return paths


def approve_hint(findings: Any) -> str:
    """The exact `decide approve` commands of `findings` (the first three)."""
    from dataops_dev.report._summary import approve_command

    commands = [f"`{approve_command(f)}`" for f in findings]
    more = len(commands) - 3
    listed = "; ".join(commands[:3]) + (
        f" (and {more} more: `dataops-dev decide list`)" if more > 0 else ""
    )
    return f"if expected, approve with a note: {listed}; otherwise fix the branch"


def exit_for(report: Any) -> None:
    from dataops_dev.errors import BlockingFindings, BuildError
    from dataops_dev.report._summary import plural
    from dataops_dev.report.model import Verdict

    if report.verdict is Verdict.ERROR:
        raise BuildError(
            f"review incomplete: {report.error}",
            "fix the build (`dataops-dev build` shows dbt's errors), then `dataops-dev review`",
        )
    if report.verdict is Verdict.BLOCKED:
        count = len(report.blocking)
        raise BlockingFindings(
            f"{plural(count, 'blocking finding')} {'needs' if count == 1 else 'need'} a decision",
            approve_hint(report.blocking),
        )


FILES = (("json", "json"), ("markdown", "md"), ("html", "html"))


def reused_or_reviewed(app: AppContext, *, force: bool = False, **options: Any) -> Any:
    """The stored review when nothing changed since (review_reuse.py: no dbt, no DuckDB
    imported), else a review run with progress on stderr."""
    from dataops_dev.reporting import CaptureReporter
    from dataops_dev.review_reuse import lookup

    captured = CaptureReporter()
    found = lookup(app.loaded, reporter=captured, force=force, **options)
    if not app.quiet:
        for text in captured.messages("warning"):
            click.echo(f"warning: {text}", err=True)
    if app.debug:
        click.echo(f"review reuse: {found.reason}", err=True)
    if found.report is not None:
        return found.report
    from dataops_dev.review import run_review

    with app.reporter() as reporter:
        return run_review(app.loaded, reporter=reporter, reuse=found, **options)


@click.command()
@click.option("--base", "base_ref", help="Compare with this ref (default: production.main_branch).")
@click.option("--select", "-s", multiple=True, help="Limit data diffs to these models.")
@click.option("--refresh-sample", is_flag=True, help="Rebuild the masked sample first.")
@click.option(
    "--no-reuse",
    is_flag=True,
    help="Run the review even when nothing changed since the last one (which is reused).",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@format_options(choices=FORMATS)
@click.pass_obj
def review(
    app: AppContext,
    base_ref: str | None,
    select: tuple[str, ...],
    refresh_sample: bool,
    no_reuse: bool,
    output: Path | None,
    output_format: str,
    as_json: bool,
) -> None:
    """The main job: build base and branch on the sample, compare, judge. Exit 3 when blocked."""
    from dataops_dev.cli.report import emit

    report = reused_or_reviewed(
        app, force=no_reuse, base_ref=base_ref, select=select, refresh_sample=refresh_sample
    )
    paths = None
    if report.reused_from is not None:
        if not app.quiet:
            click.echo(
                f"reused the review of {report.reused_from}: nothing it depends on changed"
                " since (`--no-reuse` runs it again)",
                err=True,
            )
        from dataops_dev.review_reuse import saved_artifacts

        paths = saved_artifacts(app.loaded, report, dict(FILES))
    paths = paths or write_artifacts(app.loaded, report)
    click.echo(
        "report: " + ", ".join(f"{k} {v}" for k, v in paths.items()),
        err=True,
    )
    emit(report, resolve_format(output_format, as_json), output)
    exit_for(report)


@click.group()
def decide() -> None:
    """Approve or reject findings of the last review (bound to their fingerprints)."""


def _last(app: AppContext) -> Any:
    from dataops_dev.review import load_last_report

    return load_last_report(app.loaded)


def _lookup(app: AppContext, prefix: str) -> Any:
    """The finding `prefix` names: in the last review, else among the pre-commit guard's
    findings (those can be acknowledged before any review exists)."""
    from dataops_dev.decisions import find_finding
    from dataops_dev.errors import ProjectError, UsageError
    from dataops_dev.hooks import find_static_finding

    try:
        return find_finding(_last(app), prefix)
    except (UsageError, ProjectError) as review_error:
        finding = find_static_finding(app.loaded, prefix)
        if finding is None:
            raise review_error from None
        return finding


@decide.command("list")
@format_options(choices=("text", "json"))
@click.pass_obj
def decide_list(app: AppContext, output_format: str, as_json: bool) -> None:
    """Findings of the last review with their decisions; stale decisions are listed too."""
    from dataops_dev.decisions import (
        change_authors,
        invalid_decisions,
        load_decisions,
        stale_decisions,
    )

    report = _last(app)
    decisions = load_decisions(app.loaded.project_dir)
    stale = stale_decisions(report, decisions)
    invalid = invalid_decisions(report, decisions, change_authors(app.loaded.project_dir, report))
    if resolve_format(output_format, as_json) == "json":
        emit_json(
            {
                "verdict": report.verdict.value,
                "findings": [
                    {
                        "fingerprint": f.fingerprint,
                        "kind": f.kind.value,
                        "severity": f.severity.value,
                        "model": f.model,
                        "title": f.title,
                        "decision": f.approval.decision.value if f.approval else None,
                        "blocking": f.blocking,
                    }
                    for f in report.findings
                ],
                "stale_decisions": [d.fingerprint for d in stale],
                "invalid_decisions": [
                    {"fingerprint": d.fingerprint, "reason": d.reason} for d in invalid
                ],
            }
        )
        return
    click.echo(f"verdict: {report.verdict.value}")
    for f in report.findings:
        state = (
            f.approval.decision.value if f.approval else ("needs a decision" if f.blocking else "")
        )
        click.echo(f"{f.fingerprint}  {f.severity.value:<8}  {f.title}  {state}".rstrip())
    for d in stale:
        click.echo(f"{d.fingerprint}  stale     {d.title or ''} (no longer matches: re-decide)")
    for bad in invalid:
        click.echo(f"{bad.fingerprint}  invalid   {bad.title}: {bad.reason} (does not count)")


def _decide(app: AppContext, fingerprint: str, note: str, decision: str) -> None:
    from dataops_dev.decisions import TRUST_KINDS, approvals_path, change_authors, record_decision
    from dataops_dev.report.model import Decision

    finding = _lookup(app, fingerprint)
    # Who wrote the change matters only for trust-boundary findings, which come from a review.
    authors = (
        change_authors(app.loaded.project_dir, _last(app))
        if finding.kind in TRUST_KINDS
        else frozenset()
    )
    recorded = record_decision(
        app.loaded.project_dir, finding, Decision(decision), note=note, authors=authors
    )
    click.echo(
        f"{recorded.decision.value}: {finding.title} ({finding.fingerprint}) by {recorded.by}"
        f" -> {approvals_path(app.loaded.project_dir).name} (commit it with the branch)"
    )


@decide.command("approve")
@click.argument("fingerprint")
@click.option("--note", "-m", default="", help="Why this is expected (required for blocking).")
@click.pass_obj
def approve(app: AppContext, fingerprint: str, note: str) -> None:
    """Approve the finding FINGERPRINT (6+ characters are enough)."""
    _decide(app, fingerprint, note, "approved")


@decide.command("reject")
@click.argument("fingerprint")
@click.option("--note", "-m", default="", help="Why.")
@click.pass_obj
def reject(app: AppContext, fingerprint: str, note: str) -> None:
    """Reject the finding FINGERPRINT: it keeps blocking."""
    _decide(app, fingerprint, note, "rejected")


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@format_options(choices=("text", "json"))
@click.pass_obj
def deploy(app: AppContext, dry_run: bool, output_format: str, as_json: bool) -> None:
    """Promote the reviewed branch to production (write, audit, publish). Refuses when blocked."""
    from dataops_dev.deploy import deploy as run_deploy
    from dataops_dev.deploy import plan_deploy
    from dataops_dev.errors import BlockingFindings, BuildError, UsageError
    from dataops_dev.report._summary import plural, short_sha

    report = _last(app)
    plan = plan_deploy(app.loaded, report)
    fmt = resolve_format(output_format, as_json)
    if dry_run:
        from dataops_dev.deploy import with_production_rows

        plan = with_production_rows(app.loaded, plan)
        if fmt == "json":
            emit_json(plan.to_dict())
        else:
            click.echo(
                f"deploy plan for {plan.target} ({plan.target_type}) at {short_sha(plan.commit)}:"
            )
            for i, model in enumerate(plan.models, 1):
                rows = (
                    "new in production"
                    if model.production_rows is None
                    else f"production: {model.production_rows:,} rows"
                )
                sample = f" · sample: {model.row_change}" if model.row_change else ""
                click.echo(f"  {i:>2}. {model.action:<7} {model.name:<32} {rows}{sample}")
            if plan.unverified:
                click.echo(f"refused: {plan.unverified}")
            if plan.error:
                click.echo(f"refused: {plan.error}")
            if plan.stale:
                click.echo(f"refused: {plan.stale}")
            for finding in plan.blocked_by:
                click.echo(
                    f"refused: unapproved {finding.kind.value}: {finding.title} ({finding.fingerprint})"
                )
            for invalid in plan.invalid_approvals:
                click.echo(f"approval of {invalid.fingerprint} does not count: {invalid.reason}")
            if plan.allowed:
                click.echo("allowed: run `dataops-dev deploy` to apply")
        if plan.unverified:
            raise UsageError(
                f"deploy would be refused: {plan.unverified}",
                "run `dataops-dev review` to write a new report",
            )
        if plan.error:
            raise BuildError(
                f"deploy would be refused: {plan.error}",
                "fix the build, then run `dataops-dev review`",
            )
        if plan.stale:
            raise UsageError(f"deploy would be refused: {plan.stale}", "run `dataops-dev review`")
        if plan.blocked_by:
            raise BlockingFindings(
                f"deploy would be refused: {plural(len(plan.blocked_by), 'blocking finding')}",
                approve_hint(plan.blocked_by),
            )
        return
    with app.reporter() as reporter:
        result = run_deploy(app.loaded, report, reporter=reporter)
    if fmt == "json":
        emit_json(
            {
                "deployed_at": result.deployed_at,
                "record": str(result.record),
                "plan": result.plan.to_dict(),
                "timings": dict(result.timings),
            }
        )
    else:
        click.echo(
            f"deployed {len(result.plan.models)} model(s) to {result.plan.target} ({result.record})"
        )
