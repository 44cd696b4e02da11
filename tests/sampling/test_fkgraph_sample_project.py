"""sample_project's FK graph from real dbt manifests: `dbt parse` (models rendered by the light
renderer) and `dbt compile` (compiled SQL) map the relationships declared on models alike."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataops_dev.dbt.manifest import Manifest
from dataops_dev.fkgraph import build_graph, graph_to_dict
from tests.conftest import SAMPLE_PROJECT

pytestmark = pytest.mark.slow

EDGES = {
    "shop.order_items(order_id) -> shop.orders(order_id)",
    "shop.order_items(product_id) -> shop.products(product_id)",
    "shop.orders(customer_id) -> shop.customers(customer_id)",
    "shop.orders(store_id) -> shop.stores(store_id)",
    "shop.payments(order_id) -> shop.orders(order_id)",
    "shop.web_events(customer_id) -> shop.customers(customer_id)",
}


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Manifest]:
    """The manifests of `dbt parse` (no compiled SQL) and `dbt compile` of sample_project."""
    project = tmp_path_factory.mktemp("fkgraph") / "sample_project"
    shutil.copytree(
        SAMPLE_PROJECT,
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    dbt = Path(sys.executable).parent / "dbt"
    found = {}
    for command in ("parse", "compile"):
        target = project / f"target_{command}"
        result = subprocess.run(
            [str(dbt), command, "--profiles-dir", str(project), "--target-path", str(target)],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        found[command] = Manifest.load(target / "manifest.json")
    return found


def test_relationships_on_models_map_back_to_sources(manifests: dict[str, Manifest]) -> None:
    parsed, compiled = manifests["parse"], manifests["compile"]
    assert not any(n.compiled_code for n in parsed.models())
    assert all(n.compiled_code for n in compiled.models())
    for manifest in (parsed, compiled):
        graph = build_graph(manifest)
        assert {e.label for e in graph.edges} == EDGES
        on_models = [
            t.unique_id
            for t in manifest.tests
            if t.test_name == "relationships" and t.attached_node in manifest.nodes
        ]
        assert len(on_models) == 16
        # fct_order_items reads through `{% if is_incremental() %}`; only an aggregated key
        # (fct_web_sessions: max(customer_id) per session) is not the source's key any more.
        unmapped = {u.declared_on: u.reason for u in graph.unmapped}
        assert [uid.split(".")[2].split("__")[0] for uid in unmapped] == [
            "relationships_fct_web_sessions_customer_id"
        ]
        assert "fct_web_sessions.customer_id is computed" in next(iter(unmapped.values()))
    assert graph_to_dict(build_graph(parsed)) == graph_to_dict(build_graph(compiled))
