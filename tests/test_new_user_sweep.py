"""Issue 12's "what it must show", as a new user meets each kind of real project: a fresh clone
(no target/, no .dataops/), a branch with a realistic change, then `impact --base main`,
`lineage` and `review` — every command from the repository root, nothing prepared.

The five fixture kinds: a classic seed-based project (rr_seeds), packages + unit tests +
dispatched macros (rr_packages), `read_csv` external sources with PII in the files (fs_files), a
project in a `transform/` subfolder with a Python model (ir_transform), custom generic tests and
other block tags in `macros/` (ir_blocks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.real_projects import make_project_repo

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    fixture: str
    subdir: str
    file: str
    old: str
    new: str
    changed: str
    """The model the edit changes: impact must flag it, the review must report it."""
    downstream: frozenset[str]
    """Models that read it: impact must mark them impacted (or changed)."""
    lineage: str
    production_files: bool = False
    """The fixture's production data are git-ignored files that sit next to the clone."""


CASES = [
    Case(
        "rr_seeds",
        ".",
        "models/marts/customers.sql",
        "where status <> 'returned'",
        "where status not in ('returned', 'cancelled')",
        "customers",
        frozenset(),
        "customers.lifetime_value",
    ),
    Case(
        "rr_packages",
        ".",
        "models/marts/fct_orders.sql",
        "coalesce(p.paid_amount, 0) as paid_amount,",
        "coalesce(p.paid_amount, 0) * 1.0 as paid_amount,",
        "fct_orders",
        frozenset(),
        "fct_orders",
    ),
    Case(
        "fs_files",
        ".",
        "models/marts/customer_orders.sql",
        "count(o.order_id) as orders,",
        "count(distinct o.order_id) as orders,",
        "customer_orders",
        frozenset(),
        "customer_orders.orders",
        production_files=True,
    ),
    Case(
        "ir_transform",
        "transform",
        "models/customer_scores.py",
        "* 10",
        "* 12",
        "customer_scores",
        frozenset({"customer_segments", "top_customers"}),
        "customer_segments",
    ),
    Case(
        "ir_blocks",
        ".",
        "models/marts/orders.sql",
        "count(p.payment_id) as payment_count",
        "count(distinct p.payment_id) as payment_count",
        "orders",
        frozenset(),
        "orders.payment_count",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.fixture for c in CASES])
def test_a_new_user_runs_impact_lineage_and_review(tmp_path: Path, case: Case) -> None:
    repo = make_project_repo(case.fixture, tmp_path, project_subdir=case.subdir)
    assert not (repo.project / "target").exists()
    assert not (repo.project / ".dataops").exists()
    if case.production_files:
        from tests.sampling.test_file_sources import _with_production_files

        _with_production_files(repo)
    repo.checkout_new_branch("feature/sweep")
    repo.replace(case.file, case.old, case.new)
    repo.commit("a realistic change")

    impact = repo.run("impact", "--base", "main", "--json", cwd=repo.root)
    assert impact.returncode in (0, 3), impact.stderr
    data = json.loads(impact.stdout)
    statuses = {m["name"]: m for m in data["models"]}
    assert case.changed in statuses, f"impact missed {case.changed}: {sorted(statuses)}"
    flagged = set(statuses) | {n for m in data["models"] for n in m["impacted"]["models"]}
    assert case.downstream <= flagged, f"impact missed {case.downstream - flagged}"

    lineage = repo.run("lineage", case.lineage, "--json", cwd=repo.root)
    assert lineage.returncode == 0, lineage.stderr
    assert json.loads(lineage.stdout)

    review = repo.run("review", "--json", cwd=repo.root)
    assert review.returncode in (0, 3), review.stderr
    report = json.loads(review.stdout)
    assert report["verdict"] in ("pass", "blocked"), report.get("error")
    assert report["error"] is None
    reported = {m["name"]: m for m in report["models"]}
    assert case.changed in reported, sorted(reported)
    assert reported[case.changed]["status"] == "modified"
    assert case.downstream <= set(reported), sorted(reported)
