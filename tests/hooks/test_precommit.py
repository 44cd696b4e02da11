"""The hooks run by the real `pre-commit` in a temporary git repository holding sample_project (in
a subfolder, and at the root): each passes on a clean change and fails, with the right message,
on a syntax error, a breaking edit and a model without a key."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.hooks.conftest import BIN, REPO_ROOT, HookRepo, git, local_hooks_config

pytestmark = pytest.mark.slow

SQL = "dataops-sql-check"
GUARD = "dataops-impact-guard"
KEYS = "dataops-keys-and-tests"


def _ours(output: str) -> list[str]:
    """Lines our hooks printed (pre-commit's own status lines filtered out)."""
    return [
        line
        for line in output.splitlines()
        if line.strip()
        and not line.startswith(("- hook id", "- exit code", "- duration"))
        and "...." not in line
    ]


def test_hook_manifest_and_local_config_validate(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo()
    manifest = subprocess.run(
        [str(BIN / "pre-commit"), "validate-manifest", str(REPO_ROOT / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert manifest.returncode == 0, manifest.stdout + manifest.stderr
    config = repo.pre_commit("validate-config", ".pre-commit-config.yaml")
    assert config.returncode == 0, config.stdout
    own = subprocess.run(
        [str(BIN / "pre-commit"), "validate-config", str(REPO_ROOT / ".pre-commit-config.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert own.returncode == 0, own.stdout + own.stderr


def test_clean_change_passes_every_fast_hook_silently(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    # A value change (partial) and a new documented column: nothing breaking, keys intact.
    repo.edit(
        "models/staging/stg_orders.sql",
        "lower(trim(status)) as status,",
        "lower(trim(status)) as status,\n    upper(trim(channel)) as channel_code,",
    )
    repo.edit(
        "models/staging/stg_orders.sql", "lower(trim(status)) as status", "lower(status) as status"
    )
    repo.edit(
        "models/marts/dim_customers.sql",
        "cast(customers.city as {{ dbt.type_string() }}) as city,",
        "cast(initcap(customers.city) as {{ dbt.type_string() }}) as city,",
    )
    repo.stage()
    result = repo.pre_commit("run")
    assert result.returncode == 0, result.stdout
    for hook_name in ("render and parse", "acknowledged", "primary key"):
        assert any(hook_name in line and "Passed" in line for line in result.stdout.splitlines())
    assert _ours(result.stdout) == [], result.stdout


def test_syntax_error_fails_sql_check_with_location(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    repo.edit(
        "models/staging/stg_orders.sql",
        "lower(trim(status)) as status,",
        "lower(trim(status) as status,",
    )
    repo.stage()
    result = repo.pre_commit("run", SQL)
    assert result.returncode != 0
    path = repo.rel("models/staging/stg_orders.sql")
    assert f"{path}:14:24: syntax error: Expecting ) near 'as'" in result.stdout
    assert "14 |     lower(trim(status) as status," in result.stdout
    # A Jinja error is located too.
    git(repo.root, "checkout", "--", ".")
    repo.edit("models/marts/dim_customers.sql", "ref('stg_customers')", "ref('stg_customer')")
    repo.stage()
    result = repo.pre_commit("run", SQL)
    assert result.returncode != 0
    assert (
        f"{repo.rel('models/marts/dim_customers.sql')}:6:22: cannot render: "
        "ref('stg_customer') names no model" in result.stdout
    )


def test_breaking_change_to_contract_fails_until_approved(
    hook_repo: Callable[..., HookRepo],
) -> None:
    repo = hook_repo("analytics")
    repo.edit(
        "models/marts/dim_customers.sql",
        "    cast(customers.email as {{ dbt.type_string() }}) as email,\n",
        "",
    )
    repo.stage()
    result = repo.pre_commit("run", GUARD)
    assert result.returncode != 0
    path = repo.rel("models/marts/dim_customers.sql")
    assert f"{path}:21:1: breaking change to dim_customers [contract broken]" in result.stdout
    assert "removed columns: email" in result.stdout
    assert "feeds exposure customer_health_dashboard" in result.stdout
    # Approve the exact finding with the command the hook printed, stage the approval: passes.
    from dataops_dev.hooks import load_project_config, static_findings

    loaded = load_project_config(repo.project)
    findings = static_findings(loaded, [repo.path("models/marts/dim_customers.sql")])
    assert [f.model for f in findings] == ["dim_customers"]
    command = (
        f"dataops-dev --project-dir analytics decide approve {findings[0].fingerprint} "
        '--note "why this is expected"'
    )
    assert command in result.stdout
    decide = subprocess.run(
        [
            str(BIN / "dataops-dev"),
            "--project-dir",
            "analytics",
            "decide",
            "approve",
            findings[0].fingerprint[:10],
            "--note",
            "CRM sync no longer reads it",
        ],
        cwd=repo.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert decide.returncode == 0, decide.stdout + decide.stderr
    assert (repo.project / "dataops.approvals.yml").is_file()
    repo.stage()
    approved = repo.pre_commit("run", GUARD)
    assert approved.returncode == 0, approved.stdout
    # Editing the model again invalidates the approval.
    repo.edit(
        "models/marts/dim_customers.sql",
        "    cast(customers.phone as {{ dbt.type_string() }}) as phone,\n",
        "",
    )
    repo.stage()
    again = repo.pre_commit("run", GUARD)
    assert again.returncode != 0
    assert "removed columns: email, phone" in again.stdout


def test_breaking_upstream_change_prints_impacted_downstream(
    hook_repo: Callable[..., HookRepo],
) -> None:
    repo = hook_repo("analytics")
    repo.edit("models/staging/stg_orders.sql", "    store_id,\n", "")
    repo.stage()
    result = repo.pre_commit("run", GUARD)
    assert result.returncode != 0
    assert f"{repo.rel('models/staging/stg_orders.sql')}:10:1: breaking change to stg_orders" in (
        result.stdout
    )
    assert "downstream models:" in result.stdout
    assert "impacted columns:" in result.stdout
    assert "revenue_dashboard" in result.stdout


def test_model_without_key_fails_keys_hook(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    repo.write(
        "models/marts/order_status_counts.sql",
        "select status, count(*) as orders\nfrom {{ ref('stg_orders') }}\ngroup by status\n",
    )
    repo.stage()
    result = repo.pre_commit("run", KEYS)
    assert result.returncode != 0
    path = repo.rel("models/marts/order_status_counts.sql")
    assert f"{path}:1:1: model order_status_counts: no primary key" in result.stdout
    # The other fast hooks accept the new model (it is additive and parses).
    assert repo.pre_commit("run", SQL).returncode == 0
    assert repo.pre_commit("run", GUARD).returncode == 0
    repo.write(
        "models/marts/_order_status_counts.yml",
        "version: 2\nmodels:\n  - name: order_status_counts\n    columns:\n"
        "      - name: status\n        data_tests: [unique, not_null]\n",
    )
    repo.stage()
    fixed = repo.pre_commit("run", KEYS)
    assert fixed.returncode == 0, fixed.stdout


def test_project_at_repository_root_and_commit_is_blocked(
    hook_repo: Callable[..., HookRepo],
) -> None:
    repo = hook_repo("")
    install = repo.pre_commit("install")
    assert install.returncode == 0, install.stdout + install.stderr
    repo.edit(
        "models/marts/dim_customers.sql",
        "    cast(customers.email as {{ dbt.type_string() }}) as email,\n",
        "",
    )
    repo.stage()
    commit = subprocess.run(
        ["git", "commit", "-m", "drop email"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "T",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "T",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "PRE_COMMIT_HOME": str(repo.root.parent / ".pre-commit-home"),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert commit.returncode != 0
    assert "models/marts/dim_customers.sql:21:1: breaking change to dim_customers" in (
        commit.stdout + commit.stderr
    )
    assert git(repo.root, "rev-list", "--count", "HEAD") == "1"


def test_deleting_a_contracted_model_fails_the_guard(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    git(repo.root, "rm", "-q", repo.rel("models/marts/customer_segments.sql"))
    # The YAML still describes it; pre-commit passes the YAML (changed) but not the deleted file.
    repo.edit("models/marts/_marts__models.yml", "One row per customer", "One row per customer.")
    repo.stage()
    result = repo.pre_commit("run", GUARD)
    assert result.returncode != 0
    assert "breaking change to customer_segments" in result.stdout
    assert "model removed" in result.stdout


def test_review_hook_fails_on_blocking_findings_until_approved(
    sample_project_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pre-push/manual hook runs the real review (sample, baseline and branch builds)."""
    monkeypatch.setenv("DATAOPS_SALT", "hook-test-salt")
    project = sample_project_copy
    (project / ".gitignore").write_text(".dataops/\ntarget/\nlogs/\n*.duckdb\n", "utf-8")
    (project / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump(local_hooks_config(), sort_keys=False), "utf-8"
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "hooks")
    git(project, "checkout", "-q", "-b", "feature/drop-opened-year")
    repo = HookRepo(project, project)
    repo.edit(
        "models/marts/dim_stores.sql",
        "    cast(extract(year from stores.opened_at) as integer) as opened_year,\n",
        "",
    )
    git(project, "commit", "-q", "-am", "dim_stores: drop opened_year")
    result = repo.pre_commit("run", "dataops-review", "--hook-stage", "manual")
    assert result.returncode != 0, result.stdout
    assert "models/marts/dim_stores.sql:1:1: breaking_change:" in result.stdout
    fingerprints = re.findall(r"dataops-dev decide approve ([0-9a-f]{16})", result.stdout)
    assert fingerprints, result.stdout
    for fingerprint in fingerprints:
        decide = subprocess.run(
            [str(BIN / "dataops-dev"), "decide", "approve", fingerprint, "--note", "unused"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert decide.returncode == 0, decide.stdout + decide.stderr
    git(project, "add", "dataops.approvals.yml")
    git(project, "commit", "-q", "-m", "approve")
    approved = repo.pre_commit("run", "dataops-review", "--hook-stage", "manual")
    assert approved.returncode == 0, approved.stdout
    assert "models/marts/dim_stores.sql:1:1" not in approved.stdout


def test_fresh_clone_guard_note_shows_through_pre_commit(
    hook_repo: Callable[..., HookRepo],
) -> None:
    """pre-commit hides a passing hook's output unless the hook is `verbose`: the impact
    guard's skip note must still reach the user."""
    repo = hook_repo("analytics")
    (repo.project / ".dataops" / "production" / "manifest.json").unlink()
    repo.edit(
        "models/staging/stg_orders.sql", "lower(trim(status)) as status", "lower(status) as status"
    )
    repo.stage()
    result = repo.pre_commit("run")
    assert result.returncode == 0, result.stdout
    assert _ours(result.stdout) == [
        "dataops-dev: impact-guard skipped (analytics): no base manifest yet; run "
        "`dataops-dev --project-dir analytics impact --base main` once to enable it"
    ], result.stdout
