"""The diff engine on sample_project's generated production data, through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataops_dev.engines import DuckDBEngine


@pytest.mark.slow
def test_diff_tables_on_sample_project_orders(sample_project_prod: Path, tmp_path: Path) -> None:
    path = tmp_path / "prod.duckdb"
    shutil.copy(sample_project_prod, path)
    with DuckDBEngine(path) as engine:
        engine.execute("CREATE SCHEMA head")
        engine.execute("CREATE TABLE head.orders AS SELECT * FROM raw.orders")
        total = engine.fetchall("SELECT count(*) FROM raw.orders")[0][0]
        engine.execute("DELETE FROM head.orders WHERE order_id % 50 = 0")
        engine.execute(
            "UPDATE head.orders SET customer_id = customer_id + 1 WHERE order_id % 40 = 1"
        )
        removed = engine.fetchall("SELECT count(*) FROM raw.orders WHERE order_id % 50 = 0")[0][0]
        changed = engine.fetchall("SELECT count(*) FROM head.orders WHERE order_id % 40 = 1")[0][0]
    # As a user runs it: a subprocess of `python -m dataops_dev`.
    args = ["diff-tables", "raw.orders", "head.orders", "--key", "order_id"]
    result = subprocess.run(
        [sys.executable, "-m", "dataops_dev", *args, "--database", str(path), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rows"]["left"] == total
    assert (data["rows"]["removed"], data["rows"]["added"]) == (removed, 0)
    assert data["rows"]["changed"] == changed
    by_name = {c["name"]: c["changed"] for c in data["columns"]}
    assert by_name["customer_id"] == changed
    assert sum(by_name.values()) == changed
