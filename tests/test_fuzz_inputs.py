"""Hostile inputs (issue 13): every file the tool reads, mutated, read by the command a user runs.

Each mutation ends with one clear line and the documented exit code, never "unexpected error":
config files (dataops_dev.yml, [tool.dataops_dev], profiles.yml, the approvals file) exit 2 naming
the file; state files (report, environment record) exit 1 naming the file and the fix; caches and
derived files (lineage and impact caches, the sample record, the sample file, the parse stamp) are
rebuilt silently and the command gives the same answer as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.real_projects import ProjectRepo, make_project_repo

PWNED = "PWNED_BY_YAML"
BINARY = bytes(range(256)) * 8
HUGE_BYTES = 5 * 1024 * 1024


def _deep_json() -> bytes:
    return b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"


def _deep_yaml() -> bytes:
    return b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n"


def _python_tag() -> bytes:
    return f"a: !!python/object/apply:os.system ['touch {PWNED}']\n".encode()


def _huge_json() -> bytes:
    return b'{"junk": [' + b"0," * (HUGE_BYTES // 2) + b"0]}"


def _huge_yaml() -> bytes:
    return b"# padding\n" * (HUGE_BYTES // 10 + 1) + b"version: 1\n"


def _json_edit(edit: Callable[[object], object]) -> Callable[[bytes], bytes]:
    def mutate(original: bytes) -> bytes:
        return json.dumps(edit(json.loads(original))).encode()

    return mutate


def _set(key: str, value: object) -> Callable[[object], object]:
    def edit(data: object) -> object:
        assert isinstance(data, dict)
        return {**data, key: value}

    return edit


def _bad_edge_kind(data: object) -> object:
    assert isinstance(data, dict)
    edges = [[*edge[:3], "teleported"] for edge in data.get("edges", ())] or [
        ["x", "y", "z", "bogus"]
    ]
    return {**data, "edges": edges, "columns": [1, 2]}


PYPROJECT = b"""[project]
name = "hi-shop"

[tool.dataops_dev]
version = 1

[tool.dataops_dev.environments]
threads = 1

[tool.dataops_dev.sample]
rate = 1.0
"""


def _toml_mutations(wrong_enum: Callable[[bytes], bytes]) -> dict[str, Callable[[bytes], bytes]]:
    return {
        "truncated": lambda b: PYPROJECT[: PYPROJECT.index(b"threads") + 4],
        "binary": lambda b: BINARY,
        "list": lambda b: b"[tool]\ndataops_dev = [1, 2, 3]\n",
        "scalar": lambda b: b"[tool]\ndataops_dev = 42\n",
        "wrong_enum": wrong_enum,
        "huge": lambda b: b"# padding\n" * (HUGE_BYTES // 10 + 1) + PYPROJECT,
        "deep": lambda b: b"[tool.dataops_dev]\nx = " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "python_tag": lambda b: b"[tool.dataops_dev]\nx = !!python/object:os.system\n",
    }


def mutations(
    fmt: str, wrong_enum: Callable[[bytes], bytes]
) -> dict[str, Callable[[bytes], bytes]]:
    """name -> original bytes -> mutated bytes."""
    if fmt == "toml":
        return _toml_mutations(wrong_enum)
    return {
        "truncated": lambda b: b[: max(len(b) // 2, 1)],
        "binary": lambda b: BINARY,
        "list": lambda b: b"[1, 2, 3]\n" if fmt == "json" else b"- 1\n- 2\n",
        "scalar": lambda b: b"42\n",
        "wrong_enum": wrong_enum,
        "huge": lambda b: _huge_json() if fmt == "json" else _huge_yaml(),
        "deep": lambda b: _deep_json() if fmt == "json" else _deep_yaml(),
        "python_tag": lambda b: _python_tag(),
    }


@dataclass(frozen=True)
class Target:
    """A file the tool reads, the command that reads it, and what must happen."""

    name: str
    fmt: str
    paths: Callable[[ProjectRepo], list[Path]]
    command: tuple[str, ...]
    outcome: str
    """"config" (exit 2, file named), "state" (exit 1, file and fix named) or "cache" (exit 0,
    same answer as before)."""
    wrong_enum: Callable[[bytes], bytes]
    fix: str = ""
    hide: tuple[str, ...] = ()
    """Files moved away while the target is mutated (a dataops_dev.yml wins over pyproject)."""
    default: bytes = b""
    """The file's content when the project has none (it is mutated from this)."""


