"""Benchmark: column lineage and static impact on a generated 500-model dbt project, side by side
with naive `sqlglot.lineage` and with Recce's column-level lineage (run from its own venv).

    .venv/bin/python benchmarks/lineage.py                     # 500 models x 20 columns
    .venv/bin/python benchmarks/lineage.py --models 200 --recce-python /tmp/recce-venv/bin/python

Prints a table and writes benchmarks/results/lineage.json. Recce is a dev-only tool installed in
a SEPARATE venv (`python3 -m venv /tmp/recce-venv && /tmp/recce-venv/bin/pip install recce
"dbt-core<1.12" "dbt-duckdb<1.12"`): it pins its own dbt/sqlglot, so it never shares ours.
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
sys.path.insert(0, str(REPO))

from benchmarks.gen_project import DATABASE, apply_edits, generate_project  # noqa: E402

# Runs inside Recce's venv: per model, recce.util.cll.cll(sql, schema, dialect), the function
# Recce's dbt adapter calls for each node; tables are named as Recce names them (unique ids
# with `_`), and the schema holds every parent's columns as Recce reads them from catalog.json.
RECCE_DRIVER = r"""
import json, sys, time
started = time.perf_counter()
from recce.util.cll import cll
import recce, sqlglot
imported = time.perf_counter() - started
cases = json.load(open(sys.argv[1]))
out = {"version": getattr(recce, "__version__", "?"), "sqlglot": sqlglot.__version__,
       "import_s": imported, "models": {}, "errors": 0}
import sqlglot.lineage
out["sqlglotc"] = sqlglot.lineage.__file__.endswith(".so")
t0 = time.perf_counter()
for case in cases:
    try:
        m2c, c2c = cll(case["sql"], schema=case["schema"], dialect=case["dialect"])
    except Exception as exc:  # recce raises RecceException on any sqlglot failure
        out["errors"] += 1
        out["models"][case["uid"]] = {"error": str(exc)[:200]}
        continue
    out["models"][case["uid"]] = {
        "m2c": sorted({(d.node, d.column) for d in m2c}),
        "c2c": {name: {"type": col.transformation_type,
                       "deps": sorted({(d.node, d.column) for d in col.depends_on})}
                for name, col in c2c.items()},
    }
out["total_s"] = time.perf_counter() - t0
json.dump(out, open(sys.argv[2], "w"))
"""

# Runs inside Recce's venv: its change classifier on the golden classification fixtures.
RECCE_CLASSIFY_DRIVER = r"""
import json, sys
from recce.util.change_classifier import parse_change_category
cases = json.load(open(sys.argv[1]))
out = {}
for case in cases:
    try:
        change = parse_change_category(case["base"], case["head"], old_schema=case["schema"],
                                       new_schema=case["schema"], dialect=case["dialect"])
        out[case["id"]] = {"category": str(change.category),
                           "columns": sorted((change.columns or {}).keys())}
    except Exception as exc:
        out[case["id"]] = {"category": "error", "error": str(exc)[:200]}
json.dump(out, open(sys.argv[2], "w"))
"""

# Our class -> the class Recce would have to say for the same verdict.
RECCE_EQUIVALENT = {
    "none": "non_breaking",
    "additive": "non_breaking",
    "partial": "partial_breaking",
    "breaking": "breaking",
    "unknown": "unknown",
}


def _time(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _fresh_lineage(manifest_path: Path, state: Path, project: Path) -> tuple[float, Any]:
    from dataops_dev.lineage import load_project_lineage

    return _time(lambda: load_project_lineage(manifest_path, project_dir=project, state_dir=state))


def _fresh_clone(project: Path, work: Path) -> Path:
    """The generated project as a new user meets it: committed on `main` (no target/), cloned,
    and the benchmark's edits applied on a branch of the clone."""
    origin = work / "origin"
    shutil.copytree(project, origin, ignore=shutil.ignore_patterns("target", "*.duckdb"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    (origin / ".gitignore").write_text("target/\n.dataops/\n*.duckdb\n")
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "p"]):
        subprocess.run(["git", *command], cwd=origin, env=env, check=True)
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], env=env, check=True)
    subprocess.run(["git", "checkout", "-q", "-b", "edits"], cwd=clone, env=env, check=True)
    apply_edits(clone, len(list(clone.glob("models/*/*.sql"))))
    return clone


