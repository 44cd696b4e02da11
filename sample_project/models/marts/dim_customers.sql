-- One row per customer account, with the headline numbers of their order history.
-- Contracted: the column names and types are a promise to the dashboards reading it.

with customers as (

    select * from {{ ref('stg_customers') }}

),

order_history as (

    select * from {{ ref('int_customer_order_history') }}

)

select
    cast(customers.customer_id as bigint) as customer_id,
    cast(customers.first_name as {{ dbt.type_string() }}) as first_name,
    cast(customers.last_name as {{ dbt.type_string() }}) as last_name,
    cast(customers.first_name || ' ' || customers.last_name as {{ dbt.type_string() }}) as full_name,
    cast(customers.email as {{ dbt.type_string() }}) as email,
    cast(customers.phone as {{ dbt.type_string() }}) as phone,
    cast(customers.city as {{ dbt.type_string() }}) as city,
    cast(customers.zip_code as {{ dbt.type_string() }}) as zip_code,
    cast(customers.birth_date as date) as birth_date,
    cast(customers.signup_at as timestamp) as signup_at,
    cast(customers.loyalty_tier as {{ dbt.type_string() }}) as loyalty_tier,
    cast(order_history.first_order_at as timestamp) as first_order_at,
    cast(order_history.last_order_at as timestamp) as last_order_at,
    cast(coalesce(order_history.order_count, 0) as bigint) as order_count,
    cast(coalesce(order_history.lifetime_value, 0) as numeric(14, 2)) as lifetime_value,
    cast(
        case
            when order_history.order_count is null then 'prospect'
            when order_history.order_count = 1 then 'one_time'
            else 'repeat'
        end as {{ dbt.type_string() }}
    ) as customer_type
from customers
left join order_history
    on customers.customer_id = order_history.customer_id
