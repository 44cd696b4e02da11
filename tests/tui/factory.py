"""A realistic review report of sample_project for the TUI tests: a breaking change in stg_orders
reaching fct_orders, dim_customers (contracted) and two exposures; fixed values, no clock."""

from __future__ import annotations

from dataops_dev.decisions import fingerprint
from dataops_dev.report.model import (
    SCHEMA_VERSION,
    ChangeKind,
    ColumnChange,
    ColumnProfileChange,
    ColumnType,
    DataDiff,
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

BASE_SQL = """select
    order_id,
    customer_id,
    store_id,
    cast(ordered_at as date) as order_date,
    status,
    amount_cents / 100.0 as amount
from raw.orders
where status <> 'test'
"""
HEAD_SQL = """select
    order_id,
    customer_id,
    store_id,
    cast(ordered_at as date) as order_date,
    lower(status) as status,
    round(amount_cents / 100.0, 2) as amount,
    channel
from raw.orders
where status not in ('test', 'cancelled')
"""


def _finding(
    kind: FindingKind, severity: Severity, model: str, title: str, detail: str = ""
) -> Finding:
    return Finding(
        fingerprint=fingerprint(kind.value, model, title),
        kind=kind,
        severity=severity,
        model=model,
        title=title,
        detail=detail,
    )


def _hist(
    pairs: list[tuple[int, int]], low: float = 0.0, width: float = 50.0
) -> tuple[HistogramBin, ...]:
    return tuple(
        HistogramBin(low=low + i * width, high=low + (i + 1) * width, base=b, head=h)
        for i, (b, h) in enumerate(pairs)
    )


def stg_orders() -> ModelReport:
    return ModelReport(
        name="stg_orders",
        unique_id="model.sample_project.stg_orders",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.BREAKING,
        changed_columns=("status", "amount", "channel"),
        impacted_columns=("status", "amount", "channel"),
        rows_affected=True,
        impacted_models=("fct_orders", "dim_customers", "daily_revenue"),
        exposures=("revenue_dashboard", "customer_360"),
        materialized="view",
        reasons=(
            "WHERE changed: status not in ('test', 'cancelled')",
            "status: lower() applied",
            "amount: rounded to 2 decimals",
            "channel: new column",
        ),
        schema=SchemaChange(
            added=(ColumnType("channel", "VARCHAR"),),
            type_changed=(TypeChange("amount", "DOUBLE", "DECIMAL(18,2)"),),
        ),
        diff=DataDiff(
            key=("order_id",),
            rows=RowCounts(base=1200, head=1164, added=0, removed=36, changed=412, unchanged=752),
            columns=(
                ColumnChange("order_id", 0, 1164, 100.0),
                ColumnChange(
                    "status",
                    398,
                    1164,
                    65.8,
                    examples=(
                        ValueExample({"order_id": 17}, "Shipped", "shipped"),
                        ValueExample({"order_id": 23}, "Returned", "returned"),
                    ),
                ),
                ColumnChange(
                    "amount",
                    14,
                    1164,
                    98.8,
                    examples=(ValueExample({"order_id": 5}, 12.345, 12.35),),
                ),
            ),
            row_samples=(
                RowSample(
                    "removed", {"order_id": 41}, before={"status": "cancelled", "amount": 30.0}
                ),
                RowSample(
                    "removed", {"order_id": 77}, before={"status": "cancelled", "amount": 12.5}
                ),
                RowSample(
                    "changed",
                    {"order_id": 17},
                    before={"status": "Shipped"},
                    after={"status": "shipped"},
                ),
            ),
            profile=(
                ColumnProfileChange(
                    "amount",
                    ProfileStats(count=1200, nulls=0, distinct=980, min=1.0, max=499.0, mean=81.2),
                    ProfileStats(count=1164, nulls=0, distinct=951, min=1.0, max=499.0, mean=82.9),
                    histogram=_hist([(310, 300), (420, 404), (260, 251), (140, 135), (70, 74)]),
                ),
                ColumnProfileChange(
                    "status",
                    ProfileStats(count=1200, nulls=0, distinct=9),
                    ProfileStats(count=1164, nulls=0, distinct=4),
                ),
            ),
        ),
        tests=(
            TestResult(
                "accepted_values_stg_orders_status",
                "test.sample_project.accepted_values_stg_orders_status.1a2b",
                "fail",
                message="Got 2 results, configured to fail if != 0",
                failures=2,
                compiled_sql=(
                    "select status, count(*) as n from stg_orders\n"
                    "where status not in ('placed', 'shipped', 'completed', 'returned')\n"
                    "group by status"
                ),
                new=True,
            ),
            TestResult(
                "unique_stg_orders_order_id",
                "test.sample_project.unique_stg_orders_order_id.3c4d",
                "pass",
                failures=0,
                compiled_sql="select order_id from stg_orders group by 1 having count(*) > 1",
            ),
        ),
        findings=(
            _finding(
                FindingKind.BREAKING_CHANGE,
                Severity.BLOCKING,
                "stg_orders",
                "stg_orders: filter changed, 36 rows removed",
                "rows with status 'cancelled' are no longer selected",
            ),
            _finding(
                FindingKind.TEST_FAILED,
                Severity.BLOCKING,
                "stg_orders",
                "accepted_values_stg_orders_status fails (new)",
            ),
            _finding(
                FindingKind.EXPOSURE_IMPACTED,
                Severity.WARNING,
                "stg_orders",
                "exposure revenue_dashboard reads changed data",
            ),
        ),
        base_sql=BASE_SQL,
        head_sql=HEAD_SQL,
    )


def fct_orders() -> ModelReport:
    return ModelReport(
        name="fct_orders",
        unique_id="model.sample_project.fct_orders",
        status=ModelStatus.IMPACTED,
        change=ChangeKind.NONE,
        impacted_columns=("status", "amount", "order_total"),
        rows_affected=True,
        materialized="table",
        diff=DataDiff(
            key=("order_id",),
            rows=RowCounts(base=1200, head=1164, removed=36, changed=401, unchanged=763),
            columns=(
                ColumnChange("status", 398, 1164, 65.8),
                ColumnChange("order_total", 9, 1164, 99.2),
            ),
        ),
        tests=(
            TestResult(
                "not_null_fct_orders_order_id", "test.sample_project.nn.1", "pass", failures=0
            ),
        ),
        findings=(
            _finding(
                FindingKind.POLICY,
                Severity.BLOCKING,
                "fct_orders",
                "fct_orders: row count -3.0% exceeds max_row_delta 1%",
            ),
        ),
    )


def dim_customers() -> ModelReport:
    return ModelReport(
        name="dim_customers",
        unique_id="model.sample_project.dim_customers",
        status=ModelStatus.IMPACTED,
        change=ChangeKind.NONE,
        impacted_columns=("lifetime_orders",),
        contract_enforced=True,
        materialized="table",
        diff=DataDiff(
            key=("customer_id",),
            rows=RowCounts(base=300, head=300, changed=21, unchanged=279),
            columns=(ColumnChange("lifetime_orders", 21, 300, 93.0),),
        ),
    )


def daily_revenue() -> ModelReport:
    return ModelReport(
        name="daily_revenue",
        unique_id="model.sample_project.daily_revenue",
        status=ModelStatus.IMPACTED,
        change=ChangeKind.NONE,
        impacted_columns=("revenue",),
        materialized="table",
        diff_note="no key: compared as a multiset of rows",
        diff=DataDiff(
            key=None, rows=RowCounts(base=90, head=90, added=12, removed=12, keyless=True)
        ),
    )


def dim_products() -> ModelReport:
    return ModelReport(
        name="dim_products",
        unique_id="model.sample_project.dim_products",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.ADDITIVE,
        changed_columns=("is_discontinued",),
        materialized="table",
        reasons=("is_discontinued: new column",),
        schema=SchemaChange(added=(ColumnType("is_discontinued", "BOOLEAN"),)),
        diff=DataDiff(key=("product_id",), rows=RowCounts(base=40, head=40, unchanged=40)),
        base_sql="select product_id, name from stg_products",
        head_sql="select product_id, name, false as is_discontinued from stg_products",
    )


def stg_stores() -> ModelReport:
    return ModelReport(
        name="stg_stores",
        unique_id="model.sample_project.stg_stores",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.METADATA,
        materialized="view",
        reasons=("description of store_id changed",),
        diff_note="metadata only: no data can differ",
    )


def lineage() -> tuple[LineageEdge, ...]:
    edges = [
        ("shop.orders.status", "stg_orders.status", "direct"),
        ("shop.orders.amount_cents", "stg_orders.amount", "direct"),
        ("shop.orders.channel", "stg_orders.channel", "direct"),
        ("shop.orders.status", "stg_orders.*", "filter"),
        ("stg_orders.status", "fct_orders.status", "direct"),
        ("stg_orders.amount", "fct_orders.order_total", "direct"),
        ("stg_orders.customer_id", "dim_customers.lifetime_orders", "aggregate"),
        ("fct_orders.order_total", "daily_revenue.revenue", "aggregate"),
        ("stg_products.name", "dim_products.name", "direct"),
    ]
    return tuple(LineageEdge(s, t, k) for s, t, k in edges)


def make_report() -> Report:
    models = (
        stg_orders(),
        dim_products(),
        stg_stores(),
        fct_orders(),
        dim_customers(),
        daily_revenue(),
    )
    return Report(
        schema_version=SCHEMA_VERSION,
        project="sample_project",
        generated_at="2026-11-21T10:30:00+00:00",
        base=Side(ref="main", commit="4f1c2a9e0b7d3c5a", environment="base_4f1c2a9e0b7d"),
        head=Side(
            ref="feature/orders-cleanup",
            commit="9b8a7c6d5e4f3a2b",
            environment="feature_orders_cleanup",
        ),
        verdict=Verdict.BLOCKED,
        models=models,
        lineage=lineage(),
        exposures=(
            ExposureImpact(
                "revenue_dashboard", "dashboard", "Finance Analytics", ("daily_revenue",)
            ),
            ExposureImpact("customer_360", "application", "CRM team", ("dim_customers",)),
        ),
        sample=SampleInfo(identity="sample_7a1e", description="10% of customers, FK-closed"),
        timings={"total": 41.2, "build": 30.1, "diff": 6.3},
        next_commands=("dataops-dev decide approve <fingerprint> --note ...",),
    )
