with products as (

    select * from {{ ref('stg_products') }}

)

select
    product_id,
    sku,
    product_name,
    category,
    price,
    cost,
    unit_margin,
    cast(round(unit_margin / nullif(price, 0), 4) as numeric(6, 4)) as margin_pct,
    case
        when price < 20 then 'budget'
        when price < 100 then 'standard'
        when price < 500 then 'premium'
        else 'luxury'
    end as price_band,
    is_active
from products
