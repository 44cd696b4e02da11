"""`dataops-dev report`: re-render a saved report in every format, to stdout or a file."""

from __future__ import annotations

import json
from pathlib import Path

from dataops_dev.report.markdown import MARKER
from dataops_dev.report.model import SCHEMA_VERSION, Report
from tests.conftest import run_cli
from tests.report.factory import small_report


def test_every_format_from_a_report_file(tmp_path: Path) -> None:
    report = small_report()
    path = tmp_path / "report.json"
    path.write_text(report.to_json(), "utf-8")
    env = {"NO_COLOR": "1", "COLUMNS": "120"}

    as_json = run_cli("report", "--report", str(path), "--json", cwd=tmp_path, env=env)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["schema_version"] == SCHEMA_VERSION
    assert list(data)[:3] == ["schema_version", "project", "generated_at"]
    assert Report.from_dict(data) == report

    md = run_cli("report", "--report", str(path), "--format", "markdown", cwd=tmp_path, env=env)
    assert md.returncode == 0 and md.stdout.startswith(MARKER)

    text = run_cli("report", "--report", str(path), cwd=tmp_path, env=env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("Blocked: 2 blocking findings")
    assert "\x1b[" not in text.stdout

    out = tmp_path / "out" / "report.html"
    html = run_cli(
        "report", "--report", str(path), "--format", "html", "-o", str(out), cwd=tmp_path, env=env
    )
    assert html.returncode == 0, html.stderr
    assert html.stdout == ""
    assert f"wrote {out}" in html.stderr
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")

    small = run_cli(
        "report", "--report", str(path), "--format", "markdown", "--budget", "4000", cwd=tmp_path
    )
    assert small.returncode == 0 and len(small.stdout) <= 4000


def test_missing_report_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("report", "--report", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert result.returncode == 2
    assert "no report file" in result.stderr and "dataops-dev review" in result.stderr
