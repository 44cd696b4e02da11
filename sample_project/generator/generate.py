"""Deterministic "production" data for sample_project: the raw schema of a small retail shop.

Everything is generated inside DuckDB from ``range()`` and seeded ``hash()`` calls, so the same
scale and seed give identical tables on every run, machine and thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

__all__ = [
    "END_DATE",
    "START_DATE",
    "TABLES",
    "generate",
    "load_into_postgres",
    "load_into_spark",
    "main",
]

#: Orders, payments and events fall in this window; a fixed end keeps the data reproducible.
START_DATE = "2024-01-01"
END_DATE = "2025-12-31"
_DAYS = 731  # START_DATE .. END_DATE inclusive (2024 is a leap year)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: The source tables, in dependency order (parents before children).
TABLES = ("customers", "stores", "products", "orders", "order_items", "payments", "web_events")

_FIRST_NAMES = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa "
    "Anthony Betty Mark Sandra Donald Ashley Steven Emily Paul Donna Andrew Michelle Joshua "
    "Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ryan Rebecca Jacob "
    "Laura Gary Sharon Nicholas Cynthia Eric Kathleen Jonathan Amy Omar Priya Wei Sofia Mateo "
    "Aisha Lucas Yuki"
)
_LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Patel Kim Chen Schmidt Novak Rossi Silva Kowalski Okafor Haddad"
)
# (city, first zip code of the city's range)
_CITIES = (
    ("Springfield", 62701),
    ("Riverside", 92501),
    ("Franklin", 37064),
    ("Greenville", 29601),
    ("Bristol", 6010),
    ("Clinton", 52732),
    ("Fairview", 97024),
    ("Salem", 97301),
    ("Madison", 53703),
    ("Georgetown", 40324),
    ("Arlington", 22201),
    ("Ashland", 97520),
    ("Burlington", 5401),
    ("Manchester", 3101),
    ("Oxford", 38655),
    ("Dover", 19901),
    ("Milton", 2186),
    ("Newport", 2840),
    ("Auburn", 36830),
    ("Dayton", 45402),
    ("Lexington", 40507),
    ("Jackson", 39201),
    ("Kingston", 12401),
    ("Winchester", 22601),
    ("Portland", 97201),
)
_STREETS = _words(
    "Main Oak Maple Cedar Pine Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson "
    "Church River Willow Meadow Forest Highland Mill Spring Chestnut Franklin Ridge Valley "
    "Birch"
)
_STREET_SUFFIXES = _words("St Ave Rd Blvd Ln Dr Way Ct Pl")
# Reserved / fictional domains only: generated addresses must never reach a real inbox.
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.test", "inbox.test")
_STORE_SUFFIXES = _words("Downtown Mall Central Riverside Airport Outlet Plaza Market")
# category -> (price low, price high, product nouns)
_CATEGORIES = (
    ("electronics", 9, 1200, "Headphones Speaker Charger Monitor Keyboard Mouse Webcam Tablet"),
    ("home", 5, 400, "Lamp Cushion Curtain Rug Frame Vase Blanket Mirror"),
    ("kitchen", 4, 350, "Skillet Kettle Blender Knife-Set Mug Toaster Cutting-Board"),
    ("apparel", 8, 250, "T-Shirt Hoodie Jacket Jeans Sneakers Scarf Cap Socks"),
    ("sports", 6, 600, "Yoga-Mat Dumbbell Bottle Racket Backpack Helmet Ball Gloves"),
    ("beauty", 3, 120, "Serum Shampoo Lotion Lipstick Perfume Cleanser Brush Mask"),
    ("toys", 4, 150, "Puzzle Robot Blocks Doll Kite Board-Game Car Plush"),
    ("grocery", 1, 60, "Coffee Tea Granola Olive-Oil Pasta Honey Chocolate Spices"),
)
_ADJECTIVES = _words(
    "Classic Premium Compact Organic Smart Eco Deluxe Essential Ultra Vintage Modern Pro"
)
_SEARCH_TERMS = _words("gift sale headphones coffee lamp jacket yoga blender puzzle serum")
_LANDING_PAGES = ("/", "/deals", "/new-arrivals", "/stores", "/help", "/account")


def _connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only)
    # A library must not draw DuckDB's progress bar on the caller's terminal.
    con.execute("set enable_progress_bar = false")
    return con


def _sql_list(values: Any) -> str:
    """Render a Python sequence as a DuckDB list literal."""
    items = []
    for value in values:
        if isinstance(value, str):
            items.append("'" + value.replace("'", "''") + "'")
        elif isinstance(value, (list, tuple)):
            items.append(_sql_list(value))
        else:
            items.append(repr(value))
    return "[" + ", ".join(items) + "]"


def _sizes(scale: float) -> dict[str, int]:
    """Row-count targets: customers and orders grow linearly, the catalogue sub-linearly."""
    return {
        "customers": max(60, round(200_000 * scale)),
        "stores": max(5, round(50 * scale**0.5)),
        "products": max(40, round(2_000 * scale**0.5)),
        "orders": max(300, round(1_000_000 * scale)),
        "sessions": max(150, round(450_000 * scale)),
    }


def _macros(seed: int) -> list[str]:
    # Every random draw is hash(seed, row id, salt): a distinct salt per decision keeps draws
    # independent, and nothing depends on evaluation order, so parallel scans stay reproducible.
    return [
        f"create temp macro h(id, salt) as hash({seed}, id, salt)",
        "create temp macro rnd(id, salt) as (h(id, salt) % 1000000007)::double / 1000000007.0",
        "create temp macro pick(options, id, salt) as "
        "options[1 + (h(id, salt) % len(options))::bigint]",
        "create temp macro digits(id, salt, n) as "
        "lpad((h(id, salt) % (10 ** n)::ubigint)::varchar, n, '0')",
        # 0 .. span-1, biased towards span by `growth` < 1 (a business that grows over time)
        "create temp macro skewed_day(id, salt, growth) as "
        f"floor({_DAYS} * pow(rnd(id, salt), growth))::integer",
        # ~12% of activity lands in the Nov 20 - Dec 24 holiday peak of either year
        "create temp macro seasonal_day(id, salt) as case "
        "when rnd(id, salt) < 0.12 then "
        "  (case when rnd(id, salt + 1) < 0.45 then 323 else 689 end)"
        "  + floor(35 * rnd(id, salt + 2))::integer "
        "else skewed_day(id, salt + 3, 0.8) end",
        # Luhn check digit of a 15-digit payload: double every second digit from the right
        f"create temp macro luhn(payload) as payload || ((10 - ({_luhn_sum(15)}) % 10) % 10)::varchar",
    ]


def _luhn_sum(length: int) -> str:
    # Unrolled rather than a list comprehension: about five times faster on a million rows.
    terms = []
    for i in range(1, length + 1):
        digit = f"(ascii(substr(payload, {i}, 1)) - 48)"
        if (length - i) % 2 == 0:
            terms.append(f"({digit} * 2 - case when {digit} >= 5 then 9 else 0 end)")
        else:
            terms.append(digit)
    return " + ".join(terms)


def _customers_sql(n: int) -> str:
    cities = _sql_list([c for c, _ in _CITIES])
    zips = _sql_list([z for _, z in _CITIES])
    return f"""
    create table raw.customers as
    with drawn as (
        -- signups accelerate towards the present; ~60% happened before the order window
        select i as k,
               timestamp '2019-01-01'
                 + to_seconds(floor(pow(rnd(i, 1), 0.7) * 220838400)::bigint) as signup_at
        from range({n}) t(i)
    ), ranked as (
        -- ids follow signup order, like a real sequence
        select row_number() over (order by signup_at, k) as customer_id, signup_at from drawn
    ), named as (
        select customer_id, signup_at,
               pick({_sql_list(_FIRST_NAMES)}, customer_id, 2) as first_name,
               pick({_sql_list(_LAST_NAMES)}, customer_id, 3) as last_name,
               1 + (h(customer_id, 4) % {len(_CITIES)})::bigint as city_idx,
               pick({_sql_list(_EMAIL_DOMAINS)}, customer_id, 5) as domain
        from ranked
    ), emails as (
        select *,
               case when rnd(customer_id, 6) < 0.6 then first_name || '.' || last_name
                    when rnd(customer_id, 6) < 0.85 then substr(first_name, 1, 1) || last_name
                    else first_name || last_name end
               || case when rnd(customer_id, 7) < 0.5
                       then (h(customer_id, 8) % 100)::varchar else '' end as local_part
        from named
    )
    select
        customer_id::bigint as customer_id,
        first_name,
        last_name,
        case when rnd(customer_id, 9) < 0.02 then null
             -- dirt: hand-typed addresses with capitals and trailing blanks
             when rnd(customer_id, 9) < 0.05 then local_part || '@' || domain || '  '
             when rnd(customer_id, 9) < 0.06 then upper(local_part || '@' || domain)
             else lower(local_part) || '@' || domain end as email,
        case when rnd(customer_id, 10) < 0.07 then null
             else '+1-555-' || digits(customer_id, 11, 3) || '-' || digits(customer_id, 12, 4)
        end as phone,
        (1 + h(customer_id, 13) % 9899)::varchar || ' '
            || pick({_sql_list(_STREETS)}, customer_id, 14) || ' '
            || pick({_sql_list(_STREET_SUFFIXES)}, customer_id, 15)
            || case when rnd(customer_id, 16) < 0.15
                    then ' Apt ' || (1 + h(customer_id, 17) % 40)::varchar else '' end
            as street_address,
        {cities}[city_idx] as city,
        lpad(({zips}[city_idx] + h(customer_id, 18) % 40)::varchar, 5, '0') as zip_code,
        (date '1950-01-01' + floor(rnd(customer_id, 19) * 20000)::integer)::date as birth_date,
        signup_at,
        case when rnd(customer_id, 20) < 0.45 then 'bronze'
             when rnd(customer_id, 20) < 0.73 then 'silver'
             when rnd(customer_id, 20) < 0.86 then 'gold'
             when rnd(customer_id, 20) < 0.90 then 'platinum'
             when rnd(customer_id, 20) < 0.92 then 'Gold'  -- dirt: legacy CRM capitalisation
             else null end as loyalty_tier
    from emails
    order by customer_id
    """


def _stores_sql(n: int) -> str:
    cities = _sql_list([c for c, _ in _CITIES])
    suffixes = _sql_list(_STORE_SUFFIXES)
    per_round = len(_CITIES) * len(_STORE_SUFFIXES)
    return f"""
    create table raw.stores as
    with ids as (select i::integer as store_id from range(1, {n + 1}) t(i))
    select
        store_id,
        {cities}[1 + (store_id - 1) % {len(_CITIES)}] || ' '
            -- 25 cities x 8 suffixes are coprime, so the first 200 names are all distinct
            || {suffixes}[1 + (store_id - 1) % {len(_STORE_SUFFIXES)}]
            || case when store_id > {per_round}
                    then ' ' || ((store_id - 1) // {per_round} + 1)::varchar else '' end
            as store_name,
        {cities}[1 + (store_id - 1) % {len(_CITIES)}] as city,
        (date '2012-01-01' + floor(rnd(store_id, 101) * 4200)::integer)::date as opened_at,
        lower(pick({_sql_list(_FIRST_NAMES)}, store_id, 102) || '.'
              || pick({_sql_list(_LAST_NAMES)}, store_id, 103)) || '@shop.example.com'
            as manager_email
    from ids
    order by store_id
    """


def _products_sql(n: int) -> str:
    names = _sql_list([c for c, *_ in _CATEGORIES])
    lows = _sql_list([float(lo) for _, lo, _, _ in _CATEGORIES])
    highs = _sql_list([float(hi) for _, _, hi, _ in _CATEGORIES])
    nouns = _sql_list([[w.replace("-", " ") for w in ws.split()] for *_, ws in _CATEGORIES])
    return f"""
    create table raw.products as
    with ids as (
        select i::integer as product_id,
               1 + (h(i, 201) % {len(_CATEGORIES)})::bigint as cat
        from range(1, {n + 1}) t(i)
    ), priced as (
        select *,
               -- log-uniform list prices ending in .99
               greatest(round({lows}[cat] * pow({highs}[cat] / {lows}[cat], rnd(product_id, 202)))
                        - 0.01, 0.99) as list_price
        from ids
    )
    select
        product_id,
        'SKU-' || upper(substr({names}[cat], 1, 3)) || '-' || lpad(product_id::varchar, 6, '0')
            as sku,
        pick({_sql_list(_ADJECTIVES)}, product_id, 203) || ' '
            || {nouns}[cat][1 + (h(product_id, 204) % len({nouns}[cat]))::bigint]
            as product_name,
        {names}[cat] as category,
        list_price::decimal(10, 2) as price,
        round(list_price * (0.35 + 0.35 * rnd(product_id, 205)), 2)::decimal(10, 2) as cost,
        rnd(product_id, 206) >= 0.07 as is_active
    from priced
    order by product_id
    """


def _orders_sql(n: int, n_stores: int) -> str:
    return f"""
    create table raw.orders as
    with drawn as (
        select i as k,
               seasonal_day(i, 301) as day_offset,
               -- shoppers are awake: 06:00-23:00, peaking mid-afternoon
               floor((6 + 17 * (rnd(i, 306) + rnd(i, 307)) / 2) * 3600)::bigint
                   as second_of_day
        from range({n}) t(i)
    ), placed as (
        select d.k, d.day_offset,
               timestamp '{START_DATE}' + to_days(d.day_offset) + to_seconds(d.second_of_day)
                   as ordered_at,
               -- only customers who had already signed up; long-standing ones order far more
               1 + floor(greatest(s.eligible, 1) * pow(rnd(d.k, 308), 1.4))::bigint
                   as customer_id
        from drawn d
        join eligible_customers s using (day_offset)
    ), ranked as (
        select row_number() over (order by ordered_at, k) as order_id, * from placed
    ), statused as (
        select *,
               case when day_offset >= {_DAYS - 7} then
                        case when rnd(order_id, 310) < 0.45 then 'placed'
                             when rnd(order_id, 310) < 0.90 then 'shipped'
                             else 'cancelled' end
                    when rnd(order_id, 310) < 0.87 then 'completed'
                    when rnd(order_id, 310) < 0.92 then 'returned'
                    when rnd(order_id, 310) < 0.99 then 'cancelled'
                    else 'shipped' end as clean_status
        from ranked
    )
    select
        order_id::bigint as order_id,
        customer_id::bigint as customer_id,
        (1 + floor({n_stores} * pow(rnd(order_id, 311), 1.3)))::integer as store_id,
        ordered_at,
        -- dirt: the legacy POS writes capitalised or blank-padded statuses
        case when rnd(order_id, 312) < 0.02
                 then upper(substr(clean_status, 1, 1)) || substr(clean_status, 2)
             when rnd(order_id, 312) < 0.03 then clean_status || ' '
             when rnd(order_id, 312) < 0.035 then upper(clean_status)
             else clean_status end as status,
        case when rnd(order_id, 313) < 0.55 then 'web'
             when rnd(order_id, 313) < 0.85 then 'mobile_app'
             else 'in_store' end as channel,
        ordered_at + to_seconds((
            case clean_status
                when 'placed' then 60 + floor(rnd(order_id, 314) * 1800)
                when 'shipped' then 86400 + floor(rnd(order_id, 314) * 172800)
                when 'completed' then 172800 + floor(rnd(order_id, 314) * 432000)
                when 'returned' then 864000 + floor(rnd(order_id, 314) * 2592000)
                else 600 + floor(rnd(order_id, 314) * 172800)
            end
            -- late-arriving corrections: ~2% of rows are touched again weeks later
            + case when rnd(order_id, 315) < 0.02
                   then 2592000 + floor(rnd(order_id, 316) * 7776000) else 0 end
        )::bigint) as updated_at
    from statused
    order by order_id
    """


def _order_items_sql(n_products: int) -> str:
    return f"""
    create table raw.order_items as
    with lines as (
        select o.order_id, l.line
        from raw.orders o
        join range(1, 6) l(line)
          on l.line <= case when rnd(o.order_id, 401) < 0.30 then 1
                            when rnd(o.order_id, 401) < 0.55 then 2
                            when rnd(o.order_id, 401) < 0.75 then 3
                            when rnd(o.order_id, 401) < 0.90 then 4
                            else 5 end
    ), drawn as (
        select order_id, line,
               -- a long tail of slow sellers behind a few best-sellers
               (1 + floor({n_products} * pow(rnd(order_id * 8 + line, 402), 1.6)))::integer
                   as product_id,
               case when rnd(order_id * 8 + line, 403) < 0.70 then 1
                    when rnd(order_id * 8 + line, 403) < 0.90 then 2
                    when rnd(order_id * 8 + line, 403) < 0.97 then 3
                    else 4 + floor(3 * rnd(order_id * 8 + line, 404))::integer
               end as quantity
        from lines
    )
    select
        row_number() over (order by d.order_id, d.line)::bigint as order_item_id,
        d.order_id::bigint as order_id,
        d.product_id,
        d.quantity::integer as quantity,
        -- a few lines were sold before the last price cut
        case when rnd(d.order_id * 8 + d.line, 405) < 0.06
             then round(p.price * 1.1, 2)::decimal(10, 2) else p.price end as unit_price,
        case when rnd(d.order_id * 8 + d.line, 406) < 0.80 then 0.0
             else pick([0.05, 0.10, 0.15, 0.20, 0.25], d.order_id * 8 + d.line, 407)
        end::double as discount_pct
    from drawn d
    join raw.products p using (product_id)
    order by order_item_id
    """


def _payments_sql() -> str:
    return """
    create table raw.payments as
    with totals as (
        -- same arithmetic as the dbt models: exact decimals, rounded per line
        select order_id,
               sum(round(quantity * unit_price * (1 - discount_pct::decimal(5, 4)), 2)) as total
        from raw.order_items
        group by order_id
    ), orders as (
        select o.order_id, o.customer_id, o.ordered_at, o.updated_at,
               lower(trim(o.status)) as status, t.total,
               case when rnd(o.order_id, 501) < 0.55 then 'credit_card'
                    when rnd(o.order_id, 501) < 0.72 then 'debit_card'
                    when rnd(o.order_id, 501) < 0.87 then 'paypal'
                    when rnd(o.order_id, 501) < 0.92 then 'bank_transfer'
                    else 'gift_card' end as method,
               rnd(o.order_id, 502) < 0.06 as is_split,
               round(t.total * (0.2 + 0.5 * rnd(o.order_id, 503)), 2) as gift_part
        from raw.orders o
        join totals t using (order_id)
        -- half of the cancelled orders were cancelled before anything was charged
        where not (lower(trim(o.status)) = 'cancelled' and rnd(o.order_id, 504) < 0.5)
    ), charged_at as (
        select *, ordered_at + to_seconds((5 + floor(rnd(order_id, 505) * 900))::bigint) as paid_at
        from orders
    ), rows as (
        select order_id, customer_id, 1 as seq, method, paid_at,
               case when is_split then total - gift_part else total end as amount
        from charged_at
        union all
        select order_id, customer_id, 2, 'gift_card', paid_at, gift_part
        from charged_at where is_split
        union all
        -- refunds: returned and (charged) cancelled orders get their money back
        select order_id, customer_id, 3, method, updated_at, -total
        from charged_at where status in ('returned', 'cancelled')
    ), carded as (
        select *,
               -- customers reuse up to two credit cards and one debit card
               case method
                   when 'credit_card' then case when rnd(order_id, 506) < 0.8 then 0 else 1 end
                   when 'debit_card' then 2
               end as card_slot
        from rows
    ), payloads as (
        -- Visa (4...) or Mastercard (51-55...) prefix + random digits, 15 before the check digit
        select *,
               substr(case when h(customer_id, 510 + card_slot) % 3 = 0
                           then '5' || (1 + h(customer_id, 520 + card_slot) % 5)::varchar
                           else '4' end
                      || digits(customer_id * 4 + card_slot, 530, 14), 1, 15) as card_payload
        from carded
    )
    select
        row_number() over (order by paid_at, order_id, seq)::bigint as payment_id,
        order_id::bigint as order_id,
        method,
        amount::decimal(12, 2) as amount,
        case when card_slot is not null then luhn(card_payload) end as card_number,
        paid_at
    from payloads
    order by payment_id
    """


def _web_events_sql(n_sessions: int, n_products: int) -> str:
    search = _sql_list(_SEARCH_TERMS)
    landing = _sql_list(_LANDING_PAGES)
    return f"""
    create table raw.web_events as
    with sessions as (
        select i as session_key,
               seasonal_day(i, 601) as day_offset,
               floor(rnd(i, 606) * 86400)::bigint as start_second,
               1 + floor(7 * pow(rnd(i, 607), 1.8))::integer as n_events,
               rnd(i, 608) < 0.3 as is_anonymous
        from range({n_sessions}) t(i)
    ), visitors as (
        select s.*,
               case when not s.is_anonymous
                    then 1 + floor(greatest(e.eligible, 1) * pow(rnd(s.session_key, 609), 1.3))
               end::bigint as customer_id
        from sessions s
        join eligible_customers e using (day_offset)
    ), events as (
        select v.session_key, x.step, v.customer_id, v.n_events,
               v.session_key * 8 + x.step as ek,
               timestamp '{START_DATE}' + to_days(v.day_offset)
                   + to_seconds(v.start_second + (x.step - 1) * 90
                                + floor(60 * rnd(v.session_key * 8 + x.step, 610))::bigint)
                   as event_at,
               -- signed-in shoppers mostly come from their usual address
               h(coalesce(v.customer_id * 4 + (h(v.session_key, 611) % 2)::bigint,
                                -v.session_key), 612) as ip_seed
        from visitors v
        join range(1, 9) x(step) on x.step <= v.n_events
    ), typed as (
        select *,
               case when step = 1 then 'page_view'
                    when step = n_events and n_events >= 4 and rnd(session_key, 613) < 0.35
                        then 'purchase'
                    when rnd(ek, 614) < 0.45 then 'product_view'
                    when rnd(ek, 614) < 0.75 then 'page_view'
                    when rnd(ek, 614) < 0.90 then 'add_to_cart'
                    else 'search' end as event_type,
               (1 + floor({n_products} * pow(rnd(ek, 615), 1.6)))::integer as product_id,
               h(ek, 619) as id_hi,
               h(ek, 620) as id_lo
        from events
    ), final as (
        select
            -- a UUID-shaped id from 128 hashed bits
            format('{{:08x}}-{{:04x}}-{{:04x}}-{{:04x}}-{{:012x}}', id_hi >> 32, (id_hi >> 16) & 65535,
                   id_hi & 65535, id_lo >> 48, id_lo & 281474976710655) as event_id,
            customer_id,
            event_type,
            event_at,
            format('{{}}.{{}}.{{}}.{{}}', 1 + ip_seed % 223, (ip_seed >> 8) % 256,
                   (ip_seed >> 16) % 256, 1 + (ip_seed >> 24) % 254) as ip_address,
            'https://shop.example.com' || case event_type
                when 'page_view' then {landing}[1 + (h(ek, 616) % {len(_LANDING_PAGES)})::bigint]
                when 'search' then '/search?q=' || pick({search}, ek, 617)
                when 'purchase' then '/checkout/confirmation'
                when 'add_to_cart' then '/cart/add?product=' || product_id::varchar
                else '/products/' || product_id::varchar
            end as page_url,
            ek
        from typed
    )
    select event_id, customer_id, event_type, event_at, ip_address, page_url
    from (
        select * from final
        union all
        -- at-least-once delivery: ~3% of events arrive twice
        select * from final where rnd(ek, 618) < 0.03
    )
    order by event_at, ek
    """


def _eligible_customers_sql() -> str:
    # customer ids follow signup order, so "customers signed up before day d" is simply 1..count
    return f"""
    create temp table eligible_customers as
    with first_days as (
        -- the first day (offset from START_DATE) that begins after the signup
        select date_diff('day', date '{START_DATE}', signup_at::date)
                 + case when signup_at = signup_at::date then 0 else 1 end as first_day,
               count(*) as signups
        from raw.customers
        group by 1
    )
    select d.day_offset::integer as day_offset,
           coalesce(sum(f.signups), 0)::bigint as eligible
    from range({_DAYS}) d(day_offset)
    left join first_days f on f.first_day <= d.day_offset
    group by d.day_offset
    order by d.day_offset
    """


def _build(con: duckdb.DuckDBPyConnection, scale: float, seed: int) -> dict[str, int]:
    sizes = _sizes(scale)
    for macro in _macros(seed):
        con.execute(macro)
    con.execute("create schema raw")
    statements = [
        _customers_sql(sizes["customers"]),
        _stores_sql(sizes["stores"]),
        _products_sql(sizes["products"]),
        _eligible_customers_sql(),
        _orders_sql(sizes["orders"], sizes["stores"]),
        _order_items_sql(sizes["products"]),
        _payments_sql(),
        _web_events_sql(sizes["sessions"], sizes["products"]),
    ]
    for statement in statements:
        con.execute(statement)
    counts: dict[str, int] = {}
    for table in TABLES:
        row = con.execute(f"select count(*) from raw.{table}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def generate(path: str | Path, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
    """Write the ``raw`` schema of sample_project's production database to a DuckDB file.

    The file at ``path`` is replaced as a whole, atomically: the data is built in a temporary
    file next to it and moved into place only when complete. Returns rows per table.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove_database(tmp)
    try:
        with contextlib.closing(_connect(tmp)) as con:
            counts = _build(con, scale, seed)
            con.execute("checkpoint")
        # a stale .wal of the old file must not replay into the new one
        with contextlib.suppress(FileNotFoundError):
            target.with_name(target.name + ".wal").unlink()
        os.replace(tmp, target)
    finally:
        _remove_database(tmp)
    return counts


def _remove_database(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()


# DuckDB type -> PostgreSQL type; DECIMAL(p,s) keeps its precision and scale.
_PG_TYPES = {
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "UBIGINT": "numeric(20, 0)",
    "HUGEINT": "numeric(39, 0)",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "VARCHAR": "text",
    "UUID": "uuid",
}


def _pg_type(duckdb_type: str) -> str:
    upper = duckdb_type.upper()
    if upper.startswith("DECIMAL"):
        return "numeric" + upper[len("DECIMAL") :].replace(",", ", ")
    try:
        return _PG_TYPES[upper]
    except KeyError:
        raise ValueError(f"no PostgreSQL type for DuckDB type {duckdb_type!r}") from None


def load_into_postgres(
    duckdb_path: str | Path,
    conninfo: str,
    schema: str = "raw",
    *,
    drop_schemas: Sequence[str] = (),
) -> dict[str, int]:
    """Copy every table of the DuckDB file's ``raw`` schema into PostgreSQL ``schema``.

    Tables are dropped (CASCADE: dependent views go too) and recreated with matching types, then
    streamed with COPY through a temporary CSV file; everything happens in one transaction.
    ``drop_schemas`` (e.g. ``("analytics",)``, the dbt target schema) are dropped in the same
    transaction: regenerated data invalidates what dbt built before, incremental models above
    all, just as ``generate`` starts a fresh DuckDB file. Returns rows per table.
    """
    import psycopg
    from psycopg import sql

    counts: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        tmpdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sample_project-")))
        src = stack.enter_context(contextlib.closing(_connect(duckdb_path, read_only=True)))
        tables = _raw_tables(src, duckdb_path)

        conn = stack.enter_context(psycopg.connect(conninfo))
        with conn.transaction(), conn.cursor() as cur:
            for stale in drop_schemas:
                cur.execute(
                    sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(stale))
                )
            cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
            for table in tables:
                columns = src.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'raw' and table_name = ? order by ordinal_position",
                    [table],
                ).fetchall()
                target = sql.Identifier(schema, table)
                cur.execute(sql.SQL("drop table if exists {} cascade").format(target))
                cur.execute(
                    sql.SQL("create table {} ({})").format(
                        target,
                        sql.SQL(", ").join(
                            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(_pg_type(typ)))
                            for name, typ in columns
                        ),
                    )
                )
                csv_path = tmpdir / f"{table}.csv"
                quoted = '"' + table.replace('"', '""') + '"'
                # DuckDB writes NULL unquoted and '' quoted, which is exactly how PostgreSQL's
                # CSV COPY tells them apart.
                src.execute(
                    f"copy raw.{quoted} to '{csv_path.as_posix()}' (format csv, header false)"
                )
                copy_sql = sql.SQL("copy {} ({}) from stdin (format csv)").format(
                    target, sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
                )
                with cur.copy(copy_sql) as copy, csv_path.open("rb") as fh:
                    for chunk in _chunks(fh):
                        copy.write(chunk)
                csv_path.unlink()
                counts[table] = cur.rowcount
            for table in tables:
                cur.execute(sql.SQL("analyze {}").format(sql.Identifier(schema, table)))
    return counts


