"""A branch under review is untrusted: it cannot unmask PII or move production before the merge.

Real sample_project copies in real git repositories; real dbt parses and DuckDB samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from dataops_dev.config import load_config
from dataops_dev.dbt.project import load_profile_target, working_tree_target
from dataops_dev.report.model import FindingKind, Severity
from dataops_dev.sources import ensure_sample
from dataops_dev.trust import sample_policy, trust_findings
from tests.conftest import git, run_cli

SALT = "trust-boundary-test-salt"
SOURCES = "models/staging/_shop__sources.yml"


@pytest.fixture
def salted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAOPS_SALT", SALT)


def _commit(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


def _prod_values(project: Path, column: str) -> set[str]:
    with duckdb.connect(str(project / "prod.duckdb"), read_only=True) as con:
        rows = con.execute(f'select distinct "{column}" from raw.customers').fetchall()
    return {str(v) for (v,) in rows if v is not None}


def _sample_values(sample: Path, column: str) -> list[str]:
    with duckdb.connect(str(sample), read_only=True) as con:
        rows = con.execute(f'select "{column}" from raw.customers').fetchall()
    return [str(v) for (v,) in rows if v is not None]


def _set_email_meta(project: Path, value: str) -> None:
    path = project / SOURCES
    text = path.read_text()
    assert text.count("pii: email") == 1
    path.write_text(text.replace("pii: email", f"pii: {value}"))


@pytest.mark.slow
def test_branch_setting_pii_false_is_blocking_and_the_sample_still_masks(
    sample_project_copy: Path, salted: None
) -> None:
    project = sample_project_copy
    git(project, "checkout", "-q", "-b", "unmask-emails")
    _set_email_meta(project, "false")
    _commit(project, "stop masking e-mails")
    loaded = load_config(project)

    policy = sample_policy(loaded)
    assert policy.base is not None and policy.label.startswith("stricter of main@")
    findings = trust_findings(loaded)
    assert [(f.kind, f.severity) for f in findings] == [
        (FindingKind.MASKING_POLICY_CHANGED, Severity.BLOCKING)
    ]
    assert "shop.customers.email" in findings[0].title and '"pii": false' in findings[0].detail

    record = ensure_sample(loaded)
    raw = _prod_values(project, "email")
    masked = _sample_values(Path(record.location), "email")
    assert masked and not raw.intersection(masked)
    assert not {v.strip().lower() for v in raw}.intersection(masked)
    coverage = {t.table: dict(t.masked) for t in record.tables}
    assert coverage["shop.customers"]["email"] == "email"
    assert record.policy == policy.label

    shown = run_cli("sample", cwd=project, env={"DATAOPS_SALT": SALT})
    assert shown.returncode == 0, shown.stderr
    assert f"masking policy: {policy.label}" in shown.stdout


LOCK = """\
version: 1
columns:
  shop.customers.email:
    transformer: email
    kind: email
    reason: meta
  shop.customers.customer_id:
    transformer: passthrough
    reason: key
