-- Order lines with their order context and the money they made.

with order_items as (

    select * from {{ ref('stg_order_items') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

products as (

    select * from {{ ref('stg_products') }}

)

select
    order_items.order_item_id,
    order_items.order_id,
    order_items.product_id,
    orders.customer_id,
    orders.store_id,
    orders.order_date,
    orders.ordered_at,
    orders.updated_at as order_updated_at,
    orders.status as order_status,
    products.category,
    order_items.quantity,
    order_items.unit_price,
    order_items.discount_pct,
    order_items.quantity * order_items.unit_price as gross_amount,
    -- rounded per line, like the till does: order totals are sums of rounded lines
    round(order_items.quantity * order_items.unit_price * (1 - order_items.discount_pct), 2)
        as net_amount,
    order_items.quantity * products.cost as cost_amount
from order_items
inner join orders
    on order_items.order_id = orders.order_id
left join products
    on order_items.product_id = products.product_id
