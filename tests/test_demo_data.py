"""The demo data set: deterministic, internally consistent, realistic enough for the example flows.

One small data set (a few thousand orders) is generated once for the module and queried by most
tests; the determinism tests generate their own, smaller ones.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from linkstar_dsl import demo_data
from linkstar_dsl.demo_data import (
    COUNTRIES,
    DEFAULT_START,
    FILLED_TABLES,
    REGIONS,
    StoreNotEmpty,
    generate,
    generate_command,
)
from linkstar_dsl.store import open_store

ORDERS = 4_000
START = DEFAULT_START
END = START + timedelta(days=demo_data.DEFAULT_DAYS)
CALLING_CODES = {c.code: c.calling_code for c in COUNTRIES}
CURRENCIES = {c.code: c.currency for c in COUNTRIES}
AREA_CODES = {(r.country, r.code): r.area_codes for r in REGIONS if r.area_codes}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    con = open_store(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    counts = generate(con, orders=ORDERS)
    yield con, counts
    con.close()


@pytest.fixture
def con(store):
    return store[0]


def rows(con, sql: str, params=()) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def column(con, sql: str, params=()) -> list:
    return [row[0] for row in rows(con, sql, params)]


def value(con, sql: str, params=()):
    return con.execute(sql, list(params)).fetchone()[0]


def share_of(con, condition: str, rows_from: str = "customers") -> float:
    """The share of rows (of a table, optionally with `WHERE …`) for which `condition` holds."""
    return float(value(con, f"SELECT avg(({condition})::INT) FROM {rows_from}"))


def table_digests(con) -> dict[str, str]:
    """A SHA-256 of each table's rows, sorted: equal digests mean equal contents."""
    digests = {}
    for table in FILLED_TABLES:
        dump = repr(con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall())
        digests[table] = hashlib.sha256(dump.encode()).hexdigest()
    return digests


def fresh(tmp_path, name: str, **options) -> dict[str, str]:
    con = open_store(tmp_path / f"{name}.duckdb")
    try:
        generate(con, **options)
        return table_digests(con)
    finally:
        con.close()


# ------------------------------------------------------------------------------ determinism


def test_the_same_seed_gives_identical_tables(tmp_path):
    first = fresh(tmp_path, "a", orders=1_500, seed=7)
    again = fresh(tmp_path, "b", orders=1_500, seed=7)
    other = fresh(tmp_path, "c", orders=1_500, seed=8)
    assert first == again
    assert all(first[table] != other[table] for table in FILLED_TABLES)


def test_chunking_does_not_change_the_data(tmp_path, monkeypatch):
    whole = fresh(tmp_path, "whole", orders=1_500)
    monkeypatch.setattr(demo_data, "CUSTOMERS_PER_CHUNK", 97)
    chunked = fresh(tmp_path, "chunked", orders=1_500)
    assert whole == chunked


def test_a_chunk_that_outgrows_the_write_memory_is_written_again_with_more(tmp_path, monkeypatch):
    # The key indexes of a 10M-order store outgrow the write cap; here a 4 MB cap does at once.
    whole = fresh(tmp_path, "whole", orders=6_000)
    limits = []
    write = demo_data._generate_chunk

    def noting_the_limit(con, *args):
        limits.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        return write(con, *args)

    monkeypatch.setattr(demo_data, "WRITE_MEMORY", "4MB")
    monkeypatch.setattr(demo_data, "CUSTOMERS_PER_CHUNK", 600)
    monkeypatch.setattr(demo_data, "_generate_chunk", noting_the_limit)
    capped = fresh(tmp_path, "capped", orders=6_000)
    assert capped == whole
    assert len(set(limits)) > 1, f"the cap should have been raised: {limits}"


def test_the_requested_number_of_orders_is_generated(store):
    con, counts = store
    assert counts["orders"] == ORDERS == value(con, "SELECT count(*) FROM orders")
    assert set(counts) == set(FILLED_TABLES)
    assert all(counts[table] > 0 for table in FILLED_TABLES)


