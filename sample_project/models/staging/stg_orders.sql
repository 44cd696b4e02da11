with source as (

    select * from {{ source('shop', 'orders') }}

)

select
    order_id,
    customer_id,
    store_id,
    ordered_at,
    cast({{ dbt.date_trunc('day', 'ordered_at') }} as date) as order_date,
    -- the point-of-sale system writes 'Completed', 'completed ' and 'COMPLETED'
    lower(trim(status)) as status,
    lower(trim(channel)) as channel,
    updated_at
from source
