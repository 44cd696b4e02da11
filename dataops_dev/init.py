"""The core of `dataops-dev init`: propose a commented `dataops_dev.yml` and a reviewable lock file.

The lock file (`dataops.lock.yml`) records the FK graph with where each edge came from, the keys,
the anchors and every column's masking decision with its reason, for a person to confirm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dataops_dev.atomic import write_text_atomic
from dataops_dev.config import CONFIG_FILE, LoadedConfig
from dataops_dev.errors import ConfigError
from dataops_dev.fkgraph import GRAPH_VERSION, graph_to_dict
from dataops_dev.masking import MASKING_VERSION, ColumnClass
from dataops_dev.reporting import NULL_REPORTER, Reporter
from dataops_dev.sources import (
    LOCK_FILE,
    Inspection,
    inspect_production,
    load_manifest,
    lock_path,
    open_production,
    read_lock,
)


@dataclass(frozen=True)
class InitResult:
    config_path: Path
    config_written: bool
    """False when a config already existed (init never overwrites it)."""
    lock_path: Path
    inspection: Inspection

    @property
    def masked(self) -> tuple[ColumnClass, ...]:
        return tuple(c for c in self.inspection.classes if c.masked)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": str(self.config_path),
            "config_written": self.config_written,
            "lock": str(self.lock_path),
            "anchors": list(self.inspection.anchors),
            "tables": len(self.inspection.graph.tables),
            "foreign_keys": len(self.inspection.graph.edges),
            "unmapped_relationships": len(self.inspection.graph.unmapped),
            "file_sources": list(self.inspection.files),
            "seeds": list(self.inspection.seeds),
            "notes": list(self.inspection.notes),
            "masked_columns": [
                {
                    "column": c.qualified,
                    "transformer": c.rule.describe(),
                    "kind": c.kind.value if c.kind else None,
                    "reason": c.reason.value,
                }
                for c in self.masked
            ],
        }


def config_text(inspection: Inspection, production_target: str, main_branch: str = "main") -> str:
    """A commented `dataops_dev.yml` with the proposed anchors filled in."""
    today = datetime.now(UTC).date().isoformat()
    anchors = "\n".join(f"    {name}: {{rate: 0.1}}" for name in inspection.anchors)
    anchors_block = f"  anchors:\n{anchors}\n" if anchors else "  # anchors: {}\n"
    event_tables = [t for t in inspection.graph.tables.values() if t.event_time]
    example = event_tables[0].name if event_tables else "source_name.table_name"
    return f"""\
# dataops_dev configuration, written by `dataops-dev init` on {today}.
# Every key is optional; `dataops-dev config show` lists them all with where each value came from.
version: 1

production:
  # The dbt target that is production: read only by `sample`, written only by `deploy`.
  target: {production_target}
  # The branch production is built from: reviews compare against its merge-base with HEAD.
  main_branch: {main_branch}

sample:
  # The masking salt is read from this environment variable, never from a file; unset = error.
  salt_env: DATAOPS_SALT
  # Fraction of each anchor's keys kept: a keyed hash of the key, so the same rate, salt and
  # data give the same sample on every machine and run.
  rate: 0.1
  # The entities the sample is drawn around (proposed: the root table with the most
  # descendants in the FK graph of {LOCK_FILE}). `rows: N` instead of `rate` targets a size.
{anchors_block}  # Row filters applied before the FK closure, e.g. a time window on event_time:
  # filters:
  #   {example}: {{last: 90 days}}
  # Safety cap: a sample table above this many rows fails the run.
  max_rows: 5000000

masking:
  # Per-column rules win over everything else. {LOCK_FILE} lists the proposed decision for
  # every column with its reason; override one here, e.g.
  # columns:
  #   shop.customers.email: {{transformer: email, keep_domain: false}}
  # Unclassified free text is masked with this transformer.
  default_free_text: scramble
  # true: `sample` fails on columns that are not in {LOCK_FILE} (run `init` again to review).
  strict: false
