"""Issue 13's listed cases, one test each: bad input gives a clear line and the documented exit
code, never "unexpected error". The file-by-file mutations are in test_fuzz_inputs.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dataops_dev.config import load_config
from dataops_dev.decisions import load_decisions
from dataops_dev.errors import ConfigError
from dataops_dev.exit_codes import ExitCode
from dataops_dev.statefiles import InvalidFile, parse_json, parse_yaml
from tests.conftest import run_cli
from tests.real_projects import ProjectRepo, make_project_repo
from tests.report.factory import small_report


def _assert_clear(result: subprocess.CompletedProcess[str], code: int, *texts: str) -> None:
    assert "unexpected error" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    for text in texts:
        assert text in result.stderr, result.stderr


@pytest.fixture
def shop(tmp_path: Path) -> ProjectRepo:
    """hi_shop as a fresh clone: nothing sampled or built."""
    return make_project_repo("hi_shop", tmp_path)


# --------------------------------------------------------------------------------------------
# The safe reader


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: " + "[" * 5000 + "]" * 5000, "nests deeper than 100 levels"),
        ("".join("  " * i + f"k{i}:\n" for i in range(5000)), "nests deeper than 100 levels"),
        ("a: !!python/object/apply:os.system ['true']", "python/object/apply:os.system"),
        ("!!python/name:os.system", "python/name:os.system"),
        ("a: &x [*x]", "nests deeper"),
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            ),
            "expands to more than",
        ),
        ("- 1\n- 2\n", "holds a list where a mapping was expected"),
        ("42", "holds int where a mapping was expected"),
    ],
    ids=[
        "deep-flow",
        "deep-block",
        "python-tag",
        "python-name",
        "self-alias",
        "alias-bomb",
        "list",
        "scalar",
    ],
)
def test_plain_yaml_only(text: str, reason: str) -> None:
    with pytest.raises(InvalidFile, match=reason.replace("[", r"\[")):
        parse_yaml(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 5000 + "]" * 5000, "nests deeper"),
        ('{"a": [1, 2', "is truncated"),
        ("[1, 2]", "holds a list"),
        ("1" * 5000, "is not valid JSON"),
    ],
)
def test_json_state_is_bounded(text: str, reason: str) -> None:
    with pytest.raises(InvalidFile, match=reason):
        parse_json(text)


# --------------------------------------------------------------------------------------------
# Config values that used to fail later, somewhere else


def _project(tmp_path: Path, config: str) -> Path:
    (tmp_path / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    (tmp_path / "dataops_dev.yml").write_text(config)
    return tmp_path


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "version: 1\nenvironments:\n  threads: 0\n",
            "`environments.threads` must be an integer from 1",
        ),
        (
            "version: 1\nenvironments:\n  ttl_days: -1\n",
            "`environments.ttl_days` must be a number of days above 0",
        ),
        ("version: 1\nenvironments:\n  ttl_days: 0\n", "`environments.ttl_days` must be"),
        ("version: 1\nenvironments:\n  ttl_days: .nan\n", "`environments.ttl_days` must be"),
        ("version: 1\nsample:\n  rate: 2\n", "`sample.rate` must be a fraction"),
        (
            "version: 1\nsample:\n  anchors:\n    raw.orders: {rate: 0}\n",
            "`sample.anchors.raw.orders.rate`",
        ),
    ],
    ids=["threads-0", "ttl-negative", "ttl-zero", "ttl-nan", "rate-2", "anchor-rate-0"],
)
def test_out_of_range_settings_are_config_errors(tmp_path: Path, config: str, message: str) -> None:
    project = _project(tmp_path, config)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as raised:
        load_config(project)
    assert "dataops_dev.yml:" in raised.value.message  # file and line


def test_ttl_days_minus_one_exits_2_naming_the_line(tmp_path: Path) -> None:
    project = _project(tmp_path, "version: 1\nenvironments:\n  ttl_days: -1\n")
    result = run_cli("env", "gc", "--dry-run", cwd=project)
    _assert_clear(result, ExitCode.USAGE_ERROR, "dataops_dev.yml:3", "ttl_days")


def test_ttl_days_flag_must_be_above_zero(tmp_path: Path) -> None:
    project = _project(tmp_path, "version: 1\n")
    result = run_cli("env", "gc", "--dry-run", "--ttl-days", "-1", cwd=project)
    assert result.returncode == ExitCode.USAGE_ERROR
    assert "--ttl-days" in result.stderr


def test_threads_zero_in_the_config_never_reaches_dbt(shop: ProjectRepo) -> None:
    shop.write("dataops_dev.yml", "version: 1\nenvironments:\n  threads: 0\n")
    result = shop.run("build")
    _assert_clear(result, ExitCode.USAGE_ERROR, "dataops_dev.yml:3", "environments.threads")
    assert "model" not in result.stderr


def test_threads_zero_in_profiles_is_a_profile_error(shop: ProjectRepo) -> None:
    shop.replace("profiles.yml", "threads: 1", "threads: 0")
    result = shop.run("sample")
    _assert_clear(result, ExitCode.USAGE_ERROR, "profiles.yml", "hi_shop.outputs.prod.threads")


def test_python_tags_and_deep_nesting_in_the_config(shop: ProjectRepo) -> None:
    shop.write("dataops_dev.yml", "version: !!python/object/apply:os.system ['touch PWNED']\n")
    _assert_clear(
        shop.run("env", "list"), ExitCode.USAGE_ERROR, "dataops_dev.yml", "only plain YAML"
    )
    assert not shop.path("PWNED").exists()
    shop.write("dataops_dev.yml", "version: 1\nsample: " + "[" * 5000 + "]" * 5000 + "\n")
    _assert_clear(shop.run("env", "list"), ExitCode.USAGE_ERROR, "dataops_dev.yml", "nests deeper")


# --------------------------------------------------------------------------------------------
# Approvals, environment records


@pytest.mark.parametrize(
    "text",
    [
        "- fingerprint: abc\n  decision: approved\n",
        "decisions: [1, 2]\n",
        "decisions: {a: 1}\n",
        "\x00\x01",
    ],
    ids=["list", "list-of-scalars", "mapping", "binary"],
)
def test_a_malformed_approvals_file_is_named(tmp_path: Path, text: str) -> None:
    (tmp_path / "dataops.approvals.yml").write_text(text)
    with pytest.raises(ConfigError, match="dataops.approvals.yml"):
        load_decisions(tmp_path)


def test_a_corrupt_environment_record_is_named_with_env_drop(shop: ProjectRepo) -> None:
    assert shop.run("env", "create", "--branch", "feature").returncode == 0
    (record,) = shop.path(".dataops/envs").glob("*.json")
    name = record.stem
    record.write_bytes(b'{"name": "' + name.encode() + b'", "kind": ')
    result = shop.run("env", "list")
    _assert_clear(result, ExitCode.RUNTIME_ERROR, str(record), f"dataops-dev env drop {name}")
    dropped = shop.run("env", "drop", name)
    assert dropped.returncode == 0, dropped.stderr
    assert not record.exists()
    listed = shop.run("env", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert yaml.safe_load(listed.stdout) == {"environments": []}


def test_a_branch_named_like_markup_lists(shop: ProjectRepo) -> None:
    for branch in ("[/]", "[bold red]x"):
        assert shop.run("env", "create", "--branch", branch).returncode == 0
    result = shop.run("env", "list", env={"NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    assert "[/]" in result.stdout
    assert "[bold red]x" in result.stdout


# --------------------------------------------------------------------------------------------
# Output paths, relation names


def test_report_output_to_proc_version_is_a_usage_error(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(small_report().to_json(), "utf-8")
    result = run_cli("report", "--report", str(report), "--output", "/proc/version", cwd=tmp_path)
    _assert_clear(result, ExitCode.USAGE_ERROR, "cannot write --output /proc/version")


@pytest.mark.parametrize(
    ("relation", "message"),
    [
        ('"', "cannot read relation name"),
        ("x((", "cannot read relation name"),
        ("a.b.c.d", "has too many parts"),
        ("a.b.c.d.e", "has too many parts"),
        ("orders", "needs a schema"),
    ],
)
def test_diff_tables_with_an_unparsable_relation(
    tmp_path: Path, relation: str, message: str
) -> None:
    import duckdb

    database = tmp_path / "d.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create table main.t as select 1 as id")
    result = run_cli("diff-tables", relation, "main.t", "--database", str(database), cwd=tmp_path)
    _assert_clear(result, ExitCode.USAGE_ERROR, message)


# --------------------------------------------------------------------------------------------
# The disk: read-only, full


@contextlib.contextmanager
def _mounted(*commands: list[str]) -> Iterator[None]:
    """Run mount commands (root only); skip the test when this machine does not allow it."""
    done: list[str] = []
    try:
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                pytest.skip(f"cannot {' '.join(command)}: {result.stderr.strip()}")
            done.append(command[-1])
        yield
    finally:
        for target in reversed(dict.fromkeys(done)):
            subprocess.run(["umount", target], capture_output=True, check=False)


def test_a_read_only_state_dir(shop: ProjectRepo) -> None:
    state = shop.path(".dataops")
    state.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: a read-only bind mount
        mounts = [
            ["mount", "--bind", str(state), str(state)],
            ["mount", "-o", "remount,ro,bind", str(state)],
        ]
        context: contextlib.AbstractContextManager[None] = _mounted(*mounts)
    else:
        state.chmod(0o555)
        context = contextlib.nullcontext()
    try:
        with context:
            result = shop.run("env", "create", "--branch", "feature")
    finally:
        state.chmod(0o755)
    _assert_clear(result, ExitCode.RUNTIME_ERROR, f"cannot write {state}", "backend.state_dir")


def _tmpfs(directory: Path, size: str) -> contextlib.AbstractContextManager[None]:
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is simulated with a tmpfs mount, which needs root")
    return _mounted(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)])


@pytest.mark.slow
def test_a_full_disk_while_parsing_is_named(shop: ProjectRepo, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with _tmpfs(disk, "1m"):
        result = shop.run("sample", env={"DATAOPS_DEV_BACKEND__STATE_DIR": str(disk / "state")})
    _assert_clear(result, ExitCode.RUNTIME_ERROR, "no space left on the device", "free disk space")
    assert "Logging error" not in result.stderr


@pytest.mark.slow
def test_a_full_disk_while_building_does_not_blame_the_model(
    shop: ProjectRepo, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    env = {"DATAOPS_DEV_BACKEND__STATE_DIR": str(disk / "state")}
    with _tmpfs(disk, "8m"):
        sampled = shop.run("sample", env=env)
        assert sampled.returncode == 0, sampled.stderr
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * max(free - 48 * 1024, 0))
        result = shop.run("build", env=env)
    _assert_clear(result, ExitCode.RUNTIME_ERROR, "no space left on the device")
    assert "fix the model" not in result.stderr


@pytest.mark.slow
def test_deploy_without_a_production_file(shop: ProjectRepo) -> None:
    assert shop.run("review").returncode == 0
    shop.delete("prod.duckdb")
    result = shop.run("deploy")
    _assert_clear(
        result, ExitCode.RUNTIME_ERROR, "production database", "does not exist", "profiles.yml"
    )
