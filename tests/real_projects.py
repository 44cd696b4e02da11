"""Small dbt projects shaped like real ones (tests/fixtures/projects/<name>/), turned into git
repositories exactly as a new user meets them: a fresh clone, no target/, no .dataops/.

A fixture directory is the repository's content. It may hold `production.sql` at its root: the
statements that create the project's production DuckDB file (`<project>/prod.duckdb`, which is
git-ignored: give each fixture a .gitignore with `*.duckdb`, `target/`, `.dataops/`), run after
the clone, the way a user's production already exists.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "projects"
TEST_SALT = "real-projects-test-salt"
PRODUCTION_SQL = "production.sql"

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **_GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@dataclasses.dataclass
class ProjectRepo:
    """A fresh clone of a fixture project; `project` is the dbt project inside it."""

    root: Path
    project: Path

    def path(self, relative: str) -> Path:
        """A path relative to the dbt project."""
        return self.project / relative

    def write(self, relative: str, text: str) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def replace(self, relative: str, old: str, new: str) -> None:
        """Edit a file of the project; fails loudly when `old` is not in it."""
        text = self.path(relative).read_text()
        assert old in text, f"{old!r} not in {relative}"
        self.write(relative, text.replace(old, new))

    def delete(self, relative: str) -> None:
        self.path(relative).unlink()

    def git(self, *args: str) -> str:
        return _git(self.root, *args)

    def checkout_new_branch(self, name: str) -> None:
        self.git("checkout", "-q", "-b", name)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def run(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`python -m dataops_dev ARGS` in a subprocess, from the project directory by default."""
        return subprocess.run(
            [sys.executable, "-m", "dataops_dev", *args],
            cwd=cwd or self.project,
            env={**os.environ, "DATAOPS_SALT": TEST_SALT, **_GIT_ENV, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )


def make_project_repo(
    name: str, tmp_path: Path, *, project_subdir: str = ".", branch: str = "main"
) -> ProjectRepo:
    """Commit fixture `name` to an origin repository on `branch`, clone it, and build the
    production file from `production.sql` when the fixture has one."""
    source = FIXTURES / name
    if not source.is_dir():
        raise FileNotFoundError(f"no fixture project {source}")
    origin = tmp_path / f"{name}-origin"
    shutil.copytree(source, origin, ignore=shutil.ignore_patterns("target", "logs", ".dataops"))
    _git(origin, "init", "-q", "-b", branch)
    _git(origin, "add", "-A")
    _git(origin, "commit", "-q", "-m", f"{name}: initial")
    clone = tmp_path / name
    _git(tmp_path, "clone", "-q", str(origin), str(clone))
    project = (clone / project_subdir).resolve()
    production_sql = clone / PRODUCTION_SQL
    if production_sql.exists():
        build_production(production_sql.read_text(), project / "prod.duckdb", cwd=project)
    return ProjectRepo(root=clone, project=project)


def build_production(sql: str, database: Path, *, cwd: Path) -> None:
    """Run `sql` into the DuckDB file `database`, relative paths read from `cwd`."""
    import duckdb

    with duckdb.connect(str(database)) as connection:
        connection.execute("set file_search_path = ?", [str(cwd)])
        connection.execute(sql)
        connection.execute("checkpoint")
