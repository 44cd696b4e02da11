-- Web events grouped into sessions: a visitor's session ends after 30 minutes of inactivity.

with events as (

    select * from {{ ref('stg_web_events') }}

),

visitors as (

    select
        *,
        -- anonymous visitors are told apart by their IP address
        coalesce(
            'customer-' || cast(customer_id as {{ dbt.type_string() }}),
            'ip-' || ip_address
        ) as visitor_id
    from events

),

with_previous as (

    select
        *,
        lag(event_at) over (
            partition by visitor_id
            order by event_at, event_id
        ) as previous_event_at
    from visitors

),

flagged as (

    select
        *,
        case
            when previous_event_at is null then 1
            when event_at > {{ dbt.dateadd('minute', 30, 'previous_event_at') }} then 1
            else 0
        end as is_session_start
    from with_previous

),

numbered as (

    select
        *,
        cast(sum(is_session_start) over (
            partition by visitor_id
            order by event_at, event_id
            rows between unbounded preceding and current row
        ) as bigint) as session_number
    from flagged

)

select
    event_id,
    visitor_id || '-' || cast(session_number as {{ dbt.type_string() }}) as session_id,
    visitor_id,
    customer_id,
    is_anonymous,
    session_number,
    event_type,
    event_at,
    page_url
from numbered
