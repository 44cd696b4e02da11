"""Sampling + masking benchmark on sample_project: our set-based SQL vs seeded Faker per row.

    python benchmarks/sample.py                         # scales 1 and 10
    python benchmarks/sample.py --scales 1 --reference /work/main --runs 5 --data-dir /tmp/d
    python benchmarks/sample.py --scales 0.1,1 --faker-python /tmp/venv/bin/python
    python benchmarks/sample.py --faker-worker FILE     # internal: Faker over FILE's values

With `--reference DIR` (another checkout, e.g. the main branch) every case runs in a fresh
process alternately with our code and with DIR's (A B A B ...), and each line prints both:
median and min of the mask step's wall time and of its CPU time (all threads of the process),
masked rows/s from each, the paired CPU ratio ours/reference and the load average. The machine
is shared: CPU seconds and paired ratios are what to compare, wall rows/s only when it is idle.

For each scale: production is generated once (cached under benchmarks/results/), then
1. `sample`: the real use, rate 0.1 on customers, FK closure, masking, written to a DuckDB file;
2. `mask-all`: rate 1.0, so every production row of the masked tables goes through masking;
3. `micro`: the research note's micro-benchmark, one e-mail column of 10M rows, 1M distinct.
Masking throughput is rows of tables with masked columns / the "mask" step. Up to mask-3 that
step built the mapping tables and rewrote those tables masked in the work session; now it builds
the maps only, and each masked table is stored straight from its raw rows joined to them, inside
the "write" step (storing every table in the sample file). So a second table compares what both
sides do alike: "mask" + "write" CPU (paired ratio), and the masking cost beyond storing, ours
taken as ours("mask" + "write") - reference("write") run by run. "total" is the whole
`ensure_sample`. The
comparison line masks the same e-mails with Faker `seed_instance(hash(value))` + `email()` per
row, in another virtual environment (Faker is no dependency of ours). Results: a table on stdout
and benchmarks/results/sample.json (`--name`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


def _production(scale: float, data_dir: Path = RESULTS) -> Path:
    path = data_dir / f"prod-scale{scale:g}.duckdb"
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


def _cpu_stopwatch() -> list[Any]:
    """Make the sampler's Stopwatch also record process CPU seconds per step (all threads)."""
    from dataops_dev import sampling
    from dataops_dev.reporting import Stopwatch

    made: list[Any] = []

    class CpuStopwatch(Stopwatch):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.cpu: dict[str, float] = {}
            made.append(self)

        def measure(self, name: str) -> Any:
            inner = super().measure(name)
            watch = self

            class _Both:
                def __enter__(self) -> None:
                    self.start = time.process_time()
                    inner.__enter__()

                def __exit__(self, *exc: Any) -> None:
                    inner.__exit__(*exc)
                    spent = time.process_time() - self.start
                    watch.cpu[name] = watch.cpu.get(name, 0.0) + spent

            return _Both()

    sampling.Stopwatch = CpuStopwatch  # type: ignore[misc]
    return made


def _run(prod: Path, rate: float) -> dict[str, Any]:
    from dataops_dev.config import load_config
    from dataops_dev.sources import ensure_sample, load_manifest

    watches = _cpu_stopwatch()

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
    cpu = watches[-1].cpu if watches else {}
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
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "mask_rows_per_cpu_s": round(masked_rows / cpu["mask"]) if cpu.get("mask") else None,
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
    cpu_started = time.process_time()
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
    cpu = time.process_time() - cpu_started
    con.close()
    return {
        "rows": rows,
        "distinct": distinct,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed),
        "cpu_s": round(cpu, 2),
        "rows_per_cpu_s": round(rows / cpu),
    }


