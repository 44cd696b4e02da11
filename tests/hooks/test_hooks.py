"""The hook checks called directly (no pre-commit): SQL problem locations, key discovery from the
working tree's YAML, the guard's config allowances, protected models, YAML contract edits,
approvals bound to the SQL, and that the fast path never imports dbt or duckdb."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dataops_dev.hooks import (
    HookId,
    SchemaEntry,
    key_of,
    load_project_config,
    model_tests,
    run_hook,
    static_findings,
)
from dataops_dev.hooks_sql import check_model_sql, map_location, snippet
from tests.hooks.conftest import HookRepo, git


def _entry(data: dict[str, object]) -> SchemaEntry:
    return SchemaEntry(str(data.get("name", "m")), Path("schema.yml"), 1, data)


# --------------------------------------------------------------------------------------------
# Pure functions


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"columns": [{"name": "id", "data_tests": ["unique", "not_null"]}]}, ("id",)),
        (
            {"columns": [{"name": "id", "tests": ["unique", {"not_null": {"severity": "warn"}}]}]},
            ("id",),
        ),
        # A conditional unique test does not make a key.
        (
            {
                "columns": [
                    {
                        "name": "id",
                        "data_tests": [{"unique": {"config": {"where": "x"}}}, "not_null"],
                    }
                ]
            },
            (),
        ),
        ({"constraints": [{"type": "primary_key", "columns": ["a", "b"]}]}, ("a", "b")),
        ({"columns": [{"name": "k", "constraints": [{"type": "primary_key"}]}]}, ("k",)),
        ({"config": {"meta": {"primary_key": ["a", "b"]}}}, ("a", "b")),
        ({"meta": {"primary-key": "a"}}, ("a",)),
        ({"columns": [{"name": "c", "config": {"meta": {"primary_key": True}}}]}, ("c",)),
        (
            {
                "data_tests": [
                    {
                        "dbt_utils.unique_combination_of_columns": {
                            "arguments": {"combination_of_columns": ["d", "s"]}
                        }
                    }
                ]
            },
            ("d", "s"),
        ),
        ({"columns": [{"name": "id", "data_tests": ["unique"]}]}, ()),
    ],
)
def test_key_discovery_from_yaml(data: dict[str, object], key: tuple[str, ...]) -> None:
    assert key_of(_entry(data)) == key


def test_configured_key_wins_and_tests_are_collected() -> None:
    entry = _entry(
        {
            "data_tests": [{"dbt_utils.expression_is_true": {"expression": "x > 0"}}],
            "columns": [{"name": "id", "data_tests": ["unique", {"relationships": {}}]}],
        }
    )
    assert key_of(entry, ("a",)) == ("a",)
    assert key_of(None) == ()
    assert model_tests(entry) == {"expression_is_true", "unique", "relationships"}


def test_parse_error_location_maps_back_through_jinja() -> None:
    raw = (
        "{{\n  config(\n    materialized='table'\n  )\n}}\n"
        "select\n    a,\n    lower(b as c\nfrom {{ ref('x') }}\n"
    )
    rendered = '\nselect\n    a,\n    lower(b as c\nfrom "db"."x"\n'
    # `as` is on rendered line 4 (source line 8), column 13.
    assert map_location(rendered, raw, 4, 13) == (8, 13)
    text = snippet(raw, 8, 13)
    assert text.splitlines()[-2] == "8 |     lower(b as c"
    assert text.splitlines()[-1] == "  |             ^"


def test_check_model_sql_reports_render_and_parse_problems(tmp_path: Path) -> None:
    from dataops_dev.hooks_sql import renderer_for

    renderer = renderer_for(
        tmp_path,
        project_name="p",
        vars={},
        macro_paths=(),
        adapter="duckdb",
        manifest=None,
        working_models=["a"],
        sources={("raw", "t"): (None, "raw", "t")},
    )

    def check(sql: str) -> tuple[int, int, str] | None:
        problem = check_model_sql(sql, model_name="m", renderer=renderer, dialect="duckdb")
        return None if problem is None else (problem.line, problem.column, problem.message)

    assert check("select * from {{ ref('a') }} join {{ source('raw', 't') }} using (id)") is None
    assert check("select 1 as x\nfrom {{ ref('b') }}") == (
        2,
        9,
        "cannot render: ref('b') names no model in the base manifest or working tree",
    )
    line, _, message = check("select 1\n{% if x %}\nfrom t") or (0, 0, "")
    assert (line, message.startswith("Jinja syntax error")) == (2, True)
    assert check("select 'abc from t")[2].startswith("syntax error: cannot tokenize")  # type: ignore[index]
    assert check("select 1; select 2")[2] == "a model must be one query; found several statements"  # type: ignore[index]
    assert (
        check("insert into t values (1)")[2] == "a model must be a query (SELECT); this is INSERT"
    )  # type: ignore[index]
    assert check("select {{ undefined_macro('x') }} as y")[0:2] == (1, 11)  # type: ignore[index]


@pytest.mark.parametrize(
    ("sql", "has_packages", "blocking"),
    [
        ("select * from {{ ref('nope') }}", True, True),
        ("select * from {{ source('raw', 'nope') }}", True, True),
        ("select 1 {% if %}", True, True),
        ("select {{ undefined_macro('x') }} as y", False, True),
        # What only dbt can render is skipped, not failed: packages, a database, CLI vars.
        ("select {{ undefined_macro('x') }} as y", True, False),
        ("select {{ dbt_utils.star(ref('a')) }} from {{ ref('a') }}", True, False),
        ("{% set r = run_query('select 1') %}select 1 as x", False, False),
        ("select {{ var('run_date') }} as d", False, False),
    ],
)
def test_render_problems_block_only_when_dbt_would_fail_too(
    tmp_path: Path, sql: str, has_packages: bool, blocking: bool
) -> None:
    from dataops_dev.hooks_sql import renderer_for

    renderer = renderer_for(
        tmp_path,
        project_name="p",
        vars={},
        macro_paths=(),
        adapter="duckdb",
        manifest=None,
        working_models=["a"],
        sources={("raw", "t"): (None, "raw", "t")},
    )
    problem = check_model_sql(
        sql, model_name="m", renderer=renderer, dialect="duckdb", has_packages=has_packages
    )
    assert problem is not None
    assert problem.blocking is blocking, problem.message


# --------------------------------------------------------------------------------------------
# On sample_project (production manifest from a real dbt parse)


def _config(repo: HookRepo, text: str) -> None:
    repo.write("dataops_dev.yml", "version: 1\n" + text)


def _guard(repo: HookRepo, *files: str) -> tuple[int, list[str], list[str]]:
    result = run_hook(HookId.IMPACT_GUARD, [repo.rel(f) for f in files], cwd=repo.root)
    return (
        len(result.problems),
        [p.model or "" for p in result.problems],
        [p.acknowledged_by or "" for p in result.acknowledged],
    )


@pytest.mark.slow
def test_allowance_and_protected_models_from_config(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    repo.edit(
        "models/marts/dim_customers.sql",
        "    cast(customers.email as {{ dbt.type_string() }}) as email,\n",
        "",
    )
    assert _guard(repo, "models/marts/dim_customers.sql")[:2] == (1, ["dim_customers"])
    _config(repo, "hooks:\n  allow_breaking: ['dim_*']\n")
    count, _, acknowledged = _guard(repo, "models/marts/dim_customers.sql")
    assert (count, acknowledged) == (0, ["allowed by hooks.allow_breaking"])
    # Exposure and contract guards off: a breaking change passes unless the model is protected.
    git(repo.root, "checkout", "--", ".")
    repo.edit("models/staging/stg_stores.sql", "store_id,", "store_id as id,")
    _config(repo, "hooks:\n  guard_exposures: false\n  guard_contracts: false\n")
    assert _guard(repo, "models/staging/stg_stores.sql")[0] == 0
    _config(
        repo,
        "hooks:\n  guard_exposures: false\n  guard_contracts: false\n  protected: ['stg_*']\n",
    )
    assert _guard(repo, "models/staging/stg_stores.sql")[:2] == (1, ["stg_stores"])
    # Files outside the change (not passed) are out of scope.
    assert _guard(repo, "models/staging/stg_orders.sql")[0] == 0


@pytest.mark.slow
def test_contract_type_change_in_yaml_is_located_in_the_yaml(
    hook_repo: Callable[..., HookRepo],
) -> None:
    repo = hook_repo("analytics")
    repo.edit(
        "models/marts/_marts__models.yml",
        "      - name: order_count\n        description: Orders of any status (0 for prospects).\n"
        "        data_type: bigint",
        "      - name: order_count\n        description: Orders of any status (0 for prospects).\n"
        "        data_type: integer",
    )
    result = run_hook(
        HookId.IMPACT_GUARD, [repo.rel("models/marts/_marts__models.yml")], cwd=repo.root
    )
    assert [p.model for p in result.problems] == ["dim_customers"]
    problem = result.problems[0]
    # The SQL file is not part of the change: the YAML entry is what changed.
    assert (problem.path, problem.line) == ("analytics/models/marts/_marts__models.yml", 4)
    assert "contract type of order_count changed: bigint -> integer" in problem.message
    # Only the entries that changed are checked: the other marts are untouched.
    keys = run_hook(HookId.KEYS, [repo.rel("models/marts/_marts__models.yml")], cwd=repo.root)
    assert keys.checked_models == ("dim_customers",)


@pytest.mark.slow
def test_fingerprint_is_bound_to_the_sql(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    repo.edit(
        "models/marts/dim_customers.sql",
        "    cast(customers.email as {{ dbt.type_string() }}) as email,\n",
        "",
    )
    loaded = load_project_config(repo.project)
    first = static_findings(loaded)
    assert [(f.model, f.kind.value, f.severity.value) for f in first] == [
        ("dim_customers", "contract_broken", "blocking")
    ]
    # Formatting the SQL keeps the fingerprint (sql_hash normalises whitespace)...
    repo.edit(
        "models/marts/dim_customers.sql", "    cast(customers.phone", "  cast(customers.phone"
    )
    assert [f.fingerprint for f in static_findings(loaded)] == [first[0].fingerprint]
    # ...a real edit does not.
    repo.edit(
        "models/marts/dim_customers.sql", "cast(customers.phone as", "cast(trim(customers.phone) as"
    )
    assert [f.fingerprint for f in static_findings(loaded)] != [first[0].fingerprint]


@pytest.mark.slow
def test_required_tests_and_keyless_exemption(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("")
    _config(repo, "hooks:\n  require_tests: [not_null, freshness_check]\n")
    result = run_hook(HookId.KEYS, ["models/staging/stg_orders.sql"], cwd=repo.root)
    assert [(p.path, p.message) for p in result.problems] == [
        (
            "models/staging/_staging__models.yml",
            "model stg_orders: missing required tests: freshness_check",
        )
    ]
    _config(repo, "hooks:\n  require_tests: [not_null, freshness_check]\n  keyless: [stg_*]\n")
    assert run_hook(HookId.KEYS, ["models/staging/stg_orders.sql"], cwd=repo.root).ok


@pytest.mark.slow
def test_missing_base_manifest_skips_with_a_note_or_fails_when_asked(
    hook_repo: Callable[..., HookRepo],
) -> None:
    from dataops_dev.errors import ProjectError

    repo = hook_repo("")
    manifest = repo.project / ".dataops" / "production" / "manifest.json"
    manifest.unlink()
    # The default: pass, with a note naming the command that enables the guard.
    skipped = run_hook(HookId.IMPACT_GUARD, ["models/staging/stg_orders.sql"], cwd=repo.root)
    assert skipped.ok
    assert skipped.notes == (
        f"impact-guard skipped ({repo.project.name}): no base manifest yet; "
        "run `dataops-dev impact --base main` once to enable it",
    )
    with pytest.raises(ProjectError, match="no base manifest") as error:
        run_hook(
            HookId.IMPACT_GUARD,
            ["models/staging/stg_orders.sql"],
            cwd=repo.root,
            overrides={"hooks.missing_manifest": "fail"},
        )
    assert "dataops-dev impact --base main" in (error.value.hint or "")
    # The SQL check does not need the manifest.
    assert run_hook(HookId.SQL_CHECK, ["models/staging/stg_orders.sql"], cwd=repo.root).ok


@pytest.mark.slow
def test_fast_hooks_import_neither_dbt_nor_duckdb(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    repo.edit(
        "models/marts/dim_customers.sql",
        "    cast(customers.email as {{ dbt.type_string() }}) as email,\n",
        "",
    )
    probe = (
        "import sys, json\n"
        "from dataops_dev.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'dbt', 'duckdb', 'pandas', 'git', 'psycopg', 'textual'})\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    for hook in ("sql-check", "impact-guard", "keys-and-tests"):
        run = subprocess.run(
            [sys.executable, "-c", probe, "hook", hook, repo.rel("models/marts/dim_customers.sql")],
            cwd=repo.root,
            capture_output=True,
            text=True,
            check=False,
        )
        outcome = json.loads(run.stderr.strip().splitlines()[-1])
        assert outcome["heavy"] == [], (hook, outcome)
        assert outcome["code"] == (3 if hook == "impact-guard" else 0), run.stdout


@pytest.mark.slow
def test_json_output_and_files_outside_projects(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    (repo.root / "notes.sql").write_text("this is not sql at all (", "utf-8")
    repo.edit("models/staging/stg_orders.sql", "order_id,", "order_id,,")
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "dataops-dev"),
            "hook",
            "sql-check",
            "--json",
            "notes.sql",
            repo.rel("models/staging/stg_orders.sql"),
        ],
        cwd=repo.root,
        capture_output=True,
        text=True,
        check=False,
    )
    data = json.loads(run.stdout)
    # notes.sql is in no dbt project: ignored.
    assert data["checked_models"] == ["stg_orders"]
    assert data["hook"] == "sql-check"
    assert run.returncode in (0, 3)


@pytest.mark.slow
def test_two_projects_in_one_repository(tmp_path: Path, parsed_sample_project: Path) -> None:
    import shutil

    root = tmp_path / "mono"
    for name in ("sales", "finance/dbt"):
        shutil.copytree(parsed_sample_project, root / name)
    git(root, "init", "-q", "-b", "main")
    (root / "sales/models/staging/stg_orders.sql").write_text("select from where", "utf-8")
    result = run_hook(
        HookId.SQL_CHECK,
        ["sales/models/staging/stg_orders.sql", "finance/dbt/models/staging/stg_orders.sql"],
        cwd=root,
    )
    assert [p.path for p in result.problems] == ["sales/models/staging/stg_orders.sql"]
    assert len(result.projects) == 2


@pytest.mark.slow
def test_changed_macro_rechecks_the_models_calling_it(hook_repo: Callable[..., HookRepo]) -> None:
    repo = hook_repo("analytics")
    repo.write("macros/money.sql", "{% macro money(col) %}round({{ col }}, 2){% endmacro %}\n")
    repo.edit(
        "models/staging/stg_orders.sql",
        "lower(trim(status)) as status,",
        "lower(trim(status)) as status,\n    {{ money('order_id') }} as order_money,",
    )
    assert run_hook(HookId.SQL_CHECK, [repo.rel("macros/money.sql")], cwd=repo.root).ok
    repo.write("macros/money.sql", "{% macro money(col) %}round({{ col }}, 2{% endmacro %}\n")
    result = run_hook(HookId.SQL_CHECK, [repo.rel("macros/money.sql")], cwd=repo.root)
    assert [(p.path, p.line) for p in result.problems] == [
        ("analytics/models/staging/stg_orders.sql", 15)
    ]
    assert result.problems[0].message.startswith("syntax error")


def test_review_finds_the_one_project_below_the_repository_root(tmp_path: Path) -> None:
    from dataops_dev.errors import ProjectError
    from dataops_dev.hooks import _single_project_below

    (tmp_path / "analytics" / "dbt").mkdir(parents=True)
    (tmp_path / "analytics" / "dbt" / "dbt_project.yml").write_text("name: a\n", "utf-8")
    (tmp_path / "analytics" / "dbt" / "dbt_packages" / "x").mkdir(parents=True)
    (tmp_path / "analytics" / "dbt" / "dbt_packages" / "x" / "dbt_project.yml").write_text("")
    assert _single_project_below(tmp_path) == tmp_path / "analytics" / "dbt"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "dbt_project.yml").write_text("name: b\n", "utf-8")
    with pytest.raises(ProjectError, match="several dbt projects"):
        _single_project_below(tmp_path)
    assert (
        _single_project_below(tmp_path / "analytics" / "dbt" / "dbt_packages" / "x" / "y") is None
    )
