-- RFM segmentation: recency, frequency and monetary value scored in quintiles.

with customers as (

    select * from {{ ref('dim_customers') }}

),

clv as (

    select * from {{ ref('customer_lifetime_value') }}

),

scored as (

    select
        customer_id,
        days_since_last_order,
        revenue_order_count,
        net_revenue,
        ntile(5) over (order by days_since_last_order desc, customer_id) as recency_score,
        ntile(5) over (order by revenue_order_count, customer_id) as frequency_score,
        ntile(5) over (order by net_revenue, customer_id) as monetary_score
    from clv

)

select
    customers.customer_id,
    customers.loyalty_tier,
    coalesce(scored.recency_score, 0) as recency_score,
    coalesce(scored.frequency_score, 0) as frequency_score,
    coalesce(scored.monetary_score, 0) as monetary_score,
    case
        when scored.customer_id is null then 'prospect'
        when scored.revenue_order_count = 0 then 'lost'
        when scored.recency_score >= 4 and scored.frequency_score >= 4
            and scored.monetary_score >= 4 then 'champion'
        when scored.recency_score >= 3 and scored.frequency_score >= 3 then 'loyal'
        when scored.recency_score >= 4 and scored.frequency_score <= 2 then 'new'
        when scored.recency_score <= 2 and scored.frequency_score >= 3 then 'at_risk'
        else 'hibernating'
    end as customer_segment
from customers
left join scored
    on customers.customer_id = scored.customer_id
