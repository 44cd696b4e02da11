"""Impact on a generated project: the change set, its JSON contract, contracts and exposures,
added/removed models, and where the base manifest comes from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from dataops_dev.config import load_config
from dataops_dev.dbt.manifest import Manifest
from dataops_dev.errors import ProjectError
from dataops_dev.impact import ChangeKind, ModelStatus, analyze_impact, find_base_manifest


def _edit(project: Path, name: str, old: str, new: str) -> None:
    path = next(project.glob(f"models/*/{name}.sql"))
    text = path.read_text()
    assert old in text, (name, old)
    path.write_text(text.replace(old, new, 1))


def _analyze(project: Path):  # type: ignore[no-untyped-def]
    return analyze_impact(project, project / "target" / "manifest.json", state_dir=project / ".st")


def test_three_model_change_classified_with_consistent_impact(small_project: Path) -> None:
    _edit(small_project, "stg_src_00", "where id is not null", "where id > 0")
    _edit(small_project, "m_0010", "coalesce(base.c2, 0)", "coalesce(base.c2, 1)")
    _edit(small_project, "m_0020", "select * from shaped", "select *, 1 as flag from shaped")
    report = _analyze(small_project)
    changes = {m.name: m for m in report.models}
    assert changes["stg_src_00"].change is ChangeKind.BREAKING
    assert changes["stg_src_00"].rows_affected
    assert changes["m_0010"].change is ChangeKind.PARTIAL
    assert changes["m_0010"].changed_columns == ("c2",)
    assert changes["m_0020"].change is ChangeKind.ADDITIVE
    assert changes["m_0020"].impacted.models == ()

    manifest = Manifest.load(small_project / "target" / "manifest.json")
    by_name = {n.name: n.unique_id for n in manifest.models()}
    exposures = manifest.exposures.values()
    for change in report.models:
        descendants = {
            manifest.get(d).name
            for d in manifest.descendants([by_name[change.name]])
            if d.startswith("model.")
        }
        assert set(change.impacted.models) <= descendants
        assert set(change.impacted.row_affected_models) <= set(change.impacted.models)
        touched = {change.name, *change.impacted.models}
        expected = sorted(
            e["name"]
            for e in exposures
            if {d.rsplit(".", 1)[1] for d in e["depends_on"]["nodes"]} & touched
        )
        assert list(change.impacted.exposures) == expected
        for column in change.impacted.columns:
            assert column.split(".")[0] in change.impacted.models
    # models downstream of a change but not impacted need no data diff
    assert not set(report.no_diff_needed) & set(report.diff_needed)

    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    for model in data["models"]:
        assert model["change"] in {"breaking", "partial", "additive", "metadata", "unknown"}
        assert set(model["impacted"]) >= {"models", "columns", "exposures"}


def test_contract_and_model_level_yaml_changes(small_project: Path) -> None:
    manifest_path = small_project / "target" / "manifest.json"
    data = json.loads(manifest_path.read_text())
    uid = "model.bench_project.m_0005"
    data["nodes"][uid]["contract"] = {"enforced": True}
    data["nodes"][uid]["config"]["contract"] = {"enforced": True}
    data["nodes"][uid]["columns"]["id"]["data_type"] = "integer"
    manifest_path.write_text(json.dumps(data))
    schema = small_project / "models" / "intermediate" / "schema.yml"
    doc = yaml.safe_load(schema.read_text())
    entry = next(m for m in doc["models"] if m["name"] == "m_0005")
    entry["config"] = {"contract": {"enforced": True}}
    entry["columns"][0]["data_type"] = "varchar"  # a contract type change
    other = next(m for m in doc["models"] if m["name"] == "m_0006")
    other["columns"][0]["data_tests"].append("accepted_values")  # a test: metadata
    schema.write_text(yaml.safe_dump(doc))
    report = _analyze(small_project)
    changes = {m.name: m for m in report.models}
    assert changes["m_0005"].change is ChangeKind.BREAKING
    assert changes["m_0005"].contract_enforced and changes["m_0005"].contract_broken
    assert any("contract type of id" in r for r in changes["m_0005"].reasons)
    assert changes["m_0006"].change is ChangeKind.METADATA
    assert "m_0006" not in report.diff_needed


def test_removed_and_added_models(small_project: Path) -> None:
    removed = next(small_project.glob("models/*/m_0039.sql"))
    removed.unlink()
    (small_project / "models" / "marts" / "m_new.sql").write_text(
        "select id, fk * 2 as fk2 from {{ ref('m_0010') }}"
    )
    report = _analyze(small_project)
    changes = {m.name: m for m in report.models}
    assert changes["m_0039"].status is ModelStatus.REMOVED
    assert changes["m_0039"].change is ChangeKind.BREAKING
    assert changes["m_new"].status is ModelStatus.ADDED
    assert changes["m_new"].change is ChangeKind.ADDITIVE
    assert changes["m_new"].added_columns == ("id", "fk2")


def test_unrenderable_change_is_unknown_not_dropped(small_project: Path) -> None:
    _edit(small_project, "m_0012", "select * from shaped", "select * from {{ dbt_utils.x() }}")
    change = next(m for m in _analyze(small_project).models if m.name == "m_0012")
    assert change.change is ChangeKind.UNKNOWN
    assert change.rows_affected  # unknown is treated as the worst case downstream


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@e",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@e",
            "PATH": "/usr/bin:/bin",
        },
    ).stdout.strip()


def test_find_base_manifest_order(small_project: Path, tmp_path: Path) -> None:
    _git(small_project, "init", "-q", "-b", "main")
    _git(small_project, "add", "-A")
    _git(small_project, "commit", "-q", "-m", "init")
    loaded = load_config(project_dir=small_project)
    with pytest.raises(ProjectError) as error:
        find_base_manifest(loaded, None)
    assert "dataops-dev review" in (error.value.hint or "")

    commit = _git(small_project, "rev-parse", "HEAD")
    baseline = loaded.state_dir / "envs" / f"base_{commit[:12]}" / "target" / "manifest.json"
    baseline.parent.mkdir(parents=True)
    baseline.write_text("{}")
    assert find_base_manifest(loaded, None, base_ref="main") == baseline

    production = loaded.state_dir / "production" / "manifest.json"
    production.parent.mkdir(parents=True)
    production.write_text("{}")
    assert find_base_manifest(loaded, None) == production
    assert find_base_manifest(loaded, None, base_ref="main") == baseline

    configured = tmp_path / "prod_manifest.json"
    configured.write_text("{}")
    loaded = load_config(
        project_dir=small_project, overrides={"production.manifest": str(configured)}
    )
    assert find_base_manifest(loaded, None) == configured
    explicit = small_project / "target" / "manifest.json"
    assert find_base_manifest(loaded, explicit) == explicit
    with pytest.raises(ProjectError):
        find_base_manifest(loaded, tmp_path / "missing.json")


def test_find_base_manifest_without_git_or_with_an_unknown_ref_gives_the_hint(
    small_project: Path,
) -> None:
    loaded = load_config(project_dir=small_project)
    with pytest.raises(ProjectError) as error:
        find_base_manifest(loaded, None)  # not a git repository
    assert "dataops-dev review" in (error.value.hint or "")
    _git(small_project, "init", "-q", "-b", "main")
    _git(small_project, "add", "-A")
    _git(small_project, "commit", "-q", "-m", "init")
    with pytest.raises(ProjectError) as error:
        find_base_manifest(loaded, None, base_ref="no-such-branch")
    assert "dataops-dev review" in (error.value.hint or "")


def test_new_column_flows_through_select_star_children(small_project: Path) -> None:
    import hashlib

    manifest_path = small_project / "target" / "manifest.json"
    data = json.loads(manifest_path.read_text())
    parent, child = "m_0010", "m_star"
    raw = f"select * from {{{{ ref('{parent}') }}}}"
    (small_project / "models" / "marts" / f"{child}.sql").write_text(raw)
    uid = f"model.bench_project.{child}"
    template = dict(data["nodes"]["model.bench_project.m_0039"])
    template.update(
        unique_id=uid,
        name=child,
        alias=child,
        relation_name=f'"bench"."main"."{child}"',
        original_file_path=f"models/marts/{child}.sql",
        raw_code=raw,
        compiled_code=f'select * from "bench"."main"."{parent}"',
        checksum={"name": "sha256", "checksum": hashlib.sha256(raw.encode()).hexdigest()},
        depends_on={"nodes": [f"model.bench_project.{parent}"], "macros": []},
    )
    data["nodes"][uid] = template
    data["child_map"][f"model.bench_project.{parent}"].append(uid)
    data["child_map"][uid] = []
    manifest_path.write_text(json.dumps(data))
    assert _analyze(small_project).models == ()  # the base is consistent

    _edit(small_project, parent, "select * from shaped", "select *, 1 as flag from shaped")
    [change] = _analyze(small_project).models
    assert change.change is ChangeKind.ADDITIVE
    assert change.impacted.models == (child,)
    assert change.impacted.columns == (f"{child}.flag",)


def test_jinja_contract_type_is_not_a_contract_change() -> None:
    """A data_type written as Jinja (per adapter) is rendered only in dbt's manifest: the YAML's
    template is no evidence of a change, a literal type change still is."""
    from dataops_dev.impact import _meta_differences, meta_from_yaml

    def entry(data_type: str) -> dict[str, object]:
        return {
            "config": {"contract": {"enforced": True}},
            "columns": [{"name": "city", "data_type": data_type}],
        }

    rendered = meta_from_yaml(entry("text"))
    template = meta_from_yaml(entry("{{ 'string' if target.type == 'spark' else 'text' }}"))
    assert _meta_differences(rendered, template) == ([], [])
    assert _meta_differences(rendered, meta_from_yaml(entry("integer")))[1] == [
        "contract type of city changed: text -> integer"
    ]
