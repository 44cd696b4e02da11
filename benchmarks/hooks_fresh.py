"""Benchmark: the fast hooks on a fresh clone of sample_project (3-file change), in three states,
run A/B interleaved as pre-commit runs them (a fresh `dataops-dev hook ID FILES...` process):

* fresh      nothing prepared: the impact guard skips with its one-line note
* cached     after `dataops-dev impact --base main` once: the guard uses main's cached parse
* reference  the path that existed before: `.dataops/production/manifest.json` (same content)

    .venv/bin/python benchmarks/hooks_fresh.py --repeat 5

Prints a table (median and min wall, median CPU, paired ratio to the reference, load average)
and writes benchmarks/results/hooks_fresh.json.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.hooks import BIN, _git, _sample_project, _timed  # noqa: E402

HOOKS = ("sql-check", "impact-guard", "keys-and-tests")
STATES = ("reference", "cached", "fresh")


def _setup(work: Path) -> tuple[dict[str, Path], list[str], float]:
    reference, files = _sample_project(work)
    _git(reference, "checkout", "-q", "-b", "feature")
    _git(reference, "add", "-A")
    fresh = work / "fresh"
    shutil.copytree(reference, fresh, ignore=shutil.ignore_patterns(".dataops"))
    cached = work / "cached"
    shutil.copytree(fresh, cached)
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "dataops-dev"), "impact", "--base", "main"],
        cwd=cached,
        check=True,
        capture_output=True,
    )
    first = time.perf_counter() - started
    return {"reference": reference, "cached": cached, "fresh": fresh}, files, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hooks-fresh-") as tmp:
        dirs, files, first_impact = _setup(Path(tmp))
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for hook in HOOKS:
            command = [str(BIN / "dataops-dev"), "hook", hook, *files]
            for state in STATES:  # warm-up (lineage caches), not counted
                _timed(command, dirs[state])
            for i in range(args.repeat):
                # Interleaved, the order rotated each round so no state always goes first.
                order = STATES[i % 3 :] + STATES[: i % 3]
                for state in order:
                    runs.setdefault((hook, state), []).append(_timed(command, dirs[state]))
    load_after = os.getloadavg()
    rows = []
    for hook in HOOKS:
        reference = runs[(hook, "reference")]
        for state in STATES:
            series = runs[(hook, state)]
            ratios = [s["wall_s"] / r["wall_s"] for s, r in zip(series, reference, strict=True)]
            cpu_ratios = [s["cpu_s"] / r["cpu_s"] for s, r in zip(series, reference, strict=True)]
            rows.append(
                {
                    "hook": hook,
                    "state": state,
                    "runs": len(series),
                    "wall_median_s": round(statistics.median(s["wall_s"] for s in series), 3),
                    "wall_min_s": round(min(s["wall_s"] for s in series), 3),
                    "cpu_median_s": round(statistics.median(s["cpu_s"] for s in series), 3),
                    "ratio_wall_vs_reference": round(statistics.median(ratios), 3),
                    "ratio_cpu_vs_reference": round(statistics.median(cpu_ratios), 3),
                    "exit": sorted({s["exit"] for s in series}),
                }
            )
    result = {
        "project": "sample_project",
        "changed_files": files,
        "first_impact_base_main_s": round(first_impact, 2),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "rows": rows,
    }
    out = REPO / "benchmarks" / "results" / "hooks_fresh.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"sample_project, {len(files)} changed files; `impact --base main` once: "
        f"{first_impact:.1f} s; load average {load_before[0]:.1f} -> {load_after[0]:.1f}"
    )
    header = f"{'hook':15} {'state':10} {'wall med':>9} {'wall min':>9} {'cpu med':>8}"
    print(header + f" {'x ref wall':>10} {'x ref cpu':>9} exit")
    for row in rows:
        print(
            f"{row['hook']:15} {row['state']:10} {row['wall_median_s']:9.2f} "
            f"{row['wall_min_s']:9.2f} {row['cpu_median_s']:8.2f} "
            f"{row['ratio_wall_vs_reference']:10.2f} {row['ratio_cpu_vs_reference']:9.2f} "
            f"{row['exit']}"
        )


if __name__ == "__main__":
    main()