def _cli_impact(project: Path, *args: str) -> tuple[float, dict[str, Any]]:
    """One `dataops-dev impact ARGS --json` in a new process (cold start), from `project`."""
    seconds, done = _time(
        lambda: subprocess.run(
            [sys.executable, "-m", "dataops_dev", "impact", *args, "--json"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
    )
    data = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-2000:]}
    return seconds, data


def _naive_sqlglot(manifest: Any, lineage: Any, count: int) -> dict[str, Any]:
    """`sqlglot.lineage(column, sql)` once per column: the default usage the issue measured."""
    from sqlglot.lineage import lineage as sqlglot_lineage

    models = [m for m in manifest.models() if m.name.startswith("m_")][:count]
    start = time.perf_counter()
    columns = 0
    for node in models:
        schema: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
        for parent in node.depends_on_nodes:
            parent_node = manifest.get(parent)
            cols = lineage.schemas.get(parent) or ()
            schema.setdefault(DATABASE, {}).setdefault(parent_node.schema, {})[
                parent_node.identifier
            ] = {c: "INT" for c in cols}
        for column in lineage.models[node.unique_id].columns or ():
            sqlglot_lineage(column, node.compiled_code, schema=schema, dialect="duckdb")
            columns += 1
    elapsed = time.perf_counter() - start
    return {"models": len(models), "columns": columns, "ms_per_model": 1000 * elapsed / len(models)}


def _recce_cases(manifest: Any, lineage: Any) -> list[dict[str, Any]]:
    cases = []
    for node in manifest.models():
        sql = node.compiled_code or ""
        schema: dict[str, dict[str, str]] = {}
        for parent in node.depends_on_nodes:
            parent_node = manifest.get(parent)
            table = parent.replace(".", "_")
            sql = sql.replace(parent_node.relation_name, table)
            schema[table] = {c: "INTEGER" for c in (lineage.schemas.get(parent) or ())}
        cases.append({"uid": node.unique_id, "sql": sql, "schema": schema, "dialect": "duckdb"})
    return cases


def _compare(manifest: Any, lineage: Any, recce: dict[str, Any]) -> dict[str, Any]:
    """Agreement of edges: Recce's column deps vs our value edges, Recce's model-level deps
    (its WHERE/JOIN/GROUP columns) vs the sources of our row edges."""
    from dataops_dev.lineage import EdgeKind

    value_kinds = {EdgeKind.PASS_THROUGH, EdgeKind.RENAMED, EdgeKind.DERIVED, EdgeKind.AGGREGATED}
    ours_value: set[tuple[str, str, str, str]] = set()
    ours_rows: set[tuple[str, str, str]] = set()
    theirs_value: set[tuple[str, str, str, str]] = set()
    theirs_rows: set[tuple[str, str, str]] = set()
    kind_agree = kind_total = 0
    kind_examples: list[list[str]] = []
    recce_kind = {
        EdgeKind.PASS_THROUGH: "passthrough",
        EdgeKind.RENAMED: "renamed",
        EdgeKind.DERIVED: "derived",
        EdgeKind.AGGREGATED: "derived",
    }
    # Recce names each table by its unique id with `.` -> `_`
    tables = {uid.replace(".", "_"): uid for uid in (*manifest.nodes, *manifest.sources)}
    for uid, model in lineage.models.items():
        result = recce["models"].get(uid)
        if not result or "error" in result:
            continue
        for edge in model.edges:
            if edge.kind in value_kinds:
                ours_value.add((uid, edge.target_column, edge.source_node, edge.source_column))
            elif edge.kind.affects_rows:
                ours_rows.add((uid, edge.source_node, edge.source_column))
        for name, column in result["c2c"].items():
            for node, col in column["deps"]:
                theirs_value.add((uid, name, tables.get(node, node), col))
        for node, col in result["m2c"]:
            theirs_rows.add((uid, tables.get(node, node), col))
        for name in model.columns or ():
            ours = {
                e.kind for e in model.edges if e.target_column == name and e.kind in value_kinds
            }
            theirs = result["c2c"].get(name, {}).get("type")
            if ours and theirs:
                kind_total += 1
                strongest = max(ours, key=lambda k: list(recce_kind).index(k))
                kind_agree += recce_kind[strongest] == theirs
                if recce_kind[strongest] != theirs and len(kind_examples) < 5:
                    kind_examples.append([uid, name, strongest.value, theirs])

    def agreement(a: set[Any], b: set[Any]) -> dict[str, Any]:
        both = a & b
        return {
            "ours": len(a),
            "recce": len(b),
            "both": len(both),
            "only_ours": len(a - b),
            "only_recce": len(b - a),
            "jaccard": round(len(both) / len(a | b), 4) if a | b else 1.0,
            "examples_only_ours": [list(x) for x in sorted(a - b)[:5]],
            "examples_only_recce": [list(x) for x in sorted(b - a)[:5]],
        }

    return {
        "value_edges": agreement(ours_value, theirs_value),
        "row_inputs": agreement(ours_rows, theirs_rows),
        "transformation_type_agreement": round(kind_agree / kind_total, 4) if kind_total else None,
        "compared_columns": kind_total,
        "transformation_type_examples": kind_examples,
    }


