"""Spark beside DuckDB: the demo (sample_project at a small scale) end to end on each engine.

    python benchmarks/spark.py                        # scale 0.01, one run per engine
    python benchmarks/spark.py --scale 0.05 --runs 2  # runs interleave: duckdb, spark, duckdb, ...
    DATAOPS_SPARK_REMOTE=sc://host:15002 python benchmarks/spark.py --skip-startup

Steps timed per engine: Spark start-up (a fresh local Spark Connect server in a temporary folder,
started and stopped here; skipped with --skip-startup), generating production, loading it into
Spark, the dbt build of production, and the review's own stages (sample, baseline build, branch
build, diffs, total review). Spark runs on `DATAOPS_SPARK_REMOTE` when set, else on the server
this script started. A stage an engine cannot run yet is reported with the reason. Results: a
table on stdout and benchmarks/results/spark.json, with the 1-minute load average before and
after each run (the machine is shared: compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

STEPS = (
    "spark_start",
    "generate",
    "load_spark",
    "build_production",
    "sample",
    "baseline",
    "branch_build",
    "diff",
    "review",
)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def startup_seconds() -> tuple[float, str]:
    """Seconds until a fresh local Spark Connect server accepts connections; the server keeps
    running (its address is returned) and is stopped by the caller."""
    from dataops_dev.engines import spark_server

    home = Path(tempfile.mkdtemp(prefix="dataops-bench-spark-"))
    started = time.perf_counter()
    server = spark_server.start(home)
    seconds = time.perf_counter() - started
    _SERVERS.append(server)
    return seconds, server.remote


_SERVERS: list[Any] = []
SPARK_SCHEMAS = {
    "SAMPLE_PROJECT_RAW_SCHEMA": "bench_raw",
    "SAMPLE_PROJECT_SPARK_SCHEMA": "bench_analytics",
}


def one_run(backend: str, scale: float, workdir: Path) -> dict[str, Any]:
    """The demo on `backend`; its timings, the review's stages, or the error that stopped it."""
    from dataops_dev.demo import run_demo

    directory = workdir / f"demo-{backend}"
    shutil.rmtree(directory, ignore_errors=True)
    # On a shared Spark, production goes to schemas of the benchmark's own; DuckDB keeps `raw`.
    for variable, value in SPARK_SCHEMAS.items():
        if backend == "spark":
            os.environ[variable] = value
        else:
            os.environ.pop(variable, None)
    out: dict[str, Any] = {"backend": backend, "load_before": _load()}
    started = time.perf_counter()
    try:
        result = run_demo(directory, scale=scale, backend=backend)
    except Exception as exc:  # a stage Spark cannot run yet is a result here
        out["error"] = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"[:300]
        out["seconds"] = round(time.perf_counter() - started, 3)
        out["load_after"] = _load()
        return out
    steps = {k: round(v, 3) for k, v in result.timings.items()}
    review = dict(result.report.timings) if result.report is not None else {}
    for stage in ("sample", "baseline", "branch_build"):
        if stage in review:
            steps[stage] = review[stage]
    diff = [v for k, v in review.items() if "diff" in k]
    if diff:
        steps["diff"] = round(sum(diff), 3)
    out["steps"] = steps
    out["verdict"] = result.report.verdict.value if result.report is not None else None
    out["seconds"] = round(time.perf_counter() - started, 3)
    out["load_after"] = _load()
    return out


def _median(runs: list[dict[str, Any]], step: str) -> float | None:
    values = [r["steps"][step] for r in runs if step in r.get("steps", {})]
    return round(statistics.median(values), 2) if values else None


def table(results: dict[str, Any]) -> str:
    runs = results["runs"]
    duck = [r for r in runs if r["backend"] == "duckdb"]
    spark = [r for r in runs if r["backend"] == "spark"]
    lines = [f"{'step':<18}{'duckdb s':>10}{'spark s':>10}{'spark/duckdb':>14}"]
    for step in STEPS:
        d = _median(duck, step)
        s = results["startup"] if step == "spark_start" else _median(spark, step)
        ratio = f"{s / d:.1f}x" if d and s else ""
        fmt = lambda v: "" if v is None else f"{v:.1f}"  # noqa: E731
        lines.append(f"{step:<18}{fmt(d):>10}{fmt(s):>10}{ratio:>14}")
    for r in runs:
        note = r.get("error") or f"verdict {r.get('verdict')}"
        lines.append(
            f"  {r['backend']:<7} {r['seconds']:>7.1f}s  load {r['load_before']}->{r['load_after']}"
            f"  {note}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument(
        "--backends", default="duckdb,spark", help="comma-separated, run in this order"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "spark.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("DATAOPS_SALT", "benchmark-salt-not-a-secret")
    on_spark = "spark" in args.backends.split(",")
    if on_spark and args.skip_startup and not os.environ.get("DATAOPS_SPARK_REMOTE"):
        parser.error("--skip-startup needs DATAOPS_SPARK_REMOTE (the server to run on)")

    results: dict[str, Any] = {"scale": args.scale, "startup": None, "runs": []}
    workdir = Path(tempfile.mkdtemp(prefix="dataops-bench-"))
    try:
        if on_spark and not args.skip_startup:
            seconds, remote = startup_seconds()
            results["startup"] = round(seconds, 2)
            os.environ.setdefault("DATAOPS_SPARK_REMOTE", remote)
        for _ in range(args.runs):
            for backend in args.backends.split(","):  # interleaved: both see the same load
                results["runs"].append(one_run(backend, args.scale, workdir))
    finally:
        from dataops_dev.engines import spark_server

        for server in _SERVERS:
            spark_server.stop(server)
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
