"""The demo: sample_project with generated production data, a realistic branch, reviewed.

`dataops-dev demo` copies the bundled sample_project into a directory, makes it a git repository,
generates production data, builds production, commits a realistic change on a demo branch and
runs `review` on it (baseline and branch built on the masked sample, diffs, verdict).

`--backend spark` does the same on Spark: production is loaded into Spark through Spark Connect
and everything (sample, environments, diffs) lives there. The server is `DATAOPS_SPARK_REMOTE`
when set, else a local one started under the demo's state directory (`<dir>/.dataops/spark`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from dataops_dev.atomic import write_bytes_atomic
from dataops_dev.config import LoadedConfig
from dataops_dev.errors import GitError, ProjectError
from dataops_dev.report.model import Report
from dataops_dev.reporting import NULL_REPORTER, Reporter, task

DEMO_BRANCH = "demo/segment-thresholds"
DEMO_SALT = "dataops-demo-salt-not-a-secret"
DEMO_BACKENDS = ("duckdb", "spark")
SPARK_CONFIG = """\
# The demo on Spark: production is sample_project's `spark` target (dbt-spark, method: session,
# over Spark Connect at $DATAOPS_SPARK_REMOTE); sample and environments are Spark schemas under
# the sandbox prefix `dataops`.
version: 1
production:
  target: spark
backend:
  type: warehouse
  sandbox_database: dataops
"""


@dataclass(frozen=True)
class Edit:
    path: str
    old: str
    new: str
    why: str


# A realistic change a reviewer should catch: new bucket thresholds and a narrower revenue
# definition (values change in fct_orders and downstream, up to the revenue dashboard), a new
# column (additive) and a join type change (breaking: it can drop stores).
DEMO_EDITS: tuple[Edit, ...] = (
    Edit(
        "models/marts/fct_orders.sql",
        "when net_amount < 50 then 'small'",
        "when net_amount < 75 then 'small'",
        "raise the small-order threshold from 50 to 75",
    ),
    Edit(
        "models/marts/fct_orders.sql",
        "status in ('placed', 'shipped', 'completed') as is_revenue",
        "status in ('shipped', 'completed') as is_revenue",
        "count revenue only once an order ships",
    ),
    Edit(
        "models/marts/customer_segments.sql",
        "    end as customer_segment\n",
        "    end as customer_segment,\n"
        "    coalesce(scored.monetary_score, 0) >= 4 as is_high_value\n",
        "add an is_high_value flag",
    ),
    Edit(
        "models/marts/store_performance.sql",
        "left join",
        "inner join",
        "only stores with orders in store performance",
    ),
)


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    production: Path
    """The generated production data (DuckDB file; on Spark, the copy it was loaded from)."""
    production_rows: dict[str, int]
    branch: str
    environment: str
    environment_path: str
    report: Report | None = None
    timings: dict[str, float] = field(default_factory=dict)
    edits: tuple[Edit, ...] = DEMO_EDITS
    backend: str = "duckdb"
    spark_remote: str | None = None


def bundled_sample_project() -> Path:
    """sample_project as installed with the package, or next to the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_sample_project", here.parent / "sample_project"):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise ProjectError(
        "sample_project is not installed with this copy of dataops_dev",
        "run the demo from a source checkout (./dev demo)",
    )


def load_generator(project: Path) -> ModuleType:
    path = project / "generator" / "generate.py"
    spec = importlib.util.spec_from_file_location("sample_project_generator", path)
    if spec is None or spec.loader is None:
        raise ProjectError(f"cannot load the data generator at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", "dataops demo"),
        "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", "demo@dataops.invalid"),
        "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", "dataops demo"),
        "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", "demo@dataops.invalid"),
    }
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed: {result.stderr.strip()}",
            f"fix the repository at {cwd}, or rerun the demo with --fresh",
        )
    return result.stdout.strip()


def apply_edits(project: Path, edits: tuple[Edit, ...] = DEMO_EDITS) -> None:
    for edit in edits:
        path = project / edit.path
        text = path.read_text("utf-8")
        if edit.old not in text:
            raise ProjectError(f"demo edit does not apply to {edit.path}: {edit.old!r} not found")
        path.write_text(text.replace(edit.old, edit.new, 1), "utf-8")


def prepare_project(directory: Path, *, fresh: bool = False, backend: str = "duckdb") -> Path:
    """Copy sample_project to `directory` as a git repository on `main` (kept if present);
    on Spark with the `dataops_dev.yml` that makes its `spark` target production."""
    if fresh and directory.exists():
        shutil.rmtree(directory)
    if not (directory / "dbt_project.yml").exists():
        shutil.copytree(
            bundled_sample_project(),
            directory,
            ignore=shutil.ignore_patterns(
                "target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal", "__pycache__"
            ),
            dirs_exist_ok=True,
        )
        if backend == "spark":
            (directory / "dataops_dev.yml").write_text(SPARK_CONFIG, "utf-8")
    if not (directory / ".git").exists():
        _git(directory, "init", "-q", "-b", "main")
        _git(directory, "add", "-A")
        _git(directory, "commit", "-q", "-m", "sample_project: production code")
    _check_backend(directory, backend)
    return directory