def _one(relative: str) -> Callable[[ProjectRepo], list[Path]]:
    return lambda repo: [repo.path(relative)]


def _glob(pattern: str) -> Callable[[ProjectRepo], list[Path]]:
    def find(repo: ProjectRepo) -> list[Path]:
        found = sorted(repo.path(".dataops").glob(pattern))
        assert found, f"no {pattern} under .dataops"
        return found

    return find


def _branch_env(repo: ProjectRepo) -> list[Path]:
    return [p for p in _glob("envs/main_*.json")(repo)]


TARGETS = [
    Target(
        "dataops_dev.yml",
        "yaml",
        _one("dataops_dev.yml"),
        ("env", "list"),
        "config",
        lambda b: b"version: 1\nbackend:\n  type: cloud\n",
    ),
    Target(
        "pyproject.toml",
        "toml",
        _one("pyproject.toml"),
        ("env", "list"),
        "config",
        lambda b: b'[tool.dataops_dev]\nversion = 1\n[tool.dataops_dev.backend]\ntype = "cloud"\n',
        hide=("dataops_dev.yml",),
        default=PYPROJECT,
    ),
    Target(
        "profiles.yml",
        "yaml",
        _one("profiles.yml"),
        ("sample",),
        "config",
        lambda b: b.replace(b"type: duckdb", b"type: [duckdb]"),
    ),
    Target(
        "dataops.approvals.yml",
        "yaml",
        _one("dataops.approvals.yml"),
        ("report", "--format", "json"),
        "config",
        lambda b: b"version: 1\ndecisions:\n  - {fingerprint: abc, decision: perhaps}\n",
        default=b"version: 1\ndecisions: []\n",
    ),
    Target(
        "report.json",
        "json",
        _glob("reports/main_*/report.json"),
        ("report", "--format", "json"),
        "state",
        _json_edit(_set("verdict", "maybe")),
        fix="dataops-dev review",
    ),
    Target(
        "environment metadata",
        "json",
        _branch_env,
        ("env", "list"),
        "state",
        _json_edit(_set("kind", "cloud")),
        fix="dataops-dev env drop main_",
    ),
    Target(
        "production database",
        "binary",
        _one("prod.duckdb"),
        ("deploy",),
        "state",
        lambda b: b[:5000],
        fix="nothing was deployed",
    ),
    Target(
        "sample metadata",
        "json",
        _glob("samples/s*.json"),
        ("sample",),
        "cache",
        _json_edit(_set("backend", "cloud")),
    ),
    Target(
        "sample file",
        "binary",
        _glob("samples/s*.duckdb"),
        ("sample",),
        "cache",
        lambda b: b[:4096],
    ),
    Target(
        "parse stamp",
        "text",
        _one(".dataops/samples/manifest.stamp"),
        ("sample", "--refresh"),
        "cache",
        lambda b: b"\xff" + b,
    ),
    Target(
        "lineage cache",
        "json",
        _glob("cache/lineage/*/*.json"),
        ("lineage", "customer_totals.total", "--json"),
        "cache",
        _json_edit(_bad_edge_kind),
    ),
    Target(
        "impact cache",
        "binary",
        _one(".dataops/cache/impact_yaml.pickle"),
        ("impact", "--json"),
        "cache",
        lambda b: b"cos\nsystem\n(S'touch " + PWNED.encode() + b"'\ntR.",
    ),
]

CASES = [
    pytest.param(target, mutation, id=f"{target.name}-{mutation}")
    for target in TARGETS
    for mutation in mutations(target.fmt, target.wrong_enum)
]


@contextlib.contextmanager
def moved_away(paths: list[Path]) -> Iterator[None]:
    saved = {path: path.read_bytes() for path in paths}
    try:
        for path in paths:
            path.unlink()
        yield
    finally:
        for path, original in saved.items():
            path.write_bytes(original)


