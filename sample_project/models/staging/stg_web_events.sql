with source as (

    select * from {{ source('shop', 'web_events') }}

),

-- The tracker delivers at least once: keep one row per event_id.
numbered as (

    select
        *,
        row_number() over (
            partition by event_id
            order by event_at, page_url
        ) as delivery_number
    from source

)

select
    event_id,
    customer_id,
    customer_id is null as is_anonymous,
    lower(event_type) as event_type,
    event_at,
    ip_address,
    page_url
from numbered
where delivery_number = 1
