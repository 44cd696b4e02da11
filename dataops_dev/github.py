"""The sticky PR comment: find our one comment by its hidden marker, then update it or create it.

GitHub REST API over urllib (no new dependency): token from GITHUB_TOKEN, repository and PR from
the Actions environment (GITHUB_REPOSITORY, GITHUB_EVENT_PATH) unless given explicitly.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from dataops_dev.errors import GitHubError, UsageError
from dataops_dev.report._summary import MARKER

__all__ = [
    "DEFAULT_API_URL",
    "MARKER",
    "CommentAction",
    "CommentPlan",
    "CommentResult",
    "GitHubClient",
    "PullRequest",
    "apply_plan",
    "plan_comment",
    "pull_request_from_env",
    "upsert_comment",
]

DEFAULT_API_URL = "https://api.github.com"
PER_PAGE = 100
MAX_BODY = 65_536
"""GitHub rejects longer comment bodies (422)."""
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class CommentAction(str, Enum):
    CREATE = "create"
    """No comment carries the marker yet: post one."""
    UPDATE = "update"
    """Our comment exists and its body differs: edit it in place."""
    UNCHANGED = "unchanged"
    """Our comment already says exactly this: no request."""


@dataclass(frozen=True)
class PullRequest:
    repository: str
    """owner/name"""
    number: int


@dataclass(frozen=True)
class CommentPlan:
    action: CommentAction
    pull_request: PullRequest
    comment_id: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class CommentResult:
    action: CommentAction
    comment_id: int
    url: str | None


def pull_request_from_env(
    environ: Mapping[str, str], *, repository: str | None = None, number: int | None = None
) -> PullRequest:
    """The PR to comment on: explicit values first, then the GitHub Actions environment."""
    repository = repository or environ.get("GITHUB_REPOSITORY")
    if not repository:
        raise UsageError(
            "no repository: GITHUB_REPOSITORY is not set",
            "pass --repo owner/name (GitHub Actions sets GITHUB_REPOSITORY)",
        )
    if not _REPO.match(repository) or any(p in (".", "..") for p in repository.split("/")):
        raise UsageError(f"repository {repository!r} is not owner/name", "pass --repo owner/name")
    if number is None:
        event_path = environ.get("GITHUB_EVENT_PATH")
        if event_path:
            try:
                event = json.loads(Path(event_path).read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise UsageError(
                    f"cannot read the event file {event_path}: {exc}", "pass --pr NUMBER"
                ) from exc
            pr = event.get("pull_request") or {}
            raw = pr.get("number") or (event.get("issue") or {}).get("number")
            number = int(raw) if raw is not None else None
    if number is None:
        raise UsageError(
            "no pull request number: not a pull_request event",
            "pass --pr NUMBER, or run the workflow on `pull_request`",
        )
    if number <= 0:
        raise UsageError(f"pull request number {number} is not positive", "pass --pr NUMBER")
    return PullRequest(repository, number)


_HINTS = {
    401: "the token was refused: check GITHUB_TOKEN (in Actions: `${{ secrets.GITHUB_TOKEN }}`)",
    403: "the token may not write PR comments: give the job `permissions: pull-requests: write`",
    404: "check --repo and --pr, and that the token can see the repository",
    422: "GitHub rejected the body (too long?): lower the markdown budget",
}


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows redirects with every header, `Authorization` included, to any host: we
    follow none (the endpoints we call never redirect), so the token stays with the API."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_EXPECTED_STATUS = {"GET": 200, "POST": 201, "PATCH": 200}


class GitHubClient:
    """The few issue-comment endpoints we need, with a timeout and errors that say what to do."""

    def __init__(
        self, token: str, api_url: str = DEFAULT_API_URL, *, timeout: float = 30.0
    ) -> None:
        if not token:
            raise UsageError("GITHUB_TOKEN is empty", "export GITHUB_TOKEN (or use --dry-run)")
        scheme = urllib.parse.urlsplit(api_url).scheme
        if scheme not in ("https", "http"):
            raise UsageError(f"GITHUB_API_URL {api_url!r} is not an http(s) URL")
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects())

    def _request(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> tuple[Any, Mapping[str, str]]:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "dataops-dev")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        path = urllib.parse.urlsplit(url).path
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                payload = response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                location = exc.headers.get("Location") or "" if exc.headers else ""
                where = _origin(urllib.parse.urljoin(url, location)) if location else "elsewhere"
                raise GitHubError(
                    f"GitHub answered {exc.code} to {method} {path}, a redirect to {where}: "
                    "not followed (the token is only ever sent to "
                    f"{_origin(self.api_url)}); nothing was posted",
                    "check GITHUB_API_URL: it must be the API's own base URL "
                    "(GitHub Enterprise: https://HOST/api/v3)",
                    status=exc.code,
                ) from exc
            detail = ""
            with contextlib.suppress(ValueError, AttributeError):
                detail = str(json.loads(exc.read() or b"{}").get("message", ""))
            raise GitHubError(
                f"GitHub answered {exc.code} to {method} {path}"
                + (f": {detail}" if detail else ""),
                _HINTS.get(exc.code, "retry later; see https://www.githubstatus.com"),
                status=exc.code,
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(
                f"cannot reach {self.api_url}: {reason}",
                "check GITHUB_API_URL and the network (GitHub Enterprise: set GITHUB_API_URL)",
            ) from exc
        if status != _EXPECTED_STATUS.get(method, 200):
            raise GitHubError(
                f"GitHub answered {status} to {method} {path}; expected "
                f"{_EXPECTED_STATUS.get(method, 200)}",
                "check GITHUB_API_URL (is it GitHub's API?); retry later",
                status=status,
            )
        try:
            return (json.loads(payload) if payload else None), headers
        except ValueError as exc:
            raise GitHubError(
                f"GitHub's answer to {method} {path} is not JSON",
                "check GITHUB_API_URL (is it GitHub's API?)",
                status=status,
            ) from exc

    def _same_api(self, url: str) -> bool:
        """`url` is under our API base: same scheme, host and port, and below its path."""
        base = urllib.parse.urlsplit(self.api_url)
        other = urllib.parse.urlsplit(url)
        prefix = base.path.rstrip("/") + "/"
        return (other.scheme, other.netloc.lower()) == (base.scheme, base.netloc.lower()) and (
            other.path + "/"
        ).startswith(prefix)

    def _issue_url(self, pr: PullRequest, suffix: str) -> str:
        owner, name = pr.repository.split("/", 1)
        return (
            f"{self.api_url}/repos/{urllib.parse.quote(owner)}/{urllib.parse.quote(name)}"
            f"/issues{suffix}"
        )

    def list_comments(self, pr: PullRequest) -> list[dict[str, Any]]:
        """Every comment of the PR, following the `Link: rel="next"` pages."""
        url: str | None = self._issue_url(pr, f"/{pr.number}/comments?per_page={PER_PAGE}")
        comments: list[dict[str, Any]] = []
        pages = 0
        while url:
            page, headers = self._request("GET", url)
            if not isinstance(page, list):
                raise GitHubError("GitHub returned something other than a comment list")
            comments.extend(page)
            pages += 1
            match = _NEXT.search(headers.get("link", ""))
            # Guard against a server that loops its Link header forever.
            url = match.group(1) if match and pages < 1000 else None
            if url is not None and not self._same_api(url):
                # The token goes with every request: never to a host the Link header names.
                raise GitHubError(
                    f"GitHub's next-page link leaves {self.api_url}: {_origin(url)}",
                    "check GITHUB_API_URL (GitHub Enterprise: set it to the API's base URL)",
                )
        return comments

    def create_comment(self, pr: PullRequest, body: str) -> dict[str, Any]:
        result, _ = self._request(
            "POST", self._issue_url(pr, f"/{pr.number}/comments"), {"body": body}
        )
        return _comment_answer(result, "creating")

    def update_comment(self, pr: PullRequest, comment_id: int, body: str) -> dict[str, Any]:
        result, _ = self._request(
            "PATCH", self._issue_url(pr, f"/comments/{int(comment_id)}"), {"body": body}
        )
        answer = _comment_answer(result, "updating")
        if answer["id"] != int(comment_id):
            raise GitHubError(
                f"GitHub answered the update of comment {int(comment_id)} with comment "
                f"{answer['id']}",
                "check GITHUB_API_URL (is it GitHub's API?)",
            )
        return answer


def _comment_answer(result: Any, doing: str) -> dict[str, Any]:
    """The comment GitHub returned: it must carry a positive integer id."""
    comment_id = result.get("id") if isinstance(result, dict) else None
    if not isinstance(comment_id, int) or isinstance(comment_id, bool) or comment_id <= 0:
        raise GitHubError(
            f"GitHub's answer to {doing} the comment has no comment id: the comment may not exist",
            "check GITHUB_API_URL (is it GitHub's API?), then run `dataops-dev comment` again",
        )
    return dict(result)


def plan_comment(
    client: GitHubClient, pr: PullRequest, body: str, *, marker: str = MARKER
) -> CommentPlan:
    """What upserting `body` would do: the first comment that starts with `marker` is ours."""
    if len(body) > MAX_BODY:
        raise UsageError(
            f"the comment body has {len(body):,} characters; GitHub accepts {MAX_BODY:,}",
            "render it with `dataops-dev comment --report ...` (it keeps to the budget)",
        )
    if not body.lstrip().startswith(marker):
        raise UsageError(
            "the comment body lacks the review marker, so it could never be updated in place",
            "render it with `dataops-dev report --format markdown`",
        )
    for comment in client.list_comments(pr):
        # Ours *starts* with the marker: a reply quoting our comment also contains it.
        if (comment.get("body") or "").lstrip().startswith(marker):
            action = (
                CommentAction.UNCHANGED if comment.get("body") == body else CommentAction.UPDATE
            )
            return CommentPlan(action, pr, int(comment["id"]), comment.get("html_url"))
    return CommentPlan(CommentAction.CREATE, pr)


def apply_plan(client: GitHubClient, plan: CommentPlan, body: str) -> CommentResult:
    if plan.action is CommentAction.UNCHANGED:
        assert plan.comment_id is not None
        return CommentResult(plan.action, plan.comment_id, plan.url)
    if plan.action is CommentAction.UPDATE:
        assert plan.comment_id is not None
        result = client.update_comment(plan.pull_request, plan.comment_id, body)
    else:
        result = client.create_comment(plan.pull_request, body)
    return CommentResult(plan.action, int(result["id"]), result.get("html_url"))


def upsert_comment(
    client: GitHubClient, pr: PullRequest, body: str, *, marker: str = MARKER
) -> CommentResult:
    """Create the sticky comment, or edit the existing one in place."""
    return apply_plan(client, plan_comment(client, pr, body, marker=marker), body)