def _hash_micro(values: int = 1_000_000, runs: int = 5) -> list[dict[str, Any]]:
    """CPU per value of the SQL keyed hashes beside DuckDB's native hashes (interleaved runs).

    Only `sha256`, `md5` and `hash` are native offline (community extensions are not
    reachable); unkeyed, they are yardsticks, not replacements. HMAC is two SHA-256 passes over
    at least 2 blocks each (pad || message, pad || inner digest): the sampling bucket. The
    transformers (mask-3) use one SHA-256 over a 32-byte secret prefix || value (masking.keyed_sql):
    one block for values under 24 bytes.
    """
    import duckdb

    from dataops_dev.masking import Salt

    salt = Salt.from_secret("benchmark-salt")
    inner, outer = salt.pads("email")
    prefix = salt.prefix_key("email").hex()

    def blob(hex_text: str) -> str:
        escaped = "".join("\\x" + hex_text[i : i + 2] for i in range(0, len(hex_text), 2))
        return f"'{escaped}'::BLOB"

    variants = {
        # what masking.hmac_sql renders today: pads as hex literals, unhex folded once
        "hmac_sha256 (ours: unhex pads)": (
            f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode(v))))"
        ),
        "hmac_sha256 (blob-literal pads)": (
            f"sha256({blob(outer)} || unhex(sha256({blob(inner)} || encode(v))))"
        ),
        "keyed: sha256(prefix || v) (mask-3)": f"sha256(unhex('{prefix}') || encode(v))",
        "sha256(v): unkeyed": "sha256(v)",
        "md5(v): unkeyed": "md5(v)",
        "hash(v): 64-bit, unkeyed": "hash(v)",
    }
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(
        f"create table v as select 'user' || i || '@example.com' as v from range({values}) r(i)"
    )
    same = con.execute(
        "select count(*) from v where " + " <> ".join(variants[k] for k in list(variants)[:2])
    ).fetchone()
    assert same is not None and same[0] == 0, "both HMAC constructions must agree"
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(runs):
        for name, sql in variants.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            con.execute(f"select max({sql}) from v").fetchall()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    con.close()
    base = statistics.median(cpu[next(iter(variants))])
    return [
        {
            "function": name,
            "values": values,
            "cpu_us_per_value_median": round(statistics.median(cpu[name]) / values * 1e6, 3),
            "cpu_us_per_value_min": round(min(cpu[name]) / values * 1e6, 3),
            "wall_s_median": round(statistics.median(wall[name]), 3),
            "cpu_vs_hmac": round(statistics.median(cpu[name]) / base, 2),
            "load_avg": round(os.getloadavg()[0], 2),
        }
        for name in variants
    ]


def _query(sql: str) -> Any:
    import sqlglot

    return sqlglot.parse_one(sql, read="duckdb")


def _key_micro(rows: int = 2_000_000, runs: int = 3) -> list[dict[str, Any]]:
    """A unique key masked through a mapping table (DISTINCT + join back) vs in line, as the
    sampler now does for declared single-column primary keys: interleaved, CPU seconds."""
    import duckdb

    from dataops_dev.masking import MaskRule, Salt, Transformer, map_query

    salt = Salt.from_secret("benchmark-salt")
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(
        f"create table t as select 'cust-' || i as id, (hash(i) >> 2)::BIGINT as n, i % 1000 as a,"
        f" 'x' || i as b from range({rows}) r(i)"
    )
    out = []
    for rule, canon in (
        (MaskRule(Transformer.HMAC_ID), "id::VARCHAR"),
        (MaskRule(Transformer.HMAC_INT), "n::BIGINT"),
    ):
        distinct = _query(f"select distinct {canon} as raw from t")
        mapping = map_query(rule, distinct, salt, "duckdb").sql("duckdb")
        mapped = [
            f"create or replace temp table m as {mapping}",
            "create or replace temp table o1 as select t.a, t.b, m.masked from t"
            f" left join m on m.raw = t.{canon}",
        ]
        rows_query = _query(f"select a, b, {canon} as raw from t")
        staged = map_query(rule, rows_query, salt, "duckdb", carry=["a", "b"]).sql("duckdb")
        inline = [f"create or replace temp table o2 as select a, b, masked from ({staged})"]
        cpu: dict[str, list[float]] = {"mapped": [], "inline": []}
        for _ in range(runs):
            for name, statements in (("mapped", mapped), ("inline", inline)):
                started = time.process_time()
                for statement in statements:
                    con.execute(statement)
                cpu[name].append(time.process_time() - started)
        differ = con.execute(
            "select count(*) from o1 join o2 using (a, b) where o1.masked is distinct from o2.masked"
        ).fetchone()
        out.append(
            {
                "transformer": rule.transformer.value,
                "rows": rows,
                "mapped_cpu_s_median": round(statistics.median(cpu["mapped"]), 3),
                "inline_cpu_s_median": round(statistics.median(cpu["inline"]), 3),
                "inline_vs_mapped": round(
                    statistics.median(cpu["inline"]) / statistics.median(cpu["mapped"]), 2
                ),
                "differing_masks": differ[0] if differ else None,
                "load_avg": round(os.getloadavg()[0], 2),
            }
        )
    con.close()
    return out


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


