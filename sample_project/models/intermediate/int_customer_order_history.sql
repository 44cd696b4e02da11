-- Lifetime order history per customer (customers with at least one order).

with orders as (

    select * from {{ ref('stg_orders') }}

),

order_totals as (

    select * from {{ ref('int_order_totals') }}

)

select
    orders.customer_id,
    min(orders.ordered_at) as first_order_at,
    max(orders.ordered_at) as last_order_at,
    count(*) as order_count,
    -- sums of integers are bigint on PostgreSQL but hugeint on DuckDB: pin the type
    cast(sum(case when orders.status = 'completed' then 1 else 0 end) as bigint)
        as completed_order_count,
    cast(sum(case when orders.status = 'returned' then 1 else 0 end) as bigint)
        as returned_order_count,
    cast(sum(case when orders.status = 'cancelled' then 1 else 0 end) as bigint)
        as cancelled_order_count,
    -- revenue counts orders that were neither cancelled nor sent back
    coalesce(sum(
        case
            when orders.status in ('placed', 'shipped', 'completed') then order_totals.net_amount
        end
    ), 0) as lifetime_value
from orders
inner join order_totals
    on orders.order_id = order_totals.order_id
group by orders.customer_id
