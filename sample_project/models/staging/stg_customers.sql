with source as (

    select * from {{ source('shop', 'customers') }}

),

cleaned as (

    select
        customer_id,
        trim(first_name) as first_name,
        trim(last_name) as last_name,
        -- e-mails are hand-typed: compare them case- and blank-insensitively
        nullif(lower(trim(email)), '') as email,
        nullif(trim(phone), '') as phone,
        street_address,
        city,
        zip_code,
        birth_date,
        signup_at,
        coalesce(lower(trim(loyalty_tier)), 'none') as loyalty_tier
    from source

)

select * from cleaned
