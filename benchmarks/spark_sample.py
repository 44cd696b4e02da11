"""The masked sample of sample_project built on Spark beside the same sample built on DuckDB.

    python benchmarks/spark_sample.py                       # scale 0.01, 3 runs each
    python benchmarks/spark_sample.py --scale 0.1 --runs 5 --remote sc://localhost:15002

Production is generated once into DuckDB and copied into a Spark schema of its own; the same
project, seed and salt then sample it on both engines, alternately (DuckDB, Spark, DuckDB, …),
each run a full `ensure_sample(refresh=True)`: inspection and classification, counting,
selection, FK closure, masking, writing, verification and (Spark) publishing a new version.
Prints the median and min wall time of each engine's runs with their steps and the load
average, and writes benchmarks/results/spark_sample.json. Without `--remote` (or
DATAOPS_SPARK_REMOTE) it uses the test suite's local Spark Connect server, starting it if
needed; it never stops a server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SALT_VAR = "DATAOPS_BENCH_SPARK_SALT"
STEPS = ("select", "closure", "mask", "write", "verify")


def _remote(given: str | None) -> str:
    if given or os.environ.get("DATAOPS_SPARK_REMOTE"):
        return str(given or os.environ["DATAOPS_SPARK_REMOTE"])
    from dataops_dev.engines import spark_server

    home = Path(os.environ.get("DATAOPS_SPARK_HOME", f"/tmp/dataops-test-spark-{os.getuid()}"))
    home.mkdir(parents=True, exist_ok=True)
    return spark_server.ensure_local(home).remote


def _project(target: Path, prod: Path, config: str, raw: str | None = None) -> Path:
    shutil.copytree(
        ROOT / "sample_project",
        target,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb*", ".mypy_cache"),
    )
    (target / "prod.duckdb").symlink_to(prod)
    if raw is not None:
        sources = target / "models" / "staging" / "_shop__sources.yml"
        text = sources.read_text(encoding="utf-8")
        sources.write_text(re.sub(r"(?m)^    schema: raw$", f"    schema: {raw}", text))
    (target / "dataops_dev.yml").write_text(
        f"version: 1\nsample:\n  salt_env: {SALT_VAR}\n  rate: 0.1\n  max_rows: 1000000000\n"
        f"{config}",
        encoding="utf-8",
    )
    return target


def _spark_profile(project: Path, remote: str, schema: str) -> None:
    profiles = project / "profiles.yml"
    profiles.write_text(
        profiles.read_text(encoding="utf-8")
        + "    spark:\n      type: spark\n      method: session\n      host: localhost\n"
        + f"      schema: {schema}\n      threads: 1\n"
        + f'      server_side_parameters: {{"spark.remote": "{remote}"}}\n',
        encoding="utf-8",
    )


def _run(project: Path) -> dict[str, Any]:
    from dataops_dev.config import load_config
    from dataops_dev.sources import ensure_sample

    started = time.perf_counter()
    record = ensure_sample(load_config(project), refresh=True)
    total = time.perf_counter() - started
    assert record.orphans == 0
    return {
        "total": total,
        "steps": {step: record.timings.get(step, 0.0) for step in STEPS},
        "rows": sum(t.sampled_rows for t in record.tables),
        "load": os.getloadavg()[0],
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    # The first run parses the dbt project (cached afterwards): reported apart, not in the median.
    warm = runs[1:] or runs
    totals = [r["total"] for r in warm]
    return {
        "first_s": runs[0]["total"],
        "median_s": statistics.median(totals),
        "min_s": min(totals),
        "steps_median_s": {
            step: statistics.median(r["steps"][step] for r in warm) for step in STEPS
        },
        "rows": runs[0]["rows"],
        "load": [round(r["load"], 2) for r in runs],
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--remote", help="a Spark Connect address (default: the local server)")
    parser.add_argument("--name", default="spark_sample")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from dataops_dev.demo import load_generator
    from dataops_dev.engines.spark import SparkEngine

    os.environ.setdefault(SALT_VAR, "benchmark-salt")
    remote = _remote(args.remote)
    token = uuid.uuid4().hex[:8]
    raw, prefix = f"bench_raw_{token}", f"bench_t{token}"
    engine = SparkEngine(remote)
    with tempfile.TemporaryDirectory(prefix="dataops-spark-bench-") as tmp:
        work = Path(tmp)
        prod = work / "prod.duckdb"
        load_generator(ROOT / "sample_project").generate(prod, scale=args.scale, seed=42)
        duck = _project(work / "duck", prod, "")
        spark = _project(
            work / "spark",
            prod,
            f"production:\n  target: spark\nbackend:\n  type: warehouse\n"
            f"  sandbox_database: {prefix}\n",
            raw,
        )
        _spark_profile(spark, remote, f"bench_analytics_{token}")
        try:
            started = time.perf_counter()
            load_generator(ROOT / "sample_project").load_into_spark(prod, remote, raw)
            loaded_s = time.perf_counter() - started
            results: dict[str, list[dict[str, Any]]] = {"duckdb": [], "spark": []}
            for run in range(args.runs):
                for name, project in (("duckdb", duck), ("spark", spark)):
                    results[name].append(_run(project))
                    last = results[name][-1]
                    print(
                        f"run {run + 1} {name:6s} {last['total']:7.1f}s  load {last['load']:.1f}",
                        file=sys.stderr,
                    )
        finally:
            for (schema,) in engine.fetchall(f"SHOW SCHEMAS LIKE 'bench_*{token}*'"):
                engine.execute(f"DROP SCHEMA IF EXISTS `{schema}` CASCADE")
            engine.close()
    summary = {name: _summary(runs) for name, runs in results.items()}
    print(f"\nsample_project scale {args.scale:g}: `ensure_sample(refresh=True)`, {args.runs} runs")
    print(f"(production copied into Spark in {loaded_s:.1f}s)\n")
    print("first: the run that parses the dbt project; median, min and steps: the runs after it\n")
    header = f"{'engine':8s} {'first':>8s} {'median':>8s} {'min':>8s} "
    print(header + " ".join(f"{s:>8s}" for s in STEPS) + "  rows  load")
    for name, item in summary.items():
        steps = " ".join(f"{item['steps_median_s'][s]:8.2f}" for s in STEPS)
        print(
            f"{name:8s} {item['first_s']:8.2f} {item['median_s']:8.2f} {item['min_s']:8.2f} "
            f"{steps} {item['rows']:5d}  {'/'.join(map(str, item['load']))}"
        )
    ratio = summary["spark"]["median_s"] / summary["duckdb"]["median_s"]
    print(f"\nspark / duckdb (median): {ratio:.1f}x")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}.json"
    out.write_text(
        json.dumps(
            {
                "scale": args.scale,
                "remote_is_local": args.remote is None,
                **summary,
                "spark_over_duckdb": ratio,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