def test_the_store_keeps_its_indexes_and_settings(con, tmp_path):
    names = set(column(con, "SELECT index_name FROM duckdb_indexes() WHERE sql IS NOT NULL"))
    assert {"order_events_by_event", "order_events_by_order", "customer_events_by_event",
            "customer_events_by_customer", "ledger_by_customer"} <= names
    assert value(con, "SELECT count(*) FROM duckdb_tables() WHERE temporary") == 0
    other = open_store(tmp_path / "threads.duckdb")
    try:
        other.execute("SET threads = 3")
        generate(other, orders=50)
        assert value(other, "SELECT current_setting('threads')") == 3
    finally:
        other.close()


# ------------------------------------------------------------------------ referential integrity


@pytest.mark.parametrize("child, key, parent", [
    ("orders", "customer_id", "customers"),
    ("order_events", "order_id", "orders"),
    ("reviews", "order_id", "orders"),
    ("carts", "customer_id", "customers"),
    ("customer_events", "customer_id", "customers"),
    ("consents", "customer_id", "customers"),
    ("suppressions", "customer_id", "customers"),
])
def test_every_reference_resolves(con, child, key, parent):
    assert value(con, f"SELECT count(*) FROM {child} x WHERE NOT EXISTS "
                      f"(SELECT 1 FROM {parent} p WHERE p.id = x.{key})") == 0


def test_customer_events_name_existing_carts_and_orders(con):
    assert value(con, """
        SELECT count(*) FROM customer_events e WHERE cart_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM carts c WHERE c.id = e.cart_id)""") == 0
    assert value(con, """
        SELECT count(*) FROM customer_events e WHERE order_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = e.order_id)""") == 0
    assert value(con, """
        SELECT count(*) FROM carts c WHERE NOT EXISTS (
            SELECT 1 FROM customer_events e
            WHERE e.cart_id = c.id AND e.event = 'cart_abandoned' AND e.customer_id = c.customer_id)""") == 0


def test_every_review_has_its_reviewed_event(con):
    assert value(con, "SELECT count(*) FROM reviews") == \
        value(con, "SELECT count(*) FROM order_events WHERE event = 'reviewed'")
    assert value(con, """
        SELECT count(*) FROM reviews r
        LEFT JOIN order_events e ON e.order_id = r.order_id AND e.event = 'reviewed'
        WHERE e.occurred_at IS DISTINCT FROM r.reviewed_at
           OR json_extract_string(e.data, '$.rating')::INT IS DISTINCT FROM r.rating""") == 0


# ---------------------------------------------------------------------------- time and order


def test_every_event_falls_inside_the_period(con):
    for table in ("order_events", "customer_events"):
        first, last = rows(con, f"SELECT min(occurred_at), max(occurred_at) FROM {table}")[0]
        assert START <= first and last <= END
    first, last = rows(con, "SELECT min(granted_at), max(coalesce(revoked_at, granted_at)) FROM consents")[0]
    assert START <= first and last <= END


#: Pairs (earlier, later): when both happened to an order, they happened in this order.
LIFECYCLE = [
    ("ordered", "paid"), ("paid", "shipped"), ("ordered", "shipped"), ("shipped", "out_for_delivery"),
    ("out_for_delivery", "delivered"), ("out_for_delivery", "delivery_failed"),
    ("delivery_failed", "delivered"), ("shipped", "delivered"), ("delivered", "return_requested"),
    ("return_requested", "returned"), ("delivery_failed", "returned"), ("returned", "refunded"),
    ("delivered", "reviewed"), ("reviewed", "feedback_negative"), ("delivered", "a_to_z_claim"),
    ("a_to_z_claim", "refunded"), ("ordered", "canceled"), ("canceled", "refunded"), ("paid", "refunded"),
]