def _raw_tables(src: duckdb.DuckDBPyConnection, duckdb_path: str | Path) -> list[str]:
    tables = [
        name
        for (name,) in src.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'raw' and table_type = 'BASE TABLE'"
        ).fetchall()
    ]
    if not tables:
        raise ValueError(f"{duckdb_path} has no tables in schema raw; run generate() first")
    order = {name: i for i, name in enumerate(TABLES)}
    return sorted(tables, key=lambda name: (order.get(name, len(order)), name))


def _spark_name(*parts: str) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def load_into_spark(
    duckdb_path: str | Path,
    remote: str,
    schema: str = "raw",
    *,
    drop_schemas: Sequence[str] = (),
    batch_rows: int = 500_000,
) -> dict[str, int]:
    """Copy every table of the DuckDB file's ``raw`` schema into Spark ``schema`` (Parquet tables)
    through the Spark Connect server at ``remote`` (``sc://host:port``).

    Rows travel as Arrow batches over the Connect protocol, so the same code loads a local
    server and a remote cluster (the client uploads the data; nothing needs a shared disk).
    Timestamps arrive as Spark's TIMESTAMP (DuckDB's are zone-less: read in the session's time
    zone). Spark has no transactions: a table is dropped and rewritten, one after the other.
    ``drop_schemas`` (e.g. ``("analytics",)``) are dropped first, as for PostgreSQL.
    Returns rows per table.
    """
    import pyarrow as pa
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType

    counts: dict[str, int] = {}
    session = SparkSession.builder.remote(remote).create()
    try:
        with contextlib.closing(_connect(duckdb_path, read_only=True)) as src:
            for stale in drop_schemas:
                session.sql(f"drop schema if exists {_spark_name(stale)} cascade")
            session.sql(f"create schema if not exists {_spark_name(schema)}")
            for table in _raw_tables(src, duckdb_path):
                target = _spark_name(schema, table)
                session.sql(f"drop table if exists {target}")
                reader = src.execute(f"select * from raw.{_spark_name(table)}").to_arrow_reader(
                    batch_rows
                )
                batches = list(_batches(reader)) or [pa.Table.from_batches([], reader.schema)]
                rows = 0
                for i, batch in enumerate(batches):
                    frame = session.createDataFrame(batch)
                    frame = frame.select(
                        *(
                            F.col(f.name).cast("timestamp").alias(f.name)
                            if isinstance(f.dataType, TimestampNTZType)
                            else F.col(f.name)
                            for f in frame.schema.fields
                        )
                    )
                    mode = "overwrite" if i == 0 else "append"
                    frame.write.mode(mode).format("parquet").saveAsTable(f"{schema}.{table}")
                    rows += batch.num_rows
                counts[table] = rows
    finally:
        session.stop()
    return counts


