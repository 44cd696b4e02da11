"""The report's contract around reuse flags, next commands and value encoding: timings are
seconds only, old reports still load, next commands are decided in one place, values are encoded
as the diff engine encodes them."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import json
import math
from pathlib import Path

from dataops_dev.config import load_config
from dataops_dev.decisions import record_decision
from dataops_dev.diffing.model import json_value
from dataops_dev.environments import environment_name
from dataops_dev.report._graph import impact_graph
from dataops_dev.report._summary import change_label, next_commands
from dataops_dev.report.html import render_html
from dataops_dev.report.markdown import render_markdown, render_markdown_with_level
from dataops_dev.report.model import (
    ColumnChange,
    DataDiff,
    Decision,
    Report,
    RowCounts,
    ValueExample,
    Verdict,
)
from dataops_dev.review import load_last_report, save_report
from tests.report.factory import large_report, small_report

FIXTURE = Path(__file__).parent / "fixtures" / "sample_project_report.json"


# ----------------------------------------------------------------------------------------------
# Reuse flags


def test_reuse_flags_live_on_the_sides_and_round_trip() -> None:
    report = dataclasses.replace(
        small_report(),
        base=dataclasses.replace(small_report().base, reused=True),
        timings={"sample": 1.2, "baseline": 0.0, "total": 3.4},
    )
    data = report.to_dict()
    assert list(data["base"]) == ["ref", "commit", "environment", "dirty", "reused"]
    assert data["base"]["reused"] is True and data["head"]["reused"] is False
    assert data["timings"] == {"sample": 1.2, "baseline": 0.0, "total": 3.4}
    again = Report.from_dict(json.loads(report.to_json()))
    assert again.base.reused and not again.head.reused


def test_old_reports_with_reuse_in_timings_still_load() -> None:
    old = json.loads(FIXTURE.read_text("utf-8"))
    assert old["timings"]["baseline_reused"] == 0.0 and "reused" not in old["base"]
    report = Report.from_dict(old)
    assert not report.base.reused and not report.head.reused
    assert "baseline_reused" not in report.timings
    assert report.timings["total"] == old["timings"]["total"]

    old["timings"].update(baseline_reused=1.0, branch_reused=1.0)
    report = Report.from_dict(old)
    assert report.base.reused and report.head.reused
    assert not {"baseline_reused", "branch_reused"} & set(report.timings)


def test_renderers_say_reuse_in_words_and_time_in_seconds() -> None:
    report = dataclasses.replace(
        small_report(),
        base=dataclasses.replace(small_report().base, reused=True),
        head=dataclasses.replace(small_report().head, reused=True),
        timings={"baseline": 0.012, "branch_build": 0.0, "diffs": 2.81},
    )
    for page in (render_markdown(report), render_html(report)):
        footer = page[page.rindex("report schema v") :]
        assert "baseline reused, branch build reused" in footer
        assert "diffs 2.8s" in footer
        assert "_reused" not in footer
    built = dataclasses.replace(report, base=small_report().base, head=small_report().head)
    for page in (render_markdown(built), render_html(built)):
        assert "reused" not in page[page.rindex("report schema v") :]


# ----------------------------------------------------------------------------------------------
# Next commands


def test_next_commands_follow_the_report_as_it_stands() -> None:
    blocked = small_report()
    commands = next_commands(blocked)
    approvals = [
        f'dataops-dev decide approve {f.fingerprint[:12]} --note "…"' for f in blocked.blocking
    ]
    assert list(commands) == [*approvals, "dataops-dev deploy --dry-run", "dataops-dev tui"]
    assert next_commands(small_report(approved=True)) == (
        "dataops-dev deploy --dry-run",
        "dataops-dev tui",
    )
    assert next_commands(small_report(verdict=Verdict.ERROR)) == (
        "dataops-dev review",
        "dataops-dev tui",
    )
    # What a report stored is not trusted: the commands follow its findings and approvals.
    stale = dataclasses.replace(
        small_report(approved=True), next_commands=("dataops-dev decide approve abc123",)
    )
    assert next_commands(stale) == next_commands(small_report(approved=True))


def test_saved_report_read_back_recomputes_next_commands(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    loaded = load_config(tmp_path)
    report = small_report()
    head = dataclasses.replace(report.head, environment=environment_name(report.head.ref))
    report = dataclasses.replace(report, head=head, next_commands=next_commands(report))
    save_report(loaded, report)
    first, second = report.blocking
    record_decision(tmp_path, first, Decision.APPROVED, note="expected", by="Ana <ana@example.com>")
    again = load_last_report(loaded, branch=report.head.ref)
    assert [f.fingerprint for f in again.blocking] == [second.fingerprint]
    assert again.next_commands == next_commands(again)
    assert not any(first.fingerprint[:12] in c for c in again.next_commands)
    assert any(second.fingerprint[:12] in c for c in again.next_commands)


def test_truncated_comment_keeps_every_command_but_surplus_approvals() -> None:
    body, _level = render_markdown_with_level(large_report(2000))
    block = body[body.index("### Next") :]
    assert "more approvals: dataops-dev decide list" in block
    assert "dataops-dev deploy --dry-run" in block and "dataops-dev tui" in block


# ----------------------------------------------------------------------------------------------
# Value encoding and shared labels


def test_values_are_encoded_as_the_diff_engine_encodes_them() -> None:
    odd = (
        decimal.Decimal("1.10"),
        math.nan,
        -math.inf,
        b"\x00\xff",
        datetime.timedelta(seconds=90),
        datetime.date(2026, 1, 2),
    )
    base = small_report()
    model = dataclasses.replace(
        base.models[0],
        diff=DataDiff(
            key=("k",),
            rows=RowCounts(base=1, head=1, changed=1),
            columns=(
                ColumnChange(
                    "v",
                    1,
                    1,
                    0.0,
                    tuple(ValueExample({"k": i}, v, None) for i, v in enumerate(odd)),
                ),
            ),
        ),
    )
    data = json.loads(dataclasses.replace(base, models=(model,)).to_json())
    encoded = [e["before"] for e in data["models"][0]["diff"]["columns"][0]["examples"]]
    assert encoded == [json_value(v) for v in odd]
    assert encoded[:4] == ["1.10", "NaN", "-Infinity", base64.b64encode(b"\x00\xff").decode()]


def test_graph_nodes_carry_the_change_label() -> None:
    report = small_report()
    graph = impact_graph(report)
    by_name = {m.name: m for m in report.models}
    labelled = [n for n in graph.nodes if n.id in by_name]
    assert labelled
    assert all(n.detail == change_label(by_name[n.id]) for n in labelled)
