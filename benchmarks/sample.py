"""Sampling + masking benchmark on sample_project: our set-based SQL vs seeded Faker per row.

    python benchmarks/sample.py                         # scales 1 and 10
    python benchmarks/sample.py --scales 0.1,1 --faker-python /tmp/venv/bin/python
    python benchmarks/sample.py --faker-worker FILE     # internal: Faker over FILE's values

For each scale: production is generated once (cached under benchmarks/results/), then
1. `sample`: the real use, rate 0.1 on customers, FK closure, masking, written to a DuckDB file;
2. `mask-all`: rate 1.0, so every production row of the masked tables goes through masking;
3. `micro`: the research note's micro-benchmark, one e-mail column of 10M rows, 1M distinct.
Masking throughput is rows of tables with masked columns / the "mask" step: building the mapping
tables and rewriting those tables masked in the work session. Storing every table in the sample
file is the "write" step, timed apart; "total" is the whole `ensure_sample`. The
comparison line masks the same e-mails with Faker `seed_instance(hash(value))` + `email()` per
row, in another virtual environment (Faker is no dependency of ours). Results: a table on stdout
and benchmarks/results/sample.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_FAKER_PYTHON = "/tmp/dataops-bench-faker/bin/python"
FAKER_ROWS = 20_000


def _production(scale: float) -> Path:
    path = RESULTS / f"prod-scale{scale:g}.duckdb"
    if not path.exists():
        from dataops_dev.demo import load_generator

        started = time.perf_counter()
        load_generator(ROOT / "sample_project").generate(path, scale=scale, seed=42)
        print(f"generated scale {scale:g} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return path


def _project(workdir: Path, prod: Path, rate: float) -> Path:
    project = workdir / "project"
    shutil.copytree(
        ROOT / "sample_project",
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb*", ".mypy_cache"),
    )
    (project / "prod.duckdb").symlink_to(prod)
    (project / "dataops_dev.yml").write_text(
        f"version: 1\nsample:\n  rate: {rate}\n  max_rows: 1000000000\n", encoding="utf-8"
    )
    return project


def _run(prod: Path, rate: float) -> dict[str, Any]:
    from dataops_dev.config import load_config
    from dataops_dev.sources import ensure_sample, load_manifest

    with tempfile.TemporaryDirectory(prefix="dataops-bench-") as tmp:
        project = _project(Path(tmp), prod, rate)
        loaded = load_config(project)
        load_manifest(loaded)  # dbt parse is not what we measure
        started = time.perf_counter()
        record = ensure_sample(loaded, refresh=True)
        total = time.perf_counter() - started
        size = Path(record.location).stat().st_size
    masked_rows = record.masked_rows
    mask_time = record.timings.get("mask", 0.0)
    cells = sum(t.sampled_rows * len(t.masked) for t in record.tables)
    return {
        "rate": rate,
        "total_s": round(total, 2),
        "timings_s": {k: round(v, 3) for k, v in record.timings.items()},
        "production_rows": sum(t.production_rows for t in record.tables),
        "sampled_rows": sum(t.sampled_rows for t in record.tables),
        "orphans": record.orphans,
        "masked_rows": masked_rows,
        "masked_columns": sum(len(t.masked) for t in record.tables),
        "mask_rows_per_s": round(record.mask_rows_per_s or 0) or None,
        # cells = rows x masked columns: a customers row carries eight masked values
        "masked_cells": cells,
        "mask_cells_per_s": round(cells / mask_time) if mask_time else None,
        "sample_file_bytes": size,
    }


def _micro(rows: int = 10_000_000, distinct: int = 1_000_000) -> dict[str, Any]:
    """The research note's micro-benchmark: one e-mail column, `rows` rows, `distinct` values."""
    import duckdb
    from sqlglot import exp

    from dataops_dev.masking import MaskRule, Salt, Transformer, apply_sql, canonical, map_query

    rule = MaskRule(Transformer.EMAIL)
    salt = Salt.from_secret("benchmark-salt")
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(
        f"create table t as select i as id, 'user' || (i % {distinct}) || '@example.com' as email "
        f"from range({rows}) r(i)"
    )
    column = exp.column("email", "t", quoted=True)
    values = (
        exp.select(canonical(rule, column, "duckdb").as_("raw"))
        .distinct()
        .from_(exp.table_("t").as_("t"))
    )
    started = time.perf_counter()
    con.execute(f"create temp table m as {map_query(rule, values, salt, 'duckdb').sql('duckdb')}")
    masked = apply_sql(rule, column, exp.column("masked", "m"), "VARCHAR", "duckdb")
    query = (
        exp.select(exp.column("id", "t"), masked.as_("email"))
        .from_(exp.table_("t").as_("t"))
        .join(
            exp.table_("m").as_("m"),
            on=exp.EQ(this=exp.column("raw", "m"), expression=canonical(rule, column, "duckdb")),
            join_type="left",
        )
    )
    con.execute(f"create table out as {query.sql('duckdb')}")
    elapsed = time.perf_counter() - started
    con.close()
    return {
        "rows": rows,
        "distinct": distinct,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed),
    }


