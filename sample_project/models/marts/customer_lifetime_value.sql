-- Value of every customer who ordered, measured at the date of the latest order in the data
-- (not today: the numbers must not drift when nothing changed).

with orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    select max(order_date) as as_of_date from orders

),

per_customer as (

    select
        customer_id,
        count(*) as order_count,
        cast(sum(case when is_revenue then 1 else 0 end) as bigint) as revenue_order_count,
        sum(case when is_revenue then net_amount else 0 end) as net_revenue,
        sum(case when is_revenue then margin_amount else 0 end) as gross_margin,
        sum(refunded_amount) as refunded_amount,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from orders
    group by customer_id

)

select
    per_customer.customer_id,
    per_customer.order_count,
    per_customer.revenue_order_count,
    per_customer.net_revenue,
    per_customer.gross_margin,
    per_customer.refunded_amount,
    -- ratios are pinned to numeric: DuckDB would make them double, PostgreSQL numeric
    cast(
        round(per_customer.net_revenue / nullif(per_customer.revenue_order_count, 0), 2)
        as numeric(12, 2)
    ) as avg_order_value,
    per_customer.first_order_date,
    per_customer.last_order_date,
    {{ dbt.datediff('per_customer.first_order_date', 'as_of.as_of_date', 'day') }}
        as tenure_days,
    {{ dbt.datediff('per_customer.last_order_date', 'as_of.as_of_date', 'day') }}
        as days_since_last_order,
    -- annualised spend; short tenures are floored at 30 days to avoid wild extrapolation
    cast(
        round(
            per_customer.net_revenue * 365
            / greatest(
                {{ dbt.datediff('per_customer.first_order_date', 'as_of.as_of_date', 'day') }},
                30
            ),
            2
        ) as numeric(14, 2)
    ) as annualized_value
from per_customer
cross join as_of
