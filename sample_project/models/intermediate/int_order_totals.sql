-- Money and basket size per order, from its lines.

with order_items as (

    select * from {{ ref('int_order_items_enriched') }}

)

select
    order_id,
    count(*) as item_count,
    cast(sum(quantity) as bigint) as unit_count,
    count(distinct category) as category_count,
    sum(gross_amount) as gross_amount,
    sum(gross_amount) - sum(net_amount) as discount_amount,
    sum(net_amount) as net_amount,
    sum(cost_amount) as cost_amount,
    sum(net_amount) - sum(cost_amount) as margin_amount
from order_items
group by order_id
