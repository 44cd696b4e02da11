"""`review` on dbt projects shaped like real ones, met as a new user meets them: a fresh clone,
no target/, no dbt_packages/, no .dataops/ (fixtures tests/fixtures/projects/rr_*)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.real_projects import ProjectRepo, make_project_repo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("review-real-projects")]


def _review(repo: ProjectRepo) -> tuple[int, dict[str, Any], str]:
    result = repo.run("review", "--json")
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, report, result.stderr


def _env(repo: ProjectRepo, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(repo.path(f".dataops/envs/{name}.json").read_text())
    return data


def _built(env: dict[str, Any]) -> dict[str, str]:
    return {n["unique_id"]: n["status"] for n in env["last_build"]["nodes"]}


@pytest.fixture(scope="module")
def packages_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectRepo]:
    """One fresh clone of rr_packages; each test reviews its own branch off main (the
    baseline, built once, is shared)."""
    yield make_project_repo("rr_packages", tmp_path_factory.mktemp("rr_packages"))


def _branch_off_main(repo: ProjectRepo, name: str) -> None:
    repo.git("checkout", "-q", "main")
    repo.checkout_new_branch(name)


def test_review_builds_a_project_with_local_packages_from_a_fresh_clone(
    packages_repo: ProjectRepo,
) -> None:
    repo = packages_repo
    assert not repo.path("dbt_packages").exists()
    _branch_off_main(repo, "feature/upper-status")
    repo.replace("models/marts/fct_orders.sql", "    o.status,", "    upper(o.status) as status,")
    repo.commit("fct_orders: upper-case statuses")

    code, report, stderr = _review(repo)

    assert code == 0, stderr
    assert report["verdict"] == "pass"
    fct = next(m for m in report["models"] if m["name"] == "fct_orders")
    status = next(c for c in fct["diff"]["columns"] if c["name"] == "status")
    assert status["changed"] == fct["diff"]["rows"]["head"] > 0
    # The package's dispatched macro compiled to its DuckDB implementation.
    manifest = json.loads(
        repo.path(f".dataops/envs/{report['base']['environment']}/target/manifest.json").read_text()
    )
    compiled = manifest["nodes"]["model.rr_packages.stg_payments"]["compiled_code"]
    assert "cast(amount_cents as decimal(18, 4)) / 100" in compiled
    baseline = _built(_env(repo, report["base"]["environment"]))
    assert baseline["model.rr_packages.stg_payments"] == "success"
    assert baseline["unit_test.rr_packages.stg_payments.payments_are_converted_from_cents"] == (
        "pass"
    )
    # The baseline's exported tree has its own install, its local package its own code.
    code_dirs = list(repo.path(".dataops/code").iterdir())
    assert len(code_dirs) == 1
    installed = code_dirs[0] / "dbt_packages" / "rr_utils"
    assert installed.resolve() == (code_dirs[0] / "packages" / "rr_utils").resolve()
    # Only the modified model was built on the branch; its unit test ran there.
    branch = _built(_env(repo, report["head"]["environment"]))
    models = {uid for uid in branch if uid.startswith("model.")}
    assert models == {"model.rr_packages.fct_orders"}
    assert branch["unit_test.rr_packages.fct_orders.unpaid_orders_have_zero_paid_amount"] == "pass"
    # The working tree is as the user left it but for the (git-ignored) install.
    assert repo.git("status", "--porcelain") == ""


def test_a_branch_that_breaks_a_relationships_test_is_blocked(packages_repo: ProjectRepo) -> None:
    repo = packages_repo
    _branch_off_main(repo, "feature/orphan-orders")
    repo.replace(
        "models/marts/fct_orders.sql",
        "    o.customer_id,",
        "    case when o.order_id % 3 = 0 then o.customer_id + 100000 else o.customer_id end"
        " as customer_id,",
    )
    repo.commit("fct_orders: a customer id the dimension does not know")

    code, report, stderr = _review(repo)

    assert code == 3, stderr
    assert report["verdict"] == "blocked"
    fct = next(m for m in report["models"] if m["name"] == "fct_orders")
    test = next(t for t in fct["tests"] if t["name"].startswith("relationships_fct_orders"))
    env = repo.path(f".dataops/envs/{report['head']['environment']}.duckdb")
    with duckdb.connect(str(env), read_only=True) as connection:
        (orphans,) = connection.execute(
            "select count(*) from main.fct_orders where order_id % 3 = 0"
        ).fetchone() or (0,)
    assert orphans > 0
    assert test["status"] == "fail"
    assert test["failures"] == orphans
    assert test["new"] is True
    blocking = [f for f in fct["findings"] if f["kind"] == "test_failed"]
    assert blocking and blocking[0]["severity"] == "blocking"
    # The baseline's run of the same test passed: the failure is the branch's.
    base = _built(_env(repo, report["base"]["environment"]))
    assert base[test["unique_id"]] == "pass"


def test_a_branch_dbt_cannot_parse_is_a_blocking_finding(packages_repo: ProjectRepo) -> None:
    repo = packages_repo
    _branch_off_main(repo, "feature/rename-dimension")
    repo.git("mv", "models/marts/dim_customers.sql", "models/marts/dim_clients.sql")
    repo.replace("models/marts/_marts.yml", "name: dim_customers", "name: dim_clients")
    repo.replace("models/marts/_marts.yml", "ref('dim_customers')", "ref('dim_clients')")
    repo.commit("rename dim_customers (the exposure still names it)")

    code, report, stderr = _review(repo)

    assert code == 3, stderr
    assert report["verdict"] == "blocked"
    findings = [f for m in report["models"] for f in m["findings"]]
    assert len(findings) == 1
    (finding,) = findings
    assert finding["severity"] == "blocking"
    assert "does not parse" in finding["title"]
    assert "revenue_dashboard" in finding["detail"]
    assert "dim_customers" in finding["detail"]
    assert "Traceback" not in stderr


@pytest.fixture
def seeds_repo(tmp_path: Path) -> ProjectRepo:
    return make_project_repo("rr_seeds", tmp_path)


def test_review_builds_seeds_enabled_by_target_and_seeds_that_are_sources(
    seeds_repo: ProjectRepo,
) -> None:
    repo = seeds_repo
    repo.checkout_new_branch("feature/lower-country")
    repo.replace("models/marts/customers.sql", "    c.country,", "    lower(c.country) as country,")
    repo.commit("customers: lower-case countries")

    code, report, stderr = _review(repo)

    assert code == 0, stderr
    base_env = report["base"]["environment"]
    base = _built(_env(repo, base_env))
    # `enabled: target.name == 'prod'`: environments build with production's target name.
    assert base["seed.rr_seeds.country_regions"] == "success"
    assert any(
        uid.startswith("test.rr_seeds.not_null_customers_region") and status == "pass"
        for uid, status in base.items()
    )
    # raw_customers / raw_orders are seeds *and* the sources: the sample stands for them.
    assert "seed.rr_seeds.raw_customers" not in base
    assert any(
        uid.startswith("test.rr_seeds.unique_raw_customers_id") and status == "pass"
        for uid, status in base.items()
    )
    with duckdb.connect(str(repo.path(f".dataops/envs/{base_env}.duckdb")), read_only=True) as db:
        kinds = dict(
            db.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'raw'"
            ).fetchall()
        )
    assert kinds == {"raw_customers": "VIEW", "raw_orders": "VIEW"}
    customers = next(m for m in report["models"] if m["name"] == "customers")
    country = next(c for c in customers["diff"]["columns"] if c["name"] == "country")
    assert country["changed"] == customers["diff"]["rows"]["head"] > 0


def test_a_branch_that_edits_a_seed_the_sample_holds_builds_it(seeds_repo: ProjectRepo) -> None:
    repo = seeds_repo
    repo.checkout_new_branch("feature/seed-edit")
    repo.replace(
        "seeds/raw/raw_customers.csv",
        "1,First1,Last1,person1@example.com,DE",
        "1,First1,Last1,person1@example.com,ES",
    )
    repo.commit("raw_customers: customer 1 moved")

    code, report, stderr = _review(repo)

    assert code == 0, stderr
    head_env = report["head"]["environment"]
    branch = _built(_env(repo, head_env))
    assert branch["seed.rr_seeds.raw_customers"] == "success"
    # What reads the seed through source() is rebuilt on the branch's seed.
    assert branch["model.rr_seeds.stg_customers"] == "success"
    assert branch["model.rr_seeds.customers"] == "success"
    assert "model.rr_seeds.stg_orders" not in branch
    with duckdb.connect(str(repo.path(f".dataops/envs/{head_env}.duckdb")), read_only=True) as db:
        (kind,) = db.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'raw' and table_name = 'raw_customers'"
        ).fetchone() or ("",)
    assert kind == "BASE TABLE"
