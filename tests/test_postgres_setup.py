"""The suite's own PostgreSQL set-up (tests/conftest.py) on a server with no role for the user:
it must create the role with the SQL reaching psql verbatim (no shell to expand `$$`)."""

from __future__ import annotations

import uuid

import pytest

from tests import conftest

pytestmark = pytest.mark.postgres


def _role_flags(name: str) -> str:
    result = conftest._as_postgres(
        "psql",
        "-h",
        conftest.PG_HOST,
        "-tA",
        "-v",
        f"role={name}",
        "-f",
        "-",
        stdin="select rolsuper::text || rolcanlogin::text from pg_roles where rolname = :'role';\n",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _drop_role(name: str) -> None:
    conftest._as_postgres(
        "psql",
        "-h",
        conftest.PG_HOST,
        "-v",
        f"role={name}",
        "-f",
        "-",
        stdin='DROP ROLE IF EXISTS :"role";\n',
    )


def test_missing_role_is_created_as_a_login_superuser(postgres_server: str) -> None:
    name = f"dataops_probe_{uuid.uuid4().hex[:8]}"
    try:
        assert _role_flags(name) == ""
        assert conftest._create_role(name) == ""
        assert _role_flags(name) == "truetrue"
        # A second run finds the role and leaves it alone.
        assert conftest._create_role(name) == ""
        assert _role_flags(name) == "truetrue"
    finally:
        _drop_role(name)


def test_role_names_that_are_not_plain_identifiers_are_refused(postgres_server: str) -> None:
    problem = conftest._create_role("x; DROP ROLE postgres")
    assert problem.startswith("refusing to create role")
    assert _role_flags("x; DROP ROLE postgres") == ""


def test_sql_with_dollar_quotes_reaches_psql_verbatim(postgres_server: str) -> None:
    # Through `su -c` the shell turned `$$` into its process id ("26880BEGIN").
    result = conftest._as_postgres(
        "psql", "-h", conftest.PG_HOST, "-tAc", "DO $$BEGIN PERFORM 1; END$$; select 'ok'"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
