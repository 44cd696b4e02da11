"""Build and review benchmark on sample_project: what a developer waits for, phase by phase.

    python benchmarks/review.py                 # scale 1 (about 1M production orders)
    python benchmarks/review.py --scale 0.1
    python benchmarks/review.py --scale 10 --repeat 1

Runs, in one fresh copy of sample_project with generated production data:
  1. `dbt build` of production with the dbt CLI: the reference every line is set beside (what a
     team runs today to check a change on full data), run at the start and again at the end,
  2. `dataops-dev sample`, then `dataops-dev build` of the main branch into a fresh environment,
  3. `dataops-dev review` of the demo change, cold (sample, baseline, branch build, impact,
     diffs), warm with nothing changed (everything reused) and warm after a one-model edit (the
     baseline reused, the branch rebuilt), the warm ones `--repeat` times, interleaved,
  4. rendering markdown/HTML of the report.
Each step is a whole process (start-up included), timed by wall clock and by CPU (user + system
of the process and its children). `review` and `build` are served by the resident worker
(`dataops_dev.cli.resident`) once the first `build` has started it, as on a developer's machine: the
CPU of the fork that ran a command is added to the command's, and the worker's own warm-up is a
row of its own; `--no-worker` runs every command in a process of its own. Prints a table with
the reference beside each line, the load average, and the issue's bars; writes
benchmarks/results/review.json (review_no_worker.json with `--no-worker`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    cmd: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds, result) of one whole process. A command served by the
    resident worker runs in a fork that is not our child: its CPU, which the worker reports
    (`DATAOPS_WORKER_REPORT`), is added."""
    served = Path(env["DATAOPS_RUNTIME_DIR"]) / "served.json"
    served.unlink(missing_ok=True)
    cpu = children_cpu()
    start = time.perf_counter()
    result = subprocess.run(
        cmd,
        cwd=cwd,
        env={**env, "DATAOPS_WORKER_REPORT": str(served)},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 3):
        sys.stderr.write(result.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd)} failed with {result.returncode}")
    fork_cpu = json.loads(served.read_text())["cpu_s"] if served.exists() else 0.0
    return elapsed, children_cpu() - cpu + fork_cpu, result


def worker_cpu(runtime: Path) -> tuple[int, float] | None:
    """(pid, CPU seconds) of the resident worker itself (its warm-up; forks are counted with the
    commands they ran), or None when no worker ran."""
    sys.path.insert(0, str(ROOT))
    from dataops_dev.cli import resident as worker

    for lock in runtime.glob("worker-*.lock"):
        key = lock.name.removeprefix("worker-").removesuffix(".lock")
        pid = worker.running_pid(worker.Location(runtime, key))
        if pid is not None:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = os.sysconf("SC_CLK_TCK")
            return pid, (int(fields[11]) + int(fields[12])) / ticks
    return None


def load() -> float:
    return round(os.getloadavg()[0], 2)


