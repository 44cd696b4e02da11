"""`dataops-dev comment`: create or update the one sticky PR comment from a review report.

Token from GITHUB_TOKEN; repository and PR from GitHub Actions (or --repo/--pr); --dry-run prints
the body on stdout and the action it would take on stderr.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format


@click.command()
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A report JSON file (default: the current branch's last review).",
)
@click.option(
    "--body-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Post this markdown (e.g. from `review --format markdown -o`) instead of rendering.",
)
@click.option("--repo", help="owner/name (default: GITHUB_REPOSITORY).")
@click.option("--pr", "pr_number", type=int, help="PR number (default: from GITHUB_EVENT_PATH).")
@click.option("--budget", type=int, help="Maximum characters of the body (default 60,000).")
@click.option("--dry-run", is_flag=True, help="Print the body and the action; change nothing.")
@format_options(choices=("text", "json"))
@click.pass_obj
def comment(
    app: AppContext,
    report_path: Path | None,
    body_file: Path | None,
    repo: str | None,
    pr_number: int | None,
    budget: int | None,
    dry_run: bool,
    output_format: str,
    as_json: bool,
) -> None:
    """Create or update the sticky review comment on the pull request."""
    from dataops_dev.cli.report import check_budget
    from dataops_dev.errors import UsageError
    from dataops_dev.github import (
        DEFAULT_API_URL,
        MARKER,
        CommentAction,
        GitHubClient,
        apply_plan,
        plan_comment,
        pull_request_from_env,
    )

    if body_file is not None and report_path is not None:
        raise UsageError(
            "give --report or --body-file, not both",
            "--body-file posts a rendered body as is; --report renders one",
        )
    check_budget(budget)
    if body_file is not None:
        body = body_file.read_text("utf-8")
        if MARKER not in body:
            raise UsageError(
                f"{body_file} lacks the review marker {MARKER}",
                "render it with `dataops-dev review --format markdown -o FILE`",
            )
        if budget is not None and len(body) > budget:
            raise UsageError(
                f"{body_file} has {len(body):,} characters, over --budget {budget:,}",
                f"render a shorter one with `dataops-dev report --format markdown --budget "
                f"{budget} -o {body_file}`",
            )
    else:
        from dataops_dev.cli.report import load_report, render_string

        # render_markdown degrades the body to fit the budget.
        body = render_string(load_report(app, report_path), "markdown", budget=budget)

    environ = dict(os.environ)
    token = environ.get("GITHUB_TOKEN", "")
    api_url = environ.get("GITHUB_API_URL") or DEFAULT_API_URL
    fmt = resolve_format(output_format, as_json)
    pr = None
    try:
        pr = pull_request_from_env(environ, repository=repo, number=pr_number)
    except UsageError:
        if not dry_run:
            raise
    if dry_run:
        action = "create or update (not checked)"
        comment_id = None
        if pr is not None and token:
            plan = plan_comment(GitHubClient(token, api_url), pr, body)
            action, comment_id = plan.action.value, plan.comment_id
        target = f"{pr.repository}#{pr.number}" if pr else "(no pull request)"
        if fmt == "json":
            emit_json(
                {
                    "dry_run": True,
                    "action": action,
                    "comment_id": comment_id,
                    "pull_request": target,
                    "characters": len(body),
                    "body": body,
                }
            )
            return
        click.echo(body, nl=False)
        suffix = f" (comment {comment_id})" if comment_id else ""
        click.echo(
            f"dry run: would {action} the review comment on {target}{suffix}; "
            f"{len(body):,} characters",
            err=True,
        )
        return
    if not token:
        raise UsageError(
            "GITHUB_TOKEN is not set",
            "export GITHUB_TOKEN, or in Actions: env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
        )
    assert pr is not None
    client = GitHubClient(token, api_url)
    result = apply_plan(client, plan_comment(client, pr, body), body)
    if fmt == "json":
        emit_json(
            {
                "dry_run": False,
                "action": result.action.value,
                "comment_id": result.comment_id,
                "url": result.url,
                "pull_request": f"{pr.repository}#{pr.number}",
            }
        )
        return
    verb = {
        CommentAction.CREATE: "created",
        CommentAction.UPDATE: "updated",
        CommentAction.UNCHANGED: "left unchanged",
    }[result.action]
    click.echo(f"{verb} comment {result.comment_id} on {pr.repository}#{pr.number}", err=True)
    if result.url:
        click.echo(result.url)