def _classification_cases() -> list[dict[str, Any]]:
    """The golden classification fixtures (tests/fixtures/lineage/classify_*.sql)."""
    cases = []
    fixtures = REPO / "tests" / "fixtures" / "lineage"
    tables = {
        "orders": ("id", "customer_id", "store_id", "amount", "status", "ordered_at", "tags"),
        "customers": ("id", "name", "email", "region"),
        "payments": ("id", "order_id", "amount", "method"),
        "events": ("id", "customer_id", "payload", "at"),
    }
    schema = {"raw": {t: {c: "INT" for c in cols} for t, cols in tables.items()}}
    for path in sorted(fixtures.glob("classify_*.sql")):
        dialect = path.stem.rsplit("_", 1)[-1]
        blocks = path.read_text().split("-- classify: ")[1:]
        for block in blocks:
            name, rest = block.split("\n", 1)
            statements: list[str] = []
            buffer: list[str] = []
            lines = rest.splitlines()
            while len(statements) < 2:
                line = lines.pop(0)
                buffer.append(line)
                if line.rstrip().endswith(";"):
                    statements.append("\n".join(buffer).rstrip().rstrip(";"))
                    buffer = []
            expected = lines[0].split()[0]
            cases.append(
                {
                    "id": f"{dialect}:{name.strip()}",
                    "dialect": dialect,
                    "base": statements[0],
                    "head": statements[1],
                    "expected": expected,
                    "schema": schema,
                }
            )
    return cases


