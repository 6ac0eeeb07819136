"""The SQL compiler agrees with the per-row reference evaluator on random data and random guards.

So does a whole tick: every step of several flows at once, with the ledger's decisions and
deferrals, and birthdays across years, leap days and time zones.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_eval import Reference

from linkstar_dsl.checker import Env, check_text
from linkstar_dsl.compiler.due import NOW, expr
from linkstar_dsl.compiler.plan import plan_flow
from linkstar_dsl.parser import parse
from linkstar_dsl.runtime.due_set import DueSet
from linkstar_dsl.schema import standard_schema
from linkstar_dsl.store import migrate

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


# ------------------------------------------------------------- the tick: every step of every flow

TRIGGERS = ["delivered", "refunded", "ordered"]


@st.composite
def tick_flows(draw):
    """Flow texts: a trigger with an offset, a guard, maybe `unless`, `exit when` and steps."""
    texts = []
    for n in range(draw(st.integers(1, 3))):
        offset = draw(st.sampled_from(["", " + 1h", " + 2d"]))
        unless = draw(st.sampled_from(["", " unless refunded", " unless returned"]))
        lines = [f"flow f{n}", "  purpose service", f"  on {draw(st.sampled_from(TRIGGERS))}{offset}{unless}",
                 f"  where {draw(guards())}", "  via email"]
        steps = draw(st.lists(st.sampled_from(["", " + 1h", " + 1d"]), max_size=2))
        if steps:
            lines += [f'  step{later} send "s{k}"' for k, later in enumerate(steps)]
            lines.append(f"  exit when {draw(st.sampled_from(['refunded', 'returned or reviewed']))}")
        texts.append("\n".join(lines) + "\n")
    return texts


def plans_of(texts):
    """Planned flows; compliance findings (a random guard may break a policy) do not matter here."""
    plans = []
    for text in texts:
        report = check_text(text, "t.flow")
        assert len(report.module.flows) == 1, [d.message for d in report.diagnostics]
        env = Env.for_module(report.module)
        plans += [plan_flow(f, env) for f in report.module.flows]
    return plans, env.schema


def expected_rows(plans, schema, data, ledger, since, now):
    """What the tick must return, worked out row by row with the reference evaluator."""
    customers, orders, reviews, events, cevents = data
    by_order = {o["id"]: o for o in orders}
    by_customer = {c["id"]: c for c in customers}
    by_review = {r["order_id"]: r for r in reviews}
    order_events = [(oid, ev, at) for _, oid, ev, at in events]
    customer_events = [(cid, ev, at) for _, cid, ev, at in cevents]
    decided = {row[0]: row for row in ledger}
    found = []
    for s, (plan, step) in enumerate((p, st_) for p in plans for st_ in p.steps):
        offset = timedelta(seconds=step.offset)
        for eid, oid, name, at in events:
            if name != plan.event:
                continue
            key = f"{plan.name}:{step.index}:{eid}"
            fresh = since - offset < at <= now - offset and key not in decided
            entry = decided.get(key)
            deferred = entry is not None and entry[3] == "defer" and entry[4] <= now
            if not (fresh or deferred):
                continue
            order = by_order[oid]
            customer = by_customer[order["customer_id"]]

            def truth(e, after=None, order=order, customer=customer):
                return Reference(schema, now, order, customer, by_review.get(order["id"]), order_events,
                                 customer_events, orders, after).truth(e)

            found.append((s, at + offset, key, oid, customer["id"], all(truth(g) for g in plan.guards),
                          plan.unless is None or not truth(plan.unless, at), any(truth(x, at) for x in plan.exits)))
    return sorted(found)


@st.composite
def ledgers(draw, plans, events, now):
    """Ledger rows (key, flow, step, decision, send_at), mostly for occurrences of the flows' steps,
    deferred to around `now`."""
    candidates = [(plan.name, step.index, eid) for plan in plans for step in plan.steps
                  for eid, _, name, _ in events if name == plan.event]
    candidates += [("f9", 0, eid) for eid, *_ in events]  # a flow that is not in the program
    rows = {}
    for flow, step, eid in draw(st.lists(st.sampled_from(candidates), max_size=5)) if candidates else ():
        key = f"{flow}:{step}:{eid}"
        rows[key] = (key, flow, step, draw(st.sampled_from(["send", "skip", "defer", "defer"])),
                     now + timedelta(hours=draw(st.integers(-30, 30))))
    return list(rows.values())


def tick_and_reference(texts, data, start, hours, draw) -> tuple[list, list]:
    """The tick's due rows over a random window and ledger, and the reference evaluator's."""
    plans, schema = plans_of(texts)
    since = BASE + timedelta(hours=start)
    now = since + timedelta(hours=hours)
    ledger = draw.draw(ledgers(plans, data[3], now))
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    load(con, *data)
    owner = {o["id"]: o["customer_id"] for o in data[1]}
    event_order = {eid: oid for eid, oid, _, _ in data[3]}
    for key, flow, step, decision, send_at in ledger:
        occurrence = key.split(":", 2)[2]
        con.execute("INSERT INTO ledger (key, flow, step, occurrence, customer_id, purpose, decision, reason, due_at, "
                    "send_at) VALUES (?, ?, ?, ?, ?, 'service', ?, 'test', ?, ?)",
                    [key, flow, step, occurrence, owner[event_order[occurrence]], decision, send_at, send_at])
    due_set = DueSet(plans, schema)
    got = sorted((due_set.queries[(plan.name, step.index)], row["due_at"], row["key"], row["order_id"],
                  row["customer_id"], row["guard_ok"], row["unless_ok"], row["exited"])
                 for plan, step, row in due_set.rows(con, since, now))
    return got, expected_rows(plans, schema, data, ledger, since, now)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=tick_flows(), data=datasets(), start=st.integers(0, 600), hours=st.integers(1, 900), draw=st.data())
def test_the_tick_agrees_with_the_reference_for_every_step(texts, data, start, hours, draw):
    got, expected = tick_and_reference(texts, data, start, hours, draw)
    assert got == expected, texts


def test_unless_and_exits_count_only_events_after_the_trigger():
    customers = [{"id": "c0", "country": "JP", "email": None, "tags": []}]
    orders = [{"id": f"o{i}", "customer_id": "c0", "country": "JP", "total": Decimal(1), "total_currency": "JPY",
               "fulfillment": "FBM", "marketplace": "shopify", "item_count": 1, "placed_at": BASE,
               "delivered_at": None} for i in range(3)]
    at = BASE + timedelta(hours=10)
    events = [("d0", "o0", "delivered", at), ("r0", "o0", "refunded", at - timedelta(hours=1)),
              ("d1", "o1", "delivered", at), ("r1", "o1", "refunded", at + timedelta(hours=1)),
              ("d2", "o2", "delivered", at), ("r2", "o2", "returned", at + timedelta(hours=2))]
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    load(con, customers, orders, [], events, [])
    plans, schema = plans_of([('flow u\n  purpose service\n  on delivered + 1d unless refunded\n  via email\n'
                               '  step send "a"\n  exit when returned\n')])
    rows = DueSet(plans, schema).rows(con, at, at + timedelta(days=2))
    assert {r["order_id"]: (r["unless_ok"], r["exited"]) for _, _, r in rows} == {
        "o0": (True, False), "o1": (False, False), "o2": (True, True)}


ZONES = ["Asia/Tokyo", "America/New_York", "Europe/Berlin", "Pacific/Kiritimati", "Pacific/Pago_Pago", None]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people=st.lists(st.tuples(st.dates(min_value=datetime(1890, 1, 1).date(), max_value=datetime(2010, 12, 31).date()),
                                 st.sampled_from(ZONES)), min_size=1, max_size=8),
       start=st.datetimes(min_value=datetime(2026, 12, 25), max_value=datetime(2028, 3, 5)),
       hours=st.integers(1, 80), special=st.booleans())
def test_birthdays_fall_at_local_midnight_on_the_day(people, start, hours, special):
    """Across years, leap days and time zones 14 hours either side of UTC (29 February falls on
    1 March in other years)."""
    if special:  # birthdays the window is likely to catch
        people = [(b.replace(month=start.month, day=min(start.day, 28)), z) for b, z in people] + \
                 [(datetime(1996, 2, 29).date(), "Asia/Tokyo"), (datetime(1988, 3, 1).date(), None)]
    since = start.replace(tzinfo=UTC)
    now = since + timedelta(hours=hours)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    for i, (birthday, zone) in enumerate(people):
        con.execute("INSERT INTO customers (id, country, timezone, birthday) VALUES (?, 'JP', ?, ?)",
                    [f"c{i}", zone, birthday])
    plans, schema = plans_of(["flow b\n  purpose service\n  on birthday\n  via email\n"])
    got = sorted((row["key"], row["due_at"]) for _, _, row in DueSet(plans, schema).rows(con, since, now))
    expected = []
    for i, (birthday, zone) in enumerate(people):
        for year in range(since.year - 1, now.year + 2):
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            day = (3, 1) if (birthday.month, birthday.day) == (2, 29) and not leap else (birthday.month, birthday.day)
            midnight = datetime(year, *day, tzinfo=ZoneInfo(zone or "UTC")).astimezone(UTC)
            if since < midnight <= now:
                expected.append((f"b:0:birthday:c{i}:{year}", midnight))
    assert got == sorted(expected)


def test_a_leap_day_birthday_falls_on_the_first_of_march_in_other_years():
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    for cid, birthday in (("leap", "1996-02-29"), ("march", "1984-03-01"), ("april", "1984-04-08")):
        con.execute("INSERT INTO customers (id, country, timezone, birthday) VALUES (?, 'US', 'America/Toronto', ?)",
                    [cid, birthday])
    plans, schema = plans_of(["flow b\n  purpose service\n  on birthday\n  via email\n"])
    since = datetime(2027, 2, 27, tzinfo=UTC)
    rows = DueSet(plans, schema).rows(con, since, since + timedelta(days=50))
    toronto = ZoneInfo("America/Toronto")
    assert [(r["customer_id"], r["due_at"]) for _, _, r in rows] == [
        ("leap", datetime(2027, 3, 1, tzinfo=toronto)), ("march", datetime(2027, 3, 1, tzinfo=toronto)),
        ("april", datetime(2027, 4, 8, tzinfo=toronto))]  # a leap-year birth date keeps its day


def test_deferred_birthdays_and_last_orders_come_back_when_due():
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    last = BASE + timedelta(days=3)
    con.execute("INSERT INTO customers (id, country, timezone, birthday, last_order_at) "
                "VALUES ('c1', 'JP', 'Asia/Tokyo', DATE '1990-03-02', ?)", [last])
    plans, schema = plans_of(["flow b\n  purpose service\n  on birthday\n  via email\n",
                              "flow w\n  purpose service\n  on last_order + 1d\n  via email\n"])
    birthday = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Tokyo"))
    occurrences = {"b": "birthday:c1:2026", "w": con.execute(
        "SELECT concat('last_order:', id, ':', epoch(last_order_at)) FROM customers").fetchone()[0]}
    now = birthday + timedelta(hours=10)  # deferred to 10:00 on the day
    for flow, occurrence in occurrences.items():
        con.execute("INSERT INTO ledger (key, flow, step, occurrence, customer_id, purpose, decision, reason, due_at, "
                    "send_at) VALUES (?, ?, 0, ?, 'c1', 'service', 'defer', 'window', ?, ?)",
                    [f"{flow}:0:{occurrence}", flow, occurrence, BASE, now - timedelta(hours=1)])
    rows = DueSet(plans, schema).rows(con, now - timedelta(hours=2), now)
    assert [(r["key"], r["due_at"]) for _, _, r in rows] == [
        ("b:0:birthday:c1:2026", birthday), (f"w:0:{occurrences['w']}", last + timedelta(days=1))]


def test_last_order_occurrences_follow_the_profile():
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    for cid, hours in (("c1", 10), ("c2", 30), ("c3", None)):
        con.execute("INSERT INTO customers (id, country, last_order_at) VALUES (?, 'US', ?)",
                    [cid, BASE + timedelta(hours=hours) if hours is not None else None])
    plans, schema = plans_of(["flow w\n  purpose service\n  on last_order + 1d\n  via email\n"])
    rows = DueSet(plans, schema).rows(con, BASE + timedelta(hours=30), BASE + timedelta(hours=40))
    assert [(r["customer_id"], r["due_at"]) for _, _, r in rows] == [("c1", BASE + timedelta(hours=34))]
    assert rows[0][2]["occurrence"].startswith("last_order:c1:")
