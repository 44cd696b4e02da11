"""The static path stays static: `impact` neither imports dbt nor opens a database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from dataops_dev.cli import main
sys.argv = ["dataops-dev", "impact", "--base-manifest", "target/manifest.json", "--json"]
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m in ("dbt", "duckdb", "psycopg", "textual")
               or m.startswith("dbt."))
print("\\nPROBE" + json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def test_impact_cli_imports_no_dbt_and_no_database_driver(small_project: Path) -> None:
    path = next(small_project.glob("models/*/m_0010.sql"))
    path.write_text(path.read_text().replace("coalesce(base.c2, 0)", "coalesce(base.c2, 1)"))
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=small_project,
        capture_output=True,
        text=True,
        check=False,
    )
    probe = json.loads(result.stderr.rsplit("PROBE", 1)[1])
    assert probe == {"code": 0, "heavy": []}, result.stderr
    assert json.loads(result.stdout)["models"][0]["name"] == "m_0010"