def _compare_classification(recce_python: Path, work: Path) -> dict[str, Any]:
    cases = _classification_cases()
    cases_path, out_path, driver = (
        work / "classify_cases.json",
        work / "classify_out.json",
        work / "classify_driver.py",
    )
    cases_path.write_text(json.dumps(cases))
    driver.write_text(RECCE_CLASSIFY_DRIVER)
    run = subprocess.run(
        [str(recce_python), str(driver), str(cases_path), str(out_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        return {"error": run.stderr[-2000:]}
    recce = json.loads(out_path.read_text())
    wrong = []
    for case in cases:
        want = RECCE_EQUIVALENT.get(case["expected"], case["expected"])
        got = recce[case["id"]]["category"]
        if got != want:
            wrong.append({"case": case["id"], "expected": case["expected"], "recce": got})
    return {"cases": len(cases), "recce_disagrees": len(wrong), "disagreements": wrong}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--naive-models", type=int, default=10, help="0 to skip")
    parser.add_argument("--impact-runs", type=int, default=5)
    parser.add_argument(
        "--recce-python",
        default=os.environ.get("RECCE_PYTHON", "/tmp/recce-venv/bin/python"),
        help="python of a venv with `recce` installed ('' to skip)",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--scoped",
        action="store_true",
        help="issue 14 only: lineage MODEL.COL and impact, cold, ours vs --reference-ref",
    )
    parser.add_argument("--runs", type=int, default=3, help="--scoped: A/B pairs per row")
    parser.add_argument("--fresh-clone-runs", type=int, default=1, help="--scoped; 0 to skip")
    parser.add_argument("--reference-ref", default=REFERENCE_REF, help="--scoped: the reference")
    args = parser.parse_args()
    if args.scoped:
        args.out = args.out or REPO / "benchmarks" / "results" / "lineage_scoped.json"
        scoped_main(args)
        return
    args.out = args.out or REPO / "benchmarks" / "results" / "lineage.json"

    import sqlglot

    from dataops_dev.dbt.manifest import Manifest

    work = Path(tempfile.mkdtemp(prefix="dataops-lineage-bench-"))
    results: dict[str, Any] = {
        "models": args.models,
        "columns": args.columns,
        "sqlglot": sqlglot.__version__,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    import sqlglot.lineage

    # sqlglotc installs compiled modules over sqlglot's own files
    results["sqlglotc"] = str(sqlglot.lineage.__file__).endswith(".so")
    try:
        project = generate_project(work / "project", args.models, args.columns, args.seed)
        manifest_path = project / "target" / "manifest.json"
        state = work / "state"
        cold_s, (manifest, lineage) = _fresh_lineage(manifest_path, state, project)
        warm_s, (_, warm) = _fresh_lineage(manifest_path, state, project)
        assert list(warm.edges()) == list(lineage.edges())
        edges = sum(len(m.edges) for m in lineage.models.values())
        results["lineage"] = {
            "cold_s": round(cold_s, 3),
            "cold_ms_per_model": round(1000 * cold_s / args.models, 2),
            "warm_s": round(warm_s, 3),
            "edges": edges,
            "unknown_models": lineage.stats.unknown,
        }

        clone = _fresh_clone(project, work)
        edited = [path.stem for path in apply_edits(project, args.models)]
        from dataops_dev.impact import analyze_impact

        timings = []
        report = None
        for _ in range(args.impact_runs):
            seconds, report = _time(lambda: analyze_impact(project, manifest_path, state_dir=state))
            timings.append(seconds)
        assert report is not None
        cli_timings = []
        for _ in range(3):
            seconds, done = _time(
                lambda: subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "dataops_dev",
                        "impact",
                        "--base-manifest",
                        str(manifest_path),
                        "--json",
                    ],
                    cwd=project,
                    capture_output=True,
                    text=True,
                    check=False,
                    env={**os.environ, "DATAOPS_DEV_BACKEND__STATE_DIR": str(state)},
                )
            )
            cli_timings.append(seconds)
        cli_report = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr}
        results["impact"] = {
            "edited": edited,
            "in_process_median_s": round(statistics.median(timings), 3),
            "cli_median_s": round(statistics.median(cli_timings), 3),
            "breakdown_s": {k: round(v, 4) for k, v in report.timings.items()},
            "changes": {m.name: m.change.value for m in report.models},
            "impacted_models": {m.name: len(m.impacted.models) for m in report.models},
            "impacted_columns": {m.name: len(m.impacted.columns) for m in report.models},
            "no_diff_needed": len(report.no_diff_needed),
            "cli_models": len(cli_report.get("models", [])),
        }

        first_s, first = _cli_impact(clone, "--base", "main")
        second_s, second = _cli_impact(clone, "--base", "main")
        results["impact_fresh_clone"] = {
            "first_run_s": round(first_s, 3),
            "second_run_s": round(second_s, 3),
            "warm_run_s": results["impact"]["cli_median_s"],
            "second_vs_warm": round(second_s / results["impact"]["cli_median_s"], 3),
            "same_changes": {m["name"]: m["change"] for m in first.get("models", [])}
            == results["impact"]["changes"],
            "error": first.get("error"),
        }

        if args.naive_models:
            results["naive_sqlglot_per_column"] = _naive_sqlglot(
                Manifest.load(manifest_path), lineage, args.naive_models
            )

        recce_python = Path(args.recce_python) if args.recce_python else None
        if recce_python and recce_python.exists():
            cases_path = work / "recce_cases.json"
            out_path = work / "recce_out.json"
            driver = work / "recce_driver.py"
            cases_path.write_text(json.dumps(_recce_cases(manifest, lineage)))
            driver.write_text(RECCE_DRIVER)
            started = time.perf_counter()
            run = subprocess.run(
                [str(recce_python), str(driver), str(cases_path), str(out_path)],
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
            if run.returncode != 0:
                results["recce"] = {"error": run.stderr[-2000:]}
            else:
                recce = json.loads(out_path.read_text())
                results["recce"] = {
                    "classification": _compare_classification(recce_python, work),
                    "version": recce["version"],
                    "sqlglot": recce["sqlglot"],
                    "sqlglotc": recce["sqlglotc"],
                    "cll_s": round(recce["total_s"], 3),
                    "cll_ms_per_model": round(1000 * recce["total_s"] / args.models, 2),
                    "process_wall_s": round(wall, 3),
                    "errors": recce["errors"],
                    "agreement": _compare(manifest, lineage, recce),
                }
        else:
            results["recce"] = {
                "skipped": f"no python with recce at {recce_python} (see the module docstring)"
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    _print_table(results)


def _print_table(results: dict[str, Any]) -> None:
    lineage = results["lineage"]
    impact = results["impact"]
    rows = [
        (
            "project",
            f"{results['models']} models x {results['columns']} columns, "
            f"sqlglot {results['sqlglot']}{' + sqlglotc' if results['sqlglotc'] else ''}",
        ),
        (
            "lineage cold (all columns, all models)",
            f"{lineage['cold_s']:.2f} s ({lineage['cold_ms_per_model']:.1f} ms/model), "
            f"{lineage['edges']} edges, {lineage['unknown_models']} unknown",
        ),
        ("lineage warm (cache)", f"{lineage['warm_s']:.2f} s"),
        ("impact, 3-model change (in process)", f"{impact['in_process_median_s']:.2f} s"),
        ("impact, 3-model change (CLI, cold start)", f"{impact['cli_median_s']:.2f} s"),
        ("impact classes", ", ".join(f"{k}={v}" for k, v in impact["changes"].items())),
    ]
    fresh = results.get("impact_fresh_clone")
    if fresh:
        rows += [
            (
                "impact --base main, fresh clone, 1st run (CLI)",
                f"{fresh['first_run_s']:.2f} s (dbt parse of main + lineage, cold)",
            ),
            (
                "impact --base main, fresh clone, 2nd run (CLI)",
                f"{fresh['second_run_s']:.2f} s = {fresh['second_vs_warm']:.2f}x the warm run "
                f"({fresh['warm_run_s']:.2f} s); same classes: {fresh['same_changes']}",
            ),
        ]
    naive = results.get("naive_sqlglot_per_column")
    if naive:
        rows.append(
            (
                "naive sqlglot.lineage per column",
                f"{naive['ms_per_model']:.0f} ms/model ({naive['models']} models timed)",
            )
        )
    recce = results.get("recce", {})
    if "cll_s" in recce:
        agreement = recce["agreement"]
        rows.append(
            (
                "Recce cll() per model",
                f"{recce['cll_s']:.2f} s ({recce['cll_ms_per_model']:.1f} ms/model), "
                f"recce {recce['version']}, sqlglotc={recce['sqlglotc']}, "
                f"{recce['errors']} errors",
            )
        )
        value = agreement["value_edges"]
        rows.append(
            (
                "value edges: ours / Recce / both",
                f"{value['ours']} / {value['recce']} / {value['both']} "
                f"(jaccard {value['jaccard']})",
            )
        )
        row = agreement["row_inputs"]
        rows.append(
            (
                "row inputs (filter/join/group): ours / Recce / both",
                f"{row['ours']} / {row['recce']} / {row['both']} (jaccard {row['jaccard']})",
            )
        )
        rows.append(
            (
                "transformation type agreement",
                f"{agreement['transformation_type_agreement']} over "
                f"{agreement['compared_columns']} columns",
            )
        )
        classification = recce.get("classification", {})
        if "cases" in classification:
            wrong = classification["disagreements"]
            false_breaking = sum(1 for w in wrong if w["recce"] == "breaking")
            rows.append(
                (
                    "Recce classifier vs the golden classes",
                    f"disagrees on {classification['recce_disagrees']} of "
                    f"{classification['cases']} cases ({false_breaking} called breaking)",
                )
            )
    else:
        rows.append(("Recce", recce.get("skipped") or recce.get("error", "?")[:200]))
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")  # noqa: T201 - a benchmark prints its table


# --------------------------------------------------------------------------------------------
# Issue 14: lineage computes only what is asked (`--scoped`). Every row runs ours and the
# reference in turn (A B A B ...), each in a new process with a new state directory, and prints
# median and min of both, the CPU ratio taken pair by pair, and the load average around it.

REFERENCE_REF = "main"
"""The code to beat: main as it is (`--reference-ref b62ca70` for main before issue 14's lineage
part, when every command computed every model, serially)."""

BARS_S = {"lineage_cold": 1.0, "impact_cold": 5.0}


def _export_reference(ref: str, work: Path) -> Path:
    """The package as it was at `ref` (git archive), to run the reference side from."""
    target = work / "reference"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "dataops_dev"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def _run_cli(code: Path, cwd: Path, args: list[str], state: Path) -> dict[str, Any]:
    """One `python -m dataops_dev ARGS` from `code` in a new process: wall and CPU seconds (its
    workers included: they are reaped before it exits) and its parsed JSON output."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "DATAOPS_DEV_BACKEND__STATE_DIR": str(state),
        "NO_COLOR": "1",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dataops_dev", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        data = json.loads(done.stdout) if done.returncode == 0 else None
    except json.JSONDecodeError:
        data = None
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "ok": data is not None,
        "data": data,
        "error": None if data is not None else done.stderr[-1500:],
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    cpus = [r["cpu_s"] for r in runs]
    return {
        "runs": len(runs),
        "wall_median_s": round(statistics.median(walls), 3),
        "wall_min_s": round(min(walls), 3),
        "cpu_median_s": round(statistics.median(cpus), 3),
        "cpu_min_s": round(min(cpus), 3),
        "ok": all(r["ok"] for r in runs),
        "error": next((r["error"] for r in runs if r["error"]), None),
    }


def _ab(
    label: str,
    runs: int,
    ours: Any,
    reference: Any,
) -> dict[str, Any]:
    """`ours()` and `reference()` in turn, `runs` times each; ratios pair by pair."""
    load_before = os.getloadavg()
    a: list[dict[str, Any]] = []
    b: list[dict[str, Any]] = []
    for _ in range(runs):
        a.append(ours())
        b.append(reference())
    load_after = os.getloadavg()
    cpu_ratios = [x["cpu_s"] / y["cpu_s"] for x, y in zip(a, b, strict=True) if y["cpu_s"]]
    wall_ratios = [x["wall_s"] / y["wall_s"] for x, y in zip(a, b, strict=True) if y["wall_s"]]
    return {
        "label": label,
        "ours": _summary(a),
        "reference": _summary(b),
        "cpu_ratio_median": round(statistics.median(cpu_ratios), 4) if cpu_ratios else None,
        "wall_ratio_median": round(statistics.median(wall_ratios), 4) if wall_ratios else None,
        "loadavg_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "_data": (a[-1]["data"], b[-1]["data"]),
    }


def _in_process(manifest_path: Path, targets: list[str], runs: int) -> dict[str, Any]:
    """In one process, CPU seconds: `compute_lineage(only=…)` against the full computation for
    a few targets, and the full computation on the pool against serial (edge for edge)."""
    from dataops_dev.dbt.manifest import Manifest
    from dataops_dev.lineage import compute_lineage, downstream_closure

    manifest = Manifest.load(manifest_path)

    def timed(**kwargs: Any) -> tuple[float, float, Any]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        value = compute_lineage(manifest, **kwargs)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return time.perf_counter() - wall0, time.process_time() - cpu0 + children, value

    load_before = os.getloadavg()
    serial_walls, serial_cpus, pool_walls, pool_cpus = [], [], [], []
    same = True
    serial = None
    for _ in range(runs):
        wall, cpu, serial = timed(workers=1)
        serial_walls.append(wall)
        serial_cpus.append(cpu)
        wall, cpu, pooled = timed(workers=2)
        pool_walls.append(wall)
        pool_cpus.append(cpu)
        same = same and list(pooled.edges()) == list(serial.edges())
    assert serial is not None
    only_rows = []
    for target in targets:
        wanted = downstream_closure(manifest, {target})
        cpus = []
        for _ in range(runs):
            _wall, cpu, part = timed(only=wanted, workers=1)
            cpus.append(cpu)
        equal = all(part.models[u] == serial.models[u] for u in part.models)
        only_rows.append(
            {
                "target": serial.names.get(target, target),
                "models_computed": part.stats.computed,
                "cpu_median_s": round(statistics.median(cpus), 4),
                "full_cpu_median_s": round(statistics.median(serial_cpus), 3),
                "speedup": round(statistics.median(serial_cpus) / statistics.median(cpus), 1),
                "same_as_full": equal,
            }
        )
    return {
        "serial_wall_median_s": round(statistics.median(serial_walls), 3),
        "serial_wall_min_s": round(min(serial_walls), 3),
        "pool_wall_median_s": round(statistics.median(pool_walls), 3),
        "pool_wall_min_s": round(min(pool_walls), 3),
        "pool_wall_ratio": round(
            statistics.median(pool_walls) / statistics.median(serial_walls), 3
        ),
        "serial_cpu_median_s": round(statistics.median(serial_cpus), 3),
        "pool_cpu_median_s": round(statistics.median(pool_cpus), 3),
        "pool_equals_serial": same,
        "only": only_rows,
        "loadavg_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }


def scoped_main(args: argparse.Namespace) -> None:
    from dataops_dev.dbt.manifest import Manifest

    work = Path(tempfile.mkdtemp(prefix="dataops-lineage-scoped-"))
    results: dict[str, Any] = {
        "models": args.models,
        "columns": args.columns,
        "cpus": os.cpu_count(),
        "reference": args.reference_ref,
        "bars_s": BARS_S,
    }
    try:
        project = generate_project(work / "project", args.models, args.columns, args.seed)
        manifest_path = project / "target" / "manifest.json"
        reference = _export_reference(args.reference_ref, work)
        states = iter(range(10_000))

        def state() -> Path:
            return work / "state" / str(next(states))

        manifest = Manifest.load(manifest_path)
        column = _cols_of(manifest, args.columns)
        middle = manifest.dependency_order[len(manifest.dependency_order) // 2]
        target = f"{middle.name}.{column}"
        results["target"] = target
        lineage_args = ["lineage", target, "--json"]
        row = _ab(
            f"lineage {target} cold (manifest present)",
            args.runs,
            lambda: _run_cli(REPO, project, lineage_args, state()),
            lambda: _run_cli(reference, project, lineage_args, state()),
        )
        ours_data, ref_data = row.pop("_data")
        row["same_edges"] = bool(ours_data and ref_data) and (
            ours_data["edges"] == ref_data["edges"]
        )
        row["models_computed"] = {
            side: data["stats"]["computed"] if data else None
            for side, data in (("ours", ours_data), ("reference", ref_data))
        }
        results["lineage_cold"] = row

        edited = work / "edited"
        shutil.copytree(project, edited)
        results["edited"] = [p.stem for p in apply_edits(edited, args.models)]
        impact_args = ["impact", "--base-manifest", str(manifest_path), "--json"]
        row = _ab(
            "impact cold, 3-model change (manifest present)",
            args.runs,
            lambda: _run_cli(REPO, edited, impact_args, state()),
            lambda: _run_cli(reference, edited, impact_args, state()),
        )
        ours_data, ref_data = row.pop("_data")
        row["same_report"] = bool(ours_data and ref_data) and _comparable(ours_data) == _comparable(
            ref_data
        )
        results["impact_cold"] = row

        if args.fresh_clone_runs:
            template = _fresh_clone(project, work / "clone_template")

            def fresh(code: Path, cli: list[str]) -> dict[str, Any]:
                copy = work / f"clone_{next(states)}"
                shutil.copytree(template, copy, symlinks=True)
                return _run_cli(code, copy, cli, copy / ".dataops")

            for key, cli in (
                ("lineage_fresh_clone", lineage_args),
                ("impact_fresh_clone", ["impact", "--base", "main", "--json"]),
            ):
                row = _ab(
                    f"{cli[0]} on a fresh clone (dbt parse included)",
                    args.fresh_clone_runs,
                    lambda cli=cli: fresh(REPO, cli),
                    lambda cli=cli: fresh(reference, cli),
                )
                row.pop("_data")
                results[key] = row

        order = [n.unique_id for n in manifest.dependency_order]
        picks = [order[len(order) // 5], middle.unique_id, order[(4 * len(order)) // 5]]
        results["in_process"] = _in_process(manifest_path, picks, max(1, args.runs // 2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    _print_scoped(results)


def _cols_of(manifest: Any, n_columns: int) -> str:
    # gen_project names columns id, fk, c2, c3, ...: a value column, not a key.
    del manifest
    return "c3" if n_columns > 3 else "fk"


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("timings",)}


def _print_scoped(results: dict[str, Any]) -> None:
    print(  # noqa: T201 - a benchmark prints its table
        f"{results['models']} generated models x {results['columns']} columns; reference = "
        f"{results['reference']}; {results['cpus']} cpus"
    )
    header = (
        f"{'case':<52} {'ours wall med/min s':>20} {'ref wall med/min s':>20} "
        f"{'ours/ref cpu med s':>19} {'cpu ratio':>9} {'wall ratio':>10} {'bar':>6} "
        f"{'load 1m':>12}  same"
    )
    print(header)  # noqa: T201
    for key in ("lineage_cold", "impact_cold", "lineage_fresh_clone", "impact_fresh_clone"):
        row = results.get(key)
        if not row:
            continue
        ours, ref = row["ours"], row["reference"]
        bar = BARS_S.get(key)
        same = row.get("same_edges", row.get("same_report", "-"))
        print(  # noqa: T201
            f"{row['label']:<52} "
            f"{ours['wall_median_s']:>9.2f}/{ours['wall_min_s']:<9.2f}  "
            f"{ref['wall_median_s']:>9.2f}/{ref['wall_min_s']:<9.2f} "
            f"{ours['cpu_median_s']:>9.2f}/{ref['cpu_median_s']:<9.2f} "
            f"{row['cpu_ratio_median'] or 0:>9.3f} {row['wall_ratio_median'] or 0:>10.3f} "
            f"{(f'<={bar:g}s' if bar else '-'):>6} "
            f"{row['loadavg_1m'][0]:>5.1f}->{row['loadavg_1m'][1]:<5.1f}  {same}"
        )
        computed = row.get("models_computed")
        if computed:
            print(  # noqa: T201
                f"    models computed: ours {computed['ours']}, reference {computed['reference']}"
            )
        for side in ("ours", "reference"):
            if row[side]["error"]:
                print(f"    {side} failed: {row[side]['error'][-300:]}")  # noqa: T201
    inproc = results.get("in_process")
    if inproc:
        print(  # noqa: T201
            f"full project, in process: pool {inproc['pool_wall_median_s']:.2f}/"
            f"{inproc['pool_wall_min_s']:.2f} s vs serial {inproc['serial_wall_median_s']:.2f}/"
            f"{inproc['serial_wall_min_s']:.2f} s wall (ratio {inproc['pool_wall_ratio']:.2f}), "
            f"cpu {inproc['pool_cpu_median_s']:.2f} vs {inproc['serial_cpu_median_s']:.2f} s, "
            f"identical: {inproc['pool_equals_serial']}, load "
            f"{inproc['loadavg_1m'][0]:.1f}->{inproc['loadavg_1m'][1]:.1f}"
        )
        for only in inproc["only"]:
            print(  # noqa: T201
                f"  compute_lineage(only={only['target']} + downstream): "
                f"{only['models_computed']} models, cpu {only['cpu_median_s']:.3f} s vs full "
                f"{only['full_cpu_median_s']:.2f} s = {only['speedup']}x, "
                f"same edges: {only['same_as_full']}"
            )


if __name__ == "__main__":
    main()