"""


@pytest.mark.slow
def test_branch_editing_lock_and_masking_config_is_blocking_and_new_columns_are_scrambled(
    sample_project_copy: Path, salted: None
) -> None:
    project = sample_project_copy
    (project / "dataops_dev.yml").write_text("version: 1\n")
    (project / "dataops.lock.yml").write_text(LOCK)
    _commit(project, "reviewed masking decisions")
    # production gains a column nobody has confirmed: a small category of real nicknames
    with duckdb.connect(str(project / "prod.duckdb")) as con:
        con.execute("alter table raw.customers add column nickname varchar default 'Bobby'")

    git(project, "checkout", "-q", "-b", "unmask-by-lock")
    (project / "dataops.lock.yml").write_text(
        LOCK.replace("transformer: email", "transformer: passthrough")
    )
    (project / "dataops_dev.yml").write_text(
        "version: 1\n"
        "sample:\n  salt_env: HOME\n"
        "masking:\n  columns:\n    shop.customers.phone: passthrough\n"
    )
    _commit(project, "keep e-mails and phones as they are")
    loaded = load_config(project)

    findings = trust_findings(loaded)
    titles = sorted(f.title for f in findings)
    assert all(f.kind is FindingKind.MASKING_POLICY_CHANGED and f.blocking for f in findings)
    assert any("dataops.lock.yml for shop.customers.email" in t for t in titles)
    assert any("masking.columns.shop.customers.phone" in t for t in titles)
    assert any("sample.salt_env" in t for t in titles)

    record = ensure_sample(loaded)  # the salt comes from the base's DATAOPS_SALT, not HOME
    for column in ("email", "phone"):
        raw = _prod_values(project, column)
        masked = _sample_values(Path(record.location), column)
        assert masked and not raw.intersection(masked), column
    nicknames = set(_sample_values(Path(record.location), "nickname"))
    assert nicknames and "Bobby" not in nicknames
    decided = {c: (t, why) for c, t, why in record.decided}
    assert decided["shop.customers.nickname"][0] == "scramble"
    assert "not confirmed in the lock file" in decided["shop.customers.nickname"][1]

    shown = run_cli("sample", "--format", "markdown", cwd=project, env={"DATAOPS_SALT": SALT})
    assert shown.returncode == 0, shown.stderr
    assert "decided shop.customers.nickname: scramble" in shown.stdout
    assert "not confirmed in the lock file" in shown.stdout


def test_branch_retargeting_production_is_blocking_and_resolution_keeps_the_base(
    sample_project_copy: Path,
) -> None:
    project = sample_project_copy
    git(project, "checkout", "-q", "-b", "retarget")
    profiles = project / "profiles.yml"
    profiles.write_text(profiles.read_text().replace("path: prod.duckdb", "path: elsewhere.duckdb"))
    _commit(project, "point production elsewhere")
    loaded = load_config(project)

    assert working_tree_target(loaded)["path"] == "elsewhere.duckdb"
    production = load_profile_target(loaded)
    assert production["path"] == "prod.duckdb" and production["_target_name"] == "prod"
    findings = trust_findings(loaded)
    assert [f.kind for f in findings] == [FindingKind.PRODUCTION_TARGET_CHANGED]
    assert findings[0].blocking and "elsewhere.duckdb" in findings[0].detail

    # naming another target in the branch's config is the same move
    git(project, "checkout", "-q", "main")
    git(project, "checkout", "-q", "-b", "retarget-by-config")
    (project / "dataops_dev.yml").write_text("version: 1\nproduction:\n  target: pg\n")
    _commit(project, "production is the pg target")
    loaded = load_config(project)
    assert load_profile_target(loaded)["_target_name"] == "prod"
    assert [f.kind for f in trust_findings(loaded)] == [FindingKind.PRODUCTION_TARGET_CHANGED]

    # on the main branch the working tree is production's own code: nothing to guard
    git(project, "checkout", "-q", "main")
    assert trust_findings(load_config(project)) == ()


def test_profiles_outside_the_repository_are_not_the_branchs(
    sample_project_copy: Path, tmp_path: Path
) -> None:
    project = sample_project_copy
    outside = tmp_path / "dbt-home"
    outside.mkdir()
    (project / "profiles.yml").rename(outside / "profiles.yml")
    (project / "dataops_dev.yml").write_text(
        f"version: 1\nprofiles_dir: {json.dumps(str(outside))}\n"
    )
    _commit(project, "profiles live outside the repository")
    git(project, "checkout", "-q", "-b", "harmless")
    loaded = load_config(project)
    assert load_profile_target(loaded)["path"] == "prod.duckdb"
    assert trust_findings(loaded) == ()


def _raw_forms(values: set[str]) -> set[str]:
    forms = set()
    for value in values:
        forms.update({value, value.strip(), value.strip().lower()})
    forms.discard("")
    return forms


def _leaks_in_files(root: Path, raw: set[str]) -> list[str]:
    """Every file under `root`, read as bytes, searched for every raw value."""
    needles = [v.encode() for v in raw]
    leaks = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found = [n for n in needles if n in data]
        if found:
            leaks.append(f"{path.relative_to(root)}: {len(found)}")
    return leaks


def _leaks_in_databases(databases: list[Path], raw: set[str]) -> list[str]:
    """Every VARCHAR column of every table of `databases`, queried for raw values."""
    leaks = []
    assert databases, "no DuckDB files to scan"
    for database in databases:
        with duckdb.connect(str(database), read_only=True) as con:
            con.execute("create temp table raw_values (v varchar)")
            con.executemany("insert into raw_values values (?)", [(v,) for v in sorted(raw)])
            columns = con.execute(
                "select c.table_schema, c.table_name, c.column_name "
                "from information_schema.columns c join information_schema.tables t "
                "using (table_catalog, table_schema, table_name) "
                "where c.data_type = 'VARCHAR' and t.table_type = 'BASE TABLE' "
                "and c.table_catalog = current_database()"
            ).fetchall()
            for schema, table, column in columns:
                count = con.execute(
                    f'select count(*) from "{schema}"."{table}" '
                    f'where "{column}" in (select v from raw_values)'
                ).fetchone()[0]  # type: ignore[index]
                if count:
                    leaks.append(f"{database.name}:{schema}.{table}.{column}: {count}")
    return leaks


@pytest.mark.slow
def test_review_of_an_unmasking_branch_blocks_and_leaks_nothing(
    sample_project_copy: Path,
) -> None:
    project = sample_project_copy
    env = {"DATAOPS_SALT": SALT}
    git(project, "checkout", "-q", "-b", "show-me-the-emails")
    _set_email_meta(project, "false")
    for models_file in ("models/staging/_staging__models.yml", "models/marts/_marts__models.yml"):
        path = project / models_file
        path.write_text(path.read_text().replace("pii: email", "pii: false"))
    _commit(project, "e-mails are not PII")

    review = run_cli("review", "--json", cwd=project, env=env)
    assert review.returncode == 3, review.stderr
    report = json.loads(review.stdout)
    findings = [f for m in report["models"] for f in m["findings"]]
    trust = [f for f in findings if f["kind"] == "masking_policy_changed"]
    assert trust and all(f["severity"] == "blocking" for f in trust)
    assert any("shop.customers.email" in f["title"] for f in trust)
    assert report["verdict"] == "blocked"

    comment = run_cli("comment", "--dry-run", cwd=project, env=env)
    assert comment.returncode in (0, 3), comment.stderr
    assert "masking" in comment.stdout

    state = project / ".dataops"
    reports = list(state.rglob("report.json")) + list(state.rglob("report.md"))
    assert reports and list(state.rglob("report.html"))
    raw = _raw_forms(_prod_values(project, "email"))
    assert len(raw) > 10
    assert _leaks_in_files(state, raw) == []
    assert _leaks_in_databases(sorted(state.rglob("*.duckdb")), raw) == []
    assert _leaks_in_databases([project / "prod.duckdb"], raw)  # the scan does find them
    for output in (review.stdout, review.stderr, comment.stdout, comment.stderr):
        assert not [v for v in raw if v in output]


def test_branch_naming_itself_the_main_branch_guards_nothing_away(
    sample_project_copy: Path,
) -> None:
    project = sample_project_copy
    git(project, "checkout", "-q", "-b", "sneaky")
    _set_email_meta(project, "false")
    (project / "dataops_dev.yml").write_text("version: 1\nproduction:\n  main_branch: sneaky\n")
    _commit(project, "this branch is production now")
    loaded = load_config(project)

    policy = sample_policy(loaded)
    assert policy.base is not None and policy.base.label.startswith("main@")
    kinds = sorted(f.kind.value for f in trust_findings(loaded))
    assert kinds == ["masking_policy_changed", "production_target_changed"]
    titles = " ".join(f.title for f in trust_findings(loaded))
    assert "which branch is production's code" in titles

    (project / "dataops_dev.yml").write_text("version: 1\nproduction:\n  manifest: mine.json\n")
    _commit(project, "deploy against my manifest")
    titles = " ".join(f.title for f in trust_findings(load_config(project)))
    assert "which manifest is production's" in titles


def test_a_detached_head_is_guarded_like_a_branch(sample_project_copy: Path) -> None:
    """CI checks out the pull request's commit without a branch."""
    project = sample_project_copy
    git(project, "checkout", "-q", "-b", "pr")
    _set_email_meta(project, "false")
    _commit(project, "unmask")
    git(project, "checkout", "-q", "--detach", "HEAD")
    loaded = load_config(project)
    assert [f.kind for f in trust_findings(loaded)] == [FindingKind.MASKING_POLICY_CHANGED]
    assert sample_policy(loaded).base is not None