@pytest.mark.parametrize("earlier, later", LIFECYCLE)
def test_order_events_happen_in_lifecycle_order(con, earlier, later):
    assert value(con, """
        SELECT count(*) FROM order_events a JOIN order_events b ON a.order_id = b.order_id
        WHERE a.event = ? AND b.event = ? AND a.occurred_at >= b.occurred_at""", [earlier, later]) == 0


@pytest.mark.parametrize("event, needs", [
    ("paid", "ordered"), ("shipped", "paid"), ("delivered", "shipped"), ("out_for_delivery", "shipped"),
    ("returned", "shipped"), ("return_requested", "delivered"), ("reviewed", "delivered"),
    ("a_to_z_claim", "delivered"), ("feedback_negative", "reviewed"),
])
def test_no_event_without_the_one_it_follows(con, event, needs):
    assert value(con, """
        SELECT count(*) FROM order_events a WHERE a.event = ? AND NOT EXISTS
        (SELECT 1 FROM order_events b WHERE b.order_id = a.order_id AND b.event = ?)""", [event, needs]) == 0


def test_each_event_happens_at_most_once_per_order(con):
    assert value(con, "SELECT count(*) FROM (SELECT order_id, event FROM order_events GROUP BY ALL "
                      "HAVING count(*) > 1)") == 0


def test_amazon_only_events_happen_to_amazon_orders(con):
    assert value(con, """
        SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id
        WHERE e.event IN ('a_to_z_claim', 'feedback_negative') AND o.marketplace <> 'amazon'""") == 0


def test_order_columns_agree_with_the_events(con):
    assert value(con, """
        SELECT count(*) FROM orders o
        LEFT JOIN order_events p ON p.order_id = o.id AND p.event = 'ordered'
        LEFT JOIN order_events s ON s.order_id = o.id AND s.event = 'shipped'
        LEFT JOIN order_events d ON d.order_id = o.id AND d.event = 'delivered'
        WHERE p.occurred_at IS DISTINCT FROM o.placed_at OR s.occurred_at IS DISTINCT FROM o.shipped_at
           OR d.occurred_at IS DISTINCT FROM o.delivered_at
           OR (o.tracking_url IS NULL) <> (o.shipped_at IS NULL)""") == 0


@pytest.mark.parametrize("status, event", [
    ("canceled", "canceled"), ("returned", "returned"), ("refunded", "refunded"), ("delivered", "delivered"),
    ("shipped", "shipped"), ("paid", "paid"),
])
def test_status_reflects_the_events(con, status, event):
    assert value(con, """
        SELECT count(*) FROM orders o WHERE status = ? AND NOT EXISTS
        (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.event = ?)""", [status, event]) == 0
    assert value(con, """
        SELECT count(*) FROM orders o WHERE status IN ('pending', 'paid') AND EXISTS
        (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.event = 'shipped')""") == 0


def test_customer_figures_are_derived_from_their_orders(con):
    assert value(con, """
        WITH figures AS (
            SELECT customer_id, min(placed_at) AS first_at, max(placed_at) AS last_at, count(*) AS n,
                   sum(total) FILTER (WHERE status NOT IN ('canceled', 'refunded', 'returned')) AS ltv,
                   arg_min(marketplace, placed_at) AS source, any_value(total_currency) AS currency,
                   count(DISTINCT total_currency) AS currencies
            FROM orders GROUP BY customer_id)
        SELECT count(*) FROM customers c LEFT JOIN figures f ON f.customer_id = c.id
        WHERE c.first_order_at IS DISTINCT FROM f.first_at OR c.last_order_at IS DISTINCT FROM f.last_at
           OR c.order_count <> coalesce(f.n, 0) OR c.lifetime_value <> coalesce(f.ltv, 0)
           OR (f.source IS NOT NULL AND c.source <> f.source)
           OR (f.currency IS NOT NULL AND c.lifetime_value_currency <> f.currency)
           OR f.currencies > 1""") == 0


