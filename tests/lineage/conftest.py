"""Fixtures for lineage/impact tests: a small generated dbt project and a dbt-compiled copy of
sample_project (its production manifest), made once per session."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _gen_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_gen_project", REPO_ROOT / "benchmarks" / "gen_project.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the file executes
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gen_project() -> Callable[..., Path]:
    """`benchmarks.gen_project.generate_project`."""
    return _gen_module().generate_project  # type: ignore[no-any-return]


@pytest.fixture
def small_project(tmp_path: Path, gen_project: Callable[..., Path]) -> Path:
    """A 40-model synthetic project with its production manifest in target/."""
    return gen_project(tmp_path / "bench", n_models=40, n_columns=8, seed=3)


@pytest.fixture(scope="session")
def compiled_sample_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sample_project compiled by real dbt (DuckDB target): its target/manifest.json is the
    production manifest the impact tests compare edits against."""
    project = tmp_path_factory.mktemp("lineage_sample") / "sample_project"
    shutil.copytree(
        REPO_ROOT / "sample_project",
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    dbt = Path(sys.executable).parent / "dbt"
    result = subprocess.run(
        [str(dbt), "compile", "--project-dir", str(project), "--profiles-dir", str(project), "-q"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return project


@pytest.fixture
def sample_edit(compiled_sample_project: Path, tmp_path: Path) -> Callable[..., Path]:
    """Copy the compiled sample_project and apply (file, old, new) edits to the copy."""

    def make(*edits: tuple[str, str, str]) -> Path:
        project = tmp_path / "edited"
        shutil.copytree(compiled_sample_project, project)
        for relative, old, new in edits:
            path = project / relative
            text = path.read_text(encoding="utf-8")
            assert old in text, (relative, old)
            path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return project

    return make
