with products as (

    select * from {{ ref('dim_products') }}

),

order_items as (

    select
        *,
        order_status in ('placed', 'shipped', 'completed') as is_revenue
    from {{ ref('fct_order_items') }}

),

per_product as (

    select
        product_id,
        count(distinct order_id) as order_count,
        cast(sum(case when is_revenue then quantity else 0 end) as bigint) as units_sold,
        cast(sum(case when order_status = 'returned' then quantity else 0 end) as bigint)
            as units_returned,
        sum(case when is_revenue then net_amount else 0 end) as net_revenue,
        sum(case when is_revenue then margin_amount else 0 end) as gross_margin
    from order_items
    group by product_id

)

select
    products.product_id,
    products.product_name,
    products.category,
    products.price_band,
    products.is_active,
    coalesce(per_product.order_count, 0) as order_count,
    coalesce(per_product.units_sold, 0) as units_sold,
    coalesce(per_product.units_returned, 0) as units_returned,
    coalesce(per_product.net_revenue, 0) as net_revenue,
    coalesce(per_product.gross_margin, 0) as gross_margin,
    rank() over (
        partition by products.category
        order by coalesce(per_product.net_revenue, 0) desc
    ) as category_revenue_rank
from products
left join per_product
    on products.product_id = per_product.product_id
