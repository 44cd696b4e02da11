"""policy.evaluate on hand-made model reports: which findings a diff produces."""

from __future__ import annotations

from dataops_dev.config import PolicyConfig
from dataops_dev.policy import evaluate
from dataops_dev.report.model import (
    ChangeKind,
    DataDiff,
    FindingKind,
    ModelReport,
    ModelStatus,
    RowCounts,
    Severity,
)

NOTE = "no key declared: rows compared as a multiset (add unique + not_null tests or diff.keys)"


def _model(diff: DataDiff | None, note: str | None = None) -> ModelReport:
    return ModelReport(
        name="events",
        unique_id="model.shop.events",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.PARTIAL,
        diff=diff,
        diff_note=note,
    )


def test_a_keyless_diff_gives_a_no_key_warning() -> None:
    rows = RowCounts(base=10, head=10, added=2, removed=2, keyless=True)
    (finding,) = [
        f
        for f in evaluate(_model(DataDiff(key=None, rows=rows), NOTE), PolicyConfig())
        if f.kind is FindingKind.NO_KEY
    ]
    assert finding.severity is Severity.WARNING
    assert finding.model == "events"
    assert finding.detail == NOTE


def test_a_keyed_diff_or_a_model_only_on_the_branch_has_no_no_key_finding() -> None:
    keyed = DataDiff(key=("id",), rows=RowCounts(base=10, head=10, changed=1))
    # A model that exists only on the branch has no key to compare on, but nothing to compare.
    added = DataDiff(key=None, rows=RowCounts(base=0, head=5, added=5))
    for diff in (keyed, added, None):
        kinds = {f.kind for f in evaluate(_model(diff, NOTE), PolicyConfig())}
        assert FindingKind.NO_KEY not in kinds, diff
