"""Project lineage: composed over the DAG, cached per model, identical across environments."""

from __future__ import annotations

import json
from pathlib import Path

from dataops_dev.dbt.manifest import Manifest
from dataops_dev.lineage import (
    STAR,
    EdgeKind,
    compute_lineage,
    default_cache_dir,
    load_project_lineage,
)


def test_every_generated_model_resolves(small_project: Path) -> None:
    manifest, lineage = load_project_lineage(small_project / "target" / "manifest.json")
    assert lineage.stats.models == 40
    assert lineage.stats.unknown == 0
    for model in lineage.models.values():
        assert model.columns is not None and len(model.columns) == 8
        assert model.edges
        # every output column has at least one input or is a constant
        targets = {e.target_column for e in model.edges}
        assert targets == set(model.columns)
    # staging models read their source by `source_name.table_name`
    stg = next(m for uid, m in lineage.models.items() if "stg_src_00" in uid)
    names = {lineage.names[e.source_node] for e in stg.edges}
    assert names == {"raw.src_00"}


def test_cache_second_run_is_all_hits_and_identical(small_project: Path, tmp_path: Path) -> None:
    manifest_path = small_project / "target" / "manifest.json"
    _, cold = load_project_lineage(manifest_path, state_dir=tmp_path)
    assert cold.stats.computed == 40 and cold.stats.cached == 0
    files = list(default_cache_dir(tmp_path).rglob("*.json"))
    assert len(files) == 40
    assert not list(default_cache_dir(tmp_path).rglob(".tmp-*"))
    _, warm = load_project_lineage(manifest_path, state_dir=tmp_path)
    assert warm.stats.cached == 40 and warm.stats.computed == 0
    assert list(warm.edges()) == list(cold.edges())


def test_changed_sql_recomputes_only_that_model_and_changed_schemas(
    small_project: Path, tmp_path: Path
) -> None:
    manifest_path = small_project / "target" / "manifest.json"
    _, before = load_project_lineage(manifest_path, state_dir=tmp_path)
    data = json.loads(manifest_path.read_text())
    target = "model.bench_project.m_0020"
    # same columns, another expression: children keep their cache (their inputs are unchanged)
    data["nodes"][target]["compiled_code"] = data["nodes"][target]["compiled_code"].replace(
        "base.fk as fk", "base.fk + 1 as fk"
    )
    manifest_path.write_text(json.dumps(data))
    _, after = load_project_lineage(manifest_path, state_dir=tmp_path)
    assert after.stats.computed == 1
    assert any(
        e.source_column == "fk" and e.kind is EdgeKind.DERIVED for e in after.models[target].edges
    )
    assert before.models[target].edges != after.models[target].edges


def test_lineage_ignores_the_environment_database(small_project: Path) -> None:
    manifest_path = small_project / "target" / "manifest.json"
    _, prod = load_project_lineage(manifest_path)
    data = json.loads(manifest_path.read_text())
    for node in data["nodes"].values():
        if node.get("compiled_code"):
            node["compiled_code"] = node["compiled_code"].replace(
                '"bench".', '"feature_x_1a2b3c4d".'
            )
        node["database"] = "feature_x_1a2b3c4d"
    env = Manifest(data)
    assert list(compute_lineage(env).edges()) == list(prod.edges())


def test_python_model_and_missing_sql_are_unknown_not_dropped(small_project: Path) -> None:
    data = json.loads((small_project / "target" / "manifest.json").read_text())
    uid = "model.bench_project.m_0030"
    data["nodes"][uid]["language"] = "python"
    lineage = compute_lineage(Manifest(data))
    model = lineage.models[uid]
    assert model.columns is None
    assert model.unknown_reason == "Python model"
    assert model.edges and all(e.kind is EdgeKind.UNKNOWN for e in model.edges)
    assert {e.target_column for e in model.edges} == {STAR}
    # downstream of an unknown model: its children's stars cannot be expanded -> unknown too
    children = [c for c in Manifest(data).child_map.get(uid, ()) if c.startswith("model.")]
    for child in children:
        assert lineage.models[child].unknown_reason


def test_upstream_and_downstream_walks(small_project: Path) -> None:
    _, lineage = load_project_lineage(small_project / "target" / "manifest.json")
    leaf = "model.bench_project.m_0039"
    up = lineage.upstream(leaf, "id")
    assert up and all(e.kind for e in up)
    assert any(lineage.names[e.source_node].startswith("raw.") for e in up)
    root = "source.bench_project.raw.src_00"
    down = lineage.downstream(root, "id")
    assert any(e.target_node == "model.bench_project.stg_src_00" for e in down)
    assert {e.to_dict(lineage.names)["from"].split(".")[0] for e in down} >= {"raw"}
