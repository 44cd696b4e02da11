"""dbt packages of a project tree: installed once, reused where the declaration is the same.

A fresh clone, and every tree exported from git, has no `dbt_packages/`: dbt refuses to parse
it. `ensure_packages` reuses another tree's install when both declare the same packages (local
packages re-pointed at the tree's own copy), and runs `dbt deps` otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dataops_dev.errors import ProjectError
from dataops_dev.reporting import NULL_REPORTER, Reporter

DECLARATION_FILES = ("packages.yml", "dependencies.yml", "package-lock.yml")
"""The files whose content decides what `dbt deps` installs."""
DEFAULT_INSTALL_PATH = "dbt_packages"
_SOURCE_KEYS = ("package", "git", "local", "tarball", "private")


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProjectError(
            f"{path.name} cannot be read: {exc}", f"fix {path} (dbt deps reads it)"
        ) from exc


def declared_packages(project_dir: Path) -> tuple[str, ...]:
    """What packages.yml (or dependencies.yml) declares, each named by its source
    (`dbt-labs/dbt_utils`, a git URL, `local: packages/x`)."""
    names: list[str] = []
    for file in ("packages.yml", "dependencies.yml"):
        document = _read_yaml(project_dir / file)
        entries = document.get("packages") if isinstance(document, Mapping) else None
        for entry in entries or ():
            if not isinstance(entry, Mapping):
                continue
            key = next((k for k in _SOURCE_KEYS if entry.get(k)), None)
            if key is not None:
                names.append(str(entry[key]) if key == "package" else f"{key}: {entry[key]}")
    return tuple(names)


def is_remote(name: str) -> bool:
    """Whether installing the package needs the network (anything but `local:`)."""
    return not name.startswith("local: ")


def install_dir(project_dir: Path) -> Path:
    """`packages-install-path` of dbt_project.yml (default `dbt_packages`), in the tree."""
    document = _read_yaml(project_dir / "dbt_project.yml")
    configured = document.get("packages-install-path") if isinstance(document, Mapping) else None
    if not isinstance(configured, str) or not configured.strip() or "{" in configured:
        configured = DEFAULT_INSTALL_PATH
    return project_dir / configured


def declaration_fingerprint(project_dir: Path) -> str:
    """A hash of the declaration files: two trees with the same one install the same packages."""
    digest = hashlib.sha256()
    for file in DECLARATION_FILES:
        path = project_dir / file
        digest.update(file.encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing")
    return digest.hexdigest()


def is_installed(project_dir: Path) -> bool:
    """The tree has (at least) as many installed packages as it declares, as dbt checks."""
    declared = declared_packages(project_dir)
    directory = install_dir(project_dir)
    if not declared:
        return True
    if not directory.is_dir():
        return False
    installed = [p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return len(installed) >= len(declared)


def reuse_install(source_dir: Path, project_dir: Path) -> None:
    """Copy `source_dir`'s installed packages into `project_dir`. A local package (dbt installs
    it as a symlink) is pointed at the same path inside `project_dir`, whose code it is."""
    source_root = source_dir.resolve()
    source = install_dir(source_dir)
    destination = install_dir(project_dir)
    staging = destination.with_name(f"{destination.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for entry in sorted(source.iterdir()):
        target = staging / entry.name
        if entry.is_symlink():
            real = entry.resolve()
            if real.is_relative_to(source_root):
                real = project_dir.resolve() / real.relative_to(source_root)
            target.symlink_to(real, target_is_directory=True)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True)
    shutil.rmtree(destination, ignore_errors=True)
    os.replace(staging, destination)


def ensure_packages(
    project_dir: Path,
    *,
    work_dir: Path,
    profiles_dir: Path | None = None,
    reuse_from: Path | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> str:
    """Make `project_dir` parseable as far as packages go. Returns what was done:
    `none` (nothing declared), `installed` (already there), `reused`, or `deps`.

    `reuse_from`: another tree (the working tree) whose install is copied when it declares the
    same packages. `work_dir` receives dbt's target and logs of the `dbt deps` run.
    """
    declared = declared_packages(project_dir)
    if not declared:
        return "none"
    if is_installed(project_dir):
        return "installed"
    if (
        reuse_from is not None
        and reuse_from.resolve() != project_dir.resolve()
        and is_installed(reuse_from)
        and install_dir(reuse_from).is_dir()
        and declaration_fingerprint(reuse_from) == declaration_fingerprint(project_dir)
    ):
        reuse_install(reuse_from, project_dir)
        return "reused"
    run_deps(project_dir, declared, work_dir=work_dir, profiles_dir=profiles_dir, reporter=reporter)
    return "deps"


def run_deps(
    project_dir: Path,
    declared: tuple[str, ...],
    *,
    work_dir: Path,
    profiles_dir: Path | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> None:
    """`dbt deps` in `project_dir`; a lock file dbt writes where there was none is removed
    again (the user's tree stays as it was, but for the install directory)."""
    from dataops_dev.dbt.runner import run_dbt

    lock = project_dir / "package-lock.yml"
    had_lock = lock.exists()
    run = run_dbt(
        "deps",
        [],
        project_dir=project_dir,
        profiles_dir=profiles_dir or project_dir,
        target_path=work_dir / "target",
        reporter=reporter,
        task_key="deps",
        label="dbt deps",
        cwd=project_dir,
    )
    if not had_lock:
        lock.unlink(missing_ok=True)
    if run.success and is_installed(project_dir):
        return
    remote = [name for name in declared if is_remote(name)]
    listed = ", ".join(declared)
    if remote:
        hint = (
            f"the package hub or git host may be unreachable from here: run `dbt deps` in "
            f"{project_dir} where it is reachable ({install_dir(project_dir).name}/ is then reused "
            "while packages.yml is unchanged), or vendor the packages with `local:`"
        )
    else:
        hint = f"check the `local:` paths in packages.yml (log: {run.log_file})"
    raise ProjectError(
        f"dbt deps could not install the packages of {project_dir} ({listed}): "
        f"{run.error or 'no packages installed'}",
        hint,
    )