def _check_backend(directory: Path, backend: str) -> None:
    """A demo directory set up for one backend is not reused for the other."""
    on_spark = (directory / "dataops_dev.yml").exists()
    if on_spark != (backend == "spark"):
        raise ProjectError(
            f"the demo in {directory} was set up for "
            f"{'spark' if on_spark else 'duckdb'}, not {backend}",
            "rerun with --fresh, or give another --dir",
        )


def spark_remote_for(directory: Path) -> str:
    """The Spark Connect server of the demo: `DATAOPS_SPARK_REMOTE`, else a local server under
    the demo's state directory (started when none is running there)."""
    remote = os.environ.get("DATAOPS_SPARK_REMOTE")
    if remote:
        return remote
    from dataops_dev.engines.spark_server import ensure_local

    return ensure_local(directory / ".dataops" / "spark").remote


def build_production(loaded: LoadedConfig, *, reporter: Reporter = NULL_REPORTER) -> Path:
    """Build the demo's own production with its production target; returns its manifest.

    This is the one write to a production target outside `deploy`, and it is the demo's own
    file (sample_project's `prod.duckdb` or its PostgreSQL database).
    """
    from dataops_dev.dbt.runner import run_dbt

    production_dir = loaded.state_dir / "production"
    run = run_dbt(
        "build",
        [],
        project_dir=loaded.project_dir,
        profiles_dir=loaded.profiles_dir,
        target_path=production_dir / "target",
        target=loaded.config.production.target,
        reporter=reporter,
        task_key="production",
        cwd=loaded.project_dir,
        label="dbt build of production",
    )
    if not run.success:
        raise ProjectError(f"building production failed: {run.error}")
    write_bytes_atomic(
        production_dir / "manifest.json",
        (production_dir / "target" / "manifest.json").read_bytes(),
    )
    return production_dir / "manifest.json"


def run_demo(
    directory: Path,
    *,
    scale: float = 1.0,
    fresh: bool = False,
    reporter: Reporter = NULL_REPORTER,
    backend: str = "duckdb",
) -> DemoResult:
    """Set up the demo end to end and return where everything is (`backend`: duckdb or spark)."""
    import time

    from dataops_dev.config import load_config
    from dataops_dev.environments import Environments
    from dataops_dev.review import run_review

    timings: dict[str, float] = {}
    os.environ.setdefault("DATAOPS_SALT", DEMO_SALT)
    if backend not in DEMO_BACKENDS:
        raise ProjectError(f"no demo backend {backend!r}", "use --backend duckdb or spark")
    directory = directory.resolve()
    project = prepare_project(directory, fresh=fresh, backend=backend)
    if _git(project, "rev-parse", "--abbrev-ref", "HEAD") != "main":
        _git(project, "checkout", "-q", "main")

    production = project / "prod.duckdb"
    generator = load_generator(project)
    start = time.perf_counter()
    with task(reporter, "generate", f"generating production data (scale {scale:g})"):
        rows: dict[str, Any] = generator.generate(production, scale=scale, seed=42)
    timings["generate"] = time.perf_counter() - start

    remote = None
    if backend == "spark":
        start = time.perf_counter()
        with task(reporter, "spark", "starting or reaching Spark Connect"):
            remote = spark_remote_for(project)
        # sample_project's spark target reads it; so do the dbt builds below (same process).
        os.environ["DATAOPS_SPARK_REMOTE"] = remote
        timings["spark_start"] = time.perf_counter() - start
        start = time.perf_counter()
        with task(reporter, "load", "loading production into Spark"):
            load_production_into_spark(generator, production, remote)
        timings["load_spark"] = time.perf_counter() - start

    loaded = load_config(project)
    start = time.perf_counter()
    build_production(loaded, reporter=reporter)
    timings["build_production"] = time.perf_counter() - start

    branches = _git(project, "branch", "--list", DEMO_BRANCH)
    if branches:
        _git(project, "checkout", "-q", DEMO_BRANCH)
    else:
        _git(project, "checkout", "-q", "-b", DEMO_BRANCH)
        apply_edits(project)
        _git(
            project,
            "commit",
            "-q",
            "-am",
            "Segment thresholds, high-value flag, stores with orders",
        )

    start = time.perf_counter()
    report = run_review(load_config(project), reporter=reporter)
    timings["review"] = time.perf_counter() - start
    envs = Environments(loaded)
    environment = report.head.environment or ""
    where = (
        str(envs.database_path(environment))
        if envs.backend == "duckdb"
        else ", ".join(envs.get(environment).schemas)
    )
    return DemoResult(
        directory=project,
        production=production,
        production_rows={k: int(v) for k, v in rows.items()},
        branch=DEMO_BRANCH,
        environment=environment,
        environment_path=where,
        report=report,
        timings=timings,
        backend=backend,
        spark_remote=remote,
    )


def load_production_into_spark(generator: ModuleType, production: Path, remote: str) -> None:
    """Production's source tables into Spark (schema `raw`, or `$SAMPLE_PROJECT_RAW_SCHEMA`);
    what dbt built on older data (`analytics`, or `$SAMPLE_PROJECT_SPARK_SCHEMA`) is dropped,
    as a fresh DuckDB file would be."""
    raw = os.environ.get("SAMPLE_PROJECT_RAW_SCHEMA", "raw")
    built = os.environ.get("SAMPLE_PROJECT_SPARK_SCHEMA", "analytics")
    generator.load_into_spark(production, remote, raw, drop_schemas=(built,))
