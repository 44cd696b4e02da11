with payments as (

    select * from {{ ref('stg_payments') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

)

select
    payments.payment_id,
    payments.order_id,
    orders.customer_id,
    orders.store_id,
    payments.payment_method,
    payments.payment_type,
    payments.amount,
    payments.card_last_four,
    payments.paid_at,
    cast({{ dbt.date_trunc('day', 'payments.paid_at') }} as date) as payment_date,
    {{ dbt.datediff('orders.ordered_at', 'payments.paid_at', 'day') }} as days_after_order
from payments
inner join orders
    on payments.order_id = orders.order_id
