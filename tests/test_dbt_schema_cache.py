"""dbt.schema_cache: dbt's config schemas kept between processes, validation unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PARSE = """
import sys
from pathlib import Path
from dataops_dev.dbt.runner import run_dbt
project = Path(sys.argv[1])
run = run_dbt("parse", [], project_dir=project, profiles_dir=project,
              target_path=project / "target", write_json=False)
print("ok" if run.success else f"failed: {run.error}")
"""

BUILT_BY_DBT = """
import importlib, json, sys
from dbt_common.dataclass_schema import dbtClassMixin
build = dbtClassMixin.__dict__["json_schema"].__func__
cached = json.loads(open(sys.argv[1]).read())
for name, schema in cached.items():
    module, _, qualname = name.rpartition(".")
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    assert build(cls) == schema, name
print(len(cached))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text('name: tiny\nversion: "1.0"\nprofile: tiny\n')
    (root / "profiles.yml").write_text(
        'tiny:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: ":memory:"}\n'
    )
    (root / "models" / "a.sql").write_text("select 1 as a\n")
    (root / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: a\n    columns: [{name: a}]\n"
    )
    return root


def _python(code: str, *args: str, cache: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATAOPS_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_schemas_are_stored_as_dbt_builds_them_and_still_validate(
    project: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"

    assert _python(PARSE, str(project), cache=cache) == "ok"

    (stored,) = cache.glob("dbt-config-schemas-*.json")
    names = json.loads(stored.read_text())
    assert "dbt.contracts.graph.nodes.ModelNode" in names
    # Every stored schema is the one dbt builds for that class.
    checked = _python(BUILT_BY_DBT, str(stored), cache=tmp_path / "unused")
    assert int(checked.splitlines()[-1]) == len(names)

    # A later process validates with the stored schemas: a wrong config is still refused.
    (project / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: a\n    columns: 5\n"
    )
    refused = _python(PARSE, str(project), cache=cache)
    assert refused.startswith("failed:") and "is not of type 'array'" in refused


def test_a_corrupt_cache_is_no_cache_and_is_written_again(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert _python(PARSE, str(project), cache=cache) == "ok"
    (stored,) = cache.glob("dbt-config-schemas-*.json")
    stored.write_text('{"dbt.contracts.graph.nodes.ModelNode": ')
    shutil.rmtree(project / "target")  # a full parse again, not a partial one

    assert _python(PARSE, str(project), cache=cache) == "ok"

    assert "dbt.contracts.graph.nodes.ModelNode" in json.loads(stored.read_text())
