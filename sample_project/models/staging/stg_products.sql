with source as (

    select * from {{ source('shop', 'products') }}

)

select
    product_id,
    upper(trim(sku)) as sku,
    product_name,
    lower(trim(category)) as category,
    price,
    cost,
    price - cost as unit_margin,
    is_active
from source
