"""Manifests made on demand (dbt/parse.py) on a real tiny dbt project: the working tree is
parsed again after an edit with dbt's partial parsing kept warm, and the result is the edit's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataops_dev.config import load_config
from dataops_dev.dbt.parse import working_manifest

pytestmark = [pytest.mark.slow]


def test_an_edited_working_tree_is_parsed_again_warm_and_sees_the_edit(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        'name: shop\nversion: "1.0.0"\nconfig-version: 2\nprofile: shop\n'
    )
    (project / "models" / "a.sql").write_text("select 1 as id\n")
    (project / "models" / "b.sql").write_text("select id from {{ ref('a') }}\n")
    loaded = load_config(project)

    first = working_manifest(loaded)
    assert not first.reused
    warm = list((loaded.state_dir / "cache" / "manifests" / "partial").glob("*/target"))
    assert len(warm) == 1 and (warm[0] / "partial_parse.msgpack").is_file()

    (project / "models" / "b.sql").write_text("select id, 2 as two from {{ ref('a') }}\n")
    (project / "models" / "c.sql").write_text("select two from {{ ref('b') }}\n")
    second = working_manifest(loaded)

    assert second.path != first.path and not second.reused
    nodes = json.loads(second.path.read_text())["nodes"]
    assert "2 as two" in nodes["model.shop.b"]["raw_code"]
    assert nodes["model.shop.c"]["depends_on"]["nodes"] == ["model.shop.b"]
    # The first manifest is still the first tree's: a cache entry is never rewritten.
    assert "model.shop.c" not in json.loads(first.path.read_text())["nodes"]
    assert working_manifest(loaded).reused
