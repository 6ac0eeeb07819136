"""Money in expressions, and the promise behind it: every flow the checker accepts compiles and runs.

Money keeps its currency through a sign and through arithmetic (an amount times a number, a sum
of two amounts in one currency); amounts compare only within one currency; a sum across
currencies, an overflow or a division by zero is missing.  The SQL compiler agrees with the
reference evaluator on this, and a property over the expression grammar holds every condition
`check` accepts to compiling and running, in the tick's SQL and in `explain`'s.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_eval import Reference
from test_sql_agrees import BASE, datasets, load

from linkstar_dsl.checker import Env, check_text
from linkstar_dsl.compiler.due import NOW, expr
from linkstar_dsl.compiler.plan import plan_flow
from linkstar_dsl.diagnostics import Severity
from linkstar_dsl.parser import parse
from linkstar_dsl.runtime.due_set import DueSet
from linkstar_dsl.schema import standard_schema
from linkstar_dsl.store import migrate


def connect():
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    migrate(con)
    return con


def holds(condition: str, total: str, currency: str = "JPY") -> bool | None:
    """The guard's value in SQL (None: missing) for one order of `total` `currency`, whose customer has
    no lifetime value."""
    con = connect()
    con.execute("INSERT INTO customers (id, country) VALUES ('c1', 'JP')")
    con.execute("INSERT INTO orders (id, customer_id, marketplace, status, country, total, total_currency, item_count, "
                "placed_at) "
                "VALUES ('o1', 'c1', 'shopify', 'x', 'JP', ?, ?, 2, ?)", [total, currency, BASE])
    where = parse(f"on delivered where {condition} via email purpose service").module.flows[0].clauses[1].expr
    q = expr(standard_schema(), where)
    return con.execute(f"SELECT {q.sql} FROM orders o JOIN customers c ON c.id = o.customer_id "
                       "LEFT JOIN reviews r ON r.order_id = o.id LEFT JOIN carts ct ON FALSE",
                       [BASE if p is NOW else p for p in q.params]).fetchone()[0]


@pytest.mark.parametrize("condition, total, expected", [
    ("order.total > -5 JPY", "0", True),
    ("order.total > -5 JPY", "-10", False),
    ("order.total * 2 > 1 JPY", "1", True),
    ("2 * order.total >= 4 JPY", "1", False),
    ("order.total / 4 == 2.5 JPY", "10", True),
    ("-order.total < -9 JPY", "10", True),
    ("order.total - 1 JPY == 9 JPY", "10", True),
    ("order.total + 1 USD > 0 JPY", "10", None),      # no exchange rates: a sum across currencies is missing
    ("order.total + 1 USD != 0 JPY", "10", None),
    ("order.total * 2 > 1 USD", "10", False),         # compared across currencies: false
    ("order.total * 2 != 20 USD", "10", True),
    ("order.total / 0 > 1 JPY", "10", None),          # a division by zero is missing
    ("order.total in [5 JPY, 10 JPY]", "10", True),
    ("order.total in [5 JPY, 10 USD]", "10", False),
    ("order.total * 2 in [-20 JPY, 20 JPY]", "10", True),
    ("(order.total * 2) is present", "10", True),
    ("order.item_count * 999999999999999 * 999999999999999 > 1", "10", None),  # overflow is missing
])
def test_money_keeps_its_currency_through_arithmetic(condition, total, expected):
    assert holds(condition, total) is expected


def test_a_missing_amount_or_currency_makes_money_missing():
    assert holds("customer.lifetime_value != 5 USD", "5") is None   # the customer has no lifetime value
    assert holds("customer.lifetime_value * 2 is missing", "5") is True


MONEY_CONDITIONS = st.sampled_from([
    "order.total > -5 JPY", "order.total * 2 > 9000 JPY", "2 * order.total <= 100 USD", "-order.total < -80 USD",
    "order.total / 2 >= 2500 JPY", "order.total - 50 USD > 0 USD", "order.total + 1 JPY != 5001 JPY",
    "order.total + order.total == 100 USD", "order.total in [50 USD, 5000 JPY]", "order.total not in [-50 USD]",
    "order.total * order.item_count > 9000 JPY", "order.total / (order.item_count - 1) > 40 USD",
    "order.total * 1.5 == 75 USD", "(order.total * 2) is missing", "5000 JPY <= order.total * 1",
])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=MONEY_CONDITIONS, data=datasets())
def test_money_arithmetic_agrees_with_the_reference(condition, data):
    schema = standard_schema()
    where = parse(f"on delivered where {condition} via email purpose service").module.flows[0].clauses[1].expr
    q = expr(schema, where)
    con = connect()
    load(con, *data)
    customers, orders, *_ = data
    got = {row[0] for row in con.execute(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id LEFT JOIN reviews r ON r.order_id = o.id "
        f"LEFT JOIN carts ct ON FALSE WHERE coalesce({q.sql}, FALSE)",
        [BASE if p is NOW else p for p in q.params]).fetchall()}
    by_customer = {c["id"]: c for c in customers}
    expected = {o["id"] for o in orders
                if Reference(schema, BASE, o, by_customer[o["customer_id"]], None, [], [], orders).truth(where)}
    assert got == expected, condition


# ------------------------------------------------------ every condition the checker accepts runs

def _literal_number():
    return st.one_of(st.integers(-3, 10**15 - 1).map(str), st.sampled_from(["0", "1.5", "0.25", "-2", "999999999999999"]))


NUMBERS = st.one_of(_literal_number(), st.sampled_from(["order.item_count", "review.rating", "customer.order_count",
                                                          "count(ordered)", "count(opened within 30d)"]))
MONEY = st.sampled_from(["5 JPY", "-5 JPY", "0.5 USD", "order.total", "customer.lifetime_value", "cart.total"])
DURATIONS = st.sampled_from(["2d", "1h", "90m", "order.delivered_at - order.placed_at"])
TIMESTAMPS = st.sampled_from(["order.placed_at", "order.delivered_at", "customer.last_order_at"])
OTHERS = st.sampled_from(["10%", "10:00", "\"vip\"", "customer.email", "customer.birthday", "order.country", "US",
                          "FBA", "order.fulfillment", "true", "order.gift", "customer.tags", "refunded", "[JP, US]",
                          "[5 JPY, 7 USD]", "customer.locale", "ja"])
OPERATORS = st.sampled_from(["+", "-", "*", "/"])
COMPARISONS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def _binary(left, operators, right):
    return st.tuples(left, operators, right).map(lambda t: f"({t[0]} {t[1]} {t[2]})")


def _negated(inner):
    return inner.map(lambda v: f"-{v}" if not v.startswith("-") else f"-({v})")


def _typed(base, extend):
    return st.recursive(base, lambda inner: st.one_of(_negated(inner), *extend(inner)), max_leaves=4)


NUMBER_EXPRS = _typed(NUMBERS, lambda n: [_binary(n, OPERATORS, n)])
MONEY_EXPRS = _typed(MONEY, lambda m: [_binary(m, st.sampled_from(["+", "-"]), m),
                                       _binary(m, st.sampled_from(["*", "/"]), NUMBER_EXPRS),
                                       _binary(NUMBER_EXPRS, st.just("*"), m)])
DURATION_EXPRS = _typed(DURATIONS, lambda d: [_binary(d, st.sampled_from(["+", "-"]), d),
                                              _binary(d, st.sampled_from(["*", "/"]), NUMBER_EXPRS)])
TIMESTAMP_EXPRS = st.one_of(TIMESTAMPS, _binary(TIMESTAMPS, st.sampled_from(["+", "-"]), DURATION_EXPRS))
#: Every kind of value, combined at random: the checker refuses most mixtures, and what it accepts must run.
MIXED = _typed(st.one_of(NUMBERS, MONEY, DURATIONS, TIMESTAMPS, OTHERS), lambda v: [_binary(v, OPERATORS, v)])


def _compared(left, right):
    return st.tuples(left, COMPARISONS, right).map(lambda t: f"{t[0]} {t[1]} {t[2]}")


def _listed(item, items):
    return st.tuples(item, st.sampled_from(["in", "not in"]),
                     st.lists(items, min_size=0, max_size=3).map(lambda v: "[" + ", ".join(v) + "]")
                     ).map(lambda t: f"{t[0]} {t[1]} {t[2]}")


def conditions():
    atom = st.one_of(
        _compared(NUMBER_EXPRS, NUMBER_EXPRS), _compared(MONEY_EXPRS, MONEY_EXPRS),
        _compared(DURATION_EXPRS, DURATION_EXPRS), _compared(TIMESTAMP_EXPRS, TIMESTAMP_EXPRS),
        _compared(MIXED, MIXED), _listed(MONEY_EXPRS, MONEY_EXPRS), _listed(NUMBER_EXPRS, NUMBER_EXPRS),
        _listed(MIXED, MIXED), st.tuples(MIXED, st.sampled_from(["in", "not in"]), st.just("customer.tags")).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(st.one_of(MIXED, MONEY_EXPRS), st.sampled_from(["is missing", "is present"])).map(
            lambda t: f"{t[0]} {t[1]}"),
        st.sampled_from(["refunded", "ordered within 3d", "order.gift", "true"]),
    )
    return st.recursive(atom, lambda inner: st.one_of(
        inner.map(lambda c: f"not ({c})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})")),
        max_leaves=3)


CONDITIONS = conditions()


@st.composite
def checked_conditions(draw):
    """A condition of the grammar above (a composite, so the strategy's repr stays short)."""
    return draw(CONDITIONS)


def tiny_store():
    con = connect()
    con.execute("INSERT INTO customers (id, country, email, tags, lifetime_value, lifetime_value_currency, "
                "order_count, birthday, last_order_at) VALUES ('c1', 'JP', 'a@b.jp', ['vip'], 120, 'USD', 3, "
                "DATE '1990-03-02', ?)", [BASE])
    con.execute("INSERT INTO orders (id, customer_id, marketplace, fulfillment, status, country, total, "
                "total_currency, item_count, placed_at, delivered_at, gift) VALUES ('o1', 'c1', 'shopify', 'FBM', "
                "'delivered', 'JP', 5000, 'JPY', 2, ?, ?, FALSE)", [BASE - timedelta(days=3), BASE])
    con.execute("INSERT INTO reviews (order_id, rating) VALUES ('o1', 4)")
    con.execute("INSERT INTO order_events VALUES ('e1', 'o1', 'ordered', ?, NULL), ('e2', 'o1', 'delivered', ?, NULL)",
                [BASE - timedelta(days=3), BASE])
    con.execute("INSERT INTO customer_events (id, customer_id, event, occurred_at) VALUES ('x1', 'c1', 'opened', ?)",
                [BASE])
    return con


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(condition=checked_conditions(), clause=st.sampled_from(["where", "unless", "exit when"]))
def test_every_condition_the_checker_accepts_compiles_and_runs(condition, clause):
    if clause == "unless":
        text = f"flow f\n  purpose service\n  on delivered + 1h unless {condition}\n  via email\n"
    else:
        text = f"flow f\n  purpose service\n  on delivered + 1h\n  {clause} {condition}\n  via email\n"
    report = check_text(text, "f.flow")
    if any(d.severity is Severity.ERROR for d in report.diagnostics):
        return
    env = Env.for_module(report.module)
    plans = [plan_flow(f, env) for f in report.module.flows]
    con = tiny_store()
    now = BASE + timedelta(hours=2)
    rows = DueSet(plans, env.schema).rows(con, BASE, now)          # the tick's SQL (run, simulate)
    assert [row["key"] for _, _, row in rows] == ["f:0:e2"], condition
    plan = plans[0]
    for part in (*plan.guards, *plan.exits, *([plan.unless] if plan.unless is not None else [])):
        q = expr(env.schema, part, "e.occurred_at")                  # the tables' SQL (explain)
        con.execute(f"SELECT {q.sql} FROM order_events e JOIN orders o ON o.id = e.order_id "
                    "JOIN customers c ON c.id = o.customer_id LEFT JOIN reviews r ON r.order_id = o.id "
                    "LEFT JOIN carts ct ON FALSE", [now if p is NOW else p for p in q.params]).fetchall()


def test_the_grammar_property_reaches_money_arithmetic():
    """The conditions above do produce what used to fail: checked clean, then refused by the compiler."""
    for condition in ("order.total > -5 JPY", "order.total * 2 > 1 JPY", "customer.lifetime_value - 5 JPY in [1 JPY]",
                      "10:00 < 10:30", "(5 JPY + order.total) is present"):
        text = f"flow f\n  purpose service\n  on delivered + 1h\n  where {condition}\n  via email\n"
        report = check_text(text, "f.flow")
        assert not [d for d in report.diagnostics if d.severity is Severity.ERROR], condition
        env = Env.for_module(report.module)
        plans = [plan_flow(f, env) for f in report.module.flows]
        DueSet(plans, env.schema).rows(tiny_store(), BASE, BASE + timedelta(hours=2))


@pytest.mark.parametrize("text, refused", [
    ("on delivered via email purpose service where order.total in [5 JPY, 10 USD * 2]", False),
    ("on delivered via email purpose service where [order.total] != [0 JPY]", True),
    ('on delivered via email purpose service send "x" (limits = [5 JPY])', True),
    ("entity order\n  price_breaks: list[money]\non delivered via email purpose service", True),
])
def test_a_list_of_amounts_exists_only_after_in(text, refused):
    """What the compiler truly cannot carry (a currency per list item) the checker refuses."""
    codes = [d.code for d in check_text(text, "t.flow").diagnostics]
    assert ("money-list" in codes) is refused, codes


def test_a_record_no_running_flow_reads_is_refused_by_the_checker():
    """`shipment.carrier` checked clean, then stopped `linkstar run` with an internal error."""
    text = ('entity shipment\n  carrier: string\n\n'
            'on delivered purpose service via email where shipment.carrier == "dhl"\n')
    (diagnostic,) = [d for d in check_text(text, "t.flow").diagnostics if d.severity is Severity.ERROR]
    assert (diagnostic.code, diagnostic.span.text) == ("record-not-read", "shipment")
    assert not [d for d in check_text("entity order\n  carrier: string?\n\non delivered purpose service via email "
                                      "where order.carrier == \"dhl\"\n", "t.flow").diagnostics
                if d.severity is Severity.ERROR]
