"""Benchmark: wall and CPU time of the pre-commit hooks for a 3-file change, on sample_project (its
production manifest from a real `dbt parse`) and on a generated 500-model project.

    .venv/bin/python benchmarks/hooks.py                  # sample_project + 500 models
    .venv/bin/python benchmarks/hooks.py --models 200 --repeat 5

Each hook runs as pre-commit runs it: a fresh `dataops-dev hook ID FILES...` process (so import
and start-up are included). "cold" is the first run with an empty lineage cache, "warm" the
median of the following runs; `pre-commit run` times the three fast hooks end to end. Prints a
table and writes benchmarks/results/hooks.json. CPU time (user + sys of the child) is reported
next to wall time because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from benchmarks.gen_project import apply_edits, generate_project  # noqa: E402

FAST_HOOKS = ("sql-check", "impact-guard", "keys-and-tests")

SAMPLE_EDITS = (
    # a partial change, an additive change, and a breaking change upstream of a contract
    ("models/staging/stg_orders.sql", "lower(trim(status)) as status", "lower(status) as status"),
    (
        "models/marts/dim_stores.sql",
        "first_orders.first_order_date\nfrom stores",
        "first_orders.first_order_date,\n    true as is_open\nfrom stores",
    ),
    (
        "models/intermediate/int_order_totals.sql",
        "    count(*) as item_count,\n",
        "",
    ),
)


def _git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _timed(command: list[str], cwd: Path) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PRE_COMMIT_HOME": str(cwd.parent / ".pre-commit-home")},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "exit": run.returncode, "output": run.stdout[-600:]}


def _series(command: list[str], cwd: Path, repeat: int, cold_reset: Path | None) -> dict[str, Any]:
    if cold_reset is not None:
        shutil.rmtree(cold_reset, ignore_errors=True)
    cold = _timed(command, cwd)
    warm = [_timed(command, cwd) for _ in range(repeat)]
    return {
        "cold_wall_s": round(cold["wall_s"], 3),
        "cold_cpu_s": round(cold["cpu_s"], 3),
        "warm_wall_s": round(statistics.median(w["wall_s"] for w in warm), 3),
        "warm_cpu_s": round(statistics.median(w["cpu_s"] for w in warm), 3),
        "exit": cold["exit"],
        "output_tail": cold["output"],
    }


def _local_config() -> str:
    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    local = []
    for hook in hooks:
        if hook["id"] == "dataops-review":
            continue
        entry = dict(hook)
        entry["entry"] = str(BIN / "dataops-dev") + entry["entry"].removeprefix("dataops-dev")
        entry["language"] = "system"
        local.append(entry)
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}, sort_keys=False)


def _prepare_repo(project: Path) -> None:
    (project / ".gitignore").write_text(".dataops/\ntarget/\nlogs/\n*.duckdb\n", "utf-8")
    (project / ".pre-commit-config.yaml").write_text(_local_config(), "utf-8")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "production")


def _sample_project(work: Path) -> tuple[Path, list[str]]:
    project = work / "sample_project"
    shutil.copytree(
        REPO / "sample_project",
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    subprocess.run(
        [str(BIN / "dbt"), "parse", "--project-dir", ".", "--profiles-dir", ".", "-q"],
        cwd=project,
        check=True,
        capture_output=True,
    )
    production = project / ".dataops" / "production"
    production.mkdir(parents=True)
    shutil.copy(project / "target" / "manifest.json", production / "manifest.json")
    shutil.rmtree(project / "target")
    _prepare_repo(project)
    files = []
    for relative, old, new in SAMPLE_EDITS:
        path = project / relative
        text = path.read_text(encoding="utf-8")
        if old in text:
            path.write_text(text.replace(old, new, 1), encoding="utf-8")
            files.append(relative)
    return project, files


def _generated_project(work: Path, n_models: int) -> tuple[Path, list[str]]:
    project = generate_project(work / "generated", n_models=n_models, n_columns=20, seed=0)
    production = project / ".dataops" / "production"
    production.mkdir(parents=True)
    shutil.copy(project / "target" / "manifest.json", production / "manifest.json")
    shutil.rmtree(project / "target")
    _prepare_repo(project)
    files = [path.relative_to(project).as_posix() for path in apply_edits(project, n_models)]
    return project, files


def _bench_project(label: str, project: Path, files: list[str], repeat: int) -> dict[str, Any]:
    _git(project, "add", "-A")
    cache = project / ".dataops" / "cache"
    out: dict[str, Any] = {"files": files, "hooks": {}}
    for hook in FAST_HOOKS:
        command = [str(BIN / "dataops-dev"), "hook", hook, *files]
        reset = cache if hook == "impact-guard" else None
        out["hooks"][hook] = _series(command, project, repeat, reset)
    shutil.rmtree(cache, ignore_errors=True)
    out["pre_commit_run"] = _series(
        [str(BIN / "pre-commit"), "run", "--color", "never"], project, repeat, cache
    )
    print(f"  {label}: done", file=sys.stderr)
    return out


def _startup(repeat: int) -> dict[str, Any]:
    cwd = Path(tempfile.gettempdir())
    result = {}
    for name, command in (
        ("dataops-dev --help", [str(BIN / "dataops-dev"), "--help"]),
        ("dataops-dev hook --help", [str(BIN / "dataops-dev"), "hook", "--help"]),
        ("python -c pass", [sys.executable, "-c", "pass"]),
    ):
        runs = [_timed(command, cwd) for _ in range(repeat)]
        result[name] = {
            "wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
            "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        }
    return result


def _heavy_imports(project: Path, files: list[str]) -> list[str]:
    """Modules of dbt, duckdb, pandas or git imported by the fast hooks (should be none)."""
    found: set[str] = set()
    for hook in FAST_HOOKS:
        run = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "dataops_dev", "hook", hook, *files],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        for line in run.stderr.splitlines():
            if "|" not in line:
                continue
            module = line.rsplit("|", 1)[1].strip()
            if module.split(".")[0] in ("dbt", "duckdb", "pandas", "git", "psycopg"):
                found.add(f"{hook}: {module}")
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "hooks.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"repeat": args.repeat, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="hooks-bench-") as tmp:
        work = Path(tmp)
        results["startup"] = _startup(args.repeat)
        sample, sample_files = _sample_project(work)
        results["sample_project"] = _bench_project(
            "sample_project", sample, sample_files, args.repeat
        )
        results["heavy_imports"] = _heavy_imports(sample, sample_files)
        generated, generated_files = _generated_project(work, args.models)
        results[f"generated_{args.models}"] = _bench_project(
            f"{args.models} models", generated, generated_files, args.repeat
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    _print_table(results, args.models)


def _print_table(results: dict[str, Any], n_models: int) -> None:
    print("start-up (median wall / cpu):")
    for name, row in results["startup"].items():
        print(f"  {name:<26} {row['wall_s']:>6.2f} s  {row['cpu_s']:>6.2f} s")
    print()
    header = f"{'project':<16} {'hook':<16} {'cold wall':>9} {'cold cpu':>9} {'warm wall':>9} "
    print(header + f"{'warm cpu':>9} {'exit':>5}")
    for key in ("sample_project", f"generated_{n_models}"):
        block = results[key]
        rows = [*block["hooks"].items(), ("pre-commit run", block["pre_commit_run"])]
        for hook, row in rows:
            print(
                f"{key:<16} {hook:<16} {row['cold_wall_s']:>8.2f}s {row['cold_cpu_s']:>8.2f}s "
                f"{row['warm_wall_s']:>8.2f}s {row['warm_cpu_s']:>8.2f}s {row['exit']:>5}"
            )
    heavy = results["heavy_imports"]
    print()
    print("dbt/duckdb/pandas/git imported by the fast hooks:", ", ".join(heavy) or "none")


if __name__ == "__main__":
    main()
