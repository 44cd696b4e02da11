"""Git facts dataops_dev needs: the branch, commits, merge-base, and a ref's files on disk."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from dataops_dev.errors import ConfigError, GitError


@dataclass(frozen=True)
class GitState:
    root: Path
    branch: str
    """Branch name; in detached HEAD (CI), the PR branch from the CI environment if known."""
    commit: str
    dirty: bool
    """Uncommitted changes under the dbt project."""


def _repo(path: Path):  # type: ignore[no-untyped-def]
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise GitError(
            f"{path} is not inside a git repository",
            "run `git init` (environments are named after branches), or pass --branch NAME",
        ) from exc


def state(path: Path) -> GitState:
    """Branch, HEAD commit and dirtiness of the repository holding `path`."""
    import git

    repo = _repo(path)
    try:
        commit = repo.head.commit.hexsha
    except ValueError as exc:
        raise GitError(
            "the repository has no commits yet", "commit your dbt project first"
        ) from exc
    try:
        branch = repo.active_branch.name
    except TypeError:
        branch = os.environ.get("GITHUB_HEAD_REF") or f"detached-{commit[:8]}"
    try:
        relative = os.path.relpath(path.resolve(), repo.working_tree_dir)
        dirty = bool(_uncommitted(repo, relative) - _tool_files(relative))
    except git.GitCommandError:
        dirty = True
    return GitState(
        root=Path(str(repo.working_tree_dir)), branch=branch, commit=commit, dirty=dirty
    )


TOOL_FILES = ("dataops_dev.yml", "dataops.lock.yml", "dataops.approvals.yml")
"""Files dataops-dev itself writes at the dbt project's root (`init`, `decide`): writing them
does not make the branch dirty (a review records their content; see `review.worktree_state`)."""


def _tool_files(relative: str) -> set[str]:
    prefix = "" if relative == "." else relative.rstrip("/") + "/"
    return {prefix + name for name in TOOL_FILES}


def _uncommitted(repo, relative: str) -> set[str]:  # type: ignore[no-untyped-def]
    """Repository-relative paths under `relative` with uncommitted changes, untracked included."""
    scope = [] if relative == "." else [relative]
    return porcelain_paths(
        repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--", *scope)
    )


def porcelain_paths(output: str) -> set[str]:
    """The paths in `git status --porcelain=v1 -z` output (both sides of a rename or copy)."""
    paths: set[str] = set()
    entries = iter(output.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        paths.add(entry[3:])
        if entry[0] in "RC":
            paths.add(next(entries, ""))  # a rename's source follows it
    return paths


def resolve(path: Path, ref: str) -> str:
    """The full commit sha of `ref`."""
    import git

    repo = _repo(path)
    try:
        return str(repo.commit(ref).hexsha)
    except (git.BadName, ValueError, git.GitCommandError) as exc:
        raise GitError(f"unknown git ref {ref!r}", "check the name with `git branch -a`") from exc


def default_branch(path: Path) -> str | None:
    """The repository's main line: what `origin/HEAD` points at (a clone's default branch), else
    the one of `main` / `master` that exists, else the only local branch; None when unclear."""
    import git

    repo = _repo(path)
    for remote in repo.remotes:
        try:
            target = repo.git.symbolic_ref(f"refs/remotes/{remote.name}/HEAD", short=True)
        except git.GitCommandError:
            continue
        return str(target).split("/", 1)[1] if "/" in str(target) else str(target)
    local = [head.name for head in repo.heads]
    for name in ("main", "master"):
        if name in local:
            return name
    return local[0] if len(local) == 1 else None


def _unknown_main_branch(path: Path, name: str) -> ConfigError:
    detected = default_branch(path)
    if detected and detected != name:
        hint = (
            f"this repository's default branch is {detected!r}: set "
            f"`production: {{main_branch: {detected}}}` in dataops_dev.yml"
        )
    else:
        hint = (
            "set production.main_branch in dataops_dev.yml to the branch production is built from"
        )
    return ConfigError(f"the base branch {name!r} does not exist in this repository", hint)


def merge_base(path: Path, a: str, b: str = "HEAD") -> str:
    import git

    repo = _repo(path)
    try:
        bases = repo.merge_base(a, b)
    except git.GitCommandError as exc:
        if a not in branches(path):
            try:
                repo.commit(a)
            except (git.BadName, ValueError, git.GitCommandError):
                raise _unknown_main_branch(path, a) from exc
        raise GitError(
            f"cannot find the merge-base of {a} and {b}",
            f"is {a!r} the main branch? set production.main_branch in dataops_dev.yml",
        ) from exc
    if not bases:
        raise GitError(f"{a} and {b} have no common history")
    return str(bases[0].hexsha)


def change_authors(path: Path, base: str, head: str) -> set[str]:
    """Lower-cased e-mails of the authors and committers of the commits in `base..head`."""
    import git

    repo = _repo(path)
    try:
        text = repo.git.log("--format=%ae%n%ce", f"{base}..{head}")
    except git.GitCommandError as exc:
        raise GitError(f"cannot list the commits between {base[:12]} and {head[:12]}") from exc
    return {line.strip().lower() for line in str(text).splitlines() if line.strip()}


def branches(path: Path) -> set[str]:
    """Local branch names plus remote-tracking names without the remote prefix."""
    repo = _repo(path)
    names = {head.name for head in repo.heads}
    for remote in repo.remotes:
        for ref in remote.refs:
            names.add(ref.remote_head)
    return names


def export_tree(path: Path, commit: str, subdir: str, destination: Path) -> Path:
    """Write the files of `subdir` at `commit` into `destination`, replacing it as a whole.

    The tree is extracted beside it first; then the previous tree is renamed aside, the new one
    renamed in, and only then the old one removed, so `destination` is never half-written and
    is missing only between two renames. Staging names carry the process id (no two processes
    share one). Returns the directory that corresponds to `subdir` inside `destination`.
    """
    repo = _repo(path)
    archive = io.BytesIO()
    # `path` by keyword: the third positional argument of `archive` is the name prefix.
    only = {"path": subdir} if subdir not in ("", ".") else {}
    try:
        repo.archive(archive, commit, format="tar", **only)
    except Exception as exc:  # noqa: BLE001 - GitPython raises several types here
        raise GitError(f"cannot read {subdir or 'the project'} at {commit[:12]}: {exc}") from exc
    pid = os.getpid()
    staging = destination.with_name(f"{destination.name}.tmp-{pid}")
    aside = destination.with_name(f"{destination.name}.old-{pid}")
    for leftover in (staging, aside):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(staging, filter="data")
        try:
            os.replace(destination, aside)
            moved = True
        except FileNotFoundError:
            moved = False
        try:
            os.replace(staging, destination)
        except OSError:
            if moved and not destination.exists():
                os.replace(aside, destination)  # the previous tree goes back
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(aside, ignore_errors=True)
    return destination / subdir if subdir not in ("", ".") else destination


def changed_since(path: Path, commit: str) -> set[str]:
    """Files under `path` (relative to it) that differ in the working tree from `commit`,
    untracked ones included."""
    import git

    repo = _repo(path)
    relative = os.path.relpath(path.resolve(), repo.working_tree_dir)
    scope = [] if relative == "." else [relative]
    try:
        tracked = repo.git.diff(
            "--name-only",
            "--relative" + ("" if relative == "." else f"={relative}"),
            commit,
            "--",
            *scope,
        )
        untracked = repo.git.ls_files("--others", "--exclude-standard", "--", *scope)
    except git.GitCommandError as exc:
        raise GitError(f"cannot compare the working tree with {commit[:12]}: {exc}") from exc
    names = {line.strip() for line in tracked.splitlines() if line.strip()}
    prefix = "" if relative == "." else relative.rstrip("/") + "/"
    for line in untracked.splitlines():
        line = line.strip()
        if line:
            names.add(line[len(prefix) :] if prefix and line.startswith(prefix) else line)
    return names


def tree_id(path: Path, commit: str) -> str:
    """The git tree id of the directory `path` at `commit`: equal ids, equal files."""
    import git

    repo = _repo(path)
    relative = os.path.relpath(path.resolve(), repo.working_tree_dir)
    try:
        tree = repo.commit(commit).tree
        return str((tree if relative == "." else tree / relative).hexsha)
    except (KeyError, ValueError, git.BadName, git.GitCommandError) as exc:
        raise GitError(f"{relative} does not exist at {commit[:12]}") from exc


def toplevel(path: Path) -> Path:
    """The working tree root of the repository holding `path` (no status scan)."""
    return Path(str(_repo(path).working_tree_dir))
