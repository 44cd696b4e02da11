"""No-op review benchmark: nothing changed since the last review, both environments reused.

    python benchmarks/review_noop.py                  # scale 1: generate, build production, cold review
    python benchmarks/review_noop.py --scale 10
    python benchmarks/review_noop.py --project DIR    # a project already reviewed (kept by --keep)

Times `dataops-dev review` as a user runs it (a whole process), with reuse (review_reuse.py: the
stored report is returned) and without it (DATAOPS_REVIEW_REUSE=0: the previous path, which
reuses both environments but re-runs impact, every diff and lineage), interleaved A/B. Also
in-process: `review_reuse.lookup` against `run_review` with reuse off. Then, interleaved A/B
again, a review whose report cannot be reused (a DATAOPS_ variable changes every run, as an
approval or a policy edit would) but whose diffs can (`review_reuse.DiffCache`), against the
same review with reuse off. Prints median and min of wall and CPU seconds with the load
average, and writes benchmarks/results/review_noop.json (review_noop_scale<N>.json at another
scale).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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
SALT = "benchmark-salt"
BAR_SECONDS = 0.3


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def environment(reuse: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "DATAOPS_SALT": SALT, "DO_NOT_TRACK": "1", "PYTHONPATH": str(ROOT)}
    env["DATAOPS_REVIEW_REUSE"] = "1" if reuse else "0"
    return {**env, **(extra or {})}


def review_process(
    project: Path, reuse: bool, fmt: str = "json", extra: dict[str, str] | None = None
) -> dict[str, Any]:
    """One `dataops-dev review` process: wall seconds, CPU seconds, and what it said."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "dataops_dev", "review", "--format", fmt],
        cwd=project,
        env=environment(reuse, extra),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 3):
        sys.stderr.write(result.stderr[-3000:])
        raise SystemExit(f"review failed with {result.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    reused = "reused the review of" in result.stderr
    diffs_reused = "data diffs: both environments' builds" in result.stderr
    return {
        "wall": wall,
        "cpu": cpu,
        "reused": reused,
        "diffs_reused": diffs_reused,
        "stdout": result.stdout,
    }


def prepare(scale: float) -> tuple[Path, Path]:
    """sample_project with generated production data, on a branch with the demo change,
    reviewed once (cold)."""
    sys.path.insert(0, str(ROOT))
    from dataops_dev.demo import DEMO_EDITS, apply_edits, load_generator

    work = Path(tempfile.mkdtemp(prefix="dataops-bench-noop-"))
    project = work / "sample_project"
    shutil.copytree(
        ROOT / "sample_project",
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    load_generator(project).generate(project / "prod.duckdb", scale=scale, seed=42)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production")
    git(project, "checkout", "-q", "-b", "demo/noop")
    apply_edits(project, DEMO_EDITS)
    git(project, "commit", "-q", "-am", "demo change")
    start = time.perf_counter()
    review_process(project, reuse=True)
    print(f"cold review: {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return work, project


def in_process(project: Path, rounds: int) -> dict[str, list[float]]:
    """The same two paths inside one process (start-up and imports excluded)."""
    code = f"""
import json, os, sys, time
sys.path.insert(0, {str(ROOT)!r})
from dataops_dev.config import load_config
from dataops_dev import review_reuse
from dataops_dev.review import run_review
loaded = load_config()
out = {{"reuse": [], "no_reuse": []}}
for _ in range({rounds}):
    start = time.perf_counter()
    found = review_reuse.lookup(loaded)
    assert found.report is not None, found.reason
    out["reuse"].append(time.perf_counter() - start)
    os.environ["DATAOPS_REVIEW_REUSE"] = "0"
    start = time.perf_counter()
    run_review(loaded)
    out["no_reuse"].append(time.perf_counter() - start)
    os.environ["DATAOPS_REVIEW_REUSE"] = "1"
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=environment(True),
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, list[float]] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def diff_reuse_rounds(
    project: Path, rounds: int, loads: list[float]
) -> dict[str, dict[str, list[float]]]:
    """A review that must run (a DATAOPS_ variable differs every time, defeating the report's
    reuse but not the builds') with its diffs reused, against the same with reuse off."""
    runs: dict[str, dict[str, list[float]]] = {
        label: {"wall": [], "cpu": []} for label in ("json, diffs reused", "json, none reused")
    }
    stages: dict[str, dict[str, float]] = {}
    for i in range(rounds):
        order = [("json, diffs reused", True), ("json, none reused", False)]
        for label, reuse in order if i % 2 == 0 else order[::-1]:
            run = review_process(project, reuse=reuse, extra={"DATAOPS_BENCH_RUN": str(i)})
            if reuse and (run["reused"] or not run["diffs_reused"]):
                raise SystemExit("the review did not run with its diffs reused")
            runs[label]["wall"].append(run["wall"])
            runs[label]["cpu"].append(run["cpu"])
            stages[label] = json.loads(run["stdout"]).get("timings", {})
        loads.append(os.getloadavg()[0])
    for label, timings in stages.items():  # where the time of a review that runs goes
        shown = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        print(f"last {label} review, stage wall seconds: {shown}", file=sys.stderr)
    return runs


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--project", type=Path, help="An already reviewed project to reuse.")
    parser.add_argument("--keep", action="store_true", help="Keep the generated project.")
    args = parser.parse_args()
    work = None
    if args.project:
        project = args.project.resolve()
    else:
        work, project = prepare(args.scale)
    review_process(project, reuse=True)  # stores the entry if the last review did not

    runs: dict[str, dict[str, list[float]]] = {
        label: {"wall": [], "cpu": []} for label in ("json, reuse", "json, no reuse", "text, reuse")
    }
    loads: list[float] = []
    for i in range(args.rounds):
        # Interleaved, order alternating: load from other work hits both alike.
        order = [("json, reuse", True, "json"), ("json, no reuse", False, "json")]
        for label, reuse, fmt in order if i % 2 == 0 else order[::-1]:
            run = review_process(project, reuse=reuse, fmt=fmt)
            if reuse and not run["reused"]:
                raise SystemExit("the no-op review was not reused: see `review --debug`")
            runs[label]["wall"].append(run["wall"])
            runs[label]["cpu"].append(run["cpu"])
        run = review_process(project, reuse=True, fmt="text")
        runs["text, reuse"]["wall"].append(run["wall"])
        runs["text, reuse"]["cpu"].append(run["cpu"])
        loads.append(os.getloadavg()[0])
    inproc = in_process(project, max(3, args.rounds // 2))
    # Last: these runs store reports under their own variable, so the no-op entry is replaced.
    runs.update(diff_reuse_rounds(project, args.rounds, loads))

    print(
        f"\nno-op review, scale {args.scale:g}, {args.rounds} interleaved rounds, "
        f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'whole process':<30} {'wall med':>9} {'wall min':>9} {'cpu med':>8} {'cpu min':>8}")
    table: dict[str, Any] = {}
    for label, values in runs.items():
        wall, cpu = summary(values["wall"]), summary(values["cpu"])
        table[label] = {"wall": wall, "cpu": cpu, "raw": values}
        print(
            f"{'review --format ' + label:<30} {wall['median']:>9.3f} {wall['min']:>9.3f}"
            f" {cpu['median']:>8.3f} {cpu['min']:>8.3f}"
        )
    print(f"{'in process':<26} {'median':>9} {'min':>9}")
    for label, values in inproc.items():
        stats = summary(values)
        table[f"in process, {label}"] = stats
        print(f"{label:<26} {stats['median']:>9.3f} {stats['min']:>9.3f}")
    reuse_cpu = table["json, reuse"]["cpu"]["median"]
    ratio = table["json, no reuse"]["wall"]["median"] / table["json, reuse"]["wall"]["median"]
    print(
        f"\nreuse vs previous path: {ratio:.1f}x faster (wall medians); "
        f"bar {BAR_SECONDS}s: CPU median {reuse_cpu:.3f}s, wall min "
        f"{table['json, reuse']['wall']['min']:.3f}s (wall includes waiting for the CPU under load)"
    )
    diffs_cpu = table["json, diffs reused"]["cpu"]["median"]
    none_cpu = table["json, none reused"]["cpu"]["median"]
    print(
        f"review that must run, diffs reused vs none: CPU median {diffs_cpu:.3f}s vs "
        f"{none_cpu:.3f}s ({none_cpu / diffs_cpu:.2f}x)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.scale == 1 else f"_scale{args.scale:g}"
    out = RESULTS / f"review_noop{suffix}.json"
    out.write_text(
        json.dumps(
            {
                "scale": args.scale,
                "rounds": args.rounds,
                "load_average": loads,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "bar_seconds": BAR_SECONDS,
                "results": table,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    if work is not None and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    elif work is not None:
        print(f"kept {project}")


if __name__ == "__main__":
    main()