def test_last_order_events_anchor_on_the_latest_order(con):
    assert value(con, """
        SELECT count(*) FROM customers c
        LEFT JOIN customer_events e ON e.customer_id = c.id AND e.event = 'last_order'
        LEFT JOIN orders o ON o.id = e.order_id
        WHERE (c.order_count > 0) <> (e.id IS NOT NULL) OR e.occurred_at IS DISTINCT FROM c.last_order_at
           OR o.placed_at IS DISTINCT FROM c.last_order_at""") == 0


def test_birthday_events_fall_on_the_birthday_at_local_midnight(con):
    found = rows(con, """
        SELECT c.birthday, c.timezone, e.occurred_at
        FROM customer_events e JOIN customers c ON c.id = e.customer_id
        WHERE e.event = 'birthday'""")
    assert found
    for birthday, zone, moment in found:
        local = moment.astimezone(ZoneInfo(zone))
        leap_day = (birthday.month, birthday.day) == (2, 29)
        assert (local.hour, local.minute) == (0, 0)
        assert (local.month, local.day) == (birthday.month, birthday.day) or leap_day


# ----------------------------------------------------------------------------- addresses


def test_phone_numbers_are_e164_with_the_country_calling_code(con):
    found = rows(con, "SELECT c.country, c.phone, c.whatsapp, o.state FROM customers c "
                      "LEFT JOIN orders o ON o.customer_id = c.id WHERE c.phone IS NOT NULL")
    assert found
    for country, phone, whatsapp, state in found:
        assert re.fullmatch(r"\+[1-9]\d{7,14}", phone), phone
        assert phone.startswith("+" + CALLING_CODES[country]), (country, phone)
        assert whatsapp in (None, phone)
        if CALLING_CODES[country] == "1":
            assert len(phone) == 12 and phone[5] in "23456789", phone
            if state is not None:
                assert int(phone[2:5]) in AREA_CODES[(country, state)], (state, phone)


def test_whatsapp_numbers_belong_to_customers_with_a_phone(con):
    assert value(con, "SELECT count(*) FROM customers WHERE whatsapp IS NOT NULL AND phone IS NULL") == 0


