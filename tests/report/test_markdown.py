"""The PR comment: verdict first, marker, escaping, mermaid caps and the 60,000-character budget."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from dataops_dev.report._summary import verdict_plain
from dataops_dev.report.markdown import (
    DEFAULT_BUDGET,
    MARKER,
    Degradation,
    MarkdownOptions,
    render_markdown,
    render_markdown_with_level,
)
from dataops_dev.report.model import Verdict
from tests.report.factory import HOSTILE, large_report, report_from_impact, small_report

REPO_ROOT = Path(__file__).resolve().parents[2]


def _mermaid(body: str) -> str:
    match = re.search(r"```mermaid\n(.*?)\n```", body, re.S)
    assert match, "no mermaid block"
    return match.group(1)


def _check_structure(body: str) -> None:
    """Balanced fences and <details>; each <summary> line followed by a blank line."""
    assert body.startswith(MARKER + "\n")
    assert body.count("<details") == body.count("</details>")
    assert len(re.findall(r"^```", body, re.M)) % 2 == 0
    lines = body.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("<details"):
            assert lines[i + 1] == "", "GitHub needs a blank line after <summary> for markdown"


def test_verdict_first_with_numbers_and_next_commands() -> None:
    report = small_report()
    body = render_markdown(report)
    _check_structure(body)
    lines = body.splitlines()
    assert lines[0] == MARKER
    assert "Blocked" in lines[1]
    verdict = lines[3]
    assert verdict.startswith("**Blocked**: 2 blocking findings (1 breaking change to ")
    assert "<code>fct_orders</code>" in verdict and "1 failed test" in verdict
    assert "3 models changed, 2 impacted" in verdict
    assert "1 exposure (<code>revenue_dashboard</code>) affected" in verdict
    assert "220 rows differ in <code>stg_orders</code>" in verdict
    # Order: counts, findings, graph, models, failed tests, next.
    positions = [
        body.index(h)
        for h in ("| change | models |", "### Findings", "### Impact", "### Models")
        + ("### Failed tests", "### Next")
    ]
    assert positions == sorted(positions)
    next_block = body[body.index("### Next") :]
    for finding in report.blocking:
        assert f"dataops-dev decide approve {finding.fingerprint[:12]} --note" in next_block
    assert "dataops-dev deploy --dry-run" in next_block
    # The blocking model's details are open, the others collapsed.
    assert "<details open><summary><b>fct_orders</b>" in body
    assert "<details><summary><b>stg_orders</b>" in body


def test_pass_and_error_verdicts() -> None:
    approved = render_markdown(small_report(approved=True))
    assert "**Pass**: no blocking findings (2 approved findings)" in approved
    assert "decide approve" not in approved
    error = render_markdown(small_report(verdict=Verdict.ERROR))
    assert "**Error**: the review did not finish (dbt build failed on fct\\_orders)" in error


def test_report_next_commands_drop_approvals_already_recorded() -> None:
    import dataclasses

    report = small_report(approved=True)
    stale = tuple(f'dataops-dev decide approve {f.fingerprint} --note "x"' for f in report.findings)
    report = dataclasses.replace(report, next_commands=(*stale, "dataops-dev tui"))
    body = render_markdown(report)
    assert "decide approve" not in body
    assert "dataops-dev tui" in body


def test_hostile_text_is_inert() -> None:
    body = render_markdown(small_report())
    assert HOSTILE not in body
    assert "<script>" not in body
    assert "&lt;script&gt;" in body
    assert "\\[link\\]" in body  # no link
    # A `|` in text never splits a table row: every row of a table has the same cell count.
    for block in re.findall(r"((?:^\|.*\|\n)+)", body, re.M):
        rows = [r for r in block.splitlines() if r]
        widths = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
        assert len(widths) == 1, rows


def test_masked_examples_shown_then_dropped_first() -> None:
    report = small_report()
    full, level = render_markdown_with_level(report)
    assert level is Degradation.FULL
    assert "@masked.invalid" in full and "Examples (masked sample values)" in full
    budget = len(full) - 1
    smaller, level = render_markdown_with_level(report, MarkdownOptions(budget=budget))
    assert level is Degradation.NO_EXAMPLES
    assert len(smaller) <= budget
    assert "@masked.invalid" not in smaller
    assert "<details open><summary><b>fct_orders</b>" in smaller
    assert "example values" in smaller


def test_collapse_keeps_blocking_details_first() -> None:
    report = small_report()
    no_examples, _ = render_markdown_with_level(report, MarkdownOptions(budget=12_000))
    budget = 6_000
    body, level = render_markdown_with_level(report, MarkdownOptions(budget=budget))
    assert level is Degradation.COLLAPSED, (len(no_examples), level)
    assert len(body) <= budget
    _check_structure(body)
    assert "<details open><summary><b>fct_orders</b>" in body
    assert "| <code>fct_revenue</code> | impacted |" in body


def test_truncation_keeps_verdict_and_next_commands() -> None:
    report = large_report(2000)
    body, level = render_markdown_with_level(report)
    assert level is Degradation.TRUNCATED
    assert len(body) <= DEFAULT_BUDGET
    _check_structure(body)
    assert body.splitlines()[3].startswith("**Blocked**:")
    assert "Truncated to fit GitHub's comment limit: 2,000 models" in body
    assert body.rstrip().endswith("```")
    assert "dataops-dev deploy --dry-run" in body
    assert "more approvals: dataops-dev decide list" in body


@pytest.mark.parametrize("n_models", [200, 500])
def test_budget_and_mermaid_caps_on_wide_changes(n_models: int) -> None:
    report = large_report(n_models)
    body, level = render_markdown_with_level(report)
    assert len(body) <= DEFAULT_BUDGET
    assert level is not Degradation.FULL
    _check_structure(body)
    mermaid = _mermaid(body)
    nodes = re.findall(r"^  (n\d+)[\[{]", mermaid, re.M)
    edges = re.findall(r"^  n\d+ --> n\d+$", mermaid, re.M)
    assert len(nodes) == 61  # 60 + the "+N more" node
    assert f'["+{n_models + 5 - 60} more"]' in mermaid
    assert len(edges) <= 300
    assert len(mermaid) < 10_000  # mermaid's maxTextSize is 50,000
    assert "collapsed into the “more” node" in body
    assert verdict_plain(report).split(":")[0] == "Blocked"


def test_artifact_link_only_for_safe_urls() -> None:
    report = large_report(200)
    body = render_markdown(
        report, MarkdownOptions(artifact_url="https://github.com/o/r/actions/runs/1")
    )
    assert "(https://github.com/o/r/actions/runs/1)" in body
    body = render_markdown(report, MarkdownOptions(artifact_url="javascript:alert(1)"))
    assert "javascript:" not in body


@pytest.mark.slow
def test_budget_on_a_generated_project_impact(tmp_path: Path) -> None:
    """A real static impact: 10 staging filters reach 250 models of a generated project."""
    import importlib.util

    from dataops_dev.dbt.manifest import Manifest
    from dataops_dev.impact import analyze_impact

    spec = importlib.util.spec_from_file_location(
        "bench_gen_project_report", REPO_ROOT / "benchmarks" / "gen_project.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    project = module.generate_project(tmp_path / "gen", n_models=250, n_columns=10, seed=0)
    for i in range(10):
        path = project / "models" / "staging" / f"stg_src_{i:02d}.sql"
        text = path.read_text()
        path.write_text(text.replace("where id is not null", "where id > 0", 1))
    manifest_path = project / "target" / "manifest.json"
    impact = analyze_impact(project, manifest_path, state_dir=tmp_path / "state")
    report = report_from_impact(impact, Manifest.load(manifest_path))
    assert len(report.models) >= 200
    body, level = render_markdown_with_level(report)
    assert len(body) <= DEFAULT_BUDGET
    assert level in (Degradation.COLLAPSED, Degradation.TRUNCATED)
    _check_structure(body)
    mermaid = _mermaid(body)
    assert len(re.findall(r"^  n\d+ --> n\d+$", mermaid, re.M)) <= 300
    assert len(mermaid) < 50_000
    assert "10 breaking changes to" in body.splitlines()[3]
    shutil.rmtree(project / ".st", ignore_errors=True)


def test_mentions_in_text_do_not_notify() -> None:
    import dataclasses

    report = small_report()
    model = report.models[0]
    finding = dataclasses.replace(report.findings[0], title="@data-team please look")
    models = (dataclasses.replace(model, findings=(finding,)), *report.models[1:])
    body = render_markdown(dataclasses.replace(report, models=models))
    assert "@data-team" not in body
    assert "@\u2060data-team please look" in body