def _batches(reader: Any) -> Iterator[Any]:
    import pyarrow as pa

    for batch in reader:
        if batch.num_rows:
            yield pa.Table.from_batches([batch])


def _chunks(fh: Any, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate sample_project's production data (schema raw) into DuckDB."
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = ~1M orders")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "prod.duckdb",
        help="DuckDB file to (re)create (default: sample_project/prod.duckdb)",
    )
    parser.add_argument(
        "--postgres",
        metavar="CONNINFO",
        help="also copy the tables into this PostgreSQL database, e.g. 'dbname=sample_prod'",
    )
    parser.add_argument(
        "--spark",
        metavar="REMOTE",
        help="also copy the tables into Spark through Spark Connect, e.g. 'sc://localhost:15002'",
    )
    parser.add_argument(
        "--schema",
        default=os.environ.get("SAMPLE_PROJECT_RAW_SCHEMA", "raw"),
        help="with --postgres or --spark: the schema to load into (default: "
        "$SAMPLE_PROJECT_RAW_SCHEMA or raw, as the dbt sources read it)",
    )
    parser.add_argument(
        "--drop-schema",
        metavar="SCHEMA",
        action="append",
        default=[],
        help="with --postgres or --spark: drop this schema first (e.g. analytics, what dbt built on the old "
        "data); repeatable",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = generate(args.out, scale=args.scale, seed=args.seed)
    elapsed = time.perf_counter() - started
    for table, rows in counts.items():
        print(f"{table:<12} {rows:>12,}")
    print(f"wrote {args.out} in {elapsed:.1f}s (scale={args.scale:g}, seed={args.seed})")
    if args.postgres:
        started = time.perf_counter()
        load_into_postgres(args.out, args.postgres, args.schema, drop_schemas=args.drop_schema)
        print(f"loaded into PostgreSQL in {time.perf_counter() - started:.1f}s")
    if args.spark:
        started = time.perf_counter()
        load_into_spark(args.out, args.spark, args.schema, drop_schemas=args.drop_schema)
        print(f"loaded into Spark in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
