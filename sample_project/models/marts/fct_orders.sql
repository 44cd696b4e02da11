-- One row per order: what was bought, what it earned and how it was paid.

with orders as (

    select * from {{ ref('stg_orders') }}

),

order_totals as (

    select * from {{ ref('int_order_totals') }}

),

order_payments as (

    select * from {{ ref('int_order_payments') }}

),

joined as (

    select
        orders.order_id,
        orders.customer_id,
        orders.store_id,
        orders.order_date,
        orders.ordered_at,
        orders.updated_at,
        orders.status,
        orders.channel,
        order_totals.item_count,
        order_totals.unit_count,
        order_totals.gross_amount,
        order_totals.discount_amount,
        order_totals.net_amount,
        order_totals.cost_amount,
        order_totals.margin_amount,
        coalesce(order_payments.primary_payment_method, 'unpaid') as payment_method,
        coalesce(order_payments.charged_amount, 0) as charged_amount,
        coalesce(order_payments.refunded_amount, 0) as refunded_amount
    from orders
    inner join order_totals
        on orders.order_id = order_totals.order_id
    left join order_payments
        on orders.order_id = order_payments.order_id

)

select
    *,
    status in ('placed', 'shipped', 'completed') as is_revenue,
    case
        when net_amount < 50 then 'small'
        when net_amount < 200 then 'medium'
        when net_amount < 1000 then 'large'
        else 'very_large'
    end as order_size_bucket,
    row_number() over (
        partition by customer_id
        order by ordered_at, order_id
    ) as customer_order_number,
    -- corrections that arrive a month or more after the order (late-arriving data)
    updated_at > {{ dbt.dateadd('day', 30, 'ordered_at') }} as is_late_update
from joined
