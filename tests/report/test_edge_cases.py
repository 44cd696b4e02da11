"""Every renderer on the awkward reports: nothing changed, no data diff, keyless, odd values."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import io
import math

import pytest
from rich.console import Console

from dataops_dev.report.html import render_html
from dataops_dev.report.markdown import MARKER, render_markdown
from dataops_dev.report.model import (
    ChangeKind,
    ColumnChange,
    DataDiff,
    ModelReport,
    ModelStatus,
    Report,
    RowCounts,
    ValueExample,
    Verdict,
)
from dataops_dev.report.text import render_text
from tests.report.factory import small_report


def _all(report: Report) -> dict[str, str]:
    buffer = io.StringIO()
    render_text(report, Console(file=buffer, width=100, no_color=True, _environ={}))
    return {
        "text": buffer.getvalue(),
        "markdown": render_markdown(report),
        "html": render_html(report),
        "json": report.to_json(),
    }


def test_nothing_changed() -> None:
    report = dataclasses.replace(
        small_report(), models=(), lineage=(), exposures=(), verdict=Verdict.PASS
    )
    out = _all(report)
    assert out["text"].startswith("Pass: no blocking findings — no model changed.")
    assert out["markdown"].startswith(MARKER)
    assert "No model changed." in out["markdown"]
    assert "```mermaid" not in out["markdown"]
    assert "dataops-dev deploy --dry-run" in out["markdown"]


def test_models_without_data_diff_and_keyless() -> None:
    base = small_report()
    no_diff = ModelReport(
        name="ephemeral_model",
        unique_id="model.shop.ephemeral_model",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.METADATA,
        diff_note="ephemeral: nothing is materialized to compare",
    )
    keyless = ModelReport(
        name="events_rollup",
        unique_id="model.shop.events_rollup",
        status=ModelStatus.IMPACTED,
        change=ChangeKind.NONE,
        diff=DataDiff(
            key=None,
            rows=RowCounts(base=10, head=12, added=3, removed=1, keyless=True),
            columns=(
                ColumnChange(
                    "odd",
                    2,
                    10,
                    99.99,
                    (
                        ValueExample({"k": 1}, math.nan, math.inf),
                        ValueExample({"k": 2}, decimal.Decimal("1.10"), None),
                        ValueExample(
                            {"a": 1, "b": "x"}, datetime.date(2026, 1, 1), "line\nbreak|pipe"
                        ),
                    ),
                ),
            ),
        ),
    )
    report = dataclasses.replace(base, models=(no_diff, keyless))
    out = _all(report)
    md = out["markdown"]
    assert "ephemeral: nothing is materialized to compare" in md
    assert "none (multiset of rows)" in md
    assert "99.9%" in md  # 99.99 never rounds up to a perfect 100.0%
    assert "<code>line break&#124;pipe</code>" in md
    assert "a=1, b=x" in md
    assert "ephemeral: nothing is materialized to compare" in out["text"]
    assert "no key (multiset)" in out["text"]
    assert "nan" in out["html"] and "inf" in out["html"]


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_renders_first(verdict: Verdict) -> None:
    out = _all(small_report(verdict=verdict))
    label = {"pass": "Pass", "blocked": "Blocked", "error": "Error"}[verdict.value]
    assert out["text"].startswith(label + ":")
    assert out["markdown"].splitlines()[3].startswith(f"**{label}**:")
    assert f'<div class="verdict {verdict.value}"><strong>{label}</strong>' in out["html"]