def summary(step: str, walls: list[float], cpus: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "step": step,
        "runs": len(walls),
        "seconds": statistics.median(walls),
        "seconds_min": min(walls),
        "cpu": statistics.median(cpus),
        "cpu_min": min(cpus),
        **extra,
    }


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
    parser.add_argument(
        "--repeat", type=int, default=3, help="Runs of each warm review (interleaved)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the working directory.")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="Run every command in a process of its own (DATAOPS_WORKER=0).",
    )
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
    runtime = work / "runtime"  # the resident worker's socket: this run's own
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "DATAOPS_SALT": SALT,
        "DO_NOT_TRACK": "1",
        "DATAOPS_RUNTIME_DIR": str(runtime),
        "DATAOPS_WORKER": "0" if args.no_worker else "1",
    }
    rows: list[dict[str, Any]] = []
    loads = [load()]

    start = time.perf_counter()
    counts = load_generator(project).generate(project / "prod.duckdb", scale=args.scale, seed=42)
    rows.append(summary("generate production data", [time.perf_counter() - start], [0.0]))
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production")

    reference: tuple[list[float], list[float]] = ([], [])

    def production_build() -> None:
        wall, cpu, _ = run(
            [str(BIN / "dbt"), "build", "--target", "prod", "--profiles-dir", "."], project, env
        )
        reference[0].append(wall)
        reference[1].append(cpu)
        loads.append(load())

    production_build()
    manifest = project / "target" / "manifest.json"
    (project / ".dataops" / "production").mkdir(parents=True, exist_ok=True)
    shutil.copy(manifest, project / ".dataops" / "production" / "manifest.json")

    wall, cpu, _ = run([str(BIN / "dataops-dev"), "sample", "--json"], project, env)
    rows.append(summary("dataops-dev sample (mask + subset)", [wall], [cpu], load=load()))
    wall, cpu, result = run([str(BIN / "dataops-dev"), "build", "--json"], project, env)
    build = json.loads(result.stdout)["build"]
    rows.append(
        summary(
            "dataops-dev build, fresh env (sample)",
            [wall],
            [cpu],
            load=load(),
            breakdown={k: build["timings"].get(k) for k in ("parse", "run", "test", "total")},
        )
    )

    git(project, "checkout", "-q", "-b", "demo/segment-thresholds")
    apply_edits(project, DEMO_EDITS)
    git(project, "commit", "-q", "-am", "demo change")

    def review(label: str) -> tuple[float, float, dict[str, Any]]:
        wall, cpu, result = run([str(BIN / "dataops-dev"), "review", "--json"], project, env)
        loads.append(load())
        return wall, cpu, json.loads(result.stdout)

    def review_row(label: str, walls: list[float], cpus: list[float], report: Any) -> None:
        keys = ("parse", "sample", "baseline", "branch_build", "impact", "diffs", "total")
        rows.append(
            summary(
                f"dataops-dev review, {label}",
                walls,
                cpus,
                load=loads[-1],
                breakdown={k: report["timings"].get(k) for k in keys},
                verdict=report["verdict"],
                models=len(report["models"]),
                findings=sorted(
                    (m["name"], f.get("code") or f.get("kind") or "")
                    for m in report["models"]
                    for f in m.get("findings") or ()
                ),
            )
        )

    wall, cpu, cold = review("cold")
    review_row("cold", [wall], [cpu], cold)
    model = project / "models" / "marts" / "fct_orders.sql"
    thresholds = ("net_amount < 75", "net_amount < 80")
    unchanged: tuple[list[float], list[float]] = ([], [])
    edited: tuple[list[float], list[float]] = ([], [])
    last_edit: dict[str, Any] = {}
    for i in range(args.repeat):
        # Interleaved: nothing changed, then a one-model edit (the threshold back and forth).
        wall, cpu, report = review("unchanged")
        unchanged[0].append(wall)
        unchanged[1].append(cpu)
        last_unchanged = report
        old, new = thresholds if i % 2 == 0 else thresholds[::-1]
        model.write_text(model.read_text().replace(old, new))
        git(project, "commit", "-q", "-am", f"threshold edit {i}")
        wall, cpu, last_edit = review("edit")
        edited[0].append(wall)
        edited[1].append(cpu)
    review_row("warm, nothing changed", *unchanged, last_unchanged)
    review_row("warm, after a one-model edit", *edited, last_edit)
    resident = worker_cpu(runtime)
    if resident is not None:
        # Started after the first `build`; paid once per idle period (15 min by default).
        rows.append(summary("resident worker's own warm-up", [0.0], [resident[1]]))
        os.kill(resident[0], signal.SIGTERM)
    production_build()
    from dataops_dev.report.html import render_html
    from dataops_dev.report.markdown import render_markdown
    from dataops_dev.report.model import Report

    saved = Report.load(next((project / ".dataops" / "reports").rglob("report.json")))
    start = time.perf_counter()
    markdown = render_markdown(saved)
    html = render_html(saved)
    rows.append(
        summary(
            "render markdown + HTML",
            [time.perf_counter() - start],
            [0.0],
            breakdown={"markdown_chars": len(markdown), "html_bytes": len(html)},
        )
    )

    ref_wall, ref_cpu = statistics.median(reference[0]), statistics.median(reference[1])
    print(
        f"\nsample_project at scale {args.scale:g}: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )
    print(
        f"reference: `dbt build` of production (dbt CLI), {len(reference[0])} runs: "
        f"wall median {ref_wall:.1f}s (min {min(reference[0]):.1f}s), "
        f"CPU median {ref_cpu:.1f}s (min {min(reference[1]):.1f}s)"
    )
    print(f"load average (1 min) over the run: {', '.join(f'{x:.2f}' for x in loads)}")
    print(f"cpus: {os.cpu_count()}")
    print(
        "commands in their own processes (--no-worker)\n"
        if args.no_worker
        else "review and build served by the resident worker once it runs (CPU of its forks"
        " included)\n"
    )
    header = f"{'step':<40} {'n':>2} {'wall med':>8} {'min':>6} {'CPU med':>8} {'min':>6}"
    print(f"{header} {'CPU/ref':>7} {'wall/ref':>8} {'load':>5}  breakdown")
    for row in rows:
        breakdown = row.get("breakdown") or {}
        detail = ", ".join(
            f"{k} {v:.1f}s" if isinstance(v, float) else f"{k} {v}"
            for k, v in breakdown.items()
            if v is not None
        )
        print(
            f"{row['step']:<40} {row['runs']:>2} {row['seconds']:>8.1f} {row['seconds_min']:>6.1f}"
            f" {row['cpu']:>8.1f} {row['cpu_min']:>6.1f} {row['cpu'] / ref_cpu:>7.2f}"
            f" {row['seconds'] / ref_wall:>8.2f} {row.get('load', ''):>5}  {detail}"
        )
    cold_row = next(r for r in rows if r["step"].endswith("review, cold"))
    edit_row = next(r for r in rows if r["step"].endswith("one-model edit"))
    bars = {
        "cold review CPU / dbt build of production CPU (bar <= 0.45)": cold_row["cpu"] / ref_cpu,
        "warm review after a one-model edit, wall median s (bar <= 5)": edit_row["seconds"],
    }
    print("\nbars:")
    for label, value in bars.items():
        print(f"  {label}: {value:.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("review_no_worker.json" if args.no_worker else "review.json")
    out.write_text(
        json.dumps(
            {
                "scale": args.scale,
                "worker": not args.no_worker,
                "rows": counts,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "load_average": loads,
                "reference": {
                    "step": "dbt build, production data (dbt CLI)",
                    "seconds": reference[0],
                    "cpu": reference[1],
                },
                "steps": rows,
                "bars": bars,
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
