"""dataops_dev: preview, decide and deploy dbt changes with evidence.

The public API is re-exported here and imported lazily, so `import dataops_dev` (and every CLI
start-up, including the pre-commit hooks) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "BuildRequest": "dataops_dev.environments",
    "DataopsError": "dataops_dev.errors",
    "Environments": "dataops_dev.environments",
    "ExitCode": "dataops_dev.exit_codes",
    "Manifest": "dataops_dev.dbt.manifest",
    "Relation": "dataops_dev.engines.base",
    "Report": "dataops_dev.report.model",
    "analyze_impact": "dataops_dev.impact",
    "compute_lineage": "dataops_dev.lineage",
    "deploy": "dataops_dev.deploy",
    "diff_relations": "dataops_dev.diffing",
    "ensure_sample": "dataops_dev.sources",
    "environment_name": "dataops_dev.environments",
    "load_config": "dataops_dev.config",
    "plan_deploy": "dataops_dev.deploy",
    "profile_diff": "dataops_dev.diffing",
    "run_review": "dataops_dev.review",
}

__all__ = [
    "BuildRequest",
    "DataopsError",
    "Environments",
    "ExitCode",
    "Manifest",
    "Relation",
    "Report",
    "__version__",
    "analyze_impact",
    "compute_lineage",
    "deploy",
    "diff_relations",
    "ensure_sample",
    "environment_name",
    "load_config",
    "plan_deploy",
    "profile_diff",
    "run_review",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # From the installed distribution (pyproject.toml is the one place it is written);
        # read on first use, so start-up does not pay for importlib.metadata.
        from importlib.metadata import version

        globals()[name] = value = version("dataops-dev")
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dataops_dev' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    __version__: str

    from dataops_dev.config import load_config
    from dataops_dev.dbt.manifest import Manifest
    from dataops_dev.deploy import deploy, plan_deploy
    from dataops_dev.diffing import diff_relations, profile_diff
    from dataops_dev.engines.base import Relation
    from dataops_dev.environments import BuildRequest, Environments, environment_name
    from dataops_dev.errors import DataopsError
    from dataops_dev.exit_codes import ExitCode
    from dataops_dev.impact import analyze_impact
    from dataops_dev.lineage import compute_lineage
    from dataops_dev.report.model import Report
    from dataops_dev.review import run_review
    from dataops_dev.sources import ensure_sample
