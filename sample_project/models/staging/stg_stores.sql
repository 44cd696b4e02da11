with source as (

    select * from {{ source('shop', 'stores') }}

)

select
    store_id,
    store_name,
    city,
    opened_at,
    lower(trim(manager_email)) as manager_email
from source
