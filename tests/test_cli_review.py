"""`dataops-dev review`'s exit: a blocked verdict names the exact `decide approve` commands."""

from __future__ import annotations

import dataclasses

import pytest

from dataops_dev.cli.review import exit_for
from dataops_dev.errors import BlockingFindings, BuildError
from dataops_dev.report._summary import approve_command
from dataops_dev.report.model import Verdict
from tests.report.factory import small_report


def test_blocked_review_hints_the_approve_commands() -> None:
    report = small_report()
    assert report.verdict is Verdict.BLOCKED and len(report.blocking) == 2
    with pytest.raises(BlockingFindings) as raised:
        exit_for(report)
    assert raised.value.message == "2 blocking findings need a decision"
    hint = raised.value.hint or ""
    for finding in report.blocking:
        assert f"`{approve_command(finding)}`" in hint


def test_incomplete_review_names_the_commands_to_fix_it() -> None:
    report = dataclasses.replace(small_report(), verdict=Verdict.ERROR, error="dbt failed")
    with pytest.raises(BuildError) as raised:
        exit_for(report)
    assert raised.value.message == "review incomplete: dbt failed"
    assert "`dataops-dev build`" in (raised.value.hint or "")
    assert "`dataops-dev review`" in (raised.value.hint or "")


def test_passing_review_exits_normally() -> None:
    exit_for(dataclasses.replace(small_report(), verdict=Verdict.PASS))
