"""The sticky PR comment against a local server that speaks the GitHub issue-comment endpoints.

GitHub itself cannot be reached from here; the fake records every request so the tests check
what we send: list (paginated), then POST once, then PATCH the same comment id.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dataops_dev.errors import GitHubError, UsageError
from dataops_dev.github import (
    MARKER,
    CommentAction,
    GitHubClient,
    PullRequest,
    plan_comment,
    pull_request_from_env,
    upsert_comment,
)
from dataops_dev.report.markdown import render_markdown
from tests.conftest import run_cli
from tests.report.factory import small_report

REPO = "acme/shop"
PR = 7


@dataclass
class FakeGitHub:
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any, dict[str, str]]] = field(default_factory=list)
    fail_with: int | None = None
    next_id: int = 1000
    base_url: str = ""
    link_base: str | None = None
    """Where the next-page links point (default: this server)."""

    def add(self, body: str, user: str = "someone") -> int:
        self.next_id += 1
        self.comments.append({"id": self.next_id, "body": body, "user": {"login": user}})
        return self.next_id


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.requests.append((self.command, self.path, body, dict(self.headers)))
            return body

        def _guard(self) -> bool:
            if fake.fail_with:
                self._send(fake.fail_with, {"message": "Bad credentials"})
                return False
            if self.headers.get("Authorization") != "Bearer t0ken":
                self._send(401, {"message": "Requires authentication"})
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802
            self._record()
            if not self._guard():
                return
            match = re.fullmatch(
                rf"/repos/{REPO}/issues/(\d+)/comments\?per_page=(\d+)(?:&page=(\d+))?", self.path
            )
            if not match or int(match.group(1)) != PR:
                self._send(404, {"message": "Not Found"})
                return
            per_page, page = int(match.group(2)), int(match.group(3) or 1)
            chunk = fake.comments[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(fake.comments):
                nxt = f"{fake.link_base or fake.base_url}/repos/{REPO}/issues/{PR}/comments?per_page={per_page}&page={page + 1}"
                headers["Link"] = f'<{nxt}>; rel="next", <{nxt}>; rel="last"'
            self._send(200, chunk, headers)

        def do_POST(self) -> None:  # noqa: N802
            body = self._record()
            if not self._guard():
                return
            if self.path != f"/repos/{REPO}/issues/{PR}/comments":
                self._send(404, {"message": "Not Found"})
                return
            comment_id = fake.add(body["body"], user="github-actions[bot]")
            self._send(201, {"id": comment_id, "html_url": f"https://gh/c/{comment_id}"})

        def do_PATCH(self) -> None:  # noqa: N802
            body = self._record()
            if not self._guard():
                return
            match = re.fullmatch(rf"/repos/{REPO}/issues/comments/(\d+)", self.path)
            found = [c for c in fake.comments if match and c["id"] == int(match.group(1))]
            if not found:
                self._send(404, {"message": "Not Found"})
                return
            found[0]["body"] = body["body"]
            self._send(200, {"id": found[0]["id"], "html_url": f"https://gh/c/{found[0]['id']}"})

    return Handler


def _serve() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from _serve()


@pytest.fixture
def elsewhere() -> Iterator[FakeGitHub]:
    """A second server: somewhere a Link header could point that is not our API."""
    yield from _serve()


def _methods(fake: FakeGitHub) -> list[str]:
    return [method for method, *_ in fake.requests]


def test_create_then_update_the_same_comment(github: FakeGitHub) -> None:
    for i in range(3):
        github.add(f"unrelated comment {i}")
    github.add(f"> {MARKER}\n> quoting the review: is this expected?", user="reviewer")
    client = GitHubClient("t0ken", github.base_url, timeout=10)
    pr = PullRequest(REPO, PR)
    body = render_markdown(small_report())
    first = upsert_comment(client, pr, body)
    assert first.action is CommentAction.CREATE
    assert _methods(github) == ["GET", "POST"]
    posted = github.requests[1]
    assert posted[2] == {"body": body}
    assert posted[3]["Accept"] == "application/vnd.github+json"

    github.requests.clear()
    github.add("a later unrelated comment")
    new_body = render_markdown(small_report(approved=True))
    second = upsert_comment(client, pr, new_body)
    assert second.action is CommentAction.UPDATE
    assert second.comment_id == first.comment_id
    assert _methods(github) == ["GET", "PATCH"]
    assert github.requests[1][1] == f"/repos/{REPO}/issues/comments/{first.comment_id}"
    ours = [c for c in github.comments if c["body"].startswith(MARKER)]
    assert len(ours) == 1 and ours[0]["body"] == new_body

    github.requests.clear()
    third = upsert_comment(client, pr, new_body)
    assert third.action is CommentAction.UNCHANGED
    assert _methods(github) == ["GET"]


def test_finds_the_marker_beyond_the_first_page(github: FakeGitHub) -> None:
    for i in range(230):
        github.add(f"comment {i}")
    marked = github.add(MARKER + "\nold review")
    github.add("one more")
    client = GitHubClient("t0ken", github.base_url, timeout=10)
    plan = plan_comment(client, PullRequest(REPO, PR), MARKER + "\nnew review")
    assert plan.action is CommentAction.UPDATE and plan.comment_id == marked
    assert [path for _, path, *_ in github.requests] == [
        f"/repos/{REPO}/issues/{PR}/comments?per_page=100",
        f"/repos/{REPO}/issues/{PR}/comments?per_page=100&page=2",
        f"/repos/{REPO}/issues/{PR}/comments?per_page=100&page=3",
    ]


def test_the_token_never_follows_a_next_link_off_the_api(
    github: FakeGitHub, elsewhere: FakeGitHub
) -> None:
    for i in range(150):
        github.add(f"comment {i}")
    github.link_base = elsewhere.base_url
    client = GitHubClient("t0ken", github.base_url, timeout=10)
    with pytest.raises(GitHubError, match="next-page link leaves") as error:
        plan_comment(client, PullRequest(REPO, PR), MARKER + "\nnew review")
    assert elsewhere.base_url in error.value.message
    assert elsewhere.requests == []
    assert len(github.requests) == 1


def test_next_links_must_stay_under_the_api_url() -> None:
    client = GitHubClient("t0ken", "https://ghe.example/api/v3/", timeout=10)
    assert client._same_api("https://ghe.example/api/v3/repositories/1/issues/7/comments?page=2")
    assert client._same_api("https://GHE.example/api/v3?page=2")
    assert not client._same_api("https://ghe.example/api/v30/x")
    assert not client._same_api("https://ghe.example.evil/api/v3/x")
    assert not client._same_api("https://ghe.example@evil/api/v3/x")
    assert not client._same_api("http://ghe.example/api/v3/x")


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "GITHUB_TOKEN"), (403, "pull-requests: write"), (404, "--repo and --pr")],
)
def test_errors_carry_a_hint(github: FakeGitHub, status: int, hint: str) -> None:
    github.fail_with = status
    client = GitHubClient("t0ken", github.base_url, timeout=10)
    with pytest.raises(GitHubError) as error:
        upsert_comment(client, PullRequest(REPO, PR), MARKER + "\nbody")
    assert error.value.status == status
    assert str(status) in error.value.message and "Bad credentials" in error.value.message
    assert error.value.hint and hint in error.value.hint


def test_unreachable_server_is_a_clear_error() -> None:
    client = GitHubClient("t0ken", "http://127.0.0.1:9", timeout=2)
    with pytest.raises(GitHubError, match="cannot reach"):
        upsert_comment(client, PullRequest(REPO, PR), MARKER)


def test_body_without_marker_or_too_long_is_refused(github: FakeGitHub) -> None:
    client = GitHubClient("t0ken", github.base_url)
    with pytest.raises(UsageError, match="marker"):
        upsert_comment(client, PullRequest(REPO, PR), "no marker here")
    with pytest.raises(UsageError, match="GitHub accepts 65,536"):
        upsert_comment(client, PullRequest(REPO, PR), MARKER + "x" * 70_000)
    assert github.requests == []


def test_pull_request_from_the_actions_environment(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42}}))
    env = {"GITHUB_REPOSITORY": REPO, "GITHUB_EVENT_PATH": str(event)}
    assert pull_request_from_env(env) == PullRequest(REPO, 42)
    assert pull_request_from_env(env, number=5, repository="o/r") == PullRequest("o/r", 5)
    event.write_text(json.dumps({"push": {}}))
    with pytest.raises(UsageError, match="pull request number"):
        pull_request_from_env(env)
    with pytest.raises(UsageError, match="GITHUB_REPOSITORY"):
        pull_request_from_env({}, number=1)
    with pytest.raises(UsageError, match="owner/name"):
        pull_request_from_env({}, repository="../etc", number=1)


def test_comment_command_dry_run_then_post_then_update(github: FakeGitHub, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    report_path.write_text(small_report().to_json(), "utf-8")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": PR}}))
    env = {
        "GITHUB_API_URL": github.base_url,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "99",
        "NO_COLOR": "1",
    }
    dry = run_cli("comment", "--report", str(report_path), "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(MARKER)
    assert "would create the review comment on acme/shop#7" in dry.stderr
    assert _methods(github) == ["GET"]

    posted = run_cli("comment", "--report", str(report_path), "--json", cwd=tmp_path, env=env)
    assert posted.returncode == 0, posted.stderr
    result = json.loads(posted.stdout)
    assert result["action"] == "create"

    updated = run_cli(
        "comment", "--report", str(report_path), "--budget", "5000", "--json", cwd=tmp_path, env=env
    )
    assert updated.returncode == 0, updated.stderr
    again = json.loads(updated.stdout)
    assert again["action"] == "update" and again["comment_id"] == result["comment_id"]
    assert len(github.comments[-1]["body"]) <= 5000
    assert "(https://github.com/acme/shop/actions/runs/99)" in github.comments[-1]["body"]

    denied = run_cli(
        "comment", "--report", str(report_path), cwd=tmp_path, env={**env, "GITHUB_TOKEN": "bad"}
    )
    assert denied.returncode == 1
    assert "401" in denied.stderr and "hint:" in denied.stderr

    missing = run_cli(
        "comment", "--report", str(report_path), cwd=tmp_path, env={**env, "GITHUB_TOKEN": ""}
    )
    assert missing.returncode == 2
    assert "GITHUB_TOKEN" in missing.stderr
