-- Charges and refunds per order. Orders cancelled before payment have no row here.

with payments as (

    select * from {{ ref('stg_payments') }}

),

ranked as (

    select
        *,
        -- the method that carried most of the charge names the order's payment method
        row_number() over (
            partition by order_id
            order by case when payment_type = 'charge' then amount else 0 end desc, payment_id
        ) as charge_rank
    from payments

)

select
    order_id,
    count(*) as payment_count,
    max(case when charge_rank = 1 then payment_method end) as primary_payment_method,
    sum(case when payment_type = 'charge' then amount else 0 end) as charged_amount,
    -sum(case when payment_type = 'refund' then amount else 0 end) as refunded_amount,
    sum(amount) as net_paid_amount,
    min(case when payment_type = 'charge' then paid_at end) as first_charged_at,
    max(case when payment_type = 'refund' then paid_at end) as refunded_at
from ranked
group by order_id
