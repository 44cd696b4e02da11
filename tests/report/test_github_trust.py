"""The GitHub token never leaves the API's host, and an answer that is not what GitHub gives is an
error, not "created comment 0". Two real HTTP servers on 127.0.0.1: the API, and a second host
that the API redirects to and that records whatever reaches it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dataops_dev.github import MARKER
from tests.conftest import run_cli

TOKEN = "ghs_secret_token_value"
REPO = "acme/shop"
PR = 7

Answer = Callable[[str, str], tuple[int, dict[str, str], Any]]
"""(method, path) -> (status, headers, JSON payload)."""


@dataclass
class Server:
    answer: Answer
    url: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            server.requests.append((self.command, self.path, dict(self.headers)))
            status, headers, payload = server.answer(self.command, self.path)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _any  # noqa: N815

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], Server]]:
    started: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> Server:
        server = Server(answer)
        http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
        server.url = f"http://127.0.0.1:{http.server_address[1]}"
        threading.Thread(target=http.serve_forever, daemon=True).start()
        started.append(http)
        return server

    yield start
    for http in started:
        http.shutdown()
        http.server_close()


def _comment(tmp_path: Path, api: Server) -> Any:
    body = tmp_path / "body.md"
    body.write_text(f"{MARKER}\n## review\n", "utf-8")
    return run_cli(
        "comment",
        "--body-file",
        str(body),
        "--repo",
        REPO,
        "--pr",
        str(PR),
        cwd=tmp_path,
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": api.url, "NO_COLOR": "1"},
    )


def _received_token(server: Server) -> bool:
    return any(TOKEN in value for _, _, headers in server.requests for value in headers.values())


def _catch_all(method: str, path: str) -> tuple[int, dict[str, str], Any]:
    return 201, {}, {"id": 0}


@pytest.mark.parametrize("redirected", ["GET", "POST"])
def test_a_redirect_to_another_host_gets_no_token(
    serve: Callable[[Answer], Server], tmp_path: Path, redirected: str
) -> None:
    other = serve(_catch_all)

    def api_answer(method: str, path: str) -> tuple[int, dict[str, str], Any]:
        if method == redirected:
            return 302, {"Location": f"{other.url}{path}"}, {}
        return (200, {}, []) if method == "GET" else (201, {}, {"id": 5})

    api = serve(api_answer)
    result = _comment(tmp_path, api)

    assert result.returncode == 1, result.stderr
    assert not _received_token(other)
    assert other.requests == []  # nothing followed the redirect at all
    assert "redirect" in result.stderr and other.url in result.stderr
    assert "hint:" in result.stderr
    assert "created comment" not in result.stderr
    assert TOKEN not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("status", "payload"),
    [(201, {"id": 0}), (201, {}), (201, ["not", "a", "comment"]), (200, {"id": 9})],
)
def test_a_created_comment_without_a_real_id_is_an_error(
    serve: Callable[[Answer], Server], tmp_path: Path, status: int, payload: Any
) -> None:
    def api_answer(method: str, path: str) -> tuple[int, dict[str, str], Any]:
        return (200, {}, []) if method == "GET" else (status, {}, payload)

    result = _comment(tmp_path, serve(api_answer))

    assert result.returncode == 1, result.stderr
    assert "created comment" not in result.stderr
    assert "error:" in result.stderr and "hint:" in result.stderr


def test_an_update_answered_with_another_comment_is_an_error(
    serve: Callable[[Answer], Server], tmp_path: Path
) -> None:
    def api_answer(method: str, path: str) -> tuple[int, dict[str, str], Any]:
        if method == "GET":
            return 200, {}, [{"id": 11, "body": f"{MARKER}\nold"}]
        return 200, {}, {"id": 12}

    result = _comment(tmp_path, serve(api_answer))

    assert result.returncode == 1, result.stderr
    assert "comment 11" in result.stderr and "comment 12" in result.stderr


def test_a_real_answer_is_reported_with_its_id(
    serve: Callable[[Answer], Server], tmp_path: Path
) -> None:
    def api_answer(method: str, path: str) -> tuple[int, dict[str, str], Any]:
        if method == "GET":
            return 200, {}, []
        return 201, {}, {"id": 4242, "html_url": "https://github.com/acme/shop/pull/7#c"}

    api = serve(api_answer)
    result = _comment(tmp_path, api)

    assert result.returncode == 0, result.stderr
    assert "created comment 4242 on acme/shop#7" in result.stderr
    assert [m for m, _, _ in api.requests] == ["GET", "POST"]
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for _, _, h in api.requests)
