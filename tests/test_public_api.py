"""The public API: a sorted `__all__`, every name importable, and a cheap `import dataops_dev`."""

from __future__ import annotations

import subprocess
import sys

import dataops_dev


def test_all_is_sorted_and_resolves() -> None:
    names = [n for n in dataops_dev.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in dataops_dev.__all__:
        assert getattr(dataops_dev, name) is not None, name


def test_import_is_lazy() -> None:
    code = (
        "import sys, dataops_dev; "
        "heavy = [m for m in ('dbt', 'duckdb', 'sqlglot', 'pandas', 'textual', 'rich') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
