with stores as (

    select * from {{ ref('stg_stores') }}

),

first_orders as (

    select
        store_id,
        min(order_date) as first_order_date
    from {{ ref('stg_orders') }}
    group by store_id

)

select
    stores.store_id,
    stores.store_name,
    stores.city,
    stores.opened_at,
    cast(extract(year from stores.opened_at) as integer) as opened_year,
    stores.manager_email,
    first_orders.first_order_date
from stores
left join first_orders
    on stores.store_id = first_orders.store_id
