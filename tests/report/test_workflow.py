"""The example GitHub Actions workflow: valid YAML, the permissions it needs, and only
dataops-dev options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import yaml

from dataops_dev.cli import cli

WORKFLOW = (
    Path(__file__).resolve().parents[2] / "examples" / "github-actions" / "dataops-review.yml"
)


def test_workflow_shape() -> None:
    data = yaml.safe_load(WORKFLOW.read_text("utf-8"))
    assert data["permissions"]["pull-requests"] == "write"
    steps = data["jobs"]["review"]["steps"]
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11"
    assert data["jobs"]["review"]["env"]["DATAOPS_SALT"] == "${{ secrets.DATAOPS_SALT }}"
    comment = next(s for s in steps if "dataops-dev comment" in str(s.get("run", "")))
    assert comment["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert any(str(s.get("uses", "")).startswith("actions/upload-artifact") for s in steps)


def test_workflow_uses_existing_options() -> None:
    data = yaml.safe_load(WORKFLOW.read_text("utf-8"))
    runs = [str(s.get("run", "")) for s in data["jobs"]["review"]["steps"]]
    commands = [
        m.group(1) for run in runs for m in re.finditer(r"^\s*dataops-dev ([^\n]+)", run, re.M)
    ]
    assert len(commands) >= 3
    ctx = click.Context(cli)
    for line in commands:
        words = shlex.split(line.replace("${{", "X").replace("}}", "X"))
        command = cli.get_command(ctx, words[0])
        if isinstance(command, click.Group):
            command = command.get_command(ctx, words[1])
        assert command is not None, line
        known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        for word in words[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in known, (line, word)
