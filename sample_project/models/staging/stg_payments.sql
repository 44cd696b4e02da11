with source as (

    select * from {{ source('shop', 'payments') }}

)

select
    payment_id,
    order_id,
    lower(trim(method)) as payment_method,
    case when amount < 0 then 'refund' else 'charge' end as payment_type,
    amount,
    -- the full card number stays in raw: analytics only ever needs the last four digits
    right(card_number, 4) as card_last_four,
    paid_at
from source
