"""Benchmark: `dataops-dev tui` start-up to first paint on a saved report (budget: < 1 s).

    .venv/bin/python benchmarks/tui_startup.py                  # factory report + 300-model report
    .venv/bin/python benchmarks/tui_startup.py --report path/to/report.json --runs 10

Each run spawns `python -m dataops_dev tui --report R --exit-after-first-paint` (a fresh process,
as a user starts it) and takes the app's own first-paint timestamp minus the spawn time; `total`
is spawn to exit. Runs headless and, when `script` is available, under a real pseudo-terminal.
Prints a table and writes benchmarks/results/tui_startup.json.
"""

from __future__ import annotations

import argparse
import importlib.util
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _factory(relative: str) -> Any:
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_"), REPO / relative)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def reports(directory: Path, explicit: list[Path]) -> dict[str, Path]:
    if explicit:
        return {path.name: path for path in explicit}
    found: dict[str, Path] = {}
    tui = _factory("tests/tui/factory.py")
    real = REPO / "tests" / "tui" / "fixtures" / "sample_project_report.json"
    if real.is_file():
        found["sample_project (real review)"] = real
    found["sample_project (factory)"] = directory / "small.json"
    found["sample_project (factory)"].write_text(tui.make_report().to_json(), "utf-8")
    renderers = REPO / "tests" / "report" / "factory.py"
    if renderers.is_file():
        large = _factory("tests/report/factory.py").large_report(300)
        found["300 models (synthetic)"] = directory / "large.json"
        found["300 models (synthetic)"].write_text(large.to_json(), "utf-8")
    return found


def run_once(report: Path, cwd: Path, *, pty: bool) -> tuple[float, float, float]:
    args = [
        sys.executable,
        "-m",
        "dataops_dev",
        "tui",
        "--report",
        str(report),
        "--exit-after-first-paint",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TEXTUAL": "", "COLUMNS": "120", "LINES": "40"}
    if pty:
        command = ["script", "-qec", " ".join(map(_quote, args)), "/dev/null"]
    else:
        command = [*args, "--headless"]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    total = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the whole process (to exit): what start-up costs without other load on the machine.
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    output = result.stderr + result.stdout
    line = next((ln for ln in output.splitlines() if '"first_paint"' in ln), None)
    if line is None:
        raise RuntimeError(f"no first paint reported (exit {result.returncode}):\n{output[-2000:]}")
    first_paint = json.loads(line[line.index("{") :])["first_paint"]
    return first_paint - started, total, cpu


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, action="append", default=[])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--output", type=Path, default=REPO / "benchmarks" / "results" / "tui_startup.json"
    )
    options = parser.parse_args()
    rows: list[dict[str, Any]] = []
    modes = ["headless"] + (["pty"] if shutil.which("script") else [])
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for label, path in reports(directory, options.report).items():
            for mode in modes:
                # One warm-up run: the first start compiles .pyc files a user has already.
                run_once(path, directory, pty=mode == "pty")
                paints, totals, cpus = [], [], []
                for _ in range(options.runs):
                    paint, total, cpu = run_once(path, directory, pty=mode == "pty")
                    paints.append(paint)
                    totals.append(total)
                    cpus.append(cpu)
                rows.append(
                    {
                        "report": label,
                        "report_bytes": path.stat().st_size,
                        "mode": mode,
                        "runs": options.runs,
                        "first_paint_median_s": round(statistics.median(paints), 3),
                        "first_paint_max_s": round(max(paints), 3),
                        "total_median_s": round(statistics.median(totals), 3),
                        "cpu_to_exit_median_s": round(statistics.median(cpus), 3),
                        "under_budget": statistics.median(paints) < 1.0,
                    }
                )
    header = (
        f"{'report':<30} {'mode':<9} {'KB':>7} {'paint med':>10} {'paint max':>10} "
        f"{'exit med':>9} {'cpu med':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['report']:<30} {row['mode']:<9} {row['report_bytes'] / 1024:>7.1f} "
            f"{row['first_paint_median_s']:>9.3f}s {row['first_paint_max_s']:>9.3f}s "
            f"{row['total_median_s']:>8.3f}s {row['cpu_to_exit_median_s']:>7.3f}s"
        )
    load = os.getloadavg()[0]
    print(
        f"\nload average {load:.1f} on {os.cpu_count()} CPUs: on a busy machine wall time exceeds CPU"
    )
    result = {
        "benchmark": "tui_startup",
        "budget_s": 1.0,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": load,
        "rows": rows,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    shown = options.output.resolve()
    print(f"\nwrote {shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown}")


if __name__ == "__main__":
    main()
