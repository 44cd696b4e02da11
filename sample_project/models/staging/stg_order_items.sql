with source as (

    select * from {{ source('shop', 'order_items') }}

)

select
    order_item_id,
    order_id,
    product_id,
    quantity,
    unit_price,
    -- exact decimals from here on, so amounts add up to the cent on every warehouse
    cast(discount_pct as numeric(5, 4)) as discount_pct
from source