"""


def lock_document(inspection: Inspection) -> dict[str, Any]:
    graph = graph_to_dict(inspection.graph)
    return {
        "version": 1,
        "versions": {"fkgraph": GRAPH_VERSION, "masking": MASKING_VERSION},
        "anchors": list(inspection.anchors),
        "tables": graph["tables"],
        "foreign_keys": graph["foreign_keys"],
        "unmapped_relationships": graph["unmapped"],
        "columns": {
            c.qualified: {
                "transformer": c.rule.transformer.value,
                **({"options": dict(c.rule.options)} if c.rule.options else {}),
                **({"kind": c.kind.value} if c.kind else {}),
                "reason": c.reason.value,
                **({"detail": c.detail} if c.detail else {}),
            }
            for c in sorted(inspection.classes, key=lambda c: c.qualified)
        },
    }


def _main_branch(loaded: LoadedConfig, reporter: Reporter) -> str:
    """The configured main branch when it exists, else the repository's default branch (a
    project whose main line is called `duckdb` or `master` must not fail its first review)."""
    from dataops_dev import gitrepo
    from dataops_dev.errors import GitError

    configured = loaded.config.production.main_branch
    try:
        if configured in gitrepo.branches(loaded.project_dir):
            return configured
        detected = gitrepo.default_branch(loaded.project_dir)
    except GitError:
        return configured
    if detected is None:
        return configured
    reporter.message("info", f"main branch: {detected} (the repository's default branch)")
    return detected


def check_production_target(loaded: LoadedConfig) -> None:
    """Fail with the exact profiles.yml lines to add when the production target is missing."""
    from dataops_dev.dbt.project import load_profile, read_project

    target = loaded.config.production.target
    name, profile = load_profile(loaded)
    outputs = profile["outputs"]
    if target in outputs:
        return
    path = loaded.profiles_dir / "profiles.yml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw_outputs = raw.get(loaded.config.profile or read_project(loaded.project_dir).profile, {})
    raw_outputs = raw_outputs.get("outputs", {}) if isinstance(raw_outputs, dict) else {}
    template_name = (
        profile.get("target") if profile.get("target") in outputs else next(iter(outputs), None)
    )
    template = dict(raw_outputs.get(template_name) or {"type": "duckdb", "path": "prod.duckdb"})
    lines = yaml.safe_dump({target: template}, sort_keys=False, default_flow_style=False)
    snippet = "\n".join("    " + line for line in lines.splitlines())
    others = ", ".join(f"`{o}`" for o in outputs) or "none"
    raise ConfigError(
        f"the production target {target!r} is not in profile {name!r} ({path}); "
        f"its targets: {others}",
        f"add it under `outputs:` (copied from `{template_name}`: point it at production):\n"
        f"{snippet}\n"
        f"or, if one of {others} is production, set `production: {{target: NAME}}` in "
        f"{CONFIG_FILE}",
    )


_LOCK_HEADER = """\
# dataops.lock.yml, written by `dataops-dev init`: review it and commit it.
# foreign_keys: the FK graph between dbt sources and where each edge came from (a relationships
#   test or a foreign_key constraint; `via_models` when declared on models and traced back).
# columns: every source column's masking decision and why (reason: config | meta | tag | name |
#   value | key | not_text | low_cardinality | free_text). `dataops-dev sample` follows these;
#   change a transformer here, or override it in dataops_dev.yml `masking.columns`.
"""


def run_init(
    loaded: LoadedConfig, *, force: bool = False, reporter: Reporter = NULL_REPORTER
) -> InitResult:
    """Inspect production and the dbt project; write the config (if absent) and the lock file.

    Decisions already in the lock file are kept unless `force` (a fresh proposal).
    """
    check_production_target(loaded)
    manifest = load_manifest(loaded, reporter)
    lock = None if force else read_lock(loaded)
    with open_production(loaded) as production:
        inspection = inspect_production(loaded, production, manifest, lock=lock, reporter=reporter)
    # `source` is the file the config came from ("<path> [tool.dataops_dev]" for pyproject.toml);
    # only without one does init propose a dataops_dev.yml.
    config_path = (
        loaded.project_dir / CONFIG_FILE
        if loaded.source == "defaults"
        else Path(loaded.source.removesuffix(" [tool.dataops_dev]"))
    )
    written = False
    if loaded.source == "defaults" and not config_path.exists():
        target_name = loaded.config.production.target
        main_branch = _main_branch(loaded, reporter)
        write_text_atomic(config_path, config_text(inspection, target_name, main_branch))
        written = True
    target = lock_path(loaded)
    body = yaml.safe_dump(lock_document(inspection), sort_keys=False, width=100)
    write_text_atomic(target, _LOCK_HEADER + body)
    for column in inspection.new_columns:
        reporter.message("info", f"new column {column}: classified, review it in {LOCK_FILE}")
    return InitResult(
        config_path=config_path, config_written=written, lock_path=target, inspection=inspection
    )
