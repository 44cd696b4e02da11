"""Synthetic Reports for renderer tests: realistic numbers, masked-looking values, hostile strings.

`small_report()` is a sample_project-like review (one breaking change, one failed test, an
exposure); `large_report(n)` touches `n` models in a fan-out DAG for the budget tests.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from dataops_dev.report.model import (
    SCHEMA_VERSION,
    Approval,
    ChangeKind,
    ColumnChange,
    ColumnProfileChange,
    ColumnType,
    DataDiff,
    Decision,
    ExposureImpact,
    Finding,
    FindingKind,
    HistogramBin,
    LineageEdge,
    ModelReport,
    ModelStatus,
    ProfileStats,
    Report,
    RowCounts,
    RowSample,
    SampleInfo,
    SchemaChange,
    Severity,
    Side,
    TestResult,
    TypeChange,
    ValueExample,
    Verdict,
)

HOSTILE = '<script>alert("x")</script> | `tick` **bold** [link](http://evil) & "q"'


def masked(kind: str, n: int) -> str:
    digest = hashlib.sha256(f"{kind}:{n}".encode()).hexdigest()[:10]
    if kind == "email":
        return f"{digest}@masked.invalid"
    return f"{kind}_{digest}"


def fp(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _hist(rng: random.Random, shift: float) -> tuple[HistogramBin, ...]:
    bins = []
    for i in range(10):
        base = int(200 * (1 - abs(i - 4.5) / 5)) + rng.randint(0, 20)
        head = max(0, int(base * (1 + shift * (i - 4.5) / 4.5)))
        bins.append(HistogramBin(low=i * 25.0, high=(i + 1) * 25.0, base=base, head=head))
    return tuple(bins)


def _profile(name: str, rng: random.Random, shift: float) -> ColumnProfileChange:
    base = ProfileStats(
        count=1200,
        nulls=3,
        distinct=1100,
        min=0.5,
        max=249.0,
        mean=112.4,
        quantiles={"p50": 110.0},
        top_values=((19.99, 40), (9.5, 31), (120.0, 22)),
    )
    head = ProfileStats(
        count=1200,
        nulls=3 + int(shift * 10),
        distinct=1100 - int(shift * 50),
        min=0.5,
        max=249.0 * (1 + shift),
        mean=112.4 * (1 + shift),
        quantiles={"p50": 110.0 * (1 + shift)},
        top_values=((19.99, 38), (9.5, 35), (132.0, 20)),
    )
    return ColumnProfileChange(name=name, base=base, head=head, histogram=_hist(rng, shift))


def _text_profile(name: str) -> ColumnProfileChange:
    base = ProfileStats(
        count=1200,
        nulls=0,
        distinct=4,
        top_values=(("completed", 700), ("shipped", 300), ("placed", 150), ("returned", 50)),
    )
    head = ProfileStats(
        count=1210,
        nulls=0,
        distinct=5,
        top_values=(
            ("completed", 690),
            ("shipped", 300),
            ("placed", 150),
            ("returned", 50),
            ("return_pending", 20),
        ),
    )
    return ColumnProfileChange(name=name, base=base, head=head)


def _diff(name: str, rng: random.Random, n_rows: int, shift: float, pii: bool) -> DataDiff:
    added = rng.randint(0, 12)
    removed = rng.randint(0, 5)
    changed = int(n_rows * shift) + rng.randint(1, 40)
    base = n_rows
    head = n_rows + added - removed
    unchanged = base - removed - changed
    examples = tuple(
        ValueExample(
            key={"order_id": 1000 + i},
            before=round(10 + i * 1.5, 2),
            after=round((10 + i * 1.5) * (1 + shift), 2),
        )
        for i in range(5)
    )
    columns = [
        ColumnChange("amount", changed, base - removed, 100.0 * unchanged / base, examples),
        ColumnChange("status", changed // 3, base - removed, 99.2, ()),
        ColumnChange("order_id", 0, base - removed, 100.0, ()),
    ]
    if pii:
        columns.append(
            ColumnChange(
                "customer_email",
                7,
                base - removed,
                99.4,
                tuple(
                    ValueExample(
                        key={"order_id": 2000 + i},
                        before=masked("email", i),
                        after=masked("email", i + 100),
                    )
                    for i in range(3)
                ),
            )
        )
    samples = (
        tuple(
            RowSample(
                "added",
                {"order_id": 9000 + i},
                after={"amount": 12.5 + i, "customer": masked("name", i)},
            )
            for i in range(min(added, 3))
        )
        + tuple(
            RowSample(
                "changed", {"order_id": 1000}, before={"amount": 10.0}, after={"amount": 11.5}
            )
            for _ in range(1)
        )
        + tuple(
            RowSample(
                "removed",
                {"order_id": 500 + i},
                before={"amount": 3.0, "customer": masked("name", i)},
            )
            for i in range(min(removed, 2))
        )
    )
    return DataDiff(
        key=("order_id",),
        rows=RowCounts(
            base=base,
            head=head,
            added=added,
            removed=removed,
            changed=changed,
            unchanged=unchanged,
        ),
        columns=tuple(columns),
        row_samples=samples,
        profile=(_profile("amount", rng, shift), _text_profile("status")),
    )


def _model(
    name: str,
    status: ModelStatus,
    change: ChangeKind,
    rng: random.Random,
    *,
    findings: tuple[Finding, ...] = (),
    tests: tuple[TestResult, ...] = (),
    impacted_models: tuple[str, ...] = (),
    exposures: tuple[str, ...] = (),
    pii: bool = False,
    schema: SchemaChange | None = None,
    n_rows: int = 1200,
) -> ModelReport:
    shift = 0.0 if status is ModelStatus.IMPACTED and rng.random() < 0.3 else rng.random() * 0.2
    return ModelReport(
        name=name,
        unique_id=f"model.shop.{name}",
        status=status,
        change=change,
        changed_columns=("amount",) if status is not ModelStatus.IMPACTED else (),
        impacted_columns=("amount", "status"),
        rows_affected=change is ChangeKind.BREAKING,
        impacted_models=impacted_models,
        exposures=exposures,
        contract_enforced=name == "dim_customers",
        materialized="table",
        reasons=("WHERE clause changed",) if change is ChangeKind.BREAKING else (),
        schema=schema or SchemaChange(),
        diff=_diff(name, rng, n_rows, shift, pii),
        tests=tests,
        findings=findings,
        base_sql=f'select * from "raw"."{name}"',
        head_sql=f'select * from "raw"."{name}" where amount > 0',
    )


def small_report(
    verdict: Verdict = Verdict.BLOCKED, approved: bool = False, seed: int = 0
) -> Report:
    rng = random.Random(seed)
    breaking = Finding(
        fingerprint=fp("breaking", "fct_orders"),
        kind=FindingKind.BREAKING_CHANGE,
        severity=Severity.BLOCKING,
        model="fct_orders",
        title="breaking change: rows filtered by a new WHERE clause",
        detail="1,234 rows differ; 2 downstream models and 1 exposure read it",
        approval=Approval(Decision.APPROVED, "ana", "2026-11-21T10:00:00Z", "expected")
        if approved
        else None,
    )
    test_finding = Finding(
        fingerprint=fp("test", "fct_orders"),
        kind=FindingKind.TEST_FAILED,
        severity=Severity.BLOCKING,
        model="fct_orders",
        title="not_null_fct_orders_amount failed (3 rows)",
        approval=Approval(Decision.APPROVED, "ana", "2026-11-21T10:00:00Z") if approved else None,
    )
    warning = Finding(
        fingerprint=fp("exposure", "revenue_dashboard"),
        kind=FindingKind.EXPOSURE_IMPACTED,
        severity=Severity.WARNING,
        model="fct_revenue",
        title=f"exposure revenue_dashboard reads changed columns {HOSTILE}",
    )
    failed = TestResult(
        name="not_null_fct_orders_amount",
        unique_id="test.shop.not_null_fct_orders_amount.abc",
        status="fail",
        message="Got 3 results, configured to fail if != 0",
        failures=3,
        compiled_sql="select * from fct_orders where amount is null",
        new=True,
    )
    passed = TestResult(
        name="unique_fct_orders_order_id",
        unique_id="test.shop.unique_fct_orders_order_id.def",
        status="pass",
    )
    models = (
        _model(
            "stg_orders",
            ModelStatus.MODIFIED,
            ChangeKind.PARTIAL,
            rng,
            impacted_models=("fct_orders", "fct_revenue", "dim_customers"),
            pii=True,
        ),
        _model(
            "fct_orders",
            ModelStatus.MODIFIED,
            ChangeKind.BREAKING,
            rng,
            findings=(breaking, test_finding),
            tests=(failed, passed),
            impacted_models=("fct_revenue",),
            schema=SchemaChange(
                added=(ColumnType("discount", "DECIMAL(10,2)"),),
                removed=(ColumnType("legacy_flag", "BOOLEAN"),),
                type_changed=(TypeChange("amount", "INTEGER", "DECIMAL(10,2)"),),
            ),
        ),
        _model("int_order_lines", ModelStatus.ADDED, ChangeKind.ADDITIVE, rng),
        _model(
            "dim_customers",
            ModelStatus.IMPACTED,
            ChangeKind.NONE,
            rng,
            pii=True,
        ),
        _model(
            "fct_revenue",
            ModelStatus.IMPACTED,
            ChangeKind.NONE,
            rng,
            findings=(warning,),
            exposures=("revenue_dashboard",),
        ),
    )
    lineage = (
        LineageEdge("stg_orders.amount", "fct_orders.amount", "value"),
        LineageEdge("stg_orders.order_id", "fct_orders.order_id", "value"),
        LineageEdge("fct_orders.amount", "fct_revenue.revenue", "value"),
        LineageEdge("stg_orders.customer_id", "dim_customers.lifetime_value", "value"),
        LineageEdge("shop.orders.amount", "stg_orders.amount", "value"),
        LineageEdge("stg_orders.order_id", "int_order_lines.order_id", "value"),
    )
    report = Report(
        schema_version=SCHEMA_VERSION,
        project="shop",
        generated_at="2026-11-21T10:30:00Z",
        base=Side("main", "0123456789abcdef0123", "base_01234567"),
        head=Side("feature/discounts", "fedcba9876543210fedc", "feature_discounts", dirty=True),
        verdict=verdict if not approved else Verdict.PASS,
        models=models,
        lineage=lineage,
        exposures=(
            ExposureImpact(
                "revenue_dashboard", "dashboard", "finance@example.com", ("fct_revenue",)
            ),
        ),
        sample=SampleInfo("sample-3f2a", "sample", "10% of customers, FK-closed, masked"),
        timings={"sample": 1.2, "base": 8.5, "head": 7.9, "diff": 0.8},
        next_commands=(),
        error="dbt build failed on fct_orders" if verdict is Verdict.ERROR else None,
    )
    return report


def large_report(n_models: int = 200, seed: int = 1, lineage: bool = True) -> Report:
    """A change touching `n_models`: 20 edited models fanning out to the rest."""
    rng = random.Random(seed)
    names = [
        f"model_{i:03d}_{rng.choice(['orders', 'customers', 'payments'])}" for i in range(n_models)
    ]
    n_changed = max(1, n_models // 10)
    parents: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        if i >= n_changed:
            parents[name] = rng.sample(names[:i], k=min(2, i))
    children: dict[str, list[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)
    models = []
    edges = []
    for i, name in enumerate(names):
        changed = i < n_changed
        findings: tuple[Finding, ...] = ()
        if changed and i % 3 == 0:
            findings = (
                Finding(
                    fingerprint=fp("breaking", name),
                    kind=FindingKind.BREAKING_CHANGE,
                    severity=Severity.BLOCKING,
                    model=name,
                    title=f"breaking change to {name}",
                ),
            )
        models.append(
            _model(
                name,
                ModelStatus.MODIFIED if changed else ModelStatus.IMPACTED,
                ChangeKind.BREAKING
                if findings
                else (ChangeKind.PARTIAL if changed else ChangeKind.NONE),
                rng,
                findings=findings,
                impacted_models=tuple(children.get(name, ())),
                pii=i % 4 == 0,
                schema=SchemaChange(added=(ColumnType("new_col", "VARCHAR"),)) if changed else None,
                n_rows=rng.randint(100, 200_000),
            )
        )
        for p in parents.get(name, ()):
            for col in ("amount", "status", "order_id"):
                edges.append(LineageEdge(f"{p}.{col}", f"{name}.{col}", "value"))
    return Report(
        schema_version=SCHEMA_VERSION,
        project="bench_project",
        generated_at="2026-11-21T10:30:00Z",
        base=Side("main", "a" * 40, "base_aaaaaaaa"),
        head=Side("feature/wide", "b" * 40, "feature_wide"),
        verdict=Verdict.BLOCKED,
        models=tuple(models),
        lineage=tuple(edges) if lineage else (),
        exposures=tuple(
            ExposureImpact(f"dashboard_{j}", "dashboard", None, (names[-1 - j],)) for j in range(5)
        ),
        sample=SampleInfo("sample-bench"),
        timings={"total": 120.0},
    )


def report_from_impact(impact: Any, manifest: Any, seed: int = 2) -> Report:
    """A Report over a real static impact (generated project): its change set, impact radius,
    exposures and model-level edges, with synthetic data diffs for realistic sizes."""
    rng = random.Random(seed)
    changes = {m.name: m for m in impact.models}
    names_by_uid = {n.unique_id: n.name for n in manifest.models()}
    impacted = [names_by_uid.get(u, u.rsplit(".", 1)[-1]) for u in impact.diff_needed]
    impacted = [n for n in dict.fromkeys(impacted) if n not in changes]
    models: list[ModelReport] = []
    for change in impact.models:
        findings: tuple[Finding, ...] = ()
        if change.change.value == "breaking":
            findings = (
                Finding(
                    fingerprint=fp("breaking", change.name),
                    kind=FindingKind.BREAKING_CHANGE,
                    severity=Severity.BLOCKING,
                    model=change.name,
                    title=f"breaking change: {'; '.join(change.reasons) or change.name}",
                ),
            )
        models.append(
            _model(
                change.name,
                ModelStatus(change.status.value),
                ChangeKind(change.change.value),
                rng,
                findings=findings,
                impacted_models=change.impacted.models,
                exposures=change.exposures,
                pii=True,
            )
        )
    for name in impacted:
        models.append(_model(name, ModelStatus.IMPACTED, ChangeKind.NONE, rng, pii=True))
    in_report = {m.name for m in models}
    edges = []
    for parent, children in manifest.child_map.items():
        source = names_by_uid.get(parent)
        for child in children:
            target = names_by_uid.get(child)
            if source in in_report and target in in_report:
                edges.append(LineageEdge(f"{source}.id", f"{target}.id", "value"))
    exposures: dict[str, list[str]] = {}
    for change in impact.models:
        for exposure in change.exposures:
            exposures.setdefault(exposure, []).append(change.name)
    return Report(
        schema_version=SCHEMA_VERSION,
        project="bench_project",
        generated_at="2026-11-21T10:30:00Z",
        base=Side("main", "c" * 40, "base_cccccccc"),
        head=Side("feature/staging-filter", "d" * 40, "feature_staging_filter"),
        verdict=Verdict.BLOCKED if any(m.findings for m in models) else Verdict.PASS,
        models=tuple(models),
        lineage=tuple(edges),
        exposures=tuple(
            ExposureImpact(name, "dashboard", None, tuple(ms)) for name, ms in exposures.items()
        ),
        sample=SampleInfo("sample-gen"),
    )
