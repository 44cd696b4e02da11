with events as (

    select * from {{ ref('int_web_events_sessionized') }}

),

sessions as (

    select
        session_id,
        visitor_id,
        max(customer_id) as customer_id,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        count(*) as event_count,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_carts,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchases
    from events
    group by session_id, visitor_id

)

select
    session_id,
    visitor_id,
    customer_id,
    customer_id is null as is_anonymous,
    cast({{ dbt.date_trunc('day', 'started_at') }} as date) as session_date,
    started_at,
    ended_at,
    {{ dbt.datediff('started_at', 'ended_at', 'second') }} as duration_seconds,
    event_count,
    cast(page_views as bigint) as page_views,
    cast(product_views as bigint) as product_views,
    cast(add_to_carts as bigint) as add_to_carts,
    purchases > 0 as converted,
    case
        when purchases > 0 then 'purchase'
        when add_to_carts > 0 then 'cart'
        when product_views > 0 then 'browse'
        else 'bounce'
    end as funnel_stage
from sessions
