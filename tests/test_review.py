"""review -> decide -> deploy end to end on sample_project (DuckDB), with hand-computed truth."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from dataops_dev.config import load_config
from dataops_dev.demo import DEMO_EDITS, Edit, apply_edits, build_production
from dataops_dev.environments import Environments
from tests.conftest import SAMPLE_PROJECT, git, run_cli

# One worker runs these in order: they share a project and each step builds on the last.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("review-duckdb")]

SALT = {"DATAOPS_SALT": "review-test-salt"}
BRANCH = "feature/revenue-on-shipment"
# On top of the demo's change: customer PII flows into diff examples (masked values only).
PII_EDITS = (
    Edit(
        "models/staging/stg_customers.sql",
        "nullif(lower(trim(email)), '') as email",
        "nullif(upper(trim(email)), '') as email",
        "upper-case e-mails",
    ),
    Edit(
        "models/staging/stg_customers.sql",
        "nullif(trim(phone), '') as phone",
        "nullif(replace(trim(phone), '-', ' '), '') as phone",
        "phones with spaces",
    ),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sample_project_prod: Path) -> Path:
    """sample_project with production built, on a branch carrying the demo change + PII edits."""
    project = tmp_path_factory.mktemp("review") / "sample_project"
    shutil.copytree(
        SAMPLE_PROJECT,
        project,
        ignore=shutil.ignore_patterns("target", "logs", ".dataops", "*.duckdb", "*.duckdb.wal"),
    )
    shutil.copy(sample_project_prod, project / "prod.duckdb")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production code")
    os.environ.update(SALT)
    build_production(load_config(project))
    git(project, "checkout", "-q", "-b", BRANCH)
    apply_edits(project, DEMO_EDITS + PII_EDITS)
    git(project, "commit", "-q", "-am", "revenue on shipment")
    return project


@pytest.fixture(scope="module")
def first_review(project: Path) -> tuple[int, dict, str]:
    result = run_cli("review", "--json", cwd=project, env=SALT)
    return result.returncode, json.loads(result.stdout), result.stderr


def _env_query(project: Path, env: str, sql: str) -> list[tuple]:
    envs = Environments(load_config(project))
    con = duckdb.connect(":memory:")
    try:
        samples = sorted((project / ".dataops" / "samples").glob("*.duckdb"))
        con.execute(f"ATTACH '{samples[-1]}' AS dataops_source (READ_ONLY)")
        con.execute(f"ATTACH '{envs.database_path(env)}' AS \"{env}\" (READ_ONLY)")
        con.execute(f'USE "{env}"')
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_review_finds_classifies_and_blocks(first_review: tuple[int, dict, str]) -> None:
    code, report, stderr = first_review
    assert code == 3, stderr
    assert report["schema_version"] == 1
    assert report["verdict"] == "blocked"
    assert report["head"]["ref"] == BRANCH
    models = {m["name"]: m for m in report["models"]}
    assert models["fct_orders"]["change"] == "partial"
    assert set(models["fct_orders"]["changed_columns"]) >= {"is_revenue", "order_size_bucket"}
    assert models["customer_segments"]["change"] == "additive"
    added = [c["name"] for c in models["customer_segments"]["schema"]["added"]]
    assert added == ["is_high_value"]
    assert models["store_performance"]["change"] == "breaking"
    assert models["daily_revenue"]["status"] == "impacted"
    assert models["customer_lifetime_value"]["status"] == "impacted"
    assert "revenue_dashboard" in {e["name"] for e in report["exposures"]}
    blocking = [f for m in report["models"] for f in m["findings"] if f["severity"] == "blocking"]
    assert [(f["kind"], f["model"]) for f in blocking] == [("breaking_change", "store_performance")]
    assert all(len(f["fingerprint"]) == 16 for m in report["models"] for f in m["findings"])
    assert report["lineage"], "lineage edges are part of the report"
    assert set(report["timings"]) >= {"sample", "baseline", "branch_build", "impact", "diffs"}


def test_diff_numbers_match_hand_computed_truth(
    project: Path, first_review: tuple[int, dict, str]
) -> None:
    _code, report, _ = first_review
    base_env = report["base"]["environment"]
    fct = {
        c["name"]: c
        for c in next(m for m in report["models"] if m["name"] == "fct_orders")["diff"]["columns"]
    }
    (placed,) = _env_query(
        project, base_env, "select count(*) from main.fct_orders where status = 'placed'"
    )[0]
    (bucket,) = _env_query(
        project,
        base_env,
        "select count(*) from main.fct_orders where net_amount >= 50 and net_amount < 75",
    )[0]
    (total,) = _env_query(project, base_env, "select count(*) from main.fct_orders")[0]
    assert placed > 0 and bucket > 0
    assert fct["is_revenue"]["changed"] == placed
    assert fct["order_size_bucket"]["changed"] == bucket
    assert fct["is_revenue"]["compared"] == total
    rows = next(m for m in report["models"] if m["name"] == "fct_orders")["diff"]["rows"]
    assert (rows["base"], rows["head"], rows["added"], rows["removed"]) == (total, total, 0, 0)
    changed_rows = _env_query(
        project,
        base_env,
        "select count(*) from main.fct_orders where status = 'placed' or (net_amount >= 50 and net_amount < 75)",
    )[0][0]
    assert rows["changed"] == changed_rows


def test_outputs_never_contain_raw_pii(project: Path, first_review: tuple[int, dict, str]) -> None:
    code, report, _ = first_review
    customers = next(m for m in report["models"] if m["name"] == "stg_customers")
    email = next(c for c in customers["diff"]["columns"] if c["name"] == "email")
    assert email["changed"] > 0 and email["examples"], "the scan needs PII in the examples"
    con = duckdb.connect(str(project / "prod.duckdb"), read_only=True)
    try:
        raw = {
            str(v).strip().lower()
            for (v,) in con.execute(
                "select email from raw.customers union select phone from raw.customers "
                "union select card_number from raw.payments union select manager_email from raw.stores"
            ).fetchall()
            if v is not None and len(str(v).strip()) >= 6
        }
    finally:
        con.close()
    assert len(raw) > 100
    import io

    from rich.console import Console

    from dataops_dev.cli.report import render_string
    from dataops_dev.report.model import Report
    from dataops_dev.report.text import render_text

    reports = project / ".dataops" / "reports"
    files = {p.name: p.read_text("utf-8") for p in reports.rglob("report.*")}
    assert {"report.json", "report.md", "report.html"} <= set(files)
    saved = Report.load(next(reports.rglob("report.json")))
    console = Console(file=io.StringIO(), width=160, no_color=True)
    render_text(saved, console)
    texts = {
        **files,
        "text": console.file.getvalue(),  # type: ignore[attr-defined]
        **{fmt: render_string(saved, fmt) for fmt in ("json", "markdown", "html")},
    }
    for name, text in texts.items():
        assert text, name
        lowered = text.lower()
        leaked = [value for value in raw if value in lowered]
        assert leaked == [], f"raw production values in {name}: {leaked[:3]}"


def test_decide_then_review_reuses_baseline_and_passes(
    project: Path, first_review: tuple[int, dict, str]
) -> None:
    _code, report, _ = first_review
    (finding,) = [f for m in report["models"] for f in m["findings"] if f["severity"] == "blocking"]
    refused = run_cli("deploy", "--dry-run", "--json", cwd=project, env=SALT)
    assert refused.returncode == 3
    assert json.loads(refused.stdout)["allowed"] is False

    no_note = run_cli("decide", "approve", finding["fingerprint"][:8], cwd=project, env=SALT)
    assert no_note.returncode == 2 and "note" in no_note.stderr
    approved = run_cli(
        "decide",
        "approve",
        finding["fingerprint"][:8],
        "--note",
        "stores without orders go",
        cwd=project,
        env=SALT,
    )
    assert approved.returncode == 0, approved.stderr
    assert finding["fingerprint"] in (project / "dataops.approvals.yml").read_text()

    again = run_cli("review", "--json", cwd=project, env=SALT)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["verdict"] == "pass"
    assert second["base"]["reused"] is True
    # Recording a decision changes nothing the branch build depends on: it is reused too.
    assert second["head"]["reused"] is True
    assert all(isinstance(seconds, float) for seconds in second["timings"].values())
    assert second["base"]["environment"] == report["base"]["environment"]
    approved_findings = [f for m in second["models"] for f in m["findings"] if f["approval"]]
    assert [f["fingerprint"] for f in approved_findings] == [finding["fingerprint"]]


def test_deploy_failing_tests_leave_production_unchanged_then_deploy(project: Path) -> None:
    # Runs after the approval above (module order): the review passes now.
    production = project / "prod.duckdb"
    before = sha256(production)
    plan = run_cli("deploy", "--dry-run", "--json", cwd=project, env=SALT)
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert planned["allowed"] is True
    assert [m["name"] for m in planned["models"]][:1] != []

    # A new singular test that fails: approved on the review, it must still stop the deploy.
    failing_test = project / "tests" / "assert_no_revenue_days_over_zero.sql"
    failing_test.write_text("select * from {{ ref('daily_revenue') }} where net_revenue > 0\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "a test production data will fail")
    review = run_cli("review", "--json", cwd=project, env=SALT)
    report = json.loads(review.stdout)
    failed = [f for m in report["models"] for f in m["findings"] if f["kind"] == "test_failed"]
    assert failed and all(f["severity"] == "blocking" for f in failed), review.stderr
    for finding in failed:
        decided = run_cli(
            "decide",
            "approve",
            finding["fingerprint"],
            "--note",
            "accepted for the test",
            cwd=project,
            env=SALT,
        )
        assert decided.returncode == 0, decided.stderr
    attempt = run_cli("deploy", cwd=project, env=SALT)
    assert attempt.returncode == 1
    assert "production is unchanged" in attempt.stderr
    assert sha256(production) == before

    failing_test.unlink()
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "drop the failing test")
    assert run_cli("review", cwd=project, env=SALT).returncode == 0
    deployed = run_cli("deploy", "--json", cwd=project, env=SALT)
    assert deployed.returncode == 0, deployed.stderr
    assert sha256(production) != before
    con = duckdb.connect(str(production), read_only=True)
    try:
        revenue_placed = con.execute(
            "select count(*) from main.fct_orders where status = 'placed' and is_revenue"
        ).fetchone()[0]
        columns = {r[0] for r in con.execute("describe main.customer_segments").fetchall()}
    finally:
        con.close()
    assert revenue_placed == 0
    assert "is_high_value" in columns
    record = json.loads(deployed.stdout)["record"]
    assert Path(record).exists()
    assert (project / ".dataops" / "production" / "manifest.json").exists()
    assert not (project / "prod.duckdb.wal").exists()
    # Neither the failed attempt nor the deploy leaves a copy of production or dbt's log behind.
    assert not list((project / ".dataops" / "deploy").iterdir())


def test_a_warm_review_after_an_edit_extends_the_branch_and_equals_a_cold_one(
    project: Path,
) -> None:
    """The branch environment after a one-model edit rebuilds only that model and what reads
    it, keeping the rest of its last build: the report is the one a cold build gives."""
    assert run_cli("review", cwd=project, env=SALT).returncode in (0, 3)  # settle both sides
    model = project / "models" / "marts" / "fct_orders.sql"
    text = model.read_text()
    assert "net_amount < 75" in text
    model.write_text(text.replace("net_amount < 75", "net_amount < 80"))
    git(project, "commit", "-q", "-am", "another threshold")

    warm = run_cli("review", "--json", cwd=project, env=SALT)
    warm_report = json.loads(warm.stdout)
    head_env = warm_report["head"]["environment"]
    meta = json.loads((project / ".dataops" / "envs" / f"{head_env}.json").read_text())
    assert meta["last_build"]["extended"] is True, warm.stderr
    statuses = {n["unique_id"]: n["status"] for n in meta["last_build"]["nodes"]}
    # Kept from the last build (the PII edits), not rebuilt: still recorded.
    assert statuses["model.sample_project.dim_customers"] == "success"

    assert run_cli("env", "drop", head_env, cwd=project, env=SALT).returncode == 0
    cold = run_cli("review", "--json", cwd=project, env=SALT)
    cold_report = json.loads(cold.stdout)
    meta = json.loads((project / ".dataops" / "envs" / f"{head_env}.json").read_text())
    assert meta["last_build"]["extended"] is False
    assert cold_report["base"]["reused"] is True
    assert (warm.returncode, _findings(warm_report)) == (cold.returncode, _findings(cold_report))


def _findings(report: dict) -> dict:
    """What a review found, without its timings and environments' build times."""
    return {
        "verdict": report["verdict"],
        "models": [
            {
                "name": m["name"],
                "change": m.get("change"),
                "diff": m.get("diff"),
                "tests": [(t["unique_id"], t["status"]) for t in m.get("tests") or ()],
                "findings": [(f["kind"], f["severity"], f["fingerprint"]) for f in m["findings"]],
            }
            for m in report["models"]
        ],
        "lineage": report.get("lineage"),
    }
