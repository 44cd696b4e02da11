"""The Report: one typed value that every renderer formats and none recomputes.

Its JSON form (`Report.to_dict()`) is the contract documented in the README ("JSON report"): keys
come from these field names in this order, enums become their values. `Report.from_dict` reads it
back (the TUI opens the last saved report without a database). Values in examples and profiles
are masked sample values; raw production values never reach a Report.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any

from dataops_dev.integrity import IntegrityStatus

SCHEMA_VERSION = 1


class Verdict(str, Enum):
    PASS = "pass"
    """No blocking finding is left unapproved."""
    BLOCKED = "blocked"
    """At least one blocking finding lacks an approval (exit code 3)."""
    ERROR = "error"
    """The review could not finish (a build failed); the report says how far it got."""


class Severity(str, Enum):
    BLOCKING = "blocking"
    WARNING = "warning"
    INFO = "info"


class FindingKind(str, Enum):
    BREAKING_CHANGE = "breaking_change"
    CONTRACT_BROKEN = "contract_broken"
    EXPOSURE_IMPACTED = "exposure_impacted"
    POLICY = "policy"
    TEST_FAILED = "test_failed"
    BUILD_FAILED = "build_failed"
    NO_KEY = "no_key"
    MASKING_POLICY_CHANGED = "masking_policy_changed"
    """The branch changes PII meta, the lock file or masking config (trust boundary)."""
    PRODUCTION_TARGET_CHANGED = "production_target_changed"
    """The branch changes which database is production (trust boundary)."""


class Decision(str, Enum):
    APPROVED = "approved"
    REJECTED = "rejected"


class ModelStatus(str, Enum):
    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"
    IMPACTED = "impacted"
    """Not edited, but downstream of an edit: its data can change."""


class ChangeKind(str, Enum):
    BREAKING = "breaking"
    PARTIAL = "partial"
    ADDITIVE = "additive"
    METADATA = "metadata"
    UNKNOWN = "unknown"
    NONE = "none"
    """Impacted models carry no change of their own."""


@dataclass(frozen=True)
class Approval:
    decision: Decision
    by: str
    at: str
    note: str = ""


@dataclass(frozen=True)
class Finding:
    fingerprint: str
    """Hash of what the finding is about (model, rule, diff numbers, head SQL); approvals bind to it."""
    kind: FindingKind
    severity: Severity
    model: str | None
    title: str
    detail: str = ""
    approval: Approval | None = None

    @property
    def blocking(self) -> bool:
        """Blocking and not approved (a rejection keeps it blocking)."""
        if self.severity is not Severity.BLOCKING:
            return False
        return self.approval is None or self.approval.decision is not Decision.APPROVED


@dataclass(frozen=True)
class Side:
    ref: str
    commit: str
    environment: str | None = None
    dirty: bool = False
    reused: bool = False
    """The environment's last build was reused for this report (nothing it depends on changed)."""


@dataclass(frozen=True)
class SampleInfo:
    identity: str
    kind: str = "sample"
    description: str = ""
    examples_masked: bool = True
    """Every example value comes from masked sample columns. False when the compared models
    read committed seeds (not production data, never masked) or the sample masked nothing."""

    @property
    def examples_label(self) -> str:
        """How renderers label example values: "masked" only when they are."""
        return "masked" if self.examples_masked else "not masked"


@dataclass(frozen=True)
class ColumnType:
    name: str
    type: str


@dataclass(frozen=True)
class TypeChange:
    name: str
    before: str
    after: str


@dataclass(frozen=True)
class SchemaChange:
    added: tuple[ColumnType, ...] = ()
    removed: tuple[ColumnType, ...] = ()
    type_changed: tuple[TypeChange, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.type_changed or self.renamed)


@dataclass(frozen=True)
class RowCounts:
    base: int
    head: int
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    null_keys_base: int = 0
    null_keys_head: int = 0
    duplicate_keys_base: int = 0
    duplicate_keys_head: int = 0
    keyless: bool = False
    """No key: `added`/`removed` count rows only in head/base as a multiset; `changed` is 0."""

    @property
    def delta(self) -> int:
        return self.head - self.base

    @property
    def delta_pct(self) -> float | None:
        return None if self.base == 0 else 100.0 * (self.head - self.base) / self.base

    @property
    def differs(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.delta)


