"""The core/UI boundary, enforced: no core module imports textual, rich or click.

Every module of `dataops_dev` except the CLI, the TUI and the renderers is imported in a fresh
interpreter; the test names the first module that pulls a UI library in.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import dataops_dev

FORBIDDEN = ("textual", "rich", "click")
# The user-facing layers: they may use the UI libraries.
UI_PACKAGES = ("dataops_dev.cli", "dataops_dev.tui")
UI_MODULES = (
    "dataops_dev.__main__",
    "dataops_dev.report.text",
    "dataops_dev.report.html",
    "dataops_dev.report.markdown",
)

PROBE = """
import importlib, json, sys
forbidden = {forbidden!r}
culprits = {{}}
for name in {modules!r}:
    before = {{m for m in forbidden if m in sys.modules}}
    importlib.import_module(name)
    pulled = [m for m in forbidden if m in sys.modules and m not in before]
    if pulled:
        culprits[name] = pulled
print(json.dumps({{"culprits": culprits, "loaded": [m for m in forbidden if m in sys.modules]}}))
"""


def core_modules() -> list[str]:
    root = Path(dataops_dev.__file__).parent
    names = ["dataops_dev"]
    for info in pkgutil.walk_packages([str(root)], prefix="dataops_dev."):
        name = info.name
        if name.startswith(tuple(p + "." for p in UI_PACKAGES)) or name in UI_PACKAGES:
            continue
        if name in UI_MODULES:
            continue
        names.append(name)
    return sorted(names)


def test_core_modules_are_found() -> None:
    modules = core_modules()
    for expected in ("dataops_dev.report.model", "dataops_dev.decisions", "dataops_dev.impact"):
        assert expected in modules
    assert not any(m.startswith(("dataops_dev.tui", "dataops_dev.cli")) for m in modules)


def test_core_never_imports_ui_libraries() -> None:
    modules = core_modules()
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(forbidden=FORBIDDEN, modules=modules)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(dataops_dev.__file__).parents[1],
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["culprits"] == {}, f"core modules import UI libraries: {outcome['culprits']}"
    assert outcome["loaded"] == []


def test_the_tui_session_is_the_only_door_and_imports_no_heavy_core() -> None:
    """Opening a saved report must not load dbt or sqlglot (start-up stays fast)."""
    probe = (
        "import sys, json; import dataops_dev.tui.app; "
        "print(json.dumps(sorted(m for m in ('dbt', 'sqlglot', 'duckdb', 'pandas') "
        "if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(dataops_dev.__file__).parents[1],
    )
    assert json.loads(result.stdout) == []