def _faker(prod: Path, python: str) -> dict[str, Any] | None:
    if not Path(python).exists():
        return None
    import duckdb

    with duckdb.connect(str(prod), read_only=True) as con:
        values = [
            r[0]
            for r in con.execute(
                "select email from raw.customers where email is not null order by customer_id "
                f"limit {FAKER_ROWS}"
            ).fetchall()
        ]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(values))
        path = handle.name
    try:
        out = subprocess.run(
            [python, __file__, "--faker-worker", path],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(path)
    return dict(json.loads(out.stdout))


def _faker_worker(path: str) -> None:
    import hashlib

    from faker import Faker

    values = Path(path).read_text(encoding="utf-8").splitlines()
    fake = Faker()
    started = time.perf_counter()
    masked = []
    for value in values:
        # The usual "deterministic Faker": one seed per value, one provider call per row.
        fake.seed_instance(int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big"))
        masked.append(fake.email())
    elapsed = time.perf_counter() - started
    import faker

    print(
        json.dumps(
            {
                "rows": len(values),
                "seconds": round(elapsed, 3),
                "rows_per_s": round(len(values) / elapsed),
                "faker": faker.VERSION,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10", help="comma-separated generator scales")
    parser.add_argument("--faker-python", default=DEFAULT_FAKER_PYTHON)
    parser.add_argument("--faker-worker", help=argparse.SUPPRESS)
    parser.add_argument("--skip-mask-all", action="store_true")
    args = parser.parse_args(argv)
    if args.faker_worker:
        _faker_worker(args.faker_worker)
        return 0
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATAOPS_SALT", "benchmark-salt")
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "runs": []}
    for scale in (float(s) for s in args.scales.split(",")):
        prod = _production(scale)
        for mode, rate in (("sample", 0.1), ("mask-all", 1.0)):
            if mode == "mask-all" and args.skip_mask_all:
                continue
            run = {"scale": scale, "mode": mode, **_run(prod, rate)}
            results["runs"].append(run)
            print(json.dumps(run), file=sys.stderr)
        faker = _faker(prod, args.faker_python)
        if faker is not None:
            results["runs"].append({"scale": scale, "mode": "faker-per-row", **faker})
    micro = _micro()
    results["micro_email_10m_rows_1m_distinct"] = micro
    header = f"{'scale':>6} {'mode':<14} {'prod rows':>12} {'sampled':>11} {'masked rows':>12} "
    header += f"{'mask rows/s':>12} {'cells/s':>11} {'mask s':>7} {'write s':>7} {'total s':>8} "
    header += f"{'orphans':>7}"
    print(header)
    for run in results["runs"]:
        if run["mode"] == "faker-per-row":
            print(
                f"{run['scale']:>6g} {'faker/row':<14} {'':>12} {'':>11} {run['rows']:>12,} "
                f"{run['rows_per_s']:>12,} {run['rows_per_s']:>11,} {run['seconds']:>7.2f} "
                f"{'':>7} {run['seconds']:>8.2f} {'':>7}"
            )
            continue
        print(
            f"{run['scale']:>6g} {run['mode']:<14} {run['production_rows']:>12,} "
            f"{run['sampled_rows']:>11,} {run['masked_rows']:>12,} "
            f"{run['mask_rows_per_s'] or 0:>12,} {run['mask_cells_per_s'] or 0:>11,} "
            f"{run['timings_s'].get('mask', 0):>7.2f} {run['timings_s'].get('write', 0):>7.2f} "
            f"{run['total_s']:>8.2f} {run['orphans']:>7}"
        )
    print(
        f"micro: e-mail masking of {micro['rows']:,} rows ({micro['distinct']:,} distinct) in "
        f"{micro['seconds']:.2f}s = {micro['rows_per_s']:,} rows/s"
    )
    (RESULTS / "sample.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