@dataclass(frozen=True)
class ValueExample:
    key: Mapping[str, Any]
    before: Any
    after: Any


@dataclass(frozen=True)
class ColumnChange:
    name: str
    changed: int
    compared: int
    match_pct: float | None
    examples: tuple[ValueExample, ...] = ()


@dataclass(frozen=True)
class RowSample:
    change: str
    """"added", "removed" or "changed"."""
    key: Mapping[str, Any]
    before: Mapping[str, Any] | None = None
    """The row on the baseline (for a changed row: only the columns that differ)."""
    after: Mapping[str, Any] | None = None
    """The row on the branch (for a changed row: only the columns that differ)."""


@dataclass(frozen=True)
class ProfileStats:
    count: int
    nulls: int
    distinct: int | None = None
    min: Any = None
    max: Any = None
    mean: float | None = None
    quantiles: Mapping[str, Any] = field(default_factory=dict)
    top_values: tuple[tuple[Any, int], ...] = ()


@dataclass(frozen=True)
class HistogramBin:
    low: Any
    high: Any
    base: int
    head: int


@dataclass(frozen=True)
class ColumnProfileChange:
    name: str
    base: ProfileStats | None
    head: ProfileStats | None
    histogram: tuple[HistogramBin, ...] = ()

    @property
    def changed(self) -> bool:
        return self.base != self.head


@dataclass(frozen=True)
class DataDiff:
    key: tuple[str, ...] | None
    rows: RowCounts
    columns: tuple[ColumnChange, ...] = ()
    row_samples: tuple[RowSample, ...] = ()
    profile: tuple[ColumnProfileChange, ...] = ()

    @property
    def changed_columns(self) -> tuple[ColumnChange, ...]:
        return tuple(c for c in self.columns if c.changed)


@dataclass(frozen=True)
class TestResult:
    name: str
    unique_id: str
    status: str
    """dbt's status: pass, fail, error, warn, skipped."""
    message: str | None = None
    failures: int | None = None
    compiled_sql: str | None = None
    new: bool = False
    """Fails on the branch but passed (or did not exist) on the baseline."""

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")


@dataclass(frozen=True)
class ModelReport:
    name: str
    unique_id: str
    status: ModelStatus
    change: ChangeKind
    changed_columns: tuple[str, ...] = ()
    impacted_columns: tuple[str, ...] = ()
    """Columns of this model whose values can differ (from lineage)."""
    rows_affected: bool = False
    """The change can add or remove rows here (filter, join, grain)."""
    impacted_models: tuple[str, ...] = ()
    """Downstream models this model's change reaches."""
    exposures: tuple[str, ...] = ()
    contract_enforced: bool = False
    contract_broken: bool = False
    materialized: str | None = None
    reasons: tuple[str, ...] = ()
    schema: SchemaChange | None = None
    diff: DataDiff | None = None
    diff_note: str | None = None
    """Why there is no data diff (no key, not materialized, nothing can differ...)."""
    tests: tuple[TestResult, ...] = ()
    findings: tuple[Finding, ...] = ()
    base_sql: str | None = None
    head_sql: str | None = None


@dataclass(frozen=True)
class LineageEdge:
    source: str
    """`<node>.<column>`; a node is a model name or `source_name.table_name`."""
    target: str
    kind: str


@dataclass(frozen=True)
class ExposureImpact:
    name: str
    type: str
    owner: str | None
    models: tuple[str, ...]
    """The changed or impacted models it depends on."""


