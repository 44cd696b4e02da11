"""The terminal renderer: verdict first, width-aware, colour only when the console allows it."""

from __future__ import annotations

import io

from rich.console import Console

from dataops_dev.report.model import Verdict
from dataops_dev.report.text import render_text
from tests.report.factory import HOSTILE, large_report, small_report


def _render(report, width: int = 100, color: bool = False) -> str:  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        _environ={},
    )
    render_text(report, console)
    return buffer.getvalue()


def test_verdict_first_then_table_details_tests_and_commands() -> None:
    report = small_report()
    out = _render(report, width=200)
    lines = out.splitlines()
    assert lines[0].startswith("Blocked: 2 blocking findings (1 breaking change to fct_orders")
    assert "\x1b[" not in out
    order = [out.index(s) for s in ("model ", "fct_orders  breaking", "failed tests", "next")]
    assert order == sorted(order)
    for finding in report.blocking:
        assert f"dataops-dev decide approve {finding.fingerprint[:12]}" in out
    assert "0b794e72be@masked.invalid" in out  # masked examples are shown
    assert "not_null_fct_orders_amount" in out


def test_markup_in_data_is_printed_literally() -> None:
    out = _render(small_report(), width=300)
    assert '<script>alert("x")</script>' in out
    assert "[link](http://evil)" in out


def test_width_is_respected() -> None:
    for width in (60, 100):
        out = _render(large_report(30), width=width)
        assert max(len(line) for line in out.splitlines()) <= width


def test_colour_only_when_asked() -> None:
    coloured = _render(small_report(), color=True)
    assert "\x1b[" in coloured
    assert "\x1b[1;31mBlocked" in coloured  # the verdict word in bold red
    ok = _render(small_report(approved=True), color=True)
    assert "\x1b[1;32mPass" in ok


def test_error_report() -> None:
    out = _render(small_report(verdict=Verdict.ERROR))
    assert out.startswith("Error: the review did not finish")
    assert HOSTILE not in out.splitlines()[0]


def test_details_are_capped_for_wide_changes() -> None:
    out = _render(large_report(200), width=120)
    assert out.count("  rows: ") == 40
    assert "details of 160 more models left out" in out
