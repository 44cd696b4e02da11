"""Configuration: strict validation with locations and did-you-mean, precedence, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataops_dev.config import load_config
from dataops_dev.errors import ConfigError
from tests.conftest import run_cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    return tmp_path


def test_defaults_without_a_file(project: Path) -> None:
    loaded = load_config(project)
    assert loaded.config.production.target == "prod"
    assert loaded.source == "defaults"
    assert loaded.provenance["backend.type"] == "default"
    assert loaded.state_dir == project / ".dataops"


def test_unknown_key_names_line_and_suggests(project: Path) -> None:
    (project / "dataops_dev.yml").write_text("version: 1\nproduction:\n  taget: prod\n")
    with pytest.raises(ConfigError) as error:
        load_config(project)
    assert "dataops_dev.yml:3" in error.value.message
    assert "production.taget" in error.value.message
    assert error.value.hint == "did you mean `production.target`?"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("backend:\n  type: duckdbb\n", "must be one of duckdb, warehouse"),
        ("environments:\n  ttl_days: soon\n", "must be a number"),
        ("environments:\n  keep: {a: 1}\n", "must be a list"),
        ("policy:\n  models:\n    fct_*: {max_row_delta_pct: lots}\n", "must be a number"),
        ("version: 2\n", "unsupported config version"),
        ("production: [prod]\n", "must be a mapping"),
    ],
)
def test_type_errors_are_config_errors(project: Path, text: str, fragment: str) -> None:
    (project / "dataops_dev.yml").write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(project)


def test_precedence_flag_over_env_over_file(project: Path) -> None:
    (project / "dataops_dev.yml").write_text(
        "version: 1\nenvironments:\n  ttl_days: 3\n  threads: 4\nbackend:\n  type: duckdb\n"
    )
    loaded = load_config(
        project,
        environ={"DATAOPS_DEV_ENVIRONMENTS__TTL_DAYS": "7"},
        overrides={"environments.threads": 1},
    )
    assert loaded.config.environments.ttl_days == 7.0
    assert loaded.config.environments.threads == 1
    assert loaded.provenance["environments.ttl_days"] == "env DATAOPS_DEV_ENVIRONMENTS__TTL_DAYS"
    assert loaded.provenance["environments.threads"] == "flag"
    assert loaded.provenance["backend.type"].endswith("dataops_dev.yml:6")


def test_pyproject_section_and_nearest_first(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.dataops_dev]\nproduction = {target = "live"}\n')
    assert load_config(project).config.production.target == "live"
    (project / "dataops_dev.yml").write_text("production:\n  target: yml\n")
    assert load_config(project).config.production.target == "yml"


def test_missing_dbt_project_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no dbt_project.yml"):
        load_config(tmp_path)


def test_config_show_json_reports_origins(project: Path) -> None:
    (project / "dataops_dev.yml").write_text("version: 1\nsample:\n  rate: 0.2\n")
    result = run_cli("config", "show", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)["settings"]
    assert settings["sample.rate"] == {"value": 0.2, "from": f"{project / 'dataops_dev.yml'}:3"}
    assert settings["production.target"]["from"] == "default"
    bad = project / "dataops_dev.yml"
    bad.write_text("samples: {}\n")
    failed = run_cli("config", "show", cwd=project)
    assert failed.returncode == 2
    assert "did you mean `sample`" in failed.stderr


# --------------------------------------------------------------------------------------------
# Environment overrides: text stays text, errors name the variable


def test_env_text_settings_keep_the_text_as_typed(project: Path) -> None:
    loaded = load_config(
        project,
        environ={
            "DATAOPS_DEV_PRODUCTION__MAIN_BRANCH": "1.10",
            "DATAOPS_DEV_PRODUCTION__TARGET": "no",
            "DATAOPS_DEV_BACKEND__STATE_DIR": "[x",
            "DATAOPS_DEV_ENVIRONMENTS__KEEP": "1.10",
            "DATAOPS_DEV_DIFF__KEYS__ORDERS": "order_id",
        },
    )
    assert loaded.config.production.main_branch == "1.10"
    assert loaded.config.production.target == "no"
    assert loaded.config.backend.state_dir == "[x"
    assert loaded.config.environments.keep == ("1.10",)
    assert loaded.config.diff.keys["orders"] == ("order_id",)
    assert loaded.provenance["backend.state_dir"] == "env DATAOPS_DEV_BACKEND__STATE_DIR"


def test_env_values_other_than_text_are_yaml(project: Path) -> None:
    loaded = load_config(
        project,
        environ={
            "DATAOPS_DEV_MASKING__STRICT": "true",
            "DATAOPS_DEV_ENVIRONMENTS__THREADS": "3",
            "DATAOPS_DEV_ENVIRONMENTS__KEEP": "[release, hotfix]",
            "DATAOPS_DEV_POLICY__MODELS": "{fct_*: {allow_breaking: true}}",
        },
    )
    assert loaded.config.masking.strict is True
    assert loaded.config.environments.threads == 3
    assert loaded.config.environments.keep == ("release", "hotfix")
    assert loaded.config.policy.models["fct_*"].allow_breaking is True


@pytest.mark.parametrize(
    ("var", "text", "fragment"),
    [
        ("DATAOPS_DEV_ENVIRONMENTS__KEEP", "[x", "invalid YAML for `environments.keep`"),
        ("DATAOPS_DEV_POLICY__MODELS", "{a: [", "invalid YAML for `policy.models`"),
        ("DATAOPS_DEV_ENVIRONMENTS__TTL_DAYS", "soon", "`environments.ttl_days` must be a number"),
        ("DATAOPS_DEV_MASKING__STRICT", "maybe", "`masking.strict` must be true or false"),
        ("DATAOPS_DEV_BACKEND__STAET_DIR", "x", "unknown setting `backend.staet_dir`"),
        (
            "DATAOPS_DEV_POLICY__MODELS",
            "{fct_*: {unchanged: maybe}}",
            "`policy.models.fct_*.unchanged` must be true or false",
        ),
        ("DATAOPS_DEV_BACKEND__STATE_DIR__X", "1", "`backend.state_dir` must be text"),
    ],
)
def test_env_errors_are_config_errors_located_at_the_variable(
    project: Path, var: str, text: str, fragment: str
) -> None:
    # A config file elsewhere must not be blamed for the environment's value.
    (project / "dataops_dev.yml").write_text("version: 1\nbackend:\n  type: duckdb\n")
    with pytest.raises(ConfigError) as error:
        load_config(project, environ={var: text})
    assert error.value.path == f"env {var}"
    assert error.value.message.startswith(f"env {var}: ")
    assert fragment in error.value.message
    assert "dataops_dev.yml" not in error.value.message


def test_env_error_without_a_config_file_does_not_blame_defaults(project: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(project, environ={"DATAOPS_DEV_ENVIRONMENTS__THREADS": "many"})
    assert error.value.message == (
        "env DATAOPS_DEV_ENVIRONMENTS__THREADS: `environments.threads` must be an integer, "
        "got 'many'"
    )


def test_a_config_file_that_is_not_utf8_is_a_config_error(project: Path) -> None:
    (project / "dataops_dev.yml").write_bytes(b"version: 1\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8") as raised:
        load_config(project)
    assert raised.value.path == str(project / "dataops_dev.yml")


def test_project_dir_finds_the_config_file_of_that_project(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `dataops-dev --project-dir X` run from elsewhere reads X's dataops_dev.yml
    (project / "dataops_dev.yml").write_text("version: 1\nproduction:\n  target: live\n")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    loaded = load_config(project_dir=project)
    assert loaded.config.production.target == "live"
    assert loaded.source == str(project / "dataops_dev.yml")
