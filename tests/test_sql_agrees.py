"""The SQL compiler agrees with the per-row reference evaluator on random data and random guards."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkstar_dsl.compiler.due import NOW, expr
from linkstar_dsl.parser import parse
from linkstar_dsl.schema import standard_schema
from linkstar_dsl.store import migrate

from reference_eval import Reference

UTC = timezone.utc
BASE = datetime(2026, 3, 1, tzinfo=UTC)
EVENTS = ["ordered", "delivered", "refunded", "returned", "reviewed"]
CUSTOMER_EVENTS = ["opened", "unsubscribed"]

conditions = st.sampled_from([
    "refunded", "not refunded", "returned within 10d", "refunded within 3d",
    "order.total >= 5000 JPY", "order.total < 80 USD", "order.total != 5000 JPY", "100 USD <= order.total",
    "order.country in [JP, KR]", "order.country not in [US]", "order.country == US",
    "customer.country == \"JP\"", "\"vip\" in customer.tags", "\"vip\" not in customer.tags",
    "review.rating is missing", "review.rating is present", "review.rating <= 2", "review.rating >= 4",
    "customer.email is missing", "order.fulfillment != FBA", "order.marketplace == amazon",
    "count(ordered within 365d) >= 2", "count(delivered) == 1", "opened within 30d", "not unsubscribed",
    "order.placed_at + 2d < order.delivered_at", "order.delivered_at is missing",
    "order.item_count * 2 > 3", "-order.item_count < -1",
])


@st.composite
def guards(draw):
    parts = draw(st.lists(conditions, min_size=1, max_size=4))
    ops = draw(st.lists(st.sampled_from(["and", "or"]), min_size=len(parts) - 1, max_size=len(parts) - 1))
    text = parts[0]
    for op, part in zip(ops, parts[1:]):
        text = f"({text}) {op} {part}" if draw(st.booleans()) else f"{text} {op} {part}"
    return text


@st.composite
def datasets(draw):
    n = draw(st.integers(min_value=1, max_value=6))
    customers, orders, reviews, events, cevents = [], [], [], [], []
    for i in range(n):
        country = draw(st.sampled_from(["JP", "US", "KR", "DE"]))
        customers.append({"id": f"c{i}", "country": country, "email": draw(st.sampled_from([None, f"c{i}@x.com"])),
                          "tags": draw(st.lists(st.sampled_from(["vip", "new"]), unique=True))})
        for j in range(draw(st.integers(min_value=1, max_value=3))):
            oid = f"o{i}_{j}"
            placed = BASE + timedelta(hours=draw(st.integers(0, 500)))
            delivered = draw(st.one_of(st.none(), st.integers(1, 200)))
            orders.append({
                "id": oid, "customer_id": f"c{i}", "country": draw(st.sampled_from(["JP", "US", "KR"])),
                "total": Decimal(draw(st.sampled_from([50, 80, 100, 4999, 5000, 9000]))),
                "total_currency": draw(st.sampled_from(["JPY", "USD"])),
                "fulfillment": draw(st.sampled_from(["FBA", "FBM", "merchant"])),
                "marketplace": draw(st.sampled_from(["amazon", "shopify"])),
                "item_count": draw(st.integers(1, 3)), "placed_at": placed,
                "delivered_at": placed + timedelta(hours=delivered) if delivered else None,
            })
            for k, name in enumerate(draw(st.lists(st.sampled_from(EVENTS), max_size=4))):
                events.append((f"{oid}_e{k}", oid, name, BASE + timedelta(hours=draw(st.integers(0, 900)))))
            if draw(st.booleans()):
                reviews.append({"order_id": oid, "rating": draw(st.one_of(st.none(), st.integers(1, 5)))})
        for k, name in enumerate(draw(st.lists(st.sampled_from(CUSTOMER_EVENTS), max_size=2))):
            cevents.append((f"c{i}_e{k}", f"c{i}", name, BASE + timedelta(hours=draw(st.integers(0, 900)))))
    return customers, orders, reviews, events, cevents


def load(con, customers, orders, reviews, events, cevents):
    for c in customers:
        con.execute("INSERT INTO customers (id, email, country, tags) VALUES (?, ?, ?, ?)",
                    [c["id"], c["email"], c["country"], c["tags"]])
    for o in orders:
        con.execute("INSERT INTO orders (id, customer_id, marketplace, fulfillment, status, country, total, "
                    "total_currency, item_count, placed_at, delivered_at) VALUES (?, ?, ?, ?, 'x', ?, ?, ?, ?, ?, ?)",
                    [o["id"], o["customer_id"], o["marketplace"], o["fulfillment"], o["country"], o["total"],
                     o["total_currency"], o["item_count"], o["placed_at"], o["delivered_at"]])
    for r in reviews:
        con.execute("INSERT INTO reviews (order_id, rating) VALUES (?, ?)", [r["order_id"], r["rating"]])
    if events:
        con.executemany("INSERT INTO order_events VALUES (?, ?, ?, ?, NULL)", events)
    if cevents:
        con.executemany("INSERT INTO customer_events (id, customer_id, event, occurred_at) VALUES (?, ?, ?, ?)",
                        cevents)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(guard=guards(), data=datasets(), hours=st.integers(0, 1000))
def test_sql_and_reference_agree(guard, data, hours):
    now = BASE + timedelta(hours=hours)
    schema = standard_schema()
    flow = parse(f"on delivered where {guard} via email purpose service").module.flows[0]
    condition = flow.clauses[1].expr
    q = expr(schema, condition)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    customers, orders, reviews, events, cevents = data
    load(con, *data)
    params = [now if p is NOW else p for p in q.params]
    sql_ids = {row[0] for row in con.execute(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id LEFT JOIN reviews r ON r.order_id = o.id "
        f"LEFT JOIN carts ct ON FALSE WHERE coalesce({q.sql}, FALSE)", params).fetchall()}
    by_customer = {c["id"]: c for c in customers}
    by_review = {r["order_id"]: r for r in reviews}
    ref_ids = set()
    for o in orders:
        ref = Reference(schema, now, o, by_customer[o["customer_id"]], by_review.get(o["id"]),
                        [(oid, ev, at) for _, oid, ev, at in events],
                        [(cid, ev, at) for _, cid, ev, at in cevents], orders)
        if ref.truth(condition):
            ref_ids.add(o["id"])
    assert sql_ids == ref_ids, guard