@dataclass(frozen=True)
class Report:
    schema_version: int
    project: str
    generated_at: str
    base: Side
    head: Side
    verdict: Verdict
    models: tuple[ModelReport, ...]
    lineage: tuple[LineageEdge, ...] = ()
    exposures: tuple[ExposureImpact, ...] = ()
    sample: SampleInfo | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    next_commands: tuple[str, ...] = ()
    error: str | None = None
    worktree: Mapping[str, str] = field(default_factory=dict)
    """Files of the dbt project that differed from `head.commit` when the review started
    (path -> content hash, or "deleted"): with the commit, the exact state the review saw."""
    reused_from: str | None = None
    """`generated_at` of the review whose results this one returned unchanged because nothing
    it depends on changed since (review_reuse.py); None when the review ran."""
    integrity: IntegrityStatus = field(
        default=IntegrityStatus.COMPUTED, compare=False, metadata={"json": False}
    )
    """Whether this report can be trusted to be what a review produced (never written: the
    file carries its tag under the same key instead, see dataops_dev/integrity.py)."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for m in self.models for f in m.findings)

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocking)

    @cached_property
    def counts(self) -> dict[str, int]:
        """Models per change kind (impacted-only models under "impacted")."""
        counts: dict[str, int] = {}
        for model in self.models:
            key = "impacted" if model.status is ModelStatus.IMPACTED else model.change.value
            counts[key] = counts.get(key, 0) + 1
        return counts

    def model(self, name: str) -> ModelReport:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        data = to_jsonable(self)
        assert isinstance(data, dict)
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            from dataops_dev.errors import ProjectError

            raise ProjectError(
                f"report schema_version {version} is not {SCHEMA_VERSION}",
                "run `dataops-dev review` again to write a current report",
            )
        report = from_jsonable(cls, _upgrade(data))
        assert isinstance(report, Report)
        # Read from outside the process: untrusted until a loader checks its tag.
        return dataclasses.replace(report, integrity=IntegrityStatus.UNCHECKED)

    @classmethod
    def load(cls, path: Path) -> Report:
        """A saved report; `StateFileError` naming the file when it is not one."""
        from dataops_dev.statefiles import load_json

        data = load_json(Path(path), what="report", fix=REPORT_FIX)
        return cls.from_saved(data, Path(path))

    @classmethod
    def from_saved(cls, data: Mapping[str, Any], path: Path) -> Report:
        """The report in `data`, read from `path`; `StateFileError` naming the file when its
        content is not a report this release reads (wrong shape, unknown enum value...)."""
        from dataops_dev.errors import DataopsError, StateFileError

        fix = REPORT_FIX
        try:
            return cls.from_dict(data)
        except DataopsError as exc:
            raise StateFileError(f"report {path}: {exc.message}", exc.hint) from None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            raise StateFileError(
                f"report {path} is not a report this release reads ({reason})", fix
            ) from None


REPORT_FIX = "run `dataops-dev review` again to write a new report"

_LEGACY_REUSE_TIMINGS = {"baseline_reused": "base", "branch_reused": "head"}


def _upgrade(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Earlier reports kept the reuse flags in `timings` as 1.0/0.0 "seconds": move them to
    `base.reused`/`head.reused`, so timings hold seconds only whatever wrote the file."""
    timings = data.get("timings")
    if not isinstance(timings, Mapping) or not _LEGACY_REUSE_TIMINGS.keys() & timings.keys():
        return data
    upgraded = dict(data)
    upgraded["timings"] = {k: v for k, v in timings.items() if k not in _LEGACY_REUSE_TIMINGS}
    for key, side in _LEGACY_REUSE_TIMINGS.items():
        if key in timings and isinstance(data.get(side), Mapping):
            upgraded[side] = {"reused": bool(timings[key]), **data[side]}
    return upgraded


# ----------------------------------------------------------------------------------------------
# A generic codec over these frozen dataclasses (field order = key order).


def _jsonable_scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    # The diff engine's encoding (NaN, Decimal as text, ...), so a value reads the same in a
    # report as in `dataops-dev diff --json`. Imported here: it loads the whole diff engine.
    from dataops_dev.diffing.model import json_value

    return json_value(value)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.metadata.get("json", True)
        }
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return _jsonable_scalar(value)


_HINTS: dict[type, dict[str, Any]] = {}


def from_jsonable(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or value is None:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in (a for a in args if a is not type(None)):
            try:
                return from_jsonable(option, value)
            except (TypeError, ValueError, KeyError):
                continue
        return value
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if dataclasses.is_dataclass(tp):
        assert isinstance(tp, type)
        hints = _HINTS.get(tp)
        if hints is None:
            hints = _HINTS[tp] = typing.get_type_hints(tp)
        if not isinstance(value, Mapping):
            raise TypeError(f"{tp.__name__} expects an object")
        kwargs = {
            f.name: from_jsonable(hints[f.name], value[f.name])
            for f in dataclasses.fields(tp)
            if f.name in value and f.metadata.get("json", True)
        }
        return tp(**kwargs)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v) for v in value)
        return tuple(from_jsonable(a, v) for a, v in zip(args, value, strict=False))
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        value_type = args[1] if len(args) == 2 else Any
        return {k: from_jsonable(value_type, v) for k, v in value.items()}
    return value
