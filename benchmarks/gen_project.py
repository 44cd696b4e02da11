"""Generator of synthetic dbt projects for benchmarks and budget tests: sources, CTE-heavy models
with fan-in and fan-out, schema.yml tests, exposures, and a production manifest.json written
directly (no dbt run), so `impact`/`lineage` can be timed on 500 models in seconds.

    from benchmarks.gen_project import generate_project
    project = generate_project(tmp_path / "bench", n_models=500, n_columns=20, seed=0)
    # project/target/manifest.json is the production manifest; edit models/*.sql to make a
    # change, or apply_edits(project, 500) for the benchmarks' three-model change.

The manifest follows dbt 1.11's v12 layout for the keys dataops_dev reads (nodes, sources,
exposures, parent/child maps, tests with test_metadata). `dbt parse`/`dbt compile` on the project
also works (profiles.yml targets a DuckDB file) when a dbt-made manifest is wanted.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = "bench_project"
DATABASE = "bench"
SCHEMA = "main"
SOURCE = "raw"


@dataclass
class _Model:
    name: str
    folder: str
    parents: list[str]
    raw: str = ""
    compiled: str = ""
    columns: list[str] = field(default_factory=list)


def _columns(n_columns: int) -> list[str]:
    return ["id", "fk", *[f"c{i}" for i in range(2, n_columns)]]


def _ref(name: str, compiled: bool) -> str:
    return f'"{DATABASE}"."{SCHEMA}"."{name}"' if compiled else f"{{{{ ref('{name}') }}}}"


def _src(table: str, compiled: bool) -> str:
    return (
        f'"{DATABASE}"."{SOURCE}"."{table}"'
        if compiled
        else f"{{{{ source('{SOURCE}', '{table}') }}}}"
    )


def _macro(column: str, compiled: bool) -> str:
    # The project's own macro, so the light renderer's macro path is exercised.
    return f"round({column} / 100.0, 2)" if compiled else f"{{{{ cents_to_units('{column}') }}}}"


def _staging_sql(table: str, cols: list[str], compiled: bool) -> str:
    config = "" if compiled else "{{ config(materialized='view') }}\n"
    body = ",\n        ".join(cols)
    return (
        f"{config}with source as (\n    select * from {_src(table, compiled)}\n),\n"
        f"renamed as (\n    select\n        {body}\n    from source\n    where id is not null\n)\n"
        "select * from renamed\n"
    )


def _model_sql(model: _Model, cols: list[str], rng: random.Random, compiled: bool) -> str:
    """A CTE-heavy model: base (+ others joined), enriched expressions, a shape step, final."""
    config = "" if compiled else "{{ config(materialized='table') }}\n"
    main, *others = model.parents
    ctes = [f"base as (\n    select * from {_ref(main, compiled)}\n)"]
    joined = []
    for index, parent in enumerate(others):
        alias = f"p{index}"
        picked = rng.sample(cols[2:], k=min(3, len(cols) - 2))
        select = ", ".join(["id as key", *[f"{c} as {alias}_{c}" for c in picked]])
        ctes.append(f"{alias} as (\n    select {select} from {_ref(parent, compiled)}\n)")
        joined.append((alias, picked))
    exprs = ["base.id as id", "base.fk as fk"]
    extra_cols = [f"{alias}.{alias}_{c}" for alias, picked in joined for c in picked]
    for i, col in enumerate(cols[2:]):
        shape = (i + rng.randrange(7)) % 7
        if shape == 0:
            exprs.append(f"base.{col} as {col}")
        elif shape == 1:
            exprs.append(f"coalesce(base.{col}, 0) + base.id as {col}")
        elif shape == 2:
            other = extra_cols[i % len(extra_cols)] if extra_cols else "base.fk"
            exprs.append(f"case when base.{col} > 10 then base.{col} else {other} end as {col}")
        elif shape == 3:
            exprs.append(f"{_macro('base.' + col, compiled)} as {col}")
        elif shape == 4:
            exprs.append(f"sum(base.{col}) over (partition by base.fk order by base.id) as {col}")
        elif shape == 5:
            exprs.append(f"base.{col} * 2 - base.fk as {col}")
        else:
            exprs.append(f"greatest(base.{col}, base.fk) as {col}")
    joins = "".join(f"\n    left join {alias} on base.fk = {alias}.key" for alias, _ in joined)
    filter_col = rng.choice(cols[2:])
    ctes.append(
        "enriched as (\n    select\n        "
        + ",\n        ".join(exprs)
        + f"\n    from base{joins}\n    where base.{filter_col} is not null\n)"
    )
    kind = rng.randrange(4)
    if kind == 0:
        aggregates = ",\n        ".join(
            [f"sum({c}) as {c}" if i % 2 else f"max({c}) as {c}" for i, c in enumerate(cols[2:])]
        )
        ctes.append(
            f"shaped as (\n    select\n        id,\n        fk,\n        {aggregates}\n"
            "    from enriched\n    group by id, fk\n)"
        )
    elif kind == 1:
        ctes.append(
            "shaped as (\n    select * from enriched\n"
            "    qualify row_number() over (partition by id order by fk desc) = 1\n)"
        )
    elif kind == 2:
        ctes.append(
            "shaped as (\n    select * from enriched where fk > 0\n"
            "    union all\n    select * from enriched where fk <= 0\n)"
        )
    else:
        ctes.append("shaped as (\n    select * from enriched\n)")
    return config + "with " + ",\n".join(ctes) + "\nselect * from shaped\n"


def _checksum(text: str) -> dict[str, str]:
    # dbt hashes the stripped file contents.
    return {"name": "sha256", "checksum": hashlib.sha256(text.strip().encode()).hexdigest()}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def generate_project(path: Path, n_models: int = 500, n_columns: int = 20, seed: int = 0) -> Path:
    """Write a dbt project with `n_models` models of `n_columns` columns at `path`, plus its
    production manifest at `path/target/manifest.json`; returns `path`."""
    rng = random.Random(seed)
    path = Path(path)
    cols = _columns(max(n_columns, 4))
    n_sources = max(2, min(20, n_models // 25))
    n_staging = min(n_sources, max(1, n_models // 10))
    models: list[_Model] = []
    for i in range(n_staging):
        models.append(_Model(f"stg_src_{i:02d}", "staging", []))
    for i in range(n_staging, n_models):
        # Fan-in: 1-3 parents; fan-out: parents are drawn with a bias to a few hubs.
        earlier = [m.name for m in models]
        hubs = earlier[: max(3, len(earlier) // 20)]
        k = rng.choice((1, 1, 2, 2, 3))
        parents: list[str] = []
        for _ in range(k):
            pool = hubs if rng.random() < 0.35 else earlier[-60:]
            choice = rng.choice(pool)
            if choice not in parents:
                parents.append(choice)
        layer = "intermediate" if i < n_models * 0.7 else "marts"
        models.append(_Model(f"m_{i:04d}", layer, parents))

    _write(
        path / "dbt_project.yml",
        f"name: {PROJECT}\nversion: '1.0'\nconfig-version: 2\nprofile: {PROJECT}\n"
        "model-paths: ['models']\nmacro-paths: ['macros']\nvars:\n  min_id: 0\n",
    )
    _write(
        path / "profiles.yml",
        f"{PROJECT}:\n  target: prod\n  outputs:\n    prod:\n      type: duckdb\n"
        f"      path: {DATABASE}.duckdb\n      schema: {SCHEMA}\n      threads: 2\n",
    )
    _write(
        path / "macros" / "cents_to_units.sql",
        "{% macro cents_to_units(column, scale=2) %}"
        "round({{ column }} / 100.0, {{ scale }}){% endmacro %}\n",
    )
    source_tables = [f"src_{i:02d}" for i in range(n_sources)]
    sources_yml = {
        "version": 2,
        "sources": [
            {
                "name": SOURCE,
                "schema": SOURCE,
                "tables": [
                    {"name": t, "columns": [{"name": c} for c in cols]} for t in source_tables
                ],
            }
        ],
    }
    _write(path / "models" / "staging" / "_sources.yml", json.dumps(sources_yml, indent=2))

    nodes: dict[str, Any] = {}
    tests: dict[str, Any] = {}
    yml_models: dict[str, list[dict[str, Any]]] = {}
    for index, model in enumerate(models):
        uid = f"model.{PROJECT}.{model.name}"
        if model.folder == "staging":
            table = source_tables[index % n_sources]
            model.raw = _staging_sql(table, cols, compiled=False)
            model.compiled = _staging_sql(table, cols, compiled=True)
            depends = [f"source.{PROJECT}.{SOURCE}.{table}"]
            macros: list[str] = []
        else:
            state = rng.getstate()
            model.raw = _model_sql(model, cols, rng, compiled=False)
            rng.setstate(state)
            model.compiled = _model_sql(model, cols, rng, compiled=True)
            depends = [f"model.{PROJECT}.{p}" for p in model.parents]
            macros = [f"macro.{PROJECT}.cents_to_units"] if "cents_to_units" in model.raw else []
        relative = f"models/{model.folder}/{model.name}.sql"
        _write(path / relative, model.raw)
        nodes[uid] = {
            "unique_id": uid,
            "resource_type": "model",
            "name": model.name,
            "package_name": PROJECT,
            "path": f"{model.folder}/{model.name}.sql",
            "original_file_path": relative,
            "fqn": [PROJECT, model.folder, model.name],
            "database": DATABASE,
            "schema": SCHEMA,
            "alias": model.name,
            "relation_name": f'"{DATABASE}"."{SCHEMA}"."{model.name}"',
            "raw_code": model.raw.strip(),
            "compiled_code": model.compiled,
            "compiled": True,
            "language": "sql",
            "checksum": _checksum(model.raw),
            "config": {
                "enabled": True,
                "materialized": "view" if model.folder == "staging" else "table",
                "contract": {"enforced": False},
            },
            "depends_on": {"nodes": depends, "macros": macros},
            "refs": [{"name": p, "package": None, "version": None} for p in model.parents],
            "sources": [[SOURCE, d.rsplit(".", 1)[1]] for d in depends if d.startswith("source.")],
            "description": f"Synthetic model {model.name}.",
            "columns": {
                "id": {"name": "id", "description": "key", "data_type": None, "meta": {}},
                "fk": {"name": "fk", "description": "", "data_type": None, "meta": {}},
            },
            "meta": {},
            "tags": [],
            "contract": {"enforced": False},
        }
        yml_models.setdefault(model.folder, []).append(
            {
                "name": model.name,
                "description": f"Synthetic model {model.name}.",
                "columns": [
                    {"name": "id", "description": "key", "data_tests": ["unique", "not_null"]},
                    {"name": "fk", "description": ""},
                ],
            }
        )
        for test_name in ("unique", "not_null"):
            test_uid = f"test.{PROJECT}.{test_name}_{model.name}_id.{index:08x}"
            tests[test_uid] = {
                "unique_id": test_uid,
                "resource_type": "test",
                "name": f"{test_name}_{model.name}_id",
                "package_name": PROJECT,
                "original_file_path": f"models/{model.folder}/schema.yml",
                "database": DATABASE,
                "schema": f"{SCHEMA}_dbt_test__audit",
                "alias": f"{test_name}_{model.name}_id",
                "raw_code": f"{{{{ test_{test_name}(**_dbt_generic_test_kwargs) }}}}",
                "checksum": {"name": "none", "checksum": ""},
                "config": {"enabled": True, "severity": "ERROR", "where": None},
                "depends_on": {"nodes": [uid], "macros": [f"macro.dbt.test_{test_name}"]},
                "test_metadata": {
                    "name": test_name,
                    "namespace": None,
                    "kwargs": {
                        "column_name": "id",
                        "model": f"{{{{ get_where_subquery(ref('{model.name}')) }}}}",
                    },
                },
                "column_name": "id",
                "attached_node": uid,
                "columns": {},
                "meta": {},
                "tags": [],
                "language": "sql",
            }
    for folder, entries in yml_models.items():
        _write(
            path / "models" / folder / "schema.yml",
            json.dumps({"version": 2, "models": entries}, indent=2),
        )
    marts = [m.name for m in models if m.folder == "marts"]
    exposure_parents = [marts[:3], marts[len(marts) // 2 : len(marts) // 2 + 2]]
    exposures: dict[str, Any] = {}
    exposures_yml = []
    for i, parents in enumerate(exposure_parents):
        name = f"dashboard_{i}"
        exposures[f"exposure.{PROJECT}.{name}"] = {
            "unique_id": f"exposure.{PROJECT}.{name}",
            "resource_type": "exposure",
            "name": name,
            "package_name": PROJECT,
            "type": "dashboard",
            "owner": {"name": "Analytics", "email": "analytics@example.com"},
            "depends_on": {"nodes": [f"model.{PROJECT}.{p}" for p in parents], "macros": []},
            "original_file_path": "models/marts/exposures.yml",
        }
        exposures_yml.append(
            {
                "name": name,
                "type": "dashboard",
                "owner": {"name": "Analytics", "email": "analytics@example.com"},
                "depends_on": [f"ref('{p}')" for p in parents],
            }
        )
    _write(
        path / "models" / "marts" / "exposures.yml",
        json.dumps({"version": 2, "exposures": exposures_yml}, indent=2),
    )
    sources = {
        f"source.{PROJECT}.{SOURCE}.{t}": {
            "unique_id": f"source.{PROJECT}.{SOURCE}.{t}",
            "resource_type": "source",
            "name": t,
            "source_name": SOURCE,
            "package_name": PROJECT,
            "original_file_path": "models/staging/_sources.yml",
            "database": DATABASE,
            "schema": SOURCE,
            "identifier": t,
            "relation_name": f'"{DATABASE}"."{SOURCE}"."{t}"',
            "columns": {c: {"name": c, "description": "", "data_type": None} for c in cols},
            "config": {"enabled": True},
            "meta": {},
            "tags": [],
        }
        for t in source_tables
    }
    all_nodes = {**nodes, **tests}
    parent_map = {uid: list(n["depends_on"]["nodes"]) for uid, n in all_nodes.items()}
    parent_map.update({uid: list(e["depends_on"]["nodes"]) for uid, e in exposures.items()})
    child_map: dict[str, list[str]] = {uid: [] for uid in (*all_nodes, *sources, *exposures)}
    for child, parents in parent_map.items():
        for parent in parents:
            child_map.setdefault(parent, []).append(child)
    manifest = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
            "dbt_version": "1.11.0",
            "generated_at": "2026-01-01T00:00:00Z",
            "project_name": PROJECT,
            "adapter_type": "duckdb",
            "invocation_args": {"target": "prod"},
        },
        "nodes": all_nodes,
        "sources": sources,
        "exposures": exposures,
        "macros": {},
        "parent_map": parent_map,
        "child_map": child_map,
    }
    _write(path / "target" / "manifest.json", json.dumps(manifest))
    return path


EDITS = (
    # (old, new): a partial change, an additive change and a filter (breaking) change
    ("base.fk as fk", "base.fk + 1 as fk"),
    ("select * from shaped", "select *, 1 as new_flag from shaped"),
    ("is not null", "is null"),
)
"""The change the benchmarks time: one edit each at 1/5, 1/2 and 3/5 of the models."""


def apply_edits(project: Path, n_models: int) -> list[Path]:
    """Apply `EDITS` to a project of `generate_project`; the edited model files.

    Each edit goes to the first model from its position on whose SQL holds the pattern.
    """
    edited: list[Path] = []
    picks = [n_models // 5, n_models // 2, (n_models * 3) // 5]
    for (old, new), index in zip(EDITS, picks, strict=True):
        for offset in range(40):
            path = next(project.glob(f"models/*/m_{index + offset:04d}.sql"), None)
            if path is None:
                continue
            text = path.read_text(encoding="utf-8")
            if old in text:
                path.write_text(text.replace(old, new, 1), encoding="utf-8")
                edited.append(path)
                break
    return edited


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generated = generate_project(args.path, args.models, args.columns, args.seed)
    print(generated)  # noqa: T201 - a script