@contextlib.contextmanager
def mutated(
    paths: list[Path], mutate: Callable[[bytes], bytes], default: bytes
) -> Iterator[dict[Path, bytes]]:
    """Each file replaced by its mutation for the `with` block, then put back as it was (a file
    that did not exist is mutated from `default`, then removed)."""
    saved = {path: path.read_bytes() if path.exists() else None for path in paths}
    # The times too: production's file identity (size, mtime) names the sample.
    times = {
        path: (path.stat().st_atime_ns, path.stat().st_mtime_ns) for path in paths if path.exists()
    }
    written: dict[Path, bytes] = {}
    try:
        for path, original in saved.items():
            written[path] = mutate(original if original is not None else default)
            path.write_bytes(written[path])
        yield written
    finally:
        for path, original in saved.items():
            if original is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(original)
                os.utime(path, ns=times[path])


def _comparable(command: tuple[str, ...], stdout: str) -> object:
    """The command's answer without what legitimately changes between runs (timings)."""
    if "--json" not in command:
        return stdout
    data = json.loads(stdout)
    if isinstance(data, dict):
        data.pop("timings", None)
        data.pop("stats", None)  # computed vs cached counts
        # Which manifest `lineage` read (target/ or a cached parse) is provenance, not the answer.
        data.pop("manifest", None)
    return data


@dataclass
class Shop:
    repo: ProjectRepo
    answers: dict[tuple[str, ...], object]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """hi_shop sampled and reviewed once: every state file and cache exists."""
    repo = make_project_repo("hi_shop", tmp_path_factory.mktemp("fuzz"))
    for args in (("sample",), ("review",)):
        result = repo.run(*args)
        assert result.returncode == 0, result.stderr
    approvals = "version: 1\ndecisions: []\n"
    repo.write("dataops.approvals.yml", approvals)
    answers: dict[tuple[str, ...], object] = {}
    for target in TARGETS:
        if target.outcome != "cache" or "sample" in target.command:
            continue  # sample's output names times; its rebuild is checked by the files
        result = repo.run(*target.command)
        assert result.returncode == 0, result.stderr
        answers[target.command] = _comparable(target.command, result.stdout)
    repo.delete("dataops.approvals.yml")
    return Shop(repo, answers)


def _assert_clear_failure(result: subprocess.CompletedProcess[str], code: int, *names: str) -> None:
    assert "unexpected error" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines, result.stderr
    for name in names:
        assert name in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("target", "mutation"), CASES)
def test_a_mutated_file_never_ends_in_an_unexpected_error(
    shop: Shop, target: Target, mutation: str
) -> None:
    repo = shop.repo
    paths = target.paths(repo)
    mutate = mutations(target.fmt, target.wrong_enum)[mutation]
    state = repo.path(".dataops")
    before = set(state.iterdir())
    try:
        with moved_away([repo.path(name) for name in target.hide]):
            _check_one(shop, target, paths, mutate)
    finally:
        # What a case adds (deploy parses production's manifest into .dataops/production)
        # would change what the next cases read.
        for added in set(state.iterdir()) - before:
            shutil.rmtree(added) if added.is_dir() else added.unlink()


def _check_one(
    shop: Shop, target: Target, paths: list[Path], mutate: Callable[[bytes], bytes]
) -> None:
    repo = shop.repo
    with mutated(paths, mutate, target.default) as written:
        result = repo.run(*target.command)
        ran = (repo.project / PWNED).exists()
        (repo.project / PWNED).unlink(missing_ok=True)  # not to fail the next cases too
        assert not ran, "a planted tag or pickle ran code"
        if target.outcome == "cache":
            assert "unexpected error" not in result.stderr, result.stderr
            assert result.returncode == 0, result.stderr
            assert "reusing sample" not in result.stderr
            if target.command in shop.answers:
                assert _comparable(target.command, result.stdout) == shop.answers[target.command]
            # Rebuilt: what the command read was written again (the lineage cache also holds
            # entries of earlier runs that this command does not read).
            kept = [path for path, bad in written.items() if path.read_bytes() == bad]
            assert len(kept) < len(written), f"{kept} were kept"
        else:
            code = 2 if target.outcome == "config" else 1
            _assert_clear_failure(
                result, code, paths[0].name, *([target.fix] if target.fix else [])
            )