def _worker(spec: str) -> None:
    """One case in this process (the code on sys.path first decides which code runs)."""
    case = json.loads(spec)
    os.environ.setdefault("DATAOPS_SALT", "benchmark-salt")
    if case["mode"] == "micro":
        out = _micro()
    else:
        out = _run(Path(case["prod"]), float(case["rate"]))
    print(json.dumps(out))


def _in_process(code: Path, case: dict[str, Any]) -> dict[str, Any]:
    # Nothing is written into the reference checkout (no bytecode, cwd elsewhere).
    env = dict(os.environ, PYTHONPATH=str(code), PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("DATAOPS_SALT", "benchmark-salt")
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(case)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({code}): {out.stderr[-2000:]}")
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    result["load_avg"] = round(os.getloadavg()[0], 2)
    return result


def _ab(case: dict[str, Any], reference: Path | None, runs: int) -> dict[str, Any]:
    """Ours and the reference alternately (A B A B ...), `runs` times each."""
    ours: list[dict[str, Any]] = []
    ref: list[dict[str, Any]] = []
    for _ in range(runs):
        ours.append(_in_process(ROOT, case))
        print(json.dumps({"ours": ours[-1]}), file=sys.stderr)
        if reference is not None:
            ref.append(_in_process(reference, case))
            print(json.dumps({"reference": ref[-1]}), file=sys.stderr)
    return {**case, "ours": ours, "reference": ref}


def _mask_figures(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not runs:
        return None
    if "distinct" in runs[0]:  # the micro-benchmark
        wall = [r["seconds"] for r in runs]
        cpu = [r["cpu_s"] for r in runs]
        rows = runs[0]["rows"]
    else:
        wall = [r["timings_s"].get("mask", 0.0) for r in runs]
        cpu = [r["cpu_s"].get("mask", 0.0) for r in runs]
        rows = runs[0]["masked_rows"]
    return {
        "rows": rows,
        "wall_median_s": round(statistics.median(wall), 3),
        "wall_min_s": round(min(wall), 3),
        "cpu_median_s": round(statistics.median(cpu), 3),
        "cpu_min_s": round(min(cpu), 3),
        "rows_per_s_median": round(rows / statistics.median(wall)) if min(wall) else None,
        "rows_per_s_best": round(rows / min(wall)) if min(wall) else None,
        "rows_per_cpu_s_median": round(rows / statistics.median(cpu)) if min(cpu) else None,
        "total_s_median": round(statistics.median(r.get("total_s", 0.0) for r in runs), 2),
        "load_avg": [r["load_avg"] for r in runs],
    }


def _step(run: dict[str, Any], kind: str, *steps: str) -> float:
    return sum(run[kind].get(step, 0.0) for step in steps)


def _masking_figures(case: dict[str, Any]) -> dict[str, Any] | None:
    """Masking beside storing, paired run by run: what each side spends beyond storing tables.

    The masked tables are now stored straight from their raw rows joined to the maps (nearly
    unique columns masked in line), so our "mask" step is the maps alone and the join back and
    the in-line masks run inside "write" (the reference's "mask" rewrote them). Comparable on
    both sides: "mask" + "write" (everything but selecting and verifying), and our masking
    cost as ours("mask" + "write") - reference("write"): the reference's write stores the same
    masked tables from its masked copies, which is storing without masking. The same
    difference of wall times is printed too: meaningful on a quiet machine only (see the load).
    """
    pairs = list(zip(case["ours"], case["reference"], strict=False))
    if not pairs or "distinct" in pairs[0][0]:
        return None
    rows = pairs[0][0]["masked_rows"]

    def side(values: list[float]) -> dict[str, float]:
        return {"median": round(statistics.median(values), 3), "min": round(min(values), 3)}

    ours_cpu = [_step(a, "cpu_s", "mask", "write") - _step(b, "cpu_s", "write") for a, b in pairs]
    ref_cpu = [_step(b, "cpu_s", "mask") for _, b in pairs]
    # A difference of two wall times: meaningful only on a quiet machine (see the load).
    ours_wall = [
        _step(a, "timings_s", "mask", "write") - _step(b, "timings_s", "write") for a, b in pairs
    ]
    ref_wall = [_step(b, "timings_s", "mask") for _, b in pairs]
    walls = {
        "ours": [_step(a, "timings_s", "mask", "write") for a, _ in pairs],
        "reference": [_step(b, "timings_s", "mask", "write") for _, b in pairs],
    }
    both = {
        "ours": [_step(a, "cpu_s", "mask", "write") for a, _ in pairs],
        "reference": [_step(b, "cpu_s", "mask", "write") for _, b in pairs],
    }
    ratios = [
        _step(a, "cpu_s", "mask", "write") / _step(b, "cpu_s", "mask", "write") for a, b in pairs
    ]
    out: dict[str, Any] = {
        "rows": rows,
        "mask_write_cpu_ratio_median": round(statistics.median(ratios), 3),
    }
    for name, cpu, wall in (("ours", ours_cpu, ours_wall), ("reference", ref_cpu, ref_wall)):
        out[name] = {
            "mask_write_cpu_s": side(both[name]),
            "mask_write_wall_s": side(walls[name]),
            "masking_wall_s": side(wall),
            "rows_per_s_masking_wall_median": round(rows / statistics.median(wall)),
            "masking_cpu_s": side(cpu),
            "rows_per_masking_cpu_s_median": round(rows / statistics.median(cpu)),
            "rows_per_masking_cpu_s_best": round(rows / min(cpu)),
        }
    out["load_avg"] = [round(a["load_avg"], 1) for a, _ in pairs]
    return out


def _print_masking(results: dict[str, Any]) -> None:
    print(
        f"{'scale':>5} {'mode':<9} {'side':<5} {'mask+write cpu med':>18} {'(min)':>7} "
        f"{'A/B':>5} {'masking cpu med':>15} {'(min)':>7} {'rows/masking-cpu-s':>18} "
        f"{'(best)':>11} {'mask+write wall':>15} {'masking wall':>12} {'rows/s':>10}  load"
    )
    for case in results["cases"]:
        figures = _masking_figures(case)
        case["masking"] = figures
        if figures is None:
            continue
        for side in ("ours", "reference"):
            fig = figures[side]
            ratio = f"{figures['mask_write_cpu_ratio_median']:.2f}" if side == "ours" else ""
            print(
                f"{case['scale']:>5g} {case['mode']:<9} {side[:5]:<5} "
                f"{fig['mask_write_cpu_s']['median']:>18.2f} {fig['mask_write_cpu_s']['min']:>7.2f} "
                f"{ratio:>5} {fig['masking_cpu_s']['median']:>15.2f} "
                f"{fig['masking_cpu_s']['min']:>7.2f} {fig['rows_per_masking_cpu_s_median']:>18,} "
                f"{fig['rows_per_masking_cpu_s_best']:>11,} "
                f"{fig['mask_write_wall_s']['median']:>15.2f} "
                f"{fig['masking_wall_s']['median']:>12.2f} "
                f"{fig['rows_per_s_masking_wall_median']:>10,}  "
                f"{'/'.join(f'{x:.1f}' for x in figures['load_avg'])}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10", help="comma-separated generator scales")
    parser.add_argument("--modes", default="sample,mask-all", help="sample (rate 0.1), mask-all")
    parser.add_argument("--data-dir", type=Path, default=RESULTS, help="production files (GBs)")
    parser.add_argument("--reference", type=Path, help="another checkout to run beside ours")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side per case")
    parser.add_argument("--faker-python", default=DEFAULT_FAKER_PYTHON)
    parser.add_argument("--no-micro", action="store_true")
    parser.add_argument("--name", default="sample", help="writes benchmarks/results/NAME.json")
    parser.add_argument("--faker-worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.faker_worker:
        _faker_worker(args.faker_worker)
        return 0
    if args.worker:
        _worker(args.worker)
        return 0
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATAOPS_SALT", "benchmark-salt")
    RESULTS.mkdir(parents=True, exist_ok=True)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    reference = args.reference.resolve() if args.reference else None
    rates = {"sample": 0.1, "mask-all": 1.0}
    results: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "reference": str(reference) if reference else None,
        "runs_per_side": args.runs,
        "cases": [],
        "faker": [],
    }
    for scale in (float(s) for s in args.scales.split(",")):
        prod = _production(scale, args.data_dir)
        for mode in args.modes.split(","):
            case = {"scale": scale, "mode": mode, "rate": rates[mode], "prod": str(prod)}
            results["cases"].append(_ab(case, reference, args.runs))
        faker = _faker(prod, args.faker_python)
        if faker is not None:
            results["faker"].append({"scale": scale, **faker})
    if not args.no_micro:
        results["cases"].append(_ab({"scale": 0, "mode": "micro"}, reference, args.runs))
        results["hash_functions"] = _hash_micro()
        results["unique_key_inline"] = _key_micro()
    header = (
        f"{'scale':>5} {'mode':<9} {'side':<5} {'masked rows':>12} {'mask s med':>10} "
        f"{'(min)':>7} {'cpu s med':>9} {'(min)':>7} {'rows/s med':>11} {'rows/s best':>11} "
        f"{'rows/cpu-s':>11} {'total s':>8} {'cpu A/B':>7}  load"
    )
    print(header)
    for case in results["cases"]:
        figures = {side: _mask_figures(case[side]) for side in ("ours", "reference")}
        case["summary"] = figures
        ratios = [
            a["cpu_s"] / b["cpu_s"] if "distinct" in a else a["cpu_s"]["mask"] / b["cpu_s"]["mask"]
            for a, b in zip(case["ours"], case["reference"], strict=False)
        ]
        case["cpu_ratio_median"] = round(statistics.median(ratios), 3) if ratios else None
        for side, fig in figures.items():
            if fig is None:
                continue
            ratio = f"{case['cpu_ratio_median']:.2f}" if side == "ours" and ratios else ""
            print(
                f"{case['scale']:>5g} {case['mode']:<9} {side[:5]:<5} {fig['rows']:>12,} "
                f"{fig['wall_median_s']:>10.2f} {fig['wall_min_s']:>7.2f} "
                f"{fig['cpu_median_s']:>9.2f} {fig['cpu_min_s']:>7.2f} "
                f"{fig['rows_per_s_median'] or 0:>11,} {fig['rows_per_s_best'] or 0:>11,} "
                f"{fig['rows_per_cpu_s_median'] or 0:>11,} {fig['total_s_median']:>8.2f} "
                f"{ratio:>7}  {'/'.join(f'{x:.1f}' for x in fig['load_avg'])}"
            )
    _print_masking(results)
    for faker in results["faker"]:
        print(
            f"scale {faker['scale']:g}: seeded Faker per row {faker['rows']:,} e-mails in "
            f"{faker['seconds']:.2f}s = {faker['rows_per_s']:,} rows/s"
        )
    for row in results.get("hash_functions", []):
        print(
            f"hash {row['function']:<38} {row['cpu_us_per_value_median']:>6.3f} us/value CPU "
            f"(min {row['cpu_us_per_value_min']:.3f}) = {row['cpu_vs_hmac']:.2f}x HMAC, "
            f"load {row['load_avg']:.1f}"
        )
    for row in results.get("unique_key_inline", []):
        print(
            f"unique key ({row['transformer']}, {row['rows']:,} rows): mapped "
            f"{row['mapped_cpu_s_median']:.2f} CPU s, in line {row['inline_cpu_s_median']:.2f} = "
            f"{row['inline_vs_mapped']:.2f}x, {row['differing_masks']} differing masks, "
            f"load {row['load_avg']:.1f}"
        )
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps(results, indent=2) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
