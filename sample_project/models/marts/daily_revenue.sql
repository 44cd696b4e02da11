with orders as (

    select * from {{ ref('fct_orders') }}

),

daily as (

    select
        order_date as revenue_date,
        count(*) as order_count,
        cast(sum(case when is_revenue then 1 else 0 end) as bigint) as revenue_order_count,
        count(distinct customer_id) as customer_count,
        sum(case when is_revenue then gross_amount else 0 end) as gross_revenue,
        sum(case when is_revenue then discount_amount else 0 end) as discounts,
        sum(case when is_revenue then net_amount else 0 end) as net_revenue,
        sum(case when is_revenue then margin_amount else 0 end) as gross_margin,
        sum(case when status = 'returned' then net_amount else 0 end) as returned_revenue
    from orders
    group by order_date

)

select
    revenue_date,
    order_count,
    revenue_order_count,
    customer_count,
    gross_revenue,
    discounts,
    net_revenue,
    gross_margin,
    returned_revenue,
    -- ratios are pinned to numeric: DuckDB would make them double, PostgreSQL numeric
    cast(round(net_revenue / nullif(revenue_order_count, 0), 2) as numeric(12, 2))
        as avg_order_value,
    sum(net_revenue) over (
        order by revenue_date
        rows between unbounded preceding and current row
    ) as cumulative_net_revenue,
    cast(
        round(avg(net_revenue) over (
            order by revenue_date
            rows between 6 preceding and current row
        ), 2) as numeric(14, 2)
    ) as net_revenue_7d_avg
from daily
