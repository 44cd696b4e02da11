with stores as (

    select * from {{ ref('dim_stores') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

per_store as (

    select
        store_id,
        count(*) as order_count,
        count(distinct customer_id) as customer_count,
        cast(sum(case when channel = 'in_store' then 1 else 0 end) as bigint)
            as in_store_order_count,
        sum(case when is_revenue then net_amount else 0 end) as net_revenue,
        sum(case when is_revenue then margin_amount else 0 end) as gross_margin,
        cast(sum(case when status = 'returned' then 1 else 0 end) as bigint)
            as returned_order_count
    from orders
    group by store_id

)

select
    stores.store_id,
    stores.store_name,
    stores.city,
    coalesce(per_store.order_count, 0) as order_count,
    coalesce(per_store.customer_count, 0) as customer_count,
    coalesce(per_store.in_store_order_count, 0) as in_store_order_count,
    coalesce(per_store.net_revenue, 0) as net_revenue,
    coalesce(per_store.gross_margin, 0) as gross_margin,
    cast(
        round(
            cast(per_store.returned_order_count as numeric(18, 4))
            / nullif(per_store.order_count, 0),
            4
        ) as numeric(6, 4)
    ) as return_rate,
    rank() over (order by coalesce(per_store.net_revenue, 0) desc) as revenue_rank
from stores
left join per_store
    on stores.store_id = per_store.store_id
