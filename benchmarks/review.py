"""Build and review benchmark on sample_project: what a developer waits for, phase by phase.

    python benchmarks/review.py                 # scale 1 (about 1M production orders)
    python benchmarks/review.py --scale 0.1

Runs, in one fresh copy of sample_project with generated production data:
  1. `dbt build` of production with the dbt CLI (what a team runs today to check a change on
     full data; the side-by-side line),
  2. `dataops-dev build` of the main branch into a fresh environment (sample + parse/run/test),
  3. `dataops-dev review` of the demo change, cold (sample, baseline, branch build, impact,
     diffs), warm with nothing changed (everything reused) and warm after another edit (the
     baseline reused, the branch rebuilt), plus rendering markdown/HTML of the report.
Each step is a whole process (start-up included), timed by wall clock. Prints a table and writes
benchmarks/results/review.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BIN = Path(sys.executable).parent
SALT = "benchmark-salt"


def run(
    cmd: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 3):
        sys.stderr.write(result.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd)} failed with {result.returncode}")
    return elapsed, result


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="Keep the working directory.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from dataops_dev.demo import DEMO_EDITS, apply_edits, load_generator

    work = Path(tempfile.mkdtemp(prefix="dataops-bench-review-"))
    project = work / "sample_project"
    shutil.copytree(
        ROOT / "sample_project",
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    env = {**os.environ, "DATAOPS_SALT": SALT, "DO_NOT_TRACK": "1"}
    rows: list[dict[str, Any]] = []

    start = time.perf_counter()
    counts = load_generator(project).generate(project / "prod.duckdb", scale=args.scale, seed=42)
    rows.append({"step": "generate production data", "seconds": time.perf_counter() - start})
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production")

    seconds, _ = run(
        [str(BIN / "dbt"), "build", "--target", "prod", "--profiles-dir", "."], project, env
    )
    rows.append({"step": "dbt build, production data (dbt CLI)", "seconds": seconds})
    manifest = project / "target" / "manifest.json"
    (project / ".dataops" / "production").mkdir(parents=True, exist_ok=True)
    shutil.copy(manifest, project / ".dataops" / "production" / "manifest.json")

    seconds, _ = run([str(BIN / "dataops-dev"), "sample", "--json"], project, env)
    rows.append({"step": "dataops-dev sample (mask + subset)", "seconds": seconds})
    seconds, result = run([str(BIN / "dataops-dev"), "build", "--json"], project, env)
    build = json.loads(result.stdout)["build"]
    rows.append(
        {
            "step": "dataops-dev build, fresh env (sample)",
            "seconds": seconds,
            "breakdown": {k: build["timings"].get(k) for k in ("parse", "run", "test", "total")},
        }
    )

    git(project, "checkout", "-q", "-b", "demo/segment-thresholds")
    apply_edits(project, DEMO_EDITS)
    git(project, "commit", "-q", "-am", "demo change")
    steps = ("cold", "warm, nothing changed", "warm, after another edit")
    for label in steps:
        if label == "warm, after another edit":
            model = project / "models" / "marts" / "fct_orders.sql"
            model.write_text(model.read_text().replace("net_amount < 75", "net_amount < 80"))
            git(project, "commit", "-q", "-am", "another threshold")
        seconds, result = run([str(BIN / "dataops-dev"), "review", "--json"], project, env)
        report = json.loads(result.stdout)
        rows.append(
            {
                "step": f"dataops-dev review, {label}",
                "seconds": seconds,
                "breakdown": {
                    k: report["timings"].get(k)
                    for k in (
                        "sample",
                        "baseline",
                        "branch_build",
                        "impact",
                        "diffs",
                        "lineage",
                        "total",
                    )
                },
                "verdict": report["verdict"],
                "models": len(report["models"]),
            }
        )
    from dataops_dev.report.html import render_html
    from dataops_dev.report.markdown import render_markdown
    from dataops_dev.report.model import Report

    saved = Report.load(next((project / ".dataops" / "reports").rglob("report.json")))
    start = time.perf_counter()
    markdown = render_markdown(saved)
    html = render_html(saved)
    rows.append(
        {
            "step": "render markdown + HTML",
            "seconds": time.perf_counter() - start,
            "breakdown": {"markdown_chars": len(markdown), "html_bytes": len(html)},
        }
    )

    print(
        f"\nsample_project at scale {args.scale:g}: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )
    print(f"{'step':<44} {'seconds':>8}  breakdown")
    for row in rows:
        breakdown = row.get("breakdown") or {}
        detail = ", ".join(
            f"{k} {v:.1f}s" if isinstance(v, float) else f"{k} {v}"
            for k, v in breakdown.items()
            if v is not None
        )
        print(f"{row['step']:<44} {row['seconds']:>8.1f}  {detail}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "review.json"
    out.write_text(
        json.dumps(
            {
                "scale": args.scale,
                "rows": counts,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "steps": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")


if __name__ == "__main__":
    main()