def test_line_user_ids_look_like_line_ids_and_are_unique(con):
    ids = column(con, "SELECT line_user_id FROM customers WHERE line_user_id IS NOT NULL")
    assert ids and all(re.fullmatch(r"U[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_emails_are_on_reserved_domains(con):
    emails = column(con, "SELECT email FROM customers WHERE email IS NOT NULL")
    reserved = r"[a-z0-9.]+@(example\.(com|net|org|jp|co\.jp|ne\.jp)|marketplace\.amazon\.example)"
    assert all(re.fullmatch(reserved, e) for e in emails), emails[:5]


def test_time_zones_locales_and_currencies_match_the_country(con):
    zones = {(r.country, r.timezone) for r in REGIONS}
    found = rows(con, "SELECT country, timezone, locale, lifetime_value_currency FROM customers GROUP BY ALL")
    for country, zone, locale, currency in found:
        assert (country, zone) in zones
        assert currency == CURRENCIES[country]
        if country == "JP":
            assert locale in ("ja", "en")
    assert value(con, """
        SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id
        WHERE o.total_currency <> c.lifetime_value_currency OR o.country <> c.country""") == 0


# ------------------------------------------------------------------------------ distributions


def test_customers_come_from_the_expected_markets(con):
    assert 0.30 <= share_of(con, "country = 'JP'") <= 0.40
    assert 0.20 <= share_of(con, "country = 'US'") <= 0.30
    assert 0.15 <= share_of(con, "country IN ('DE', 'FR', 'IT', 'ES', 'NL')") <= 0.30
    assert 0.03 <= share_of(con, "country = 'CA'") <= 0.09
    zones = set(column(con, "SELECT DISTINCT timezone FROM customers WHERE country = 'US'"))
    assert {"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"} <= zones
    assert {"en", "fr"} <= set(column(con, "SELECT DISTINCT locale FROM customers WHERE country = 'CA'"))


def test_buyers_order_two_to_three_times_on_average(con):
    assert 2.0 <= value(con, "SELECT avg(order_count) FROM customers WHERE order_count > 0") <= 3.0
    assert value(con, "SELECT max(order_count) FROM customers") >= 8
    assert 0.04 <= share_of(con, "order_count = 0") <= 0.12


def test_marketplaces_and_fulfilment(con):
    assert 0.55 <= share_of(con, "fulfillment = 'FBA'", "orders WHERE marketplace = 'amazon'") <= 0.65
    assert value(con, "SELECT count(*) FROM orders "
                      "WHERE (marketplace = 'amazon') <> (fulfillment IN ('FBA', 'FBM'))") == 0
    assert value(con, "SELECT count(*) FROM orders WHERE marketplace = 'rakuten' AND country <> 'JP'") == 0
    assert value(con, "SELECT count(DISTINCT marketplace) FROM orders") == 4


def test_totals_are_in_the_markets_currency_and_plausible(con):
    assert value(con, "SELECT count(*) FROM orders "
                      "WHERE total_currency = 'JPY' AND total <> round(total)") == 0
    for currency, low, high in (("JPY", 2_500, 9_000), ("USD", 20, 80), ("EUR", 20, 80)):
        median = float(value(con, "SELECT median(total) FROM orders WHERE total_currency = ?", [currency]))
        assert low <= median <= high, (currency, median)
    assert value(con, "SELECT min(total) FROM orders") > 0


def test_contact_details_have_the_expected_coverage(con):
    assert share_of(con, "email IS NOT NULL") >= 0.95
    assert share_of(con, "line_user_id IS NOT NULL", "customers WHERE country = 'JP'") >= 0.5
    assert share_of(con, "line_user_id IS NOT NULL", "customers WHERE country = 'US'") <= 0.05
    assert share_of(con, "whatsapp IS NOT NULL", "customers WHERE country IN ('DE', 'ES', 'IT')") >= 0.15
    assert 0.55 <= share_of(con, "birthday IS NOT NULL") <= 0.65
    sources = set(column(con, "SELECT DISTINCT source FROM customers"))
    assert sources <= {"amazon", "rakuten", "shopify", "web"}


def test_tags_are_present(con):
    tags = set(column(con, "SELECT DISTINCT unnest(tags) FROM customers"))
    assert {"vip", "wholesale", "newsletter", "replenishable", "gift_buyer"} <= tags


def test_a_few_percent_of_orders_go_wrong(con):
    shipped = value(con, "SELECT count(*) FROM order_events WHERE event = 'shipped'")

    def rate(event: str) -> float:
        return value(con, "SELECT count(*) FROM order_events WHERE event = ?", [event]) / shipped

    assert 0.02 <= rate("delivery_failed") <= 0.07
    assert 0.03 <= rate("return_requested") <= 0.08
    assert 0.01 <= rate("refunded") <= 0.12
    assert 0.001 <= rate("a_to_z_claim") <= 0.01
    assert 0.01 <= share_of(con, "status = 'canceled'", "orders") <= 0.05


def test_ratings_lean_to_four_and_five_stars_with_some_one_and_two(con):
    assert share_of(con, "rating >= 4", "reviews") >= 0.6
    assert 0.05 <= share_of(con, "rating <= 2", "reviews") <= 0.3
    assert value(con, "SELECT avg(rating) FROM reviews r JOIN orders o ON o.id = r.order_id "
                      "WHERE o.status IN ('returned', 'refunded')") < 3


def test_customer_events_of_every_kind(con):
    kinds = set(column(con, "SELECT DISTINCT event FROM customer_events"))
    assert {"cart_abandoned", "opened", "clicked", "unsubscribed", "complained", "bounced", "line_followed",
            "line_unfollowed", "last_order", "birthday", "signed_up"} <= kinds


# --------------------------------------------------------------------- consent and suppression


HAS_EMAIL_MARKETING = ("EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.id "
                       "AND k.channel = 'email' AND k.purpose = 'marketing')")


def test_marketing_consent_rates_depend_on_the_market(con):
    assert 0.45 <= share_of(con, HAS_EMAIL_MARKETING, "customers c") <= 0.70
    assert 0.60 <= share_of(con, HAS_EMAIL_MARKETING, "customers c WHERE c.source <> 'amazon'") <= 0.85
    own_shop = "customers c WHERE c.source <> 'amazon' AND c.country = "
    german = share_of(con, HAS_EMAIL_MARKETING, own_shop + "'DE'")
    american = share_of(con, HAS_EMAIL_MARKETING, own_shop + "'US'")
    assert german < american


def test_german_email_consent_is_double_opt_in(con):
    levels = dict(rows(con, """
        SELECT level, count(*) FROM consents k JOIN customers c ON c.id = k.customer_id
        WHERE c.country = 'DE' AND k.channel = 'email' GROUP BY level"""))
    assert levels.get("double_opt_in", 0) >= 0.85 * sum(levels.values())
    assert value(con, "SELECT count(*) FROM consents WHERE double_opt_in_at <= granted_at "
                      "OR (level = 'double_opt_in') <> (double_opt_in_at IS NOT NULL)") == 0


def test_us_sms_marketing_consent_is_written_and_a_minority(con):
    assert value(con, """
        SELECT count(*) FROM consents k JOIN customers c ON c.id = k.customer_id
        WHERE c.country = 'US' AND k.channel = 'sms' AND k.purpose = 'marketing'
          AND level <> 'written'""") == 0
    written = ("EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.id AND k.channel = 'sms' "
               "AND k.level = 'written')")
    assert 0.02 <= share_of(con, written, "customers c WHERE c.country = 'US'") <= 0.3


def test_line_friendship_consent_exactly_for_line_users(con):
    assert value(con, """
        SELECT count(*) FROM customers c
        FULL JOIN (SELECT * FROM consents WHERE channel = 'line') k ON k.customer_id = c.id
        WHERE (c.line_user_id IS NOT NULL) <> (k.customer_id IS NOT NULL)
           OR (k.customer_id IS NOT NULL AND k.purpose <> 'any')""") == 0
    assert value(con, """
        SELECT count(*) FROM consents k LEFT JOIN customer_events e ON e.customer_id = k.customer_id
             AND e.event = 'line_followed' AND e.occurred_at = k.granted_at
        WHERE k.channel = 'line' AND e.id IS NULL""") == 0


def test_consents_carry_evidence(con):
    assert value(con, "SELECT count(*) FROM consents WHERE evidence IS NULL OR source IS NULL") == 0
    assert value(con, """
        SELECT count(*) FROM consents WHERE channel <> 'line'
           AND (json_extract_string(evidence, '$.ip') IS NULL
                OR json_extract_string(evidence, '$.text') IS NULL)""") == 0


#: How each opt-out event shows in suppressions: (event, channel in the event data, channel, reason).
OPT_OUTS = [
    ("unsubscribed", "email", "email", "unsubscribed"),
    ("unsubscribed", "sms", "sms", "sms_stop"),
    ("complained", "email", "email", "complaint"),
    ("bounced", "email", "email", "hard_bounce"),
    ("line_unfollowed", None, "line", "line_unfollow"),
]


@pytest.mark.parametrize("event, data_channel, channel, reason", OPT_OUTS)
def test_every_opt_out_event_has_its_suppression_and_back(con, event, data_channel, channel, reason):
    events = set(rows(con, """
        SELECT customer_id, occurred_at FROM customer_events
        WHERE event = ? AND (?::VARCHAR IS NULL OR json_extract_string(data, '$.channel') = ?)""",
                      [event, data_channel, data_channel]))
    suppressed = set(rows(con, "SELECT customer_id, occurred_at FROM suppressions "
                               "WHERE channel = ? AND reason = ?", [channel, reason]))
    assert events and events == suppressed


def test_unsubscribe_suppressions_record_how_the_buyer_opted_out(con):
    assert value(con, """
        SELECT count(*) FROM suppressions s JOIN customer_events e ON e.customer_id = s.customer_id
             AND e.event = 'unsubscribed' AND e.occurred_at = s.occurred_at
        WHERE s.reason = 'unsubscribed' AND s.source <> json_extract_string(e.data, '$.method')""") == 0


def test_revoked_consents_match_opt_out_events(con):
    assert value(con, """
        SELECT count(*) FROM consents k WHERE k.revoked_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM suppressions s WHERE s.customer_id = k.customer_id AND s.channel = k.channel
               AND s.occurred_at = k.revoked_at
               AND s.reason IN ('unsubscribed', 'complaint', 'sms_stop', 'line_unfollow'))""") == 0
    assert value(con, """
        SELECT count(*) FROM suppressions s WHERE s.reason <> 'hard_bounce' AND NOT EXISTS (
            SELECT 1 FROM consents k WHERE k.customer_id = s.customer_id AND k.channel = s.channel
               AND k.revoked_at = s.occurred_at)""") == 0
    assert value(con, "SELECT count(*) FROM consents WHERE revoked_at <= granted_at") == 0


def test_opens_and_clicks_only_while_subscribed(con):
    assert value(con, """
        SELECT count(*) FROM customer_events e WHERE e.event IN ('opened', 'clicked') AND NOT EXISTS (
            SELECT 1 FROM consents k WHERE k.customer_id = e.customer_id AND k.channel = 'email'
               AND k.purpose = 'marketing' AND k.granted_at <= e.occurred_at
               AND (k.revoked_at IS NULL OR e.occurred_at <= k.revoked_at))""") == 0


# -------------------------------------------------------------- the example flows find work


LAST_WEEK = (END - timedelta(days=7), END)


@pytest.mark.parametrize("flow, sql", [
    ("jp_post_delivery_survey (delivered + 48h, JP, not Amazon)", """
        SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id
        WHERE e.event = 'delivered' AND o.country = 'JP' AND o.marketplace <> 'amazon'
          AND e.occurred_at + INTERVAL 48 HOUR BETWEEN ? AND ?"""),
    ("amazon_review_request (delivered + 7d, Amazon)", """
        SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id
        WHERE e.event = 'delivered' AND o.marketplace = 'amazon'
          AND e.occurred_at + INTERVAL 7 DAY BETWEEN ? AND ?"""),
    ("us_review_request_shopify (delivered + 5d, US Shopify)", """
        SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id
        WHERE e.event = 'delivered' AND o.country = 'US' AND o.marketplace = 'shopify'
          AND e.occurred_at + INTERVAL 5 DAY BETWEEN ? AND ?"""),
    ("shipping_notice (shipped, own shops)", """
        SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id
        WHERE e.event = 'shipped' AND o.marketplace <> 'amazon' AND e.occurred_at BETWEEN ? AND ?"""),
    ("fbm_delivery_delay (shipped + 7d, FBM, not delivered)", """
        SELECT count(*) FROM orders o WHERE o.fulfillment = 'FBM' AND o.shipped_at + INTERVAL 7 DAY <= ?
          AND coalesce(o.delivered_at, TIMESTAMPTZ '9999-01-01') > o.shipped_at + INTERVAL 7 DAY
          AND o.shipped_at + INTERVAL 7 DAY <= ?"""),
    ("delivery_failed_address_update (failed deliveries)", """
        SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id
        WHERE e.event = 'delivery_failed' AND e.occurred_at BETWEEN ? AND ?"""),
    ("eu_cart_recovery (EU carts of 20 EUR or more, consent)", """
        SELECT count(*) FROM customer_events e JOIN carts ct ON ct.id = e.cart_id
        JOIN customers c ON c.id = e.customer_id
        WHERE e.event = 'cart_abandoned' AND c.country IN ('DE', 'FR', 'IT', 'ES', 'NL') AND ct.total >= 20
          AND e.occurred_at BETWEEN ? AND ?
          AND EXISTS (SELECT 1 FROM consents k WHERE k.customer_id = c.id AND k.channel = 'email'
                      AND k.purpose = 'marketing')"""),
    ("birthday_coupon_jp (JP birthdays)", """
        SELECT count(*) FROM customer_events e JOIN customers c ON c.id = e.customer_id
        WHERE e.event = 'birthday' AND c.country = 'JP' AND e.occurred_at BETWEEN ? AND ?"""),
    ("win_back_90d (last order + 90d, US/CA, 2+ orders)", """
        SELECT count(*) FROM customer_events e JOIN customers c ON c.id = e.customer_id
        WHERE e.event = 'last_order' AND c.country IN ('US', 'CA') AND c.order_count >= 2
          AND e.occurred_at + INTERVAL 90 DAY BETWEEN ? - INTERVAL 21 DAY AND ?"""),
    ("negative_review_rescue (1-2 stars, own shops)", """
        SELECT count(*) FROM reviews r JOIN orders o ON o.id = r.order_id
        WHERE r.rating <= 2 AND o.marketplace <> 'amazon'
          AND r.reviewed_at BETWEEN ? - INTERVAL 14 DAY AND ?"""),
    ("us_sms_reorder_reminder (delivered + 30d, written SMS consent)", """
        SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id
        JOIN customers c ON c.id = o.customer_id
        JOIN consents k ON k.customer_id = c.id AND k.channel = 'sms' AND k.level = 'written'
        WHERE e.event = 'delivered' AND o.country = 'US' AND o.marketplace <> 'amazon'
          AND e.occurred_at + INTERVAL 30 DAY BETWEEN ? - INTERVAL 21 DAY AND ?"""),
])
def test_example_flows_have_candidates_near_the_end(con, flow, sql):
    assert value(con, sql, LAST_WEEK) > 0, flow


# ----------------------------------------------------------------------- refusing to overwrite


def test_generate_refuses_a_store_with_data(con):
    with pytest.raises(StoreNotEmpty, match="already holds data"):
        generate(con, orders=10)


@pytest.mark.parametrize("options", [{"orders": 0}, {"orders": -5}, {"days": 0}, {"seed": 2**64}])
def test_bad_arguments_are_refused(tmp_path, options):
    con = open_store(tmp_path / "bad.duckdb")
    try:
        with pytest.raises(ValueError):
            generate(con, **options)
        assert value(con, "SELECT count(*) FROM orders") == 0
    finally:
        con.close()


def test_the_command_refuses_a_non_empty_store_without_force(tmp_path):
    db = str(tmp_path / "cli.duckdb")
    runner = CliRunner()
    first = runner.invoke(generate_command, ["--db", db, "--orders", "300"])
    assert first.exit_code == 0, first.output
    assert "orders" in first.output and "300" in first.output

    refused = runner.invoke(generate_command, ["--db", db, "--orders", "200"])
    assert refused.exit_code != 0
    assert "--force" in refused.output
    con = open_store(db)
    try:
        assert value(con, "SELECT count(*) FROM orders") == 300
    finally:
        con.close()

    replaced = runner.invoke(generate_command, ["--db", db, "--orders", "200", "--seed", "3", "--force",
                                                "--start", "2026-03-01", "--days", "30"])
    assert replaced.exit_code == 0, replaced.output
    con = open_store(db)
    try:
        assert value(con, "SELECT count(*) FROM orders") == 200
        assert value(con, "SELECT count(*) FROM ledger") == 0
        first_at = value(con, "SELECT min(placed_at) FROM orders")
        assert datetime(2026, 3, 1, tzinfo=UTC) <= first_at < datetime(2026, 3, 31, tzinfo=UTC)
    finally:
        con.close()


def test_the_command_rejects_a_bad_start_date(tmp_path):
    result = CliRunner().invoke(generate_command, ["--db", str(tmp_path / "x.duckdb"), "--start", "soon"])
    assert result.exit_code == 2
    assert "--start" in result.output
