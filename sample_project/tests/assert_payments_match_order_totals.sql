-- Every charged order is charged exactly its net amount, and never refunded more than that.
-- Catches rounding drift between the till (per-line rounding) and the payment provider.

select
    order_totals.order_id,
    order_totals.net_amount,
    order_payments.charged_amount,
    order_payments.refunded_amount
from {{ ref('int_order_totals') }} as order_totals
inner join {{ ref('int_order_payments') }} as order_payments
    on order_totals.order_id = order_payments.order_id
where order_payments.charged_amount <> order_totals.net_amount
    or order_payments.refunded_amount > order_payments.charged_amount
