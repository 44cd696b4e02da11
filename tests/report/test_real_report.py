"""The renderers on a real review of sample_project (the demo branch `segment-thresholds`).

The fixture is the report `dataops-dev demo` wrote (values are masked sample values); when the
report model changes, regenerate it: run the demo, then copy
`.dataops/reports/<env>/report.json` here (compact JSON is fine).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from dataops_dev.report.html import render_html
from dataops_dev.report.markdown import MARKER, Degradation, render_markdown_with_level
from dataops_dev.report.model import Report
from dataops_dev.report.text import render_text

FIXTURE = Path(__file__).parent / "fixtures" / "sample_project_report.json"


def test_real_report_in_every_format() -> None:
    report = Report.load(FIXTURE)
    body, level = render_markdown_with_level(report)
    assert level is Degradation.FULL
    assert body.startswith(MARKER)
    verdict = body.splitlines()[3]
    assert verdict.startswith(f"**{report.verdict.value.capitalize()}**:")
    for model in report.models:
        assert f"<b>{model.name}</b>" in body
    mermaid = re.search(r"```mermaid\n(.*?)\n```", body, re.S)
    assert mermaid and "-->" in mermaid.group(1)
    for finding in report.blocking:
        assert finding.fingerprint[:12] in body

    page = render_html(report)
    assert page.count('<details class="model"') == len(report.models)
    assert 'aria-label="impact graph"' in page

    buffer = io.StringIO()
    render_text(report, Console(file=buffer, width=120, no_color=True, _environ={}))
    out = buffer.getvalue()
    assert out.startswith(f"{report.verdict.value.capitalize()}:")
    assert all(m.name in out for m in report.models)
